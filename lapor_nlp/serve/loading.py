"""The model behind the service: loaded once per worker process, at startup (the ASGI lifespan),
and warmed up with one prediction before the worker accepts traffic."""

from __future__ import annotations

import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from .._version import __version__
from ._fastapi import FastAPI, run_in_threadpool
from .errors import log
from .health import start_health_server


#: The pinned model's sha256 (``serve --model-sha256``), for every worker process that loads it.
MODEL_SHA256_ENV = "LAPOR_NLP_SERVE_MODEL_SHA256"


def load_router(model_dir: str | Path | None, max_text_chars: int, home_region: str | None = None,
                scope: str | None = None):
    """The router for ``model_dir`` (None: the bundled default model, built on first use), warmed
    up."""
    from ..router import Router
    from ..training.default import ensure_default_model

    # Accepted texts (<= max_text_chars, title <= 1000) are never cut by the router.
    path = model_dir if model_dir is not None else ensure_default_model()
    router = Router.load(path, max_chars=max_text_chars + 1002, home_region=home_region, scope=scope,
                         sha256=os.environ.get(MODEL_SHA256_ENV) or None)
    router.predict("Lampu jalan di depan rumah kami mati sudah seminggu, Kota Malang")  # warm-up
    return router


def model_info(router, limits: dict[str, int]) -> dict:
    """The body of ``GET /v1/model``."""
    m = router.manifest
    return {"name": router.name, "version": router.version, "lapor_nlp_version": __version__,
            "created": m.get("created"), "labels": router.labels,
            "label_names": {t: {str(k): str(v) for k, v in names.items()}
                            for t, names in (router.label_names or {}).items()
                            if isinstance(names, dict)},
            "metrics": m.get("metrics") or {}, "limits": limits}


@asynccontextmanager
async def model_lifespan(app: FastAPI, *, model_dir: str | Path | None, home_region: str | None,
                         scope: str | None = None, health: tuple[str, int] | None = None):
    """The app's lifespan: ``app.state.router`` (None until loaded: ``/readyz`` answers 503) and
    ``app.state.info``, the ``/v1/model`` body, encoded once. Bind the keywords with
    :func:`functools.partial`."""
    limits = app.state.limits
    probes = start_health_server(app.state, *health) if health else None  # alive while loading
    t0 = time.perf_counter()
    app.state.router = await run_in_threadpool(load_router, model_dir, limits["max_text_chars"],
                                               home_region, scope)
    app.state.info = json.dumps(model_info(app.state.router, limits),
                                ensure_ascii=False).encode("utf-8")
    app.state.metrics.model_loaded(app.state.router.name, app.state.router.version)
    log.info("model %s %s loaded in %.1fs (pid %d)", app.state.router.name,
             app.state.router.version, time.perf_counter() - t0, os.getpid())
    try:
        yield
    finally:
        app.state.router = None
        app.state.work.close()
        if probes is not None:
            probes.shutdown()
        log.info("worker %d stopped", os.getpid())
