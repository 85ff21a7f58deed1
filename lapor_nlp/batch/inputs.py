"""What a backlog file holds before any row is classified, and reading it in chunks.

A file's columns come in one of two shapes: a :class:`Header` (CSV header, Parquet schema: every
row has the same columns) or :class:`KeysPerRow` (JSON Lines: each line has its own keys, so a
line may lack a column or add one). The shape decides which columns a part is written under and
whether a row's own keys must be checked against the prediction columns' names.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..columns import Columns
from ..errors import BatchInputError
from ..io import (
    ERROR, LINE, RAW, LineLog, check_column_names, count_csv_records, csv_header, csv_records, iter_rows,
    open_csv_body,
)
from .arrow import arrow_enabled, line_breaks, read_block, text_length


def union_keys(rows) -> list[str]:
    """Every key of ``rows``, in order of first appearance."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in seen:
                seen[k] = None
    return list(seen)


class Header:
    """Every row has the columns the file's header (or Parquet schema) names."""

    keys_per_row = False

    def __init__(self, names: list[str]):
        self.names = names

    def columns(self, rows) -> list[str]:
        return self.names

    def reject_columns(self, rows) -> list[str]:
        return self.names

    def joined(self, part_columns: list[list[str]]) -> list[str]:
        return list(self.names)


class KeysPerRow:
    """Each row (JSON line) has its own keys: a part's columns are its rows' keys in order of
    first appearance, and the joined file's columns those of all its parts."""

    keys_per_row = True

    def columns(self, rows) -> list[str]:
        return union_keys(rows)

    def reject_columns(self, rows) -> list[str]:
        # the raw text of a line that could not be parsed has a column of its own in a rejects file
        return [k for k in union_keys(rows) if k != RAW]

    def joined(self, part_columns: list[list[str]]) -> list[str]:
        return union_keys(part_columns)


@dataclass
class InputFile:
    """A backlog file as classify_file sees it before reading its rows."""

    path: Path
    fmt: str
    layout: Header | KeysPerRow
    arrow_schema: Any = None  # a Parquet file's schema (its columns keep their types in Parquet output)

    @classmethod
    def open(cls, path: Path, fmt: str) -> InputFile:
        if fmt == "csv":
            return cls(path, fmt, Header(csv_header(path)))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            schema = pq.ParquetFile(path).schema_arrow
            return cls(path, fmt, Header(check_column_names(list(schema.names), path)), schema)
        return cls(path, fmt, KeysPerRow())

    def known_columns(self) -> list[str]:
        """The header's names, or the first parsable JSON line's keys."""
        if not self.layout.keys_per_row:
            return self.layout.names
        for row in iter_rows(self.path, "jsonl"):
            if ERROR not in row:
                return [k for k in row if k != LINE]
        return []

    def check_columns(self, columns: Columns, known: list[str]) -> None:
        """Refuse, before any work, a text column the file lacks, and (where a header lists every
        column) any other named column it lacks."""
        if known and columns.text not in known:
            raise BatchInputError(
                f"{self.path}: text column {columns.text!r} not found; the file has "
                f"{', '.join(map(repr, known))}. Name it with --text-col.")
        if self.layout.keys_per_row:  # a JSON line may lack an optional column that others have
            return
        names = self.layout.names
        missing = {f"--{name}-col": col for name, col in columns.optional().items() if col not in names}
        if missing:
            raise BatchInputError(
                f"{self.path}: column(s) not found: {', '.join(f'{o} {c!r}' for o, c in missing.items())}; "
                f"the file has {', '.join(map(repr, names))}")

    def chunks(self, size: int, *, blocks: bool = False):
        """The rows, ``size`` at a time, in input order (see :func:`lapor_nlp.io.iter_rows`). A CSV
        file's chunks are :class:`CsvBlock` s (its text, read by the worker) where Arrow is used,
        or where ``blocks`` asks for them: worker processes then parse their own rows, and this
        process only cuts the file (one ``csv.reader`` pass in C) and sends each block as one
        string instead of pickling its rows."""
        if self.fmt == "csv" and (blocks or arrow_enabled()):
            yield from csv_blocks(self.path, size)
            return
        buf = []
        for row in iter_rows(self.path, self.fmt):
            buf.append(row)
            if len(buf) >= size:
                yield buf
                buf = []
        if buf:
            yield buf

    def estimate_rows(self) -> int | None:
        """A cheap row count for the progress bar (exact for Parquet; CSV records, whose quoted
        line breaks are not rows; JSON lines); None for very large files, where counting would
        cost more than the estimate is worth."""
        path, fmt = self.path, self.fmt
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetFile(path).metadata.num_rows
            if path.stat().st_size > (4 << 30):
                return None
            if fmt == "csv":
                return count_csv_records(path)
            n, last = 0, b"\n"
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(8 << 20), b""):
                    n += block.count(b"\n")
                    last = block[-1:]
            n += last != b"\n"
            return max(n - (fmt == "csv"), 0)
        except OSError:
            return None


