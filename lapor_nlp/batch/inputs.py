"""What a backlog file holds before any row is classified, and reading it in chunks.

A file's columns come in one of two shapes: a :class:`Header` (CSV header, Parquet schema: every
row has the same columns) or :class:`KeysPerRow` (JSON Lines: each line has its own keys, so a
line may lack a column or add one). The shape decides which columns a part is written under and
whether a row's own keys must be checked against the prediction columns' names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..columns import Columns
from ..errors import BatchInputError
from ..io import ERROR, LINE, RAW, check_column_names, csv_header, iter_rows


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

    def chunks(self, size: int):
        """The rows, ``size`` at a time, in input order (see :func:`lapor_nlp.io.iter_rows`)."""
        buf = []
        for row in iter_rows(self.path, self.fmt):
            buf.append(row)
            if len(buf) >= size:
                yield buf
                buf = []
        if buf:
            yield buf

    def estimate_rows(self) -> int | None:
        """A cheap row count for the progress bar (newlines; exact for Parquet); None for very
        large files, where counting would cost more than the estimate is worth."""
        path, fmt = self.path, self.fmt
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetFile(path).metadata.num_rows
            if path.stat().st_size > (4 << 30):
                return None
            n, last = 0, b"\n"
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(8 << 20), b""):
                    n += block.count(b"\n")
                    last = block[-1:]
            n += last != b"\n"
            return max(n - (fmt == "csv"), 0)
        except OSError:
            return None
