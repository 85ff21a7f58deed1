"""``ComplaintClassifier``: preprocess -> features -> topic head, agency head.

One object with scikit-learn manners (constructor parameters, ``fit`` returns self, learned state
ends in ``_``), holding everything a prediction needs. :mod:`lapor_nlp.artifact` saves and loads it
without pickle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from .errors import DataValidationError, InputValueError, NotFittedError
from .features import TokenTfidf
from .model import LinearHead
from .text import Preprocessor

TASKS = ("topic", "agency")


class ComplaintClassifier:
    """Classify complaints by topic and by agency type.

    Parameters: ``C`` (SVM regularisation), ``ngram_max`` (1 or 2), ``min_df``, ``max_features``,
    ``cv`` (folds for calibration), ``target_precision`` (review thresholds), ``random_state``,
    ``preprocessor`` (a :class:`~lapor_nlp.text.Preprocessor`; default settings when None).
    """

    def __init__(self, *, C: float = 0.5, ngram_max: int = 2, min_df: int = 1,
                 max_features: int | None = None, cv: int = 5, target_precision: float = 0.95,
                 random_state: int = 0, preprocessor: Preprocessor | None = None):
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.cv = cv
        self.target_precision = target_precision
        self.random_state = random_state
        self.preprocessor = preprocessor

    def get_params(self) -> dict:
        return {"C": self.C, "ngram_max": self.ngram_max, "min_df": self.min_df,
                "max_features": self.max_features, "cv": self.cv,
                "target_precision": self.target_precision, "random_state": self.random_state}

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
        if self.preprocessor is None:
            self.preprocessor = Preprocessor()
        return self.preprocessor

    def fit(self, texts: Sequence[str], labels: dict[str, Sequence[str]],
            progress: Callable[[str, int, int], None] | None = None) -> "ComplaintClassifier":
        """Fit on texts and ``{"topic": [...], "agency": [...]}``. Either task may be absent, and a
        ``None`` label leaves that row out of that task only."""
        tasks = {t: y for t, y in labels.items() if y is not None}
        if not tasks:
            raise ValueError("nothing to learn: give topic and/or agency labels")
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
                raise ValueError(f"{len(y)} {task} labels for {len(texts)} texts")
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

    def predict_proba(self, texts: Sequence[str], task: str) -> np.ndarray:
        return self.heads_[task].predict_proba(self.transform(self.tokenize(texts)))

    def predict(self, texts: Sequence[str], task: str) -> np.ndarray:
        return self.heads_[task].predict(self.transform(self.tokenize(texts)))
