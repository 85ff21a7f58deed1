"""TokenTfidf equals scikit-learn's sublinear TF-IDF over unigrams and bigrams, and round-trips."""

from __future__ import annotations

import numpy as np

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
