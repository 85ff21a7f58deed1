"""How classified rows and rejected rows are written: one writer object per output format (CSV,
JSON Lines, Parquet) and per rejects format (CSV, JSON Lines), chosen once per run.

A writer turns one chunk into a *part* (bytes, so that a worker can write it or send it back) plus
what its meta record must remember to join it later, and joins the parts, in input order, into the
final file. The parts of one run can differ in columns (JSON lines each have their own keys): a
join then lays every part out under the union of their columns.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import date, datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..io import RAW, RAW_ERRORS
from .rows import PRED_KINDS, prediction_names

# The rejects file: the input line number and the reason, the row's columns, and last the text
# of a line that could not be parsed at all (empty for a row that was parsed).
REJECT_LEAD = ("line", "reason")
REJECT_RAW = "raw_record"
REJECT_CLASH_PREFIX = "reject_"

__all__ = ["CsvOutput", "CsvRejects", "JsonlOutput", "JsonlRejects", "OutputFormat", "ParquetOutput",
           "RejectsFormat", "cell", "csv_columns_text", "output_format", "reject_header", "rejects_format"]


def cell(v) -> str:
    """One input value as CSV text: nested JSON values as JSON, dates as ISO, bytes as they came."""
    if v is None:
        return ""
    if v.__class__ is str:
        return v
    if isinstance(v, float) and v != v:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "surrogateescape")
    return str(v)


def _pred_columns(preds: list[tuple]) -> list[list[str]]:
    """The prediction values of a chunk (one tuple a row) as CSV text, column by column."""
    topic, ts, agency, ags, routed, review, reasons, version = map(list, zip(*preds))

    def text(col: list) -> list[str]:
        return ["" if v is None else v for v in col] if None in col else col

    def number(col: list) -> list[str]:
        return ["" if v is None else repr(v) for v in col] if None in col else list(map(repr, col))

    return [text(topic), number(ts), text(agency), number(ags), text(routed),
            ["True" if v else "False" for v in review], reasons, text(version)]


def reject_header(columns) -> tuple[list[str], str]:
    """The CSV rejects file's own column names (``line``, ``reason`` and ``raw_record``), each
    prefixed with ``reject_`` (again, if need be) while an input column has one of those names:
    a header that named a column twice could not be read back."""
    cols = set(columns)
    names = [*REJECT_LEAD, REJECT_RAW]
    while cols.intersection(names):
        names = [REJECT_CLASH_PREFIX + n for n in names]
    return names[:-1], names[-1]


def _csv_part(header: list[str], body: list[list]) -> tuple[str, int]:
    """The CSV text of ``header`` and ``body`` and the header's length in bytes."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    head = buf.getvalue()
    hlen = len(head.encode("utf-8", "surrogateescape"))
    w.writerows(body)
    return buf.getvalue(), hlen


