"""National reach: the default model on complaints to institutions all over SP4N-LAPOR!, beside
the model of lapor-nlp 0.3.1 (47 agency types), in the same run.

The test set (``bench/data/national_test.jsonl``) was written apart from the corpus, by another
writer who never saw it; this script first checks that no test text is a near copy of a corpus text
(word 3-gram Jaccard >= 0.5), and refuses to score if one is. Rows labelled ``outside`` are
complaints to institutions that no taxonomy type covers (BPS, LPSK, Komisi Yudisial, ...): a good
router asks for review (``unknown_agency``) instead of routing them.

Three models, each trained with the default recipe:

* ``0.4 default``  the corpus and taxonomy of this checkout (also shown with review thresholds
  for 90% precision instead of the default 95%);
* ``0.3.1``        the corpus of commit af85baf (47 types), trained with this checkout's code and
  its ``unknown_agency`` check switched off (``unknown_quantile=0``), as 0.3.1 behaved;
* ``held-out``     the 0.4 corpus without the institutions of ``--held-out``, scored on their
  test complaints and corpus rows: none of them can be right, so what counts is how many are
  sent to review rather than routed.

Figures per model: agency accuracy on the taxonomy's complaints (goal >= 0.90), the precision of
what is routed without review (goal >= 0.95), the review rate, and for out-of-taxonomy complaints
the share flagged ``unknown_agency`` and the share sent to review for any reason.

    python bench/national.py [--test FILE] [--baseline-ref af85baf] [--held-out a,b,c]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = REPO / "bench" / "data" / "national_test.jsonl"
HELD_OUT = ("djki", "bpom", "kpu", "jasa_marga", "ojk", "basarnas", "pengadilan_agama", "kkp",
            "pos_indonesia", "lldikti", "bgn", "inspektorat")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_rows(corpus_dir: Path) -> list[dict]:
    return [r for p in sorted(corpus_dir.glob("*.jsonl")) for r in read_jsonl(p)]


def _grams(text: str, n: int = 3) -> frozenset:
    w = text.lower().split()
    return frozenset(tuple(w[i:i + n]) for i in range(max(1, len(w) - n + 1)))


def near_copies(test: list[dict], corpus: list[dict], threshold: float = 0.5) -> tuple[list, float]:
    """Test rows whose word 3-gram Jaccard with some corpus text reaches ``threshold``, and the
    highest similarity seen (candidates found through shared 3-grams)."""
    index: dict = {}
    cg = [_grams(r["text"]) for r in corpus]
    for j, g in enumerate(cg):
        for x in g:
            index.setdefault(x, []).append(j)
    found, best = [], 0.0
    for r in test:
        g = _grams(r["text"])
        cands = {j for x in g for j in index.get(x, ())}
        sims = [len(g & cg[j]) / len(g | cg[j]) for j in cands]
        top = max(sims, default=0.0)
        best = max(best, top)
        if top >= threshold:
            found.append((r["id"], round(top, 2)))
    return found, best


def train_default(corpus_dir: Path, out: Path, exclude: set[str] = frozenset(),
                  taxonomy_dir: Path | None = None) -> float:
    """Train the default recipe on ``corpus_dir`` (minus agency types ``exclude``); seconds."""
    from lapor_nlp.bundled import RECIPE
    from lapor_nlp.taxonomy import bundled_routing as taxonomy_routing
    from lapor_nlp.training import Columns, train

    rows = [r for r in corpus_rows(corpus_dir) if r["agency"] not in exclude]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "corpus.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        routing = taxonomy_routing()
        if taxonomy_dir is not None:  # the old taxonomy's types (templates of 0.3.1)
            old = json.loads((taxonomy_dir / "agency_types.json").read_text(encoding="utf-8"))
            routing["agency_types"] = {a["code"]: {k: a.get(k) for k in ("serves", "template", "name", "level")}
                                       for a in old["agency_types"]}
            routing["label_names"]["agency"] = {a["code"]: a["name"] for a in old["agency_types"]}
            routing["parents"] = {}
        t0 = time.perf_counter()
        train(data, out, columns=Columns(id="id", province="province", regency="regency",
                                         district="district", village="village"),
              name="bench", quiet=True, routing=routing, map_labels="none", **RECIPE)
        return time.perf_counter() - t0


def checkout(ref: str, sub: str, dest: Path) -> Path:
    """``sub`` (a folder of datasets/) as it was at commit ``ref``."""
    dest.mkdir(parents=True, exist_ok=True)
    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", ref, f"datasets/{sub}/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        blob = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{name}"], check=True,
                              capture_output=True).stdout
        (dest / Path(name).name).write_bytes(blob)
    return dest


def score(router, rows: list[dict]) -> dict:
    """Accuracy, auto-route precision and review figures of ``router`` on ``rows``."""
    preds = router.predict_records([r["text"] for r in rows])
    inside = [(r, p) for r, p in zip(rows, preds) if r["agency"] != "outside"]
    outside = [(r, p) for r, p in zip(rows, preds) if r["agency"] == "outside"]
    auto = [(r, p) for r, p in inside if not p["needs_review"]]
    out = {"n": len(inside),
           "accuracy": _share(sum(p["agency"]["label"] == r["agency"] for r, p in inside), len(inside)),
           "auto_precision": _share(sum(p["agency"]["label"] == r["agency"] for r, p in auto), len(auto)),
           "review_rate": _share(len(inside) - len(auto), len(inside)),
           "unknown_flag_inside": _share(sum("unknown_agency" in p["review_reasons"] for _, p in inside), len(inside)),
           "n_outside": len(outside),
           "outside_unknown": _share(sum("unknown_agency" in p["review_reasons"] for _, p in outside), len(outside)),
           "outside_review": _share(sum(p["needs_review"] for _, p in outside), len(outside))}
    out["errors"] = Counter((r["agency"], p["agency"]["label"]) for r, p in inside
                            if p["agency"]["label"] != r["agency"]).most_common(12)
    return out


def _share(k: int, n: int) -> float | None:
    return round(k / n, 3) if n else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", type=Path, default=TEST)
    ap.add_argument("--baseline-ref", default="af85baf", help="commit of the 0.3.1 corpus (default af85baf)")
    ap.add_argument("--held-out", default=",".join(HELD_OUT), help="agency types left out of training "
                    "for the held-out-institution check (comma-separated)")
    args = ap.parse_args()
    from lapor_nlp import Router
    from lapor_nlp.resources import datasets_dir

    print(f"host: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    test = read_jsonl(args.test)
    corpus_dir = datasets_dir() / "corpus"
    corpus = corpus_rows(corpus_dir)
    copies, best = near_copies(test, corpus)
    types = {r["agency"] for r in test} - {"outside"}
    print(f"test set: {len(test)} complaints, {len(types)} agency types, "
          f"{sum(r['agency'] == 'outside' for r in test)} to institutions outside the taxonomy")
    print(f"near copies of a corpus text (word 3-gram Jaccard >= 0.5): {len(copies)}; "
          f"highest similarity {best:.2f}")
    if copies:
        sys.exit(f"bench: the test set has near copies of corpus texts: {copies[:10]}")
    held = set(filter(None, args.held_out.split(",")))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        secs = train_default(corpus_dir, tmp / "current")
        print(f"trained 0.4 default ({len(corpus)} corpus rows) in {secs:.1f} s")
        results["0.4 default"] = score(Router.load(tmp / "current"), test)
        results["0.4 default, target_precision 0.90"] = score(
            Router.load(tmp / "current", target_precision=0.90), test)
        old_corpus = checkout(args.baseline_ref, "corpus", tmp / "old" / "corpus")
        old_tax = checkout(args.baseline_ref, "taxonomy", tmp / "old" / "taxonomy")
        secs = train_default(old_corpus, tmp / "old_model", taxonomy_dir=old_tax)
        print(f"trained 0.3.1 ({args.baseline_ref}) in {secs:.1f} s")
        results["0.3.1"] = score(Router.load(tmp / "old_model", unknown_quantile=0), test)
        secs = train_default(corpus_dir, tmp / "held", exclude=held)
        print(f"trained held-out ({len(held)} institutions left out) in {secs:.1f} s")
        held_router = Router.load(tmp / "held")
        others = [r for r in test if r["agency"] not in held]
        held_rows = [{**r, "agency": "outside"} for r in test if r["agency"] in held] + \
                    [{**r, "agency": "outside"} for r in corpus if r["agency"] in held]
        results["held-out: rest of test"] = score(held_router, others)
        results["held-out: left-out institutions"] = score(held_router, held_rows)

    print()
    print(f"{'model':38s} {'n':>4s} {'accuracy':>8s} {'auto-prec':>9s} {'review':>7s} "
          f"{'n out':>5s} {'out→unknown':>11s} {'out→review':>10s}")
    for name, r in results.items():
        cells = [r["accuracy"], r["auto_precision"], r["review_rate"]]
        print(f"{name:38s} {r['n']:4d} " + " ".join(f"{'-' if v is None else format(v, '.3f'):>{w}s}"
                                                     for v, w in zip(cells, (8, 9, 7)))
              + f" {r['n_outside']:5d} {'-' if r['outside_unknown'] is None else format(r['outside_unknown'], '.3f'):>11s}"
              f" {'-' if r['outside_review'] is None else format(r['outside_review'], '.3f'):>10s}")
    cur = results["0.4 default"]
    print(f"\ngoals (0.4 default): accuracy >= 0.90: {'met' if cur['accuracy'] >= 0.90 else 'NOT met'}; "
          f"auto-route precision >= 0.95: {'met' if (cur['auto_precision'] or 0) >= 0.95 else 'NOT met'}")
    print("most frequent errors of 0.4 default (gold -> predicted): "
          + ", ".join(f"{g}->{p} ({n})" for (g, p), n in cur["errors"]))


if __name__ == "__main__":
    main()
