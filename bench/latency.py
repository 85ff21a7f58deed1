"""Router latency and throughput on the Surabaya 2022 texts, one core, beside fastText in the same run.

What is timed, for each API, is the time until the caller holds every item's labels, scores and
review flags (warm caches, as a running service has them):

- (a) ``router.route(texts)``: the columnar result (arrays; labels as ids into ``Router.labels``);
- (b) ``router.predict_batch(texts)`` with each Prediction's labels, scores and flags read;
- (c) ``router.predict_records(texts)`` (plain dicts, what ``classify`` writes);
- fastText supervised (bigrams) trained on the bundled corpus, ``model.predict(list, k=3)`` on
  the same texts with its own cleaning (lower case, whitespace) inside the timed part;
- (d) single ``router.predict(text)`` (explanation included, as a service returns it): p50, p99.

Passes of (a), (b), (c) and fastText are interleaved (one of each per round, --repeats rounds);
medians are printed with their ranges, and the host load beside them: on a shared host compare
the ratios to fastText, which are measured in the same rounds. Then the cost of each stage of
the fast path (us per complaint) and the RSS of a freshly loaded default Router (a new process).

    python bench/latency.py [--model DIR] [--n 3000] [--repeats 5] [--rows N]

Targets: (a) >= 1.2x fastText, (b) >= 0.8x fastText, (c) >= 30,000/s on a quiet host,
(d) p50 <= 0.3 ms and p99 <= 1.5 ms, loaded Router <= 150 MiB RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import median, surabaya_rows  # noqa: E402

TARGET_ROUTE_VS_FASTTEXT = 1.2
TARGET_BATCH_VS_FASTTEXT = 0.8
TARGET_RECORDS = 30_000
TARGET_P50_MS, TARGET_P99_MS = 0.3, 1.5
TARGET_RSS_MIB = 150


def load() -> str:
    return "load average %.2f %.2f %.2f on %d cores" % (*os.getloadavg(), os.cpu_count() or 1)


def fasttext_predictor(train_texts, train_labels):
    """fastText's predict with its own cleaning, as one callable (None when not installed)."""
    try:
        import fasttext
    except ImportError:
        print("fastText not installed (pip install fasttext-numpy2): comparison skipped", file=sys.stderr)
        return None

    space = re.compile(r"\s+")

    def line(x):
        return space.sub(" ", x.lower()).strip()

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        for x, y in zip(train_texts, train_labels):
            fh.write(f"__label__{y} {line(x)}\n")
    model = fasttext.train_supervised(fh.name, epoch=25, wordNgrams=2, verbose=0, thread=1, seed=0)
    os.unlink(fh.name)
    return lambda texts: model.predict([line(x) for x in texts], k=3)


def read_predictions(preds) -> None:
    """What a caller of predict_batch reads: every item's labels, scores and review flag."""
    for p in preds:
        p.topic.label, p.topic.score, p.agency.label, p.agency.score, p.needs_review, p.review_reasons


def read_columns(result) -> None:
    """The same from the columnar result: the arrays are already there."""
    for cols in result.tasks.values():
        cols.label, cols.score
    result.needs_review, result.reasons


def stage_costs(router, texts, repeats) -> dict[str, float]:
    """Microseconds a complaint for each stage of the fast path (median of passes), called one
    by one as ``Router._route`` calls them, with the collector relaxed as the batch calls run."""
    from lapor_nlp.gc_pause import gc_paused

    complaints, _, _ = router._coerce(texts)
    out: dict[str, list[float]] = {}

    def timed(name, fn):
        t = time.perf_counter()
        value = fn()
        out.setdefault(name, []).append((time.perf_counter() - t) / len(complaints) * 1e6)
        return value

    for _ in range(repeats):
        with gc_paused():
            _one_pass(timed, router, texts, complaints)
    return {k: median(v) for k, v in out.items()}


def _one_pass(timed, router, texts, complaints) -> None:
    from lapor_nlp.heads import _csr_matvecs, calibrated_scores
    from lapor_nlp.router import _PREDICTIONS, _top

    n = len(complaints)
    state = router._fast()
    timed("input check (_coerce)", lambda: router._coerce(texts))
    prepared, _, _ = timed("mask + prepare", lambda: router._texts(complaints))
    cids, arrays = timed("chunk ids", lambda: state.table.ids(prepared))
    g = timed("gather tables", lambda: state.table.gather(cids, arrays, n))
    X = timed("TF-IDF", lambda: router.model.features_.transform_ids(g.token_ids, g.token_offsets))
    block, cols = state.stacked

    def heads():
        raw = np.zeros((n, block.shape[1]), np.float32)
        _csr_matvecs(n, X.shape[1], block.shape[1], X.indptr, X.indices, X.data, block.ravel(), raw.ravel())
        res = []
        for head, col in zip(state.heads, cols):
            P = calibrated_scores(head, raw[:, col])[0]
            res.append((head, P, _top(P, router.top_k + 1)[0]))
        return res

    res = timed("heads (product, calibration, top-k)", heads)
    agency = res[-1][2][:, 0]
    timed("places + offices", lambda: router._places(state, complaints, g, agency))
    timed("explanation", lambda: router._explain(X, [(t, h, P, top) for t, (h, P, top) in zip(state.tasks, res)]))
    result = timed("(whole route(), explain off)", lambda: router._route_all(complaints, None, False, 4096))
    records = timed("to_records", result.to_records)
    timed("pydantic validation of the records", lambda: _PREDICTIONS.validate_python(records))
    timed("to_predictions (predict_batch's objects)", result.to_predictions)


