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
    return (f"{task}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}, "
            f"coverage@95% {m['coverage_at_precision']['0.95']:.3f}, ECE {m['ece']:.3f} (n={m['n']})")
