"""Re-classify a backlog file: CSV, JSON Lines or Parquet in, the same rows plus predictions out.

:func:`classify_file` streams the input in chunks of ``chunk_size`` rows, so memory stays bounded
whatever the input size; it keeps every input column, adds the prediction columns
(:data:`PRED_COLUMNS`) and writes the rows in input order.

Nothing is lost. A row that cannot be classified (no text, bytes that are not UTF-8, a malformed
line, a location field the complaint schema refuses) goes to ``OUTPUT.rejects.csv`` (or ``.jsonl``)
with its input line number and the reason, and the run checks ``rows read = rows written + rows
rejected`` before it reports success.

Crash safety. Each finished chunk is written into the work directory ``OUTPUT.parts/`` (data part,
rejects part, then a small ``.meta.json`` that marks the chunk done, each written to a temporary
name and renamed into place). ``manifest.json`` there records the input's identity (size, mtime,
sha256 of its first MiB) and the options, so that ``resume=True`` continues the same job and refuses
a different one. Only when every chunk is done are the parts joined, into a temporary file renamed
to OUTPUT: a partial OUTPUT never exists under its final name. Then the work directory is removed.

Parallelism. With ``jobs > 1`` the chunks go to a pool of worker processes started with the
``spawn`` method: each worker imports lapor-nlp afresh and loads the model once (pool initializer).
``spawn`` rather than ``fork`` on purpose: the caller may be a multi-threaded program (a progress
thread, a web app, a Dask client), and forking a process that holds other threads' locks can
deadlock the child; ``spawn`` also behaves the same on Linux, macOS and Windows. Its cost, about a
second per worker at start, is nothing next to a backlog. (As with any ``spawn`` pool, a script
calling :func:`classify_file` with ``jobs > 1`` needs the ``if __name__ == "__main__":`` guard.)
Workers format and write their own part files, so the parent only reads and dispatches. The same
chunks can run on a Dask cluster instead (``scheduler=`` / ``client=``, see
:mod:`lapor_nlp.distributed`): the workers there return the formatted parts and the client writes
them, so no shared file system is needed.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import io
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .errors import BatchCheckError, BatchInputError, InputTypeError, InputValueError
from .io import (
    ERROR, LINE, RAW, RAW_ERRORS, UNDECODABLE, check_column_names, csv_header, detect_format, iter_rows,
    require_file, undecodable,
)
from .training.data import Columns, _reason_kind, _value

#: The prediction columns in output order, each with its kind ("str", "float" or "bool"): the
#: Parquet (Arrow) and Dask (pandas) column types are derived from it.
PRED_KINDS = {"topic": "str", "topic_score": "float", "agency": "str", "agency_score": "float",
              "routed_to": "str", "needs_review": "bool", "review_reasons": "str", "model_version": "str"}
PRED_COLUMNS = tuple(PRED_KINDS)
AUTO_PREFIX = "pred_"
# The rejects file: the input line number and the reason, the row's columns, and last the text
# of a line that could not be parsed at all (empty for a row that was parsed).
REJECT_LEAD = ("line", "reason")
REJECT_RAW = "raw_record"
REJECT_CLASH_PREFIX = "reject_"
NO_TEXT = "no text"
MANIFEST_VERSION = 2  # 2: rejects parts end with raw_record
_HEAD_BYTES = 1 << 20


# -- the result -----------------------------------------------------------------------------------
@dataclass
class Summary:
    """What a run did. ``rows_read == rows_written + rows_rejected`` is checked before it is made."""

    input: str
    output: str
    rejects: str
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    needs_review: int = 0
    rejected_by_reason: dict = field(default_factory=dict)
    agencies: dict = field(default_factory=dict)
    chunks: int = 0
    chunks_resumed: int = 0
    jobs: int = 1
    seconds: float = 0.0
    model_version: str | None = None

    @property
    def review_share(self) -> float:
        return self.needs_review / self.rows_written if self.rows_written else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_written + self.rows_rejected

    def to_dict(self) -> dict:
        d = asdict(self)
        d["review_share"] = round(self.review_share, 6)
        d["rows_per_second"] = round(self.rows_per_second, 1)
        d["balanced"] = self.balanced
        return d

    def format(self) -> str:
        """A human summary (for stderr). Holds counts and labels only, never complaint text."""
        w = len(f"{self.rows_read:,}")
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.rejected_by_reason.items(),
                                                             key=lambda kv: -kv[1]))
        lines = [
            f"classified {self.input} -> {self.output} in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s, {self.jobs} job{'s' if self.jobs != 1 else ''}"
            + (f", {self.chunks_resumed} of {self.chunks} chunks from an earlier run" if self.chunks_resumed else "")
            + ")",
            f"  rows read      {self.rows_read:>{w},}",
            f"  rows written   {self.rows_written:>{w},}",
            f"  rows rejected  {self.rows_rejected:>{w},}" + (f"  ({reasons}) -> {self.rejects}" if reasons else ""),
            f"  needs review   {self.needs_review:>{w},}  ({100 * self.review_share:.1f}% of written)",
            f"  check: read = written + rejected: "
            f"{self.rows_read:,} = {self.rows_written:,} + {self.rows_rejected:,} "
            + ("ok" if self.balanced else "FAILED"),
        ]
        if self.agencies:
            lines.append("  per agency:")
            aw = max(len(a) for a in self.agencies)
            for agency, n in sorted(self.agencies.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {agency:<{aw}}  {n:>{w},}")
        return "\n".join(lines)


# -- per-row work (shared by the local pool, Dask chunks and lapor_nlp.distributed) ---------------
def default_columns() -> Columns:
    return Columns(text="text", topic=None, agency=None)


def prediction_names(prefix: str = "") -> list[str]:
    return [prefix + c for c in PRED_COLUMNS]


def choose_prefix(input_columns, prefix: str | None = None) -> str:
    """``prefix`` as given, or automatically ``pred_`` when an input column already has a
    prediction column's name (a backlog often carries its old ``topic``/``agency``)."""
    cols = set(input_columns or ())
    if prefix is None:
        prefix = AUTO_PREFIX if cols & set(PRED_COLUMNS) else ""
    clash = cols & set(prediction_names(prefix))
    if clash:
        raise BatchInputError(
            f"input column(s) {', '.join(sorted(map(repr, clash)))} have the names of prediction "
            "columns; choose another --prefix for the prediction columns")
    return prefix


