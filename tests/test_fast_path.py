"""The columnar fast path gives what the per-document flow of 0.4 gave, field by field.

``tests/reference_router.py`` keeps 0.4's ``Router._route`` as the oracle (it calls the same
``_jurisdiction``, ``_region``, ``_routed_to`` and ``_explain``). Every comparison is equality:
floats included (the fast path runs the same float operations in the same order; stacking the two
heads' weights does not change a column's sums), so no tolerance is used.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np

import pytest

from lapor_nlp import Complaint, Prediction, Router
from lapor_nlp.resources import dataset_path
from lapor_nlp.text.clean import prepare
from lapor_nlp.text.pii import _may_change, mask_pii
from lapor_nlp.text.pipeline import may_hold_pii
from reference_router import reference_explain, reference_route


def _corpus_texts() -> list[str]:
    texts = []
    for path in sorted(dataset_path("corpus").glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return texts


EDGE = [
    "halo",                                                     # very short
    "ok",
    "The street light in front of my house has been broken for two weeks, please fix it soon",
    "Lampu PJU mati sdh 3 hari, tlg diperbaiki. Hub 0812-3456-7890 atau budi@contoh.id",
    "jalan rusak di kota malang kecamatan lowokwaru kelurahan tlogomas sejak 2021",
    "warga Kota Surabaya mengeluh jalan rusak di Kabupaten Gresik dan di Sidoarjo",
    "Ｊａｌａｎ　ｒｕｓａｋ ｄｉ Ｍａｌａｎｇ № 12 — anak2 sekolah bangettt <b>susah</b> &amp; lewat",
    "air pdam mati 3 hari di kec. gubeng, surabaya; nik 3578012345678901",
    "sampah di TPS belum diangkut seminggu di Kota Bandung",
    "🙂🙂🙂",
    "Jalan berlubang di depan SDN 2 Kedungwaru, Tulungagung, sudah 3 bulan " * 400,  # truncated
]


def _items() -> list:
    """Edge cases in every input form: str, Complaint (with and without location), dict."""
    return EDGE + [
        Complaint(text="air PDAM mati 3 hari", id="LPR-1", location={"regency": "Kabupaten Sleman"}),
        Complaint(text="jalan rusak", title="Jalan", id="LPR-2",
                  location={"province": "Jawa Timur", "district": "Gubeng"}),
        Complaint(text="lampu jalan mati", location={"regency": "Kota Tidak Ada"}),  # unresolved
        Complaint(text="lampu jalan mati", location={"address": "Jl. Kenanga 5, Kota Malang"}),
        {"text": "sampah menumpuk di pasar", "id": 7},
        {"text": "pelayanan kelurahan lambat", "location": {"regency": "Kota Surabaya"}},
    ]


def _as_complaints(router: Router, items: list) -> list:
    complaints, positions, errors = router._coerce(items)
    assert not errors and positions == list(range(len(items)))
    return complaints


def _assert_same(router: Router, items: list, explain: bool, thresholds=None, batch_size=4096):
    complaints = _as_complaints(router, items)
    th = router.thresholds if thresholds is None else router._merge_thresholds(thresholds)
    expected = reference_route(router, complaints, th, explain)
    got = router.predict_records(items, explain=explain, thresholds=thresholds, batch_size=batch_size)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert list(g) == list(e), f"item {i}: key order differs"
        for key in e:
            assert g[key] == e[key], f"item {i}, field {key!r}: {g[key]!r} != {e[key]!r}"
        # Exact float equality, also in type (a float32 leaking through would compare equal).
        for task in ("topic", "agency"):
            if e[task]:
                assert type(g[task]["score"]) is float and type(g[task]["threshold"]) is float
    return got


@pytest.mark.parametrize("explain", [False, True])
def test_fast_path_equals_the_reference_on_the_corpus_and_edge_cases(router, explain):
    items = _corpus_texts() + _items()
    got = _assert_same(router, items, explain)
    assert any(r["truncated"] for r in got) and any("text_too_short" in r["review_reasons"] for r in got)
    assert any("not_indonesian" in r["review_reasons"] for r in got)
    assert any(r["jurisdiction"] and r["jurisdiction"]["source"] == "field" for r in got)


def test_fast_path_equals_the_reference_in_small_batches_with_thresholds(router):
    items = _corpus_texts()[:500] + _items()
    _assert_same(router, items, explain=True, thresholds=0.5, batch_size=7)
    _assert_same(router, items[:50], explain=False, thresholds={"dinas_pu": 0.2})


def test_fast_path_equals_the_reference_one_item_at_a_time(router):
    # A batch of one (predict) sums its review bits in Python, not by the batch's matrix product.
    items = _corpus_texts()[:150] + _items()
    got = _assert_same(router, items, explain=False, thresholds=0.6, batch_size=1)
    assert sum(bool(g["review_reasons"]) for g in got) > 10


def test_fast_path_equals_the_reference_for_a_desk_and_a_portal(model_dir):
    items = _corpus_texts()[:1500] + _items()
    desk = Router.load(model_dir, scope="kemenkeu", review_topic=True, top_k=5)
    got = _assert_same(desk, items, explain=True)
    assert any("outside_scope" in r["review_reasons"] for r in got)
    portal = Router.load(model_dir, home_region="Kota Surabaya", top_k=0, min_tokens=5)
    _assert_same(portal, items, explain=False)


def test_fast_path_equals_the_reference_on_the_surabaya_texts(router, surabaya_rows):
    texts = [r["text"] for r in surabaya_rows]
    _assert_same(router, texts, explain=True)
    # Texts that skip masking (ASCII, no digit, no "@") are the ones masking cannot change.
    skipped = [t for t in texts if not may_hold_pii(t)]
    assert skipped and all(mask_pii(t, people=False) == t for t in skipped)


def test_masking_is_skipped_only_where_it_cannot_change_the_text():
    for text in _corpus_texts() + EDGE:
        if not may_hold_pii(text):
            assert mask_pii(text, people=False) == text
    assert may_hold_pii("a@b") and may_hold_pii("no 5") and may_hold_pii("café")
    assert not may_hold_pii("jalan rusak, tolong!")
    # The router asks pii._may_change, the same answer by a byte table.
    for text in _corpus_texts() + EDGE + NON_ASCII + ["a@b", "no 5", "café", "", "x\x7f", "\ud800"]:
        assert _may_change(text) == may_hold_pii(text)


# Non-ASCII texts whose NFKC form the masking hands on to prepare_normalized (mojibake, full-width
# digits, invisible characters, control characters, HTML), and ones the masking changes.
NON_ASCII = ["jalan rusak â€™ tolong ™ ½", "ＮＩＫ １２３４５６７８９０１２３４５６", "hub 0812\u20133456\u20137890 ya",
             "lampu\u200bmati\u00ad di gang™", "\x01 é <b>banjir</b> &amp; ™", "email budi@contoh.id ™ é",
             "ﬁ café ＲＴ ０３", "no\u2060 5 é"]


def test_prepared_texts_are_prepare_of_the_masked_texts(router, surabaya_rows):
    texts = [r["text"] for r in surabaya_rows] + NON_ASCII + EDGE
    want = [prepare(mask_pii(t[:router.max_chars], people=False)) for t in texts]  # cut, as _texts does
    assert router._texts(texts)[0] == want
    assert sum(not t.isascii() for t in texts) > len(NON_ASCII)
    assert list(map(_may_change, texts)) == list(map(may_hold_pii, texts))


def test_route_gives_columns_and_the_same_records(router):
    items = _corpus_texts()[:300] + _items()
    result = router.route(items, explain=True)
    assert len(result) == len(items)
    records = router.predict_records(items, explain=True)
    assert result.to_records() == records
    agency = result.label("agency")
    assert list(agency) == [r["agency"]["label"] for r in records]
    assert result.tasks["agency"].score.tolist() == [r["agency"]["score"] for r in records]
    assert result.needs_review.tolist() == [r["needs_review"] for r in records]
    assert result.review_reasons() == [r["review_reasons"] for r in records]
    joined = result.review_reasons_joined("|")
    assert joined == ["|".join(r["review_reasons"]) for r in records] and "" in joined and any("|" in j for j in joined)
    assert result.routed_to.tolist() == [r["routed_to"] for r in records]
    assert result.jurisdiction() == [r["jurisdiction"] for r in records]
    # the records are independent objects (changing one changes no other)
    a, b = result.to_records(), result.to_records()
    a[0]["review_reasons"].append("x")
    if a[0]["jurisdiction"]:
        a[0]["jurisdiction"]["name"] = "x"
    assert b[0] == records[0]


def test_route_to_pandas_and_arrow(router):
    items = ["jalan rusak di kota malang", "air pdam mati di surabaya", "halo"]
    result = router.route(items)
    pd = pytest.importorskip("pandas")
    df = result.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert df["agency"].tolist() == list(result.label("agency"))
    assert df["needs_review"].tolist() == result.needs_review.tolist()
    pytest.importorskip("pyarrow")
    table = result.to_arrow()
    assert table.num_rows == 3 and table.column("agency_score").to_pylist() == result.tasks["agency"].score.tolist()


def test_route_on_error_keeps_positions(router):
    from lapor_nlp.errors import LaporError

    items = ["jalan rusak di kota malang", 42, "air pdam mati"]
    result = router.route(items, on_error="skip")
    assert len(result) == 2 and result.positions.tolist() == [0, 2] and set(result.errors) == {1}
    out = router.route(items, on_error="return").to_records()
    assert len(out) == 3 and isinstance(out[1], LaporError)
    assert out[0] == router.predict_records(items[:1])[0]
    with pytest.raises(LaporError):
        router.route(items)


def test_route_tables_keep_each_row_at_its_input_position_after_a_refused_item(router):
    items = ["jalan rusak di kota malang", 42, "air pdam mati"]
    result = router.route(items, on_error="skip")
    pd = pytest.importorskip("pandas")
    df = result.to_pandas()
    assert df.index.tolist() == [0, 2]
    assert df.loc[2, "agency"] == router.predict_records(items[2:])[0]["agency"]["label"]
    pytest.importorskip("pyarrow")
    assert result.to_arrow().column("position").to_pylist() == [0, 2]


def test_predict_batch_gives_validated_predictions_equal_to_the_records(router):
    items = _corpus_texts()[:200] + _items()
    preds = router.predict_batch(items)
    assert all(isinstance(p, Prediction) for p in preds)
    assert [p.model_dump() for p in preds] == router.predict_records(items, explain=True)


def test_fast_path_is_the_same_from_several_threads(router, model_dir):
    texts = _corpus_texts()
    expected = router.predict_records(texts[:2000])
    fresh = Router.load(model_dir)  # cold tables, filled by racing threads
    results, errors = {}, []

    def work(k):
        try:
            results[k] = fresh.predict_records(texts[:2000], batch_size=97 + 300 * k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results[k] == expected for k in range(4))


def test_chunk_table_stays_bounded(model_dir):
    fresh = Router.load(model_dir)
    fresh.model.preprocessor_.cache_size, old = 300, fresh.model.preprocessor_.cache_size
    try:
        fresh._fast_state = None
        texts = _corpus_texts()[:400]
        complaints = _as_complaints(fresh, texts)
        expected = reference_route(fresh, complaints, fresh.thresholds, False)
        for start in range(0, 400, 40):
            batch = texts[start:start + 40]
            assert fresh.predict_records(batch) == expected[start:start + 40]
            distinct = len({c for t in fresh._texts(batch)[0] for c in t.split()})
            # full: it starts again, holding only this batch's chunks (and the separator)
            assert len(fresh._fast_state.table) <= max(300, distinct + 1)
    finally:
        fresh.model.preprocessor_.cache_size = old
        fresh._fast_state = None


def test_scores_are_finite_and_probabilities(router):
    result = router.route(_corpus_texts()[:100])
    for cols in result.tasks.values():
        assert all(0 <= s <= 1 and math.isfinite(s) for s in cols.score.tolist())


def test_explanation_equals_the_reference(router):
    from lapor_nlp.router import _top

    texts = _corpus_texts()[:800] + EDGE
    pre = router.model.preprocessor_
    X = router.model.features_.transform_rows([pre.analyze(t)[0] for t in texts])
    results = []
    for task, head in router.model.heads_.items():
        P = head.predict_proba(X)
        results.append((task, head, P, _top(P, 1)[0]))
    assert router._explain(X, results) == reference_explain(router, X, results)


def test_top_k_equals_a_stable_argsort():
    from lapor_nlp.router import _top

    rng = np.random.default_rng(0)
    P = rng.integers(0, 4, size=(300, 9)).astype(float) / 4  # many ties
    for k in (1, 3, 9, 12):
        idx, val = _top(P, k)
        order = np.argsort(-P, axis=1, kind="stable")[:, :k]
        assert (idx == order).all() and (val == np.take_along_axis(P, order, 1)).all()


def test_place_words_are_picked_alike_for_small_and_large_batches(router):
    from lapor_nlp import chunks

    texts = _corpus_texts()[:3000] + EDGE
    state = router._fast()
    prepared = router._texts(_as_complaints(router, texts))[0]
    cids, arrays = state.table.ids(prepared)
    table = state.table
    tok_start, tok_len, known, word_start, word_len, tokens, words = arrays
    bounds = np.concatenate(([0], np.flatnonzero(cids == 0) + 1, [len(cids)]))
    offsets, g = chunks._gather(word_start[cids], word_len[cids], bounds, words)
    assert len(g) >= chunks._SMALL  # the numpy version runs for the whole batch
    big = table._relevant(g, offsets)
    small = table._relevant_small(g, offsets)
    assert big[0].tolist() == small[0].tolist() and big[1].tolist() == small[1].tolist()
    assert len(big[0]) > 0


def test_predictions_built_from_columns_equal_validated_ones(router):
    """predict_batch builds its objects without validating them again: they must be what
    validating the same records gives, in every respect a caller can see."""
    from lapor_nlp.router import _PREDICTIONS
    from lapor_nlp.schemas import LabelScore, Region, TaskPrediction

    items = _corpus_texts()[:300] + _items()
    for explain in (True, False):
        result = router.route(items, explain=explain)
        built, validated = result.to_predictions(), _PREDICTIONS.validate_python(result.to_records())
        assert built == validated
        for b, v in zip(built, validated):
            assert type(b) is Prediction and b.model_dump() == v.model_dump()
            assert b.model_dump_json() == v.model_dump_json() and repr(b) == repr(v)
            assert b.model_fields_set == v.model_fields_set
            assert b.__pydantic_extra__ is None and b.__pydantic_private__ is None
            for task in ("topic", "agency"):
                bt, vt = getattr(b, task), getattr(v, task)
                assert type(bt) is TaskPrediction and bt.model_fields_set == vt.model_fields_set
                assert all(type(a) is LabelScore and a.model_fields_set == {"label", "score"}
                           for a in bt.alternatives)
            assert (b.jurisdiction is None) == (v.jurisdiction is None)
            if b.jurisdiction is not None:
                assert type(b.jurisdiction) is Region
                assert b.jurisdiction.model_fields_set == v.jurisdiction.model_fields_set
    # independent objects: changing one changes no other, and assignment still validates nothing
    # more than a validated object's would
    a, b = router.predict_batch(items[:2]), router.predict_batch(items[:2])
    a[0].review_reasons.append("truncated")
    a[0].needs_review = not a[0].needs_review
    assert b[0] == router.predict_batch(items[:1])[0] and a[0] != b[0]
    assert "needs_review" in a[0].model_fields_set


def test_feature_names_are_made_only_for_the_columns_asked(router):
    """The explanation names columns one at a time (TokenTfidf.names_of) instead of holding all
    ~95,000 names: the same names, with and without a feature map (max_features)."""
    from lapor_nlp.features import TokenTfidf

    features = router.model.features_
    everything = features.get_feature_names_out().tolist()
    rng = np.random.default_rng(1)
    cols = rng.choice(len(everything), 500, replace=False).tolist() + [0, len(everything) - 1]
    assert features.names_of(cols) == [everything[c] for c in cols]
    pre = router.model.preprocessor_
    docs = [pre.analyze(t)[0] for t in _corpus_texts()[:300]]
    mapped = TokenTfidf(max_features=400).fit(docs)
    assert mapped._feature_map_ is not None
    names = mapped.get_feature_names_out().tolist()
    assert any(" " in n for n in names) and mapped.names_of(list(range(len(names)))) == names
    # only the names an explanation used are kept
    fresh = Router(router.model, router.manifest, router.routing)
    fresh.predict_batch(_corpus_texts()[:50])
    assert 0 < len(fresh._feature_names) < len(everything) // 10


def test_fast_path_equals_the_reference_one_complaint_at_a_time(router):
    """Batches of one (what predict runs) take the small-batch paths (explanation, top-k, place
    words): the same records, explanation included."""
    items = _corpus_texts()[:300] + _items()
    _assert_same(router, items, explain=True, batch_size=1)
    one = router.predict(items[3])
    assert one.model_dump() == router.predict_records(items[:4], explain=True)[3]