def reference_flow():
    """0.4's per-document ``Router._route``, kept as the fast path's oracle in the tests."""
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    sys.path.insert(0, tests)
    try:
        from reference_router import reference_route
    except ImportError:
        return None
    finally:
        sys.path.remove(tests)
    return reference_route


def loaded_rss_mib(model: str | None) -> float:
    """RSS of a new process after loading the Router and routing one complaint (MiB)."""
    code = ("import lapor_nlp, sys\n"
            "r = lapor_nlp.load(sys.argv[1] or None, quiet=True)\n"
            "r.predict('jalan rusak di kota malang sudah 3 bulan')\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS')][0])\n")
    out = subprocess.run([sys.executable, "-c", code, model or ""], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def fmt(xs) -> str:
    return f"{median(xs):,.0f}/s (range {min(xs):,.0f}–{max(xs):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--n", type=int, default=3000, help="single predict calls to time")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--rows", type=int, default=None, help="use only the first N texts")
    args = ap.parse_args()
    from lapor_nlp import Router
    from lapor_nlp.training.default import build_corpus_file, ensure_default_model

    texts = [r["text"] for r in surabaya_rows()][: args.rows]
    t = time.perf_counter()
    router = Router.load(args.model or ensure_default_model(quiet=True))
    load_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.jsonl")
        build_corpus_file(__import__("pathlib").Path(path))
        rows = [json.loads(x) for x in open(path, encoding="utf-8")]
    fasttext = fasttext_predictor([r["text"] for r in rows], [r["agency"] for r in rows])

    router.predict_batch(texts)  # warm: chunk tables, memos, feature names
    print(f"texts: {len(texts)} Surabaya 2022; model: {router.name}; Router.load {load_s:.2f} s")
    print(f"host before: {load()}")
    runs = {
        "(a) route": lambda: read_columns(router.route(texts)),
        "(b) predict_batch, fields read": lambda: read_predictions(router.predict_batch(texts)),
        "(b') predict_batch explain=False, fields read":
            lambda: read_predictions(router.predict_batch(texts, explain=False)),
        "(c) predict_records": lambda: router.predict_records(texts),
    }
    reference = reference_flow()
    if reference is not None:  # 0.4's per-document flow (tests/reference_router.py), same records
        runs["0.4 per-document flow, records"] = \
            lambda: reference(router, router._coerce(texts)[0], router.thresholds, False)
    if fasttext:
        runs["fastText predict(k=3)"] = lambda: fasttext(texts)
    rates: dict[str, list[float]] = {k: [] for k in runs}
    ratios: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        this = {}
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            this[name] = len(texts) / (time.perf_counter() - t)
            rates[name].append(this[name])
        if fasttext:
            for name in runs:
                ratios[name].append(this[name] / this["fastText predict(k=3)"])
    print(f"host after the rounds: {load()}")
    for name in runs:
        ratio = f"   x fastText: {median(ratios[name]):.2f} (range {min(ratios[name]):.2f}–{max(ratios[name]):.2f})" \
            if fasttext else ""
        print(f"{name:48s} {fmt(rates[name])}{ratio}")

    lat = []
    for text in texts[: args.n]:
        t = time.perf_counter_ns()
        router.predict(text)
        lat.append((time.perf_counter_ns() - t) / 1e6)
    p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
    print(f"(d) single predict: p50 {p50:.3f} ms  p99 {p99:.3f} ms  (n={len(lat)}; {load()})")

    print("per complaint, fast path stages (us, median):")
    for name, us in stage_costs(router, texts, max(3, args.repeats // 2)).items():
        print(f"  {name:40s} {us:6.1f}")
    rss = loaded_rss_mib(args.model)
    print(f"loaded default Router (new process, one predict): {rss:.0f} MiB RSS")

    def verdict(ok) -> str:
        return "PASS" if ok else "FAIL"

    if fasttext:
        print(f"{verdict(median(ratios['(a) route']) >= TARGET_ROUTE_VS_FASTTEXT)} (a) route >= "
              f"{TARGET_ROUTE_VS_FASTTEXT}x fastText")
        print(f"{verdict(median(ratios['(b) predict_batch, fields read']) >= TARGET_BATCH_VS_FASTTEXT)} "
              f"(b) predict_batch >= {TARGET_BATCH_VS_FASTTEXT}x fastText")
    print(f"{verdict(median(rates['(c) predict_records']) >= TARGET_RECORDS)} (c) predict_records >= "
          f"{TARGET_RECORDS:,}/s (a quiet-host target; this host: {load()})")
    print(f"{verdict(p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS)} (d) p50 <= {TARGET_P50_MS} ms and "
          f"p99 <= {TARGET_P99_MS} ms")
    print(f"{verdict(rss <= TARGET_RSS_MIB)} loaded Router <= {TARGET_RSS_MIB} MiB RSS")


if __name__ == "__main__":
    main()
