"""Stage ``stopwords``: drop function words and complaint greetings, but never negations.

Sastrawi's list contains "tidak", "belum", "bukan", "jangan": dropping them turns "air tidak
mengalir" into "air mengalir", the opposite complaint. They are always kept (``KEEP``), whatever
list the user passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..resources import dataset_path, read_lines

#: Words that carry the complaint and must survive any stopword list.
KEEP = frozenset({"tidak", "belum", "bukan", "jangan", "tanpa", "tak", "kurang", "rusak", "mati"})


def sastrawi_stopwords() -> list[str]:
    from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

    return list(StopWordRemoverFactory().get_stop_words())


def default_stopwords() -> frozenset[str]:
    """Sastrawi's list plus this project's greetings and fillers, less :data:`KEEP`."""
    extra = read_lines(dataset_path("lexicons", "stopwords_extra.txt"))
    return frozenset(w.lower() for w in [*sastrawi_stopwords(), *extra]) - KEEP


class StopwordFilter:
    """Remove stopwords from a token list; placeholders and :data:`KEEP` words always stay."""

    def __init__(self, words: Iterable[str] | None = None, extra_files: Iterable[str | Path] = ()):
        base = set(default_stopwords() if words is None else (w.lower() for w in words))
        for f in extra_files:
            base.update(w.lower() for w in read_lines(Path(f)))
        self.words = frozenset(base - KEEP)

    def keeps(self, tok: str) -> bool:
        return tok not in self.words

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        words = self.words
        return [t for t in tokens if t not in words]
