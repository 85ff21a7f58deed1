"""The :class:`Preprocessor`: named stages composed into one fast tokenizer.

Stages, in order (``Preprocessor.pipe_names``)::

    mask_pii -> clean -> tokenize -> normalize -> stopwords -> stem

``mask_pii`` runs first, on the raw text: ``clean`` strips emails and URLs and ``tokenize`` splits
punctuation, which would break the numbers that the masker must see (and masking first is the
privacy-safe order). Each stage is a plain callable, usable and testable alone
(:meth:`Preprocessor.get_stage`), and any can be switched off or replaced.

Speed: apart from the text-wide steps (:func:`~lapor_nlp.text.clean.prepare`: Unicode, case, HTML),
``clean``, ``tokenize``, ``normalize``, ``stopwords`` and ``stem`` act on one whitespace-separated
chunk at a time, independent of its neighbours. The Preprocessor therefore runs them once per
distinct chunk ("rusak,tolong", "bangettt", "anak2") and caches the resulting tokens in a bounded
dict. A warm Preprocessor costs one digit scan (PII), one ``split()`` and one dict lookup per
chunk (all of a text's chunks fetched by one ``itemgetter`` call, in C).
``tests/test_text_pipeline.py`` checks that this fast path equals running the stages one after
another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..errors import InputTypeError, InputValueError
from .clean import TOKEN_PATTERN, clean, clean_prepared, prepare, split_token, tokenize
from .normalize import Normalizer
from .pii import PLACEHOLDERS, mask_pii
from .stem import SastrawiStemmer, _evict_oldest
from .stopwords import StopwordFilter

PIPE_NAMES = ("mask_pii", "clean", "tokenize", "normalize", "stopwords", "stem")
# Dropped unless keep_numbers: a number, or a token holding 5+ digits in a row ("telp0215551234",
# "transfer1234567890"): not a word, and possibly a number the PII scan did not recognise.
_LONG_DIGITS = re.compile(r"\d{5}")
_PLACEHOLDER_SET = frozenset(PLACEHOLDERS)


class Preprocessor:
    """Turn complaint texts into tokens for a classifier.

    Parameters are plain constructor arguments (scikit-learn manners):

    mask_pii, normalize, stopwords, stem:
        switch a stage on or off.
    lexicon_files:
        extra slang lexicons (``informal<TAB>standard``) merged over the bundled one.
    stopword_files:
        extra stopword lists (one word a line).
    keep_numbers:
        keep tokens made only of digits (off: "rt 03" keeps "rt", drops "03"), and tokens with
        five or more digits in a row ("telp0215551234"), which are dropped when off.
    min_token_len:
        drop tokens shorter than this (after stemming).
    cache_size:
        bound on the per-word stem cache and on the per-token cache.
    stem_cache:
        ``{word: stem}`` to start from (what :meth:`export_stem_cache` returned).

    >>> Preprocessor().tokens("Lampu PJU mati sdh 3 hari, tlg diperbaiki")  # doctest: +SKIP
    ['lampu', 'terang', 'jalan', 'umum', 'mati', 'baik']
    """

    def __init__(
        self,
        *,
        mask_pii: bool = True,
        normalize: bool = True,
        stopwords: bool = True,
        stem: bool = True,
        lexicon_files: Iterable[str | Path] = (),
        stopword_files: Iterable[str | Path] = (),
        keep_numbers: bool = False,
        min_token_len: int = 2,
        cache_size: int = 200_000,
        stem_cache: Mapping[str, str] | None = None,
    ):
        self.mask_pii = mask_pii
        self.normalize = normalize
        self.stopwords = stopwords
        self.stem = stem
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InputValueError(f"cache_size must be a whole number >= 0, got {cache_size!r}")
        if isinstance(min_token_len, bool) or not isinstance(min_token_len, int) or min_token_len < 0:
            raise InputValueError(f"min_token_len must be a whole number >= 0, got {min_token_len!r}")
        self.lexicon_files = _paths(lexicon_files)
        self.stopword_files = _paths(stopword_files)
        self.keep_numbers = keep_numbers
        self.min_token_len = min_token_len
        self.cache_size = cache_size
        self._normalizer = Normalizer.from_files(*self.lexicon_files) if normalize else None
        self._stopwords = StopwordFilter(extra_files=self.stopword_files) if stopwords else None
        self._stemmer = SastrawiStemmer(cache_size=cache_size, cache=stem_cache) if stem else None
        # chunk -> (tokens, plain words), and chunk -> tokens alone (so tokens() needs no
        # unpacking on its hot path)
        self._token_cache: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._tokens_of: dict[str, tuple[str, ...]] = {}

    # -- the stages, each a plain callable --------------------------------------------------------
    @property
    def pipe_names(self) -> tuple[str, ...]:
        on = {"mask_pii": self.mask_pii, "normalize": self.normalize,
              "stopwords": self.stopwords, "stem": self.stem}
        return tuple(n for n in PIPE_NAMES if on.get(n, True))

    def get_stage(self, name: str) -> Callable[[Any], Any]:
        """The callable behind a stage name (str -> str for the first two, tokens -> tokens after)."""
        stages: dict[str, Callable[[Any], Any]] = {
            # Numbers only, as the pipeline masks (mask_pii's people=False; see mask_pii).
            "mask_pii": partial(mask_pii, people=False),
            "clean": clean,
            "tokenize": tokenize,
            "normalize": _taking_tokens("normalize", self._normalizer or list),
            "stopwords": _taking_tokens("stopwords", self._stopwords or list),
            "stem": _taking_tokens("stem", self._stem_tokens),
        }
        if name not in stages:
            raise KeyError(f"unknown stage {name!r}; stages are {', '.join(PIPE_NAMES)}")
        return stages[name]

    def _stem_tokens(self, tokens: Iterable[str]) -> list[str]:
        """Stage ``stem`` plus the final filters (placeholders pass, empty/short/digit tokens go)."""
        out = []
        for t in tokens:
            if t in _PLACEHOLDER_SET:
                out.append(t)
                continue
            s = self._stemmer.word(t) if self._stemmer is not None else t
            if len(s) >= self.min_token_len and (
                    self.keep_numbers or not (s.isdigit() or _LONG_DIGITS.search(s))):
                out.append(s)
        return out

    def stages(self, text: str) -> dict[str, Any]:
        """Each stage's output for one text, keyed by :attr:`pipe_names` (``lapor-nlp preprocess``).

        The last entry equals :meth:`tokens` (the final length/digit filter is applied with it).
        """
        result: dict[str, Any] = {}
        value: Any = text
        for name in self.pipe_names:
            if name == "stopwords":
                value = [t for t in value if t in _PLACEHOLDER_SET or self._stopwords.keeps(t)]
            elif name == "normalize":
                value = [x for t in value for x in
                         ((t,) if t in _PLACEHOLDER_SET else self._normalizer.token(t))]
            else:
                value = self.get_stage(name)(value)
            result[name] = value
        if not self.stem:
            result[name] = self._stem_tokens(value)
        return result

    # -- the fast path ----------------------------------------------------------------------------
    def _process_raw_token(self, raw: str) -> tuple[str, ...]:
        if raw[0] != "[" and "-" not in raw:
            # The common case, a raw token without a hyphen: split_token gives (raw,), and it is
            # no placeholder (those start with "["). Then normalize, stopwords and stem as in the
            # general loop below, without its intermediate lists (exact: a word the stopword
            # list drops yields nothing; _stem_tokens' filters are applied as there, and an ASCII
            # stem of letters only is neither a number nor holds 5 digits).
            norm, stop = self._normalizer, self._stopwords
            words = norm.lexicon.get(raw, (raw,)) if norm is not None else (raw,)
            if len(words) != 1:
                if stop is not None:
                    words = [w for w in words if w not in stop.words]
                return tuple(self._stem_tokens(words))
            w = words[0]
            if stop is not None and w in stop.words:
                return ()
            if w in _PLACEHOLDER_SET:  # passes, as in _stem_tokens
                return (w,)
            s = self._stemmer.word(w) if self._stemmer is not None else w
            if len(s) >= self.min_token_len and (
                    self.keep_numbers or (s.isalpha() and s.isascii())
                    or not (s.isdigit() or _LONG_DIGITS.search(s))):
                return (s,)
            return ()
        out: list[str] = []
        for tok in split_token(raw):
            if tok in _PLACEHOLDER_SET:
                out.append(tok)
                continue
            words = self._normalizer.token(tok) if self._normalizer is not None else (tok,)
            if self._stopwords is not None:
                words = [w for w in words if self._stopwords.keeps(w)]
            out.extend(self._stem_tokens(words))
        return tuple(out)

    def _process_chunk(self, chunk: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(final tokens, plain words) of one whitespace-separated chunk."""
        text = clean_prepared(chunk)  # chunks of a prepared text
        if text.isalpha() and text.isascii() and text.islower():
            # Cleaned to [a-z]+ (nearly half of a backlog's new chunks): TOKEN_PATTERN finds
            # one raw token, the whole text (no "[" for a placeholder, no hyphen), whose plain
            # word is itself: what the loop below gives, without the pattern and the lists.
            return self._process_raw_token(text), (text,)
        out: list[str] = []
        words: list[str] = []
        for raw in TOKEN_PATTERN.findall(text):
            out.extend(self._process_raw_token(raw))
            if raw[0] != "[":
                words.extend(raw.split("-"))
        return tuple(out), tuple(words)

    def _entry(self, chunk: str):
        entry = self._token_cache.get(chunk)
        if entry is not None:
            return entry
        entry = self._process_chunk(chunk)
        if self.cache_size:
            cache, tokens_of = self._token_cache, self._tokens_of
            _evict_oldest(cache, self.cache_size)
            _evict_oldest(tokens_of, self.cache_size)
            cache[chunk] = entry
            tokens_of[chunk] = entry[0]
        return entry

    def tokens(self, text: str) -> list[str]:
        """The final tokens of one text (``[]`` for empty, whitespace-only or emoji-only text)."""
        if self.mask_pii:
            text = mask_pii(text, people=False)  # numbers only: see mask_pii
        chunks = prepare(text).split()
        if len(chunks) > 1:
            try:  # warm path: every chunk seen before, all fetched by one call in C
                entries = itemgetter(*chunks)(self._tokens_of)
            except KeyError:
                pass
            else:
                out: list[str] = []
                for toks in entries:
                    out += toks
                return out
        return [t for chunk in chunks for t in self._entry(chunk)[0]]

    def analyze(self, text: str) -> tuple[list[str], list[str]]:
        """(final tokens, plain lowercase words before normalisation): the router matches place
        names on the words, so both come from one pass."""
        # The hot path of every prediction. Warm, one itemgetter call fetches every chunk's entry
        # in C, then one loop joins them: fewer interpreter steps than a lookup per chunk
        # (bench/preprocess.py compares the variants).
        if self.mask_pii:
            text = mask_pii(text, people=False)  # numbers only: see mask_pii
        chunks = prepare(text).split()
        out: list[str] = []
        words: list[str] = []
        try:
            entries = itemgetter(*chunks)(self._token_cache) if len(chunks) > 1 else ()
        except KeyError:  # a chunk not seen before: the same loop with the slow path
            entries = ()
        if entries:
            for toks, ws in entries:
                out += toks
                words += ws
            return out, words
        get = self._token_cache.get
        for chunk in chunks:
            toks, ws = get(chunk) or self._entry(chunk)
            out += toks
            words += ws
        return out, words

    __call__ = tokens  # so that TfidfVectorizer(analyzer=Preprocessor()) works

    def tokens_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """:meth:`tokens` for many texts; a bare ``str`` is refused (it is not a batch)."""
        if isinstance(texts, (str, bytes)):
            raise InputTypeError("tokens_batch() takes an iterable of texts, not a single str")
        if not isinstance(texts, Iterable):
            raise InputTypeError(f"tokens_batch() takes an iterable of texts, got {type(texts).__name__}")
        tokens = self.tokens
        return [tokens(t) for t in texts]

    # -- persistence of what was learnt while running ---------------------------------------------
    def export_stem_cache(self) -> dict[str, str]:
        return self._stemmer.export_cache() if self._stemmer is not None else {}

    def clear_cache(self) -> None:
        """Empty the token and stem caches (to measure a cold start)."""
        self._token_cache.clear()
        self._tokens_of.clear()
        if self._stemmer is not None:
            self._stemmer.clear_cache()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn manners: ``clone()`` and grid searches over a
        ``TfidfVectorizer(analyzer=Preprocessor())`` work; ``deep`` has nothing to descend into)."""
        return {
            "mask_pii": self.mask_pii, "normalize": self.normalize, "stopwords": self.stopwords,
            "stem": self.stem, "lexicon_files": self.lexicon_files,
            "stopword_files": self.stopword_files, "keep_numbers": self.keep_numbers,
            "min_token_len": self.min_token_len, "cache_size": self.cache_size,
        }

    def set_params(self, **params) -> "Preprocessor":
        """Change parameters (the stages are rebuilt and the caches emptied); returns self."""
        unknown = set(params) - set(self.get_params())
        if unknown:
            raise InputValueError(f"unknown Preprocessor parameter(s): {', '.join(sorted(unknown))}")
        self.__init__(**{**self.get_params(), **params})
        return self

    def __getstate__(self):
        # The Sastrawi stemmer holds a 30k-word dictionary: rebuild it on unpickling instead of
        # shipping it, but keep the stem cache (that is the vocabulary's knowledge).
        state = self.__dict__.copy()
        state["_stem_cache_snapshot"] = self.export_stem_cache()
        state["_stemmer"] = None
        state["_token_cache"] = {}
        state["_tokens_of"] = {}
        return state

    def __setstate__(self, state):
        snapshot = state.pop("_stem_cache_snapshot", {})
        state.setdefault("_tokens_of", {})  # a Preprocessor pickled by an older version
        self.__dict__.update(state)
        if self.stem:
            self._stemmer = SastrawiStemmer(cache_size=self.cache_size, cache=snapshot)


def _paths(files) -> tuple[str, ...]:
    """File parameters as a tuple of str (kept as the same object when it already is one, so that
    scikit-learn's ``clone`` sees the parameter unchanged); one path alone is one file, not a
    sequence of characters."""
    if isinstance(files, tuple) and all(isinstance(f, str) for f in files):
        return files
    if isinstance(files, (str, Path)):
        return (str(files),)
    return tuple(str(f) for f in files)


def _taking_tokens(name: str, stage: Callable[[list[str]], list[str]]) -> Callable[[Any], list[str]]:
    """A token stage that refuses what is not a list of str with a typed error (a bare str would
    otherwise be taken letter by letter, and None or bytes fail inside Sastrawi)."""
    def run(tokens):
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
            raise InputTypeError(f"stage {name!r} takes a list of tokens, got {type(tokens).__name__}")
        tokens = list(tokens)
        for t in tokens:
            if type(t) is not str:
                raise InputTypeError(f"stage {name!r} takes tokens that are str, got {type(t).__name__}")
        return stage(tokens)
    return run


# Characters with which a text may hold personal data for mask_pii: a digit, "@", or anything
# non-ASCII (normalised before the scan). Every rule of lapor_nlp.text.pii starts at a digit or an
# "@", and an ASCII text is not normalised, so a text without these comes back unchanged.
_PII_CHARS = re.compile(r"[^\x00-\x2f\x3a-\x3f\x41-\x7f]")


def may_hold_pii(text: str) -> bool:
    """False when :func:`~lapor_nlp.text.pii.mask_pii` cannot change ``text`` (ASCII, no digit,
    no "@"): the router's fast path masks only the others."""
    return _PII_CHARS.search(text) is not None
