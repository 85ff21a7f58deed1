"""Reading labelled or unlabelled complaint files: CSV, JSON Lines, Parquet.

Rows come out as plain dicts with the line number they started on (``__line__``), so every problem
can be reported with its place in the file. Bytes that are not UTF-8 are kept as surrogate escapes
and flagged by :func:`undecodable`, instead of stopping the whole read.
"""

from __future__ import annotations

import codecs
import collections
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import chain, islice
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


_UTF16_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
               b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def refuse_wide_text(path: str | Path) -> None:
    """Refuse a text file in UTF-16 or UTF-32 (a byte-order mark, or NUL bytes in much of its
    head): read as UTF-8, its every other byte is a NUL, and each row would be classified as
    NUL-filled garbage instead of being refused. Spreadsheet programs write such files ("Unicode
    text")."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return  # the reader that follows says what is wrong
    found = next((enc for bom, enc in _UTF16_BOMS.items() if head.startswith(bom)), None)
    if found is None and head and head.count(0) > len(head) // 10:
        found = "UTF-16 or UTF-32 (NUL bytes in much of it)"
    if found:
        raise BatchInputError(
            f"{path} is {found} text, not UTF-8; convert it first, e.g. `iconv -f UTF-16 -t UTF-8 "
            f"{Path(path).name} > utf8.{Path(path).suffix.lstrip('.') or 'csv'}`, or save it as "
            "'CSV UTF-8' from the spreadsheet program")


def count_csv_records(path: str | Path) -> int:
    """The number of records in a CSV file after its header, counting the newlines outside quoted
    fields (a complaint's own line breaks are not rows) and skipping blank lines, as the reader
    does. An estimate only where a quote stands in the middle of an unquoted field."""
    import numpy as np

    records, quoted, last = 0, 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 << 20), b""):
            if not quoted and b'"' not in block:  # the common fast case
                records += block.count(b"\n") - block.count(b"\n\n") - block.count(b"\n\r\n") \
                    - (last == b"\n" and block[:1] == b"\n")
                last = block[-1:]
                continue
            a = np.frombuffer(block, dtype=np.uint8)
            quotes = np.flatnonzero(a == 34)
            newlines = np.flatnonzero(a == 10)
            # a newline outside quotes has an even number of quotes before it (quotes before
            # this block included); positions, not a running XOR over every byte (3x faster)
            ends = newlines[(np.searchsorted(quotes, newlines) + quoted) % 2 == 0]
            if len(ends):
                prev = np.concatenate(([-1], ends[:-1]))
                empty = ends - prev == 1
                empty[0] = empty[0] and last == b"\n"
                records += len(ends) - int(np.count_nonzero(empty))
            quoted = (quoted + len(quotes)) % 2
            last = block[-1:]
    records += last not in (b"\n", b"")  # a last record without its newline
    return max(records - 1, 0)  # the header


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


def _open_csv(path: str | Path, *, strict: bool = False):
    """(file, csv reader) for a CSV/TSV file: UTF-8 with undecodable bytes kept as surrogate
    escapes, no limit on a field's size (a complaint may be long)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    fh = open(require_file(path), encoding="utf-8", errors="surrogateescape", newline="")
    return fh, csv.reader(fh, delimiter=csv_delimiter(path), strict=strict)


class LineLog:
    """The physical lines of a CSV source, fed to ``csv.reader`` a list at a time and kept from
    :attr:`keep_from` (a count of lines: the start of the record, or of the block, being read),
    so that what the reader read since can be given back as it stood (a record that fails to
    parse; a chunk's text, ``batch.inputs._reader_blocks``). ``csv.reader`` takes one line at a time,
    only as its record needs, so the lines of a record are those between its ``line_num``
    before and after. (A generator that recorded each line cost 1.3 us a row: a Python frame per
    line; here a line costs only C.)"""

    _BLOCK = 512

    def __init__(self, lines):
        self._source = iter(lines)
        self._blocks: collections.deque = collections.deque()  # (count of lines before it, lines)
        self._read = 0
        self.keep_from = 0

    def lines(self) -> Iterator[str]:
        return chain.from_iterable(self._next_blocks())

    def _next_blocks(self) -> Iterator[list[str]]:
        while True:
            block = list(islice(self._source, self._BLOCK))
            if not block:
                return
            blocks = self._blocks
            while blocks and blocks[0][0] + len(blocks[0][1]) <= self.keep_from:
                blocks.popleft()
            blocks.append((self._read, block))
            self._read += len(block)
            yield block

    def taken(self, first: int, end: int) -> list[str]:
        """The lines from ``first`` to ``end`` (counts from the source's start)."""
        out = []
        for start, block in self._blocks:
            out += block[max(first - start, 0):max(end - start, 0)]
        return out


def _column_names(header: list[str], path: str | Path) -> list[str]:
    return check_column_names([h.lstrip("\ufeff").strip() for h in header], path)


def csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV/TSV file (``[]`` when it is empty), BOM and spaces stripped; a
    name given twice is an error."""
    fh, reader = _open_csv(path)
    with fh:
        return _column_names(next(reader, []), path)


def open_csv_body(path: str | Path):
    """``(file, header names, header lines, delimiter)``: a CSV/TSV file opened as every reader
    here opens it, read up to the end of its header (``header names`` is None for an empty file).
    The file is left where the rows start: :func:`csv_records` reads them."""
    fh, reader = _open_csv(path, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return fh, None, reader.line_num, csv_delimiter(path)
    except BaseException:
        fh.close()
        raise
    return fh, _column_names(header, path), reader.line_num, csv_delimiter(path)


def _iter_csv(path: Path) -> Iterator[dict]:
    fh, header, line0, delimiter = open_csv_body(path)
    with fh:
        if header is not None:
            yield from csv_records(fh, header, delimiter=delimiter, line0=line0)


def csv_records(lines, header: list[str], *, delimiter: str = ",", line0: int = 0) -> Iterator[dict]:
    """The rows of CSV ``lines`` (the physical lines after the header, as a file opened with
    ``newline=""`` gives them) as :func:`iter_rows` yields them, numbered from ``line0 + 1``.
    Also reads a part of a file cut at a record's end (``lapor_nlp.batch`` chunks): the rows and
    line numbers are those that reading the whole file gives."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a complaint may be long (also in a worker)
    log = LineLog(lines)
    reader = csv.reader(log.lines(), delimiter=delimiter, strict=True)
    n = len(header)
    start = line0 + 1
    while True:
        log.keep_from = before = reader.line_num
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield {LINE: start, ERROR: f"malformed CSV: {exc}", RAW: _raw(log.taken(before, reader.line_num))}
            start = line0 + reader.line_num + 1
            continue
        if not values:
            start = line0 + reader.line_num + 1
            continue
        if len(values) != n:
            yield {LINE: start, ERROR: f"malformed CSV: {len(values)} fields, header has {n}",
                   RAW: _raw(log.taken(before, reader.line_num))}
        else:
            row = dict(zip(header, values))
            row[LINE] = start
            yield row
        start = line0 + reader.line_num + 1


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
