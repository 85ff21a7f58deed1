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
from .gate import API_KEY_HEADER, OPEN_PATHS, Gate
from .loading import model_lifespan
from .routes import add_routes
from .settings import (ENV_HOME_REGION, ENV_SCOPE, ENV_KEY_FILE, ENV_MAX_BATCH, ENV_MAX_BODY, ENV_MAX_TEXT,
                       ENV_MODEL, ENV_NO_AUTH, MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS,
                       find_api_key)


def create_app(model_dir: str | Path | None = None, *, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH,
               max_text_chars: int = MAX_TEXT_CHARS, home_region: str | None = None,
               scope: str | None = None) -> FastAPI:
    """Build the FastAPI app. The model (``model_dir``, or the bundled default model when None) is
    loaded when the app starts (lifespan), once per worker process. ``api_key``: when set, every
    endpoint but ``/healthz`` and ``/readyz`` needs it in the ``X-API-Key`` header.
    ``home_region``: the regency/city the portal serves; ``scope``: an institution's own desk, a
    taxonomy code such as ``"kemenimipas"`` (see :class:`~lapor_nlp.router.Router`)."""
    limits = {"max_body_bytes": max_body_bytes, "max_batch": max_batch,
              "max_text_chars": max_text_chars}
    for name, value in limits.items():
        if not isinstance(value, int) or value < 1:
            raise InputValueError(f"{name} must be a positive integer, got {value!r}")

    app = FastAPI(title="lapor-nlp", version=__version__,
                  lifespan=partial(model_lifespan, model_dir=model_dir, home_region=home_region,
                                   scope=scope),
                  description="Route Indonesian public-service complaints: topic, responsible "
                              "agency and the concrete office.")
    app.state.router = None  # set by the lifespan once the model is loaded
    app.state.info = None
    app.state.limits = limits
    add_error_handlers(app)
    add_routes(app, max_batch)
    if api_key:
        _document_api_key(app)
    app.add_middleware(Gate, api_key=api_key, max_body_bytes=max_body_bytes)
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
                      home_region=env.get(ENV_HOME_REGION) or None, scope=env.get(ENV_SCOPE) or None)
