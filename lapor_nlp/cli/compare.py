"""Compare two models on the same labelled rows, with paired-bootstrap intervals for every figure,
and (with --require-better or --tolerance) a promotion gate: exit 1 when B is not good enough, for a
nightly job that decides whether a retrained model replaces the deployed one.

Prints the comparison as JSON on stdout; --markdown FILE writes a person's view (texts PII-masked).
"""

from __future__ import annotations

import argparse
import json
import sys

from ._columns import add_column_arguments, columns_from_args
from ._help import show_defaults

HELP = "compare two models on the same rows; exit 1 when the gate says B is not better"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.compare import GATE_METRICS

    show_defaults(p)
    p.add_argument("model_a", metavar="MODEL_A", help="model directory in production (the baseline)")
    p.add_argument("model_b", metavar="MODEL_B", help="candidate model directory")
    p.add_argument("--data", required=True, help="labelled file (.csv, .jsonl, .parquet)")
    p.add_argument("--skip-bad", action="store_true", help="go on without bad rows")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    p.add_argument("--confidence", type=float, default=0.95, help="level of the intervals")
    p.add_argument("--target-precision", type=float, default=0.95,
                   help="precision at which coverage is measured")
    g = p.add_argument_group("promotion gate")
    g.add_argument("--require-better", action="store_true",
                   help="exit 1 unless B's --gate-metric is better than A's in every task (its "
                        "B − A interval lies above 0)")
    g.add_argument("--tolerance", type=float, default=None, metavar="T",
                   help="exit 1 when any figure of B (accuracy, macro-F1, coverage, auto-route "
                        "share) is more than T below A's")
    g.add_argument("--gate-metric", choices=GATE_METRICS, default="accuracy",
                   help="the figure --require-better judges")
    p.add_argument("--markdown", default=None, metavar="FILE", help="also write a Markdown report here")
    add_column_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..training.compare import compare, comparison_markdown

    from ..columns import Columns

    columns = columns_from_args(args)  # none named: model B's own, where the file has them
    result = compare(args.model_a, args.model_b, args.data,
                     columns=None if columns == Columns() else columns, fmt=args.format,
                     skip_bad=args.skip_bad, n_boot=args.n_boot, seed=args.seed,
                     confidence=args.confidence, target_precision=args.target_precision,
                     gate_metric=args.gate_metric, require_better=args.require_better,
                     tolerance=args.tolerance)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(comparison_markdown(result))
    if not args.quiet:
        for task, figures in result.tasks.items():
            f = figures[args.gate_metric]
            print(f"{task} {args.gate_metric}: A {f['a']:.4f}, B {f['b']:.4f}, B − A {f['delta']:+.4f} "
                  f"[{f['delta_ci'][0]:+.4f}, {f['delta_ci'][1]:+.4f}] {f['verdict']}", file=sys.stderr)
        print(f"{result.changed_total} of {result.n_rows} complaints routed differently; verdict: "
              f"{result.verdict}" + ("" if result.passed else "; gate FAILED: " + "; ".join(result.gate["failures"])),
              file=sys.stderr)
    print(json.dumps(result.to_dict(), ensure_ascii=False))
    return 0 if result.passed else 1
