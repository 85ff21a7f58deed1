"""Reproduce a published model and its report from its recipe.

    python recipes/reproduce.py surabaya --out models/surabaya     # needs ../shared/data
    python recipes/reproduce.py default  --out models/default

The Surabaya recipe reads ../shared/data/surabaya/complaints_2022.csv where it lies (it is never
copied into this repository). Besides the training report, it measures what the router adds: the
accuracy on the full agency label ("Kelurahan Kertajaya", with the place resolved) beside the
type-level accuracy, and how often `routed_to` names the right office for the Kelurahan/Kecamatan
rows whose subdistrict/district field is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def train_recipe(name: str, out: Path, quiet: bool = False) -> dict:
    from lapor_nlp.training import Columns, train

    recipe = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    if recipe.get("builtin") == "default":
        from lapor_nlp.training.default import build_default_model

        build_default_model(out, quiet=quiet)
        return recipe
    data = (REPO / recipe["data"]).resolve()
    if not data.exists():
        sys.exit(f"reproduce: {data} not found (real data lives in ../shared beside the checkout)")
    cols = recipe["columns"]
    train(data, out, columns=Columns(**cols), split_date=recipe.get("split_date"),
          test_size=recipe.get("test_size", 0.2), min_count=recipe["min_count"], rare=recipe["rare"],
          skip_bad=recipe.get("skip_bad", False), C=recipe["C"], ngram_max=recipe["ngram_max"],
          target_precision=recipe["target_precision"], name=recipe["name"],
          home_region=recipe.get("home_region"), quiet=quiet)
    return recipe


def routing_check(model_dir: Path, recipe: dict) -> dict:
    """Full-label accuracy and office resolution on the recipe's test split (Surabaya)."""
    import csv

    from lapor_nlp import Complaint, Router
    from lapor_nlp.agency import AgencySplitter
    from lapor_nlp.schemas import Location

    data = (REPO / recipe["data"]).resolve()
    rows = list(csv.DictReader(data.open(encoding="utf-8", newline="")))
    split = recipe["split_date"]
    seen = {r["text"] for r in rows if r["date"][:10] < split}
    test = []
    for r in rows:
        if r["date"][:10] >= split and r["text"] not in seen and r["agency"].strip():
            seen.add(r["text"])
            test.append(r)
    router = Router.load(model_dir)
    splitter = AgencySplitter()
    preds = router.predict_batch([
        Complaint(text=r["text"], id=r["id"], location=Location(
            district=r["district"] or None, subdistrict=r["subdistrict"] or None, address=r["address"] or None))
        for r in test], explain=False)
    type_ok = full_ok = 0
    local = local_ok = local_type_ok = local_place_ok = 0
    for r, p in zip(test, preds):
        gold = splitter.split(r["agency"])
        t_ok = p.agency.label == gold.type
        type_ok += t_ok
        full_ok += p.routed_to == gold.label or (gold.place is None and t_ok)
        field = r["subdistrict"] if gold.level == "village" else r["district"] if gold.level == "district" else None
        if gold.type in ("Kelurahan", "Kecamatan") and field:
            local += 1
            local_ok += p.routed_to == gold.label
            if t_ok:
                local_type_ok += 1
                local_place_ok += p.routed_to == gold.label
    return {
        "test_rows": len(test),
        "agency_type_accuracy": type_ok / len(test),
        "agency_full_label_accuracy": full_ok / len(test),
        "kelurahan_kecamatan_rows_with_field": local,
        "routed_to_right_office_end_to_end": local_ok / max(local, 1),
        "routed_to_right_office_when_type_right": local_place_ok / max(local_type_ok, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe", choices=sorted(p.stem for p in HERE.glob("*.json") if not p.stem.endswith("_map")))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="reproduce: %(message)s", stream=sys.stderr)
    recipe = train_recipe(args.recipe, args.out, args.quiet)
    manifest = json.loads((args.out / "manifest.json").read_text(encoding="utf-8"))
    result = {"model": str(args.out), "metrics": manifest.get("metrics"),
              "train_seconds": manifest.get("train_seconds")}
    if args.recipe == "surabaya":
        result["routing"] = routing_check(args.out, recipe)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
