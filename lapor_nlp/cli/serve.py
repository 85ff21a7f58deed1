"""Serve the router over HTTP (FastAPI on uvicorn; needs the [serve] extra).

Endpoints: POST /v1/predict, POST /v1/predict/batch, POST /v1/mask-pii, POST /v1/feedback (an
operator's correction, into --feedback-db), GET /v1/model, GET /healthz, GET /readyz, GET /metrics;
the OpenAPI document is at /openapi.json and the interactive docs at /docs.

API key: taken from --api-key-file (first line) or the LAPOR_NLP_API_KEY environment variable, and
then required in the X-API-Key header of every request but /healthz and /readyz. Without a key the
server only starts on a loopback address (127.0.0.1, ::1, localhost), unless --no-auth says that
the network in front of it does the access control.

Under load it sheds rather than queues: past --max-concurrency predict, batch and mask-pii
requests in flight per worker (or --queue-timeout s waiting for the prediction thread, or
--max-buffered-bytes of bodies in memory) a request gets 503 with Retry-After at once, while
/healthz, /readyz and /metrics are always answered. POST /v1/feedback is not counted by
--max-concurrency or --queue-timeout; its body counts against --max-buffered-bytes. Headers must arrive within --header-timeout s
and a body within --body-timeout s (408); idle keep-alive connections close after
--keep-alive-timeout s. GET /metrics serves Prometheus metrics (it needs the API key when one is
set, also accepted as "Authorization: Bearer KEY").

SIGTERM or Ctrl-C stops it gracefully: no new connections, requests in flight finish (10 s at
most), then exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys

from ..errors import ServiceStartError
from ..serve import settings

HELP = "serve predictions over HTTP (FastAPI + uvicorn; pip install 'lapor-nlp[serve]')"
INSTALL_HINT = "pip install 'lapor-nlp[serve]'"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _positive_seconds(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {value!r}")
    return x


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", default=None,
                   help="model directory made by `lapor-nlp train` (default: the bundled model, "
                        "built on first use)")
    p.add_argument("--model-sha256", default=None, metavar="HEX",
                   help="refuse any model but this one: the sha256 of its manifest.json "
                        "(sha256sum MODEL/manifest.json), which lists every other file's sha256; "
                        "every worker checks it when it loads the model")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any but 127.0.0.1, ::1 and localhost "
                        "needs an API key or --no-auth)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="worker processes, each with its own copy of the model (default 1)")
    p.add_argument("--api-key-file", metavar="FILE", default=None,
                   help="file whose first line is the API key (else $LAPOR_NLP_API_KEY)")
    p.add_argument("--no-auth", action="store_true",
                   help="serve without an API key even on a non-loopback address")
    p.add_argument("--max-batch", type=_positive_int, default=settings.MAX_BATCH, metavar="N",
                   help="most complaints in one /v1/predict/batch request (default %(default)s)")
    p.add_argument("--max-body-bytes", type=_positive_int, default=settings.MAX_BODY_BYTES, metavar="N",
                   help="largest request body in bytes (default %(default)s)")
    p.add_argument("--max-text-chars", type=_positive_int, default=settings.MAX_TEXT_CHARS, metavar="N",
                   help="longest complaint text in characters; longer ones get a 422 (default %(default)s)")
    p.add_argument("--home-region", default=None, metavar="NAME",
                   help="the regency/city this portal serves, e.g. 'Kota Surabaya': complaints that "
                        "name no place route to its offices (default: the model's)")
    p.add_argument("--scope", default=None, metavar="CODE",
                   help="an institution's own desk: route only among the agency types under this "
                        "taxonomy code (e.g. kemenimipas); others get review reason outside_scope")
    load = p.add_argument_group("load limits (per worker process)")
    load.add_argument("--max-concurrency", type=_positive_int, default=settings.MAX_CONCURRENCY,
                      metavar="N", help="predict, batch and mask-pii requests in flight; one more "
                                        "gets 503 + Retry-After at once (default %(default)s)")
    load.add_argument("--queue-timeout", type=_positive_seconds, default=settings.QUEUE_TIMEOUT,
                      metavar="S", help="seconds an admitted request may wait for the prediction "
                                        "thread before it gets 503 instead (default %(default)s)")
    load.add_argument("--max-buffered-bytes", type=_positive_int, default=settings.MAX_BUFFERED_BYTES,
                      metavar="N", help="request body bytes held in memory, all requests together; "
                                        "past it, 503 (default %(default)s)")
    load.add_argument("--header-timeout", type=_positive_seconds, default=settings.HEADER_TIMEOUT,
                      metavar="S", help="seconds to receive a request's headers, from the "
                                        "connection opening or the previous response; then the "
                                        "connection is closed (default %(default)s)")
    load.add_argument("--body-timeout", type=_positive_seconds, default=settings.BODY_TIMEOUT,
                      metavar="S", help="seconds to receive a request's whole body; then 408 and "
                                        "the connection is closed (default %(default)s)")
    load.add_argument("--health-port", type=int, default=None, metavar="PORT",
                      help="also answer /healthz and /readyz on this port, from a thread of their "
                           "own: fast whatever the main port is going through (default: off)")
    load.add_argument("--keep-alive-timeout", type=_positive_seconds,
                      default=settings.KEEP_ALIVE_TIMEOUT, metavar="S",
                      help="seconds an idle keep-alive connection stays open (default %(default)s)")
    p.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto",
                   help="HTTP parser (default auto: httptools when installed, as with "
                        "uvicorn[standard])")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="event loop (default auto: uvloop when installed)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                   help="log level of the request log and the server (default info; warning with -q)")
    p.add_argument("--log-format", choices=settings.LOG_FORMATS, default="plain",
                   help="plain text lines, or one JSON object per line (request lines carry "
                        "request_id, method, route, status, latency_ms); never complaint text "
                        "(default plain)")
    p.add_argument("--feedback-db", default=None, metavar="PATH",
                   help="SQLite database for POST /v1/feedback (default: $LAPOR_NLP_FEEDBACK_DB, "
                        "else feedback.sqlite3 in the user data directory)")



@contextlib.contextmanager
def _startup_failure_is_exit_1():
    """uvicorn leaves with ``sys.exit(1 or 3)`` when it cannot start (a port in use, say), after
    logging why: this command's exit status for that is 1, as for any other error."""
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise ServiceStartError("the server could not start (the reason is logged above)") from None


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        print(f"lapor-nlp: error: `serve` needs FastAPI and uvicorn ({exc.name} is missing): "
              f"{INSTALL_HINT}", file=sys.stderr)
        return 1
    from ..serve import create_app

    level = args.log_level or ("warning" if getattr(args, "quiet", False) else "info")
    key = settings.find_api_key(no_auth=args.no_auth, key_file=args.api_key_file)
    if key is None and not args.no_auth and not settings.is_loopback(args.host):
        print(f"lapor-nlp: error: refusing to serve on {args.host} without an API key: give "
              f"--api-key-file FILE or set {settings.ENV_API_KEY}, or pass --no-auth if a proxy or "
              "firewall in front of it does the access control", file=sys.stderr)
        return 2
    if args.no_auth and (args.api_key_file or os.environ.get(settings.ENV_API_KEY)):
        print("lapor-nlp: warning: --no-auth: the configured API key is ignored", file=sys.stderr)

    from ..artifact import verify

    if args.model is None:  # build it once here, not in every worker at the same time
        from ..training.default import ensure_default_model

        model_dir = str(ensure_default_model(quiet=getattr(args, "quiet", False)))
    else:
        model_dir = args.model
    verify(model_dir, sha256=args.model_sha256)  # missing, tampered, not the pinned one: exit 1 now
    if args.model_sha256:  # the workers load the model again: each checks the pin (MODEL_SHA256_ENV)
        from ..serve.loading import MODEL_SHA256_ENV

        os.environ[MODEL_SHA256_ENV] = args.model_sha256
    if args.home_region:
        from ..jurisdiction import require_regency

        require_regency(args.home_region)  # an unknown name: exit 1 here, not in every worker
    if args.scope:
        from ..router import check_scope

        check_scope(model_dir, args.scope)  # an unknown scope: exit 1 here, not in every worker

    if args.feedback_db:  # read by POST /v1/feedback in every worker (lapor_nlp.serve.feedback)
        from ..feedback import ENV_DB

        os.environ[ENV_DB] = os.path.abspath(args.feedback_db)
    from ..serve.logs import log_config

    # The header deadline is read by the protocol module in each worker process, on import.
    os.environ[settings.ENV_HEADER_TIMEOUT] = repr(args.header_timeout)
    from ..serve.protocol import protocol_for

    common = dict(host=args.host, port=args.port, log_config=log_config(level, args.log_format),
                  log_level=level, access_log=False, server_header=False,
                  timeout_graceful_shutdown=10, http=protocol_for(args.http), loop=args.loop,
                  timeout_keep_alive=args.keep_alive_timeout)
    health = (args.host, args.health_port) if args.health_port else None
    load_limits = dict(max_concurrency=args.max_concurrency, queue_timeout=args.queue_timeout,
                       max_buffered_bytes=args.max_buffered_bytes, body_timeout=args.body_timeout,
                       health=health)
    logging.getLogger("lapor_nlp.serve").info(
        "serving %s on http://%s:%d with %d worker(s), auth %s", model_dir, args.host, args.port,
        args.workers, "on" if key else "off")
    if args.workers == 1:
        app = create_app(model_dir, api_key=key, max_body_bytes=args.max_body_bytes,
                         max_batch=args.max_batch, max_text_chars=args.max_text_chars,
                         home_region=args.home_region, scope=args.scope, **load_limits)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        # uvicorn re-raises the signal that stopped it once it has shut down; with the default
        # SIGTERM action that would kill the process (status -15) instead of exiting 0.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        with _startup_failure_is_exit_1():
            server.run()
        # started stays False when startup failed (the model did not load, the port is taken).
        return 0 if server.started else 1

    # Each worker is a fresh process: settings travel in the environment, the key as the path of
    # its file (or in LAPOR_NLP_API_KEY, where it already was).
    os.environ.update({
        settings.ENV_MODEL: model_dir,
        settings.ENV_MAX_BATCH: str(args.max_batch),
        settings.ENV_MAX_BODY: str(args.max_body_bytes),
        settings.ENV_MAX_TEXT: str(args.max_text_chars),
        settings.ENV_NO_AUTH: "1" if args.no_auth else "0",
        settings.ENV_HOME_REGION: args.home_region or "",
        settings.ENV_SCOPE: args.scope or "",
        settings.ENV_MAX_CONCURRENCY: str(args.max_concurrency),
        settings.ENV_QUEUE_TIMEOUT: repr(args.queue_timeout),
        settings.ENV_MAX_BUFFERED: str(args.max_buffered_bytes),
        settings.ENV_BODY_TIMEOUT: repr(args.body_timeout),
        settings.ENV_HEALTH: f"{args.host}:{args.health_port}" if args.health_port else "",
    })
    if args.api_key_file and not args.no_auth:
        os.environ[settings.ENV_KEY_FILE] = os.path.abspath(args.api_key_file)
    else:
        os.environ.pop(settings.ENV_KEY_FILE, None)
    config = uvicorn.Config("lapor_nlp.serve:app_from_env", factory=True, workers=args.workers,
                            **common)
    from uvicorn.supervisors import Multiprocess

    # uvicorn's bind_socket() leaves socket.proto at 0, and asyncio only sets TCP_NODELAY on
    # accepted connections whose proto is IPPROTO_TCP: without this re-wrap (proto read back from
    # the descriptor) every response waits ~40 ms on Nagle + delayed ACK.
    with _startup_failure_is_exit_1():
        sock = config.bind_socket()
    sock = socket.socket(fileno=sock.detach())
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()  # SIGTERM/SIGINT: each worker shuts down gracefully, then the parent returns
    return 1 if any(p.exitcode == 3 for p in supervisor.processes) else 0
