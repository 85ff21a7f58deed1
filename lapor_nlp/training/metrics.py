"""Evaluation a person can act on: per-label table, confusions, calibration, coverage, errors.

Pure functions over arrays; :mod:`lapor_nlp.training.report` turns the result into files.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..text import mask_pii

PRECISION_TARGETS = (0.90, 0.95, 0.98)


def coverage_at_precision(correct: np.ndarray, score: np.ndarray, target: float) -> float:
    """Largest share of items, taken by descending score, whose precision is >= target."""
    if len(score) == 0:
        return 0.0
    order = np.argsort(-score, kind="stable")
    c = np.asarray(correct, dtype=float)[order]
    prec = np.cumsum(c) / np.arange(1, len(c) + 1)
    ok = np.flatnonzero(prec >= target)
    return float((ok[-1] + 1) / len(c)) if len(ok) else 0.0


def expected_calibration_error(correct: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(score, edges) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += abs(correct[m].mean() - score[m].mean()) * m.mean()
    return float(ece)


def reliability(correct: np.ndarray, score: np.ndarray, bins: int = 10) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(score, edges) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        out.append({"bin": [float(edges[b]), float(edges[b + 1])], "count": int(m.sum()),
                    "mean_score": float(score[m].mean()) if m.any() else None,
                    "accuracy": float(correct[m].mean()) if m.any() else None})
    return out


def task_metrics(y_true, y_pred, score, labels=None, texts=None, n_errors: int = 60,
                 eval_labels=None) -> dict:
    """Metrics of one task. ``eval_labels``: restrict to rows whose true label is in it (e.g. the
    labels the model knows), reported as such."""
    from sklearn.metrics import classification_report, confusion_matrix

    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    score = np.asarray(score, dtype=float)
    labelled = np.array([y is not None for y in y_true], dtype=bool)
    keep = labelled if eval_labels is None else labelled & np.isin(y_true, list(eval_labels))
    yt, yp, sc = y_true[keep], y_pred[keep], score[keep]
    correct = yt == yp
    present = sorted(set(yt))
    rep = classification_report(yt, yp, labels=present, output_dict=True, zero_division=0)
    all_labels = sorted(set(yt) | set(yp)) if labels is None else list(labels)
    cm = confusion_matrix(yt, yp, labels=all_labels) if len(yt) else np.zeros((0, 0), int)
    confused = Counter((t, p) for t, p in zip(yt, yp) if t != p)
    per_class = {}
    for lab in present:
        r = rep[lab]
        row = {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"],
               "support": int(r["support"])}
        row["confused_with"] = dict([(p, n) for (t, p), n in confused.most_common() if t == lab][:3])
        per_class[lab] = row
    errors = []
    if texts is not None:
        tx = np.asarray(texts, dtype=object)[keep]
        wrong = np.flatnonzero(~correct)
        wrong = wrong[np.argsort(-sc[wrong], kind="stable")][:n_errors]
        errors = [{"text": mask_pii(str(tx[i]))[:400], "gold": yt[i], "predicted": yp[i],
                   "confidence": round(float(sc[i]), 3)} for i in wrong]
    return {
        "n": int(len(yt)),
        "n_excluded": int((~keep).sum()),
        "accuracy": float(correct.mean()) if len(yt) else 0.0,
        "macro_f1": float(rep["macro avg"]["f1-score"]) if len(yt) else 0.0,
        "weighted_f1": float(rep["weighted avg"]["f1-score"]) if len(yt) else 0.0,
        "coverage_at_precision": {f"{t:.2f}": coverage_at_precision(correct, sc, t)
                                  for t in PRECISION_TARGETS},
        "ece": expected_calibration_error(correct, sc),
        "reliability": reliability(correct, sc),
        "per_class": per_class,
        "top_confusions": [{"gold": t, "predicted": p, "count": n}
                           for (t, p), n in confused.most_common(20)],
        "confusion_matrix": {"labels": [str(x) for x in all_labels], "matrix": cm.tolist()},
        "errors": errors,
    }


def evaluate_model(model, texts, gold: dict, eval_known_only: bool = True) -> dict:
    """Metrics for each task the model has and ``gold`` labels: ``{task: task_metrics}``."""
    docs = model.tokenize(list(texts))
    X = model.transform(docs)
    out = {}
    for task, head in model.heads_.items():
        y = gold.get(task)
        if y is None:
            continue
        P = head.predict_proba(X)
        pred = head.classes_[P.argmax(1)]
        out[task] = task_metrics(y, pred, P.max(1), labels=list(head.classes_), texts=texts,
                                 eval_labels=set(head.classes_) if eval_known_only else None)
        out[task]["unknown_labels_in_data"] = sorted(set(y) - set(head.classes_) - {None})[:50]
    return out


def summary_line(task: str, m: dict) -> str:
    line = (f"{task}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}, "
            f"coverage@95% {m['coverage_at_precision']['0.95']:.3f}, ECE {m['ece']:.3f} (n={m['n']})")
    if m.get("auto_route"):
        a = m["auto_route"]
        line += (f"; routed without review {a['share']:.3f} at precision "
                 + ("-" if a["precision"] is None else f"{a['precision']:.3f}"))
    if m.get("routed_to"):
        line += f"; routed_to right {m['routed_to']['accuracy']:.3f}"
    return line


# -- Bootstrap intervals ---------------------------------------------------------------------------
# One resample is a vector of counts (how often each row is drawn); every statistic below is a
# weighted one over those counts, so B resamples of n rows cost a few (B x n) matrix products
# instead of B calls into scikit-learn. A paired comparison uses the same counts for both models.

def bootstrap_counts(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` draw counts: row i of the result is one resample of the n rows with
    replacement (seeded, so a report is reproducible)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float32) if n else \
        np.zeros((n_boot, 0), np.float32)


def weighted_accuracy(W: np.ndarray, correct: np.ndarray) -> np.ndarray:
    total = W.sum(1)
    return (W @ correct.astype(np.float32)) / np.maximum(total, 1)


def weighted_share(W: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """The share of rows with ``flag`` in each resample."""
    return (W @ flag.astype(np.float32)) / np.maximum(W.sum(1), 1)


def weighted_precision(W: np.ndarray, flag: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Accuracy among the flagged rows of each resample (NaN where none is flagged)."""
    hits = W @ (flag & correct).astype(np.float32)
    n = W @ flag.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hits / n, np.nan)


