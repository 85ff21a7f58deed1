"""Column-mapping options shared by train, evaluate and classify."""

from __future__ import annotations

import argparse

from ..columns import Columns


def add_column_arguments(p: argparse.ArgumentParser, labels: bool = True) -> None:
    g = p.add_argument_group("columns")
    g.add_argument("--text-col", default="text", help="column with the complaint text (default: text)")
    if labels:
        g.add_argument("--topic-col", default="topic",
                       help="topic label column (default: topic; '' to train without topics)")
        g.add_argument("--agency-col", default="agency",
                       help="agency label column (default: agency; '' to train without agencies)")
    g.add_argument("--title-col", default=None, help="title column, joined before the text")
    g.add_argument("--date-col", default=None, help="date column (YYYY-MM-DD...)")
    g.add_argument("--id-col", default=None,
                   help="id column (duplicates are reported)" if labels else
                   "id column (only checked to exist: every input column is kept in the output)")
    for level in ("province", "regency", "district", "village", "address"):
        g.add_argument(f"--{level}-col", default=None, help=f"{level} column (location)")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default=None,
                   help="input format (default: from the file name)")


def columns_from_args(args: argparse.Namespace, labels: bool = True) -> Columns:
    def opt(name):
        v = getattr(args, name, None)
        return v or None

    return Columns(
        text=args.text_col,
        topic=opt("topic_col") if labels else None,
        agency=opt("agency_col") if labels else None,
        title=opt("title_col"), date=opt("date_col"), id=opt("id_col"),
        province=opt("province_col"), regency=opt("regency_col"), district=opt("district_col"),
        village=opt("village_col"), address=opt("address_col"),
    )
