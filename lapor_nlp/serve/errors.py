"""What a failure looks like to a client: every error is one JSON body,
``{"error": {"code", "message", "field", "request_id", ...}}``, whatever raised it.

Library input errors are the client's (422, with their ``LAPOR-E###`` code); anything else is a
500 whose message names only the request id, and whose log line names the exception type and the
code location, never the exception's message: messages can quote the input.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from pathlib import Path
from typing import Any

from ..errors import (BatchInputError, DataValidationError, InputTypeError, InputValueError,
                      LaporError, schema_error_message)
from ..schemas import TEXT_ERRORS
from ._fastapi import FastAPI, Request, RequestValidationError, Response, StarletteHTTPException
from .limits import Overloaded

#: One logger for the whole service: the name the CLI's log configuration and operators know.
log = logging.getLogger("lapor_nlp.serve")

_INPUT_ERRORS = (InputTypeError, InputValueError, BatchInputError, DataValidationError)
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout",
                 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
                 503: "not_ready"}
#: FastAPI's detail for a request body it could not read at all (a 400); other 400s keep theirs.
_BODY_UNREADABLE = "There was an error parsing the body"
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9/_.\-]")


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message
        self.field, self.details, self.headers = field, details, headers


def error_bytes(code: str, message: str, field: str | None = None, request_id: str | None = None,
                details: list[dict] | None = None) -> bytes:
    """The error body, encoded (also sent by the gate, outside FastAPI)."""
    err: dict[str, Any] = {"code": code, "message": message, "field": field, "request_id": request_id}
    if details:
        err["details"] = details
    return json.dumps({"error": err}, ensure_ascii=False).encode("utf-8")


def internal_error_message(request_id: str | None) -> str:
    return f"internal error; quote request id {request_id} when reporting it"


def request_id(request: Request) -> str | None:
    """The id the gate gave this request."""
    return request.scope.get("lapor_request_id")


def error_response(request: Request, exc: ApiError) -> Response:
    return Response(error_bytes(exc.code, exc.message, exc.field, request_id(request), exc.details),
                    status_code=exc.status, media_type="application/json", headers=exc.headers)


def safe_path(path: str) -> str:
    """A request path fit for a log line (cut, and nothing but plain path characters)."""
    return _PATH_UNSAFE.sub("?", path[:120])


def log_exception(exc: BaseException, request_id: str, method: str, path: str) -> None:
    """Type and code location only: an exception message may quote a complaint."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(frames))
    log.error("unhandled %s in %s %s id=%s at %s", type(exc).__name__, method, safe_path(path),
              request_id, where or "?")


def _field(loc) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def validation_to_api_error(errors: list[dict], max_batch: int) -> ApiError:
    """FastAPI's schema errors as one answer: malformed JSON (400), a batch over ``max_batch``, or
    the first failing field with the others in ``details`` (422)."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        loc = first.get("loc", ())
        pos = f" at character {loc[1]}" if len(loc) > 1 else ""
        why = (first.get("ctx") or {}).get("error", "JSON decode error")
        return ApiError(400, "malformed_json", f"the request body is not valid JSON: {why}{pos}")
    # A text problem first, as the library does (schemas.complaint_error): it has its own code.
    first = next((e for e in errors if e.get("type") in TEXT_ERRORS), first)
    errors = [first] + [e for e in errors if e is not first]
    details = [{"field": _field(e.get("loc", ())), "message": schema_error_message(e),
                "type": str(e.get("type", ""))} for e in errors[:20]]
    field = details[0]["field"]
    text_error = TEXT_ERRORS.get(first.get("type"))
    code = text_error.code if text_error is not None else "invalid_request"
    if field == "items" and first.get("type") == "too_long":
        got = (first.get("ctx") or {}).get("actual_length")
        return ApiError(422, "batch_too_large",
                        f"a batch holds at most {max_batch} complaints"
                        + (f", this one has {got}" if got is not None else "")
                        + "; split it into several requests", field="items")
    if field is None and first.get("type") == "missing":
        message = "the request body must be a JSON object: it is missing"
    elif field is None and not isinstance(first.get("input"), dict):
        message = "the request body must be a JSON object: " + details[0]["message"]
    else:  # a field's error, or one about the object as a whole
        message = f"{field}: {details[0]['message']}" if field else details[0]["message"]
        if len(details) > 1:
            message += f" (and {len(details) - 1} more error{'s' if len(details) > 2 else ''})"
    return ApiError(422, code, message, field=field,
                    details=details if len(details) > 1 else None)


# -- exception handlers ------------------------------------------------------------------------------
async def _on_api_error(request: Request, exc: ApiError) -> Response:
    return error_response(request, exc)


async def _on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
    max_batch = request.app.state.limits["max_batch"]
    return error_response(request, validation_to_api_error(list(exc.errors()), max_batch))


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 400 and exc.detail == _BODY_UNREADABLE:
        code, message = _unreadable_body(exc.__cause__)
    return error_response(request, ApiError(exc.status_code, code, message,
                                            headers=getattr(exc, "headers", None)))


def _unreadable_body(cause: BaseException | None) -> tuple[str, str]:
    """Why FastAPI could not read a body as JSON (it raises a 400 from the parser's exception)."""
    if isinstance(cause, RecursionError):  # valid JSON, nested deeper than the parser goes
        return "json_too_deep", ("the request body nests arrays or objects too deeply to parse; "
                                 "a complaint needs at most a few levels")
    if isinstance(cause, UnicodeDecodeError):
        return "malformed_json", "the request body is not valid UTF-8 JSON"
    return "malformed_json", "the request body could not be read as JSON"


async def _on_overloaded(request: Request, exc: Overloaded) -> Response:
    request.scope["lapor_shed"] = exc.reason  # counted by the gate
    return error_response(request, ApiError(503, "overloaded", exc.message,
                                            headers={"Retry-After": str(exc.retry_after)}))


async def _on_lapor_error(request: Request, exc: LaporError) -> Response:
    if isinstance(exc, _INPUT_ERRORS):
        return error_response(request, ApiError(422, exc.code, exc.message, field=exc.field))
    # A server-side library error (model files, resources): its code, no details.
    log_exception(exc, request_id(request) or "?", request.method, request.url.path)
    message = internal_error_message(request_id(request))
    return error_response(request, ApiError(500, exc.code, message))


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error raised inside the app in the one error format (the gate answers those
    raised before the app, and any exception that escapes these handlers)."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(LaporError, _on_lapor_error)
    app.add_exception_handler(Overloaded, _on_overloaded)
