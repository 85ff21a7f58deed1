"""Deprecated: the service's settings moved to :mod:`lapor_nlp.serve.settings` (also
importable from :mod:`lapor_nlp.serve`); this module re-exports them for one release."""

import warnings

from .serve.settings import (  # noqa: F401 - re-exported
    ENV_API_KEY, ENV_HOME_REGION, ENV_KEY_FILE, ENV_MAX_BATCH, ENV_MAX_BODY, ENV_MAX_TEXT, ENV_MODEL,
    ENV_NO_AUTH, MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS, __all__, find_api_key, read_api_key_file,
)

warnings.warn("lapor_nlp.serve_settings is deprecated: import from lapor_nlp.serve "
              "(or lapor_nlp.serve.settings)", DeprecationWarning, stacklevel=2)
