"""Which input columns hold what, and how one cell is read.

Training (labelled files), backlog classification and the command line all map columns with
:class:`Columns` and read cells with :func:`cell_value`, so that a file means the same thing to each
of them: a blank cell is missing everywhere, a date is its ISO text everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

__all__ = ["LOCATION_NAMES", "Columns", "cell_value", "location_from_names", "reason_kind"]

#: The location fields of a complaint (``Complaint.location``) in order, and the column names each
#: is found under when no column is named for it: the schema's own name first, then the Indonesian
#: names that portal exports use (the Surabaya export names them like the schema). Compared
#: without case and surrounding spaces.
LOCATION_NAMES: dict[str, tuple[str, ...]] = {
    "province": ("province", "provinsi"),
    "regency": ("regency", "kabupaten/kota", "kabupaten_kota", "kab/kota"),
    "district": ("district", "kecamatan"),
    "subdistrict": ("subdistrict", "kelurahan/desa", "kelurahan_desa", "kelurahan", "desa", "village"),
    "address": ("address", "alamat"),
}


@dataclass
class Columns:
    """Which input columns hold what. ``topic``/``agency`` may be None: train what is there.
    ``village`` is the column of ``location.subdistrict`` (the kelurahan or desa; the command
    line calls it ``--subdistrict-col``)."""

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


def location_from_names(columns: Columns, names, keep=()) -> Columns:
    """``columns`` with each location column that is not named yet (and whose field is not in
    ``keep``, the fields a user named, even as none) taken from the file's column ``names`` by
    :data:`LOCATION_NAMES`: a backlog whose columns are called ``district``/``subdistrict`` or
    ``kecamatan``/``kelurahan/desa`` is read with its places without any option. A column that
    already holds the text, title, id, date or another place is never taken for a place."""
    used = {v for v in (columns.text, columns.title, columns.id, columns.date) if v}
    used |= set(columns.location().values())
    by_key: dict[str, str] = {}
    for name in names:
        if isinstance(name, str):
            by_key.setdefault(name.strip().casefold(), name)
    found = {}
    for field, aliases in LOCATION_NAMES.items():
        attr = "village" if field == "subdistrict" else field
        if getattr(columns, attr) or field in keep or attr in keep:
            continue
        for alias in aliases:
            col = by_key.get(alias)
            if col is not None and col not in used:
                found[attr] = col
                used.add(col)
                break
    return replace(columns, **found) if found else columns


def cell_value(row: dict, col: str | None) -> str | None:
    """The text of ``row[col]``; None when no column is named, or the cell is absent, null, NaN or
    blank, so that every reader treats an empty cell as a missing one. Dates are read as ISO text."""
    if not col:
        return None
    v = row.get(col)
    if v.__class__ is str:  # a CSV cell (the one test for nearly every value)
        return v if v.strip() else None
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
