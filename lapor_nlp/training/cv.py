"""K-fold cross-validation of a training recipe: the spread a single split hides.

One time split gives one number per figure; on a few thousand complaints its noise is larger than
most differences between recipes. ``train --cv K`` adds K folds (stratified by the label, or grouped
by date so that complaints filed on the same day never sit on both sides) and reports each figure's
mean ± standard deviation beside the time-split figures.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..errors import DataValidationError, InputValueError
from .data import Example
from .metrics import evaluate_model

log = logging.getLogger("lapor_nlp")

#: The figures reported per fold (coverage at 95% precision from ``coverage_at_precision``).
CV_FIGURES = ("accuracy", "macro_f1", "coverage_at_0.95", "ece")
CV_GROUPS = (None, "date")


def fold_indices(examples: list[Example], k: int, *, stratify: str | None = "agency",
                 group: str | None = None, seed: int = 0) -> list[np.ndarray]:
    """The test rows of each of ``k`` folds: stratified by ``stratify``'s label (rows without it
    form a stratum of their own), or with ``group="date"`` whole days kept together."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    n = len(examples)
    if group == "date":
        days = [e.date[:10] if e.date else None for e in examples]
        if None in days:
            raise DataValidationError("--cv-group date needs a date on every row (map --date-col)")
        if len(set(days)) < k:
            raise DataValidationError(f"--cv {k} grouped by date needs at least {k} distinct days; "
                                      f"the data has {len(set(days))}")
        splits = GroupKFold(n_splits=k).split(np.zeros(n), groups=days)
    else:
        y = [str(getattr(e, stratify)) if stratify and getattr(e, stratify) is not None else ""
             for e in examples]
        with warnings.catch_warnings():  # a label with fewer than k rows: spread as far as it goes
            warnings.simplefilter("ignore", UserWarning)
            splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return [test for _, test in splits]


def cross_validate(examples: list[Example], tasks: list[str], new_model, *, k: int = 5,
                   group: str | None = None, seed: int = 0, target: float = 0.95) -> dict:
    """Fit ``new_model()`` on K−1 folds and score it on the K-th, K times. As in the time split,
    a test text that is also in the training folds is left out of that fold's test. Returns
    ``{"k", "group", "folds": [{task: figures}], "summary": {task: {figure: {"mean", "sd"}}}}``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InputValueError(f"cv must be a whole number >= 2, got {k!r}", field="cv")
    if group not in CV_GROUPS:
        raise InputValueError(f"cv_group must be 'date' or None, got {group!r}", field="cv_group")
    if len(examples) < 2 * k:
        raise DataValidationError(f"--cv {k} needs at least {2 * k} rows; there are {len(examples)}")
    folds = []
    for i, test_idx in enumerate(fold_indices(examples, k, stratify=tasks[-1], group=group, seed=seed)):
        in_test = np.zeros(len(examples), bool)
        in_test[test_idx] = True
        train_ex = [e for e, t in zip(examples, in_test) if not t]
        seen = {e.text for e in train_ex}
        test_ex = []
        for e in (examples[j] for j in test_idx):
            if e.text not in seen:
                seen.add(e.text)
                test_ex.append(e)
        model = new_model().fit([e.text for e in train_ex], {t: [getattr(e, t) for e in train_ex] for t in tasks})
        metrics = evaluate_model(model, [e.text for e in test_ex], {t: [getattr(e, t) for e in test_ex] for t in tasks})
        folds.append({task: {"n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                             f"coverage_at_{target:.2f}": m["coverage_at_precision"][f"{target:.2f}"],
                             "ece": m["ece"]} for task, m in metrics.items()})
        log.info("cv fold %d/%d: %s", i + 1, k, ", ".join(
            f"{t} accuracy {f['accuracy']:.3f}" for t, f in folds[-1].items()))
    summary = {}
    for task in tasks:
        summary[task] = {}
        for name in (*CV_FIGURES[:2], f"coverage_at_{target:.2f}", "ece"):
            values = np.array([f[task][name] for f in folds if task in f], float)
            summary[task][name] = {"mean": round(float(values.mean()), 4),
                                   "sd": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)}
    return {"k": k, "group": group or "stratified", "seed": seed, "folds": folds, "summary": summary}


def cv_line(task: str, summary: dict) -> str:
    """One line of a cross-validation summary, for the terminal."""
    return f"{task} (cross-validation): " + ", ".join(
        f"{name} {v['mean']:.3f} ± {v['sd']:.3f}" for name, v in summary.items())
