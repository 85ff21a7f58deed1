"""Train topic and agency models from a labelled CSV, JSONL or Parquet file.

Every input row is accounted for: bad rows (no text, missing label, duplicate id, undecodable or
malformed line) are reported with their line number and stop training unless --skip-bad is given.
The model directory gets the model, manifest.json and a report (metrics.json, confusion matrices,
calibration plots, errors.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from ._columns import add_column_arguments, columns_from_args

HELP = "train topic and agency models from a labelled file"


def _checked(check, option: str):
    """An argparse type from one of the library's checks, so that the CLI refuses (exit 2) exactly
    what the library would."""
    def convert(text: str):
        from ..errors import InputValueError

        try:
            return check(text, option)
        except InputValueError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    return convert


def _share(text: str, option: str) -> float:
    from ..training.data import test_share

    try:
        value = float(text)
    except ValueError:
        value = text  # refused by test_share with the text in the message
    return test_share(value, option)


def _iso_date(text: str, option: str) -> str:
    from ..training.data import iso_date

    return iso_date(text, option)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="labelled file (.csv, .jsonl, .parquet)")
    p.add_argument("--out", required=True, help="model directory to write")
    add_column_arguments(p)
    s = p.add_argument_group("split and labels")
    s.add_argument("--split-date", type=_checked(_iso_date, "--split-date"), default=None, metavar="YYYY-MM-DD",
                   help="train on rows before this date, test on rows from it (needs --date-col)")
    s.add_argument("--test-size", type=_checked(_share, "--test-size"), default=0.2,
                   help="stratified random test share when no --split-date (0: no test)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--min-count", type=int, default=5, help="fewest examples a label needs")
    s.add_argument("--rare", choices=("drop", "merge", "keep"), default="drop",
                   help="labels under --min-count: drop them, merge into 'lainnya', or keep")
    s.add_argument("--skip-bad", action="store_true", help="go on without bad rows (reported)")
    s.add_argument("--refit-all", action="store_true",
                   help="after measuring on the split, fit the saved model on all rows")
    s.add_argument("--map-labels", choices=("auto", "all", "none"), default="auto",
                   help="map agency labels that are pre-reorganisation names ('Kemenkumham', "
                        "'Kementerian PUPR') to current taxonomy codes, split ones resolved from "
                        "the text: auto = when the data has such a name (default), all = also "
                        "when not, none = never; reported in data_report.json")
    m = p.add_argument_group("model")
    m.add_argument("--C", type=float, default=0.5, help="SVM regularisation (default 0.5)")
    m.add_argument("--ngram-max", type=int, choices=(1, 2), default=2)
    m.add_argument("--min-df", type=int, default=1)
    m.add_argument("--target-precision", type=float, default=0.95,
                   help="precision that per-label review thresholds aim for (default 0.95)")
    m.add_argument("--name", default=None, help="model name for the manifest")
    m.add_argument("--home-region", default=None, metavar="NAME",
                   help="regency/city the data comes from, e.g. 'Kota Surabaya': its kecamatan and "
                        "kelurahan named in the data are placed there")


def run(args: argparse.Namespace) -> int:
    from ..training import train
    from ..training.default import ensure_default_model
    from ..training.metrics import summary_line

    result = train(
        args.data, args.out, columns=columns_from_args(args), fmt=args.format,
        split_date=args.split_date, test_size=args.test_size, seed=args.seed,
        min_count=args.min_count, rare=args.rare, skip_bad=args.skip_bad,
        refit_all=args.refit_all, C=args.C, ngram_max=args.ngram_max, min_df=args.min_df,
        target_precision=args.target_precision, name=args.name, quiet=args.quiet,
        home_region=args.home_region, map_labels=args.map_labels,
        relabel_with=lambda: ensure_default_model(quiet=args.quiet),  # built only if a split label needs it
    )
    if not args.quiet:
        for task, m in result.metrics.items():
            print(summary_line(task, m), file=sys.stderr)
    print(json.dumps({"model": str(result.out_dir), "data": result.info["data"],
                      "label_mapping": result.data_report.label_mapping,
                      "metrics": result.info["metrics"]}, ensure_ascii=False))
    return 0
