"""``ComplaintClassifier``: preprocess -> features -> topic head, agency head.

One object with scikit-learn manners (constructor parameters, ``fit`` returns self, learned state
ends in ``_``), holding everything a prediction needs. :mod:`lapor_nlp.artifact` saves and loads it
without pickle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .errors import DataValidationError, InputTypeError, InputValueError, NotFittedError
from .features import TokenTfidf
from .heads import LinearHead
from .text import Preprocessor

TASKS = ("topic", "agency")


class ComplaintClassifier:
    """Classify complaints by topic and by agency type.

    Parameters: ``C`` (SVM regularisation), ``ngram_max`` (1 or 2), ``min_df``, ``max_features``,
    ``cv`` (folds for calibration), ``target_precision`` (review thresholds), ``random_state``,
    ``preprocessor`` (a :class:`~lapor_nlp.text.Preprocessor`; default settings when None),
    ``task`` (the task a one-dimensional ``y`` labels, default ``"agency"``).

    Fitted: ``classes_`` (the default task's labels), ``task_classes_`` (task -> labels), ``features_`` (:class:`~lapor_nlp.features.TokenTfidf`),
    ``heads_`` (task -> :class:`~lapor_nlp.heads.LinearHead`). A scikit-learn estimator: ``fit(X, y)``
    with ``y`` one label per text (the ``task``), ``predict``, ``predict_proba``, ``score``,
    ``get_params``/``set_params``, so ``sklearn.base.clone`` and ``GridSearchCV`` work; ``y`` may also
    be ``{"topic": [...], "agency": [...]}`` to learn both tasks over shared features.
    """

    def __init__(self, *, C: float = 0.5, ngram_max: int = 2, min_df: int = 1,
                 max_features: int | None = None, cv: int = 5, target_precision: float = 0.95,
                 random_state: int = 0, preprocessor: Preprocessor | None = None,
                 task: str = "agency"):
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.cv = cv
        self.target_precision = target_precision
        self.random_state = random_state
        self.preprocessor = preprocessor
        self.task = task

    _HYPERPARAMETERS = ("C", "ngram_max", "min_df", "max_features", "cv", "target_precision",
                        "random_state")

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters (``deep``: also the preprocessor's, as ``preprocessor__name``)."""
        params = {k: getattr(self, k) for k in (*self._HYPERPARAMETERS, "preprocessor", "task")}
        if deep and self.preprocessor is not None and hasattr(self.preprocessor, "get_params"):
            params.update({f"preprocessor__{k}": v for k, v in self.preprocessor.get_params().items()})
        return params

    def set_params(self, **params) -> "ComplaintClassifier":
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in self.get_params(deep=False):
                raise InputValueError(f"ComplaintClassifier has no parameter {name!r}")
            if sub and getattr(self, name) is None:
                raise InputValueError(f"{key}: set {name} first (it is None: the default one is "
                                      f"made at fit time)")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def __sklearn_tags__(self):
        """What scikit-learn >= 1.6 asks of an estimator before searching over it (a classifier
        of raw texts); built on demand, so that predicting never imports scikit-learn."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags(two_d_array=False, string=True))

    def hyperparameters(self) -> dict:
        """The numeric parameters, as a model directory's manifest records them."""
        return {k: getattr(self, k) for k in self._HYPERPARAMETERS}

    def check_params(self) -> None:
        """A typed error for a parameter the fit could not use (before any work is done)."""
        def number(name, ok, rule):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
                raise InputValueError(f"{name} must be {rule}, got {v!r}")

        number("C", lambda v: v > 0, "a number > 0")
        number("ngram_max", lambda v: v in (1, 2), "1 or 2")
        number("min_df", lambda v: v >= 1 and v == int(v), "a whole number >= 1")
        number("cv", lambda v: v >= 2 and v == int(v), "a whole number >= 2")
        number("target_precision", lambda v: 0 < v <= 1, "in (0, 1]")
        if self.max_features is not None:
            number("max_features", lambda v: v >= 1 and v == int(v), "a whole number >= 1 or None")

    @property
    def preprocessor_(self) -> Preprocessor:
        """The text pipeline in use: the one given, or (fitting never changes ``preprocessor``)
        a default one made once."""
        if self.preprocessor is not None:
            return self.preprocessor
        if getattr(self, "_default_preprocessor", None) is None:
            self._default_preprocessor = Preprocessor()
        return self._default_preprocessor

    def fit(self, texts: Sequence[str], labels, progress: Callable[[str, int, int], None] | None = None
            ) -> "ComplaintClassifier":
        """Fit on texts and their labels: one label per text (the ``task``), or
        ``{"topic": [...], "agency": [...]}``. Either task may be absent, and a ``None`` label
        leaves that row out of that task only."""
        if isinstance(texts, str):
            raise InputTypeError("fit() takes a sequence of texts, not one string")
        if not isinstance(labels, Mapping):
            if isinstance(labels, str):
                raise InputTypeError("fit() takes one label per text, not one string")
            labels = {self.task: list(labels)}
        tasks = {t: y for t, y in labels.items() if y is not None}
        if not tasks:
            raise InputValueError("nothing to learn: give topic and/or agency labels")
        self.check_params()
        for task, y in tasks.items():
            present = Counter(lab for lab in y if lab is not None)
            if len(present) < 2:
                raise DataValidationError(
                    f"{task}: a classifier needs at least two labels, the data has "
                    f"{dict(present) or 'none'}; train the other task only, or give more labelled rows")
        docs = self.tokenize(texts, progress=progress)
        self.features_ = TokenTfidf(self.ngram_max, self.min_df, self.max_features).fit(docs)
        if not self.features_.words_:
            raise DataValidationError(
                f"no term occurs in min_df={self.min_df} or more of the {len(docs)} texts: lower min_df")
        X = self.features_.transform(docs)
        self.heads_: dict[str, LinearHead] = {}
        for task, y in tasks.items():
            if len(y) != len(texts):
                raise InputValueError(f"{len(y)} {task} labels for {len(texts)} texts")
            rows = np.array([lab is not None for lab in y])
            head = LinearHead(C=self.C, cv=self.cv, target_precision=self.target_precision,
                              random_state=self.random_state)
            cb = (lambda i, n, _t=task: progress(f"fit {_t}", i, n)) if progress else None
            self.heads_[task] = head.fit(X[rows], np.asarray(y, dtype=object)[rows], progress=cb)
        return self

    def tokenize(self, texts: Sequence[str], progress=None) -> list[list[str]]:
        pre = self.preprocessor_
        if progress is None:
            return pre.tokens_batch(texts)
        out = []
        n = len(texts)
        step = max(1, n // 50)
        for i, t in enumerate(texts):
            out.append(pre.tokens(t))
            if i % step == 0 or i == n - 1:
                progress("preprocess", i + 1, n)
        return out

    @property
    def tasks(self) -> tuple[str, ...]:
        self._check()
        return tuple(t for t in TASKS if t in self.heads_)

    def _check(self):
        if not hasattr(self, "heads_"):
            raise NotFittedError("ComplaintClassifier is not fitted; call fit() or load a model")

    def transform(self, docs: Sequence[Sequence[str]]):
        self._check()
        return self.features_.transform(docs)

    @property
    def task_classes_(self) -> dict[str, np.ndarray]:
        """The labels of each fitted task, in the column order of :meth:`predict_proba`."""
        self._check()
        return {task: head.classes_ for task, head in self.heads_.items()}

    @property
    def classes_(self) -> np.ndarray:
        """The labels of the task :meth:`predict` answers by default (scikit-learn's scorers read
        it); every task's are in :attr:`task_classes_`."""
        return self.heads_[self._task(None)].classes_

    def _task(self, task: str | None) -> str:
        self._check()
        if task is None:
            task = next(iter(self.heads_)) if len(self.heads_) == 1 else self.task
        if task not in self.heads_:
            raise InputValueError(f"no {task!r} task in this model; its tasks are {', '.join(self.heads_)}")
        return task

    def _features(self, texts: Sequence[str]):
        if isinstance(texts, str):
            raise InputTypeError("predict() takes a sequence of texts, not one string")
        return self.transform(self.tokenize(list(texts)))

    def predict_proba(self, texts: Sequence[str], task: str | None = None) -> np.ndarray:
        """The full calibrated distribution of one task (default: the only one, else ``task``
        given at construction): one row per text, columns in ``task_classes_[task]`` order."""
        task = self._task(task)
        return self.heads_[task].predict_proba(self._features(texts))

    def predict(self, texts: Sequence[str], task: str | None = None) -> np.ndarray:
        """The most likely label of one task per text (the task chosen as in :meth:`predict_proba`)."""
        task = self._task(task)
        return self.heads_[task].predict(self._features(texts))

    def score(self, texts: Sequence[str], labels, task: str | None = None) -> float:
        """Accuracy of :meth:`predict` against ``labels`` (what ``GridSearchCV`` maximises)."""
        pred = self.predict(texts, task)
        labels = np.asarray(list(labels), dtype=object)
        if len(labels) != len(pred):
            raise InputValueError(f"{len(labels)} labels for {len(pred)} texts")
        return float(np.mean(pred == labels)) if len(pred) else 0.0
