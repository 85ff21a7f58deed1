"""How often to retrain: a rolling-origin evaluation on the Surabaya 2022 complaints.

The public split (bench/peers.py) fits once on rows dated before 2022-10-01 and scores Oct-Dec.
A portal that retrains every N days on everything disposed so far meets each new complaint with a
model that has seen the complaints before it. This bench measures that: for each cadence the test
period is cut into windows of N days; for each window a model is fitted, with the shipped recipe
(``ComplaintClassifier``, as ``lapor-nlp train`` builds it), on every row dated before the
window's start (the training side and the earlier test rows), and the window's rows are scored
with it. Cadence 0 means "fit once" (the public split). The test rows are those of the public
split, so every cadence scores the same rows; a fit never includes a row whose text is exactly
that of a row it scores (the data file is not in date order, so the public split can keep a later
copy of a text on the test side while an earlier-dated copy remains in the data).

Printed per cadence, never a complaint text: agency-type accuracy, macro-F1 and coverage at 95%
precision, topic macro-F1, fits and mean seconds per fit (both tasks, one process; the tokens are
cached across fits, so a fit here is faster than a cold ``lapor-nlp train``), and the 95% interval
of the accuracy and macro-F1 differences against fitting once, from a paired bootstrap that
resamples whole test days (complaints come in bursts of near-duplicates filed close together, so
rows of one day are not independent).

    python bench/retrain.py [--cadences 0 31 7] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter
from datetime import date

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import SPLIT_DATE, agency_type, public_split, surabaya_rows  # noqa: E402

warnings.filterwarnings("ignore")


def day(row: dict) -> date:
    return date.fromisoformat(row["date"][:10])


def macro_f1(y: np.ndarray, p: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over the labels present in ``y`` (label indices; -1 = a label never trained)."""
    y, p = y + 1, p + 1  # index 0: "unknown"
    tp = np.bincount(y[y == p], minlength=n_labels + 1)
    pred = np.bincount(p, minlength=n_labels + 1)
    true = np.bincount(y, minlength=n_labels + 1)
    f1 = np.where(pred + true > 0, 2 * tp / np.maximum(pred + true, 1), 0.0)
    present = true > 0
    present[0] = False
    return float(f1[present].mean())


def rolling_predictions(rows, test, tasks, cadence: int):
    """(predicted label per task, confidence per task, fit seconds list) over the test rows."""
    from lapor_nlp.classifier import ComplaintClassifier
    from lapor_nlp.text import Preprocessor

    pre = Preprocessor()  # shared by every fit: each text is tokenized once
    start = date.fromisoformat(SPLIT_DATE)
    end = max(day(r) for r in test)
    offsets = np.array([(day(r) - start).days for r in test])
    windows = [(0, (end - start).days + 1)] if cadence <= 0 else \
        [(a, a + cadence) for a in range(0, (end - start).days + 1, cadence)]
    pred = {t: np.empty(len(test), dtype=object) for t in tasks}
    conf = {t: np.zeros(len(test)) for t in tasks}
    seconds = []
    for lo, hi in windows:
        where = np.flatnonzero((offsets >= lo) & (offsets < hi))
        if not len(where):
            continue
        cutoff = start.toordinal() + lo
        scored = {test[i]["text"] for i in where}
        fit_rows = [r for r in rows if day(r).toordinal() < cutoff and r["text"] not in scored]
        t = time.perf_counter()
        model = ComplaintClassifier(preprocessor=pre).fit(
            [r["text"] for r in fit_rows], {task: [f(r) for r in fit_rows] for task, f in tasks.items()})
        seconds.append(time.perf_counter() - t)
        X = model.transform(model.tokenize([test[i]["text"] for i in where]))
        for task in tasks:
            head = model.heads_[task]
            P = head.predict_proba(X)
            pred[task][where] = head.classes_[P.argmax(1)]
            conf[task][where] = P.max(1)
    return pred, conf, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cadences", type=int, nargs="+", default=[0, 31, 7],
                    help="days between refits (default: 0 31 7); fitting once (0) is always "
                         "measured first, as the baseline")
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired-bootstrap resamples")
    a = ap.parse_args(argv)
    from lapor_nlp.training.metrics import coverage_at_precision

    rows = surabaya_rows()
    _, test = public_split(rows)
    topic_counts = Counter(r["topic"] for r in rows if r["topic"].strip())
    keep = {t for t, n in topic_counts.items() if n >= 20}
    tasks = {"agency": lambda r: agency_type(r["agency"]) if r["agency"].strip() else None,
             "topic": lambda r: r["topic"] if r["topic"] in keep else None}
    gold = {}
    for task, f in tasks.items():
        y = [f(r) for r in test]
        labels = sorted({f(r) for r in rows if f(r) is not None})
        index = {lab: i for i, lab in enumerate(labels)}
        mask = np.array([v is not None for v in y])
        gold[task] = (mask, np.array([index[v] for v in y if v is not None]), index)
    print(f"Surabaya 2022: {len(test):,} test rows (Oct-Dec, public split); agency n={gold['agency'][0].sum():,}, "
          f"topic n={gold['topic'][0].sum():,} (labels with >= 20 rows)")
    rng = np.random.default_rng(0)
    boots = {}
    for task, (mask, _, _) in gold.items():  # resample days, keep each day's rows together
        days = np.array([day(r).toordinal() for r, m in zip(test, mask) if m])
        groups = [np.flatnonzero(days == d) for d in np.unique(days)]
        boots[task] = [np.concatenate([groups[j] for j in rng.integers(0, len(groups), len(groups))])
                       for _ in range(a.bootstrap)]

    def scores(task, p, c, idx=slice(None)):
        mask, y, index = gold[task]
        pi = np.array([index.get(v, -1) for v in p[mask]])
        yy, pp, cc = y[idx], pi[idx], c[mask][idx]
        return np.array([np.mean(yy == pp), macro_f1(yy, pp, len(index)),
                         coverage_at_precision(yy == pp, cc, 0.95)])

    cadences = [0] + [c for c in a.cadences if c > 0]  # the baseline, fit once, always first
    base = None
    print(f"{'refit every':<14}{'agency acc':>11}{'macro-F1':>10}{'cov@95':>8}{'topic mF1':>11}"
          f"{'fits':>6}{'s/fit':>7}   accuracy / macro-F1 vs fit once (95% interval)")
    for cadence in cadences:
        pred, conf, seconds = rolling_predictions(rows, test, tasks, cadence)
        full = {t: scores(t, pred[t], conf[t]) for t in tasks}
        vs = ""
        if base is None:
            base = (pred, conf)
        else:
            d = np.array([scores("agency", pred["agency"], conf["agency"], b)
                          - scores("agency", base[0]["agency"], base[1]["agency"], b)
                          for b in boots["agency"]])
            lo, hi = np.percentile(d, [2.5, 97.5], axis=0)
            diff = full["agency"] - scores("agency", base[0]["agency"], base[1]["agency"])
            vs = (f"{diff[0]:+.3f} [{lo[0]:+.3f}, {hi[0]:+.3f}] / "
                  f"{diff[1]:+.3f} [{lo[1]:+.3f}, {hi[1]:+.3f}]")
        label = "never (once)" if cadence <= 0 else f"{cadence} days"
        print(f"{label:<14}{full['agency'][0]:>11.3f}{full['agency'][1]:>10.3f}{full['agency'][2]:>8.3f}"
              f"{full['topic'][1]:>11.3f}{len(seconds):>6}{np.mean(seconds):>7.1f}   {vs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
