"""The training loop on Surabaya 2022: labels per task, operator figures, compare with its gate.

    python bench/compare.py [--n-boot 1000] [--keep DIR]

1. trains the Surabaya recipe (train before 2022-10-01, test Oct-Dec) WITHOUT --skip-bad: rows
   missing one label now train and test the other task; prints rows_per_task and the agency test
   support of Satpol PP (36 when such rows were dropped, issue 17);
2. ``evaluate`` on the test months: the share routed without review at the router's own
   thresholds, its precision, and how often routed_to names the right office;
3. ``compare``: a model trained on a quarter of the training rows (A) against the full one (B), on
   the same test rows, with paired-bootstrap intervals, and the gate both ways.

Prints figures and label names only, never complaint text (its temporary files hold rows of
../shared only under a temporary directory, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import REPO, SPLIT_DATE, public_split, require_surabaya  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--keep", default=None, help="keep the models and files here")
    args = ap.parse_args()
    from lapor_nlp.training import Columns, evaluate, train
    from lapor_nlp.training.compare import compare

    src = require_surabaya()
    recipe = json.loads((REPO / "recipes" / "surabaya.json").read_text(encoding="utf-8"))
    cols = Columns(**recipe["columns"])
    print(f"host load {os.getloadavg()}", flush=True)
    work = Path(args.keep or tempfile.mkdtemp(prefix="lapor-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)
    before, after = public_split(rows)

    def write(name, part):
        path = work / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header)
            w.writeheader()
            w.writerows(part)
        return path

    quarter, test = write("quarter.csv", before[::4]), write("test.csv", after)
    common = dict(columns=cols, min_count=recipe["min_count"], rare=recipe["rare"],
                  home_region=recipe["home_region"], quiet=True)
    t = time.perf_counter()
    full = train(src, work / "full", split_date=SPLIT_DATE, **common)
    t_full = time.perf_counter() - t
    d = full.info["data"]
    print(f"\n1. labels per task (no --skip-bad): {d['rows_read']} read, {d['rows_rejected']} rejected, "
          f"kept without a label: {d['missing_labels']}")
    print(f"   rows_per_task: {json.dumps(d['rows_per_task'])}; train {d['train_rows']}, test {d['test_rows']}")
    satpol = full.metrics["agency"]["per_class"].get("Satuan Polisi Pamong Praja", {})
    print(f"   Satpol PP agency test support: {satpol.get('support')} (36 when rows without a topic "
          f"were dropped, issue 17); trained in {t_full:.0f} s")
    for task, m in full.metrics.items():
        iv = m["intervals"]
        print(f"   {task}: accuracy {m['accuracy']:.3f} {iv['accuracy']}, macro-F1 {m['macro_f1']:.3f} "
              f"{iv['macro_f1']}, coverage@95% {m['coverage_at_precision']['0.95']:.3f} {iv['coverage_at_0.95']}")
    m = evaluate(work / "full", test)
    print("\n2. evaluate on the test months, for operators:")
    for task, f in m.items():
        a, th = f["auto_route"], f["above_threshold"]
        print(f"   {task}: routed without review {a['share']:.3f} at precision {a['precision']:.3f}; "
              f"above its label's threshold {th['share']:.3f} at precision {th['precision']:.3f}")
    r = m["agency"]["routed_to"]
    print(f"   routed_to right: {r['accuracy']:.3f} of {r['n']}; place-bound labels "
          f"{r['accuracy_place_bound']:.3f} of {r['n_place_bound']}; among the auto-routed {r['accuracy_auto_routed']:.3f}")
    train(quarter, work / "quarter", test_size=0, **common)
    t = time.perf_counter()
    c = compare(work / "quarter", work / "full", test, n_boot=args.n_boot, require_better=True)
    t_cmp = time.perf_counter() - t
    print(f"\n3. compare: A = a quarter of the training rows ({len(before[::4])}), B = all "
          f"({len(before)}), on {c.n_rows} test rows, {c.n_boot} paired resamples, {t_cmp:.1f} s")
    for task, figures in c.tasks.items():
        for name, f in figures.items():
            if isinstance(f, dict):
                print(f"   {task:6s} {name:21s} A {f['a']:.4f}  B {f['b']:.4f}  B-A {f['delta']:+.4f} "
                      f"[{f['delta_ci'][0]:+.4f}, {f['delta_ci'][1]:+.4f}]  {f['verdict']}")
    if c.routing:
        f = c.routing["routed_to_accuracy"]
        print(f"   routed_to right          A {f['a']:.4f}  B {f['b']:.4f}  B-A {f['delta']:+.4f} "
              f"[{f['delta_ci'][0]:+.4f}, {f['delta_ci'][1]:+.4f}]")
    moved = sorted(c.per_label["agency"].items(), key=lambda kv: -abs(kv[1]["delta"] or 0))[:5]
    print("   agency labels whose F1 moved most: " + "; ".join(
        f"{lab} {f['delta']:+.3f} [{f['delta_ci'][0]:+.3f}, {f['delta_ci'][1]:+.3f}] (n={f['support']})" for lab, f in moved))
    print(f"   {c.changed_total} complaints routed differently; verdict {c.verdict}; "
          f"gate --require-better {'passed' if c.passed else 'failed'}")
    same = compare(work / "full", work / "full", test, n_boot=args.n_boot, require_better=True)
    print(f"   B against itself: verdict {same.verdict}; gate {'passed' if same.passed else 'failed'}")
    print(f"host load {os.getloadavg()}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
