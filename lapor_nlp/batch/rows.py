"""One backlog row on its way to a prediction: row -> router item (or the reason it cannot be one)
-> the values of the prediction columns (read from the router's columns, or from its record).

Shared by every way a backlog is classified (this machine's executors and Dask), so that a row gets
the same item, the same reject reason and the same values whichever path it takes.
"""

from __future__ import annotations

from typing import Any

from ..columns import Columns, cell_value
from ..errors import BatchInputError, EmptyTextError, LaporError, UndecodableTextError
from ..io import UNDECODABLE, undecodable

#: The prediction columns in output order, each with its kind ("str", "float" or "bool"): the
#: Parquet (Arrow) and Dask (pandas) column types are derived from it.
PRED_KINDS = {"topic": "str", "topic_score": "float", "agency": "str", "agency_score": "float",
              "routed_to": "str", "needs_review": "bool", "review_reasons": "str", "model_version": "str"}
PRED_COLUMNS = tuple(PRED_KINDS)
AUTO_PREFIX = "pred_"
NO_TEXT = "no text"


def default_columns() -> Columns:
    return Columns(text="text", topic=None, agency=None)


def prediction_names(prefix: str = "") -> list[str]:
    return [prefix + c for c in PRED_COLUMNS]


def choose_prefix(input_columns, prefix: str | None = None) -> str:
    """``prefix`` as given, or automatically ``pred_`` when an input column already has a
    prediction column's name (a backlog often carries its old ``topic``/``agency``)."""
    cols = set(input_columns or ())
    if prefix is None:
        prefix = AUTO_PREFIX if cols & set(PRED_COLUMNS) else ""
    clash = cols & set(prediction_names(prefix))
    if clash:
        raise BatchInputError(
            f"input column(s) {', '.join(sorted(map(repr, clash)))} have the names of prediction "
            "columns; choose another --prefix for the prediction columns")
    return prefix


def row_undecodable(row: dict) -> bool:
    """A value that cannot be written as UTF-8: bytes that were not UTF-8 in a CSV or JSON line,
    a lone surrogate from a JSON escape, also inside a nested JSON value, or a Parquet binary
    value that is not UTF-8 text."""
    for v in row.values():
        if v.__class__ is str:
            if not v.isascii() and undecodable(v):
                return True
        elif v is not None and value_undecodable(v):
            return True
    return False


def value_undecodable(value) -> bool:
    """One value of a row (any type) that cannot be written as UTF-8 (see :func:`row_undecodable`).
    A loop over a stack, not recursion: JSON may nest deeper than Python's recursion limit."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if undecodable(v):
                return True
        elif isinstance(v, (bytes, bytearray)):
            try:
                bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                return True
        elif isinstance(v, dict):
            stack += v.keys()
            stack += v.values()
        elif isinstance(v, (list, tuple)):
            stack += v
    return False


def location_columns(columns: Columns) -> tuple[tuple[str, str], ...]:
    """(Location field, column) of each location column named, in :func:`row_item`'s order: what
    a caller classifying many rows under the same columns works out once."""
    return tuple(("subdistrict" if level == "village" else level, col)
                 for level, col in columns.location().items())


def row_item(row: dict, columns: Columns, *, utf8: bool = False,
             location: tuple[tuple[str, str], ...] | None = None):
    """The router input for one row: ``(item, None)``, or ``(None, reason)`` when the row cannot
    be classified. A text-only row gives a plain ``str`` (the router's fast path). ``utf8``: every
    value is text already checked to be UTF-8 (a chunk Arrow read), so it is not checked again.
    ``location``: :func:`location_columns` of ``columns``, when the caller has it already."""
    if not utf8 and row_undecodable(row):
        return None, UNDECODABLE
    text = cell_value(row, columns.text)
    if text is None:
        return None, NO_TEXT
    title = cell_value(row, columns.title)
    loc = {}
    for field, col in location if location is not None else location_columns(columns):
        v = cell_value(row, col)
        if v is not None:
            loc[field] = v
    if title is None and not loc:
        return text, None
    item: dict[str, Any] = {"text": text}
    if title is not None:
        item["title"] = title
    if loc:
        item["location"] = loc
    return item, None


def predict_items(router, items: list) -> list[dict | str]:
    """``router.predict_records`` for many items; an item the router refuses gives its reason (a
    ``str``) in its place instead of failing the whole chunk (the router's ``on_error="return"``),
    in the same words as a row refused before the router."""
    if not items:
        return []
    return [r if type(r) is dict else _reject_reason(r)
            for r in router.predict_records(items, on_error="return")]


def _reject_reason(exc: LaporError) -> str:
    if isinstance(exc, EmptyTextError):
        return NO_TEXT
    if isinstance(exc, UndecodableTextError):
        return UNDECODABLE
    return exc.message[:300]


def predict_values(router, items: list) -> list[tuple | str]:
    """Each item's prediction values (:func:`prediction_values`' tuple), or the reason the router
    refused it (a ``str``, as in :func:`predict_items`). Read straight from the columns of
    ``router.route`` -- no record dict per row, which a file of results does not need -- and from
    the records of ``predict_records`` for a router without ``route``; the same values either way
    (tests/test_batch.py compares them)."""
    if not items:
        return []
    route = getattr(router, "route", None)
    if route is None:
        return [prediction_values(r) if type(r) is dict else r for r in predict_items(router, items)]
    result = route(items, on_error="return")
    n = len(result)
    columns = []
    for task in ("topic", "agency"):
        if task in result.tasks:
            columns += (result.label(task).tolist(), result.tasks[task].score.tolist())
        else:
            columns += ([None] * n, [None] * n)
    topic, topic_score, agency, agency_score = columns
    rows = list(zip(topic, topic_score, agency, agency_score, result.routed_to.tolist(),
                    result.needs_review.tolist(), result.review_reasons_joined(";"),
                    [result.model_version] * n))
    if not result.errors:
        return rows
    from ..router import Router  # the router's own seam puts refused items back at their places

    placed = Router._with_errors(rows, result.positions.tolist(), result.errors, "return")
    return [_reject_reason(v) if isinstance(v, LaporError) else v for v in placed]


def prediction_values(rec: dict) -> tuple:
    """The prediction columns' values, in :data:`PRED_COLUMNS` order."""
    topic = rec.get("topic") or {}
    agency = rec.get("agency") or {}
    return (topic.get("label"), topic.get("score"), agency.get("label"), agency.get("score"),
            rec.get("routed_to"), bool(rec.get("needs_review")),
            ";".join(rec.get("review_reasons") or ()), rec.get("model_version"))
