"""The data a backend exchanges with the router: :class:`Complaint` in, :class:`Prediction` out.

pydantic v2 models, so a service validates input and serialises output with ``model_dump_json()``,
and other languages get the same contract from :func:`json_schemas` (also served by the HTTP API).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from .errors import EmptyTextError, InvalidComplaintError, UndecodableTextError
from .io import undecodable

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ])")

#: The pydantic error types of the two text rules (:func:`text_problem`); the router maps them to
#: :class:`~lapor_nlp.errors.EmptyTextError` and :class:`~lapor_nlp.errors.UndecodableTextError`.
EMPTY_TEXT = "empty_text"
UNDECODABLE_TEXT = "undecodable_text"
#: pydantic error type -> the typed error a text problem becomes (for mapping schema errors to codes).
TEXT_ERRORS = {EMPTY_TEXT: EmptyTextError, UNDECODABLE_TEXT: UndecodableTextError,
               "string_unicode": UndecodableTextError}  # pydantic's own, for a stripped field
_PLAIN = {"extra_forbidden": "not a field of a complaint (its fields: text, title, id, date, channel, "
                             "location)",
          "missing": "missing (a complaint needs at least its text)",
          "string_unicode": "holds characters that are not valid Unicode (lone surrogates); decode "
                            "the input as UTF-8 first"}
_TEXT_PROBLEMS = {
    EMPTY_TEXT: "the text is empty or only whitespace, so there is nothing to route",
    UNDECODABLE_TEXT: "the text holds characters that are not valid Unicode (lone surrogates, what "
                      "undecodable bytes become); decode the input as UTF-8 first",
}


def text_problem(text: str, *, required: bool = True) -> str | None:
    """Why ``text`` cannot be a complaint's text (:data:`EMPTY_TEXT`, :data:`UNDECODABLE_TEXT`), or
    None. The one rule behind the schema, the router's plain-``str`` path and the HTTP service:
    empty text is refused rather than routed to a guess, and a lone surrogate is refused rather
    than cleaned, because such text cannot be written as JSON (``classify`` rejects both rows)."""
    if required and (not text or text.isspace()):
        return EMPTY_TEXT
    if not text.isascii() and undecodable(text):
        return UNDECODABLE_TEXT
    return None


def text_problem_message(problem: str) -> str:
    """The plain words for a :func:`text_problem` kind."""
    return _TEXT_PROBLEMS[problem]


def refuse_text(text: str, field: str = "text") -> None:
    """Raise the typed error for a text that :func:`text_problem` refuses (the router's check of a
    plain ``str``, which skips pydantic)."""
    problem = text_problem(text, required=field == "text")
    if problem is not None:
        raise TEXT_ERRORS[problem](_TEXT_PROBLEMS[problem], field=field)


def complaint_error(exc) -> InvalidComplaintError:
    """A pydantic ``ValidationError`` of :class:`Complaint` as one typed error in plain words: the
    first failing field in ``field`` (a text problem first: it has its own code), and up to three
    problems, each named by its field, in ``message``."""
    errs = exc.errors(include_url=False, include_input=False)
    first = next((e for e in errs if e["type"] in TEXT_ERRORS), errs[0])
    parts = []
    for e in [first] + [e for e in errs if e is not first][:2]:
        where = ".".join(map(str, e["loc"])) or "complaint"
        why = _PLAIN.get(e["type"], e["msg"])
        if e["type"] == "extra_forbidden" and e["loc"][:1] == ("location",):
            why = ("not a field of a location (its fields: province, regency, district, "
                   "subdistrict, address)")
        parts.append(why if (e is first and where == "text" and e["type"] in _TEXT_PROBLEMS)
                     else f"{where}: {why}")
    if len(errs) > 3:
        parts.append(f"and {len(errs) - 3} more")
    cls = TEXT_ERRORS.get(first["type"], InvalidComplaintError)
    message = "; ".join(parts)
    if cls is InvalidComplaintError:
        message = "invalid complaint: " + message
    return cls(message, field=".".join(map(str, first["loc"])) or None)


def _check_text(v, *, required: bool):
    problem = text_problem(v, required=required) if isinstance(v, str) else None
    if problem is not None:
        raise PydanticCustomError(problem, _TEXT_PROBLEMS[problem])
    return v


Level = Literal["province", "regency", "district", "village"]
ReviewReason = Literal[
    "low_confidence_topic", "low_confidence_agency", "topic_agency_disagree",
    "place_not_found", "several_places", "location_not_resolved", "text_too_short", "not_indonesian",
    "truncated", "unknown_agency", "outside_scope",
]


class Location(BaseModel):
    """Structured location of a complaint, as a portal's form collects it (all optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    province: str | None = Field(None, max_length=200, examples=["Jawa Timur"])
    regency: str | None = Field(None, max_length=200, description="kabupaten or kota",
                                examples=["Kabupaten Tulungagung"])
    district: str | None = Field(None, max_length=200, description="kecamatan", examples=["Kedungwaru"])
    subdistrict: str | None = Field(None, max_length=200, description="kelurahan or desa")
    address: str | None = Field(None, max_length=2000, description="free-text address")


