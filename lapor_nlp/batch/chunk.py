"""One chunk of rows -> its output part, its rejects part and its meta record.

:func:`run_chunk` is the unit of work every executor runs (in this process, in a worker process,
on a Dask worker): it classifies the chunk's rows, formats both parts with the run's writers, and
counts what happened in the meta record that the run adds up and checks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from ..columns import Columns, reason_kind
from ..io import ERROR, LINE, RAW
from ..gc_pause import gc_paused
from .formats import OutputFormat, RejectsFormat
from .inputs import CsvBlock, Header, KeysPerRow
from .rows import location_columns, predict_values, prediction_names, row_item
from .workdir import PartFiles


@dataclass
class ChunkSpec:
    """What a worker needs besides the rows (small, sent once per worker or task)."""

    columns: Columns
    output: OutputFormat               # the output format's writer
    rejects: RejectsFormat             # the rejects format's writer
    prefix: str
    layout: Header | KeysPerRow        # the input's columns: a header, or each JSON line's keys
    parts: PartFiles | None = None     # set: the worker writes the part files itself
    router_options: dict = field(default_factory=dict)  # Router.load options (home_region)


def run_chunk(router, spec: ChunkSpec, index: int, rows) -> tuple[dict, bytes | None, bytes | None]:
    """Classify one chunk (a list of rows, or a :class:`~lapor_nlp.batch.inputs.CsvBlock` read
    here) and format its output and rejects parts.

    With ``spec.parts`` set the parts are written there (returns ``(meta, None, None)``);
    otherwise their bytes are returned for the caller to write. The whole chunk is one batch for
    the collector (the router's pause: young collections every 10,000 allocations, not 700), since
    its rows, items and output lines all live until the chunk is written; with the reading in the
    same pause (``run._Job.run``), 140 young collections instead of 979 for 200,000 rows."""
    with gc_paused():
        return _run_chunk(router, spec, index, rows)


def _run_chunk(router, spec: ChunkSpec, index: int, rows) -> tuple[dict, bytes | None, bytes | None]:
    n = len(rows)
    table = block = None  # the chunk's Arrow table, when Arrow read it (a CSV block, LAPOR_NLP_ARROW=1)
    if isinstance(rows, CsvBlock):
        block = rows
        rows, table = block.read()
    pred_set = set(prediction_names(spec.prefix))
    keys_per_row = spec.layout.keys_per_row
    keep, items, rejects = [], [], []
    location = location_columns(spec.columns)
    for row in rows:
        line = row.pop(LINE)
        if ERROR in row:  # a line that could not be parsed: its raw text goes to the rejects file
            rejects.append((line, row[ERROR], {RAW: row.get(RAW)}))
            continue
        if keys_per_row and not pred_set.isdisjoint(row):  # a header was checked once, up front
            clash = ", ".join(sorted(pred_set.intersection(row)))
            rejects.append((line, f"column(s) {clash} clash with prediction columns", row))
            continue
        item, reason = row_item(row, spec.columns, utf8=table is not None, location=location)
        if reason:
            rejects.append((line, reason, row))
        else:
            keep.append((line, row))
            items.append(item)
    preds = predict_values(router, items)
    out_rows, out_preds = [], []
    agencies: collections.Counter = collections.Counter()
    review = 0
    version = getattr(router, "version", None)
    for (line, row), vals in zip(keep, preds):
        if isinstance(vals, str):
            rejects.append((line, vals, row))
            continue
        out_rows.append(row)
        out_preds.append(vals)
        if vals[2] is not None:
            agencies[vals[2]] += 1
        review += vals[5]
    if table is not None and rejects and not block.lines_known:
        # the rows of an Arrow-read block carry their index in it until a line number is needed
        lines = block.first_lines(table)
        if lines is None:  # blank lines among multi-line records: the row reader numbers them
            return _run_chunk(router, spec, index, block.rows())
        rejects = [(lines[i], reason, row) for i, reason, row in rejects]
    rejects.sort(key=lambda r: r[0])

    meta = {"index": index, "rows": n, "written": len(out_rows), "rejected": len(rejects),
            "needs_review": review,
            "agencies": dict(agencies), "model_version": version,
            "reasons": dict(collections.Counter(reason_kind(r[1]) for r in rejects))}
    meta["columns"] = cols = spec.layout.columns(out_rows)
    data, extra = spec.output.part(cols, out_rows, out_preds)
    meta.update(extra)
    meta["reject_columns"] = rcols = spec.layout.reject_columns(r[2] for r in rejects)
    rdata, extra = spec.rejects.part(rcols, rejects)
    meta.update(extra)

    if spec.parts is None:
        return meta, data, rdata
    spec.parts.write(meta, data, rdata)
    return meta, None, None
