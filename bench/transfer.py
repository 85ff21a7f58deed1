"""Transfer check: the default model (trained only on this project's corpus) on real Surabaya
complaints it never saw.

Surabaya's agencies are mapped to this taxonomy's types by recipes/surabaya_agency_map.json;
unmapped agencies (internal secretariat units) are left out. Prints agency-type accuracy and
macro-F1 on the mapped rows beside a majority-class baseline. Target: accuracy >= 0.60.

    python bench/transfer.py [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import agency_type, surabaya_rows  # noqa: E402

MAP = Path(__file__).resolve().parent.parent / "recipes" / "surabaya_agency_map.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    from sklearn.metrics import f1_score

    from lapor_nlp import Router
    from lapor_nlp.training.default import ensure_default_model

    mapping = json.loads(MAP.read_text(encoding="utf-8"))["map"]
    rows = surabaya_rows()
    mapped = []
    unmapped = Counter()
    for r in rows:
        t = agency_type(r["agency"]) if r["agency"].strip() else None
        target = mapping.get(t)
        if target is None:
            unmapped[t] += 1
            continue
        mapped.append((r["text"], target if isinstance(target, list) else [target]))
    router = Router.load(args.model or ensure_default_model())
    preds = router.predict_records([t for t, _ in mapped])
    pred = [p["agency"]["label"] for p in preds]
    gold = [g[0] if p not in g else p for p, (_, g) in zip(pred, mapped)]
    correct = sum(p == g for p, g in zip(pred, gold))
    majority = Counter(g[0] for _, g in mapped).most_common(1)[0]
    print(f"Surabaya 2022 rows: {len(rows)}; mapped to the taxonomy: {len(mapped)}; "
          f"left out (no counterpart): {sum(unmapped.values())}")
    print(f"default model ({router.name}): accuracy {correct / len(mapped):.3f}, "
          f"macro-F1 {f1_score(gold, pred, average='macro', labels=sorted(set(gold)), zero_division=0):.3f}")
    print(f"majority-class baseline ('{majority[0]}'): accuracy {majority[1] / len(mapped):.3f}")
    per = Counter()
    hit = Counter()
    for p, g in zip(pred, gold):
        per[g] += 1
        hit[g] += p == g
    print("per agency type (recall): " + ", ".join(f"{k} {hit[k] / n:.2f} ({n})" for k, n in per.most_common(12)))
    print("target: accuracy >= 0.60 with no Surabaya row in training:",
          "met" if correct / len(mapped) >= 0.60 else "NOT met")


if __name__ == "__main__":
    main()
