"""TokenTfidf equals scikit-learn's sublinear TF-IDF over unigrams and bigrams, and round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from lapor_nlp.features import TokenTfidf


def test_matches_sklearn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [["air", "mati", "sudah", "air"], ["jalan", "rusak", "air", "mati"], [], ["lampu", "mati"],
            ["x"], ["jalan", "jalan", "jalan", "rusak"]]
    ours = TokenTfidf().fit(docs)
    sk = TfidfVectorizer(analyzer=lambda d: d + [a + " " + b for a, b in zip(d, d[1:])],
                         sublinear_tf=True).fit(docs)
    names = list(ours.get_feature_names_out())
    sk_names = list(sk.get_feature_names_out())
    assert sorted(names) == sorted(sk_names)
    perm = [sk_names.index(n) for n in names]
    np.testing.assert_allclose(ours.transform(docs).toarray(), sk.transform(docs).toarray()[:, perm],
                               atol=1e-6)


def test_unknown_words_and_state_round_trip():
    docs = [["air", "mati"], ["jalan", "rusak"], ["air", "keruh"]]
    f = TokenTfidf(min_df=1).fit(docs)
    X = f.transform([["zzz", "air", "mati", "zzz"]])
    assert X.nnz == 3  # air, mati, "air mati"
    g = TokenTfidf.from_state(*f.to_state())
    assert (g.transform(docs) != f.transform(docs)).nnz == 0


def _random_docs(n_docs: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(60)]
    return [list(rng.choice(words, size=rng.integers(0, 40))) for _ in range(n_docs)]


def test_code_table_finds_exactly_what_binary_search_finds():
    from lapor_nlp.features import _CodeTable

    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 1000, 20_000):
        codes = np.unique(rng.integers(0, 5 * max(n, 1), size=n)).astype(np.int64)
        table = _CodeTable(codes)
        asked = np.concatenate([codes, rng.integers(0, 6 * max(n, 1), size=3 * n + 5)]).astype(np.int64)
        pos = np.searchsorted(codes, asked)
        pos[pos >= len(codes)] = 0
        expected = np.where(codes[pos] == asked, pos, -1) if len(codes) else np.full(len(asked), -1)
        assert np.array_equal(table.find(asked), expected)
    # crowded home slots: codes that share their top bits probe past each other
    crowded = np.arange(0, 64 << 40, 1 << 40, dtype=np.int64)
    table = _CodeTable(crowded)
    assert np.array_equal(table.find(crowded), np.arange(len(crowded)))
    assert np.array_equal(table.find(crowded + 1), np.full(len(crowded), -1))


@pytest.mark.parametrize("max_features", [None, 150])
def test_batch_single_and_hash_paths_give_the_same_rows(max_features):
    """A batch (bigrams found in the hash table, keys sorted as 32-bit), a few documents (binary
    search) and one document at a time (counted in Python) give bit-identical rows, equal to
    scikit-learn's (without a feature map: scikit-learn breaks ties in max_features otherwise)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from lapor_nlp.features import _FEW_CODES

    train, docs = _random_docs(400, seed=2), _random_docs(300, seed=3) + [[], ["zzz"], ["w1", "zzz", "w2"]]
    ours = TokenTfidf(max_features=max_features).fit(train)
    assert (ours._feature_map_ is not None) == (max_features is not None)
    ids, offsets = ours._ids(docs, ours.vocabulary_)
    assert len(ours._bigram_codes(ids, np.repeat(np.arange(len(docs)), np.diff(offsets)))[0]) > _FEW_CODES
    batch = ours.transform_ids(ids, offsets)
    for d in range(len(docs)):
        one = ours.transform_ids(ids[offsets[d]:offsets[d + 1]], np.array([0, offsets[d + 1] - offsets[d]]))
        few = ours.transform_ids(np.concatenate([ids[offsets[d]:offsets[d + 1]], [-1]]),
                                 np.array([0, offsets[d + 1] - offsets[d], offsets[d + 1] - offsets[d] + 1]))
        lo, hi = batch.indptr[d], batch.indptr[d + 1]
        for got in (one, few):
            n = got.indptr[1]
            assert got.indices[:n].tolist() == batch.indices[lo:hi].tolist()
            assert got.data[:n].tobytes() == batch.data[lo:hi].tobytes()
            assert (got.data.dtype, got.indices.dtype, got.indptr.dtype) == (np.float32, np.int32, np.int32)
    if max_features is not None:
        return
    sk = TfidfVectorizer(analyzer=lambda d: d + [a + " " + b for a, b in zip(d, d[1:])],
                         sublinear_tf=True).fit(train)
    names, sk_names = list(ours.get_feature_names_out()), list(sk.get_feature_names_out())
    perm = [sk_names.index(n) for n in names]
    np.testing.assert_allclose(batch.tocsr().toarray(), sk.transform(docs).toarray()[:, perm], atol=1e-6)


def test_one_document_with_offsets_that_do_not_cover_the_ids_is_refused_as_before():
    f = TokenTfidf().fit([["air", "mati"], ["jalan", "rusak"]])
    ids = np.array([0, 1, 2, 3])
    with pytest.raises(IndexError):
        f.transform_ids(ids, np.array([0, 2]))
