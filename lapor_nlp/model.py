"""Deprecated: the linear heads live in :mod:`lapor_nlp.heads`, evaluation metrics in
:mod:`lapor_nlp.training.metrics`. Importing this module still works, with a warning."""

import warnings

from .heads import LinearHead  # noqa: F401

warnings.warn("lapor_nlp.model is deprecated: use lapor_nlp.heads (LinearHead) and "
              "lapor_nlp.training.metrics (coverage_at_precision)", DeprecationWarning, stacklevel=2)


def __getattr__(name):
    if name == "coverage_at_precision":
        from .training.metrics import coverage_at_precision

        return coverage_at_precision
    raise AttributeError(name)
