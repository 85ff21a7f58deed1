"""The heads: a linear classifier per task (topic, agency type) over shared TF-IDF features,
with calibrated probabilities and per-label review thresholds.

Why this model: a class-balanced linear SVM over stemmed word 1-2 grams matches the best peer's
accuracy on real complaints at a fraction of its predict cost, and character n-grams add little for
much more work (``bench/peers.py``; figures in docs/benchmarks.md).

Calibration: an SVM's decision values are not probabilities. Out-of-fold decision values
(cross-validation on the training data) fit one Platt sigmoid per label (``a * s + b``, with Platt's
smoothed targets), and the label probabilities are normalised to sum to one: what scikit-learn's
``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` does, kept as two arrays; it
calibrated better, and left more complaints above the review thresholds, than one softmax
temperature or a logistic regression. The same out-of-fold probabilities choose each label's
review threshold: the lowest score at which that label's predictions reach the target precision.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from .errors import DataValidationError, InputValueError, NotFittedError
from .features import Rows

try:  # scipy's own kernel for CSR @ dense (private, hence the fallback to the public operator)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a scipy that moved it
    _csr_matvecs = None
try:  # scipy's test behind ``has_canonical_format`` (sorted indices, none repeated), on plain arrays
    from scipy.sparse._sparsetools import csr_has_canonical_format as _csr_canonical
except ImportError:  # pragma: no cover - then every head takes toarray's path
    _csr_canonical = None


def _is_canonical(n_rows: int, indptr, indices) -> bool:
    """Whether each CSR row's indices are sorted and none repeated (False when scipy cannot tell,
    e.g. for unusual integer types)."""
    if _csr_canonical is None:
        return False
    try:
        return bool(_csr_canonical(n_rows, indptr, indices))
    except (ValueError, TypeError):
        return False


class LinearHead:
    """One task: ``classes_``, ``coef_``, ``intercept_``, ``platt_a_``/``platt_b_``, ``thresholds_``,
    ``evidence_threshold_``.

    Evidence: the winning label's own calibrated one-vs-rest probability, before the labels are
    normalised to sum to one. Normalising hides a complaint that no label claims (every sigmoid
    low, one a little less low, and it gets 0.7 after dividing by the sum); the evidence does not.
    ``evidence_threshold_`` is the ``novelty_quantile`` quantile of the evidence of correct
    out-of-fold predictions: below it, a complaint looks like none the model was trained on.
    """

    def __init__(self, C: float = 0.5, class_weight: str | None = "balanced", cv: int = 5,
                 target_precision: float = 0.95, random_state: int = 0,
                 novelty_quantile: float = 0.10):
        self.C = C
        self.class_weight = class_weight
        self.cv = cv
        self.target_precision = target_precision
        self.random_state = random_state
        self.novelty_quantile = novelty_quantile

    def _svm(self):
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state,
                         max_iter=5000, dual="auto")

    def fit(self, X: sp.csr_matrix, y, *, progress=None) -> "LinearHead":
        from sklearn.model_selection import StratifiedKFold

        y = np.asarray(y, dtype=object)
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        if len(self.classes_) < 2:
            raise DataValidationError(f"a classifier needs at least two labels, got {list(self.classes_)}")
        yi = np.searchsorted(self.classes_, y)
        # Out-of-fold decision values for calibration and thresholds.
        counts = np.bincount(yi, minlength=len(self.classes_))
        folds = max(2, min(self.cv, int(counts.min()) if counts.min() >= 2 else 2))
        oof = np.zeros((X.shape[0], len(self.classes_)))
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        strat = np.where(counts[yi] >= folds, yi, -1)  # labels too rare to stratify share a bucket
        # A row whose label is missing from its fold's training part cannot be predicted there;
        # it is left out of calibration (its -1e3 score would skew the sigmoid fits).
        valid = np.ones(len(yi), bool)
        with warnings.catch_warnings():  # one rare row in the shared bucket: scikit-learn warns,
            warnings.simplefilter("ignore", UserWarning)  # train() says it in plain words instead
            splits = list(skf.split(np.zeros(len(yi)), strat))
        for k, (tr, te) in enumerate(splits):
            oof[te] = self._decision(self._fit_svm(X[tr], yi[tr]), X[te])
            valid[te] = np.isin(yi[te], yi[tr])
            if progress:
                progress(k + 1, folds + 1)
        self.platt_a_, self.platt_b_ = _fit_platt(oof[valid], yi[valid], len(self.classes_))
        proba, evidence = self._calibrate_with_evidence(oof)
        self.oof_evidence_ = evidence.astype(np.float32).astype(np.float64)
        self.oof_valid_ = valid
        self.oof_pred_ = proba.argmax(1)
        self.oof_score_ = proba.max(1).astype(np.float32).astype(np.float64)
        self.oof_true_ = yi
        self.thresholds_ = self.thresholds_for(self.target_precision)
        self.evidence_threshold_ = self.evidence_threshold_for(self.novelty_quantile)
        coef, self.intercept_ = self._fit_svm(X, yi)
        self._set_weights(coef)
        if progress:
            progress(folds + 1, folds + 1)
        return self

    def _fit_svm(self, X, yi) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) over all ``classes_``; a label absent from this fit never wins."""
        present = np.unique(yi)
        coef = np.zeros((len(self.classes_), X.shape[1]), dtype=np.float32)
        intercept = np.full(len(self.classes_), -1e3)
        if len(present) == 1:
            intercept[present[0]] = 0.0
            return coef, intercept
        svm = self._svm().fit(X, yi)
        if len(present) == 2:  # liblinear returns one row for two labels: +row for the second
            coef[present[1]], intercept[present[1]] = svm.coef_[0], svm.intercept_[0]
            coef[present[0]], intercept[present[0]] = -svm.coef_[0], -svm.intercept_[0]
        else:
            coef[svm.classes_], intercept[svm.classes_] = svm.coef_, svm.intercept_
        return coef, intercept

    @staticmethod
    def _decision(params, X):
        coef, intercept = params
        return np.asarray(X @ coef.T) + intercept

    def _set_weights(self, coef: np.ndarray) -> None:
        # Kept once, transposed, contiguous and float32: scipy's sparse @ dense copies (ravels and
        # upcasts) a non-contiguous or other-dtype operand on every call, which would make the
        # copy, not the product, the cost of a prediction. ``coef_`` is a view of it (a second
        # dense copy cost 52 MB in the default model).
        self._W = np.ascontiguousarray(np.asarray(coef).T, dtype=np.float32)
        self._block = None

    @property
    def coef_(self) -> np.ndarray:
        """(n_classes, n_features) weights, float32: a read-only view of the stored weights."""
        view = self._W.T
        view.flags.writeable = False
        return view

    @coef_.setter
    def coef_(self, coef: np.ndarray) -> None:
        self._set_weights(coef)

    def _scores(self, X: Rows) -> np.ndarray:
        """float32 ``X @ W`` for :class:`~lapor_nlp.features.Rows` of float32 (scipy's kernel)."""
        block, cols = getattr(self, "_block", None) or (self._W, None)
        out = np.zeros((X.shape[0], block.shape[1]), dtype=np.float32)
        _csr_matvecs(X.shape[0], X.shape[1], block.shape[1], X.indptr, X.indices, X.data,
                     block.ravel(), out.ravel())
        return out if cols is None else out[:, cols]

    def decision_function(self, X) -> np.ndarray:
        """Scores of ``X`` (a scipy matrix, or :class:`~lapor_nlp.features.Rows`) per class."""
        if not hasattr(self, "_W"):
            raise NotFittedError("this head is not fitted")
        if X.shape[1] != self._W.shape[0]:
            raise InputValueError(f"X has {X.shape[1]} features, this head expects {self._W.shape[0]}")
        if isinstance(X, Rows) and _csr_matvecs is not None and X.data.dtype == np.float32:
            # What ``csr_matrix @ ndarray`` runs, called directly: the same numbers, without
            # building a scipy matrix for every (often one-row) batch.
            return self._scores(X).astype(np.float64) + self.intercept_
        if isinstance(X, Rows):
            X = X.tocsr()
        if X.dtype != np.float32:
            X = X.astype(np.float32)
        return np.asarray(X @ self._W, dtype=np.float64) + self.intercept_

    def thresholds_for(self, target_precision: float) -> np.ndarray:
        """Per-label review thresholds for another precision target, from the stored out-of-fold
        predictions (no retraining)."""
        return _precision_thresholds(self.oof_pred_, self.oof_score_, self.oof_true_,
                                     len(self.classes_), target_precision)

    def evidence_threshold_for(self, quantile: float) -> float:
        """The evidence below which ``quantile`` of the correct out-of-fold predictions fall
        (0.0, never flag, when the model keeps no out-of-fold evidence or fewer than 20 correct
        predictions)."""
        ev = getattr(self, "oof_evidence_", None)
        if ev is None or not 0 <= quantile < 1:
            return 0.0
        ok = (self.oof_pred_ == self.oof_true_) & getattr(self, "oof_valid_", np.ones(len(ev), bool))
        # A quantile of a handful of points says little: below 20 correct predictions, never flag.
        return float(np.quantile(ev[ok], quantile)) if ok.sum() >= 20 and quantile > 0 else 0.0

    def _calibrate_with_evidence(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = expit(scores * self.platt_a_ + self.platt_b_)
        evidence = p.max(axis=1)
        total = p.sum(axis=1, keepdims=True)
        total[total == 0] = 1.0
        return p / total, evidence

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        return self._calibrate_with_evidence(scores)[0]

    def predict_proba(self, X) -> np.ndarray:
        return self._calibrate(self.decision_function(X))

    def predict_proba_evidence(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`predict_proba`, each row's evidence: see the class docstring)."""
        return self._calibrate_with_evidence(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]

    # -- persistence without pickle ---------------------------------------------------------------
    def to_state(self, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"classes": [str(c) for c in self.classes_],
                "thresholds": {str(c): float(t) for c, t in zip(self.classes_, self.thresholds_)},
                "evidence_threshold": float(getattr(self, "evidence_threshold_", 0.0)),
                "params": {"C": self.C, "class_weight": self.class_weight, "cv": self.cv,
                           "target_precision": self.target_precision,
                           "random_state": self.random_state,
                           "novelty_quantile": self.novelty_quantile}}
        coef = sp.csr_matrix(self.coef_.astype(np.float32))
        arrays = {f"{prefix}_coef_data": coef.data, f"{prefix}_coef_indices": coef.indices,
                  f"{prefix}_coef_indptr": coef.indptr, f"{prefix}_intercept": self.intercept_,
                  f"{prefix}_platt_a": self.platt_a_, f"{prefix}_platt_b": self.platt_b_,
                  f"{prefix}_oof_pred": self.oof_pred_.astype(np.int32),
                  f"{prefix}_oof_score": self.oof_score_.astype(np.float32),
                  f"{prefix}_oof_true": self.oof_true_.astype(np.int32)}
        if getattr(self, "oof_evidence_", None) is not None:
            arrays[f"{prefix}_oof_evidence"] = self.oof_evidence_.astype(np.float32)
            arrays[f"{prefix}_oof_valid"] = self.oof_valid_.astype(np.int8)
        return meta, arrays

    @classmethod
    def from_state(cls, prefix: str, meta: dict, arrays: dict, n_features: int, *,
                   into: tuple[np.ndarray, slice] | None = None) -> "LinearHead":
        """The head saved by :meth:`to_state`. ``into``: (a zeroed float32 block of
        ``n_features`` rows, this head's columns of it) to build the weights in, shared with
        other heads (see :func:`heads_from_state`); by default a block of its own."""
        self = cls(**meta["params"])
        self.classes_ = np.array(meta["classes"], dtype=object)
        self.platt_a_ = np.asarray(arrays[f"{prefix}_platt_a"], dtype=np.float64)
        self.platt_b_ = np.asarray(arrays[f"{prefix}_platt_b"], dtype=np.float64)
        self.oof_pred_ = arrays[f"{prefix}_oof_pred"].astype(np.int64)
        self.oof_score_ = arrays[f"{prefix}_oof_score"].astype(np.float64)
        self.oof_true_ = arrays[f"{prefix}_oof_true"].astype(np.int64)
        self.thresholds_ = np.array([meta["thresholds"][c] for c in meta["classes"]])
        # Models saved before 0.4 keep no evidence: their threshold 0.0 never flags a complaint.
        self.evidence_threshold_ = float(meta.get("evidence_threshold", 0.0))
        if f"{prefix}_oof_evidence" in arrays:
            self.oof_evidence_ = arrays[f"{prefix}_oof_evidence"].astype(np.float64)
            self.oof_valid_ = arrays[f"{prefix}_oof_valid"].astype(bool)
        k = len(self.classes_)
        block, cols = into if into is not None else (np.zeros((n_features, k), np.float32), slice(0, k))
        _scatter_transposed(arrays[f"{prefix}_coef_data"], arrays[f"{prefix}_coef_indices"],
                            arrays[f"{prefix}_coef_indptr"], block, cols)
        self._W = block[:, cols]
        self._block = None if into is None else (block, cols)
        self.intercept_ = np.asarray(arrays[f"{prefix}_intercept"], dtype=np.float64)
        return self


def heads_from_state(metas: dict[str, dict], arrays, n_features: int) -> dict[str, "LinearHead"]:
    """The heads saved by :meth:`LinearHead.to_state` (task -> meta), their weights written once,
    straight into the block that :func:`stack_heads` would make of them (so that it returns it as
    it is): each head's sparse weights are scattered into its columns of one zeroed block, instead
    of a dense copy per head, its transposed copy, then the stacked copy of those (3 x 52 MB
    written and freed for the default model)."""
    widths = [len(meta["classes"]) for meta in metas.values()]
    block = np.zeros((n_features, sum(widths)), dtype=np.float32)
    heads, start = {}, 0
    for (task, meta), width in zip(metas.items(), widths):
        cols = slice(start, start + width)
        heads[task] = LinearHead.from_state(task, meta, arrays, n_features, into=(block, cols))
        start += width
    return heads


def _scatter_transposed(data, indices, indptr, block: np.ndarray, cols: slice) -> None:
    """Write the CSR matrix (``data``, ``indices``, ``indptr``) of k rows, transposed, into the
    zeroed columns ``cols`` (k of them) of ``block``, exactly as ``block[:, cols] =
    csr.toarray().T`` would (the float32 of each weight), without the dense copies.

    A row with repeated or unsorted indices (never written by :meth:`LinearHead.to_state`) takes
    that very path, since a scatter would keep the last of repeated weights where ``toarray``
    sums them. Indices are bounds-checked by numpy here (and by ``artifact._check_head`` before)."""
    k = cols.stop - cols.start
    if len(indptr) != k + 1:
        raise ValueError(f"the weights have {len(indptr) - 1} rows for {k} labels")
    if not _is_canonical(k, indptr, indices):
        dense = sp.csr_matrix((data, indices, indptr), shape=(k, block.shape[0])).toarray()
        block[:, cols] = dense.T
        return
    # Row by row, at the flat positions in the C-ordered block (feature * width + column),
    # computed in one buffer that stays in the cache: positions for all weights at once would
    # be one more array as large as the weights to fault in (26 ms against 34 ms for the
    # default model, and steadier on a busy machine). A canonical row has at most n_features
    # weights, so the buffer always holds its positions.
    width, flat = block.shape[1], block.reshape(-1)  # reshape of a contiguous block: a view
    buf = np.empty(block.shape[0], dtype=np.intp)
    for r in range(k):
        lo, hi = indptr[r], indptr[r + 1]
        pos = buf[:hi - lo]
        np.multiply(indices[lo:hi], width, out=pos, dtype=np.intp)  # int32 indices: no overflow
        pos += cols.start + r
        flat[pos] = data[lo:hi]


def stack_heads(heads: list["LinearHead"]) -> tuple[np.ndarray, list[slice]]:
    """Put the weights of ``heads`` (over the same features) side by side in one contiguous
    float32 block, so that one sparse x dense product scores every task (the router's fast path),
    and make each head's weights a view of its columns: no second copy. Returns (the block, each
    head's columns). Stacking does not change a number: scipy's kernel adds ``x * w`` into each
    output column in the same order whatever the other columns are (the fast path's tests check
    the scores are equal, not close)."""
    blocks = [getattr(h, "_block", None) for h in heads]
    if blocks and blocks[0] is not None and all(b is not None and b[0] is blocks[0][0] for b in blocks):
        return blocks[0][0], [b[1] for b in blocks]
    block = np.ascontiguousarray(np.hstack([h._W for h in heads]), dtype=np.float32)
    cols, start = [], 0
    for h in heads:
        width = h._W.shape[1]
        cols.append(slice(start, start + width))
        h._W = block[:, start:start + width]
        h._block = (block, cols[-1])
        start += width
    return block, cols


def calibrated_scores(head: "LinearHead", raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, evidence) of a head from its float32 columns of a stacked product: the same
    operations, in the same order, as :meth:`LinearHead.predict_proba_evidence`."""
    return head._calibrate_with_evidence(raw.astype(np.float64) + head.intercept_)


def _sigmoid_fit(s: np.ndarray, pos: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid (a, b) for scores ``s`` of which ``pos`` are the true label."""
    n_pos, n_neg = pos.sum(), (~pos).sum()
    t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    from scipy.optimize import minimize  # fitting only: keeps `import lapor_nlp` light

    def loss(ab):
        z = ab[0] * s + ab[1]
        return np.sum(np.logaddexp(0, z) - t * z)  # cross-entropy with logits, written stably

    def grad(ab):
        d = expit(ab[0] * s + ab[1]) - t
        return np.array([np.dot(d, s), d.sum()])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def _fit_platt(scores: np.ndarray, yi: np.ndarray, n_classes: int,
               min_positives: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One sigmoid per label on out-of-fold scores. A label with fewer than ``min_positives``
    examples cannot support its own fit (it skews every probability); it shares one
    sigmoid fitted on all labels pooled. Scores of a label absent from a fold (-1e3) are ignored."""
    present = scores > -500
    pooled_s = scores[present]
    pooled_pos = (np.arange(n_classes)[None, :] == yi[:, None])[present]
    pa, pb = _sigmoid_fit(pooled_s, pooled_pos)
    a = np.full(n_classes, pa)
    b = np.full(n_classes, pb)
    for c in range(n_classes):
        m = present[:, c]
        pos = yi[m] == c
        if pos.sum() >= min_positives and (~pos).sum() >= min_positives:
            a[c], b[c] = _sigmoid_fit(scores[m, c], pos)
    return a, b


def _precision_thresholds(pred: np.ndarray, score: np.ndarray, yi: np.ndarray, n_classes: int,
                          target: float) -> np.ndarray:
    """Per label: the lowest score s such that predictions of that label with score >= s reach
    ``target`` precision (1.0 + epsilon, i.e. always review, when no s does)."""
    out = np.full(n_classes, 1.01)
    for c in range(n_classes):
        m = pred == c
        if not m.any():
            continue
        s = score[m]
        correct = (yi[m] == c)
        order = np.argsort(-s, kind="stable")
        s, correct = s[order], correct[order]
        prec = np.cumsum(correct) / np.arange(1, len(s) + 1)
        ok = np.flatnonzero(prec >= target)
        if len(ok):
            out[c] = float(s[ok[-1]])
    return out
