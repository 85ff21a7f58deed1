"""Deprecated: :mod:`lapor_nlp.bundled` finds the default model, :mod:`lapor_nlp.training.default`
builds it, :func:`lapor_nlp.load` does both. Importing this module still works, with a warning."""

import warnings

from .bundled import RECIPE, cache_root, default_model_dir, fingerprint  # noqa: F401
from .training.default import (  # noqa: F401
    build_corpus_file, build_default_model, corpus_files, ensure_default_model, taxonomy_routing,
)

warnings.warn("lapor_nlp.default_model is deprecated: use lapor_nlp.load() to get the default model, "
              "lapor_nlp.bundled to find it and lapor_nlp.training.default to build it",
              DeprecationWarning, stacklevel=2)
