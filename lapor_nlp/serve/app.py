"""Assembly of the service: :func:`create_app` puts the model lifespan, the error handlers, the
endpoints and the gate together; :func:`app_from_env` does the same from environment variables
(each ``--workers N`` process)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from .._version import __version__
from ..errors import InputValueError
from ._fastapi import FastAPI
from .errors import add_error_handlers
from .feedback import add_feedback_route
from .gate import API_KEY_HEADER, OPEN_PATHS, Gate
from .limits import Limits
from .loading import model_lifespan
from .metrics import Metrics
from .routes import add_routes
from .settings import (BODY_TIMEOUT, ENV_BODY_TIMEOUT, ENV_HEALTH, ENV_HOME_REGION, ENV_KEY_FILE, ENV_MAX_BATCH,
                       ENV_MAX_BODY, ENV_MAX_BUFFERED, ENV_MAX_CONCURRENCY, ENV_MAX_TEXT, ENV_MODEL,
                       ENV_NO_AUTH, ENV_QUEUE_TIMEOUT, ENV_SCOPE, MAX_BATCH, MAX_BODY_BYTES,
                       MAX_BUFFERED_BYTES, MAX_CONCURRENCY, MAX_TEXT_CHARS, QUEUE_TIMEOUT,
                       find_api_key)


def create_app(model_dir: str | Path | None = None, *, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH,
               max_text_chars: int = MAX_TEXT_CHARS, home_region: str | None = None,
               scope: str | None = None, max_concurrency: int = MAX_CONCURRENCY,
               queue_timeout: float = QUEUE_TIMEOUT, max_buffered_bytes: int = MAX_BUFFERED_BYTES,
               body_timeout: float = BODY_TIMEOUT, health: tuple[str, int] | None = None,
               feedback_db: str | Path | None = None) -> FastAPI:
    """Build the FastAPI app. The model (``model_dir``, or the bundled default model when None) is
    loaded when the app starts (lifespan), once per worker process. ``api_key``: when set, every
    endpoint but ``/healthz`` and ``/readyz`` needs it in the ``X-API-Key`` header.
    ``home_region``: the regency/city the portal serves; ``scope``: an institution's own desk, a
    taxonomy code such as ``"kemenimipas"`` (see :class:`~lapor_nlp.router.Router`).

    Load limits (per worker process; see :mod:`~lapor_nlp.serve.limits`): at most
    ``max_concurrency`` predict, batch and mask-pii requests in flight, each waiting at most
    ``queue_timeout`` s for the prediction thread, at most ``max_buffered_bytes`` of request
    bodies in memory, and ``body_timeout`` s to receive a body; past any of them, 503 with
    ``Retry-After`` (408 for a late body). ``health=(host, port)``: also answer ``/healthz`` and
    ``/readyz`` there, from a thread of their own (:mod:`~lapor_nlp.serve.health`)."""
    limits = {"max_body_bytes": max_body_bytes, "max_batch": max_batch,
              "max_text_chars": max_text_chars}
    for name, value in {**limits, "max_concurrency": max_concurrency,
                        "max_buffered_bytes": max_buffered_bytes}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in {"queue_timeout": queue_timeout, "body_timeout": body_timeout}.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputValueError(f"{name} must be a positive number of seconds, got {value!r}")

    app = FastAPI(title="lapor-nlp", version=__version__,
                  lifespan=partial(model_lifespan, model_dir=model_dir, home_region=home_region,
                                   health=health,
                                   scope=scope),
                  description="Route Indonesian public-service complaints: topic, responsible "
                              "agency and the concrete office.")
    app.state.router = None  # set by the lifespan once the model is loaded
    app.state.info = None
    app.state.limits = limits
    app.state.work = work = Limits(max_concurrency=max_concurrency, queue_timeout=queue_timeout,
                                   max_buffered_bytes=max_buffered_bytes)
    app.state.metrics = metrics = Metrics(work)
    add_error_handlers(app)
    add_routes(app, max_batch)
    add_feedback_route(app, feedback_db)  # POST /v1/feedback (lapor_nlp.serve.feedback)
    if api_key:
        _document_api_key(app)
    app.add_middleware(Gate, api_key=api_key, max_body_bytes=max_body_bytes,
                       body_timeout=body_timeout, limits=work, metrics=metrics)
    return app


def _document_api_key(app: FastAPI) -> None:
    """The OpenAPI document names the API key on every endpoint that needs it (the gate checks it,
    so FastAPI would not know)."""
    base_openapi = app.openapi

    def openapi_with_key():
        schema = base_openapi()
        comps = schema.setdefault("components", {})
        if "securitySchemes" not in comps:
            comps["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header",
                                                   "name": API_KEY_HEADER}}
            for path, ops in schema.get("paths", {}).items():
                if path not in OPEN_PATHS:
                    for op in ops.values():
                        op["security"] = [{"ApiKey": []}]
        return schema

    app.openapi = openapi_with_key  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory lapor_nlp.serve:app_from_env`` (used by ``--workers N``):
    settings from ``LAPOR_NLP_SERVE_*`` variables, the key from ``LAPOR_NLP_SERVE_API_KEY_FILE`` or
    ``LAPOR_NLP_API_KEY`` (ignored when ``LAPOR_NLP_SERVE_NO_AUTH=1``)."""
    env = os.environ
    key = find_api_key(no_auth=env.get(ENV_NO_AUTH) == "1", key_file=env.get(ENV_KEY_FILE), environ=env)
    return create_app(env.get(ENV_MODEL) or None, api_key=key,
                      max_body_bytes=int(env.get(ENV_MAX_BODY, MAX_BODY_BYTES)),
                      max_batch=int(env.get(ENV_MAX_BATCH, MAX_BATCH)),
                      max_text_chars=int(env.get(ENV_MAX_TEXT, MAX_TEXT_CHARS)),
                      home_region=env.get(ENV_HOME_REGION) or None, scope=env.get(ENV_SCOPE) or None,
                      max_concurrency=int(env.get(ENV_MAX_CONCURRENCY, MAX_CONCURRENCY)),
                      queue_timeout=float(env.get(ENV_QUEUE_TIMEOUT, QUEUE_TIMEOUT)),
                      max_buffered_bytes=int(env.get(ENV_MAX_BUFFERED, MAX_BUFFERED_BYTES)),
                      body_timeout=float(env.get(ENV_BODY_TIMEOUT, BODY_TIMEOUT)),
                      health=_host_port(env.get(ENV_HEALTH)))


def _host_port(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)