class Complaint(BaseModel):
    """One complaint. Only ``text`` is required; ``title`` is joined before it."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="the complaint as written; not empty or only whitespace",
                      json_schema_extra={"pattern": r"\S"},
                      examples=["Jalan berlubang di depan SDN 2 Kedungwaru, Tulungagung"])
    title: str | None = Field(None, max_length=1000)
    # An integer id (a database key) is accepted and kept as its decimal string; the schema says so.
    id: Annotated[str | None, WithJsonSchema({
        "anyOf": [{"type": "string", "maxLength": 200}, {"type": "integer"}, {"type": "null"}],
        "default": None, "title": "Id",
        "description": "your reference for the complaint; an integer is returned as a string"})] = \
        Field(None, max_length=200)
    date: dt.date | dt.datetime | None = None
    channel: str | None = Field(None, max_length=100, examples=["whatsapp", "web", "sp4n-lapor"])
    location: Location | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_str(cls, v):
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("text")
    @classmethod
    def _usable_text(cls, v):
        return _check_text(v, required=True)

    @field_validator("title", "channel")
    @classmethod
    def _valid_unicode(cls, v):
        return _check_text(v, required=False)

    @field_validator("date", mode="before")
    @classmethod
    def _date_written_as_a_date(cls, v):
        # pydantic would read a number, or a string of digits, as Unix time ("0" -> 1970-01-01):
        # a complaint's date is a date or an ISO 8601 string.
        if isinstance(v, (int, float)) or (isinstance(v, str) and not _ISO_DATE.match(v.strip())):
            raise ValueError("date must be a date or an ISO 8601 string (YYYY-MM-DD[THH:MM[:SS]])")
        return v

    def full_text(self) -> str:
        return f"{self.title}. {self.text}" if self.title else self.text


class LabelScore(BaseModel):
    label: str
    score: float = Field(..., ge=0, le=1, description="calibrated probability")


class TaskPrediction(BaseModel):
    """The chosen label of one task with its calibrated score and the runner-up labels."""

    label: str
    score: float = Field(..., ge=0, le=1)
    name: str | None = Field(None, description="human-readable name of the label, when known")
    threshold: float = Field(..., description="score at or above which this label is routed "
                                               "without review")
    alternatives: list[LabelScore] = Field(default_factory=list)
    level: str | None = Field(None, description="agency only: where the body sits (central, bumn, "
                                                "province, regency, district, village)")
    parent: str | None = Field(None, description="agency only: the code of the ministry, court or "
                                                 "holding the body belongs to, when it has one")


class Region(BaseModel):
    name: str
    level: Level
    code: str | None = Field(None, description="Kemendagri code, where known (e.g. '35.04')")
    province: str | None = Field(None, description="the province the region lies in (its own name "
                                                   "for a province)")
    regency: str | None = Field(None, description="the regency/city the region lies in (its own name "
                                                  "for a regency; null for a province, or where not known)")
    source: Literal["field", "text", "model_default"]


class Prediction(BaseModel):
    """What the router decided for one complaint."""

    id: str | None = None
    topic: TaskPrediction | None = None
    agency: TaskPrediction | None = None
    jurisdiction: Region | None = Field(None, description="the most specific region found")
    routed_to: str | None = Field(None, description="the concrete office, e.g. 'Dinas Pekerjaan Umum "
                                                    "Kabupaten Tulungagung' or 'Kelurahan Kertajaya'; "
                                                    "null when no office can be named (no place of the "
                                                    "level the agency serves: review reason "
                                                    "place_not_found); the agency's name is in "
                                                    "agency.name")
    needs_review: bool
    review_reasons: list[ReviewReason] = Field(default_factory=list)
    explanation: dict[str, list[str]] = Field(
        default_factory=dict, description="per task, the terms that weighed most for the chosen label")
    truncated: bool = False
    model: str
    model_version: str


class CheckedComplaint:
    """What the router reads of a complaint given as a plain dict that :class:`Complaint` accepts
    as it stands (:func:`checked_complaint`): its text, title and location, without the pydantic
    objects, which a batch of 200,000 rows would build only to read these fields once."""

    __slots__ = ("text", "title", "location")
    id = None

    def __init__(self, text: str, title: str | None, location: "CheckedLocation | None"):
        self.text, self.title, self.location = text, title, location

    def full_text(self) -> str:  # as Complaint.full_text
        return f"{self.title}. {self.text}" if self.title else self.text


class CheckedLocation(NamedTuple):
    """A :class:`Location`'s fields, read the same way (``.district``, ...)."""

    province: str | None = None
    regency: str | None = None
    district: str | None = None
    subdistrict: str | None = None
    address: str | None = None


