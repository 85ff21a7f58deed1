"""Train topic and agency models from a labelled CSV, JSONL or Parquet file.

Every input row is accounted for: bad rows (no text, missing label, duplicate id, undecodable or
malformed line) are reported with their line number and stop training unless --skip-bad is given.
Labels are per task: a row missing one task's label trains and tests the other task.
The model directory gets the model, manifest.json and a report (metrics.json, confusion matrices,
calibration plots, errors.md).
"""

from __future__ import annotations

import argparse
import json

from ._columns import add_column_arguments, columns_from_args
from ._help import show_defaults

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
    show_defaults(p)
    p.add_argument("--data", required=True, help="labelled file (.csv, .jsonl, .parquet)")
    p.add_argument("--out", required=True, help="model directory to write")
    add_column_arguments(p)
    s = p.add_argument_group("split and labels")
    s.add_argument("--split-date", type=_checked(_iso_date, "--split-date"), default=None, metavar="YYYY-MM-DD",
                   help="train on rows before this date, test on rows from it (needs --date-col)")
    s.add_argument("--test-size", type=_checked(_share, "--test-size"), default=0.2,
                   help="stratified random test share when no --split-date (0: no test)")
    s.add_argument("--seed", type=int, default=0, help="seed of the split, the folds and the fit")
    s.add_argument("--min-count", type=int, default=5, help="fewest examples a label needs")
    s.add_argument("--rare", choices=("drop", "merge", "keep"), default="drop",
                   help="labels under --min-count: drop them, merge into 'lainnya', or keep")
    s.add_argument("--skip-bad", action="store_true",
                   help="go on without the rows no task can use (reported); a row missing only one "
                        "task's label is kept for the other task without it")
    s.add_argument("--refit-all", action="store_true",
                   help="after measuring on the split, fit the saved model on all rows")
    s.add_argument("--map-labels", choices=("auto", "all", "none"), default="auto",
                   help="map agency labels that are pre-reorganisation names ('Kemenkumham', "
                        "'Kementerian PUPR') to current taxonomy codes, split ones resolved from "
                        "the text: auto = when the data has such a name, all = also "
                        "when not, none = never; reported in data_report.json")
    s.add_argument("--corrections", default=None, metavar="DB|FILE",
                   help="operators' corrections (a feedback database, or a `lapor-nlp feedback "
                        "export` CSV/JSONL) applied over the data by id, the latest winning "
                        "(needs --id-col); the rows changed are counted in data_report.json")
    m = p.add_argument_group("model")
    m.add_argument("--C", type=float, default=0.5, help="SVM regularisation")
    m.add_argument("--ngram-max", type=int, choices=(1, 2), default=2, help="longest word n-gram")
    m.add_argument("--min-df", type=int, default=1, help="fewest texts a term must occur in")
    m.add_argument("--target-precision", type=float, default=0.95,
                   help="precision that per-label review thresholds aim for")
    m.add_argument("--name", default=None, help="model name for the manifest")
    v = p.add_argument_group("cross-validation")
    v.add_argument("--cv", type=int, default=0, metavar="K",
                   help="also run K-fold cross-validation of the recipe and report each figure's "
                        "mean ± sd beside the split's (0: none)")
    v.add_argument("--cv-group", choices=("stratified", "date"), default="stratified",
                   help="folds stratified by label, or whole days kept together (needs --date-col)")
    m.add_argument("--home-region", default=None, metavar="NAME",
                   help="regency/city the data comes from, e.g. 'Kota Surabaya': its kecamatan and "
                        "kelurahan named in the data are placed there")


def run(args: argparse.Namespace) -> int:
    from ..training import train
    from ..training.default import ensure_default_model

    result = train(
        args.data, args.out, columns=columns_from_args(args), fmt=args.format,
        split_date=args.split_date, test_size=args.test_size, seed=args.seed,
        min_count=args.min_count, rare=args.rare, skip_bad=args.skip_bad,
        refit_all=args.refit_all, C=args.C, ngram_max=args.ngram_max, min_df=args.min_df,
        target_precision=args.target_precision, name=args.name, quiet=args.quiet,
        home_region=args.home_region, map_labels=args.map_labels,
        relabel_with=lambda: ensure_default_model(quiet=args.quiet),  # built only if a split label needs it
        cv=args.cv, cv_group=None if args.cv_group == "stratified" else args.cv_group,
        corrections=args.corrections,
    )
    # The test and cross-validation summaries are on stderr already: train() logs them as it
    # measures them ("lapor-nlp: test topic: ..."; -q silences them).
    print(json.dumps({"model": str(result.out_dir), "data": result.info["data"],
                      "label_mapping": result.data_report.label_mapping,
                      "metrics": result.info["metrics"],
                      **({"cv": result.info["cv"]} if "cv" in result.info else {})}, ensure_ascii=False))
    return 0
