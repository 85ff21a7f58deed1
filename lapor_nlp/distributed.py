"""Deprecated: Dask classification moved to :mod:`lapor_nlp.batch.dask`, beside the backlog job it
runs. Importing this module still works, with a warning, for one release."""

import warnings

from .batch.dask import REJECT_COLUMN, classify, worker_model_loads  # noqa: F401
from .batch.dask import DaskChunks as _DaskChunks  # noqa: F401
from .batch.dask import _as_dask, _classify_partition, _jsonl_columns, _read_local_file  # noqa: F401
from .batch.dask import remote_chunk as _remote_chunk  # noqa: F401

__all__ = ["REJECT_COLUMN", "classify", "worker_model_loads"]

warnings.warn("lapor_nlp.distributed is deprecated: use lapor_nlp.batch.dask (classify, worker_model_loads)",
              DeprecationWarning, stacklevel=2)
