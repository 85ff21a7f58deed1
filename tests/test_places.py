"""Places (issue 18, routing defects): a kelurahan given beside its kecamatan keeps the city, the
region's province and regency are filled at every level, ``routed_to`` is None when no office can
be named, and ``classify`` finds location columns by their names."""

from __future__ import annotations

import csv
import json

import pytest

from lapor_nlp.cli import main
from lapor_nlp.columns import Columns, location_from_names
from lapor_nlp.jurisdiction import Gazetteer, find_regency
from lapor_nlp.schemas import Location

KETINTANG = "jalan rusak di ketintang"  # a Surabaya kelurahan the default model learnt, without its city
IN_GAYUNGAN = {"district": "Gayungan", "subdistrict": "Ketintang"}


# -- a kelurahan beside its kecamatan ---------------------------------------------------------------
def test_a_learnt_kelurahan_takes_the_city_of_the_kecamatan_given_with_it():
    gaz = Gazetteer({"village": ["Ketintang"]})  # a learnt village that does not say where it lies
    place = gaz.from_fields(Location(**IN_GAYUNGAN))
    assert (place.name, place.level) == ("Ketintang", "village")
    assert (place.district, place.regency, place.province) == ("Gayungan", "Kota Surabaya", "Jawa Timur")
    # a kelurahan that a model placed in another kecamatan is the one the fields give
    gaz = Gazetteer({"village": ["Ketintang"]}, village_district={"Ketintang": "Wonokromo"})
    place = gaz.from_fields(Location(**IN_GAYUNGAN))
    assert (place.district, place.regency) == ("Gayungan", "Kota Surabaya")
    # alone, nothing says where it lies
    assert Gazetteer({"village": ["Ketintang"]}).from_fields(Location(subdistrict="Ketintang")).regency is None


def test_fields_resolve_a_portals_spellings_and_each_other():
    gaz = Gazetteer({"village": ["Pacarkembang", "Kebraon"]}, place_regency={"Pacarkembang": "Kota Surabaya"})
    # one word where Kemendagri writes two, and Surabaya's own spelling of Pabean Cantian
    for written, official in (("Karangpilang", "Karang Pilang"), ("Gununganyar", "Gunung Anyar"),
                              ("Asemrowo", "Asem Rowo"), ("Pabean Cantikan", "Pabean Cantian")):
        place = gaz.from_fields(Location(district=written))
        assert (place.name, place.level, place.regency) == (official, "district", "Kota Surabaya")
    assert gaz.from_fields(Location(district="Karangpilang", subdistrict="Kebraon")).regency == "Kota Surabaya"
    # "Tambaksari" is a kecamatan of two regencies: alone it says nothing, beside a kelurahan
    # that lies in Surabaya it is Surabaya's
    assert gaz.from_fields(Location(district="Tambaksari")) is None
    place = gaz.from_fields(Location(district="Tambaksari", subdistrict="Pacarkembang"))
    assert (place.district, place.regency) == ("Tambaksari", "Kota Surabaya")


def test_giving_the_kelurahan_beside_its_kecamatan_keeps_the_city(router):
    district_only = router.predict({"text": KETINTANG, "location": {"district": "Gayungan"}})
    both = router.predict({"text": KETINTANG, "location": IN_GAYUNGAN})
    assert district_only.agency.label == both.agency.label == "dinas_pu"
    assert district_only.routed_to == both.routed_to == "Dinas Pekerjaan Umum Kota Surabaya"
    j = both.jurisdiction
    assert (j.name, j.level, j.regency, j.province, j.source) == \
           ("Ketintang", "village", "Kota Surabaya", "Jawa Timur", "field")
    assert "place_not_found" not in both.review_reasons


def test_the_city_in_the_address_or_text_says_which_shared_kecamatan_is_meant(router):
    text = "jalan rusak parah berlubang mohon diperbaiki"
    alone = router.predict({"text": text, "location": {"district": "Tambaksari"}})  # two regencies have one
    assert alone.jurisdiction is None and alone.routed_to is None
    assert {"location_not_resolved", "place_not_found"} <= set(alone.review_reasons)
    for item in ({"text": text, "location": {"district": "Tambaksari", "address": "Jl. Kenanga 5, Surabaya"}},
                 {"text": text + " di kota surabaya", "location": {"district": "Tambaksari"}}):
        p = router.predict(item)
        j = p.jurisdiction
        assert (j.name, j.level, j.regency, j.source) == ("Tambaksari", "district", "Kota Surabaya", "field")
        assert p.routed_to == "Dinas Pekerjaan Umum Kota Surabaya" and not {
            "location_not_resolved", "place_not_found"} & set(p.review_reasons)
    # a kecamatan the city does not have is still a field to check, whatever the address says
    p = router.predict({"text": text, "location": {"district": "Tambaksarix", "address": "Surabaya"}})
    assert p.jurisdiction.name == "Kota Surabaya" and "location_not_resolved" in p.review_reasons


