"""Typed errors of lapor-nlp.

Every error carries a stable code (``LAPOR-E###``) so that tests, logs and users can match it, and a
message that says what to do next (the spaCy ``errors.py`` habit). Each class also derives from the
built-in exception a caller would naturally catch (``ValueError``/``TypeError``), so code written
without knowing this module still handles them.

The facts are attributes, so a caller need not parse the text (``str(exc)`` is
``"[LAPOR-E###] item 3: message"``, the item part only inside a batch):

- ``code``: stable and distinct per cause (the table is in ``docs/python-api.md``);
- ``message``: plain text for a person: what is wrong, with which field, and what to do;
- ``index``: the position of the offending item in a batch, or None outside a batch;
- ``field``: what was wrong: ``"text"``, ``"location.regency"``, ``"target_precision"``, or None.

Codes: 00x input (a call's arguments and complaints), 01x training data, 02x fitting, 03x model
files, 04x batch runs, 05x the service, 09x operators' corrections.
"""

from __future__ import annotations

#: What a batch call does with an unusable item (``on_error=``): raise its error (the default),
#: skip it, or return the error in its place.
ON_ERROR = ("raise", "skip", "return")


class LaporError(Exception):
    """Base class of every error raised on purpose by lapor-nlp."""

    code = "LAPOR-E000"

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None):
        super().__init__(f"[{self.code}] {message}")
        self.message = message
        self.field = field
        self.index = index

    def __str__(self) -> str:
        # Built when shown, so an index set while a batch is checked appears in the text too.
        where = f"item {self.index}: " if self.index is not None else ""
        return f"[{self.code}] {where}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r}, index={self.index!r})"

    def __reduce__(self):
        # Keep field, index (and a subclass's own attributes) across pickling: errors cross
        # process boundaries in parallel batch runs.
        return self.__class__, (self.message,), self.__dict__


class InputTypeError(LaporError, TypeError):
    """A value has the wrong type: a complaint that is not a ``str``, ``Complaint`` or dict (e.g.
    ``None``, a number), a batch that is not an iterable of complaints (``predict_batch(None)``,
    a lone ``str``), an option that is not a number."""

    code = "LAPOR-E001"


class InputValueError(LaporError, ValueError):
    """An argument's value is unusable: an option out of range or not one of its choices
    (``target_precision``, ``thresholds``, ``batch_size``, ``on_error``, ``scope``...). The
    complaint and region errors below derive from it, so ``except InputValueError`` catches
    every unusable input."""

    code = "LAPOR-E002"


class InvalidComplaintError(InputValueError):
    """A complaint does not fit the :class:`~lapor_nlp.schemas.Complaint` schema: an unknown
    field, a field too long, a date that is not ISO 8601; ``field`` names the first one."""

    code = "LAPOR-E005"


class EmptyTextError(InvalidComplaintError):
    """A complaint's text is empty or only whitespace: there is nothing to route. Refused
    everywhere (Python, HTTP, ``classify``'s rejects) rather than routed to a guess."""

    code = "LAPOR-E006"


class UndecodableTextError(InvalidComplaintError):
    """A complaint's text holds what is not Unicode text: lone surrogates (what undecodable bytes
    become under ``surrogateescape``), or bytes that are not UTF-8. Refused everywhere, in a
    ``str`` as in a dict: such text cannot be written as JSON, so its answer could not be stored or
    sent; decode the input as UTF-8 first."""

    code = "LAPOR-E007"


class UnknownRegionError(InputValueError):
    """A ``home_region`` is not a regency or city of the gazetteer (``field`` is
    ``"home_region"``)."""

    code = "LAPOR-E008"


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


class ModelFormatError(ModelIntegrityError):
    """A model file matches its sha256 but cannot be what lapor-nlp wrote: not a zip or not JSON,
    nested too deep, larger than the limits in :mod:`lapor_nlp.artifact`, an array of the wrong
    type or shape. Such a file was made or changed on purpose (its hash was updated); it is not
    loaded."""

    code = "LAPOR-E033"


class ModelPinError(ModelIntegrityError):
    """A model directory is not the one the caller pinned (``Router.load(path, sha256=...)``,
    ``--model-sha256``): its ``manifest.json`` has another sha256."""

    code = "LAPOR-E034"


class BatchInputError(LaporError, ValueError):
    """A batch input file cannot be read at all (missing column, unknown format)."""

    code = "LAPOR-E040"


class BatchCheckError(LaporError, RuntimeError):
    """A batch run's own consistency check failed (a count does not add up, parts disagree)."""

    code = "LAPOR-E041"


class BatchWriteError(LaporError, OSError):
    """A batch run could not write its parts or its output (a full disk, a quota, a read-only
    file system): the finished chunks are kept, so the run can be finished with ``--resume``."""

    code = "LAPOR-E042"


class ServiceStartError(LaporError, RuntimeError):
    """``lapor-nlp serve`` could not start its server (a port in use, say; the reason is logged)."""

    code = "LAPOR-E050"


def check_on_error(on_error) -> str:
    """``on_error`` if it is one of :data:`ON_ERROR`, else an :class:`InputValueError`."""
    if not (isinstance(on_error, str) and on_error in ON_ERROR):
        raise InputValueError(f"on_error must be 'raise', 'skip' or 'return', got {on_error!r}",
                              field="on_error")
    return on_error


#: The prefixes pydantic puts before the message of a ``ValueError``/``assert`` raised in a
#: validator: its wording, not ours, so they are cut before a person sees the message.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def schema_error_message(err: dict) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in plain words: a missing field
    says so, and a validator's own message loses pydantic's ``"Value error, "`` prefix."""
    if err.get("type") == "missing":
        return "required, and missing"
    msg = str(err.get("msg", ""))
    for prefix in _PYDANTIC_PREFIXES:
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg
