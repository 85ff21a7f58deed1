"""Reading labelled or unlabelled complaint files: CSV, JSON Lines, Parquet.

Rows come out as plain dicts with the line number they started on (``__line__``), so every problem
can be reported with its place in the file. Bytes that are not UTF-8 are kept as surrogate escapes
and flagged by :func:`undecodable`, instead of stopping the whole read.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .errors import BatchInputError

FORMATS = ("csv", "jsonl", "parquet")
LINE = "__line__"
ERROR = "__error__"
RAW = "__raw__"  # the text of a line that could not be parsed, so that a rejects file can keep it
UNDECODABLE = "undecodable bytes (not UTF-8)"  # the reason given for a row holding such bytes


_FORMAT_OF_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
                     ".json": "jsonl", ".csv": "csv", ".tsv": "csv"}
_COMPRESSED = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})


def detect_format(path: str | Path, fmt: str | None = None, default: str | None = None) -> str:
    """``fmt`` if given, else the format the last suffix names ("backlog.jsonl.out.csv" is CSV),
    else ``default``; a compressed file's name is refused either way (nothing here reads or writes
    compressed files)."""
    _refuse_compressed(path)
    if fmt:
        if fmt not in FORMATS:
            raise BatchInputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    found = _FORMAT_OF_SUFFIX.get(Path(path).suffix.lower(), default)
    if found is None:
        raise BatchInputError(f"cannot tell the format of {path}; pass --format csv|jsonl|parquet")
    return found


def _refuse_compressed(path: str | Path) -> None:
    """A clear error for a compressed file's name, read or written (``.csv.gz``...)."""
    suffix = Path(path).suffix.lower()
    if suffix in _COMPRESSED:
        raise BatchInputError(f"{path} is a compressed file name ({suffix}); lapor-nlp reads and writes "
                              "plain CSV, JSON Lines or Parquet: decompress the input / drop the suffix")


def require_file(path: str | Path) -> Path:
    """``path`` as a Path if it is a readable file, else a clear error (the one check behind every
    reader, so that a missing file or a directory never surfaces as an OSError traceback)."""
    path = Path(path)
    if path.is_dir():
        raise BatchInputError(f"{path} is a directory; give the input file itself")
    if not path.is_file():
        raise BatchInputError(f"input file {path} does not exist")
    return path


def check_column_names(names: list[str], path: str | Path) -> list[str]:
    """Refuse a header that names a column twice: reading its rows as dicts would keep only the
    last of the two values, silently."""
    # Unnamed columns ("", as trailing commas from a spreadsheet give) hold nothing to lose.
    twice = sorted(n for n, count in Counter(names).items() if count > 1 and n)
    if twice:
        raise BatchInputError(f"{path}: the header names {', '.join(map(repr, twice))} more than once; "
                              "rename the repeated column(s)")
    return names


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (data fingerprints, model file hashes)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: An encoding error handler for writing rejected input back: the undecodable bytes a file held
#: (read as surrogate escapes) are written as they came; any other lone surrogate (a JSON "\\ud800"
#: escape) is written as that escape's text, since no UTF-8 byte sequence stands for it.
RAW_ERRORS = "lapor-nlp-raw"


def _raw_bytes_or_escape(exc):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start:exc.end]:
        c = ord(ch)
        out += bytes([c - 0xDC00]) if 0xDC80 <= c <= 0xDCFF else f"\\u{c:04x}".encode("ascii")
    return bytes(out), exc.end


codecs.register_error(RAW_ERRORS, _raw_bytes_or_escape)


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
    ``{__line__: n, __error__: reason, __raw__: its text}`` so that the caller can report it, and
    keep it, rather than lose it."""
    path = require_file(path)
    fmt = detect_format(path, fmt)
    if fmt == "csv":
        yield from _iter_csv(path)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path)
    else:
        yield from _iter_parquet(path)


def csv_delimiter(path: str | Path) -> str:
    """How every CSV reader in the project decides: tab for a ``.tsv`` file; a semicolon when the
    header line has semicolons and no comma (what spreadsheet programs write where the comma is
    the decimal mark, Indonesia included); a comma otherwise."""
    if str(path).lower().endswith(".tsv"):
        return "\t"
    try:
        with open(path, "rb") as fh:
            head = fh.readline(1 << 16)
    except OSError:
        return ","
    return ";" if b";" in head and b"," not in head else ","


def _open_csv(path: str | Path, *, strict: bool = False, consumed: list[str] | None = None):
    """(file, csv reader) for a CSV/TSV file: UTF-8 with undecodable bytes kept as surrogate
    escapes, no limit on a field's size (a complaint may be long). With ``consumed``, each physical
    line the reader takes is appended to it (the raw text of a record that fails to parse)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    fh = open(require_file(path), encoding="utf-8", errors="surrogateescape", newline="")
    lines = fh if consumed is None else _recording(fh, consumed)
    return fh, csv.reader(lines, delimiter=csv_delimiter(path), strict=strict)


def _recording(lines, into: list[str]):
    for line in lines:
        into.append(line)
        yield line


def _column_names(header: list[str], path: str | Path) -> list[str]:
    return check_column_names([h.lstrip("\ufeff").strip() for h in header], path)


def csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV/TSV file (``[]`` when it is empty), BOM and spaces stripped; a
    name given twice is an error."""
    fh, reader = _open_csv(path)
    with fh:
        return _column_names(next(reader, []), path)


def _iter_csv(path: Path) -> Iterator[dict]:
    consumed: list[str] = []
    fh, reader = _open_csv(path, strict=True, consumed=consumed)
    with fh:
        try:
            header = next(reader)
        except StopIteration:
            return
        header = _column_names(header, path)
        n = len(header)
        start = reader.line_num + 1
        while True:
            consumed.clear()
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield {LINE: start, ERROR: f"malformed CSV: {exc}", RAW: _raw(consumed)}
                start = reader.line_num + 1
                continue
            if not values:
                start = reader.line_num + 1
                continue
            if len(values) != n:
                yield {LINE: start, ERROR: f"malformed CSV: {len(values)} fields, header has {n}",
                       RAW: _raw(consumed)}
            else:
                row = dict(zip(header, values))
                row[LINE] = start
                yield row
            start = reader.line_num + 1


def _raw(lines: list[str]) -> str:
    """The text of a record as it stood in the file, without its final line break."""
    return without_line_break("".join(lines))


def without_line_break(line: str) -> str:
    """``line`` without the one line break it ends with ("\r\n", "\n" or "\r"), if any."""
    return line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith(("\n", "\r")) else line


def _iter_jsonl(path: Path) -> Iterator[dict]:
    # utf-8-sig: a byte-order mark before the first line (Windows tools write one) is not data
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if undecodable(line):
                yield {LINE: lineno, ERROR: "line is not valid UTF-8", RAW: _raw([line])}
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {LINE: lineno, ERROR: f"malformed JSON: {exc.msg}", RAW: _raw([line])}
                continue
            if not isinstance(row, dict):
                yield {LINE: lineno, ERROR: "a JSON line must be an object", RAW: _raw([line])}
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
