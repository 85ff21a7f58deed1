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

from .errors import InputTypeError, InputValueError, ResourceError
from .resources import dataset_path

_NON_WORD = re.compile(r"[^\w]+")


def name_key(name: str) -> str:
    """How a label is compared with the taxonomy's names: case, punctuation, hyphens, spacing and
    a closing "Republik Indonesia"/"RI" ignored ("Kementerian PUPR", "kementerian  p.u.p.r" ->
    "kementerian pupr"; "Mahkamah Agung Republik Indonesia" -> "mahkamah agung")."""
    key = " ".join(_NON_WORD.sub(" ", str(name).lower().replace(".", "").replace("-", "")).split())
    for tail in (" republik indonesia", " ri"):
        if key.endswith(tail) and len(key) > len(tail):
            return key[: -len(tail)]
    return key


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
        if not isinstance(scope, str):
            raise InputTypeError(f"a scope is one code (a str), got {type(scope).__name__}", field="scope")
        if self.entry(scope) is None:
            examples = ", ".join(sorted(self.parents)[:4]) or ", ".join(sorted(self.types)[:4])
            raise InputValueError(f"unknown scope {scope!r}: not an agency type or parent of this "
                                  f"taxonomy" + (f" (e.g. {examples})" if examples else ""), field="scope")
        return [c for c in self.types if scope in self.lineage(c)]

    @cached_property
    def current_names(self) -> dict[str, list[str]]:
        """Every official name a body has now -> the codes it may mean: a type's official name
        and acronym -> that type (a name two types share, "Bapenda", -> both); a parent's code,
        name and acronym ("Kementerian Imigrasi dan Pemasyarakatan") -> the types under it.
        Aliases are left out: they are how citizens write in a text ("KIS", "PPL"), and as an
        export's label they may name a programme rather than a body."""
        out: dict[str, list[str]] = {}
        for code, t in self.types.items():
            for n in (t.get("name"), t.get("short")):
                if n and code not in out.setdefault(name_key(n), []):
                    out[name_key(n)].append(code)
        for code, p in self.parents.items():
            for n in (code, p.get("name"), p.get("short")):
                if n:
                    out.setdefault(name_key(n), self.members(code))
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
        """The current codes a row labelled ``label`` may belong to. A code, or a name a body
        still has, means that body (several codes: a shared name or a parent's, resolved from
        the text); an old name means the bodies that took over its duties ("Kemenkumham" ->
        imigrasi, pemasyarakatan, djki, ditjen_ahu, kemenham). Empty: no body of the taxonomy."""
        if label in self.types:  # a code, exactly as written, means its own type
            return [label]
        key = name_key(label)
        if key in self.current_names:
            return list(self.current_names[key])
        return list(self.former_names.get(key, []))

    @cached_property
    def official_names(self) -> frozenset[str]:
        """Codes, official names and acronyms of today's types and parents (not aliases, which
        include old names that citizens still write, such as "Kominfo")."""
        return frozenset(name_key(n) for e in [*self.types.values(), *self.parents.values()]
                         for n in (e.get("code"), e.get("name"), e.get("short")) if n)

    def is_old_name(self, label: str) -> bool:
        """True for a name of a body before a reorganisation that no body bears officially today."""
        key = name_key(label)
        return key in self.former_names and key not in self.official_names

    def routing(self) -> dict[str, dict]:
        """What a model directory's ``routing.json`` keeps of each type (see ``Router``)."""
        return {code: {"serves": t["serves"], "template": t["template"], "name": t["name"],
                       "level": t["level"], "parent": t.get("parent"),
                       "national_office": t.get("national_office", t["level"] in ("central", "bumn"))}
                for code, t in self.types.items()}

    def parent_names(self) -> dict[str, str]:
        return {code: p["name"] for code, p in self.parents.items()}


@lru_cache(maxsize=1)
def bundled() -> Taxonomy:
    """The taxonomy shipped with lapor-nlp (read once per process)."""
    return Taxonomy.load()


def bundled_routing() -> dict:
    """Agency types with their office templates, levels and parents, and the label names, from the
    taxonomy files (what the default model's ``routing.json`` holds)."""
    tax = dataset_path("taxonomy")
    taxonomy = bundled()
    topics = json.loads((tax / "topics.json").read_text(encoding="utf-8"))["topics"]
    return {
        "agency_types": taxonomy.routing(),
        "parents": {code: {"name": p["name"], "parent": p.get("parent"), "level": p.get("level")}
                    for code, p in taxonomy.parents.items()},
        "label_names": {"agency": {c: t["name"] for c, t in taxonomy.types.items()},
                        "topic": {t["code"]: t["name"] for t in topics}},
    }
