"""HTTP service: the :class:`~lapor_nlp.router.Router` behind a small FastAPI app (``lapor-nlp serve``).

Endpoints (request and response bodies are the same pydantic models as the Python API, so the
OpenAPI document at ``/openapi.json`` shows exactly :class:`~lapor_nlp.schemas.Complaint` and
:class:`~lapor_nlp.schemas.Prediction`)::

    POST /v1/predict        Complaint                  -> Prediction
    POST /v1/predict/batch  {"items": [Complaint, ...]} -> {"items": [Prediction, ...]} (same order)
    POST /v1/mask-pii       {"text": "..."}             -> {"text": "<masked>"}
    GET  /v1/model          name, version, labels per task, metrics, limits
    GET  /healthz           the process is alive (never needs the API key)
    GET  /readyz            the model is loaded: 200, else 503 (never needs the API key)

Every error is ``{"error": {"code", "message", "field", "request_id", ...}}``: 400 malformed JSON,
401 missing or wrong ``X-API-Key``, 413 body over ``max_body_bytes`` (checked from Content-Length
before reading and again while reading), 422 schema errors (``field`` names the failing field,
e.g. ``items.3.text``), a batch over ``max_batch`` (``batch_too_large``), a text over
``max_text_chars`` (``text_too_long``: refused, never silently truncated) and the library's input
errors (their ``LAPOR-E###`` code). Anything else is a 500 with a generic message and the request
id; its log line carries the exception type and the code location, never its message (messages
can quote the input) and never a complaint text.

One log line per request on the ``lapor_nlp.serve`` logger: method, path, status, duration in ms
and the request id (``X-Request-ID`` from the client when it is a plain token of at most 128
characters, else a new one; echoed in every response). Bodies are never logged.

The model is loaded once per worker process, at startup (the ASGI lifespan), and warmed up with one
prediction before the worker accepts traffic.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time,
# and the batch request model is made inside create_app (its max_length is a setting).
import hmac
import json
import logging
import os
import re
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .errors import (BatchInputError, DataValidationError, DependencyError, InputTypeError,
                     InputValueError, LaporError)

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # an optional extra
    raise DependencyError(f"lapor_nlp.serve needs FastAPI ({exc.name} is missing): "
                          "pip install 'lapor-nlp[serve]'") from None
from pydantic import BaseModel, ConfigDict, Field, create_model

from ._version import __version__
from .schemas import Complaint, Prediction
from .serve_settings import (  # noqa: F401 - ENV_* and read_api_key_file are part of this API
    ENV_API_KEY, ENV_HOME_REGION, ENV_KEY_FILE, ENV_MAX_BATCH, ENV_MAX_BODY, ENV_MAX_TEXT, ENV_MODEL,
    ENV_NO_AUTH, MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS, find_api_key, read_api_key_file,
)
from .text.pii import mask_pii

log = logging.getLogger("lapor_nlp.serve")

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
#: Paths that answer without the API key (orchestrator probes).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_INPUT_ERRORS = (InputTypeError, InputValueError, BatchInputError, DataValidationError)
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:\-]{1,128}").fullmatch
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9/_.\-]")
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
                 503: "not_ready"}
#: FastAPI's detail for a request body it could not read at all (a 400); other 400s keep theirs.
_BODY_UNREADABLE = "There was an error parsing the body"
#: Oversize bodies up to this many bytes are read and dropped before the 413 goes out, so that the
#: client, still writing, reads a clean 413 instead of a reset connection; past it, we just close.
_DRAIN_LIMIT = 8 * 1024 * 1024


# -- response and request models (OpenAPI) ---------------------------------------------------------
class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    type: str


class ErrorInfo(BaseModel):
    code: str = Field(..., description="stable error code: 'malformed_json', 'invalid_request', "
                                       "'batch_too_large', 'text_too_long', 'payload_too_large', "
                                       "'unauthorized', 'not_ready', 'internal_error', ... or a "
                                       "library code 'LAPOR-E###'")
    message: str
    field: str | None = Field(None, description="the failing field, dotted (e.g. 'items.3.text')")
    request_id: str | None = None
    details: list[ErrorDetail] | None = Field(None, description="every schema error, when several")


class ErrorResponse(BaseModel):
    error: ErrorInfo


class MaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., examples=["hubungi saya di 0812-3456-7890"])


class MaskResponse(BaseModel):
    text: str = Field(..., description="the text with NIK, phone numbers, emails, plates and bank "
                                       "accounts replaced by [NIK], [TELEPON], [EMAIL], [PLAT], "
                                       "[REKENING]")


class BatchResponse(BaseModel):
    items: list[Prediction]


class ModelInfo(BaseModel):
    name: str
    version: str = Field(..., description="library version + model file hash prefix")
    lapor_nlp_version: str = Field(..., description="version of the library serving the model")
    created: str | None = None
    labels: dict[str, list[str]] = Field(..., description="labels per task")
    label_names: dict[str, dict[str, str]] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict, description="held-out metrics from the "
                                                                      "manifest")
    limits: dict[str, int]


class Status(BaseModel):
    status: str
    model: str | None = None
    version: str | None = None


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed JSON"},
    401: {"model": ErrorResponse, "description": "missing or wrong X-API-Key (when auth is on)"},
    413: {"model": ErrorResponse, "description": "request body over the size limit"},
    415: {"model": ErrorResponse, "description": "Content-Type is not application/json"},
    422: {"model": ErrorResponse, "description": "schema error, batch or text over its limit"},
    500: {"model": ErrorResponse, "description": "internal error (generic message + request id)"},
    503: {"model": ErrorResponse, "description": "model not loaded yet"},
}


# -- errors -----------------------------------------------------------------------------------------
class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message
        self.field, self.details, self.headers = field, details, headers


def _error_bytes(code: str, message: str, field: str | None = None, request_id: str | None = None,
                 details: list[dict] | None = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "field": field, "request_id": request_id}
    if details:
        err["details"] = details
    return json.dumps({"error": err}, ensure_ascii=False).encode("utf-8")


def _request_id(request: Request) -> str | None:
    return request.scope.get("lapor_request_id")


def _error_response(request: Request, exc: ApiError) -> Response:
    return Response(_error_bytes(exc.code, exc.message, exc.field, _request_id(request), exc.details),
                    status_code=exc.status, media_type="application/json", headers=exc.headers)


def _field(loc) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _validation_to_api_error(errors: list[dict], max_batch: int) -> ApiError:
    first = errors[0]
    if first.get("type") == "json_invalid":
        loc = first.get("loc", ())
        pos = f" at character {loc[1]}" if len(loc) > 1 else ""
        why = (first.get("ctx") or {}).get("error", "JSON decode error")
        return ApiError(400, "malformed_json", f"the request body is not valid JSON: {why}{pos}")
    details = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "")),
                "type": str(e.get("type", ""))} for e in errors[:20]]
    field = details[0]["field"]
    if field == "items" and first.get("type") == "too_long":
        got = (first.get("ctx") or {}).get("actual_length")
        return ApiError(422, "batch_too_large",
                        f"a batch holds at most {max_batch} complaints"
                        + (f", this one has {got}" if got is not None else "")
                        + "; split it into several requests", field="items")
    if field is None:
        message = ("the request body must be a JSON object: "
                   + ("it is missing" if first.get("type") == "missing" else details[0]["message"]))
    else:
        message = f"{field}: {details[0]['message']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more error{'s' if len(details) > 2 else ''})"
    return ApiError(422, "invalid_request", message, field=field,
                    details=details if len(details) > 1 else None)


# -- the ASGI gate: request id, timing, log line, auth, body size, last-resort 500 -----------------
def _safe_path(path: str) -> str:
    return _PATH_UNSAFE.sub("?", path[:120])


def _log_exception(exc: BaseException, request_id: str, method: str, path: str) -> None:
    """Type and code location only: an exception message may quote a complaint."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(frames))
    log.error("unhandled %s in %s %s id=%s at %s", type(exc).__name__, method, _safe_path(path),
              request_id, where or "?")


