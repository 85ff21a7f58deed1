"""Stage ``stem``: Sastrawi stemming with a bounded per-word cache that a model can carry.

Stemming an unseen word costs 50-400 microseconds even in PySastrawi 1.2.1 (most for typos and
names, which go through every prefix rule), while a complaint corpus has a small vocabulary, so
every result is cached per word, and :func:`accelerate` cuts the cost of a miss 2-3x without
changing any stem. The cache is bounded (``cache_size``; oldest entries are evicted first) and can
be exported and loaded, so that a trained model ships the stems of its vocabulary and starts warm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

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


def accelerate(stemmer) -> int:
    """Make one PySastrawi ``Stemmer`` faster without changing a single result; returns how many
    of its prefix rules got a first-letter gate.

    Stemming a word Sastrawi has not seen tries its ~60 prefix disambiguation rules again and
    again (about 190 calls per unseen word), each a ``re.match`` of a pattern anchored at the
    start of the word. Most fail on the first letter: a rule for "ber..." cannot match "jlaan".
    Each rule whose method is exactly ``matches = re.match(PATTERN, word); if matches: ...`` is
    gated by the set of letters PATTERN can start with (read from the pattern itself), returning
    None, as the rule would, for any other word. With PySastrawi 1.2.x, the prefix loop also skips
    the visitors none of whose rules accepts the word's first letter (see
    :func:`_skip_idle_visitors`). The dictionary lookup becomes the set's own ``__contains__``.
    Only this stemmer's own objects are changed, not the library. Measured on 6,000 typo'd
    Surabaya words: 240 -> 89 us a word.
    ``tests/test_real_data.py`` and ``tests/test_text_pipeline.py`` compare with plain PySastrawi.
    """
    gated = 0
    gates: dict[int, frozenset] = {}  # id(visitor) -> the first letters its rules accept
    provider = stemmer.visitor_provider
    known_visit = _known_prefix_visit()
    for visitor in provider.get_prefix_visitors() + provider.get_visitors():
        rules = getattr(visitor, "disambiguators", None)
        if not rules:
            continue
        firsts = []
        for rule in rules:
            first = _first_letters(type(rule))
            firsts.append(first)
            if first is not None:
                rule.disambiguate = _gate(rule.disambiguate, first)
                gated += 1
        if known_visit is not None and type(visitor).visit is known_visit \
                and all(f is not None for f in firsts):
            union = frozenset().union(*firsts)
            visitor.visit = _prefix_visit(visitor, union)
            gates[id(visitor)] = union
    words = stemmer.dictionary.words
    if isinstance(words, (set, frozenset, dict)):
        stemmer.dictionary.contains = words.__contains__
    if gates:
        _skip_idle_visitors(stemmer, gates)
    return gated


def _skip_idle_visitors(stemmer, gates: dict) -> None:
    """Stem with a Context whose prefix loop does not call the visitors that cannot act on the
    word's first letter. In PySastrawi 1.2's loop a visitor that changes the word always records a
    removal, which ends the loop, so the word is the same for every visitor of one pass; a visitor
    that does nothing leaves the three checks after it with the answers they had after the one
    before, so only the first position's checks are kept (exactly the same returns)."""
    from Sastrawi.Stemmer.Context.Context import Context
    from Sastrawi.Stemmer.Stemmer import Stemmer

    if type(stemmer).stem_singular_word is not Stemmer.stem_singular_word:
        return

    class _Context(Context):
        def accept_prefix_visitors(self, visitors):
            removal_count = len(self.removals)
            contains = self.dictionary.contains
            letter = self.current_word[:1]
            checked = False
            for visitor in visitors:
                gate = gates.get(id(visitor))
                if gate is not None and letter not in gate:
                    if checked:
                        continue
                else:
                    visitor.visit(self)
                checked = True
                if contains(self.current_word):
                    return self.current_word
                if self.process_is_stopped:
                    return self.current_word
                if len(self.removals) > removal_count:
                    return None
            return None

    dictionary, provider = stemmer.dictionary, stemmer.visitor_provider

    def stem_singular_word(word):
        context = _Context(word, dictionary, provider)
        context.execute()
        return context.result

    stemmer.stem_singular_word = stem_singular_word


