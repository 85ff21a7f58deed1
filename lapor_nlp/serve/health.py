"""``/healthz`` and ``/readyz`` on a port of their own, answered by a thread of their own
(``lapor-nlp serve --health-port PORT``).

Why: the main port's event loop answers probes too, even at the load limit, but under a flood of
connections a probe still waits for the loop to get round to it (and, with uvloop, for its new
connection to be accepted: libuv accepts one per loop pass). Here a plain threaded HTTP server
answers from the app's state, needing only the GIL for a moment, so an orchestrator's probe
stays fast whatever the main port is going through. With ``--workers N`` every worker binds the
port with ``SO_REUSEPORT`` and the kernel spreads probes over them.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def start_health_server(state, host: str, port: int):
    """Serve the probes of the app whose ``state`` is given, on ``host:port``, from a daemon
    thread; returns the server (``.shutdown()`` stops it)."""

    class Probe(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for probes that reuse their connection

        def version_string(self):
            return "lapor-nlp"
        timeout = 5  # seconds to send a probe's request line and headers

        def do_GET(self):  # noqa: N802 - the http.server name
            router = state.router
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                status, body = 200, {"status": "ok", "model": getattr(router, "name", None),
                                     "version": getattr(router, "version", None)}
            elif path == "/readyz" and router is not None:
                status, body = 200, {"status": "ready", "model": router.name,
                                     "version": router.version}
            elif path == "/readyz":
                status, body = 503, {"error": {"code": "not_ready", "message": "the model is "
                                               "still loading; retry shortly", "field": None,
                                               "request_id": None}}
            else:
                status, body = 404, {"error": {"code": "not_found", "message": "only /healthz and "
                                               "/readyz here", "field": None, "request_id": None}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 - probes are not logged one by one
            pass

    server = _Server((host, port), Probe)
    threading.Thread(target=server.serve_forever, name="lapor-health", daemon=True).start()
    return server
