"""Backlog classification on a Dask cluster (``pip install 'lapor-nlp[distributed]'``).

Two ways in:

* :func:`classify` turns a ``dask.dataframe`` (or a pandas DataFrame, or a path/glob of CSV, JSON
  Lines or Parquet files) into a lazy ``dask.dataframe`` with the prediction columns added, for
  pipelines that already live in Dask::

      from distributed import Client
      from lapor_nlp.batch.dask import classify

      client = Client("tcp://scheduler:8786")
      ddf = classify("s3://bucket/backlog/*.parquet", model="/shared/models/lapor-v3")
      ddf.to_parquet("s3://bucket/routed/")

* ``lapor-nlp classify INPUT -o OUTPUT --scheduler tcp://HOST:8786`` (or
  ``lapor_nlp.batch.classify_file(..., scheduler=...)``): the same streaming job as on one machine
  (chunks in input order, rejects with line numbers, the row-count check, ``--resume``) with the
  chunks computed on the cluster's workers by :class:`DaskExecutor`. The client reads the input and
  writes the output, so the workers need no access to those files.

Either way each worker *process* loads the model once, on first use, into a per-process cache
keyed by the model directory (:func:`lapor_nlp.batch.executors.get_router`); tasks carry only the
directory's path, never the model. The model directory must therefore be readable at the same path
on every worker (a shared file system, or the same path on each machine). With ``model=None`` every
worker uses the bundled default model, building it into its own user cache on first use (once per
machine and library version) — fine on one machine; on a real cluster pass a shared model
directory. Run the workers with one thread each (``dask worker --nthreads 1 --nworkers N``):
classification is pure Python and holds the GIL, so threads add nothing but memory.

Nothing here imports Dask until it is used, so importing this module costs nothing without it.
"""

from __future__ import annotations

import glob
import json
import math
import uuid
from pathlib import Path
from typing import Any

from ..columns import Columns
from ..errors import BatchInputError, DependencyError
from ..io import ERROR, LINE, UNDECODABLE, csv_delimiter, csv_header, detect_format, iter_rows, require_file
from .chunk import ChunkSpec, run_chunk
from .executors import LOADS, get_router
from .rows import (
    PRED_KINDS, choose_prefix, location_columns, predict_values, prediction_names, row_item, row_undecodable,
    value_undecodable,
)
from .workdir import PartFiles

__all__ = ["REJECT_COLUMN", "DaskExecutor", "classify", "worker_model_loads"]

REJECT_COLUMN = "reject_reason"
_READ_ERROR = "__read_error__"  # set by _read_local_file on a line it could not parse; never output


def _require():
    try:
        import dask.dataframe as dd
        import distributed  # noqa: F401
    except ImportError:
        raise DependencyError(
            "lapor_nlp.batch.dask needs Dask: pip install 'lapor-nlp[distributed]'") from None
    return dd


# -- the executor of lapor_nlp.batch.classify_file(scheduler=/client=) ----------------------------
class DaskExecutor:
    """Chunks computed on a Dask cluster: the scheduler at ``scheduler`` (an address like
    ``tcp://host:8786``), or the cluster of ``client`` (a ``distributed.Client``, left open)."""

    def __init__(self, scheduler: str | None = None, client=None):
        self.scheduler = scheduler
        self.client = client

    def model_key(self, model_dir, *, quiet: bool = True) -> str | None:
        """The model directory as the workers will read it (None: each worker's default model)."""
        return None if model_dir is None else str(Path(model_dir).resolve())

    def model_version(self, model_key: str | None) -> str | None:
        """The workers check their own copy; this one, if readable here, gives the version."""
        if model_key is None:
            return None
        from ..artifact import model_version, read_manifest

        try:
            return model_version(read_manifest(model_key))
        except Exception:  # noqa: BLE001 - unreadable here is not an error on the cluster
            return None

    def start(self, model_key: str | None, spec: ChunkSpec, parts: PartFiles):
        # The workers return the parts' bytes and the client writes them: no shared file system.
        return DaskChunks(model_key, spec, scheduler=self.scheduler, client=self.client)


def remote_chunk(model_key: str | None, spec: ChunkSpec, index: int, rows: list[dict]):
    return run_chunk(get_router(model_key, spec.router_options), spec, index, rows)


class _Result:
    __slots__ = ("future",)

    def __init__(self, future):
        self.future = future

    def get(self):
        return self.future.result()


