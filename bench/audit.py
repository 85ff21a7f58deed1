"""Does ``lapor-nlp audit`` find wrong labels? Planted flips in the Surabaya 2022 complaints.

For each seed, 5% of the rows whose label the audit can judge (labels with >= 5 rows) get another
label, drawn from the other labels in proportion to their frequency (``plant_flips``: a mistake
tends to name a common label). The audit then ranks every audited row, and this prints, per
ranking, the share of the planted flips in its top 10% of rows (recall@10%) and the precision
there, beside a seeded random ranking and the plain baseline, "lowest out-of-fold probability of
the given label" (from the same out-of-fold probabilities as the audit, so only the ranking
differs). For cleanlab's own issue set (``flagged``) it prints its precision and recall.

Two settings: ``text`` (each task judged from the text alone) and ``joint`` (the out-of-fold model
also sees the row's label of the other task: the default of ``lapor-nlp audit``). A flip planted in
one task breaks that task's agreement with the other, which real mistakes need not do (an operator
who picks the wrong agency often picks that agency's topic too), so ``joint`` is an upper bound and
``text`` the figure to hold the method to.

Then, without planted flips, whether training after the audit helps on the public time split
(train before 2022-10-01, test from it): the train side alone is audited, its suspects dropped
(or relabelled), and both models are scored on the same untouched test rows.

Only figures are printed, never a complaint text.

    python bench/audit.py [--task agency] [--folds 5] [--seeds 0] [--no-retrain]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import SPLIT_DATE, require_surabaya  # noqa: E402

warnings.filterwarnings("ignore")


def top_share(order: list[int], planted: set[int], share: float = 0.10) -> tuple[float, float]:
    """(recall, precision) of the planted rows among the first ``share`` of ``order``."""
    k = int(round(share * len(order)))
    hits = sum(1 for line in order[:k] if line in planted)
    return hits / max(1, len(planted)), hits / max(1, k)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=("agency", "topic"), action="append", default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.05, help="share of rows flipped")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-retrain", action="store_true", help="skip the time-split retraining")
    ap.add_argument("--apply", choices=("drop", "relabel"), default="drop")
    args = ap.parse_args(argv)
    tasks = args.task or ["agency"]

    from lapor_nlp.columns import Columns
    from lapor_nlp.text import Preprocessor
    from lapor_nlp.training.audit import audit_examples, plant_flips, retrain_effect
    from lapor_nlp.training.data import load_labelled

    path = require_surabaya()
    print(f"host load {os.getloadavg()}", flush=True)
    examples, _ = load_labelled(path, Columns(id="id", date="date"), skip_bad=True)
    t0 = time.perf_counter()
    docs = Preprocessor().tokens_batch([e.text for e in examples])
    print(f"{len(examples)} rows, tokenised in {time.perf_counter() - t0:.1f}s", flush=True)
    lines = [e.line for e in examples]
    print("task    setting seed ranking          recall@10% prec@10%  flagged  prec   recall  secs")
    for task in tasks:
        other = "topic" if task == "agency" else "agency"
        given = [getattr(e, task) for e in examples]
        for seed in args.seeds:
            noisy, flipped = plant_flips(given, args.share, seed=seed)
            planted = {lines[i] for i in flipped}
            for setting in ("text", "joint"):
                t = time.perf_counter()
                res = audit_examples([e.text for e in examples], noisy, lines=lines, task=task,
                                     folds=args.folds, seed=seed, docs=docs,
                                     context=[getattr(e, other) for e in examples] if setting == "joint" else None)
                secs = time.perf_counter() - t
                audited = [r["line"] for r in res.rows]
                shuffled = audited[:]
                random.Random(seed).shuffle(shuffled)
                baseline = [r["line"] for r in sorted(res.rows, key=lambda r: r["p_given"])]
                flagged = {r["line"] for r in res.rows if r["flagged"]}
                suspects = {r["line"] for r in res.rows if r["flagged"] or r["duplicate_conflict"]}
                hit = len(flagged & planted)
                for name, order in (("random", shuffled), ("lowest p(given)", baseline),
                                    ("audit (cleanlab)", audited)):
                    rec, prec = top_share(order, planted)
                    extra = (f"{len(suspects):7d}  {len(suspects & planted) / max(1, len(suspects)):.3f}  "
                             f"{len(suspects & planted) / max(1, len(planted)):.3f}  {secs:5.1f}"
                             if name.startswith("audit") else "")
                    print(f"{task:7s} {setting:7s} {seed:4d} {name:17s} {rec:10.3f} {prec:8.3f}  {extra}",
                          flush=True)
                print(f"{task:7s} {setting:7s} {seed:4d} cleanlab issues alone: {len(flagged)} rows, "
                      f"precision {hit / max(1, len(flagged)):.3f}, recall {hit / max(1, len(planted)):.3f}; "
                      f"{len(planted)} planted of {len(audited)} audited; out-of-fold accuracy "
                      f"{res.summary['oof_accuracy']:.3f}", flush=True)
                # Why a flip is missed: its new label is one the text supports as well.
                k = int(round(0.10 * len(audited)))
                missed = [r for r in res.rows[k:] if r["line"] in planted]
                if missed:
                    at = {lines[i]: i for i in flipped}
                    pairs = Counter((given[at[r["line"]]], r["given"]) for r in missed).most_common(3)
                    p_missed = sorted(r["p_given"] for r in missed)[len(missed) // 2]
                    p_all = sorted(r["p_given"] for r in res.rows)[len(res.rows) // 2]
                    print(f"{task:7s} {setting:7s} {seed:4d} missed by the audit: {len(missed)}; median "
                          f"p(flipped label) {p_missed:.3f} (all rows {p_all:.3f}); commonest "
                          f"true -> flipped: {pairs}", flush=True)
    if not args.no_retrain:
        t = time.perf_counter()
        effect = retrain_effect(path, Columns(id="id", date="date"), mode=args.apply,
                                split_date=SPLIT_DATE, folds=args.folds)
        print(f"\nretrain on the time split (train < {SPLIT_DATE}: {effect['split']['train_rows']} rows, "
              f"test {effect['split']['test_rows']}), audit of the train side, suspects {'dropped' if args.apply == 'drop' else 'relabelled'} "
              f"({effect['labels_changed']}, {effect['rows_left_out']} rows left out), "
              f"{time.perf_counter() - t:.0f}s:")
        for task, d in effect["delta"].items():
            b, a = effect["before"][task], effect["after"][task]
            print(f"  {task:7s} n={b['n']:5d}  accuracy {b['accuracy']:.3f} -> {a['accuracy']:.3f} "
                  f"({d['accuracy']:+.3f})   macro-F1 {b['macro_f1']:.3f} -> {a['macro_f1']:.3f} "
                  f"({d['macro_f1']:+.3f})")
    print(f"host load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