class _Gate:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) wrapped around the FastAPI router."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = key = length = ctype = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                v = value.decode("latin-1")
                rid = v if _REQUEST_ID_OK(v) else None
            elif name == b"x-api-key":
                key = value
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                ctype = value
        if rid is None:
            rid = uuid.uuid4().hex
        scope["lapor_request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("ascii"))
        state = {"status": 500, "started": False}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        method, path = scope["method"], scope["path"]
        try:
            if self.api_key is not None and path not in OPEN_PATHS and \
                    (key is None or not hmac.compare_digest(key, self.api_key)):
                what = "missing" if key is None else "wrong"
                await _send_error(send_with_id, 401, "unauthorized",
                                  f"{what} API key: send it in the {API_KEY_HEADER} header", rid)
                return
            if method in ("POST", "PUT", "PATCH"):
                receive = await self._buffered(receive, send_with_id, length, rid)
                if receive is None:
                    if not state["started"]:
                        state["status"] = 499  # the client went away before sending its body
                    return
                # Strict, as FastAPI is: a body without a JSON Content-Type could come from a
                # cross-site form post (no CORS preflight for those).
                if (ctype is None and length not in (None, b"0")) or \
                        (ctype is not None and not _is_json(ctype)):
                    await _send_error(send_with_id, 415, "unsupported_media_type",
                                      "send the body as JSON with Content-Type: application/json",
                                      rid)
                    return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - last resort: never a stack trace to the client
            _log_exception(exc, rid, method, path)
            if not state["started"]:
                await _send_error(send_with_id, 500, "internal_error",
                                  f"internal error; quote request id {rid} when reporting it", rid)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s %d %.2fms id=%s", method, _safe_path(path), state["status"],
                         (time.perf_counter() - t0) * 1000.0, rid)

    async def _buffered(self, receive, send, length: bytes | None, rid: str):
        """Read the whole body (at most ``max_body`` bytes) and return a receive that replays it;
        None when a 413 (or nothing, the client having gone) was answered instead."""
        limit = self.max_body
        declared = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = None
        if declared is not None and declared > _DRAIN_LIMIT:
            await self._too_large(send, rid, declared)
            return None
        chunks: list[bytes] = []
        size = 0
        over = declared is not None and declared > limit
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                over = True
            if not over:
                chunks.append(body)
            elif size > _DRAIN_LIMIT:
                break
            if not message.get("more_body", False):
                break
        if over:
            await self._too_large(send, rid, declared)
            return None
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _too_large(self, send, rid: str, declared: int | None) -> None:
        got = f"Content-Length is {declared}" if declared is not None else "the body is longer"
        await _send_error(send, 413, "payload_too_large",
                          f"the request body is over the limit of {self.max_body} bytes ({got})",
                          rid, extra_headers=[(b"connection", b"close")])


