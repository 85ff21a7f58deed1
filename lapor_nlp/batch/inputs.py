"""What a backlog file holds before any row is classified, and reading it in chunks.

A file's columns come in one of two shapes: a :class:`Header` (CSV header, Parquet schema: every
row has the same columns) or :class:`KeysPerRow` (JSON Lines: each line has its own keys, so a
line may lack a column or add one). The shape decides which columns a part is written under and
whether a row's own keys must be checked against the prediction columns' names.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..columns import Columns
from ..errors import BatchInputError
from ..io import (
    ERROR, LINE, RAW, check_column_names, count_csv_records, csv_header, csv_records, iter_rows, open_csv_body,
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
    A block is one string for a worker, cheaper to send than the rows."""

    text: str
    header: list[str]
    delimiter: str
    line0: int      # physical lines of the file before the block's first one
    records: int
    clean: bool
    chars: int
    lines_known: bool = True  # see read()

    def __len__(self) -> int:
        return self.records

    def rows(self) -> list[dict]:
        """The rows as :func:`lapor_nlp.io.iter_rows` yields them (line numbers of the whole file)."""
        return list(csv_records(io.StringIO(self.text, newline=""), self.header,
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
            return self.text.encode("utf-8")
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

        data = self.text
        physical = data.count("\n") + data.count("\r") - data.count("\r\n") \
            + (not data.endswith(("\n", "\r")))
        inner = line_breaks(table)
        if self.records + int(inner.sum()) != physical:
            return None
        first = self.line0 + 1
        return (inner.cumsum() - inner + np.arange(first, first + self.records)).tolist()


def csv_blocks(path: Path, size: int):
    """The CSV file's :class:`CsvBlock` s, ``size`` records each (the last one fewer)."""
    fh, header, line0, delimiter = open_csv_body(path)
    with fh:
        if header is None:
            return
        # The reader takes its lines from ``store`` (filled a megabyte at a time), and its
        # line_num says which of them a block's records used: no Python call per line.
        store: list[str] = []

        def batches():
            while batch := fh.readlines(1 << 20):
                store.extend(batch)
                yield batch

        reader = csv.reader(itertools.chain.from_iterable(batches()), delimiter=delimiter, strict=True)
        n = len(header)
        done = 0  # lines of the body given to earlier blocks (store[0] is the next one)
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
                used = reader.line_num - done
                yield CsvBlock("".join(store[:used]), header, delimiter, line0 + done, records, clean, chars)
                del store[:used]
                done = reader.line_num
                records, chars, clean = 0, 0, True
        if records:
            yield CsvBlock("".join(store[:reader.line_num - done]), header, delimiter, line0 + done, records,
                           clean, chars)