class DaskChunks:
    """Send chunks to a Dask cluster; at most two per worker thread are in flight."""

    def __init__(self, model_key: str | None, spec: ChunkSpec, *, scheduler: str | None = None, client=None):
        _require()
        from distributed import Client

        self.own = client is None
        try:
            self.client = client if client is not None else Client(scheduler)
        except OSError as exc:
            raise BatchInputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        threads = sum(self.client.nthreads().values())
        self.jobs = max(threads, 1)
        self.window = 2 * self.jobs
        self.reads_blocks = False  # rows, as before: the chunks travel through the scheduler
        self.model_key = model_key
        self.spec = spec
        self.run = uuid.uuid4().hex[:8]
        self.futures: list = []

    def submit(self, index: int, rows: list[dict]):
        fut = self.client.submit(remote_chunk, self.model_key, self.spec, index, rows,
                                 key=f"lapor-chunk-{self.run}-{index}", pure=False)
        self.futures.append(fut)
        if len(self.futures) > 4 * self.window:
            self.futures = [f for f in self.futures if not f.done()]
        return _Result(fut)

    def close(self, ok: bool):
        if not ok:
            try:
                self.client.cancel([f for f in self.futures if not f.done()])
            except Exception:  # pragma: no cover - the cluster may be gone
                pass
        self.futures = []
        if self.own:
            self.client.close()


def _loads() -> dict:
    return dict(LOADS)


def worker_model_loads(client) -> dict[str, dict[str, int]]:
    """``{worker address: {model key: times loaded}}``: each should be 1 (a check for tests/ops)."""
    return client.run(_loads)


# -- classify: a lazy dask.dataframe --------------------------------------------------------------
def _classify_partition(pdf, model_key: str | None, columns: Columns, prefix: str,
                        router_options: dict | None = None):
    """Add the prediction columns (and ``reject_reason``) to one pandas partition."""
    import numpy as np
    import pandas as pd

    n = len(pdf)
    values: list[list[Any]] = [[None] * n for _ in PRED_KINDS]
    reasons: list[str | None] = [None] * n
    if n:
        items, where = [], []
        location = location_columns(columns)
        for i, row in enumerate(pdf.to_dict("records")):
            if row.get(_READ_ERROR):
                reasons[i] = row[_READ_ERROR]
                continue
            item, reason = row_item(row, columns, location=location)
            if reason:
                reasons[i] = reason
            else:
                items.append(item)
                where.append(i)
        preds = predict_values(get_router(model_key, router_options), items)
        for i, vals in zip(where, preds):
            if isinstance(vals, str):
                reasons[i] = vals
                continue
            for col, v in zip(values, vals):
                col[i] = v
    out = pdf.drop(columns=[_READ_ERROR]) if _READ_ERROR in pdf.columns else pdf.copy()
    for name, kind, col in zip(prediction_names(prefix), PRED_KINDS.values(), values):
        dtype = _PANDAS_DTYPES[kind]
        if dtype == "float64":
            col = [np.nan if v is None else v for v in col]
        out[name] = pd.Series(col, index=pdf.index, dtype=dtype)
    out[REJECT_COLUMN] = pd.Series(reasons, index=pdf.index, dtype=object)
    return out


_PANDAS_DTYPES = {"str": "object", "float": "float64", "bool": "boolean"}


def _read_local_file(path: str, fmt: str, columns: list[str]):
    """One local CSV or JSON Lines file as a pandas partition, read by the same reader as
    classify_file; a line that cannot be parsed gives a row of empty fields whose ``_READ_ERROR``
    says which line and why (instead of failing the whole job)."""
    import pandas as pd

    if fmt == "csv" and csv_header(path) != columns:
        raise BatchInputError(f"{path}: its header differs from the first file's ({', '.join(columns)})")
    records = []
    for row in iter_rows(path, fmt):
        line = row.pop(LINE)
        err = row.pop(ERROR, None)
        if err is not None:
            row = dict.fromkeys(columns, "")
            row[_READ_ERROR] = f"line {line}: {err}"
        elif row_undecodable(row):
            # Arrow-backed strings cannot hold the escaped bytes: blank those fields, say why.
            row = {k: "" if value_undecodable(v) else v for k, v in row.items()}
            row[_READ_ERROR] = f"line {line}: {UNDECODABLE}"
        else:
            if fmt == "jsonl":  # nested values as JSON text, as classify_file writes them, not a repr
                row = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                       for k, v in row.items()}
            row[_READ_ERROR] = None
        records.append(row)
    return pd.DataFrame(records, columns=[*columns, _READ_ERROR], dtype=object)


