"""HTTP service: the :class:`~lapor_nlp.router.Router` behind a small FastAPI app (``lapor-nlp serve``).

Endpoints (request and response bodies are the same pydantic models as the Python API, so the
OpenAPI document at ``/openapi.json`` shows exactly :class:`~lapor_nlp.schemas.Complaint` and
:class:`~lapor_nlp.schemas.Prediction`)::

    POST /v1/predict        Complaint                  -> Prediction
    POST /v1/predict/batch  {"items": [Complaint, ...]} -> {"items": [Prediction or error, ...]}
                            (same order; a bad item is answered at its position)
    POST /v1/mask-pii       {"text": "..."}             -> {"text": "<masked>"}
    GET  /v1/model          name, version, labels per task, metrics, limits
    GET  /healthz           the process is alive, and its model (never needs the key, never shed)
    GET  /readyz            the model is loaded: 200, else 503 (never needs the API key)
    GET  /metrics           Prometheus metrics (text format)

Every error is ``{"error": {"code", "message", "field", "request_id", ...}}``: 400 malformed JSON,
401 missing or wrong ``X-API-Key``, 413 body over ``max_body_bytes`` (checked from Content-Length
before reading and again while reading), 422 schema errors (``field`` names the failing field,
e.g. ``items.3.text``), a batch over ``max_batch`` (``batch_too_large``), a text over
``max_text_chars`` (``text_too_long``: refused, never silently truncated) and the library's input
errors (their ``LAPOR-E###`` code), 408 a body that came too slowly, 503 ``overloaded`` with
``Retry-After`` past a load limit (:mod:`~lapor_nlp.serve.limits`). Anything else is a 500 with a generic message and the request
id; its log line carries the exception type and the code location, never its message (messages
can quote the input) and never a complaint text.

One log line per request on the ``lapor_nlp.serve`` logger: method, path, status, duration in ms
and the request id (``X-Request-ID`` from the client when it is a plain token of at most 128
characters, else a new one; echoed in every response). Bodies are never logged.

The model is loaded once per worker process, at startup (the ASGI lifespan), and warmed up with one
prediction before the worker accepts traffic.

One module per job: :mod:`~lapor_nlp.serve.app` (assembly, ``create_app``),
:mod:`~lapor_nlp.serve.routes` (the endpoints), :mod:`~lapor_nlp.serve.gate` (the ASGI gate),
:mod:`~lapor_nlp.serve.errors` (errors as HTTP answers), :mod:`~lapor_nlp.serve.models` (request
and response bodies), :mod:`~lapor_nlp.serve.loading` (the model) and
:mod:`~lapor_nlp.serve.settings` (defaults, environment, API key; no FastAPI needed).

FastAPI is an optional extra, and ``lapor-nlp serve --help`` reads the settings without it: this
package imports only the settings up front, and the rest on first use of one of its names
(``from lapor_nlp.serve import create_app``), which raises
:class:`~lapor_nlp.errors.DependencyError` with the install hint when FastAPI is missing.
"""

from __future__ import annotations

import importlib
import logging

from .settings import (ENV_API_KEY, ENV_HOME_REGION, ENV_KEY_FILE, ENV_MAX_BATCH, ENV_MAX_BODY,
                       ENV_MAX_TEXT, ENV_MODEL, ENV_NO_AUTH, ENV_SCOPE, MAX_BATCH, MAX_BODY_BYTES,
                       MAX_TEXT_CHARS, find_api_key, read_api_key_file)

log = logging.getLogger(__name__)

#: Names that need FastAPI, and the submodule that holds each.
_LAZY = {
    "create_app": "app", "app_from_env": "app",
    "API_KEY_HEADER": "gate", "REQUEST_ID_HEADER": "gate", "OPEN_PATHS": "gate",
    "ApiError": "errors",
    "load_router": "loading", "model_info": "loading",
    "ErrorDetail": "models", "ErrorInfo": "models", "ErrorResponse": "models",
    "MaskRequest": "models", "MaskResponse": "models", "BatchResponse": "models",
    "ModelInfo": "models", "Status": "models",
}

__all__ = ["ENV_API_KEY", "ENV_HOME_REGION", "ENV_KEY_FILE", "ENV_MAX_BATCH", "ENV_MAX_BODY", "ENV_SCOPE",
           "ENV_MAX_TEXT", "ENV_MODEL", "ENV_NO_AUTH", "MAX_BATCH", "MAX_BODY_BYTES",
           "MAX_TEXT_CHARS", "find_api_key", "read_api_key_file", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
