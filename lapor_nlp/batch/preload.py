"""What a process pool's fork server imports before it forks the workers (Linux; see
``executors._pool_context``): lapor-nlp's routing stack, and the model the run named in
``LAPOR_NLP_POOL_PRELOAD`` (``[model_dir, router options, the run's pid]`` as JSON), loaded once
into the router cache so that every worker forked from the server starts with it.

A model that cannot be loaded is left for each worker to load, which reports the error through the
pool as before; the server itself ends only with the run.
"""

from __future__ import annotations

import json
import os

from .executors import LOADS, PRELOAD_ENV, die_with_run, get_router


#: The model this process loaded at import, as ``LOADS`` keys it (inherited by forked workers).
PRELOADED: list[str] = []


def _preload() -> None:
    named = os.environ.get(PRELOAD_ENV)
    if not named:
        return
    model_dir, options, run_pid = json.loads(named)
    # The server dies with the run (even SIGKILLed), and its workers with it: else the workers,
    # which hold the server's "alive" pipe, would keep it and themselves alive after the run,
    # each with the model.
    die_with_run(run_pid)
    try:
        get_router(model_dir, options)
    except Exception:  # noqa: BLE001 - the workers load it themselves, and say why it fails
        return
    PRELOADED.append(str(model_dir))


def preloaded() -> tuple[list[str], dict]:
    """(the models preloaded, ``LOADS``) of the process it runs in: in a pool worker, what it
    inherited from the fork server (a check for tests and operators)."""
    return list(PRELOADED), dict(LOADS)


_preload()
