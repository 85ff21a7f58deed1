"""The ASGI gate in front of the FastAPI app: request id, API key, body size and type, the log
line of each request, and a last-resort 500.

A pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``): a request it turns away
never reaches FastAPI, and an exception that escapes the app is answered here without a trace.
One log line per request: method, path, status, duration in ms and the request id
(``X-Request-ID`` from the client when it is a plain token of at most 128 characters, else a new
one; echoed in every response). Bodies are never logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from .errors import error_bytes, internal_error_message, log, log_exception, safe_path

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
#: Paths that answer without the API key (orchestrator probes).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:\-]{1,128}").fullmatch
#: Oversize bodies up to this many bytes are read and dropped before the 413 goes out, so that the
#: client, still writing, reads a clean 413 instead of a reset connection; past it, we just close.
_DRAIN_LIMIT = 8 * 1024 * 1024


class Gate:
    """Wraps the FastAPI app (``app.add_middleware(Gate, api_key=..., max_body_bytes=...)``)."""

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
                await send_error(send_with_id, 401, "unauthorized",
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
                        (ctype is not None and not is_json(ctype)):
                    await send_error(send_with_id, 415, "unsupported_media_type",
                                     "send the body as JSON with Content-Type: application/json",
                                     rid)
                    return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - last resort: never a stack trace to the client
            log_exception(exc, rid, method, path)
            if not state["started"]:
                await send_error(send_with_id, 500, "internal_error", internal_error_message(rid), rid)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s %d %.2fms id=%s", method, safe_path(path), state["status"],
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
        await send_error(send, 413, "payload_too_large",
                         f"the request body is over the limit of {self.max_body} bytes ({got})",
                         rid, extra_headers=[(b"connection", b"close")])


def is_json(content_type: bytes) -> bool:
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))


async def send_error(send, status: int, code: str, message: str, rid: str,
                     extra_headers: list | None = None) -> None:
    """An error answered at the ASGI level (the request never reached FastAPI)."""
    body = error_bytes(code, message, None, rid)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *(extra_headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
