"""Re-classify a backlog: read INPUT (CSV, JSON Lines or Parquet) and write OUTPUT with every input
column plus topic, topic_score, agency, agency_score, routed_to, needs_review, review_reasons and
model_version, rows in input order. Memory stays bounded whatever the input size. Location columns
are found by name (district, subdistrict, kecamatan, kelurahan/desa, alamat, ...) unless an option
names them; the mapping used is said on stderr.

Rows that cannot be classified (no text, undecodable bytes, a malformed line) go to a rejects
file beside OUTPUT (out.csv -> out.rejects.csv; .jsonl for JSON Lines or Parquet output) with
their input line number and reason; the run checks that rows
read = rows written + rows rejected. Finished chunks are kept in OUTPUT.parts/ until the end, so an
interrupted run (Ctrl-C, a killed process) is finished with the same command plus --resume; OUTPUT
appears only when it is complete.

Prints a JSON summary on stdout and a readable one on stderr. With --scheduler the chunks are
computed on a Dask cluster (pip install 'lapor-nlp[distributed]'); --model must then be a path every
worker can read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._columns import add_column_arguments, columns_from_args, named_location_fields

HELP = "classify a whole file (CSV/JSONL/Parquet) into a copy with prediction columns"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="the backlog: .csv, .jsonl or .parquet")
    p.add_argument("-o", "--output", required=True,
                   help="file to write (format from its name, else the input's)")
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    p.add_argument("--model-sha256", default=None, metavar="HEX",
                   help="refuse any model but this one: the sha256 of its manifest.json "
                        "(sha256sum MODEL/manifest.json), which lists every other file's sha256")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="worker processes, each loading the model once (default: all cores)")
    p.add_argument("--chunk-size", type=int, default=5000,
                   help="rows per chunk: the unit of work and of checkpoints (default 5000)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted run from the chunks in OUTPUT.parts/")
    p.add_argument("--output-format", choices=("csv", "jsonl", "parquet"), default=None,
                   help="output format (default: from OUTPUT's name, else the input format)")
    p.add_argument("--prefix", default=None,
                   help="prefix for the prediction columns (default: none, or 'pred_' when the "
                        "input already has a column named topic, agency, ...)")
    p.add_argument("--home-region", default=None, metavar="NAME",
                   help="the regency/city the backlog's portal serves, e.g. 'Kota Surabaya': "
                        "complaints that name no place route to its offices (default: the model's)")
    p.add_argument("--scope", default=None, metavar="CODE",
                   help="an institution's own desk: route only among the agency types under this "
                        "taxonomy code (e.g. kemenimipas); others get review reason outside_scope")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                   help="run the chunks on this Dask scheduler instead of local processes")
    p.add_argument("--review-queue", default=None, metavar="FILE",
                   help="also write the rows that need review, smallest margin between the two "
                        "likeliest agencies first, with their alternatives (CSV, or .jsonl)")
    add_column_arguments(p, labels=False, auto_location=True)


def _columns(args: argparse.Namespace):
    """The columns the options name, with the location columns they leave out found in the
    input by name (``district``, ``kecamatan``, ...); the location mapping is said on stderr, so
    that a backlog read without its places does not go unnoticed. The input's own checks come
    first (missing, a directory, UTF-16 text): a mapping said before the input is refused misleads."""
    from ..batch.inputs import InputFile
    from ..columns import location_from_names
    from ..errors import LaporError
    from ..io import detect_format, refuse_wide_text, require_file

    columns = columns_from_args(args, labels=False)
    fmt = detect_format(require_file(args.input), args.format)
    if fmt != "parquet":
        refuse_wide_text(args.input)
    try:
        source = InputFile.open(Path(args.input), fmt)
        names = source.known_columns()
    except (LaporError, OSError, ValueError):  # classify_file says what is wrong with the input
        return columns
    named = named_location_fields(args)
    columns = location_from_names(columns, names, keep=named)
    if not args.quiet:
        mapping = ", ".join(f"{'subdistrict' if k == 'village' else k} <- {v!r}"
                            for k, v in columns.location().items())
        print(f"lapor-nlp: location columns: {mapping or 'none'} (found by name unless named with "
              "--district-col, --subdistrict-col, ...; '' for none)", file=sys.stderr)
    return columns


def run(args: argparse.Namespace) -> int:
    from ..batch import classify_file, output_paths

    if args.jobs is not None and args.jobs < 1:
        print("lapor-nlp: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.chunk_size < 1:
        print("lapor-nlp: error: --chunk-size must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = classify_file(
            args.input, args.output, model_dir=args.model, jobs=args.jobs,
            chunk_size=args.chunk_size, resume=args.resume, columns=_columns(args),
            fmt=args.format, out_fmt=args.output_format, prefix=args.prefix,
            progress=not args.quiet, scheduler=args.scheduler, home_region=args.home_region,
            scope=args.scope, model_sha256=args.model_sha256, review_queue=args.review_queue,
        )
    except KeyboardInterrupt:
        from ..batch.workdir import finished_chunks

        parts = output_paths(args.output, "csv")[1]
        n = finished_chunks(parts)  # counted after the run cleaned up: what a --resume will find
        if n:
            print(f"\nlapor-nlp: interrupted. {n} finished chunk(s) are kept in {parts}; run the same "
                  "command with --resume to finish without redoing them.", file=sys.stderr)
        else:
            print("\nlapor-nlp: interrupted before any chunk was finished: nothing is kept; run the "
                  "same command again to start over.", file=sys.stderr)
        return 130
    if not args.quiet:
        print(summary.format(), file=sys.stderr)
    print(json.dumps(summary.to_dict(), ensure_ascii=False))
    return 0
