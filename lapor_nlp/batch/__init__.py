"""Re-classify a backlog: a CSV, JSON Lines or Parquet file in, the same rows plus predictions out,
crash-safe and resumable, on this machine or on a Dask cluster.

The entry points::

    from lapor_nlp.batch import classify_file

    summary = classify_file("backlog.csv", "routed.csv", jobs=4)   # -> Summary
    print(summary.format())

* :func:`classify_file` -- the whole job (``lapor-nlp classify`` is a thin wrapper over it);
* :class:`Summary` -- what a run did, with the ``read = written + rejected`` check;
* :func:`output_paths` -- the rejects file and work directory beside an output;
* :data:`PRED_COLUMNS` / :data:`PRED_KINDS` -- the prediction columns a run adds;
* :func:`lapor_nlp.batch.dask.classify` -- a lazy ``dask.dataframe`` with those columns added.

Inside, one module per reason to change: :mod:`.run` (orchestration), :mod:`.inputs` (the input
file), :mod:`.rows` (row -> item -> prediction values), :mod:`.chunk` (one chunk's work),
:mod:`.formats` (output and rejects writers), :mod:`.workdir` (work directory, manifest, lock,
resume), :mod:`.executors` (this machine: in process or a process pool; the router cache) and
:mod:`.dask` (a Dask cluster), :mod:`.summary`.
"""

from __future__ import annotations

from .rows import PRED_COLUMNS, PRED_KINDS
from .run import classify_file
from .summary import Summary
from .workdir import output_paths

__all__ = ["PRED_COLUMNS", "PRED_KINDS", "Summary", "classify_file", "output_paths"]

# Names the single-module lapor_nlp.batch had, now in the module that owns them: they still resolve
# here for one release, with a DeprecationWarning.
_MOVED = {
    "AUTO_PREFIX": ("rows", "AUTO_PREFIX"), "NO_TEXT": ("rows", "NO_TEXT"),
    "default_columns": ("rows", "default_columns"), "prediction_names": ("rows", "prediction_names"),
    "choose_prefix": ("rows", "choose_prefix"), "row_undecodable": ("rows", "row_undecodable"),
    "value_undecodable": ("rows", "value_undecodable"), "row_item": ("rows", "row_item"),
    "predict_items": ("rows", "predict_items"), "prediction_values": ("rows", "prediction_values"),
    "REJECT_LEAD": ("formats", "REJECT_LEAD"), "REJECT_RAW": ("formats", "REJECT_RAW"),
    "REJECT_CLASH_PREFIX": ("formats", "REJECT_CLASH_PREFIX"), "reject_header": ("formats", "reject_header"),
    "_cell": ("formats", "cell"),
    "ChunkSpec": ("chunk", "ChunkSpec"), "run_chunk": ("chunk", "run_chunk"),
    "MANIFEST_VERSION": ("workdir", "MANIFEST_VERSION"), "input_identity": ("workdir", "input_identity"),
    "_Lock": ("workdir", "Lock"),
    "get_router": ("executors", "get_router"), "LOADS": ("executors", "LOADS"),
    "_InProcess": ("executors", "InProcess"), "_Pool": ("executors", "ProcessPool"),
    "_default_jobs": ("executors", "default_jobs"),
    "Columns": ("lapor_nlp.columns", "Columns"),
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        module, attr = _MOVED[name]
        mod = importlib.import_module(module if "." in module else f"{__name__}.{module}")
        warnings.warn(f"lapor_nlp.batch.{name} is deprecated: use {mod.__name__}.{attr}",
                      DeprecationWarning, stacklevel=2)
        return getattr(mod, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