def _is_json(content_type: bytes) -> bool:
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))


async def _send_error(send, status: int, code: str, message: str, rid: str,
                      extra_headers: list | None = None) -> None:
    body = _error_bytes(code, message, None, rid)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *(extra_headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the model --------------------------------------------------------------------------------------
def load_router(model_dir: str | Path | None, max_text_chars: int, home_region: str | None = None):
    from .router import Router

    # Accepted texts (<= max_text_chars, title <= 1000) are never cut by the router.
    router = Router.load(model_dir, max_chars=max_text_chars + 1002, home_region=home_region)
    router.predict("Lampu jalan di depan rumah kami mati sudah seminggu, Kota Malang")  # warm-up
    return router


def model_info(router, limits: dict[str, int]) -> dict:
    m = router.manifest
    return {"name": router.name, "version": router.version, "lapor_nlp_version": __version__,
            "created": m.get("created"), "labels": router.labels,
            "label_names": {t: {str(k): str(v) for k, v in names.items()}
                            for t, names in (router.label_names or {}).items()
                            if isinstance(names, dict)},
            "metrics": m.get("metrics") or {}, "limits": limits}


# -- the app ----------------------------------------------------------------------------------------
def create_app(model_dir: str | Path | None = None, *, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH,
               max_text_chars: int = MAX_TEXT_CHARS, home_region: str | None = None) -> FastAPI:
    """Build the FastAPI app. The model (``model_dir``, or the bundled default model when None) is
    loaded when the app starts (lifespan), once per worker process. ``api_key``: when set, every
    endpoint but ``/healthz`` and ``/readyz`` needs it in the ``X-API-Key`` header.
    ``home_region``: the regency/city the portal serves (see :class:`~lapor_nlp.router.Router`)."""
    for name, value in (("max_body_bytes", max_body_bytes), ("max_batch", max_batch),
                        ("max_text_chars", max_text_chars)):
        if not isinstance(value, int) or value < 1:
            raise InputValueError(f"{name} must be a positive integer, got {value!r}")
    limits = {"max_body_bytes": max_body_bytes, "max_batch": max_batch,
              "max_text_chars": max_text_chars}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        t0 = time.perf_counter()
        app.state.router = await run_in_threadpool(load_router, model_dir, max_text_chars, home_region)
        app.state.info = json.dumps(model_info(app.state.router, limits),
                                    ensure_ascii=False).encode("utf-8")
        log.info("model %s %s loaded in %.1fs (pid %d)", app.state.router.name,
                 app.state.router.version, time.perf_counter() - t0, os.getpid())
        try:
            yield
        finally:
            app.state.router = None
            log.info("worker %d stopped", os.getpid())

    app = FastAPI(title="lapor-nlp", version=__version__, lifespan=lifespan,
                  description="Route Indonesian public-service complaints: topic, responsible "
                              "agency and the concrete office.")
    app.state.router = None
    app.state.info = None
    BatchRequest = create_model(  # noqa: N806 - a model class
        "BatchRequest", __config__=ConfigDict(extra="forbid"),
        items=(list[Complaint], Field(..., max_length=max_batch,
                                      description=f"at most {max_batch} complaints")))

    def ready_router(request: Request):
        router = request.app.state.router
        if router is None:
            raise ApiError(503, "not_ready", "the model is still loading; retry shortly",
                           headers={"Retry-After": "1"})
        return router

    def check_text(text: str, field: str) -> None:
        if len(text) > max_text_chars:
            raise ApiError(422, "text_too_long",
                           f"{field} has {len(text)} characters; the limit is {max_text_chars}",
                           field=field)

    to_json = Prediction.__pydantic_serializer__.to_json

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _error_response(request, _validation_to_api_error(list(exc.errors()), max_batch))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 400 and exc.detail == _BODY_UNREADABLE:  # e.g. a body not in UTF-8
            code, message = "malformed_json", "the request body is not valid UTF-8 JSON"
        return _error_response(request, ApiError(exc.status_code, code, message,
                                                 headers=getattr(exc, "headers", None)))

    @app.exception_handler(LaporError)
    async def _lapor_error(request: Request, exc: LaporError):
        if isinstance(exc, _INPUT_ERRORS):
            return _error_response(request, ApiError(422, exc.code, exc.message))
        # A server-side library error (model files, resources): its code, no details.
        _log_exception(exc, _request_id(request) or "?", request.method, request.url.path)
        return _error_response(request, ApiError(
            500, exc.code, f"internal error; quote request id {_request_id(request)} when reporting it"))

    @app.post("/v1/predict", response_model=Prediction, responses=_ERROR_RESPONSES,
              summary="Route one complaint")
    async def predict(complaint: Complaint, request: Request):
        router = ready_router(request)
        check_text(complaint.text, "text")
        return Response(to_json(router.predict(complaint)), media_type="application/json")

    @app.post("/v1/predict/batch", response_model=BatchResponse, responses=_ERROR_RESPONSES,
              summary="Route several complaints (answers in the same order)")
    async def predict_batch(batch: BatchRequest, request: Request):  # type: ignore[valid-type]
        router = ready_router(request)
        items = batch.items
        for i, c in enumerate(items):
            check_text(c.text, f"items.{i}.text")
        if len(items) <= 4:
            preds = router.predict_batch(items)
        else:  # keep the event loop answering probes while a big batch runs
            preds = await run_in_threadpool(router.predict_batch, items)
        body = b'{"items":[' + b",".join(to_json(p) for p in preds) + b"]}"
        return Response(body, media_type="application/json")

    @app.post("/v1/mask-pii", response_model=MaskResponse, responses=_ERROR_RESPONSES,
              summary="Mask personal data (NIK, phone, email, plate, bank account) in a text")
    async def mask(req: MaskRequest):
        check_text(req.text, "text")
        return MaskResponse(text=mask_pii(req.text))

    @app.get("/v1/model", response_model=ModelInfo, responses={401: _ERROR_RESPONSES[401],
                                                               503: _ERROR_RESPONSES[503]},
             summary="The loaded model: name, version, labels per task, metrics, limits")
    async def model(request: Request):
        ready_router(request)
        return Response(request.app.state.info, media_type="application/json")

    @app.get("/healthz", response_model=Status, summary="Liveness: the process answers")
    async def healthz():
        return Status(status="ok")

    @app.get("/readyz", response_model=Status, responses={503: _ERROR_RESPONSES[503]},
             summary="Readiness: the model is loaded")
    async def readyz(request: Request):
        router = ready_router(request)
        return Status(status="ready", model=router.name, version=router.version)

    if api_key:
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

    app.add_middleware(_Gate, api_key=api_key, max_body_bytes=max_body_bytes)
    return app


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
                      home_region=env.get(ENV_HOME_REGION) or None)
