"""Which input columns hold what, and how one cell is read.

Training (labelled files), backlog classification and the command line all map columns with
:class:`Columns` and read cells with :func:`cell_value`, so that a file means the same thing to each
of them: a blank cell is missing everywhere, a date is its ISO text everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

__all__ = ["Columns", "cell_value", "reason_kind"]


@dataclass
class Columns:
    """Which input columns hold what. ``topic``/``agency`` may be None: train what is there."""

    text: str = "text"
    topic: str | None = "topic"
    agency: str | None = "agency"
    title: str | None = None
    date: str | None = None
    id: str | None = None
    province: str | None = None
    regency: str | None = None
    district: str | None = None
    village: str | None = None
    address: str | None = None

    def location(self) -> dict[str, str]:
        return {k: v for k in ("province", "regency", "district", "village", "address")
                if (v := getattr(self, k))}

    def optional(self) -> dict[str, str]:
        """The optional columns named (title, date, id and the location ones): field -> column."""
        return {k: v for k in ("title", "date", "id") if (v := getattr(self, k))} | self.location()


def cell_value(row: dict, col: str | None) -> str | None:
    """The text of ``row[col]``; None when no column is named, or the cell is absent, null, NaN or
    blank, so that every reader treats an empty cell as a missing one. Dates are read as ISO text."""
    if not col:
        return None
    v = row.get(col)
    if v is None:
        return None
    if isinstance(v, float) and v != v:  # NaN from Parquet/pandas
        return None
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    v = str(v)
    return v if v.strip() else None


def reason_kind(reason: str) -> str:
    """The kind of a rejection reason, for counting: its text before any detail
    ("malformed CSV: ..." and "duplicate id 'x'" count as "malformed CSV" and "duplicate id")."""
    return reason.split(":")[0].split(" '")[0].split(' "')[0]