def _jsonl_columns(files: list[str]) -> list[str]:
    """Every key of every parsable line, in order of first appearance: a DataFrame needs its
    columns before the partitions are read, and JSON lines may each hold different keys."""
    keys: dict[str, None] = {}
    for path in files:
        for row in iter_rows(path, "jsonl"):
            if ERROR not in row:
                keys.update(dict.fromkeys(k for k in row if k != LINE))
    return list(keys)


def _as_dask(data, fmt: str | None, blocksize, chunk_size: int):
    dd = _require()
    import pandas as pd

    if isinstance(data, dd.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return dd.from_pandas(data, npartitions=max(1, math.ceil(len(data) / chunk_size)))
    if isinstance(data, (str, Path)):
        path = str(data)
        fmt = detect_format(path, fmt)
        if fmt in ("csv", "jsonl") and blocksize is None and "://" not in path:
            # Local files: one partition per file, read by the same reader as classify_file, so a
            # malformed line stays a row (empty fields, its reason in reject_reason) instead of
            # failing the job. Not split at byte offsets: CSV texts may hold quoted newlines.
            files = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
            if not files:
                raise BatchInputError(f"no file matches {path}")
            for f in files:
                require_file(f)
            columns = csv_header(files[0]) if fmt == "csv" else _jsonl_columns(files)
            meta = pd.DataFrame({c: pd.Series(dtype=object) for c in [*columns, _READ_ERROR]})
            if fmt == "csv":
                return dd.from_map(_read_local_file, files, fmt=fmt, columns=columns, meta=meta)
            # JSON values keep their types (numbers, true/false, null), as classify_file writes
            # them: Dask would otherwise turn these object columns into strings ("True", "2.5").
            import dask

            with dask.config.set({"dataframe.convert-string": False}):
                return dd.from_map(_read_local_file, files, fmt=fmt, columns=columns, meta=meta)
        if fmt == "csv":  # remote storage (s3://, gs://, ...) or blocksize: pandas' reader
            return dd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                               blocksize=blocksize, encoding="utf-8", encoding_errors="surrogateescape",
                               sep=csv_delimiter(path))
        if fmt == "jsonl":
            return dd.read_json(path, lines=True, blocksize=blocksize, dtype=False)
        return dd.read_parquet(path)
    raise BatchInputError(
        f"classify() takes a dask or pandas DataFrame or a path, not {type(data).__name__}")


def classify(data, model: str | Path | None = None, *, text_col: str = "text",
             columns: Columns | None = None, prefix: str | None = None, fmt: str | None = None,
             blocksize=None, chunk_size: int = 5000, home_region: str | None = None):
    """Classify a Dask DataFrame lazily: every input column is kept and the prediction columns
    (``topic, topic_score, agency, agency_score, routed_to, needs_review, review_reasons,
    model_version``, prefixed ``pred_`` when the input has such a column already) and
    ``reject_reason`` are added. A row that cannot be classified (no text, undecodable bytes, a
    field the complaint schema refuses, a CSV line that cannot be parsed, which keeps its place as
    a row of empty fields) keeps null predictions and says why in ``reject_reason``;
    the values of the other rows are exactly those :func:`lapor_nlp.batch.classify_file` writes.

    data:
        a ``dask.dataframe.DataFrame``, a pandas DataFrame (split into partitions of
        ``chunk_size`` rows), or a path/glob of CSV (read as text, one partition per file by the
        same reader as ``classify_file``; with ``blocksize``, split by pandas, which raises on a
        malformed line), JSON Lines or Parquet files.
    model:
        a model directory readable at this path on every worker; None: the default model.
    text_col / columns:
        the text column, or a full :class:`lapor_nlp.columns.Columns` mapping (title, location).
    home_region:
        the regency/city the portal serves, for complaints that name no place (see ``Router``).

    Nothing is computed until you call ``.compute()``, ``.to_parquet()``, ... on the result.
    """
    ddf = _as_dask(data, fmt, blocksize, chunk_size)
    columns = columns or Columns(text=text_col, topic=None, agency=None)
    cols = list(map(str, ddf.columns))
    if columns.text not in cols:
        raise BatchInputError(f"text column {columns.text!r} not found; the data has "
                              f"{', '.join(map(repr, cols))}")
    if REJECT_COLUMN in cols:
        raise BatchInputError(f"the data already has a {REJECT_COLUMN!r} column")
    prefix = choose_prefix(cols, prefix)
    model_key = str(Path(model).resolve()) if model is not None else None
    options = {"home_region": home_region} if home_region else {}
    meta = _classify_partition(ddf._meta, model_key, columns, prefix, options)
    return ddf.map_partitions(_classify_partition, model_key, columns, prefix, options, meta=meta)
