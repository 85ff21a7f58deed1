"""A batch row's dict skips pydantic (``schemas.checked_complaint``) only where validating it would
give the same fields back: every dict here is also validated, and the two must agree."""

from __future__ import annotations

import random
import sys

import pytest

from lapor_nlp import Complaint
from lapor_nlp.errors import EmptyTextError, InvalidComplaintError
from lapor_nlp.schemas import Location, checked_complaint

from pydantic import ValidationError

WS = [" ", "\t", "\n", "\x0b", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000", "\u200b", "\ufeff"]
PIECES = ["jalan", "Kota Surabaya", "", "é", "\udcff", "\ud800", ",", "RT 03", *WS]


def _value(rng: random.Random):
    kind = rng.random()
    if kind < 0.05:
        return None
    if kind < 0.1:
        return rng.choice([3, 2.5, b"jalan", ["x"], {"a": 1}, True])
    if kind < 0.15:
        return "x" * rng.choice([199, 200, 201, 999, 1000, 1001, 1999, 2000, 2001])
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 5)))


def _item(rng: random.Random) -> dict:
    item = {}
    if rng.random() < 0.95:
        item["text"] = _value(rng)
    if rng.random() < 0.3:
        item["title"] = _value(rng)
    if rng.random() < 0.05:
        item[rng.choice(["id", "date", "channel", "lokasi"])] = _value(rng)
    if rng.random() < 0.8:
        if rng.random() < 0.05:
            item["location"] = rng.choice([None, "Surabaya", ["x"], 3])
        else:
            names = ["province", "regency", "district", "subdistrict", "address"]
            if rng.random() < 0.05:
                names.append("kelurahan")
            item["location"] = {n: _value(rng) for n in rng.sample(names, rng.randrange(0, len(names) + 1))}
    return item


def test_a_checked_dict_has_the_fields_validation_gives_and_nothing_invalid_is_checked():
    rng = random.Random(7)
    taken = refused_by_both = 0
    for _ in range(20_000):
        item = _item(rng)
        checked = checked_complaint(item)
        try:
            c = Complaint.model_validate(item)
        except ValidationError:
            assert checked is None, item.keys()
            refused_by_both += 1
            continue
        if checked is None:
            continue  # valid, but left to pydantic (a value stripping changes, an id, ...)
        taken += 1
        assert (checked.text, checked.title, checked.id) == (c.text, c.title, c.id)
        assert checked.full_text() == c.full_text()
        if c.location is None:
            assert checked.location is None
        else:
            assert checked.location is not None
            for name in Location.model_fields:
                assert getattr(checked.location, name) == getattr(c.location, name), name
    # the comparison covered both sides
    assert taken > 2000 and refused_by_both > 1000


def test_what_pydantic_strips_from_a_location_value_python_strips_too():
    # checked_complaint leaves to pydantic any value that str.strip() changes; that is only safe
    # while every character pydantic strips is one str.strip() strips as well.
    step = 1 if sys.maxsize > 2**32 else 7
    for cp in range(0, 0x110000, step):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if Location(district=c + "x").district != c + "x":
            assert c.isspace(), hex(cp)


def test_a_batch_of_dicts_routes_as_the_complaints_they_validate_to(router):
    rows = [{"text": "jalan rusak parah di depan rumah", "location": {"district": "Gubeng", "address": "Jl. Kenanga 5"}},
            {"text": "lampu jalan mati", "title": "PJU", "location": {"regency": "Kota Malang"}},
            {"text": "sampah menumpuk", "location": {"district": " Gubeng "}},  # stripped by pydantic
            {"text": "air PDAM mati", "location": {}},
            {"text": "pelayanan lambat", "location": {"regency": "Kota Tidak Ada", "subdistrict": "Tlogomas"}},
            {"text": "banjir", "location": None}]
    assert sum(checked_complaint(r) is not None for r in rows) == 5
    as_dicts = router.predict_records(rows, explain=True)
    as_complaints = router.predict_records([Complaint.model_validate(r) for r in rows], explain=True)
    assert as_dicts == as_complaints
    assert any(r["jurisdiction"] and r["jurisdiction"]["source"] == "field" for r in as_dicts)


@pytest.mark.parametrize("bad, error", [({"text": "  "}, EmptyTextError),
                                        ({"text": "ok", "location": {"kota": "Malang"}}, InvalidComplaintError),
                                        ({"text": "ok", "title": "x" * 1001}, InvalidComplaintError)])
def test_a_dict_the_schema_refuses_still_gets_the_schemas_error(router, bad, error):
    assert checked_complaint(bad) is None
    [got] = router.predict_records([bad], on_error="return")
    assert type(got) is error and got.field in ("text", "location.kota", "title")
