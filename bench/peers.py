"""Peers versus lapor-nlp on the public Surabaya split, all trained and scored in one run.

Split (../shared/data/README.md): train on rows dated before 2022-10-01, test on Oct-Dec 2022,
exact duplicate texts removed from the test side. Agency type = the agency label with
"Kelurahan X" / "Kecamatan X" collapsed. Every model sees the same rows; rows whose agency type
never occurs in training count as errors for everyone.

Peers (as described in ../shared/data/README.md):
  1. TF-IDF word 1-2 + LogisticRegression
  2. TF-IDF word 1-2 + char_wb 2-5 + LinearSVC
  3. the same after PySastrawi stemming
  4. fastText supervised (bigrams, 25 epochs)        [needs: pip install fasttext-numpy2]
and lapor-nlp's model as `lapor-nlp train` builds it (agency and topic).

Printed per model: accuracy, macro-F1 (over the labels present in the test set), coverage at 95%
precision (share of test rows that can be routed automatically, taking rows by descending
confidence while precision stays >= 95%), training seconds, predict docs/s on one core (raw text
in, labels out). Topic: labels with >= 20 rows (the class count is printed), others left out for every model.

    python bench/peers.py [--skip-fasttext]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import agency_type, public_split, require_surabaya, surabaya_rows  # noqa: E402

warnings.filterwarnings("ignore")


def coverage(correct, conf, target=0.95):
    from lapor_nlp.training.metrics import coverage_at_precision

    return coverage_at_precision(np.asarray(correct), np.asarray(conf, dtype=float), target)


def macro_f1(y, pred):
    from sklearn.metrics import f1_score

    return f1_score(y, pred, average="macro", labels=sorted(set(y)), zero_division=0)


def sk_peer(kind: str):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    if kind == "lr":
        return make_pipeline(word, LogisticRegression(max_iter=1000, C=10))
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    return make_pipeline(make_union(word, char), LinearSVC(C=0.5))


def confidence(model, texts):
    if hasattr(model, "predict_proba"):
        P = model.predict_proba(texts)
        return model.classes_[P.argmax(1)], P.max(1)
    D = model.decision_function(texts)
    return model.classes_[D.argmax(1)], D.max(1)  # ranking is all coverage needs


def run_sklearn(name, model, tr_x, tr_y, te_x, te_y, transform=None):
    t = time.perf_counter()
    a = [transform(x) for x in tr_x] if transform else tr_x
    model.fit(a, tr_y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    b = [transform(x) for x in te_x] if transform else te_x
    pred, conf = confidence(model, b)
    rate = len(te_x) / (time.perf_counter() - t)
    return name, pred, conf, fit_s, rate


def run_fasttext(tr_x, tr_y, te_x):
    import fasttext

    def line(x):
        return re.sub(r"\s+", " ", x.lower()).strip()

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for x, y in zip(tr_x, tr_y):
            fh.write(f"__label__{y.replace(' ', '_')} {line(x)}\n")
        path = fh.name
    t = time.perf_counter()
    m = fasttext.train_supervised(path, epoch=25, wordNgrams=2, verbose=0, thread=1, seed=0)
    fit_s = time.perf_counter() - t
    os.unlink(path)
    t = time.perf_counter()
    labels, probs = m.predict([line(x) for x in te_x], k=1)
    rate = len(te_x) / (time.perf_counter() - t)
    pred = np.array([lab[0][len("__label__"):].replace("_", " ") for lab in labels], dtype=object)
    return "fastText supervised (bigrams, 25 epochs)", pred, np.array([p[0] for p in probs]), fit_s, rate


def run_lapor(task, train_rows, test_x, label_of):
    """lapor-nlp through its training API on exactly these rows."""
    from lapor_nlp.classifier import ComplaintClassifier

    labels = [label_of(r) for r in train_rows]
    t = time.perf_counter()
    model = ComplaintClassifier().fit([r["text"] for r in train_rows], {task: labels})
    fit_s = time.perf_counter() - t
    model.preprocessor_.clear_cache()  # predict from a cold text cache, like the peers
    t = time.perf_counter()
    P = model.heads_[task].predict_proba(model.transform(model.tokenize(test_x)))
    rate = len(test_x) / (time.perf_counter() - t)
    return "lapor-nlp (stems+slang, word 1-2, SVM, Platt)", model.heads_[task].classes_[P.argmax(1)], P.max(1), fit_s, rate


def table(title, results, y):
    print(f"\n{title}  (test n={len(y)})")
    print(f"{'model':<48}{'accuracy':>9}{'macroF1':>9}{'cov@95':>8}{'train s':>9}{'docs/s':>9}")
    for name, pred, conf, fit_s, rate in results:
        correct = np.asarray(pred, dtype=object) == np.asarray(y, dtype=object)
        print(f"{name:<48}{correct.mean():>9.3f}{macro_f1(y, pred):>9.3f}{coverage(correct, conf):>8.3f}"
              f"{fit_s:>9.1f}{rate:>9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-fasttext", action="store_true")
    ap.add_argument("--task", choices=("agency", "topic", "both"), default="both")
    args = ap.parse_args()
    require_surabaya()
    rows = surabaya_rows()
    train, test = public_split(rows)
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    stem = StemmerFactory().create_stemmer().stem
    tasks = []
    if args.task in ("agency", "both"):
        tasks.append(("agency type (Kelurahan X / Kecamatan X collapsed)", "agency",
                      lambda r: agency_type(r["agency"]) if r["agency"].strip() else None))
    if args.task in ("topic", "both"):
        topic_counts = Counter(r["topic"] for r in rows if r["topic"].strip())
        keep = {t for t, n in topic_counts.items() if n >= 20}
        tasks.append((f"topic (labels with >= 20 rows: {len(keep)} classes)", "topic",
                      lambda r, keep=keep: r["topic"] if r["topic"] in keep else None))
    for title, task, label_of in tasks:
        tr = [r for r in train if label_of(r) is not None]
        te = [r for r in test if label_of(r) is not None]
        tr_x, tr_y = [r["text"] for r in tr], [label_of(r) for r in tr]
        te_x, te_y = [r["text"] for r in te], [label_of(r) for r in te]
        results = [
            run_sklearn("TF-IDF word 1-2 + LogisticRegression", sk_peer("lr"), tr_x, tr_y, te_x, te_y),
            run_sklearn("TF-IDF word 1-2 + char_wb 2-5 + LinearSVC", sk_peer("svc"), tr_x, tr_y, te_x, te_y),
            run_sklearn("same, after PySastrawi stemming", sk_peer("svc"), tr_x, tr_y, te_x, te_y,
                        transform=stem),
        ]
        if not args.skip_fasttext:
            try:
                results.append(run_fasttext(tr_x, tr_y, te_x))
            except ImportError:
                print("fastText not installed (pip install fasttext-numpy2): peer skipped", file=sys.stderr)
        results.append(run_lapor(task, tr, te_x, label_of))
        table(title, results, te_y)
    print("\ntargets (agency type): accuracy >= 0.78, macro-F1 >= 0.50, coverage@95 >= 0.55; "
          "topic macro-F1 >= 0.58; training on all 8,690 rows <= 60 s")


if __name__ == "__main__":
    main()