def _max_length(field) -> int:
    return next(m.max_length for m in field.metadata if getattr(m, "max_length", None) is not None)


_ITEM_KEYS = frozenset({"text", "title", "location"})
_TITLE_MAX = _max_length(Complaint.model_fields["title"])
_LOCATION_MAX = {name: _max_length(f) for name, f in Location.model_fields.items()}


def checked_complaint(item: dict) -> CheckedComplaint | None:
    """The fields of ``item`` when ``Complaint.model_validate(item)`` would accept it and give
    them back unchanged, else None (then validate it: the error, or the odd value, is pydantic's
    to give). Only the plain shape a batch row makes is taken: ``text``, ``title`` and
    ``location``, their values ``str`` (or None) within the schema's lengths, no value that
    stripping would change (a location's values are stripped: the few that need it are left to
    pydantic, whose notion of whitespace is Unicode's, not ``str.strip``'s). A third of the cost
    of validation; ``tests/test_checked_complaint.py`` compares the two on awkward dicts."""
    if not _ITEM_KEYS.issuperset(item):
        return None
    text = item.get("text")
    if type(text) is not str or text_problem(text) is not None:
        return None
    title = item.get("title")
    if title is not None and (type(title) is not str or len(title) > _TITLE_MAX
                              or text_problem(title, required=False) is not None):
        return None
    loc = item.get("location")
    if loc is not None:
        if type(loc) is not dict:
            return None
        for name, v in loc.items():
            limit = _LOCATION_MAX.get(name)
            if limit is None or (v is not None and (
                    type(v) is not str or len(v) > limit or v.strip() != v
                    or (not v.isascii() and undecodable(v)))):
                return None
        get = loc.get
        loc = CheckedLocation(get("province"), get("regency"), get("district"), get("subdistrict"),
                              get("address"))
    return CheckedComplaint(text, title, loc)


def built_from_checked(cls: type[BaseModel]):
    """A function ``dict -> cls instance`` that takes the dict as the instance's fields, without
    validating it: for output the router has built itself from checked columns, holding every field
    of ``cls`` (no more) with values of the field's type. The instance is what
    ``cls.model_validate(d)`` gives for such a dict (the same ``__dict__``, ``model_fields_set``,
    no extra or private values; ``tests/test_fast_path.py`` compares them), at a third of the
    cost: validation re-checks every value the columns already hold, and ``model_construct`` runs
    more Python per object than this."""
    fields = frozenset(cls.model_fields)
    new, set_attr = object.__new__, object.__setattr__
    # BaseModel's slots, set through their descriptors (cheaper than a named setattr each). A
    # pydantic whose BaseModel keeps them otherwise gets the validating path: slower, the same.
    slot = BaseModel.__dict__
    try:
        set_fields = slot["__pydantic_fields_set__"].__set__
        set_extra = slot["__pydantic_extra__"].__set__
        set_private = slot["__pydantic_private__"].__set__
    except (KeyError, AttributeError):  # pragma: no cover - depends on the pydantic version
        return cls.model_validate

    def build(values: dict):
        obj = new(cls)
        set_attr(obj, "__dict__", values)
        set_fields(obj, set(fields))  # its own set: assignment adds to it
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    return build


def json_schemas() -> dict:
    """JSON Schema of the request and response models, for clients in other languages."""
    return {"Complaint": Complaint.model_json_schema(), "Prediction": Prediction.model_json_schema()}


if __name__ == "__main__":  # `python -m lapor_nlp.schemas`, the same as `lapor-nlp schemas`
    import json

    print(json.dumps(json_schemas(), indent=1))
