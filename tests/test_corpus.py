"""The corpus this project writes: label minimums, valid labels and places, diversity."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations

import pytest

from lapor_nlp.resources import dataset_path

MIN_PER_AGENCY = 40  # the types added in 0.4 have 40-45 each; the older ones 50 or more
MIN_PER_TOPIC = 60


@pytest.fixture(scope="module")
def corpus():
    rows = []
    for p in sorted(dataset_path("corpus").glob("*.jsonl")):
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rows.append((f"{p.name}:{n}", json.loads(line)))
    return rows


@pytest.fixture(scope="module")
def taxonomy():
    tax = dataset_path("taxonomy")
    topics = {t["code"] for t in json.loads((tax / "topics.json").read_text())["topics"]}
    agencies = {a["code"] for a in json.loads((tax / "agency_types.json").read_text())["agency_types"]}
    return topics, agencies


def test_size_and_valid_labels(corpus, taxonomy):
    topics, agencies = taxonomy
    assert len(corpus) >= 3000
    bad = [(where, r.get("topic"), r.get("agency")) for where, r in corpus
           if r.get("topic") not in topics or r.get("agency") not in agencies or not r.get("text", "").strip()]
    assert bad == []
    ids = Counter(r["id"] for _, r in corpus)
    assert [i for i, n in ids.items() if n > 1] == []


def test_label_minimums(corpus, taxonomy):
    topics, agencies = taxonomy
    a = Counter(r["agency"] for _, r in corpus)
    t = Counter(r["topic"] for _, r in corpus)
    assert {k: a[k] for k in agencies if a[k] < MIN_PER_AGENCY} == {}
    assert len(agencies) >= 110
    covered = {k for k in topics if t[k]}
    assert len(covered) >= 20
    assert {k: t[k] for k in covered if t[k] < MIN_PER_TOPIC} == {}


def test_many_complaints_name_a_place(corpus):
    named = sum(1 for _, r in corpus if any(r.get(k) for k in ("regency", "district", "village", "province")))
    assert named / len(corpus) >= 0.4


def _shingles(text: str, n: int = 5) -> frozenset:
    words = text.lower().split()
    return frozenset(tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1)))


def test_near_duplicates_are_rare(corpus):
    """Share of near-duplicate pairs (word 5-gram Jaccard >= 0.8) below 2%, counted over the
    complaints that have any near-duplicate (pairs are found through shared 5-grams)."""
    sh = [_shingles(r["text"]) for _, r in corpus]
    index: dict = {}
    for i, s in enumerate(sh):
        for g in s:
            index.setdefault(g, []).append(i)
    candidates = set()
    for ids in index.values():
        if 1 < len(ids) < 200:
            candidates.update(combinations(ids, 2))
    near = {(i, j) for i, j in candidates if len(sh[i] & sh[j]) / len(sh[i] | sh[j]) >= 0.8}
    involved = {i for pair in near for i in pair}
    assert len(involved) / len(corpus) < 0.02, f"{len(near)} near-duplicate pairs"


def test_no_real_pii_shape_left_unmaskable(corpus):
    """The fake PII in the corpus is there for the masker: everything it plants gets masked."""
    from lapor_nlp.text import mask_pii
    import re

    sixteen = re.compile(r"(?<!\d)\d(?:[ .\-]?\d){15}(?!\d)")
    email = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")
    for where, r in corpus:
        masked = mask_pii(r["text"])
        assert not sixteen.search(masked), where
        assert not email.search(masked), where