def reject_header(columns) -> tuple[list[str], str]:
    """The CSV rejects file's own column names (``line``, ``reason`` and ``raw_record``), each
    prefixed with ``reject_`` (again, if need be) while an input column has one of those names:
    a header that named a column twice could not be read back."""
    cols = set(columns)
    names = [*REJECT_LEAD, REJECT_RAW]
    while cols.intersection(names):
        names = [REJECT_CLASH_PREFIX + n for n in names]
    return names[:-1], names[-1]


def row_undecodable(row: dict) -> bool:
    """A value that cannot be written as UTF-8: bytes that were not UTF-8 in a CSV or JSON line,
    a lone surrogate from a JSON escape, also inside a nested JSON value, or a Parquet binary
    value that is not UTF-8 text."""
    for v in row.values():
        if v.__class__ is str:
            if not v.isascii() and undecodable(v):
                return True
        elif v is not None and value_undecodable(v):
            return True
    return False


def value_undecodable(value) -> bool:
    """One value of a row (any type) that cannot be written as UTF-8 (see :func:`row_undecodable`).
    A loop over a stack, not recursion: JSON may nest deeper than Python's recursion limit."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if undecodable(v):
                return True
        elif isinstance(v, (bytes, bytearray)):
            try:
                bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                return True
        elif isinstance(v, dict):
            stack += v.keys()
            stack += v.values()
        elif isinstance(v, (list, tuple)):
            stack += v
    return False


def row_item(row: dict, columns: Columns):
    """The router input for one row: ``(item, None)``, or ``(None, reason)`` when the row cannot
    be classified. A text-only row gives a plain ``str`` (the router's fast path)."""
    if row_undecodable(row):
        return None, UNDECODABLE
    text = _value(row, columns.text)
    if text is None:
        return None, NO_TEXT
    title = _value(row, columns.title)
    loc = {}
    for level, col in columns.location().items():
        v = _value(row, col)
        if v is not None:
            loc["subdistrict" if level == "village" else level] = v
    if title is None and not loc:
        return text, None
    item: dict[str, Any] = {"text": text}
    if title is not None:
        item["title"] = title
    if loc:
        item["location"] = loc
    return item, None


def _invalid_reason(item) -> str | None:
    from pydantic import ValidationError

    from .schemas import Complaint

    if isinstance(item, str):
        return None
    try:
        Complaint.model_validate(item)
    except ValidationError as exc:
        errs = exc.errors(include_url=False, include_input=False)
        return "invalid complaint: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs[:3])
    return None


def predict_items(router, items: list) -> list[dict | str]:
    """``router.predict_records`` for many items; an item the router refuses gives its reason (a
    ``str``) in its place instead of failing the whole chunk."""
    if not items:
        return []
    try:
        return router.predict_records(items)
    except (InputTypeError, InputValueError):
        pass
    reasons = [_invalid_reason(x) for x in items]
    good = [x for x, r in zip(items, reasons) if r is None]
    try:
        preds = iter(router.predict_records(good))
    except (InputTypeError, InputValueError) as exc:  # pragma: no cover - not expected
        return [f"refused by the router: {exc.message[:200]}"] * len(items)
    return [next(preds) if r is None else r for r in reasons]


def prediction_values(rec: dict) -> tuple:
    """The prediction columns' values, in :data:`PRED_COLUMNS` order."""
    topic = rec.get("topic") or {}
    agency = rec.get("agency") or {}
    return (topic.get("label"), topic.get("score"), agency.get("label"), agency.get("score"),
            rec.get("routed_to"), bool(rec.get("needs_review")),
            ";".join(rec.get("review_reasons") or ()), rec.get("model_version"))


# -- chunk processing -----------------------------------------------------------------------------
@dataclass
class ChunkSpec:
    """What a worker needs besides the rows (small, sent once per worker or task)."""

    columns: Columns
    out_fmt: str
    rej_fmt: str
    prefix: str
    input_columns: list | None      # CSV header / Parquet schema names; None for JSON Lines
    in_fmt: str = "csv"
    arrow_schema: Any = None        # the input's pyarrow schema (Parquet in -> Parquet out)
    parts_dir: str | None = None    # set: the worker writes the part files itself
    router_options: dict = field(default_factory=dict)  # Router.load options (home_region)


def _cell(v) -> str:
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


def _pred_cells(p: tuple) -> list[str]:
    topic, ts, agency, ags, routed, review, reasons, version = p
    return [topic or "", "" if ts is None else repr(ts), agency or "", "" if ags is None else repr(ags),
            routed or "", "True" if review else "False", reasons, version or ""]


def _union_keys(rows) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in seen:
                seen[k] = None
    return list(seen)


def _csv_part(header: list[str], body: list[list]) -> tuple[str, int]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    hlen = len(buf.getvalue().encode("utf-8", "surrogateescape"))
    w.writerows(body)
    return buf.getvalue(), hlen


def _pred_arrow_fields(prefix: str):
    import pyarrow as pa

    arrow = {"str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
    return [pa.field(n, arrow[k]) for n, k in zip(prediction_names(prefix), PRED_KINDS.values())]


def run_chunk(router, spec: ChunkSpec, index: int, rows: list[dict]) -> tuple[dict, bytes | None, bytes | None]:
    """Classify one chunk and format its output and rejects parts.

    With ``spec.parts_dir`` set the parts are written there (returns ``(meta, None, None)``);
    otherwise their bytes are returned for the caller to write."""
    n = len(rows)
    pred_names = prediction_names(spec.prefix)
    pred_set = set(pred_names)
    keep, items, rejects = [], [], []
    for row in rows:
        line = row.pop(LINE)
        if ERROR in row:  # a line that could not be parsed: its raw text goes to the rejects file
            rejects.append((line, row[ERROR], {RAW: row.get(RAW)}))
            continue
        if spec.input_columns is None and not pred_set.isdisjoint(row):
            clash = ", ".join(sorted(pred_set.intersection(row)))
            rejects.append((line, f"column(s) {clash} clash with prediction columns", row))
            continue
        item, reason = row_item(row, spec.columns)
        if reason:
            rejects.append((line, reason, row))
        else:
            keep.append((line, row))
            items.append(item)
    preds = predict_items(router, items)
    out_rows, out_preds = [], []
    agencies: collections.Counter = collections.Counter()
    review = 0
    version = getattr(router, "version", None)
    for (line, row), rec in zip(keep, preds):
        if isinstance(rec, str):
            rejects.append((line, rec, row))
            continue
        vals = prediction_values(rec)
        out_rows.append(row)
        out_preds.append(vals)
        if vals[2] is not None:
            agencies[vals[2]] += 1
        review += vals[5]
    rejects.sort(key=lambda r: r[0])

    meta = {"index": index, "rows": n, "written": len(out_rows), "rejected": len(rejects),
            "needs_review": review,
            "agencies": dict(agencies), "model_version": version,
            "reasons": dict(collections.Counter(_reason_kind(r[1]) for r in rejects))}

    # the data part
    cols = spec.input_columns if spec.input_columns is not None else _union_keys(out_rows)
    meta["columns"] = cols
    if spec.out_fmt == "csv":
        if spec.in_fmt == "csv":  # every value is already a str, every key present
            body = [[r[c] for c in cols] + _pred_cells(p) for r, p in zip(out_rows, out_preds)]
        else:
            body = [[_cell(r.get(c)) for c in cols] + _pred_cells(p) for r, p in zip(out_rows, out_preds)]
        text, meta["header_bytes"] = _csv_part(cols + pred_names, body)
        data = text.encode("utf-8", "surrogateescape")
    elif spec.out_fmt == "jsonl":
        data = "".join(json.dumps({**r, **dict(zip(pred_names, p))}, ensure_ascii=False, default=_cell) + "\n"
                       for r, p in zip(out_rows, out_preds)).encode("utf-8")
    else:
        data = _parquet_part(spec, cols, out_rows, out_preds)

    # the rejects part
    rcols = spec.input_columns if spec.input_columns is not None else \
        [k for k in _union_keys(r[2] for r in rejects) if k != RAW]
    meta["reject_columns"] = rcols
    if spec.rej_fmt == "csv":
        body = [[line, reason] + [_cell(raw.get(c)) for c in rcols] + [raw.get(RAW) or ""]
                for line, reason, raw in rejects]
        text, meta["reject_header_bytes"] = _csv_part([*REJECT_LEAD, *rcols, REJECT_RAW], body)
        rdata = text.encode("utf-8", RAW_ERRORS)  # undecodable input goes back as it came
    else:
        rdata = "".join(json.dumps({"line": line, "reason": reason,
                                    "row": None if RAW in raw else raw, REJECT_RAW: raw.get(RAW)},
                                   default=_cell) + "\n"
                        for line, reason, raw in rejects).encode("ascii")

    if spec.parts_dir is None:
        return meta, data, rdata
    write_chunk(Path(spec.parts_dir), spec, meta, data, rdata)
    return meta, None, None


def _parquet_part(spec: ChunkSpec, cols: list[str], out_rows, out_preds) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _output_arrow_schema(spec, cols)
    fields = list(schema)
    in_fields, pfields = fields[:len(cols)], fields[len(cols):]
    if spec.arrow_schema is not None:
        arrays = [pa.array([r.get(c) for r in out_rows], type=f.type) for c, f in zip(cols, in_fields)]
    else:  # CSV / JSON Lines input: the input columns are text
        arrays = [pa.array([None if r.get(c) is None else _cell(r.get(c)) for r in out_rows], type=pa.string())
                  for c in cols]
    arrays += [pa.array([p[i] for p in out_preds], type=f.type) for i, f in enumerate(pfields)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _output_arrow_schema(spec: ChunkSpec, cols: list[str]):
    """The output's Arrow schema: the input columns (their own types for Parquet input, text
    otherwise), then the prediction columns."""
    import pyarrow as pa

    if spec.arrow_schema is not None:
        in_fields = [spec.arrow_schema.field(c) for c in cols]
    else:
        in_fields = [pa.field(c, pa.string()) for c in cols]
    return pa.schema(in_fields + _pred_arrow_fields(spec.prefix))


# -- the work directory ---------------------------------------------------------------------------
def _part_names(index: int, spec: ChunkSpec) -> tuple[str, str, str]:
    base = f"part-{index:07d}"
    return f"{base}.{spec.out_fmt}", f"{base}.rejects.{spec.rej_fmt}", f"{base}.meta.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_chunk(parts: Path, spec: ChunkSpec, meta: dict, data: bytes, rdata: bytes) -> None:
    """Write a chunk's parts; the meta file goes last, so its presence means the chunk is done."""
    dname, rname, mname = _part_names(meta["index"], spec)
    _atomic_write(parts / dname, data)
    _atomic_write(parts / rname, rdata)
    _atomic_write(parts / mname, json.dumps(meta, ensure_ascii=False).encode("utf-8"))


def input_identity(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_HEAD_BYTES))
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_sha256": h.hexdigest()}


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b and k != "path":
            out.append(f"{prefix}{k} ({a!r} then, {b!r} now)")
    return out


# -- executors ------------------------------------------------------------------------------------
_ROUTERS: dict[str, Any] = {}
_ROUTER_LOCK = threading.Lock()
LOADS: collections.Counter = collections.Counter()  # model loads in this process, by model key


def get_router(model_dir: str | None, options: dict | None = None):
    """The Router for ``model_dir`` (None: the default model) with ``Router.load`` options
    (``home_region``), loaded once per process."""
    key = (str(model_dir) if model_dir is not None else "", tuple(sorted((options or {}).items())))
    router = _ROUTERS.get(key)
    if router is None:
        with _ROUTER_LOCK:
            router = _ROUTERS.get(key)
            if router is None:
                from .router import Router

                path = model_dir
                if path is None:
                    from .default_model import ensure_default_model

                    path = ensure_default_model(quiet=True)
                router = Router.load(path, **(options or {}))
                _ROUTERS[key] = router
                LOADS[key[0]] += 1
    return router


class _Done:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


class _InProcess:
    """jobs=1: the chunks run in this process, one after the other."""

    jobs = 1
    window = 1

    def __init__(self, model_dir: str | None, spec: ChunkSpec):
        self.router = get_router(model_dir, spec.router_options)
        self.spec = spec

    def submit(self, index, rows):
        return _Done(run_chunk(self.router, self.spec, index, rows))

    def close(self, ok: bool):
        pass


_WORKER: dict = {}


def _set_parent_death_signal() -> None:
    """Linux: die with the parent even when it is SIGKILLed (no orphan worker writing parts)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass


def _init_worker(model_dir, spec, parent_pid) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    try:
        _WORKER["router"] = get_router(model_dir, spec.router_options)
    except BaseException as exc:  # reported by the first task, not a silently broken pool
        _WORKER["error"] = exc
    _WORKER["spec"] = spec


def _pool_task(index, rows):
    if "error" in _WORKER:
        raise _WORKER["error"]
    return run_chunk(_WORKER["router"], _WORKER["spec"], index, rows)


class _PoolResult:
    __slots__ = ("future",)

    def __init__(self, future):
        self.future = future

    def get(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:
            raise BatchCheckError(
                "a worker process died (killed, or out of memory?); the finished chunks are kept: "
                "run again with --resume (resume=True), perhaps with fewer --jobs") from None


class _Pool:
    """jobs>1: a pool of spawned worker processes, each loading the model once.
    (concurrent.futures rather than multiprocessing.Pool: a worker that dies makes the run fail
    with a message instead of waiting forever for the chunk it held.)"""

    def __init__(self, model_dir: str | None, spec: ChunkSpec, jobs: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = jobs
        self.window = 2 * jobs
        self.pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                        initargs=(model_dir, spec, os.getpid()))

    def submit(self, index, rows):
        return _PoolResult(self.pool.submit(_pool_task, index, rows))

    def close(self, ok: bool):
        if not ok:  # stop now: the chunks in flight are redone by --resume
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                try:
                    proc.terminate()
                except Exception:  # pragma: no cover
                    pass
        self.pool.shutdown(wait=True, cancel_futures=not ok)


# -- input helpers --------------------------------------------------------------------------------
def _input_columns(path: Path, fmt: str) -> tuple[list[str] | None, Any]:
    if fmt == "csv":
        return csv_header(path), None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(path).schema_arrow
        return check_column_names(list(schema.names), path), schema
    return None, None


def _first_jsonl_keys(path: Path) -> list[str]:
    for row in iter_rows(path, "jsonl"):
        if ERROR not in row:
            return [k for k in row if k != LINE]
    return []


def _estimate_rows(path: Path, fmt: str) -> int | None:
    """A cheap row count for the ETA (newlines; exact for Parquet); None for very large files."""
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


def _chunks(rows, size: int):
    buf = []
    for row in rows:
        buf.append(row)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _check_output_paths(in_path: Path, out_path: Path, rej_path: Path, parts: Path) -> None:
    """Refuse, before any work, what would overwrite the input or fail only at the end; the
    output's directory is created here (the one way to know it can be)."""
    src = in_path.resolve()
    for what, p in (("output", out_path), ("rejects file", rej_path), ("work directory", parts)):
        if p.resolve() == src:
            raise BatchInputError(f"the {what} {p} would be the input file; choose another output name")
    for p in (out_path, rej_path):
        if p.is_dir():
            raise BatchInputError(f"{p} is a directory; give the output file's path")
    target = out_path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchInputError(f"cannot create the output directory {target}: {exc.strerror}") from None
    if not os.access(target, os.W_OK):
        raise BatchInputError(f"cannot write in the output directory {target}")


def output_paths(output: str | Path, rej_fmt: str) -> tuple[Path, Path]:
    """``(rejects file, work directory)`` of an output path."""
    out = Path(output)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.rejects.{rej_fmt}"), out.with_name(out.name + ".parts")


class _Lock:
    """An exclusive lock on the work directory, so that two runs never write the same parts (the
    kernel drops it when the process dies, even by SIGKILL)."""

    def __init__(self, parts: Path):
        self.fh = open(parts / ".lock", "a")
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            self.fh.close()
            raise BatchInputError(f"another run is writing {parts} now; wait for it to end") from None

    def release(self):
        self.fh.close()


# -- the public function --------------------------------------------------------------------------
def classify_file(
    input: str | Path,
    output: str | Path,
    *,
    model_dir: str | Path | None = None,
    jobs: int | None = None,
    chunk_size: int = 5000,
    resume: bool = False,
    columns: Columns | None = None,
    fmt: str | None = None,
    out_fmt: str | None = None,
    prefix: str | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    client=None,
    log=None,
    home_region: str | None = None,
) -> Summary:
    """Classify every row of ``input`` into ``output`` (see the module docstring).

    input, output:
        files; ``fmt`` is the input's format (default: from its name), ``out_fmt`` the output's
        (default: from the output's name, else the input's).
    model_dir:
        a model directory; None: the bundled default model.
    jobs:
        worker processes (default: all cores); 1 runs in this process.
    chunk_size:
        rows per chunk: the unit of work, of memory (about ``2 * jobs`` chunks are in flight) and
        of checkpointing.
    resume:
        continue an interrupted run from its finished chunks (refused if the input or options
        changed). Without it, an existing work directory is an error.
    columns:
        which columns hold the text, title and location (:class:`lapor_nlp.training.Columns`;
        default: the text in ``text``). Every column is kept in the output.
    prefix:
        put before the prediction columns' names; default ``""``, or ``"pred_"`` when the input
        already has a column named like one of them.
    progress:
        a progress bar on stderr (only when stderr is a terminal).
    home_region:
        the regency/city the backlog's portal serves ("Kota Surabaya"), for complaints that name
        no place (:class:`~lapor_nlp.router.Router`); default: the model's.
    scheduler, client:
        run the chunks on a Dask cluster (an address like ``tcp://host:8786``, or a
        ``distributed.Client``) instead of local processes; ``model_dir`` must then be readable by
        every worker (None: each worker builds/uses the default model).
    log:
        a callable for one-line messages (default: stderr when ``progress``).
    """
    t0 = time.perf_counter()
    in_path, out_path = Path(input), Path(output)
    if log is None:
        log = (lambda msg: print(f"lapor-nlp: {msg}", file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    require_file(in_path)
    in_fmt = detect_format(in_path, fmt)
    out_fmt = detect_format(out_path, out_fmt, default=in_fmt)
    if chunk_size < 1:
        raise BatchInputError("chunk_size must be at least 1")
    rej_fmt = "csv" if out_fmt == "csv" else "jsonl"
    rej_path, parts = output_paths(out_path, rej_fmt)
    _check_output_paths(in_path, out_path, rej_path, parts)
    columns = columns or default_columns()

    input_columns, arrow_schema = _input_columns(in_path, in_fmt)
    known = input_columns if input_columns is not None else _first_jsonl_keys(in_path)
    if known and columns.text not in known:
        raise BatchInputError(
            f"{in_path}: text column {columns.text!r} not found; the file has "
            f"{', '.join(map(repr, known))}. Name it with --text-col.")
    if input_columns is not None:  # a header lists every column (JSON lines may each have fewer)
        missing = {f"--{name}-col": col for name, col in columns.optional().items()
                   if col not in input_columns}
        if missing:
            raise BatchInputError(
                f"{in_path}: column(s) not found: {', '.join(f'{o} {c!r}' for o, c in missing.items())}; "
                f"the file has {', '.join(map(repr, input_columns))}")
    auto = prefix is None
    prefix = choose_prefix(known, prefix)
    if auto and prefix:
        log(f"the input already has column(s) named like predictions; the new ones are prefixed {prefix!r}")
    if out_fmt == "parquet" or in_fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BatchInputError("Parquet needs pyarrow: pip install 'lapor-nlp[parquet]'") from None

    # The executor decides where chunks run; the model is resolved first (for a local run).
    dask_mode = scheduler is not None or client is not None
    if model_dir is None and not dask_mode:
        from .default_model import ensure_default_model

        model_dir = ensure_default_model(quiet=not progress)
    model_key = str(Path(model_dir).resolve()) if model_dir is not None else None
    model_version = None
    if model_key is not None:
        from .artifact import model_version as version_of, read_manifest, verify

        if not dask_mode:  # a missing or damaged model fails here, not in every worker
            model_version = version_of(verify(model_key))
        else:  # the workers check their own copy; this one, if readable, gives the version
            try:
                model_version = version_of(read_manifest(model_key))
            except Exception:  # noqa: BLE001 - unreadable here is not an error on the cluster
                pass
    router_options = {"home_region": home_region} if home_region else {}
    if home_region:
        from .jurisdiction import require_regency

        require_regency(home_region)  # an unknown region fails here, not in every worker
    spec = ChunkSpec(columns=columns, out_fmt=out_fmt, rej_fmt=rej_fmt, prefix=prefix,
                     input_columns=input_columns, in_fmt=in_fmt, arrow_schema=arrow_schema,
                     router_options=router_options)
    manifest = {
        "version": MANIFEST_VERSION,
        "input": input_identity(in_path),
        "options": {"chunk_size": chunk_size, "columns": asdict(columns), "in_fmt": in_fmt,
                    "out_fmt": out_fmt, "prefix": prefix, "model_version": model_version,
                    **({"router_options": router_options} if router_options else {})},
    }

    # The work directory: new, or resumed after checking it is the same job.
    done: dict[int, dict] = {}
    if parts.exists():
        lock = _Lock(parts)  # first: a run still writing there is not an interrupted one
        if not resume:
            lock.release()
            raise BatchInputError(
                f"{parts} holds the finished chunks of an earlier, interrupted run. Pass --resume "
                f"(resume=True) to finish it, or remove {parts} to start again.")
        try:
            done = _check_resume(parts, manifest, spec)
        except BaseException:
            lock.release()
            raise
        log(f"resuming: {len(done)} finished chunk(s) found in {parts}")
    else:
        if resume:
            log(f"nothing to resume ({parts} does not exist): starting from the beginning")
        try:
            parts.mkdir(parents=True)
        except OSError as exc:
            raise BatchInputError(f"cannot create the work directory {parts}: {exc.strerror}") from None
        lock = _Lock(parts)
        (parts / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    summary = Summary(input=str(in_path), output=str(out_path), rejects=str(rej_path),
                      model_version=model_version)
    agencies: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    bar = None
    executor = None
    ok = False
    try:
        if jobs is None:
            jobs = _default_jobs()
        if dask_mode:
            from .distributed import _DaskChunks

            executor = _DaskChunks(model_key, spec, scheduler=scheduler, client=client)
        elif jobs <= 1:
            spec.parts_dir = str(parts)
            executor = _InProcess(model_key, spec)
        else:
            spec.parts_dir = str(parts)
            executor = _Pool(model_key, spec, jobs)
        summary.jobs = executor.jobs
        if progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=_estimate_rows(in_path, in_fmt), unit=" rows", unit_scale=True,
                       file=sys.stderr, dynamic_ncols=True, smoothing=0.1, desc="classify")

        versions: set = set()

        def account(meta: dict, n: int) -> None:
            if meta["rows"] != n or meta["written"] + meta["rejected"] != n:
                raise BatchCheckError(
                    f"chunk {meta['index']}: {n} rows read but the part holds {meta['rows']} "
                    f"({meta['written']} written + {meta['rejected']} rejected); remove {parts} and run again")
            summary.rows_written += meta["written"]
            summary.rows_rejected += meta["rejected"]
            summary.needs_review += meta["needs_review"]
            agencies.update(meta["agencies"])
            reasons.update(meta["reasons"])
            if meta["written"]:
                versions.add(meta["model_version"])
                if len(versions) > 1:
                    raise BatchCheckError(
                        f"the parts in {parts} were made by different models ({', '.join(map(str, versions))}); "
                        f"remove {parts} and run again")
            if bar is not None:
                bar.update(n)

        def collect(item) -> None:
            index, n, fut = item
            meta, data, rdata = fut.get()
            if data is not None:
                write_chunk(parts, spec, meta, data, rdata)
            account(meta, n)

        pending: collections.deque = collections.deque()
        for index, rows in enumerate(_chunks(iter_rows(in_path, in_fmt), chunk_size)):
            n = len(rows)
            summary.rows_read += n
            summary.chunks += 1
            if index in done:
                summary.chunks_resumed += 1
                account(done.pop(index), n)
                continue
            pending.append((index, n, executor.submit(index, rows)))
            del rows
            while len(pending) >= executor.window:
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())
        if done:
            raise BatchCheckError(
                f"{parts} holds chunk(s) {sorted(done)[:5]} beyond the end of the input; "
                f"remove {parts} and run again")
        executor.close(True)
        executor = None

        summary.agencies = dict(agencies)
        summary.rejected_by_reason = dict(reasons)
        if versions:
            summary.model_version = next(iter(versions))
        if not summary.balanced:
            raise BatchCheckError(
                f"rows read ({summary.rows_read:,}) != rows written ({summary.rows_written:,}) + "
                f"rows rejected ({summary.rows_rejected:,}); the parts are kept in {parts}")
        _assemble(parts, spec, summary.chunks, out_path, rej_path, input_columns, summary)
        ok = True
    finally:
        if bar is not None:
            if ok:
                bar.total = bar.n
                bar.refresh()
            bar.close()
        if executor is not None:
            executor.close(False)
        lock.release()
        if not ok and not any(parts.glob("part-*.meta.json")):
            # Failed before finishing any chunk (a cluster that cannot be reached, a model the
            # workers refuse): nothing to resume, so no work directory to block the next run.
            shutil.rmtree(parts, ignore_errors=True)
    shutil.rmtree(parts, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary


def _check_resume(parts: Path, manifest: dict, spec: ChunkSpec) -> dict[int, dict]:
    mpath = parts / "manifest.json"
    try:
        old = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BatchInputError(f"{parts} has no readable manifest.json; remove {parts} and run again") from None
    if old.get("version") != MANIFEST_VERSION:
        raise BatchInputError(
            f"cannot resume from {parts}: its chunks were written by another lapor-nlp version (work "
            f"directory format {old.get('version')}, this version writes {MANIFEST_VERSION}); remove "
            f"{parts} and run again, or finish it with the lapor-nlp version that started it")
    diff = _differences({k: old.get(k) for k in ("input", "options")},
                        {k: manifest[k] for k in ("input", "options")})
    old_version = old.get("options", {}).get("model_version")
    if old_version is None:  # a Dask run on the default model: each worker builds its own
        diff = [d for d in diff if not d.startswith("options.model_version")]
    if diff:
        hint = ""
        if old_version is not None and manifest["options"].get("model_version") is None:
            hint = (" A cluster run on the default model cannot show its version here: resume it "
                    "with --model naming the model directory the first run used.")
        raise BatchInputError(
            f"cannot resume from {parts}: it was made for a different job; changed: {'; '.join(diff)}. "
            f"Remove {parts} to start again (or resume with the original input and options).{hint}")
    done = {}
    for p in parts.iterdir():
        if p.name.endswith(".tmp"):  # a half-written part of the interrupted run
            p.unlink(missing_ok=True)
    for p in sorted(parts.glob("part-*.meta.json")):
        meta = json.loads(p.read_text(encoding="utf-8"))
        dname, rname, _ = _part_names(meta["index"], spec)
        if (parts / dname).is_file() and (parts / rname).is_file():
            done[meta["index"]] = meta
    return done


def _final_columns(metas_cols: list[list[str]], fixed: list[str] | None) -> list[str]:
    return list(fixed) if fixed is not None else _union_keys(metas_cols)


def _assemble(parts: Path, spec: ChunkSpec, n_chunks: int, out_path: Path, rej_path: Path,
              input_columns, summary: Summary) -> None:
    """Join the parts in order into the rejects file, then OUTPUT (each a temp file renamed)."""
    metas = [json.loads((parts / _part_names(i, spec)[2]).read_text(encoding="utf-8")) for i in range(n_chunks)]
    pred_names = prediction_names(spec.prefix)
    cols = _final_columns([m["columns"] for m in metas], input_columns)
    rcols = _final_columns([m["reject_columns"] for m in metas], input_columns)
    names = [_part_names(i, spec) for i in range(n_chunks)]

    rtmp = rej_path.with_name(f".{rej_path.name}.{os.getpid()}.tmp")
    with open(rtmp, "wb") as out:
        if spec.rej_fmt == "csv":
            lead, raw = reject_header(rcols)
            _join_csv(out, parts, [(n[1], m["reject_columns"], m["reject_header_bytes"]) for n, m in zip(names, metas)],
                      lead, rcols, [raw], surrogates=True)
        else:
            for n in names:
                with open(parts / n[1], "rb") as fh:
                    shutil.copyfileobj(fh, out)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        if spec.out_fmt == "csv":
            with open(tmp, "wb") as out:
                _join_csv(out, parts, [(n[0], m["columns"], m["header_bytes"]) for n, m in zip(names, metas)],
                          [], cols, pred_names)
        elif spec.out_fmt == "jsonl":
            with open(tmp, "wb") as out:
                for n in names:
                    with open(parts / n[0], "rb") as fh:
                        shutil.copyfileobj(fh, out)
        else:
            _join_parquet(tmp, parts, names, metas, cols, spec)
        written = _count_rows(tmp, spec.out_fmt)
        if written is not None and written != summary.rows_written:
            raise BatchCheckError(f"the joined output holds {written:,} rows, the parts {summary.rows_written:,}; "
                                  f"the parts are kept in {parts}")
        os.replace(rtmp, rej_path)
        os.replace(tmp, out_path)
    finally:
        for p in (tmp, rtmp):
            if p.exists():
                p.unlink()


def _count_rows(path: Path, fmt: str) -> int | None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt == "jsonl":
        n = 0
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(8 << 20), b""):
                n += block.count(b"\n")
        return n
    return None  # CSV fields may hold newlines: counted per part instead


def _join_csv(out, parts: Path, items, lead: list[str], cols: list[str], tail: list[str],
              surrogates: bool = False) -> None:
    errors = "surrogateescape" if surrogates else "strict"
    write_errors = RAW_ERRORS if surrogates else "strict"
    header = lead + cols + tail
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header)
    out.write(buf.getvalue().encode("utf-8", write_errors))
    for name, pcols, hbytes in items:
        if list(pcols) == list(cols):
            with open(parts / name, "rb") as fh:
                fh.seek(hbytes)
                shutil.copyfileobj(fh, out, 1 << 20)
            continue
        # this part has fewer/other columns (JSON Lines input): rewrite it under the full header.
        # A part's cells are laid out as lead + its columns + tail: read by position, since an
        # input column may have a lead or tail column's name.
        first, last = len(lead), len(lead) + len(pcols)
        with open(parts / name, encoding="utf-8", errors=errors, newline="") as fh:
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


def _join_parquet(tmp: Path, parts: Path, names, metas, cols: list[str], spec: ChunkSpec) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _output_arrow_schema(spec, cols)
    with pq.ParquetWriter(tmp, schema) as writer:
        for n in names:
            table = pq.read_table(parts / n[0])
            arrays = [table.column(f.name) if f.name in table.column_names
                      else pa.nulls(table.num_rows, type=f.type) for f in schema]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