# -- CSV chunks as text: cut by the row reader, parsed by Arrow in the worker ----------------------
@dataclass
class CsvBlock:
    """A chunk of a CSV file as its text: the physical lines of ``records`` records (blank lines
    among them included), cut where the row reader (:func:`lapor_nlp.io.csv_records`) ends a record,
    so that the chunks and their rows are those of the row reader whichever way a block is read.

    ``clean``: every record had the header's number of fields (no malformed line), holding
    ``chars`` characters in all. Only a clean block is read with Arrow (:meth:`read`), and only
    when Arrow's table has the same rows and characters; anything else is read by the row reader.
    A block is one string for a worker, cheaper to send than the rows; or, cut from the file's
    bytes, only where it lies in the file (``text`` None: ``path``, ``start``, ``end``), which the
    worker reads itself (:meth:`read_text`), so that the parent neither decodes nor sends it.
    ``stamp`` is the file's (size, modification time, inode) when it was cut: a file changed since
    is refused, not read at offsets that no longer hold the records counted."""

    text: str | None
    header: list[str]
    delimiter: str
    line0: int      # physical lines of the file before the block's first one
    records: int
    clean: bool
    chars: int
    lines_known: bool = True  # see read()
    path: str | None = None
    start: int = 0
    end: int = 0
    stamp: tuple | None = None

    def __len__(self) -> int:
        return self.records

    def read_text(self) -> str:
        """The block's text (read from the file, once, for a block cut from its bytes)."""
        if self.text is None:
            with open(self.path, "rb") as fh:
                same = _stamp(fh) == self.stamp
                fh.seek(self.start)
                data = fh.read(self.end - self.start) if same else b""
            if len(data) != self.end - self.start:
                raise BatchInputError(f"{self.path} changed while it was being classified; run "
                                      "again on a file that stays as it is")
            self.text = data.decode("utf-8", "surrogateescape")
        return self.text

    def rows(self) -> list[dict]:
        """The rows as :func:`lapor_nlp.io.iter_rows` yields them (line numbers of the whole file)."""
        return list(csv_records(io.StringIO(self.read_text(), newline=""), self.header,
                                delimiter=self.delimiter, line0=self.line0))

    def read(self):
        """``(rows, table)``: the rows (as :meth:`rows`), and their Arrow table when Arrow read
        them (else None). Then, unless :attr:`lines_known`, a row's ``__line__`` holds its index
        in the block, and :meth:`first_lines` gives the line numbers (needed for rejects only:
        counting the line breaks in every value costs more than reading the block)."""
        self.lines_known = True
        data = self._utf8()
        table = self._table(data) if data is not None else None
        if table is None:
            return self.rows(), None
        first = self.line0 + 1
        breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
        physical = breaks + (not data.endswith((b"\n", b"\r")))
        lines = range(first, first + self.records)
        if physical != self.records:  # records over several lines, or blank lines
            self.lines_known = False
            lines = range(self.records)
        keys = [*self.header, LINE]
        values = [col.to_pylist() for col in table.columns]
        return [dict(zip(keys, v)) for v in zip(*values, lines)], table

    def _utf8(self) -> bytes | None:
        if not (self.clean and arrow_enabled()):
            return None
        try:
            return self.read_text().encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8: the row reader rejects their rows
            return None

    def _table(self, data: bytes):
        table = read_block(data, self.header, self.delimiter)
        if table is None or table.num_rows != self.records or text_length(table) != self.chars:
            return None
        return table

    def first_lines(self, table) -> list[int] | None:
        """Each record's first physical line, from the line breaks in its values; None when the
        block has blank lines (then only the row reader can number its records)."""
        import numpy as np

        data = self.read_text()
        physical = data.count("\n") + data.count("\r") - data.count("\r\n") \
            + (not data.endswith(("\n", "\r")))
        inner = line_breaks(table)
        if self.records + int(inner.sum()) != physical:
            return None
        first = self.line0 + 1
        return (inner.cumsum() - inner + np.arange(first, first + self.records)).tolist()