# -- the region's province and regency --------------------------------------------------------------
@pytest.mark.parametrize("item, level", [
    ("lampu jalan mati sudah seminggu di Kabupaten Sleman mohon diperbaiki", "regency"),
    ({"text": "lampu jalan mati sudah seminggu mohon diperbaiki",
      "location": {"regency": "Kota Surabaya"}}, "regency"),
    ({"text": "lampu jalan mati sudah seminggu mohon diperbaiki",
      "location": {"province": "Jawa Timur"}}, "province"),
    ({"text": "lampu jalan mati sudah seminggu mohon diperbaiki",
      "location": {"district": "Gubeng"}}, "district"),
])
def test_the_region_names_its_province_and_regency_at_every_level(router, item, level):
    j = router.predict(item).jurisdiction
    assert j.level == level
    if level == "province":
        assert j.province == j.name and j.regency is None
        return
    regency = find_regency(j.name) if level == "regency" else find_regency(j.regency)
    assert j.regency == regency.name and j.province == regency.province
    if level == "regency":
        assert j.regency == j.name


# -- routed_to None when no office can be named -----------------------------------------------------
def test_routed_to_is_none_when_the_office_cannot_be_resolved(router):
    p = router.predict("halo")
    assert p.routed_to is None and p.agency.name  # the agency keeps its name
    assert {"place_not_found", "text_too_short"} <= set(p.review_reasons)
    # a regional office with no place of its level: the city is not known from a province
    p = router.predict({"text": "lampu jalan mati sudah seminggu mohon diperbaiki",
                        "location": {"province": "Jawa Timur"}})
    info = router.agency_types[p.agency.label]
    assert info["serves"] == "regency" and not info.get("national_office")
    assert p.routed_to is None and p.agency.name == info["name"]
    assert "place_not_found" in p.review_reasons
    # the records (files, HTTP) say the same
    assert router.predict_records(["halo"])[0]["routed_to"] is None


# -- classify: the columns -------------------------------------------------------------------------
def test_location_columns_are_found_by_name():
    names = ["ID", "Teks", "Kecamatan", "Kelurahan/Desa", " alamat ", "provinsi"]
    cols = location_from_names(Columns(text="Teks", topic=None, agency=None), names)
    assert cols.location() == {"province": "provinsi", "district": "Kecamatan",
                               "village": "Kelurahan/Desa", "address": " alamat "}
    cols = location_from_names(Columns(text="text"), ["text", "district", "subdistrict", "address"],
                               keep={"address"})
    assert cols.location() == {"district": "district", "village": "subdistrict"}
    # a column named by the user, or holding the text, is never taken for another field
    cols = location_from_names(Columns(text="address", district="subdistrict"), ["address", "subdistrict"])
    assert cols.location() == {"district": "subdistrict"}


def _write(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _classify(capsys, src, out, model_dir, *options):
    rc = main(["classify", str(src), "-o", str(out), "--model", str(model_dir), "--jobs", "1", *options])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    with open(out, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh)), captured.err


def test_classify_reads_the_kelurahan_beside_its_kecamatan(model_dir, tmp_path, capsys):
    src = tmp_path / "in.csv"
    _write(src, ["id", "text", "district", "subdistrict"],
           [["1", KETINTANG, "Gayungan", "Ketintang"], ["2", "halo", "", ""]])
    old, err = _classify(capsys, src, tmp_path / "old.csv", model_dir,
                         "--district-col", "district", "--village-col", "subdistrict")
    assert "--village-col is deprecated" in err and "--subdistrict-col" in err
    assert old[0]["routed_to"] == "Dinas Pekerjaan Umum Kota Surabaya"
    assert old[1]["routed_to"] == "" and "place_not_found" in old[1]["review_reasons"]
    new, err = _classify(capsys, src, tmp_path / "new.csv", model_dir,
                         "--district-col", "district", "--subdistrict-col", "subdistrict")
    assert "deprecated" not in err and new == old
    # found by name, and said so
    auto, err = _classify(capsys, src, tmp_path / "auto.csv", model_dir)
    assert auto == old
    assert "location columns: district <- 'district', subdistrict <- 'subdistrict'" in err
    # '' switches a column off: the kelurahan alone does not say where it lies
    off, err = _classify(capsys, src, tmp_path / "off.csv", model_dir, "--district-col", "")
    assert "location columns: subdistrict <- 'subdistrict'" in err
    assert off[0]["routed_to"] == "" and "place_not_found" in off[0]["review_reasons"]


def test_classify_finds_indonesian_column_names_and_writes_null_offices(model_dir, tmp_path, capsys):
    src = tmp_path / "in.csv"
    _write(src, ["text", "kecamatan", "kelurahan/desa"], [[KETINTANG, "Gayungan", "Ketintang"], ["halo", "", ""]])
    out = tmp_path / "out.jsonl"
    assert main(["classify", str(src), "-o", str(out), "--model", str(model_dir), "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "district <- 'kecamatan', subdistrict <- 'kelurahan/desa'" in err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["routed_to"] == "Dinas Pekerjaan Umum Kota Surabaya"
    assert rows[1]["routed_to"] is None  # null in JSON Lines, not a generic name


def test_village_col_and_subdistrict_col_naming_different_columns_is_an_error(model_dir, tmp_path, capsys):
    src = tmp_path / "in.csv"
    _write(src, ["text", "a", "b"], [[KETINTANG, "x", "y"]])
    rc = main(["classify", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(model_dir),
               "--village-col", "a", "--subdistrict-col", "b"])
    assert rc == 1 and "give only --subdistrict-col" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
