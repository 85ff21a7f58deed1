"""Column-mapping options shared by train, evaluate and classify."""

from __future__ import annotations

import argparse
import sys

from ..columns import LOCATION_NAMES, Columns
from ..errors import InputValueError


def add_column_arguments(p: argparse.ArgumentParser, labels: bool = True, auto_location: bool = False) -> None:
    """The column options; ``auto_location``: the command finds location columns by name
    (:func:`lapor_nlp.columns.location_from_names`), which their help says."""
    g = p.add_argument_group("columns")
    g.add_argument("--text-col", default="text", help="column with the complaint text (default: text)")
    if labels:
        g.add_argument("--topic-col", default="topic",
                       help="topic label column (default: topic; '' for none: no topic labels)")
        g.add_argument("--agency-col", default="agency",
                       help="agency label column (default: agency; '' for none: no agency labels)")
    g.add_argument("--title-col", default=None, help="title column, joined before the text")
    g.add_argument("--date-col", default=None, help="date column (YYYY-MM-DD...)")
    g.add_argument("--id-col", default=None,
                   help="id column (duplicates are reported)" if labels else
                   "id column (only checked to exist: every input column is kept in the output)")
    for field, what in (("province", "province"), ("regency", "kabupaten/kota"),
                        ("district", "kecamatan"), ("subdistrict", "kelurahan/desa"),
                        ("address", "free-text address")):
        found = (f"; default: a column named {' or '.join(LOCATION_NAMES[field][:2])}, if any; "
                 "'' for none") if auto_location else ""
        g.add_argument(f"--{field}-col", default=None, metavar="COL",
                       help=f"{what} column (location.{field}{found})")
    g.add_argument("--village-col", default=None, metavar="COL",
                   help="deprecated name of --subdistrict-col")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default=None,
                   help="input format (default: from the file name)")


def subdistrict_col(args: argparse.Namespace) -> str | None:
    """``--subdistrict-col``, or the deprecated ``--village-col`` with a warning on stderr."""
    old = getattr(args, "village_col", None)
    new = getattr(args, "subdistrict_col", None)
    if old is not None:
        print("lapor-nlp: warning: --village-col is deprecated; use --subdistrict-col "
              "(the schema's location.subdistrict)", file=sys.stderr)
        if new is not None and new != old:
            raise InputValueError(f"--village-col {old!r} and --subdistrict-col {new!r} name different "
                                  "columns; give only --subdistrict-col", field="--subdistrict-col")
    return new if new is not None else old


def named_location_fields(args: argparse.Namespace) -> set[str]:
    """The location fields whose column the command line names, even as '' (none)."""
    named = {f for f in ("province", "regency", "district", "address")
             if getattr(args, f + "_col", None) is not None}
    if getattr(args, "subdistrict_col", None) is not None or getattr(args, "village_col", None) is not None:
        named.add("subdistrict")
    return named


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
        village=subdistrict_col(args) or None, address=opt("address_col"),
    )
