"""How well ``mask_pii(text)`` (``people=True``, the default) masks names and home addresses on real complaints.

On the Surabaya 2022 texts (../shared/data, never copied into the repo) it counts, for each cue that
introduces a name or an address ("nama saya", "Nama :", "atas nama", "a.n.", "Bapak/Ibu/Sdr." before
a capitalised word, "alamat", a street with a house number, "RT 03 RW 05"):

- how many cue occurrences there are and how many are followed by a mask (recall, by cue);
- how many masked words are common Indonesian words (their root is in Sastrawi's dictionary and
  they are written in lower case): the likely wrong masks, with the 25 most frequent such words;
- how many unmasked cues are followed by a word that is neither a known Indonesian word nor a title
  (a possible missed name or address);
- the shape of what follows a cue that got no mask ("Xx" a capitalised word, "x" a known lower-case
  word, "u" an unknown lower-case word, "9" a number), to read the misses without reading a name.

It prints figures and single common words only, never a complaint's text.

    python bench/pii_people.py
"""

from __future__ import annotations

import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import surabaya_rows  # noqa: E402

CUES = {
    "nama (strong)": r"(?i:\b(?:nama\s+(?:saya|lengkap|pelapor|anak\s+saya)|nama\s*:|atas\s+nama|a\s?\.\s?n\s?\.))",
    "honorific + Capital": r"\b(?:[Bb]apak|[Bb]pk|[Pp]ak|[Ii]bu|[Bb]u|[Ss]dri?|[Ss]audara)\.?\s+(?=[A-Z][a-z])",
    "alamat": r"(?i:\balamat\b)",
    "street + house no.": r"(?i:\b(?:jl|jln|jalan|gg|gang)\b\.?\s*[^\n.;]{1,40}?\b(?:no|nomor)\b\.?\s*\d)",
    "RT/RW": r"(?i:\brt\s*\.?\s*\d{1,3}\s*[/ ,\-]\s*(?:rw\s*\.?\s*)?\d{1,3}\b)",
}
_WORDS = re.compile(r"[A-Za-z]+|\d+")


def main() -> None:
    from lapor_nlp.text import mask_pii
    from lapor_nlp.text.pii import _ADDRESS_WORDS, _NOT_NAME, _known_word, _mask_numbers, _people_spans

    rows = surabaya_rows()
    texts = [_mask_numbers(r["text"]) for r in rows]
    found = collections.Counter()
    masked_after = collections.Counter()
    miss_shapes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    spans_by_kind = collections.Counter()
    masked_words = 0
    wrong = {"[NAMA]": collections.Counter(), "[ALAMAT]": collections.Counter()}
    possible_miss = collections.Counter()
    texts_with_mask = 0
    for text in texts:
        spans = _people_spans(text)
        if spans:
            texts_with_mask += 1
        for start, end, label in spans:
            spans_by_kind[label] += 1
            for w in _WORDS.findall(text[start:end]):
                masked_words += 1
                if w.islower() and _known_word(w) and w not in _ADDRESS_WORDS:
                    wrong[label][w] += 1
        for kind, pattern in CUES.items():
            for m in re.finditer(pattern, text):
                found[kind] += 1
                at = m.end() if kind in ("nama (strong)", "honorific + Capital", "alamat") else m.start()
                if any(s <= at + 3 and e > at for s, e, _ in spans) or any(
                        s >= m.start() and s <= m.end() + 12 for s, _e, _ in spans):
                    masked_after[kind] += 1
                else:
                    nxt = _WORDS.findall(text[m.end():m.end() + 40])[:3]
                    if nxt and not nxt[0].isdigit() and nxt[0].lower() not in _NOT_NAME \
                            and not _known_word(nxt[0].lower()):
                        possible_miss[kind] += 1
                    shape = " ".join("9" if w.isdigit() else "Xx" if w[0].isupper()
                                     else ("x" if _known_word(w.lower()) else "u") for w in nxt)
                    miss_shapes[kind][shape or "(end)"] += 1
    print(f"texts: {len(texts)}; texts with a masked name or address: {texts_with_mask}")
    print(f"spans masked: {dict(spans_by_kind)}; words masked: {masked_words}")
    print("\ncue occurrences followed by a mask (recall by cue):")
    for kind in CUES:
        n, k = found[kind], masked_after[kind]
        print(f"  {kind:22s} {k:5d} / {n:5d}  ({k / max(n, 1):.0%}); unmasked and followed by an "
              f"unknown word (a possible missed name or address): {possible_miss[kind]}")
        for shape, c in miss_shapes[kind].most_common(4):
            print(f"      missed, next words shaped {shape!r}: {c}")
    for label, words in wrong.items():
        n_wrong = sum(words.values())
        print(f"\n{label}: masked lower-case common words (an upper bound of wrong masks: street names such "
              f"as 'kapas' or 'benteng' are common words too): {n_wrong} of {masked_words} masked words "
              f"({n_wrong / max(masked_words, 1):.1%})")
        if label == "[ALAMAT]":  # a name's words are not printed: many given names are common words
            print("  most frequent:", ", ".join(f"{w} {c}" for w, c in words.most_common(20)))
    # The unmasked example of the docs, as a check that the bench runs the function users call.
    assert mask_pii("Nama : Slamet Budiono") == "Nama : [NAMA]"


if __name__ == "__main__":
    main()