def _known_prefix_visit():
    """PySastrawi's ``AbstractDisambiguatePrefixRule.visit`` when it is the version whose logic
    :func:`_prefix_visit` repeats (1.2.x), else None (no visitor is then replaced)."""
    try:
        from importlib.metadata import version

        from Sastrawi.Stemmer.Context.Visitor.AbstractDisambiguatePrefixRule import (
            AbstractDisambiguatePrefixRule,
        )
        if not version("PySastrawi").startswith("1.2."):
            return None
    except Exception:  # noqa: BLE001 - not installed as PySastrawi, moved: no replacement
        return None
    return AbstractDisambiguatePrefixRule.visit


def _prefix_visit(visitor, first: frozenset):
    """``AbstractDisambiguatePrefixRule.visit`` of PySastrawi 1.2 for one visitor, with two exact
    shortcuts: a word whose first letter none of its rules accepts is left as it is (each rule
    would return None), and the removed part is found with ``str.replace`` instead of compiling
    the result word as a regular expression (the same thing for a word of letters, digits and
    hyphens; anything else still goes through ``re.sub``)."""
    from Sastrawi.Stemmer.Context.Removal import Removal

    rules = visitor.disambiguators

    def visit(context):
        word = context.current_word
        if not word or word[0] not in first:
            return
        result = None
        contains = context.dictionary.contains
        for rule in rules:
            result = rule.disambiguate(word)
            if contains(result):
                break
        if result is None:
            return
        removed = word.replace(result, "", 1) if _PLAIN(result) else re.sub(result, "", word, count=1)
        context.add_removal(Removal(visitor, word, result, removed, "DP"))
        context.current_word = result
    return visit


_PLAIN = re.compile(r"[a-z0-9\-]*").fullmatch  # no character that is special in a pattern


def _gate(disambiguate, first: frozenset):
    def gated(word):
        if not word or word[0] not in first:
            return None
        return disambiguate(word)
    return gated


@lru_cache(maxsize=None)
def _first_letters(rule_class) -> frozenset | None:
    """The letters a word must start with for ``rule_class.disambiguate`` to return anything but
    None, or None when that cannot be read off its code with certainty."""
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(rule_class.disambiguate))
        fn = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 2 or not isinstance(body[0], ast.Assign) or not isinstance(body[1], ast.If):
        return None
    call, branch = body[0].value, body[1]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "match" and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "re" and len(call.args) == 2 and not call.keywords
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
            and isinstance(call.args[1], ast.Name) and call.args[1].id == fn.args.args[1].arg
            and len(body[0].targets) == 1 and isinstance(body[0].targets[0], ast.Name)
            and isinstance(branch.test, ast.Name) and branch.test.id == body[0].targets[0].id
            and not branch.orelse):
        return None
    return _pattern_first_letters(call.args[0].value)


def _pattern_first_letters(pattern: str) -> frozenset | None:
    """The characters a match of ``pattern`` (anchored at the start) can begin with; None when
    unknown (a class with categories or negation, an optional first element, '.')."""
    try:
        from re import _parser as sre  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as sre  # type: ignore[no-redef]
    try:
        items = list(sre.parse(pattern))
    except Exception:  # noqa: BLE001 - any parse failure: no gate
        return None
    while items and items[0][0] is sre.AT:  # ^
        items = items[1:]
    return _first_of(items, sre)


def _first_of(items, sre) -> frozenset | None:
    if not items:
        return None
    op, av = items[0]
    if op is sre.LITERAL:
        return frozenset(chr(av))
    if op is sre.IN:
        chars = set()
        for kind, value in av:
            if kind is sre.LITERAL:
                chars.add(chr(value))
            elif kind is sre.RANGE:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:  # NEGATE, CATEGORY, ...
                return None
        return frozenset(chars)
    if op is sre.SUBPATTERN:
        return _first_of(list(av[-1]), sre)
    if op is sre.BRANCH:
        firsts = [_first_of(list(alt), sre) for alt in av[1]]
        return None if any(f is None for f in firsts) else frozenset().union(*firsts)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1:
        return _first_of(list(av[2]), sre)
    return None


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
        accelerate(self._stemmer)  # same stems, 2-3x faster on unseen words
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