def csv_blocks(path: Path, size: int):
    """The CSV file's :class:`CsvBlock` s, ``size`` records each (the last one fewer), cut where
    the row reader ends a record. Cut from the file's bytes (:func:`_record_ends`) while that is
    provably the row reader's cut, by the row reader itself from the first stretch where it is not,
    and always by the row reader where Arrow reads the blocks (it needs each block's field counts)."""
    fh, header, line0, delimiter = open_csv_body(path)
    with fh:
        if header is None:
            return
        if arrow_enabled():
            yield from _reader_blocks(fh, header, delimiter, line0, size)
            return
    yield from _byte_blocks(path, header, delimiter, line0, size)


def _reader_blocks(fh, header: list[str], delimiter: str, line0: int, size: int):
    """:func:`csv_blocks` cut by ``csv.reader`` from ``fh`` (text, ``newline=""``, at the start of
    a record ``line0`` physical lines into the file)."""
    # The reader takes its lines from a LineLog, and its line_num says which of them a block's
    # records used: no Python call per line.
    log = LineLog(fh)
    reader = csv.reader(log.lines(), delimiter=delimiter, strict=True)
    n = len(header)
    done = 0  # lines of the body given to earlier blocks
    records, chars, clean = 0, 0, True
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error:
            records += 1
            clean = False
        else:
            if not values:  # a blank line: no record
                continue
            records += 1
            if len(values) == n:
                chars += sum(map(len, values))
            else:
                clean = False
        if records >= size:
            text = "".join(log.taken(done, reader.line_num))
            yield CsvBlock(text, header, delimiter, line0 + done, records, clean, chars)
            done = log.keep_from = reader.line_num
            records, chars, clean = 0, 0, True
    if records:
        yield CsvBlock("".join(log.taken(done, reader.line_num)), header, delimiter, line0 + done, records,
                       clean, chars)


# Bytes read at a time by _byte_blocks.
_READ = 4 << 20


def _byte_blocks(path: Path, header: list[str], delimiter: str, line0: int, size: int):
    """:func:`csv_blocks` cut from the bytes: three comparisons over each read and work on the
    positions of its quotes and line breaks, instead of parsing every field in the parent process
    (which competes with the workers for the cores). Records are cut only where
    :func:`_record_ends` proves that the row reader ends them there; from the first stretch where it
    cannot (a quote inside an unquoted field, a NUL, an unclosed quote, or no provable record end
    within ``2 * _READ`` bytes), the row reader cuts the rest of the file. Each byte is scanned
    once (the bytes after the last proved record end, normally less than a record, again with the
    next read), and a block is given by where it lies in the file (its worker reads it). The
    blocks' text, first lines and record counts are the row reader's either way
    (tests/test_csv_blocks.py compares them on files with every such trouble)."""
    import numpy as np

    with open(path, "rb") as raw:
        stamp = _stamp(raw)
        cut = _body_offset(raw, line0)  # where the next block starts (a file offset): a record's start
        raw.seek(cut)
        done = cut
        tail = b""  # the bytes read after ``done``
        stops: list[int] = []  # the record ends after ``cut`` (file offsets)
        line_parts: list = []  # the physical line ends after ``cut`` (file offsets), in arrays
        eof = False
        while not eof:
            more = raw.read(_READ)
            eof = not more
            data = tail + more
            found = _record_ends(data, ord(delimiter), eof)
            if found is not None:
                ends, line_ends = found
                limit = len(data) if eof else int(ends[-1]) if len(ends) else 0
                if len(data) - limit > 2 * _READ:
                    found = None  # no record end in sight (a stray or unclosed quote?): stop scanning
            if found is None:  # not provably the reader's cut: the reader cuts the rest
                raw.seek(cut)
                text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
                yield from _reader_blocks(text, header, delimiter, line0, size)
                return
            stops += (ends + done).tolist()
            line_parts.append(line_ends[line_ends < limit] + done)
            tail = data[limit:]
            done += limit
            if len(stops) < size and not (eof and stops):
                continue
            lines = np.concatenate(line_parts)
            first = 0  # blocks take their records from stops[first:]
            while len(stops) - first >= size or (eof and len(stops) > first):
                # a full block ends at its last record; the last one, at the end of the file
                n = min(size, len(stops) - first)
                end = stops[first + n - 1] if n == size else done
                # where it lies, not its text: the worker reads it (CsvBlock.read_text)
                yield CsvBlock(None, header, delimiter, line0, n, False, 0, path=str(path), start=cut,
                               end=end, stamp=stamp)
                passed = int(np.searchsorted(lines, end))  # the line ends before ``end``
                line0 += passed
                lines = lines[passed:]
                first += n
                cut = end
            line_parts = [lines]
            del stops[:first]


