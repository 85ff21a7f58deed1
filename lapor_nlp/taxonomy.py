"""The agency taxonomy as data: which bodies exist, where each sits, and what it used to be called.

``datasets/taxonomy/agency_types.json`` lists every agency type the bundled model predicts, with
its level, its ``parent`` (the ministry, court or holding it belongs to), the office that serves a
citizen, and ``formerly``: the names it had before a reorganisation. Indonesian institutions are
rebuilt with each cabinet (Kemenkumham became three ministries in October 2024), and exports
labelled with old names are common, so the mapping from any name a body has had to its current
code lives here, in one place, for training (old labels) and the router (scopes) to share.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from .errors import InputValueError, ResourceError
from .resources import dataset_path

_NON_WORD = re.compile(r"[^\w]+")


def name_key(name: str) -> str:
    """How a label is compared with the taxonomy's names: case, punctuation and spacing ignored
    ("Kementerian PUPR", "kementerian  p.u.p.r" -> "kementerian pupr")."""
    return " ".join(_NON_WORD.sub(" ", str(name).lower().replace(".", "")).split())


@dataclass(frozen=True)
class Taxonomy:
    """Agency types and their parents, keyed by code."""

    types: dict[str, dict]
    parents: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Taxonomy":
        """The bundled taxonomy, or another file of the same shape."""
        path = Path(path) if path is not None else dataset_path("taxonomy", "agency_types.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            types = {t["code"]: t for t in data["agency_types"]}
            parents = {p["code"]: p for p in data.get("parents", [])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResourceError(f"cannot read the agency taxonomy {path}: {exc}") from exc
        return cls(types, parents)

    def entry(self, code: str) -> dict | None:
        return self.types.get(code) or self.parents.get(code)

    def lineage(self, code: str) -> list[str]:
        """``code`` and its parents, nearest first (a cycle in the data stops the walk)."""
        out = []
        while code and code not in out:
            out.append(code)
            code = (self.entry(code) or {}).get("parent")
        return out

    def members(self, scope: str) -> list[str]:
        """Agency types that are ``scope`` or lie under it (``"kemenimipas"`` -> imigrasi,
        pemasyarakatan)."""
        if self.entry(scope) is None:
            raise InputValueError(f"unknown scope {scope!r}: not an agency type or parent of the "
                                  f"taxonomy (e.g. {', '.join(sorted(self.parents)[:4])})")
        return [c for c in self.types if scope in self.lineage(c)]

    @cached_property
    def current_names(self) -> dict[str, str]:
        """Every name a type has now (code, official name, acronym, aliases) -> its code."""
        out: dict[str, str] = {}
        for code, t in self.types.items():
            for n in (code, t.get("name"), t.get("short"), *t.get("aliases", [])):
                if n:
                    out.setdefault(name_key(n), code)
        return out

    @cached_property
    def former_names(self) -> dict[str, list[str]]:
        """Every name a body had before a reorganisation (``formerly[].names``: the spellings an
        export may carry) -> the current codes that took over its duties (one code: renamed;
        several: split). A parent's former names reach all its members (Kemenkumham -> every
        unit of the three ministries that replaced it)."""
        out: dict[str, list[str]] = {}
        for code, entry in [*self.types.items(), *self.parents.items()]:
            codes = [code] if code in self.types else self.members(code)
            for old in entry.get("formerly", []):
                for name in old.get("names") or [old.get("name")]:
                    if name:
                        lst = out.setdefault(name_key(name), [])
                        lst.extend(c for c in codes if c not in lst)
        return out

    def candidates(self, label: str) -> list[str]:
        """The current codes a row labelled ``label`` may belong to: the body that has this name
        today first (if any), then those that took over duties once filed under it ("Kementerian
        Agama" -> kemenag, kemenhaj, bpjph). Empty: the label names no body of the taxonomy."""
        key = name_key(label)
        now = self.current_names.get(key)
        out = [now] if now else []
        out += [c for c in self.former_names.get(key, []) if c not in out]
        return out

    def routing(self) -> dict[str, dict]:
        """What a model directory's ``routing.json`` keeps of each type (see ``Router``)."""
        return {code: {"serves": t["serves"], "template": t["template"], "name": t["name"],
                       "level": t["level"], "parent": t.get("parent")}
                for code, t in self.types.items()}

    def parent_names(self) -> dict[str, str]:
        return {code: p["name"] for code, p in self.parents.items()}


@lru_cache(maxsize=1)
def bundled() -> Taxonomy:
    """The taxonomy shipped with lapor-nlp (read once per process)."""
    return Taxonomy.load()
