"""The stems of common Indonesian words, shipped as data so that a cold backlog does not pay
PySastrawi's 20-60 microseconds for each of them.

``datasets/lexicons/stem_common.tsv`` holds, per line, a stem and the words PySastrawi stems to it
(``stem<TAB>word word ...``): the roots that the project's corpus uses most, each with its affixed
forms (meN-, di-, ber-, ter-, peN-, ke-, se-, per- with -kan, -an, -i, -nya, -lah, -ku, -mu and
their common combinations). The file is made by ``python -m lapor_nlp.text.stem_common`` with the
plain PySastrawi stemmer, so every entry is PySastrawi's own answer; its header records the
sha256 of the PySastrawi dictionary it was made with, and :func:`common_stems` uses the file only
when the installed dictionary is that one (another dictionary could stem a word otherwise: the
table is then left out, and stems are computed as before). ``tests/test_stem_common.py`` checks a
random sample against PySastrawi.

``LAPOR_NLP_STEM_COMMON=0`` leaves the table out (to measure what it saves).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

from ..errors import ResourceError
from ..resources import dataset_path, datasets_dir

log = logging.getLogger("lapor_nlp")

FILE = ("lexicons", "stem_common.tsv")
_HASH_KEY = "# pysastrawi-dictionary-sha256:"

#: (prefix, suffixes) pairs: the affixations that complaint texts use, as measured on a backlog's
#: stem-cache misses (the most frequent first); "meN"/"peN" stand for the prefix with its nasal.
COMBOS = (
    ("", "nya an kan i annya lah ku mu kannya inya"),
    ("di", " kan i an nya kannya inya"),
    ("ber", " an kan nya"),
    ("ter", " nya kan i"),
    ("ke", " an annya nya"),
    ("se", " nya an"),
    ("per", " an kan annya i"),
    ("meN", " kan i nya kannya"),
    ("peN", " an annya"),
    ("memper", " kan i"),
    ("diper", " kan i"),
)


def dictionary_hash(words) -> str:
    """sha256 of a stemmer dictionary (its words sorted, one a line)."""
    return hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def common_stems() -> dict[str, str]:
    """``{word: stem}`` from the shipped table, shared by every stemmer in the process; ``{}`` when
    it is switched off, absent, or was made with another PySastrawi dictionary."""
    if os.environ.get("LAPOR_NLP_STEM_COMMON", "1").strip().lower() in ("0", "false", "no", "off"):
        return {}
    try:
        path = dataset_path(*FILE)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ResourceError):  # a missing table only costs speed
        return {}
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    want = next((ln[len(_HASH_KEY):].strip() for ln in text.splitlines()[:5] if ln.startswith(_HASH_KEY)), None)
    if want != dictionary_hash(StemmerFactory().get_words()):
        log.info("%s was made with another PySastrawi dictionary; it is not used", path)
        return {}
    table: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        stem, _, words = line.partition("\t")
        for w in words.split(" "):
            table[w] = stem
    return table


# -- making the table -----------------------------------------------------------------------------
def _nasal(root: str, p: str) -> list[str]:
    """meN-/peN- before ``root`` (``p`` is "me" or "pe"): the standard assimilations, and the
    unassimilated form where Indonesian keeps both (mempunyai, mentaati)."""
    c = root[0]
    if c in "lrwymn" or root.startswith(("ny", "ng")):
        return [p + root]
    if c in "bfv":
        return [p + "m" + root]
    if c == "p":
        return [p + "m" + root[1:], p + "m" + root]
    if c in "dcjz":
        return [p + "n" + root]
    if c == "t":
        return [p + "n" + root[1:], p + "n" + root]
    if c == "s":
        return [p + "ny" + root[1:]]
    if c == "k":
        return [p + "ng" + root[1:], p + "ng" + root]
    if c in "gh" or c in "aeiou":
        return [p + "ng" + root] + ([p + "nge" + root] if len(root) <= 3 else [])
    return [p + root]


def affixed_forms(root: str) -> set[str]:
    """``root`` and the words made from it with :data:`COMBOS`."""
    out = {root}
    for prefix, suffixes in COMBOS:
        if prefix == "meN":
            starts = _nasal(root, "me")
        elif prefix == "peN":
            starts = _nasal(root, "pe")
        elif prefix == "ber" and root.startswith("r"):
            starts = ["be" + root]
        else:
            starts = [prefix + root]
        for start in starts:
            for suffix in suffixes.split(" "):
                out.add(start + suffix)
    return out


def corpus_roots(min_count: int, stem) -> list[str]:
    """The dictionary roots that the words of the bundled corpus stem to at least ``min_count``
    times, most frequent first."""
    import json

    words: Counter = Counter()
    for path in sorted((datasets_dir() / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words.update(re.findall(r"[a-z]+", str(json.loads(line).get("text", "")).lower()))
    roots: Counter = Counter()
    for w, n in words.items():
        roots[stem(w)] += n
    return [r for r, n in roots.most_common() if n >= min_count]


def make_table(min_count: int = 3) -> tuple[str, dict[str, list[str]]]:
    """(dictionary hash, ``{stem: [words]}``): the affixed forms of the corpus's frequent roots,
    each stemmed by plain PySastrawi (not the accelerated stemmer: the table must not depend on it)."""
    from ._sastrawi import create_sastrawi_stemmer

    plain = create_sastrawi_stemmer()
    dictionary = plain.dictionary.words
    roots = [r for r in corpus_roots(min_count, plain.stem) if r in dictionary and r.isalpha() and len(r) >= 3]
    forms = set()
    for r in roots:
        forms |= affixed_forms(r)
    by_stem: dict[str, list[str]] = {}
    for w in sorted(forms):
        by_stem.setdefault(plain.stem(w), []).append(w)
    return dictionary_hash(dictionary), by_stem


def write_table(path: Path, min_count: int = 3) -> int:
    digest, by_stem = make_table(min_count)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("# Stems of common Indonesian words, made by `python -m lapor_nlp.text.stem_common` with plain\n"
                 f"# PySastrawi (stem<TAB>words); min_count={min_count}. Do not edit: regenerate.\n"
                 f"{_HASH_KEY} {digest}\n")
        for stem in sorted(by_stem):
            fh.write(f"{stem}\t{' '.join(by_stem[stem])}\n")
    return sum(map(len, by_stem.values()))


if __name__ == "__main__":  # pragma: no cover - run by hand when PySastrawi or the corpus changes
    import argparse

    ap = argparse.ArgumentParser(description="regenerate datasets/lexicons/stem_common.tsv")
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("-o", "--output", default=None)
    a = ap.parse_args()
    out = Path(a.output) if a.output else datasets_dir().joinpath(*FILE)
    n = write_table(out, a.min_count)
    print(f"{out}: {n:,} words", file=sys.stderr)
