"""Settings of the HTTP service that are needed without FastAPI installed.

``lapor-nlp serve --help`` and its checks run before FastAPI is imported (it is an optional
extra), and ``--workers N`` passes the settings to each worker process in the environment, where
:func:`lapor_nlp.serve.app_from_env` reads them back: the defaults, the variable names and how the
API key is found live here, once, for both sides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputValueError

#: Default request limits (``create_app`` arguments, ``lapor-nlp serve`` options).
MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 256
MAX_TEXT_CHARS = 20_000

#: Environment variables read by ``app_from_env`` (how ``--workers N`` passes settings).
ENV_MODEL = "LAPOR_NLP_SERVE_MODEL"
ENV_MAX_BATCH = "LAPOR_NLP_SERVE_MAX_BATCH"
ENV_MAX_BODY = "LAPOR_NLP_SERVE_MAX_BODY_BYTES"
ENV_MAX_TEXT = "LAPOR_NLP_SERVE_MAX_TEXT_CHARS"
ENV_KEY_FILE = "LAPOR_NLP_SERVE_API_KEY_FILE"
ENV_NO_AUTH = "LAPOR_NLP_SERVE_NO_AUTH"
ENV_HOME_REGION = "LAPOR_NLP_SERVE_HOME_REGION"
ENV_SCOPE = "LAPOR_NLP_SERVE_SCOPE"
#: Where the API key may be given directly (else in a file, ``--api-key-file``).
ENV_API_KEY = "LAPOR_NLP_API_KEY"

__all__ = ["ENV_API_KEY", "ENV_HOME_REGION", "ENV_KEY_FILE", "ENV_MAX_BATCH", "ENV_MAX_BODY",
           "ENV_MAX_TEXT", "ENV_MODEL", "ENV_NO_AUTH", "ENV_SCOPE", "MAX_BATCH", "MAX_BODY_BYTES",
           "MAX_TEXT_CHARS", "find_api_key", "read_api_key_file"]


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
