"""Typed errors of lapor-nlp.

Every error carries a stable code (``LAPOR-E###``) so that tests, logs and users can match it, and a
message that says what to do next (the spaCy ``errors.py`` habit). Each class also derives from the
built-in exception a caller would naturally catch (``ValueError``/``TypeError``), so code written
without knowing this module still handles them.
"""

from __future__ import annotations


class LaporError(Exception):
    """Base class of every error raised on purpose by lapor-nlp."""

    code = "LAPOR-E000"

    def __init__(self, message: str):
        super().__init__(f"[{self.code}] {message}")
        self.message = message


class InputTypeError(LaporError, TypeError):
    """A complaint text was not a ``str`` (e.g. ``None``, bytes, a number)."""

    code = "LAPOR-E001"


class InputValueError(LaporError, ValueError):
    """A complaint is unusable as given (e.g. invalid UTF-8, a field out of range)."""

    code = "LAPOR-E002"


class DependencyError(LaporError, ImportError):
    """A required package is missing or is the wrong distribution (old ``sastrawi`` 1.0.1)."""

    code = "LAPOR-E003"


class ResourceError(LaporError, ValueError):
    """A lexicon, taxonomy or gazetteer file is missing or malformed."""

    code = "LAPOR-E004"


class DataValidationError(LaporError, ValueError):
    """Training or evaluation data failed validation; ``problems`` lists each bad row."""

    code = "LAPOR-E010"

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class NotFittedError(LaporError, ValueError, AttributeError):
    """A model was used before ``fit`` (an ``AttributeError`` too, as scikit-learn's is, so
    ``hasattr(estimator, "classes_")`` answers False instead of raising)."""

    code = "LAPOR-E020"


class ModelIntegrityError(LaporError, ValueError):
    """A model directory failed its hash check (tampered or corrupted): it is not loaded."""

    code = "LAPOR-E030"


class ModelVersionError(LaporError, ValueError):
    """A model directory was made by an incompatible library or scikit-learn version."""

    code = "LAPOR-E031"


class ModelNotFoundError(LaporError, FileNotFoundError):
    """A model directory does not exist or lacks ``manifest.json``."""

    code = "LAPOR-E032"


class BatchInputError(LaporError, ValueError):
    """A batch input file cannot be read at all (missing column, unknown format)."""

    code = "LAPOR-E040"


class BatchCheckError(LaporError, RuntimeError):
    """A batch run's own consistency check failed (a count does not add up, parts disagree)."""

    code = "LAPOR-E041"


class ServiceStartError(LaporError, RuntimeError):
    """``lapor-nlp serve`` could not start its server (a port in use, say; the reason is logged)."""

    code = "LAPOR-E050"
