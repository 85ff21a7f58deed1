"""Bad input, for people who embed the library (issue 18, "Batches and errors for embedders"): one
bad item no longer fails a whole batch when the caller says so (``on_error``), every error carries
its facts as attributes (``code``, ``message``, ``index``, ``field``) with one code per cause, and
one rule per kind of bad input holds in Python, on the command line and over HTTP."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

from lapor_nlp import Complaint, Prediction, Router
from lapor_nlp.errors import (
    EmptyTextError, InputTypeError, InputValueError, InvalidComplaintError, LaporError,
    UndecodableTextError, UnknownRegionError,
)

GOOD = ["jalan berlubang di depan pasar Kedungwaru Tulungagung", "lampu PJU mati seminggu di Kota Malang",
        "sampah menumpuk di TPS belum diangkut, Kota Bandung", "air PDAM tidak mengalir tiga hari"]
BAD = "   \n\t"  # whitespace only: no complaint at all


def _batch():
    """Four usable complaints with a bad one in the middle, at index 2."""
    return GOOD[:2] + [BAD] + GOOD[2:]


# -- on_error ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["predict_batch", "predict_records"])
def test_raise_names_the_item_its_field_and_its_code(router, method):
    with pytest.raises(EmptyTextError) as info:
        getattr(router, method)(_batch())  # on_error="raise" is the default
    exc = info.value
    assert (exc.code, exc.index, exc.field) == ("LAPOR-E006", 2, "text")
    assert str(exc).startswith("[LAPOR-E006] item 2: ") and "whitespace" in exc.message
    assert isinstance(exc, ValueError) and isinstance(exc, InputValueError)


@pytest.mark.parametrize("method", ["predict_batch", "predict_records"])
def test_skip_leaves_the_bad_item_out(router, method):
    out = getattr(router, method)(_batch(), on_error="skip", explain=False)
    expected = getattr(router, method)(GOOD, explain=False)
    assert len(out) == len(GOOD) and out == expected


@pytest.mark.parametrize("method", ["predict_batch", "predict_records"])
def test_return_puts_the_error_at_the_bad_items_position(router, method):
    out = getattr(router, method)(_batch(), on_error="return", explain=False)
    expected = getattr(router, method)(GOOD, explain=False)
    assert len(out) == 5
    assert isinstance(out[2], EmptyTextError) and (out[2].index, out[2].field) == (2, "text")
    assert out[:2] + out[3:] == expected  # the others are what they are without the bad one
    kind = Prediction if method == "predict_batch" else dict
    assert all(isinstance(o, kind) for o in out[:2] + out[3:])


def test_return_mode_keeps_every_kind_of_error_apart(router):
    items = ["jalan rusak di Kota Malang", None, {"text": "x", "umur": 3}, "air \udcff mati", b"\xff\xfe",
             {"text": "lampu mati", "location": {"regency": "x" * 300}}, ""]
    out = router.predict_records(items, on_error="return")
    assert isinstance(out[0], dict)
    got = [(type(o).__name__, o.code, o.index, o.field) for o in out[1:]]
    assert got == [("InputTypeError", "LAPOR-E001", 1, None),
                   ("InvalidComplaintError", "LAPOR-E005", 2, "umur"),
                   ("UndecodableTextError", "LAPOR-E007", 3, "text"),
                   ("UndecodableTextError", "LAPOR-E007", 4, "text"),
                   ("InvalidComplaintError", "LAPOR-E005", 5, "location.regency"),
                   ("EmptyTextError", "LAPOR-E006", 6, "text")]


def test_pipe_counts_indexes_from_the_start_of_the_stream(router):
    stream = _batch() * 3  # bad items at 2, 7 and 12, in batches of 2
    out = list(router.pipe(iter(stream), batch_size=2, on_error="return", as_records=True))
    assert [i for i, o in enumerate(out) if isinstance(o, LaporError)] == [2, 7, 12]
    assert [o.index for o in out if isinstance(o, LaporError)] == [2, 7, 12]
    assert len(list(router.pipe(stream, batch_size=2, on_error="skip", as_records=True))) == 12
    with pytest.raises(EmptyTextError) as info:
        list(router.pipe(stream[3:], batch_size=2))
    assert info.value.index == 4 and "item 4:" in str(info.value)


def test_on_error_must_be_one_of_three(router):
    for call in (lambda: router.predict_batch(GOOD, on_error="ignore"),
                 lambda: router.predict_records(GOOD, on_error=None),
                 lambda: router.pipe(GOOD, on_error="warn")):
        with pytest.raises(InputValueError) as info:
            call()
        assert (info.value.code, info.value.field) == ("LAPOR-E002", "on_error")


def test_a_single_prediction_has_no_index(router):
    with pytest.raises(EmptyTextError) as info:
        router.predict("")
    assert info.value.index is None and str(info.value).startswith("[LAPOR-E006] the text")


def test_errors_keep_their_attributes_across_processes():
    exc = InvalidComplaintError("invalid complaint: date: must be a date", field="date", index=7)
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), back.code, back.message, back.field, back.index, str(back)) == (
        InvalidComplaintError, "LAPOR-E005", exc.message, "date", 7, str(exc))


# -- one code per cause, plain messages -------------------------------------------------------------
def test_distinct_causes_have_distinct_codes_and_plain_messages(router, model_dir):
    caught = {}
    for cause, call in {
        "invalid complaint": lambda: router.predict({"text": "jalan rusak", "location": {"regency": "x" * 300}}),
        "empty text": lambda: router.predict(" "),
        "undecodable text": lambda: router.predict({"text": "air \ud800 mati"}),
        "target_precision": lambda: Router.load(model_dir, target_precision=1.5),
        "home_region": lambda: Router.load(model_dir, home_region="Atlantis"),
    }.items():
        with pytest.raises(LaporError) as info:
            call()
        caught[cause] = info.value
    assert {c: e.code for c, e in caught.items()} == {
        "invalid complaint": "LAPOR-E005", "empty text": "LAPOR-E006", "undecodable text": "LAPOR-E007",
        "target_precision": "LAPOR-E002", "home_region": "LAPOR-E008"}
    assert {c: e.field for c, e in caught.items()} == {
        "invalid complaint": "location.regency", "empty text": "text", "undecodable text": "text",
        "target_precision": "target_precision", "home_region": "home_region"}
    assert isinstance(caught["home_region"], UnknownRegionError)
    for exc in caught.values():  # no repr'd pydantic error list, no Python reprs of dicts
        assert "{'" not in exc.message and "[{" not in exc.message and "'type'" not in exc.message
        assert isinstance(exc, ValueError) and str(exc).startswith(f"[{exc.code}] ")
    assert caught["invalid complaint"].message == (
        "invalid complaint: location.regency: String should have at most 200 characters")


def test_an_unknown_field_names_the_fields_a_complaint_has(router):
    with pytest.raises(InvalidComplaintError) as info:
        router.predict({"text": "jalan rusak", "lokasi": "Malang"})
    assert info.value.field == "lokasi" and "text, title, id, date, channel, location" in info.value.message


# -- one rule per inconsistency ---------------------------------------------------------------------
@pytest.mark.parametrize("items", [None, 42, 3.5, object()])
def test_a_batch_that_is_not_an_iterable_is_an_input_type_error(router, items):
    for call in (router.predict_batch, router.predict_records, router.pipe):
        with pytest.raises(InputTypeError) as info:
            call(items)
        assert info.value.code == "LAPOR-E001" and "iterable of complaints" in info.value.message


def test_a_lone_surrogate_is_refused_alike_in_a_str_a_dict_and_a_complaint(router):
    text = "air PDAM mati \udcff tiga hari"
    for item in (text, {"text": text}, Complaint.model_construct(text=text, location=None, id=None),
                 {"text": "air mati", "title": "\ud800"}, {"text": "air mati", "location": {"regency": "\ud800"}}):
        with pytest.raises(UndecodableTextError) as info:
            router.predict(item)
        assert info.value.code == "LAPOR-E007"
    assert info.value.field == "location.regency"


@pytest.mark.parametrize("empty", ["", " ", "\n\t \u3000"])
def test_empty_text_is_an_input_error_in_every_form(router, empty):
    for item in (empty, {"text": empty}, {"text": empty, "title": "Jalan rusak"},
                 Complaint.model_construct(text=empty, location=None, id=None)):
        with pytest.raises(EmptyTextError):
            router.predict(item)
        with pytest.raises(EmptyTextError) as info:
            router.predict_batch(["jalan rusak di Malang", item])
        assert info.value.index == 1
    p = router.predict("halo")  # short but not empty: still routed, flagged for review
    assert "text_too_short" in p.review_reasons and p.agency is not None


def test_batch_rows_give_the_routers_refusals_the_reject_reasons_of_classify(router):
    from lapor_nlp.batch.rows import NO_TEXT, predict_items
    from lapor_nlp.io import UNDECODABLE

    out = predict_items(router, ["jalan rusak di Malang", "  ", "air \udcff mati", {"text": "x", "umur": 1}])
    assert isinstance(out[0], dict)
    assert out[1:3] == [NO_TEXT, UNDECODABLE]
    assert out[3].startswith("invalid complaint: umur: not a field of a complaint")


def test_classify_rejects_empty_text_with_its_reason(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": "a", "text": GOOD[0]}, {"id": "b", "text": ""}, {"id": "c", "text": " \t "},
            {"id": "d", "text": GOOD[1], "title": "PJU"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "classify", str(src), "-o", str(out),
                        "--model", str(model_dir), "--jobs", "1"],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    written = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [w["id"] for w in written] == ["a", "d"]
    assert [(x["line"], x["reason"]) for x in rejects] == [(2, "no text"), (3, "no text")]


def test_the_cli_refuses_empty_text_in_one_line(model_dir):
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "predict", "--model", str(model_dir), "  "],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and r.stdout == ""
    assert "LAPOR-E006" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_http_answers_422_for_empty_text_and_an_error_item_in_a_batch(model_dir):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from lapor_nlp.serve import create_app

    with TestClient(create_app(model_dir)) as client:
        for text in ("", "   ", "\n"):
            r = client.post("/v1/predict", json={"text": text})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == "text"
            assert r.json()["error"]["code"] == "LAPOR-E006"  # as in a batch item, below
        assert client.post("/v1/predict", json={"text": "halo"}).status_code == 200
        r = client.post("/v1/predict/batch", json={"items": [{"text": GOOD[0]}, {"text": " "}, {"text": GOOD[1]}]})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items[0]["agency"] and items[2]["agency"]
        assert items[1]["error"]["code"] == "LAPOR-E006" and items[1]["error"]["index"] == 1
