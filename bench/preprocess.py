"""Preprocessing throughput on the 8,690 Surabaya 2022 texts, one core, in one run:

- this Preprocessor warm (caches filled by a previous pass),
- this Preprocessor cold (caches emptied before each pass),
- plain PySastrawi ``StemmerFactory().create_stemmer().stem(text)`` per text (its own cache is
  reset before each pass, so each pass is comparable to "cold"; a second, warm pass is shown too).

Prints docs/s (median of --repeats passes) and the ratios. Targets: warm >= 30,000 docs/s and
>= 100x plain PySastrawi. For scale it also times ``str.split()`` alone on the same texts: the
least work any Python tokenizer does, and a ceiling for one written in Python. Then the cost of one cache miss: microseconds to stem an unseen (typo'd)
word with plain PySastrawi and with the accelerated stemmer (``lapor_nlp.text.stem.accelerate``).

    python bench/preprocess.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import median, surabaya_rows  # noqa: E402


def rate(fn, texts, repeats, before=None):
    rates = []
    for _ in range(repeats):
        if before:
            before()
        t = time.perf_counter()
        fn(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
    return median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--uncached-sample", type=int, default=1500)
    ap.add_argument("--typo-words", type=int, default=3000,
                    help="typo'd words for the cost of a cache miss (0: skip)")
    args = ap.parse_args()
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    from lapor_nlp.text import Preprocessor

    texts = [r["text"] for r in surabaya_rows()]
    pre = Preprocessor()
    cold = rate(pre.tokens_batch, texts, args.repeats, before=pre.clear_cache)
    pre.tokens_batch(texts)
    warm = rate(pre.tokens_batch, texts, args.repeats)
    stemmer = StemmerFactory().create_stemmer()

    def reset():
        stemmer.get_cache().data = {}  # PySastrawi's CachedStemmer keeps an unbounded dict

    plain_repeats = max(1, min(args.repeats, 2))
    plain = rate(lambda ts: [stemmer.stem(t) for t in ts], texts, plain_repeats, before=reset)
    plain_warm = rate(lambda ts: [stemmer.stem(t) for t in ts], texts, 1)
    # Sastrawi with no cache at all (every word stemmed every time), on a sample: the per-word
    # cost the "15 ms vs 55 us per unseen word" comparison refers to.
    uncached = stemmer.delegatedStemmer
    sample = texts[: args.uncached_sample]
    plain_nocache = rate(lambda ts: [uncached.stem(t) for t in ts], sample, 1)
    # The least any pure-Python tokenizer does: cut each text at whitespace (in C, one call).
    split_only = rate(lambda ts: [t.split() for t in ts], texts, args.repeats)
    print(f"texts: {len(texts)} (Surabaya 2022), one process, median of {args.repeats} passes")
    print(f"{'pipeline':<44}{'docs/s':>12}")
    print(f"{'lapor-nlp Preprocessor, warm':<44}{warm:>12,.0f}")
    print(f"{'lapor-nlp Preprocessor, cold (empty cache)':<44}{cold:>12,.0f}")
    print(f"{'PySastrawi stem(text), cold':<44}{plain:>12,.0f}")
    print(f"{'PySastrawi stem(text), its cache warm':<44}{plain_warm:>12,.0f}")
    print(f"{'PySastrawi Stemmer, no cache at all':<44}{plain_nocache:>12,.0f}  "
          f"(first {len(sample)} texts)")
    print(f"warm / PySastrawi cold: {warm / plain:,.0f}x   warm / PySastrawi warm: {warm / plain_warm:,.1f}x"
          f"   cold / PySastrawi cold: {cold / plain:,.1f}x   warm / PySastrawi no cache: "
          f"{warm / plain_nocache:,.0f}x")
    print(f"target warm >= 30,000 docs/s: {'met' if warm >= 30_000 else 'NOT met'}; "
          f"target >= 100x PySastrawi: {'met' if warm / plain >= 100 else 'NOT met'}")
    print(f"for scale: 100x PySastrawi cold is {100 * plain:,.0f} docs/s ({1e6 / (100 * plain):.1f} us a "
          f"text); str.split() alone, no other work, gives {split_only:,.0f} docs/s "
          f"({1e6 / split_only:.1f} us) = {split_only / plain:,.0f}x PySastrawi cold")
    if args.typo_words:
        unseen_word_cost(texts, args.typo_words, args.repeats)


def unseen_word_cost(texts, n_words: int, repeats: int) -> None:
    """What a cache miss costs: stemming typo'd corpus words (new to any cache) with plain
    PySastrawi and with the accelerated stemmer the Preprocessor uses, a fresh stemmer per pass,
    passes interleaved; the stems are compared too."""
    import random
    import re

    from batch import _typo  # bench/batch.py: the same typos its backlog gets

    from lapor_nlp.text.stem import accelerate, create_sastrawi_stemmer

    rng = random.Random(1)
    vocab = sorted({w for t in texts for w in re.findall(r"[a-z]{4,}", t.lower())})
    words = [_typo(w, rng) for w in rng.sample(vocab, min(n_words, len(vocab)))]

    def fast():
        stemmer = create_sastrawi_stemmer()
        accelerate(stemmer)
        return stemmer

    costs: dict[str, list[float]] = {"plain": [], "accelerated": []}
    stems = {}
    for _ in range(max(1, min(repeats, 3))):
        for name, make in (("plain", create_sastrawi_stemmer), ("accelerated", fast)):
            stemmer = make()
            t = time.perf_counter()
            stems[name] = [stemmer.stem(w) for w in words]
            costs[name].append((time.perf_counter() - t) / len(words) * 1e6)
    p, f = median(costs["plain"]), median(costs["accelerated"])
    print(f"stemming an unseen (typo'd) word, {len(words):,} words: PySastrawi {p:,.0f} us, "
          f"accelerated {f:,.0f} us ({p / f:.1f}x); same stems: {stems['plain'] == stems['accelerated']}")


if __name__ == "__main__":
    main()
