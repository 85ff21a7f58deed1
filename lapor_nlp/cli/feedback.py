"""Operators' corrections, without the HTTP service: `add` stores them, `export` reads them out.

The database is the one the service writes (POST /v1/feedback): --db, else LAPOR_NLP_FEEDBACK_DB,
else feedback.sqlite3 in the user data directory. Storing the same (id, version) again is a
no-op; the same key with other content is refused (exit 1): give it the next version. An export
(CSV or JSONL, stdout or -o) feeds `lapor-nlp train --corrections`. `add --model DIR` refuses a
corrected topic or agency that the model does not know (the service checks against its own model);
without --model, labels are not checked.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "store operators' corrections (add) or read them out (export)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    db_help = "feedback database (default: $LAPOR_NLP_FEEDBACK_DB, else the user data directory)"
    p.add_argument("--db", default=None, metavar="PATH", help=db_help)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = sub.add_parser("export", help="write the stored corrections as CSV or JSONL",
                       description="Write the stored corrections (stdout, or -o FILE).")
    e.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH", help=db_help)
    e.add_argument("-o", "--output", default=None, metavar="FILE", help="default: stdout")
    e.add_argument("--format", choices=("csv", "jsonl"), default=None,
                   help="default: from -o's name, else csv")
    e.add_argument("--latest", action="store_true",
                   help="one row per complaint id: its latest correction (what training applies)")
    a = sub.add_parser("add", help="store one correction, or every one in a CSV/JSONL file",
                       description="Store one correction (--id, --corrected-*, --who), or every "
                                   "row of --file (an export's columns). Prints the counts as JSON.")
    a.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH", help=db_help)
    a.add_argument("--file", default=None, metavar="FILE",
                   help="CSV or JSONL with an export's columns (id, version, corrected_topic, ...)")
    a.add_argument("--id", default=None, help="the complaint's id")
    a.add_argument("--version", type=int, default=None,
                   help="the correction's version (default: the next one for this id)")
    for side in ("predicted", "corrected"):
        for task in ("topic", "agency", "office"):
            a.add_argument(f"--{side}-{task}", default=None, metavar="LABEL")
    a.add_argument("--who", default=None, help="who corrected it (required: the audit trail "
                                               "names a person)")
    a.add_argument("--when", default=None, metavar="ISO-8601", help="default: now (UTC)")
    a.add_argument("--model", default=None, metavar="DIR",
                   help="refuse a corrected topic or agency that is not one of this model's labels "
                        "(as the service does with its model); without it, labels are not checked")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputValueError
    from ..feedback import FeedbackStore, write_export

    with FeedbackStore(args.db) as store:
        if args.action == "export":
            fmt = args.format or ("jsonl" if (args.output or "").endswith(".jsonl") else "csv")
            rows = store.records(latest=args.latest)
            if args.output:
                with open(args.output, "w", encoding="utf-8", newline="") as f:
                    n = write_export(rows, f, fmt)
            else:
                n = write_export(rows, sys.stdout, fmt)
            if not args.quiet:
                print(f"lapor-nlp: {n} correction(s) from {store.path}", file=sys.stderr)
            return 0
        labels = None
        if args.model:
            from ..router import Router

            labels = Router.load(args.model).labels
        if args.file:
            if args.id:
                raise InputValueError("give --file or --id, not both")
            from ..io import ERROR, LINE, iter_rows

            def items():
                for row in iter_rows(args.file):
                    if ERROR in row:
                        raise InputValueError(f"{args.file}: line {row[LINE]}: {row[ERROR]}")
                    yield {k: v for k, v in row.items() if k != LINE and v not in (None, "")}
            counts = store.add_many(items(), labels=labels)
        else:
            if not args.id or not args.who:
                raise InputValueError("add needs --id and --who (and a --corrected-topic, "
                                      "--corrected-agency or --corrected-office), or --file")
            item = {"id": args.id, "version": args.version or store.next_version(args.id),
                    "who": args.who}
            if args.when:  # else the time it is stored
                item["when"] = args.when
            for side in ("predicted", "corrected"):
                item[side] = {t: v for t in ("topic", "agency", "office")
                              if (v := getattr(args, f"{side}_{t}")) is not None}
            counts = {"stored": 0, "duplicates": 0}
            counts["stored" if store.add(item, labels=labels) else "duplicates"] += 1
        print(json.dumps({**counts, "total": store.count(), "db": str(store.path)}))
    return 0
