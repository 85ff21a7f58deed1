"""Agency labels as a TYPE plus a PLACE.

"Kelurahan Kertajaya", "Kecamatan Gubeng" or "Dinas Sosial Kabupaten Sleman" name one kind of office
in one place. A classifier that learnt each as its own class would need examples of every village;
instead it learns the type ("Kelurahan", "Dinas Sosial") and the router fills in the place found in
the complaint. The rules are data (``datasets/taxonomy/agency_patterns.json``) that a user can
replace for another naming scheme.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ResourceError
from .resources import dataset_path


@dataclass(frozen=True)
class AgencyName:
    """An agency label split into its type and, when it names one, a place and that place's level."""

    label: str
    type: str
    place: str | None = None
    level: str | None = None


class AgencySplitter:
    """Split agency labels with ordered regex rules (first match wins; no match = no place)."""

    def __init__(self, patterns: list[dict] | None = None):
        if patterns is None:
            patterns = load_patterns(dataset_path("taxonomy", "agency_patterns.json"))
        self.patterns = patterns
        try:
            self._compiled = [(re.compile(p["pattern"], re.IGNORECASE), p.get("type"), p.get("level"))
                              for p in patterns]
        except (re.error, KeyError, TypeError) as exc:
            raise ResourceError(f"invalid agency pattern: {exc}") from exc

    def split(self, label: str) -> AgencyName:
        label = " ".join(str(label).split())
        for rx, type_name, level in self._compiled:
            m = rx.match(label)
            if m:
                groups = m.groupdict()
                t = type_name or groups.get("type") or label
                place = (groups.get("place") or "").strip() or None
                return AgencyName(label, _tidy(t), place, level if place else None)
        return AgencyName(label, label)


def _tidy(name: str) -> str:
    """Title-case a type matched in lower case ("rsud" stays "RSUD"), keep given casing otherwise."""
    if name.islower():
        return name.upper() if len(name) <= 5 else name.title()
    return name


def load_patterns(path: str | Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return list(data["patterns"] if isinstance(data, dict) else data)
    except (OSError, ValueError, KeyError) as exc:
        raise ResourceError(f"cannot read agency patterns {path}: {exc}") from exc
