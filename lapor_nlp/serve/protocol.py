"""uvicorn's HTTP protocols with a deadline for a request's headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but it arms that timer
only after a response, and cancels it on any byte received: a connection that never sends a byte,
or sends its headers a byte at a time, is held for ever (slowloris). Here a timer is armed when a
connection opens and when a response completes; if the next request's headers are not complete
when it fires, the connection is closed. Body reads have their own deadline in the gate
(:class:`~lapor_nlp.serve.gate.Gate`), where a 408 can still be answered.

Under saturation (every work slot of :class:`~lapor_nlp.serve.limits.Limits` taken), the
httptools protocol also answers two kinds of request itself, as soon as their headers are parsed,
without an ASGI task: a work request (POST predict, batch, mask-pii) gets its 503 + Retry-After,
and ``GET /healthz`` its 200. Under a flood every request costs the event loop time before it can
be refused; this path costs a fraction of the full one, so the loop gets round its connections
faster, and a probe is answered in the same loop pass that read it. Both are still counted in
``/metrics``; they are not logged one by one (at saturation that would be a flood of its own).

The deadline is read from ``LAPOR_NLP_SERVE_HEADER_TIMEOUT`` (seconds) when this module is first
imported, in each worker process: ``lapor-nlp serve --header-timeout`` sets it before uvicorn
imports the protocol (``http="lapor_nlp.serve.protocol:HttpToolsProtocol"``, an import string, so
that ``--workers N`` processes find it too).
"""

from __future__ import annotations

import json
import os
import uuid

from .settings import ENV_HEADER_TIMEOUT, HEADER_TIMEOUT, RETRY_AFTER

HEADER_DEADLINE = float(os.environ.get(ENV_HEADER_TIMEOUT) or HEADER_TIMEOUT)


class _HeaderDeadline:
    """Mixin over a uvicorn HTTP protocol (it reads ``loop``, ``transport`` and ``cycle``, which
    both uvicorn protocols have)."""

    _header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(HEADER_DEADLINE, self._header_deadline_passed)

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        waiting_for_headers = cycle is None or cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.transport.close()


def _with_deadline(base: type) -> type:
    return type(base.__name__, (_HeaderDeadline, base), {"__module__": __name__,
                                                         "__doc__": base.__doc__})


_WORK_PATHS = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/mask-pii"})  # gate.WORK_PATHS
_SHED_BODY = json.dumps({"error": {
    "code": "overloaded", "message": "the server is at its limit of requests in flight; retry "
                                     "after the Retry-After delay", "field": None,
    "request_id": "%s"}}).replace('"%s"', '"{rid}"')


def _app_state(app):
    """The lapor-nlp app's ``state`` behind uvicorn's middleware wrappers, or None."""
    for _ in range(8):
        state = getattr(app, "state", None)
        if state is not None and getattr(state, "work", None) is not None:
            return state
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class _FastAnswers:
    """Mixin over uvicorn's httptools protocol: answers shed work requests and probes without an
    ASGI task while the work slots are all taken (see the module docstring)."""

    _lapor_state = False  # not looked up yet

    def _start_asgi_task(self, cycle, app) -> None:
        state = self._lapor_state
        if state is False:
            state = self._lapor_state = _app_state(self.app)
        if state is not None and state.work.in_flight >= state.work.max_concurrency:
            scope = cycle.scope
            path, method = scope["path"], scope["method"]
            if method == "POST" and path in _WORK_PATHS:
                rid = uuid.uuid4().hex
                body = _SHED_BODY.replace("{rid}", rid).encode()
                self._answer_now(cycle, 503, body, rid, b"retry-after: %d\r\n" % RETRY_AFTER)
                state.metrics.request_done(path, method, 503, 0.0)
                state.metrics.shed.labels(path, "concurrency").inc()
                return
            if method == "GET" and path == "/healthz":
                router = state.router
                body = json.dumps({"status": "ok", "model": getattr(router, "name", None),
                                   "version": getattr(router, "version", None)}).encode()
                self._answer_now(cycle, 200, body, uuid.uuid4().hex, b"")
                state.metrics.request_done(path, method, 200, 0.0)
                return
        super()._start_asgi_task(cycle, app)

    def _answer_now(self, cycle, status: int, body: bytes, rid: str, extra: bytes) -> None:
        reason = b"OK" if status == 200 else b"Service Unavailable"
        keep_alive = cycle.keep_alive and not self.transport.is_closing()
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"x-request-id: %s\r\n%s%s\r\n"
                % (status, reason, len(body), rid.encode(), extra,
                   b"" if keep_alive else b"connection: close\r\n"))
        cycle.response_started = cycle.response_complete = True
        self.transport.write(head + body)
        if keep_alive:
            self.on_response_complete()  # keep-alive timer, pipelined requests, reading resumed
        else:
            self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools
except ImportError:  # httptools is not installed: the h11 protocol only
    HttpToolsProtocol = None
else:
    HttpToolsProtocol = type("HttpToolsProtocol", (_FastAnswers, _HeaderDeadline, _HttpTools),
                             {"__module__": __name__, "__doc__": _HttpTools.__doc__})

from uvicorn.protocols.http.h11_impl import H11Protocol as _H11  # noqa: E402

H11Protocol = _with_deadline(_H11)


def protocol_for(http: str) -> str:
    """The import string of the protocol for ``--http auto|h11|httptools``."""
    if http == "h11" or (http == "auto" and HttpToolsProtocol is None):
        return f"{__name__}:H11Protocol"
    return f"{__name__}:HttpToolsProtocol"