def weighted_coverage(W: np.ndarray, correct: np.ndarray, score: np.ndarray, target: float,
                      block: int = 100) -> np.ndarray:
    """:func:`coverage_at_precision` of each resample (rows taken by descending score, a row drawn
    k times counting as k rows: of a wrong row's copies, as many as keep the precision)."""
    order = np.argsort(-score, kind="stable")
    c = correct[order].astype(bool)
    out = np.empty(len(W))
    for start in range(0, len(W), block):
        Ws = W[start:start + block][:, order].astype(np.float64)
        cn = np.cumsum(Ws, axis=1)                      # rows taken up to and with this one
        cw = np.cumsum(Ws * c, axis=1)                  # right ones among them
        before = cn - Ws
        # a right row: precision only rises over its copies, so test after the last one; a wrong
        # row: it falls, so take the most copies that keep it (precision right * 1/target >= n)
        most = np.where(c, np.where(cw >= target * cn - 1e-9, cn, 0.0),
                        np.minimum(cn, np.floor(cw / target + 1e-9)))
        most = np.where((Ws > 0) & (most > before), most, 0.0)
        out[start:start + block] = most.max(1) / np.maximum(cn[:, -1], 1)
    return out


def weighted_f1(W: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, labels: list) -> tuple:
    """Per-label F1 ``(n_boot, len(labels))`` and macro-F1 ``(n_boot,)`` of each resample: the mean
    over the labels that occur in that resample's gold labels, as ``classification_report`` does."""
    index = {lab: i for i, lab in enumerate(labels)}
    L, n = len(labels), len(y_true)
    ti = np.fromiter((index.get(y, -1) for y in y_true), np.int64, n)
    pi = np.fromiter((index.get(y, -1) for y in y_pred), np.int64, n)
    T = np.zeros((n, L), np.float32)
    P = np.zeros((n, L), np.float32)
    T[np.flatnonzero(ti >= 0), ti[ti >= 0]] = 1
    P[np.flatnonzero(pi >= 0), pi[pi >= 0]] = 1
    support, predicted = W @ T, W @ P
    tp = W @ (T * (ti == pi)[:, None])
    denom = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    present = support > 0
    macro = (f1 * present).sum(1) / np.maximum(present.sum(1), 1)
    f1 = np.where(present, f1, np.nan)
    return f1, macro


def interval(values: np.ndarray, confidence: float = 0.95) -> list[float]:
    """The percentile interval of bootstrap values (NaNs, from empty resamples, left out)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return [None, None]
    lo, hi = np.percentile(v, [50 * (1 - confidence), 50 * (1 + confidence)])
    return [round(float(lo), 4), round(float(hi), 4)]


def metric_intervals(y_true, y_pred, score, *, target: float = 0.95, n_boot: int = 1000,
                     seed: int = 0, confidence: float = 0.95) -> dict:
    """Bootstrap intervals of one task's accuracy, macro-F1 and coverage at ``target`` precision,
    over the rows with a gold label (for the model card and ``train``'s report)."""
    y_true = np.asarray(y_true, dtype=object)
    keep = np.array([y is not None for y in y_true], bool)
    yt, yp, sc = y_true[keep], np.asarray(y_pred, dtype=object)[keep], np.asarray(score, float)[keep]
    if not len(yt):
        return {}
    correct = yt == yp
    W = bootstrap_counts(len(yt), n_boot, seed)
    _, macro = weighted_f1(W, yt, yp, sorted(set(yt), key=str))
    return {"accuracy": interval(weighted_accuracy(W, correct), confidence),
            "macro_f1": interval(macro, confidence),
            f"coverage_at_{target:.2f}": interval(weighted_coverage(W, correct, sc, target), confidence),
            "n_boot": n_boot, "seed": seed, "confidence": confidence}