@lru_cache(maxsize=1)
def _quoting() -> str | None:
    """The characters that make ``csv.writer(lineterminator="\\n")`` (QUOTE_MINIMAL) quote a
    field, asked of the running Python's ``csv`` itself; None when :func:`csv_text` does not give
    its bytes on a sample of awkward cells (then ``csv.writer`` is used)."""
    chars = ""
    for ch in ',"\n\r\t ;|\\\x00\x0b\x0c\u2028\'':
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([f"a{ch}b", "z"])
        if buf.getvalue().startswith('"'):
            chars += ch
    sample = [["", "a", 'say "hi"', "x,y", "a\nb", "a\r\nb", "\rz", " lead", "trail ", "é", "\t", '"', "\udcff"],
              [""], ["", ""], ['""', ",", "\n"]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(sample)
    return chars if chars and _lines(sample, chars) == buf.getvalue() else None


def _quote(v: str) -> str:
    return '"' + v.replace('"', '""') + '"'


def _quote_test(chars: str):
    """Whether a cell holds one of ``chars`` (the characters that make ``csv.writer`` quote)."""
    if chars == ',"\n':  # CPython's: three `in` tests are faster than a regex search
        return lambda v: '"' in v or "," in v or "\n" in v
    return re.compile("[" + re.escape(chars) + "]").search


def _lines(rows, chars: str) -> str:
    needs = _quote_test(chars)
    lines = [",".join([_quote(v) if needs(v) else v for v in row]) for row in rows]
    # csv.writer writes a row of one empty field as "" (an empty line would be no row)
    return "".join([(line if line or len(row) != 1 else '""') + "\n" for line, row in zip(lines, rows)])


def csv_text(rows: list[list[str]]) -> str:
    """``csv.writer(lineterminator="\\n").writerows(rows)`` for cells that are all ``str``: the
    same text from joins instead of the writer's character-by-character copy (rows of any length;
    :func:`csv_columns_text` is the faster writer of a chunk's columns)."""
    chars = _quoting()
    if chars is None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue()
    return _lines(rows, chars)


def csv_columns_text(columns: list[list[str]]) -> str:
    """:func:`csv_text` of the rows ``zip(*columns)`` (columns of ``str``, of one length), the
    same text in two thirds of the time for a chunk of the classify output: whether a column
    needs quoting at all is asked of the whole column at once (three scans of its cells joined,
    in C), so that only the columns that can hold a comma, a quote or a newline (the text, an
    address) are tested cell by cell."""
    chars = _quoting()
    if chars is None or len(columns) < 2:  # (a row of one empty field is written '""')
        return csv_text([list(r) for r in zip(*columns)])
    needs = _quote_test(chars)
    quoted = []
    for col in columns:
        if needs("\x00".join(col)):  # (a NUL that quotes only costs the cell-by-cell test)
            col = [_quote(v) if needs(v) else v for v in col]
        quoted.append(col)
    return "".join([",".join(row) + "\n" for row in zip(*quoted)])


def _concat(dest: Path, paths: list[Path]) -> None:
    with open(dest, "wb") as out:
        for path in paths:
            with open(path, "rb") as fh:
                shutil.copyfileobj(fh, out)


def _join_csv(out, items, lead: list[str], cols: list[str], tail: list[str], surrogates: bool = False) -> None:
    """Write the header ``lead + cols + tail``, then each part ``(path, its columns, header
    bytes)``: copied past its header when it has ``cols``, else rewritten under them."""
    errors = "surrogateescape" if surrogates else "strict"
    write_errors = RAW_ERRORS if surrogates else "strict"
    header = lead + cols + tail
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header)
    out.write(buf.getvalue().encode("utf-8", write_errors))
    for path, pcols, hbytes in items:
        if list(pcols) == list(cols):
            with open(path, "rb") as fh:
                fh.seek(hbytes)
                shutil.copyfileobj(fh, out, 1 << 20)
            continue
        # this part has fewer/other columns (JSON Lines input): rewrite it under the full header.
        # A part's cells are laid out as lead + its columns + tail: read by position, since an
        # input column may have a lead or tail column's name.
        first, last = len(lead), len(lead) + len(pcols)
        with open(path, encoding="utf-8", errors=errors, newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for values in reader:
                d = dict(zip(pcols, values[first:last]))
                w.writerow(values[:first] + [d.get(c, "") for c in cols] + values[last:])
                if buf.tell() > (1 << 20):
                    out.write(buf.getvalue().encode("utf-8", write_errors))
                    buf.seek(0)
                    buf.truncate()
            out.write(buf.getvalue().encode("utf-8", write_errors))


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            n += block.count(b"\n")
    return n


# -- the output: input columns + prediction columns -----------------------------------------------
class OutputFormat:
    """An output format. ``part`` formats one chunk's classified rows (the input rows under
    ``columns`` and their prediction values) and returns ``(bytes, meta additions)``; ``join``
    writes the parts ``[(path, meta)]`` in order into ``dest`` under the run's ``columns``;
    ``count_rows`` counts a joined file's rows where that is cheap and exact (else None)."""

    name: str

    def __init__(self, prefix: str):
        self.pred_names = prediction_names(prefix)

    def count_rows(self, path: Path) -> int | None:
        return None


class CsvOutput(OutputFormat):
    name = "csv"

    def __init__(self, prefix: str, cells_are_text: bool = False):
        super().__init__(prefix)
        self.cells_are_text = cells_are_text  # CSV input: every value a str, every column present

    def part(self, columns: list[str], rows: list[dict], preds: list[tuple]) -> tuple[bytes, dict]:
        # Column by column (csv_columns_text); rows of a CSV input hold every column as text.
        if not rows:
            body = []
        elif self.cells_are_text and len(columns) > 1:
            body = [*zip(*map(itemgetter(*columns), rows)), *_pred_columns(preds)]
        else:
            body = [*([cell(r.get(c)) for r in rows] for c in columns), *_pred_columns(preds)]
        header = columns + self.pred_names
        text, hbytes = _csv_part(header, [])
        return (text + csv_columns_text(body)).encode("utf-8", "surrogateescape"), {"header_bytes": hbytes}

    def join(self, dest: Path, parts: list[tuple[Path, dict]], columns: list[str]) -> None:
        # CSV fields may hold newlines, so the rows are not counted here but per part.
        with open(dest, "wb") as out:
            _join_csv(out, [(p, m["columns"], m["header_bytes"]) for p, m in parts], [], columns,
                      self.pred_names)


class JsonlOutput(OutputFormat):
    name = "jsonl"

    def part(self, columns: list[str], rows: list[dict], preds: list[tuple]) -> tuple[bytes, dict]:
        names = self.pred_names
        data = "".join(json.dumps({**r, **dict(zip(names, p))}, ensure_ascii=False, default=cell) + "\n"
                       for r, p in zip(rows, preds)).encode("utf-8")
        return data, {}

    def join(self, dest: Path, parts: list[tuple[Path, dict]], columns: list[str]) -> None:
        _concat(dest, [p for p, _ in parts])

    def count_rows(self, path: Path) -> int | None:
        return _count_lines(path)


class ParquetOutput(OutputFormat):
    name = "parquet"

    def __init__(self, prefix: str, arrow_schema: Any = None):
        super().__init__(prefix)
        self.arrow_schema = arrow_schema  # a Parquet input's schema: its columns keep their types

    def schema(self, columns: list[str]):
        """The output's Arrow schema: the input columns (their own types for Parquet input, text
        otherwise), then the prediction columns."""
        import pyarrow as pa

        if self.arrow_schema is not None:
            in_fields = [self.arrow_schema.field(c) for c in columns]
        else:
            in_fields = [pa.field(c, pa.string()) for c in columns]
        arrow = {"str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
        pred_fields = [pa.field(n, arrow[k]) for n, k in zip(self.pred_names, PRED_KINDS.values())]
        return pa.schema(in_fields + pred_fields)

    def part(self, columns: list[str], rows: list[dict], preds: list[tuple]) -> tuple[bytes, dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.schema(columns)
        fields = list(schema)
        in_fields, pfields = fields[:len(columns)], fields[len(columns):]
        if self.arrow_schema is not None:
            arrays = [pa.array([r.get(c) for r in rows], type=f.type) for c, f in zip(columns, in_fields)]
        else:  # CSV / JSON Lines input: the input columns are text
            arrays = [pa.array([None if r.get(c) is None else cell(r.get(c)) for r in rows], type=pa.string())
                      for c in columns]
        arrays += [pa.array([p[i] for p in preds], type=f.type) for i, f in enumerate(pfields)]
        table = pa.Table.from_arrays(arrays, schema=schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes(), {}

    def join(self, dest: Path, parts: list[tuple[Path, dict]], columns: list[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.schema(columns)
        with pq.ParquetWriter(dest, schema) as writer:
            for path, _ in parts:
                table = pq.read_table(path)
                arrays = [table.column(f.name) if f.name in table.column_names
                          else pa.nulls(table.num_rows, type=f.type) for f in schema]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def count_rows(self, path: Path) -> int | None:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows


def output_format(name: str, prefix: str, *, in_fmt: str = "csv", arrow_schema: Any = None) -> OutputFormat:
    """The writer for output format ``name`` ("csv", "jsonl" or "parquet") of a run whose input
    is ``in_fmt`` (with ``arrow_schema`` for a Parquet input)."""
    if name == "csv":
        return CsvOutput(prefix, cells_are_text=in_fmt == "csv")
    if name == "jsonl":
        return JsonlOutput(prefix)
    return ParquetOutput(prefix, arrow_schema)


# -- the rejects: line, reason, the row's columns, the raw record ---------------------------------
class RejectsFormat:
    """A rejects format. ``part`` formats one chunk's rejected rows ``(line, reason, row)`` under
    ``columns`` and returns ``(bytes, meta additions)``; ``join`` writes the parts in order."""

    name: str


class CsvRejects(RejectsFormat):
    """A CSV output's rejects: a CSV a spreadsheet opens beside it, the rejected input written back
    byte for byte (undecodable bytes included)."""

    name = "csv"

    def part(self, columns: list[str], rejects: list[tuple[int, str, dict]]) -> tuple[bytes, dict]:
        body = [[line, reason] + [cell(raw.get(c)) for c in columns] + [raw.get(RAW) or ""]
                for line, reason, raw in rejects]
        text, hbytes = _csv_part([*REJECT_LEAD, *columns, REJECT_RAW], body)
        return text.encode("utf-8", RAW_ERRORS), {"reject_header_bytes": hbytes}

    def join(self, dest: Path, parts: list[tuple[Path, dict]], columns: list[str]) -> None:
        lead, raw = reject_header(columns)
        with open(dest, "wb") as out:
            _join_csv(out, [(p, m["reject_columns"], m["reject_header_bytes"]) for p, m in parts],
                      lead, columns, [raw], surrogates=True)


class JsonlRejects(RejectsFormat):
    """A JSON Lines or Parquet output's rejects: one JSON object per rejected row, the row (or the
    raw text of a line that could not be parsed) kept whole, in ASCII so any byte survives."""

    name = "jsonl"

    def part(self, columns: list[str], rejects: list[tuple[int, str, dict]]) -> tuple[bytes, dict]:
        data = "".join(json.dumps({"line": line, "reason": reason,
                                   "row": None if RAW in raw else raw, REJECT_RAW: raw.get(RAW)},
                                  default=cell) + "\n"
                       for line, reason, raw in rejects).encode("ascii")
        return data, {}

    def join(self, dest: Path, parts: list[tuple[Path, dict]], columns: list[str]) -> None:
        _concat(dest, [p for p, _ in parts])


def rejects_format(output_name: str) -> RejectsFormat:
    """The rejects writer for an output format: CSV beside CSV, JSON Lines otherwise (rejected rows
    may hold what typed Parquet columns cannot: a line never parsed, bytes that are not UTF-8)."""
    return CsvRejects() if output_name == "csv" else JsonlRejects()
