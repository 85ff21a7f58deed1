"""Settings of the HTTP service that are needed without FastAPI installed.

``lapor-nlp serve --help`` and its checks run before FastAPI is imported (it is an optional
extra), and ``--workers N`` passes the settings to each worker process in the environment, where
:func:`lapor_nlp.serve.app_from_env` reads them back: the defaults, the variable names and how the
API key is found live here, once, for both sides.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputValueError

#: Default request limits (``create_app`` arguments, ``lapor-nlp serve`` options).
MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 256
MAX_TEXT_CHARS = 20_000

#: Default load limits, per worker process (``create_app`` arguments, ``lapor-nlp serve`` options).
#: Work requests (predict, batch, mask-pii) in flight at once; one more is answered 503 at once.
MAX_CONCURRENCY = 32
#: Seconds an admitted request may wait for the prediction thread before it is answered 503
#: instead: what keeps accepted requests' latency bounded whatever the mix of batch sizes.
QUEUE_TIMEOUT = 0.5
#: Request bodies held in memory at once, all requests together; past it, 503.
MAX_BUFFERED_BYTES = 32 * 1024 * 1024
#: Seconds a client has to send a request's headers (from the connection opening or its first
#: byte after a response), and its whole body; past them, the connection is closed (body: 408).
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection is kept open.
KEEP_ALIVE_TIMEOUT = 5.0
#: The ``Retry-After`` of a 503 (seconds).
RETRY_AFTER = 1
LOG_FORMATS = ("plain", "json")

_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))

#: Environment variables read by ``app_from_env`` (how ``--workers N`` passes settings).
ENV_MODEL = "LAPOR_NLP_SERVE_MODEL"
ENV_MAX_BATCH = "LAPOR_NLP_SERVE_MAX_BATCH"
ENV_MAX_BODY = "LAPOR_NLP_SERVE_MAX_BODY_BYTES"
ENV_MAX_TEXT = "LAPOR_NLP_SERVE_MAX_TEXT_CHARS"
ENV_KEY_FILE = "LAPOR_NLP_SERVE_API_KEY_FILE"
ENV_NO_AUTH = "LAPOR_NLP_SERVE_NO_AUTH"
ENV_HOME_REGION = "LAPOR_NLP_SERVE_HOME_REGION"
ENV_SCOPE = "LAPOR_NLP_SERVE_SCOPE"
ENV_MAX_CONCURRENCY = "LAPOR_NLP_SERVE_MAX_CONCURRENCY"
ENV_QUEUE_TIMEOUT = "LAPOR_NLP_SERVE_QUEUE_TIMEOUT"
ENV_MAX_BUFFERED = "LAPOR_NLP_SERVE_MAX_BUFFERED_BYTES"
ENV_BODY_TIMEOUT = "LAPOR_NLP_SERVE_BODY_TIMEOUT"
ENV_HEADER_TIMEOUT = "LAPOR_NLP_SERVE_HEADER_TIMEOUT"
ENV_HEALTH = "LAPOR_NLP_SERVE_HEALTH"  # HOST:PORT of the probe listener (--health-port)
#: Where the API key may be given directly (else in a file, ``--api-key-file``).
ENV_API_KEY = "LAPOR_NLP_API_KEY"

__all__ = ["BODY_TIMEOUT", "ENV_API_KEY", "ENV_BODY_TIMEOUT", "ENV_HEADER_TIMEOUT", "ENV_HEALTH",
           "ENV_HOME_REGION", "ENV_KEY_FILE", "ENV_MAX_BATCH", "ENV_MAX_BODY", "ENV_MAX_BUFFERED",
           "ENV_MAX_CONCURRENCY", "ENV_MAX_TEXT", "ENV_MODEL", "ENV_NO_AUTH", "ENV_QUEUE_TIMEOUT",
           "ENV_SCOPE", "HEADER_TIMEOUT", "KEEP_ALIVE_TIMEOUT", "LOG_FORMATS", "MAX_BATCH",
           "MAX_BODY_BYTES", "MAX_BUFFERED_BYTES", "MAX_CONCURRENCY", "MAX_TEXT_CHARS",
           "QUEUE_TIMEOUT", "RETRY_AFTER", "find_api_key", "is_loopback", "read_api_key_file"]


def is_loopback(host: str) -> bool:
    """The addresses that may serve without an API key: exactly 127.0.0.1, ::1 and localhost, as
    ``lapor-nlp serve --help`` says. The rest of 127/8 (127.0.0.2, ...) needs a key like any other
    address: the rule is the one the help states, not a wider one a reader would not expect."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name) in _LOOPBACK
    except ValueError:
        return False


def read_api_key_file(path: str | Path) -> str:
    """The key is the file's first line, stripped; an empty file is an error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputValueError(f"cannot read the API key file {path}: {exc.strerror}") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise InputValueError(f"the API key file {path} is empty")
    return key


def find_api_key(*, no_auth: bool, key_file: str | Path | None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The API key to require: none with ``no_auth``, else the key file's, else
    ``$LAPOR_NLP_API_KEY`` (from ``environ``, default the process environment)."""
    if no_auth:
        return None
    if key_file:
        return read_api_key_file(key_file)
    return (os.environ if environ is None else environ).get(ENV_API_KEY) or None
