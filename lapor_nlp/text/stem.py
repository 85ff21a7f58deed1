"""Stage ``stem``: Sastrawi stemming with a bounded per-word cache that a model can carry.

Stemming an unseen word costs tens of microseconds even in PySastrawi 1.2.1, while a complaint
corpus has a small vocabulary, so every result is cached per word. The cache is bounded
(``cache_size``; oldest entries are evicted first) and can be exported and loaded, so that a trained
model ships the stems of its vocabulary and starts warm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import DependencyError

_OLD_SASTRAWI_HELP = (
    "the installed 'Sastrawi' package is the abandoned 'sastrawi' 1.0.1 distribution, whose "
    "dictionary is a Python list (about 15 ms per unseen word). Run: pip uninstall -y sastrawi && "
    "pip install 'PySastrawi>=1.2.1'"
)


def create_sastrawi_stemmer():
    """The plain (uncached) PySastrawi stemmer; refuses the old ``sastrawi`` 1.0.1 distribution."""
    try:
        from Sastrawi.Dictionary.ArrayDictionary import ArrayDictionary
        from Sastrawi.Stemmer.Stemmer import Stemmer
        from Sastrawi.Stemmer.StemmerFactory import StemmerFactory
    except ImportError as exc:
        raise DependencyError(
            f"PySastrawi is not installed ({exc}). Run: pip install 'PySastrawi>=1.2.1'"
        ) from None
    if isinstance(ArrayDictionary().words, list):
        raise DependencyError(_OLD_SASTRAWI_HELP)
    return Stemmer(ArrayDictionary(StemmerFactory().get_words()))


def _evict_oldest(cache: dict, size: int) -> None:
    """Make room for one entry in a FIFO cache bounded at ``size``. Threads may race to evict the
    same oldest key: ``pop`` with a default and a ``while`` keep that from failing or from
    letting the cache grow past its bound."""
    while len(cache) >= size:
        try:
            cache.pop(next(iter(cache)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
            break


class SastrawiStemmer:
    """Stem tokens with Sastrawi, caching each word's stem (at most ``cache_size`` words)."""

    def __init__(self, cache_size: int = 200_000, cache: Mapping[str, str] | None = None):
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.cache_size = cache_size
        self._stemmer = create_sastrawi_stemmer()
        self._cache: dict[str, str] = {}
        if cache:
            self.load_cache(cache)

    def word(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            # stem_word() is what Stemmer.stem() applies to each word once the text is normalised;
            # the public stem() is used so that results equal plain PySastrawi's exactly.
            stem = self._stemmer.stem(word)
            if self.cache_size:
                _evict_oldest(self._cache, self.cache_size)
                self._cache[word] = stem
        return stem

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        return [self.word(t) for t in tokens]

    def export_cache(self) -> dict[str, str]:
        """A copy of the cache, to be saved with a model (``{word: stem}``)."""
        return dict(self._cache)

    def load_cache(self, cache: Mapping[str, str]) -> None:
        for w, s in cache.items():
            if len(self._cache) >= self.cache_size:
                break
            self._cache[str(w)] = str(s)

    def __len__(self) -> int:
        return len(self._cache)
