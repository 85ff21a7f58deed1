"""Score a saved model on a labelled file: the same report as training (per-label table,
confusion matrix, calibration, errors.md). Prints the metrics summary as JSON on stdout, with the
operator's figures: the share routed without review at the router's own per-label thresholds and
its precision, and (with location columns) how often routed_to names the right office."""

from __future__ import annotations

import argparse
import json
import sys

from ._columns import add_column_arguments, columns_from_args
from ._help import show_defaults

HELP = "score a model on a labelled file and write a report"
#: What stdout gives per task: the model's figures, then the operator's (routed without review at
#: the router's own thresholds, and the right office) where they were measured.
SUMMARY_KEYS = ("n", "n_excluded", "accuracy", "macro_f1", "weighted_f1", "coverage_at_precision",
                "ece", "auto_route", "above_threshold", "routed_to")


def add_arguments(p: argparse.ArgumentParser) -> None:
    show_defaults(p)
    p.add_argument("--model", required=True, help="model directory (from lapor-nlp train)")
    p.add_argument("--data", required=True, help="labelled file (.csv, .jsonl, .parquet)")
    p.add_argument("--report", default=None, metavar="DIR", help="write the report here")
    p.add_argument("--skip-bad", action="store_true", help="go on without bad rows")
    add_column_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..training import evaluate
    from ..training.metrics import summary_line

    metrics = evaluate(args.model, args.data, columns=columns_from_args(args), fmt=args.format,
                       skip_bad=args.skip_bad, report_dir=args.report)
    for task, m in metrics.items():
        if not args.quiet:
            print(summary_line(task, m), file=sys.stderr)
    print(json.dumps({t: {k: m[k] for k in SUMMARY_KEYS if k in m} for t, m in metrics.items()},
                     ensure_ascii=False))
    return 0
