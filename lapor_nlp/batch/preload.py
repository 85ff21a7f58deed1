"""What a process pool's fork server imports before it forks the workers (Linux; see
``executors._pool_context``): lapor-nlp's routing stack, and the model the run named in
``LAPOR_NLP_POOL_PRELOAD`` (``[model_dir, router options]`` as JSON), loaded once into the
worker's router cache so that every worker forked from the server starts with it.

Nothing here may stop the server: a model that cannot be loaded is left for each worker to load,
which reports the error through the pool as before.
"""

from __future__ import annotations

import json
import os

from .executors import LOADS, PRELOAD_ENV, get_router


#: The model this process loaded at import, as ``LOADS`` keys it (inherited by forked workers).
PRELOADED: list[str] = []


def _preload() -> None:
    named = os.environ.get(PRELOAD_ENV)
    if not named:
        return
    try:
        model_dir, options = json.loads(named)
        get_router(model_dir, options)
    except Exception:  # noqa: BLE001 - the workers load it themselves, and say why it fails
        return
    PRELOADED.append(str(model_dir))


def preloaded() -> tuple[list[str], dict]:
    """(the models preloaded, ``LOADS``) of the process it runs in: in a pool worker, what it
    inherited from the fork server (a check for tests and operators)."""
    return list(PRELOADED), dict(LOADS)


_preload()
