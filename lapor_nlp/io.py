"""Reading labelled or unlabelled complaint files: CSV, JSON Lines, Parquet.

Rows come out as plain dicts with the line number they started on (``__line__``), so every problem
can be reported with its place in the file. Bytes that are not UTF-8 are kept as surrogate escapes
and flagged by :func:`undecodable`, instead of stopping the whole read.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import BatchInputError

FORMATS = ("csv", "jsonl", "parquet")
LINE = "__line__"
ERROR = "__error__"


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise BatchInputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in Path(path).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    raise BatchInputError(f"cannot tell the format of {path}; pass --format csv|jsonl|parquet")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (data fingerprints, model file hashes)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def undecodable(value: object) -> bool:
    """True when a string still holds bytes that were not valid UTF-8 (surrogate escapes)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def iter_rows(path: str | Path, fmt: str | None = None) -> Iterator[dict]:
    """Yield each row as a dict with ``__line__``; a line that cannot be parsed yields
    ``{__line__: n, __error__: reason}`` so that the caller can report it rather than lose it."""
    path = Path(path)
    if not path.exists():
        raise BatchInputError(f"input file {path} does not exist")
    fmt = detect_format(path, fmt)
    if fmt == "csv":
        yield from _iter_csv(path)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path)
    else:
        yield from _iter_parquet(path)


def csv_delimiter(path: str | Path) -> str:
    """Tab for a ``.tsv`` file, comma otherwise: how every CSV reader in the project decides."""
    return "\t" if str(path).lower().endswith(".tsv") else ","


def _open_csv(path: str | Path, *, strict: bool = False):
    """(file, csv reader) for a CSV/TSV file: UTF-8 with undecodable bytes kept as surrogate
    escapes, no limit on a field's size (a complaint may be long)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    fh = open(path, encoding="utf-8", errors="surrogateescape", newline="")
    return fh, csv.reader(fh, delimiter=csv_delimiter(path), strict=strict)


def _column_names(header: list[str]) -> list[str]:
    return [h.lstrip("\ufeff").strip() for h in header]


def csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV/TSV file (``[]`` when it is empty), BOM and spaces stripped."""
    fh, reader = _open_csv(path)
    with fh:
        return _column_names(next(reader, []))


def _iter_csv(path: Path) -> Iterator[dict]:
    fh, reader = _open_csv(path, strict=True)
    with fh:
        try:
            header = next(reader)
        except StopIteration:
            return
        header = _column_names(header)
        n = len(header)
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield {LINE: start, ERROR: f"malformed CSV: {exc}"}
                start = reader.line_num + 1
                continue
            if not values:
                start = reader.line_num + 1
                continue
            if len(values) != n:
                yield {LINE: start, ERROR: f"malformed CSV: {len(values)} fields, header has {n}"}
            else:
                row = dict(zip(header, values))
                row[LINE] = start
                yield row
            start = reader.line_num + 1


def _iter_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if undecodable(line):
                yield {LINE: lineno, ERROR: "line is not valid UTF-8"}
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {LINE: lineno, ERROR: f"malformed JSON: {exc.msg}"}
                continue
            if not isinstance(row, dict):
                yield {LINE: lineno, ERROR: "a JSON line must be an object"}
                continue
            row[LINE] = lineno
            yield row


def _iter_parquet(path: Path) -> Iterator[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BatchInputError("reading Parquet needs pyarrow: pip install 'lapor-nlp[parquet]'") from None
    pf = pq.ParquetFile(path)
    lineno = 0
    for batch in pf.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            lineno += 1
            row[LINE] = lineno
            yield row