def _stamp(fh) -> tuple:
    """What says a file is the one cut: its size, modification time and inode."""
    st = os.fstat(fh.fileno())
    return st.st_size, st.st_mtime_ns, st.st_ino


def _record_ends(data: bytes, delimiter: int, eof: bool):
    """``(record stops, line ends)`` of ``data``, which starts at a record boundary: the offset
    just after each record that the row reader (``csv.reader``, strict, on ``newline=""`` lines)
    would read, blank lines left out, and the offset of each physical line's last byte; without
    ``eof`` only what the bytes read so far decide. None when quote parity cannot prove the cut.

    Parity gives the reader's cut when every quote is where the reader treats it as a quote: one
    that opens a field stands at a record's or field's start (after a line end or a delimiter, or
    right after a closing quote: a doubled ``""``), and one that closes it is followed by a
    delimiter, a line end or a quote (the doubled one), or ends the data. A quote elsewhere is
    text to the reader (inside an unquoted field) or an error (strict), and an unclosed quote at
    the end runs to the end of the file: neither is proved. Nor is a NUL byte (an error to the
    reader of Pythons before 3.11; left to the reader rather than reasoned about). Three
    comparisons run over the bytes; the rest works on the positions of quotes and line breaks (a
    few per hundred bytes)."""
    import numpy as np

    a = np.frombuffer(data, np.uint8)
    n = len(a)
    nl = np.flatnonzero(a == 10)
    cr = np.flatnonzero(a == 13)
    quotes = np.flatnonzero(a == 34)
    # a physical line ends at "\n", and at a "\r" that no "\n" follows (at the end of the data:
    # only at the end of the file; before, the next read decides)
    known = cr + 1 < n
    lone = np.zeros(len(cr), bool)
    lone[known] = a[cr[known] + 1] != 10
    lone[~known] = eof
    lines = np.union1d(nl, cr[lone])
    ends = lines[np.searchsorted(quotes, lines) % 2 == 0]  # outside quotes: a record's end
    if eof:
        if len(quotes) % 2:
            return None  # an unclosed quote runs to the end of the file: an error to the reader
        limit = n
    else:  # up to the last record end read; the rest waits for the next read
        limit = int(ends[-1]) + 1 if len(ends) else 0
    if data.find(b"\0", 0, limit) >= 0:
        return None
    q = quotes[quotes < limit]
    if len(q):
        opening, closing = q[0::2], q[1::2]
        if not np.isin(a[opening[opening > 0] - 1], (delimiter, 10, 13, 34)).all():
            return None
        after = closing + 1
        if not np.isin(a[after[after < limit]], (delimiter, 10, 13, 34)).all():
            return None
    stops = ends + 1
    content_end = ends - ((a[ends] == 10) & (ends > 0) & (a[np.maximum(ends - 1, 0)] == 13))
    if eof and limit and (not len(ends) or ends[-1] != limit - 1):  # a last line without a line end
        stops = np.append(stops, limit)
        content_end = np.append(content_end, limit)
    starts = np.concatenate(([0], stops[:-1])) if len(stops) else stops
    # a blank line (nothing before its line end since the last record) is no record
    return stops[content_end > starts].astype(np.int64), lines


def _body_offset(raw, line0: int) -> int:
    """The byte offset after the first ``line0`` physical lines of the file (its header's); each
    byte is searched once, however long the header."""
    raw.seek(0)
    head = bytearray()
    pos, scan, lines, eof = 0, 0, 0, False  # no line break in head[pos:scan]
    while lines < line0:
        nl, cr = head.find(b"\n", scan), head.find(b"\r", scan)
        if cr >= 0 and (nl < 0 or cr < nl):
            if cr + 1 < len(head) or eof:  # the byte after a "\r" says whether it is "\r\n"
                pos = scan = cr + 2 if head[cr + 1:cr + 2] == b"\n" else cr + 1
                lines += 1
                continue
            scan = cr
        elif nl >= 0:
            pos = scan = nl + 1
            lines += 1
            continue
        elif eof:
            return len(head)
        else:
            scan = len(head)
        more = raw.read(1 << 16)
        eof = not more
        head += more
    return pos
