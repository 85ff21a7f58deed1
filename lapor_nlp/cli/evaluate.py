"""Score a saved model on a labelled file: the same report as training (per-label table,
confusion matrix, calibration, errors.md). Prints the metrics summary as JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys

from ._columns import add_column_arguments, columns_from_args

HELP = "score a model on a labelled file and write a report"


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    print(json.dumps({t: {k: m[k] for k in ("n", "n_excluded", "accuracy", "macro_f1",
                                             "weighted_f1", "coverage_at_precision", "ece")}
                      for t, m in metrics.items()}, ensure_ascii=False))
    return 0
