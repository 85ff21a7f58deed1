"""The agency taxonomy: every type complete and sourced, parents that exist, the 2024 reorganisation
as data, and old names that find their current bodies."""

from __future__ import annotations

import json
import re

import pytest

from lapor_nlp.errors import InputTypeError, InputValueError, ResourceError
from lapor_nlp.resources import dataset_path
from lapor_nlp.taxonomy import Taxonomy, bundled, name_key

REQUIRED = ("code", "name", "level", "parent", "serves", "template", "handles", "not_handles",
            "aliases", "formerly", "sources")
LEVELS = {"central", "bumn", "province", "regency", "district", "village"}


@pytest.fixture(scope="module")
def raw():
    return json.loads(dataset_path("taxonomy", "agency_types.json").read_text(encoding="utf-8"))


def test_every_type_is_complete_and_sourced(raw):
    types = raw["agency_types"]
    assert len(types) >= 110
    codes = [t["code"] for t in types]
    assert len(codes) == len(set(codes))
    parents = {p["code"] for p in raw["parents"]}
    sources = set(raw["sources"])
    for t in types:
        missing = [k for k in REQUIRED if k not in t]
        assert not missing, (t["code"], missing)
        assert t["level"] in LEVELS, t["code"]
        assert t["parent"] is None or t["parent"] in parents | set(codes), t["code"]
        placeholders = set(re.findall(r"\{(\w+)\}", t["template"]))
        assert placeholders == (set() if t["serves"] == "none" else {t["serves"]}), t["code"]
        assert t["sources"] and set(t["sources"]) <= sources, t["code"]
        for old in t["formerly"]:
            assert old.get("name"), t["code"]
    for p in raw["parents"]:
        assert p.get("sources") and set(p["sources"]) <= sources, p["code"]
    for key, s in raw["sources"].items():
        assert s.get("title") and s.get("url", "").startswith("http"), key


def test_every_kind_of_institution_is_covered(raw):
    by_level = {}
    for t in raw["agency_types"]:
        by_level.setdefault(t["level"], set()).add(t["code"])
    assert len(by_level["central"]) >= 60 and len(by_level["bumn"]) >= 15
    assert {"disdik_provinsi", "disnakertrans_provinsi", "dinas_pu_provinsi"} <= by_level["province"]
    assert {"inspektorat", "dinas_perikanan", "dinas_ketahanan_pangan", "dispusip"} <= by_level["regency"]
    assert {"desa"} <= by_level["village"] and {"kelurahan"} <= by_level["village"]


def test_the_2024_split_of_kemenkumham_is_in_the_data():
    tax = bundled()
    assert set(tax.members("kemenimipas")) == {"imigrasi", "pemasyarakatan"}
    assert {"djki", "ditjen_ahu"} <= set(tax.members("kemenkum"))
    assert tax.lineage("imigrasi") == ["imigrasi", "kemenimipas"]
    assert tax.lineage("pengadilan_agama")[-1] == "mahkamah_agung"
    old = tax.candidates("Kemenkumham")
    assert {"imigrasi", "pemasyarakatan", "djki", "ditjen_ahu", "kemenham"} <= set(old)


@pytest.mark.parametrize("label, expected", [
    ("Kementerian Komunikasi dan Informatika", ["komdigi"]),
    ("KOMINFO", ["komdigi"]),
    ("BP2MI", ["kp2mi"]),
    ("Badan Pelindungan Pekerja Migran Indonesia", ["kp2mi"]),
    ("Direktorat Jenderal Imigrasi", ["imigrasi"]),
    ("dinas_pu", ["dinas_pu"]),
    ("Dinas Sumber Daya Air dan Bina Marga", []),
])
def test_names_find_their_current_codes(label, expected):
    assert bundled().candidates(label) == expected


def test_split_bodies_offer_every_successor_and_living_names_their_holder():
    tax = bundled()
    assert set(tax.candidates("Kementerian PUPR")) == {"kemen_pu", "kemenpkp"}
    assert {"kemendikdasmen", "kemendiktisaintek", "kemenbud"} <= set(tax.candidates("Kemendikbudristek"))
    assert tax.is_old_name("Kemenkumham") and tax.is_old_name("Kominfo")
    # a body that still exists keeps its rows, although hajj and halal left it in 2024-2025
    assert tax.candidates("Kementerian Agama") == ["kemenag"] and not tax.is_old_name("Kementerian Agama")
    assert tax.candidates("kemenag") == ["kemenag"]
    # a ministry's own name means the units under it
    assert set(tax.candidates("Kementerian Imigrasi dan Pemasyarakatan")) == {"imigrasi", "pemasyarakatan"}
    assert set(tax.candidates("Mahkamah Agung RI")) == {"pengadilan_negeri", "pengadilan_agama"}
    assert tax.candidates("KemenPAN-RB") == ["kemenpanrb"]
    # a name two types share is resolved from the text; a code as written is its own type
    assert set(tax.candidates("Bapenda")) == {"bapenda", "bapenda_provinsi"} and tax.candidates("bapenda") == ["bapenda"]
    # aliases are how citizens write, not labels: "KIS" is a card, not BPJS Kesehatan
    assert tax.candidates("KIS") == [] and tax.candidates("PPL") == []


def test_name_key_ignores_case_punctuation_and_spacing():
    assert name_key("Kementerian  P.U.P.R") == name_key("kementerian pupr") == "kementerian pupr"
    assert name_key("Mahkamah Agung Republik Indonesia") == name_key("mahkamah agung") == "mahkamah agung"


def test_unknown_scope_and_bad_file_are_typed_errors(tmp_path):
    with pytest.raises(InputValueError, match="unknown scope"):
        bundled().members("kementerian_sihir")
    with pytest.raises(InputTypeError):
        bundled().members(["kemenimipas"])
    bad = tmp_path / "t.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(ResourceError):
        Taxonomy.load(bad)
