"""The ASGI gate in front of the FastAPI app: request id, API key, load limits, body size, type
and read deadline, the log line and the metrics of each request, and a last-resort 500.

A pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``): a request it turns away
never reaches FastAPI, and an exception that escapes the app is answered here without a trace.
Work requests (predict, batch, mask-pii) are refused with 503 + ``Retry-After`` before their
body is read when the worker is at its limit (:mod:`~lapor_nlp.serve.limits`); probes and
``/metrics`` never wait for a limit. One log line per request: method, path, status, duration in
ms and the request id (``X-Request-ID`` from the client when it is a plain token of at most 128
characters, else a new one; echoed in every response). Bodies are never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid

from .errors import error_bytes, internal_error_message, log, log_exception, safe_path
from .limits import Overloaded
from .metrics import ROUTES

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
#: Paths that answer without the API key (orchestrator probes).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: Paths whose requests count against the load limits (POST only).
WORK_PATHS = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/mask-pii"})
#: Where a Prometheus scraper may give the key as ``Authorization: Bearer <key>`` (its
#: ``authorization`` setting) instead of ``X-API-Key``.
METRICS_PATH = "/metrics"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:\-]{1,128}").fullmatch
#: Oversize bodies up to this many bytes are read and dropped before the 413 goes out, so that the
#: client, still writing, reads a clean 413 instead of a reset connection; past it, we just close.
_DRAIN_LIMIT = 8 * 1024 * 1024
_CLOSE = (b"connection", b"close")
_timeout = getattr(asyncio, "timeout", None)  # Python >= 3.11; else asyncio.wait_for


class BodyTimeout(Exception):
    """The body did not arrive within the body deadline."""


class Gate:
    """Wraps the FastAPI app (``app.add_middleware(Gate, api_key=..., max_body_bytes=...,
    body_timeout=..., limits=..., metrics=...)``)."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, body_timeout: float,
                 limits, metrics):
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body = max_body_bytes
        self.body_timeout = body_timeout
        self.limits = limits
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = key = length = ctype = bearer = None
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
            elif name == b"authorization":
                bearer = value
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
        limits = self.limits
        work = path in WORK_PATHS and method == "POST"
        admitted = False
        held = [0]  # body bytes reserved against the buffer limit
        self.metrics.in_flight.inc()
        try:
            if self.api_key is not None and path not in OPEN_PATHS:
                if key is None and path == METRICS_PATH and bearer is not None and \
                        bearer[:7].lower() == b"bearer ":
                    key = bearer[7:].strip()
                if key is None or not hmac.compare_digest(key, self.api_key):
                    what = "missing" if key is None else "wrong"
                    await send_error(send_with_id, 401, "unauthorized",
                                     f"{what} API key: send it in the {API_KEY_HEADER} header", rid)
                    return
            if work:
                limits.check()  # refused before its body is read: shedding is cheap
            if method in ("POST", "PUT", "PATCH"):
                try:
                    receive = await self._buffered(receive, send_with_id, length, rid, held)
                except BodyTimeout:
                    self.metrics.timeouts.inc()
                    await send_error(send_with_id, 408, "request_timeout",
                                     f"the request body did not arrive within {self.body_timeout:g} s",
                                     rid, extra_headers=[_CLOSE])
                    return
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
            if work:
                limits.admit()
                admitted = True
            await self.app(scope, receive, send_with_id)
        except Overloaded as exc:
            scope["lapor_shed"] = exc.reason
            if not state["started"]:
                headers = [(b"retry-after", str(exc.retry_after).encode())]
                if exc.reason == "buffer":  # its body is unread: do not read it on this connection
                    headers.append(_CLOSE)
                await send_error(send_with_id, 503, "overloaded", exc.message, rid,
                                 extra_headers=headers)
        except Exception as exc:  # noqa: BLE001 - last resort: never a stack trace to the client
            log_exception(exc, rid, method, path)
            if not state["started"]:
                await send_error(send_with_id, 500, "internal_error", internal_error_message(rid), rid)
        finally:
            if admitted:
                limits.release()
            if held[0]:
                limits.unreserve(held[0])
            seconds = time.perf_counter() - t0
            status = state["status"]
            metrics = self.metrics
            metrics.in_flight.dec()
            metrics.request_done(path, method, status, seconds)
            shed = scope.get("lapor_shed")
            if shed is not None:
                metrics.shed.labels(path if path in ROUTES else "other", shed).inc()
            if log.isEnabledFor(logging.INFO):
                route = path if path in ROUTES else "other"
                log.info("%s %s %d %.2fms id=%s", method, safe_path(path), status, seconds * 1000.0,
                         rid, extra={"request_id": rid, "method": method, "route": route,
                                     "status": status, "latency_ms": round(seconds * 1000.0, 2)})

    async def _buffered(self, receive, send, length: bytes | None, rid: str, held: list[int]):
        """Read the whole body (at most ``max_body`` bytes, within ``body_timeout`` s, holding its
        bytes against the buffer limit in ``held``) and return a receive that replays it; None when
        a 413 (or nothing, the client having gone) was answered instead. Raises
        :class:`BodyTimeout` or :class:`~lapor_nlp.serve.limits.Overloaded`."""
        limit = self.max_body
        limits = self.limits
        declared = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = None
        if declared is not None and declared > _DRAIN_LIMIT:
            await self._too_large(send, rid, declared)
            return None
        over = declared is not None and declared > limit
        if declared and not over:
            limits.reserve(declared)
            held[0] = declared
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        while True:
            message = await _receive_by(receive, deadline, loop)
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                over = True
            if not over:
                if size > held[0]:  # no Content-Length (chunked), or more than it said
                    limits.reserve(size - held[0])
                    held[0] = size
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
                         rid, extra_headers=[_CLOSE])


async def _receive_by(receive, deadline: float, loop):
    """The next body message, or :class:`BodyTimeout` once ``deadline`` (loop time) has passed."""
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise BodyTimeout
    try:
        if _timeout is not None:
            async with _timeout(remaining):
                return await receive()
        return await asyncio.wait_for(receive(), remaining)
    except (asyncio.TimeoutError, TimeoutError):
        raise BodyTimeout from None


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
