"""Router latency and throughput on the Surabaya 2022 texts, one core, beside fastText.

- single ``Router.predict(text)``: p50 and p99 over --n calls (explanation included, as a service
  would return it), after a warm-up pass;
- ``Router.predict_batch(texts)``: complaints/s over all texts (median of --repeats passes);
- fastText supervised (bigrams), trained on the bundled corpus (the default model's training data,
  also when --model names another model: only its predict rate is compared), predicting the
  same texts (``model.predict(list)``), in the same run.

    python bench/latency.py [--model DIR] [--n 3000] [--repeats 3]

Targets: p50 <= 1 ms, p99 <= 3 ms, predict_batch >= 20,000 complaints/s and >= fastText's rate.
It also prints what a complaint costs in the main parts of predict_batch, against the 50 us that
20,000 complaints/s allows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import median, surabaya_rows  # noqa: E402


def fasttext_rate(train_texts, train_labels, texts, repeats):
    import fasttext

    def line(x):
        return re.sub(r"\s+", " ", x.lower()).strip()

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for x, y in zip(train_texts, train_labels):
            fh.write(f"__label__{y} {line(x)}\n")
    model = fasttext.train_supervised(fh.name, epoch=25, wordNgrams=2, verbose=0, thread=1, seed=0)
    os.unlink(fh.name)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict([line(x) for x in texts], k=3)
        rates.append(len(texts) / (time.perf_counter() - t))
    return median(rates)


def cost_parts(router, texts, repeats) -> dict[str, float]:
    """Microseconds a complaint for the parts of predict_batch (median of passes): the warm text
    pipeline, ``str.split()`` alone (the least a Python tokenizer does), and pydantic building the
    Prediction objects from the plain values (what predict_batch adds to predict_records)."""
    from lapor_nlp.router import _PREDICTIONS, _gc_paused

    analyze = router.model.preprocessor_.analyze
    records = router.predict_records(texts, explain=True)

    def objects(_):
        _PREDICTIONS.validate_python(records)

    parts = {"text": lambda ts: [analyze(t) for t in ts], "split": lambda ts: [t.split() for t in ts],
             "objects": objects}
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(repeats):
        for name, fn in parts.items():
            with _gc_paused():  # as predict_batch runs them
                t = time.perf_counter()
                fn(texts)
                times[name].append((time.perf_counter() - t) / len(texts) * 1e6)
    return {k: median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--n", type=int, default=3000, help="single predict calls to time")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from lapor_nlp import Router
    from lapor_nlp.training.default import build_corpus_file, ensure_default_model

    texts = [r["text"] for r in surabaya_rows()]
    t = time.perf_counter()
    router = Router.load(args.model or ensure_default_model())
    load_s = time.perf_counter() - t
    router.predict_batch(texts[:2000])  # warm-up: caches, lazy feature names
    lat = []
    for text in texts[: args.n]:
        t = time.perf_counter_ns()
        router.predict(text)
        lat.append((time.perf_counter_ns() - t) / 1e6)
    lat = np.array(lat)
    router.model.preprocessor_.clear_cache()
    router.predict_batch(texts)  # one pass to fill caches, as a running service has
    rates = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        router.predict_batch(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
    batch = median(rates)
    rates_noexp = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        router.predict_batch(texts, explain=False)
        rates_noexp.append(len(texts) / (time.perf_counter() - t))
    parts = cost_parts(router, texts, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.jsonl")
        build_corpus_file(__import__("pathlib").Path(path))
        rows = [json.loads(x) for x in open(path, encoding="utf-8")]
    try:
        ft = fasttext_rate([r["text"] for r in rows], [r["agency"] for r in rows], texts, args.repeats)
    except ImportError:
        ft = None
        print("fastText not installed (pip install fasttext-numpy2): comparison skipped", file=sys.stderr)
    print(f"texts: {len(texts)} Surabaya 2022; model: {router.name}; Router.load {load_s:.2f} s")
    print(f"single predict: p50 {np.percentile(lat, 50):.3f} ms  p99 {np.percentile(lat, 99):.3f} ms  (n={len(lat)})")
    print(f"predict_batch: {batch:,.0f} complaints/s (with explanations), "
          f"{median(rates_noexp):,.0f} complaints/s (explain=False)")
    if ft:
        print(f"fastText predict (k=3, same texts): {ft:,.0f} texts/s   ratio lapor/fastText: {batch / ft:.2f}")
    us = 1e6 / batch
    print(f"per complaint, predict_batch: {us:.1f} us; of which text pipeline (warm) "
          f"{parts['text']:.1f} us (str.split() alone {parts['split']:.1f}), building the pydantic "
          f"Prediction objects from ready values {parts['objects']:.1f} us, the rest (features, "
          f"heads, places, review, explanation) {us - parts['text'] - parts['objects']:.1f} us; "
          f"20,000/s leaves 50.0 us")
    print("targets: p50 <= 1 ms {}, p99 <= 3 ms {}, batch >= 20,000/s {}, batch >= fastText {}".format(
        *("met" if ok else "NOT met" for ok in (
            np.percentile(lat, 50) <= 1, np.percentile(lat, 99) <= 3, batch >= 20_000,
            ft is None or batch >= ft))))


if __name__ == "__main__":
    main()
