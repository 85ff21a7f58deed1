"""ComplaintClassifier and TokenTfidf keep scikit-learn's manners: clone, get/set_params, classes_,
get_feature_names_out, fit(X, y)/predict/predict_proba/score, typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from lapor_nlp.classifier import ComplaintClassifier
from lapor_nlp.errors import InputTypeError, InputValueError, NotFittedError
from lapor_nlp.features import TokenTfidf
from lapor_nlp.resources import dataset_path
from lapor_nlp.text import Preprocessor

TYPES = ("dinas_pu", "pdam", "dlh", "dishub")


@pytest.fixture(scope="module")
def data():
    rows = [json.loads(x) for x in dataset_path("corpus", "public_works.jsonl").read_text(encoding="utf-8").splitlines()]
    rows += [json.loads(x) for x in dataset_path("corpus", "utilities_digital.jsonl").read_text(encoding="utf-8").splitlines()]
    rows += [json.loads(x) for x in dataset_path("corpus", "transport_order.jsonl").read_text(encoding="utf-8").splitlines()]
    per: dict = {}
    rows = [r for r in rows if r["agency"] in TYPES and per.setdefault(r["agency"], []).append(r) is None
            and len(per[r["agency"]]) <= 60]
    return [r["text"] for r in rows], [r["agency"] for r in rows], [r["topic"] for r in rows]


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    pre = Preprocessor(stem=False)
    est = ComplaintClassifier(C=0.25, ngram_max=1, cv=3, preprocessor=pre, task="topic")
    twin = clone(est)
    assert twin is not est and twin.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    assert {k: v for k, v in twin.get_params(deep=False).items() if k != "preprocessor"} == \
        {k: v for k, v in est.get_params(deep=False).items() if k != "preprocessor"}
    assert twin.preprocessor.get_params() == pre.get_params()
    assert est.get_params()["preprocessor__stem"] is False
    twin.set_params(C=2.0, preprocessor__stem=True)
    assert twin.C == 2.0 and twin.preprocessor.stem is True and est.C == 0.25
    with pytest.raises(InputValueError, match="no parameter"):
        twin.set_params(gamma=1)
    with pytest.raises(InputValueError, match="set preprocessor first"):
        ComplaintClassifier().set_params(preprocessor__stem=False)


def test_fit_predict_like_any_classifier(data):
    texts, agency, topic = data
    est = ComplaintClassifier(cv=3)
    assert not hasattr(est, "classes_")  # NotFittedError is an AttributeError, as sklearn's is
    with pytest.raises(NotFittedError):
        est.predict(texts[:2])
    assert est.fit(texts, agency) is est
    assert est.preprocessor is None  # fitting does not change a constructor parameter
    assert list(est.task_classes_) == ["agency"] and set(est.classes_) == set(TYPES)
    pred = est.predict(texts[:20])
    assert pred.shape == (20,) and set(pred) <= set(TYPES)
    P = est.predict_proba(texts[:20])
    assert P.shape == (20, len(TYPES)) and np.allclose(P.sum(1), 1)
    assert np.array_equal(est.classes_[P.argmax(1)], pred)
    assert est.score(texts, agency) > 0.8
    with pytest.raises(InputTypeError):
        est.predict("jalan rusak")
    with pytest.raises(InputValueError, match="no 'topic' task"):
        est.predict(texts[:2], task="topic")


def test_both_tasks_over_shared_features(data):
    texts, agency, topic = data
    est = ComplaintClassifier(cv=3).fit(texts, {"topic": topic, "agency": agency})
    assert set(est.task_classes_) == {"topic", "agency"}
    assert est.predict_proba(texts[:3], "topic").shape[1] == len(est.task_classes_["topic"])
    assert np.array_equal(est.classes_, est.task_classes_["agency"])
    assert len(est.predict(texts[:3])) == 3  # the constructor's task ("agency") by default


@pytest.mark.parametrize("scoring", [None, "f1_macro", "neg_log_loss"])
def test_grid_search_runs_on_it(data, scoring):
    from sklearn.model_selection import GridSearchCV

    texts, agency, _ = data
    grid = GridSearchCV(ComplaintClassifier(cv=2), {"C": [0.1, 1.0]}, cv=2, scoring=scoring,
                        error_score="raise").fit(texts, agency)
    assert grid.best_params_["C"] in (0.1, 1.0) and np.isfinite(grid.best_score_)


def test_tfidf_names_its_output_columns():
    docs = [["jalan", "rusak"], ["jalan", "berlubang"], ["air", "mati"]]
    tf = TokenTfidf(ngram_max=2).fit(docs)
    names = tf.get_feature_names_out()
    assert names.dtype == object and len(names) == tf.n_features_
    assert {"jalan", "jalan rusak", "air mati"} <= set(names)
    assert tf.transform(docs).shape[1] == len(names)
    with pytest.raises(NotFittedError):
        TokenTfidf().get_feature_names_out()
    with pytest.warns(DeprecationWarning):
        assert tf.feature_names() == list(names)
    assert clone(tf).get_params() == tf.get_params()
