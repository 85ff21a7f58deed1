"""Find the labels of a labelled file that are probably wrong.

Out-of-fold probabilities from the project's own features and heads, confident learning
(cleanlab), and identical or near-identical texts filed under different labels. Writes a CSV ranked
most suspect first (stdout, or -o FILE), and with --report DIR also summary.json (figures and label
pairs) and audit.md (the suspects with their text PII-masked). --apply drop|relabel measures what
acting on the audit does: it audits the train side of a split only, trains before and after, and
scores both on the same untouched test side (JSON on stdout; the CSV then needs -o).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._columns import add_column_arguments, columns_from_args

HELP = "rank the rows whose label is probably wrong (confident learning + duplicates)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="labelled file (.csv, .jsonl, .parquet)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="ranked CSV here (default: stdout)")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="write summary.json and audit.md (PII-masked) here")
    add_column_arguments(p)
    a = p.add_argument_group("audit")
    a.add_argument("--task", choices=("topic", "agency"), action="append", default=None,
                   help="audit this task only (repeatable; default: every label column in use)")
    a.add_argument("--method", choices=("cleanlab", "self_confidence"), default="cleanlab",
                   help="cleanlab: confident-learning issues first (default); self_confidence: "
                        "the plain lowest probability of the given label")
    a.add_argument("--folds", type=int, default=5, help="out-of-fold folds (default 5)")
    a.add_argument("--min-count", type=int, default=5,
                   help="labels with fewer rows are not audited (default 5)")
    a.add_argument("--near", type=float, default=0.9,
                   help="TF-IDF cosine from which two texts count as near-identical (default 0.9; "
                        "1: identical normalised tokens only)")
    a.add_argument("--no-joint", action="store_true",
                   help="judge each task from the text alone, not also from the row's other label")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--top", type=int, default=50, help="suspects per task in audit.md (default 50)")
    r = p.add_argument_group("acting on the audit")
    r.add_argument("--apply", choices=("drop", "relabel"), default=None,
                   help="measure training after dropping (or relabelling) the suspects, on a "
                        "held-out split; JSON on stdout")
    r.add_argument("--split-date", default=None, metavar="YYYY-MM-DD",
                   help="with --apply: time split (needs --date-col) instead of a random one")
    r.add_argument("--test-size", type=float, default=0.2, help="with --apply: random test share")
    r.add_argument("--cleaned", default=None, metavar="FILE",
                   help="write the rows after --apply (or after dropping/relabelling with "
                        "--apply on the whole file) as JSONL, to train on")


def run(args: argparse.Namespace) -> int:
    from ..training import audit as A

    columns = columns_from_args(args)
    options = dict(method=args.method, folds=args.folds, near=args.near, joint=not args.no_joint)
    if args.apply:
        effect = A.retrain_effect(args.data, columns, mode=args.apply, split_date=args.split_date,
                                  test_size=args.test_size, fmt=args.format, seed=args.seed,
                                  min_count=args.min_count, **options)
        print(json.dumps(effect, ensure_ascii=False))
        if not args.output and not args.cleaned:
            return 0
    from ..training.data import load_labelled

    examples, _ = load_labelled(args.data, columns, fmt=args.format, skip_bad=True)
    results = A.audit(args.data, columns, tasks=args.task, seed=args.seed, min_count=args.min_count,
                      examples=examples, **options)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            n = A.write_csv(results, f)
        if not args.quiet:
            print(f"lapor-nlp: {n} rows ranked in {args.output}", file=sys.stderr)
    elif not args.apply:
        A.write_csv(results, sys.stdout)
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(A.summary(results), ensure_ascii=False, indent=1),
                                          encoding="utf-8")
        (out / "audit.md").write_text(A.markdown(results, {e.line: e.text for e in examples}, args.top),
                                      encoding="utf-8")
    if args.cleaned:
        cleaned, counts = A.apply_audit(examples, results, args.apply or "drop")
        given = {e.line: e.agency for e in examples}
        with open(args.cleaned, "w", encoding="utf-8") as f:
            for e in cleaned:  # an agency label left as given keeps its place ("Kelurahan X")
                agency = e.agency_label if e.agency is not None and e.agency == given[e.line] else e.agency
                row = {"id": e.id, "line": e.line, "text": e.text, "topic": e.topic, "agency": agency,
                       "date": e.date}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if not args.quiet:
            print(f"lapor-nlp: {len(cleaned)} rows written to {args.cleaned} ({counts})", file=sys.stderr)
    return 0
