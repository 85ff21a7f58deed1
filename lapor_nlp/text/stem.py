"""Stage ``stem``: Sastrawi stemming with a bounded per-word cache that a model can carry.

Stemming an unseen word costs 50-400 microseconds even in PySastrawi 1.2.1 (most for typos and
names, which go through every prefix rule), while a complaint corpus has a small vocabulary, so
every result is cached per word, and :func:`accelerate` cuts the cost of a miss about 6x without
changing any stem. The cache is bounded (``cache_size``; oldest entries are evicted first) and can
be exported and loaded, so that a trained model ships the stems of its vocabulary and starts warm.
A word the cache lacks is looked up in a shipped table of common words' stems
(:mod:`lapor_nlp.text.stem_common`) before PySastrawi is asked, and a number is its own stem.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import islice

from ..errors import DependencyError, InputTypeError, InputValueError
from ._sastrawi import create_sastrawi_stemmer  # noqa: F401  (also imported from here)
from .stem_common import common_stems



def accelerate(stemmer) -> int:
    """Make one PySastrawi ``Stemmer`` faster without changing a single result; returns how many
    of its prefix rules got a first-letter gate.

    Stemming a word Sastrawi has not seen tries its ~60 prefix disambiguation rules again and
    again (about 190 calls per unseen word), each a ``re.match`` of a pattern anchored at the
    start of the word. What changes, each exact:

    - Most rules fail on the first letter: a rule for "ber..." cannot match "jlaan". Each rule
      whose method is ``matches = re.match(PATTERN, word); if matches: ...`` (after any
      ``if word == 'belajar': return ...`` exceptions) is gated by the set of letters PATTERN can
      start with (read from the pattern itself), returning None, as the rule would, for any other
      word; the prefix loop calls only the visitors whose rules accept the word's first letter.
    - A pass of the prefix loop is remembered by the word it started from (it is run on the same
      word 2-3 times per unseen word) -- see :func:`_fast_prefix_loop`.
    - The rules' ``re.match(PATTERN, ...)`` use patterns compiled once (:class:`_PrecompiledRe`),
      and the removed affix is found with ``str.replace`` instead of compiling the remaining word
      as a pattern (:func:`_prefix_visit`, :func:`_affix_visit`).
    - A single plain word skips ``stem()``'s text normalisation; the dictionary lookup is the
      set's own ``__contains__``.
    - A plain word whose stem can only be itself (no dictionary word can be left of it by any
      sequence of Sastrawi's removals: :class:`_StemCanDiffer`, a few set lookups) is given back
      without running the rules: most typos in a backlog (82,022 of the 87,487 unseen plain
      words of ``bench/batch.py``'s backlog).

    The replacements of PySastrawi's own loop and visitors apply to PySastrawi 1.2.x only, whose
    code they were checked against. Like any cache of stems, the memo assumes that the stemmer's
    dictionary does not change after this call. Only this stemmer's own objects are changed, not
    the library.
    ``bench/preprocess.py`` measures the speed-up against plain PySastrawi;
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
            _precompile(rule, "disambiguate")
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
    if known_visit is not None:
        for visitor in provider.get_suffix_visitors() + provider.get_prefix_visitors():
            kind = _affix_kind(visitor)
            if kind is not None:
                _precompile(visitor, "remove")
                visitor.visit = _affix_visit(visitor, kind)
    words = stemmer.dictionary.words
    if isinstance(words, (set, frozenset, dict)):
        stemmer.dictionary.contains = words.__contains__
    if gates:
        _fast_prefix_loop(stemmer, gates)
    differs = None
    if known_visit is not None and isinstance(words, (set, frozenset, dict)) \
            and _standard_rules(provider) and _StemCanDiffer.holds_for(words):
        differs = _StemCanDiffer(words)
    _plain_words_skip_normalizing(stemmer, differs)
    return gated


def _plain_words_skip_normalizing(stemmer, differs: "_StemCanDiffer | None" = None) -> None:
    """``Stemmer.stem(text)`` first normalises the text (two ``re.sub`` with flags), splits it and
    checks each word for a hyphen; for one word of ASCII lowercase letters and digits all of that
    returns the word as it is, so it goes straight to ``stem_singular_word`` (exact) -- or, when
    ``differs`` says its stem cannot differ from it, is its own stem."""
    from Sastrawi.Stemmer.Stemmer import Stemmer

    cls = type(stemmer)
    if cls.stem is not Stemmer.stem or cls.stem_word is not Stemmer.stem_word \
            or cls.is_plural is not Stemmer.is_plural:
        return
    normalizing_stem = stemmer.stem
    plain_word = re.compile(r"[a-z0-9]+").fullmatch
    may_differ = differs.may_differ if differs is not None else None

    def stem(text):
        if isinstance(text, str) and plain_word(text):
            if may_differ is not None and not may_differ(text):
                return text
            return stemmer.stem_singular_word(text)
        return normalizing_stem(text)

    stemmer.stem = stem


# What PySastrawi 1.2's rules can leave of a word, read off their code (tests/test_text_pipeline.py
# re-derives these tables from the visitors' and rules' sources and fails if they differ):
# the suffixes the three suffix visitors remove, in the order they are removed from the end
_DERIVATIONAL = ("", "is", "isme", "isasi", "i", "kan", "an")
_POSSESSIVE = ("", "ku", "mu", "nya")
_PARTICLE = ("", "lah", "kah", "tah", "pun")
# each prefix a rule removes from the front of the word -> what it may put in its place
# ("menyapu" -> "s" + "apu", "mengirim" -> "k" + "irim", "penyanyi" -> "ny" + "anyi"); the plain
# prefixes di-, ke-, se- and the "belajar"/"pelajar" -> "ajar" exceptions included
_PREFIXES: dict[str, frozenset] = {
    "di": frozenset({""}), "ke": frozenset({""}), "se": frozenset({""}),
    "ber": frozenset({"", "r"}), "be": frozenset({""}), "bel": frozenset({""}),
    "ter": frozenset({"", "r"}), "te": frozenset({""}),
    "me": frozenset({""}), "mem": frozenset({"", "m", "p"}), "memp": frozenset({"p"}),
    "mempe": frozenset({"pe"}), "men": frozenset({"", "n", "t"}),
    "meng": frozenset({"", "k", "ng"}), "menge": frozenset({""}), "meny": frozenset({"ny", "s"}),
    "pe": frozenset({""}), "pel": frozenset({""}), "per": frozenset({""}),
    "pem": frozenset({"", "m", "p"}), "pen": frozenset({"", "n", "t"}),
    "peng": frozenset({"", "k"}), "penge": frozenset({""}), "peny": frozenset({"ny", "s"}),
    "ku": frozenset({""}), "kau": frozenset({""}),
}
# the infixes the CS infix rules remove after a first consonant ("gerigi" -> "g" + "igi")
_INFIXES = frozenset(("el", "er", "em", "in"))
_PREFIX_PASSES = 3  # Context.remove_prefixes: at most three passes, each from the word's own front


class _StemCanDiffer:
    """Whether Sastrawi's stem of a plain word (ASCII letters and digits) can be anything but the
    word itself -- a necessary condition, cheap enough to ask before the rules run.

    Why it is exact. ``Context.execute`` returns the word it ends on when that is a dictionary
    word, else the original word, so a stem that differs is a dictionary word ``r`` that the
    context held. Every word the context holds is ``P + w[a:b]`` for the original ``w``:

    - only the suffix visitors change its end, each removing one suffix of its kind, in the order
      particle, possessive, derivational (and the suffix-restoring loop goes back to a word before
      a removal, or puts "k" back after "kan": the end is then before "an"), so ``w[b:]`` is
      derivational + possessive + particle, each possibly empty (``_ends``);
    - the front changes only by prefix passes (at most three, each starting again from the front of
      the word as written: the trial order, the normal order and the suffix-restoring loop each
      call ``remove_prefixes`` afresh). A pass applies one rule, which removes a prefix of
      ``_PREFIXES`` (keeping the rest as it is: its last group is ``(.*)``) and puts one of that
      prefix's replacements before the rest, or removes an infix after the first letter. ``_fronts``
      follows every such removal whose prefix the word begins with -- whether or not the rest of the
      rule's pattern matches, so it finds every front Sastrawi can reach and maybe more.

    A suffix removal that takes ``P`` with it leaves a part of ``P`` (at most two letters), and no
    dictionary word is one of them (:meth:`holds_for`; else ``accelerate`` does not use this test).
    So when no reachable ``P + w[a:b]`` is a dictionary word other than ``w``, the stem is ``w``. The tests compare it with plain PySastrawi on the corpus's words,
    their affixed forms and typos, and the whole Surabaya vocabulary.
    """

    @staticmethod
    def holds_for(dictionary) -> bool:
        """Whether the argument above holds for ``dictionary``: no word of it is empty, one letter, or
        a beginning of a put-back prefix ("n", "ng", "p", "pe", ...), which a suffix removal could
        leave alone (PySastrawi's own dictionary has none; a custom one gets no shortcut)."""
        short = {""} | set("abcdefghijklmnopqrstuvwxyz0123456789") \
            | {r[:i] for rs in _PREFIXES.values() for r in rs for i in range(1, len(r) + 1)}
        return not any(w in dictionary for w in short)

    def __init__(self, dictionary):
        self._words = dictionary
        self._suffixes = frozenset(d + p + q for d in _DERIVATIONAL for p in _POSSESSIVE
                                   for q in _PARTICLE if d + p + q)
        # the suffix chains' lengths by their last two letters (a one-letter chain under every pair
        # it can end): _ends slices only where a chain can end, not at every length
        by_tail: dict[str, set[int]] = {}
        letters = "abcdefghijklmnopqrstuvwxyz0123456789"
        for suffix in self._suffixes:
            tails = [suffix[-2:]] if len(suffix) > 1 else [suffix] + [c + suffix for c in letters]
            for tail in tails:
                by_tail.setdefault(tail, set()).add(len(suffix))
        self._by_tail = {tail: tuple(sorted(lengths)) for tail, lengths in by_tail.items()}
        by_letter: dict[str, list] = {}
        for prefix, replacements in _PREFIXES.items():
            by_letter.setdefault(prefix[0], []).append((prefix, tuple(replacements)))
        self._by_letter = by_letter

    def _ends(self, w: str) -> list[int]:
        """Where the word can end after suffixes are removed: ``len(w)`` and each ``b`` whose
        ``w[b:]`` is a chain of suffixes."""
        n = len(w)
        suffixes = self._suffixes
        return [n] + [n - k for k in self._by_tail.get(w[-2:], ()) if k <= n and w[n - k:] in suffixes]

    def _fronts(self, w: str) -> set[tuple[str, int]]:
        """Every ``(P, a)`` such that ``P + w[a:]`` may be the word after up to three prefix passes."""
        by_letter = self._by_letter
        seen = {("", 0)}
        frontier = [("", 0)]
        for _ in range(_PREFIX_PASSES):
            nxt = []
            for p, a in frontier:
                cur = p + w[a:a + 6]  # the longest prefix has 5 letters, an infix needs 3
                if not cur:
                    continue
                found = [(p2, a + len(prefix) - len(p))
                         for prefix, replacements in by_letter.get(cur[0], ())
                         if len(prefix) >= len(p) and cur.startswith(prefix) for p2 in replacements]
                if cur[1:3] in _INFIXES:  # c + infix + rest -> c + rest
                    found.append((cur[0], a + 3 - len(p)))
                for state in found:
                    if state not in seen:
                        seen.add(state)
                        nxt.append(state)
            frontier = nxt
        return seen

    def may_differ(self, w: str) -> bool:
        words = self._words
        ends = self._ends(w)
        if len(ends) > 1 and any(w[:b] in words for b in ends[1:]):
            return True
        if w[:1] not in self._by_letter and w[1:3] not in _INFIXES:
            return False  # no prefix can go: only the suffixes could, and no w[:b] is a word
        n = len(w)
        for p, a in self._fronts(w):
            if not p and not a:
                continue
            for b in ends:
                if b > a and p + w[a:b] in words and (p or a or b < n):
                    return True
        return False


def _standard_rules(provider) -> bool:
    """True when the stemmer's visitors are PySastrawi's own (the rules :class:`_StemCanDiffer`
    was read from)."""
    try:
        from Sastrawi.Stemmer.Context.Visitor.VisitorProvider import VisitorProvider
    except ImportError:  # pragma: no cover - PySastrawi moved its modules
        return False
    if type(provider) is not VisitorProvider:
        return False
    fresh = VisitorProvider()
    kinds = lambda visitors: [(type(v), [type(r) for r in getattr(v, "disambiguators", ())])  # noqa: E731
                              for v in visitors]
    return all(kinds(getattr(provider, name)()) == kinds(getattr(fresh, name)())
               for name in ("get_visitors", "get_suffix_visitors", "get_prefix_visitors"))


def _fast_prefix_loop(stemmer, gates: dict, memo_size: int = 8192) -> None:
    """Stem with a Context whose prefix loop (1) does not call the visitors that cannot act on the
    word's first letter and (2) remembers the outcome of each pass by the word it started from.

    (1): in PySastrawi 1.2's loop a visitor that changes the word always records a removal, which
    ends the loop, so the word is the same for every visitor of one pass; a visitor that does
    nothing leaves the three checks after it with the answers they had after the one before, so
    only the first position's checks are kept (exactly the same returns).
    (2): a pass reads nothing but the current word, the dictionary and whether the process was
    stopped before it (prefix visitors never stop it), and adds at most one removal, so its outcome
    (the removal, the word after it, the return value) is a function of (word, stopped). Stemming
    one unseen word runs the pass on the same word 2-3 times (the precedence trial, the normal
    order, the suffix-restoring loop); a bounded memo shared by the stemmer's calls answers the
    repeats, and the same intermediate forms of related words ("perbaikan", "perbaikannya").
    """
    from Sastrawi.Stemmer.Context.Context import Context
    from Sastrawi.Stemmer.Context.Removal import Removal
    from Sastrawi.Stemmer.Stemmer import Stemmer

    if type(stemmer).stem_singular_word is not Stemmer.stem_singular_word:
        return
    memo: dict[tuple[str, bool], tuple] = {}

    class _Context(Context):
        def accept_prefix_visitors(self, visitors):
            key = (self.current_word, self.process_is_stopped)
            hit = memo.get(key)
            if hit is None:
                before = len(self.removals)
                returned = self._prefix_pass(visitors)
                hit = (tuple((r.visitor, r.subject, r.result, r.removedPart, r.affixType)
                             for r in self.removals[before:]), self.current_word, returned)
                if memo_size:
                    if len(memo) >= memo_size:
                        memo.clear()  # cheaper than evicting one by one; refills in a few words
                    memo[key] = hit
                return returned
            for fields in hit[0]:
                self.add_removal(Removal(*fields))
            self.current_word = hit[1]
            return hit[2]

        def _prefix_pass(self, visitors):
            removal_count = len(self.removals)
            contains = self.dictionary.contains
            letter = self.current_word[:1]
            plan = plans.get(letter)
            if plan is None:
                plan = plans[letter] = _plan(visitors, letter)
            check_first, active = plan
            if check_first:  # the first visitor cannot act: its checks still happen, once
                if contains(self.current_word) or self.process_is_stopped:
                    return self.current_word
            for visitor in active:
                visitor.visit(self)
                if contains(self.current_word):
                    return self.current_word
                if self.process_is_stopped:
                    return self.current_word
                if len(self.removals) > removal_count:
                    return None
            return None

    plans: dict[str, tuple[bool, tuple]] = {}  # first letter -> (check first, visitors to call)

    def _plan(visitors, letter):
        active = tuple(v for v in visitors if gates.get(id(v)) is None or letter in gates[id(v)])
        return bool(visitors) and (not active or active[0] is not visitors[0]), active

    dictionary, provider = stemmer.dictionary, stemmer.visitor_provider
    stemmer.prefix_pass_memo = memo  # emptied by SastrawiStemmer.clear_cache (a truly cold start)

    def stem_singular_word(word):
        context = _Context(word, dictionary, provider)
        context.execute()
        return context.result

    stemmer.stem_singular_word = stem_singular_word


class _PrecompiledRe:
    """Stands in for the ``re`` module inside PySastrawi's rule methods.

    Each rule calls ``re.match(PATTERN, word)`` with a constant pattern string; about half of such
    a call is ``re``'s lookup of the compiled pattern in its cache. Here each pattern string is
    compiled once and kept, so a call is one dict lookup and the match. The same pattern with the
    same flags: the same result. Patterns beyond ``limit`` (none in PySastrawi) are not kept.
    """

    def __init__(self, limit: int = 1024):
        self._compiled: dict = {}
        self._limit = limit

    def _pattern(self, pattern, flags):
        key = (pattern, flags)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = re.compile(pattern, flags)
            if len(self._compiled) < self._limit:
                self._compiled[key] = compiled
        return compiled

    def match(self, pattern, string, flags=0):
        return self._pattern(pattern, flags).match(string)

    def sub(self, pattern, repl, string, count=0, flags=0):
        return self._pattern(pattern, flags).sub(repl, string, count)

    def __getattr__(self, name):
        return getattr(re, name)


_PRECOMPILED_RE = _PrecompiledRe()
_GLOBALS_WITH_PRECOMPILED_RE: dict[int, tuple[dict, dict]] = {}


def _precompile(obj, name: str) -> None:
    """Make ``obj.<name>`` a copy of its class's method that sees :class:`_PrecompiledRe` as
    ``re`` (only this object changes; the method's code is the library's own)."""
    fn = getattr(type(obj), name, None)
    if not isinstance(fn, types.FunctionType) or fn.__globals__.get("re") is not re:
        return
    kept = _GLOBALS_WITH_PRECOMPILED_RE.get(id(fn.__globals__))
    if kept is None or kept[0] is not fn.__globals__:
        # the original dict is kept alive with its copy, so that its id cannot be reused
        kept = (fn.__globals__, dict(fn.__globals__, re=_PRECOMPILED_RE))
        _GLOBALS_WITH_PRECOMPILED_RE[id(fn.__globals__)] = kept
    globs = kept[1]
    copy = types.FunctionType(fn.__code__, globs, fn.__name__, fn.__defaults__, fn.__closure__)
    setattr(obj, name, types.MethodType(copy, obj))


# PySastrawi's affix visitors and the affix type each records; their ``visit`` is the same four
# lines in each (remove, find the removed part, record, move on).
_AFFIX_KINDS = {"RemoveInflectionalParticle": "P", "RemoveInflectionalPossessivePronoun": "PP",
                "RemoveDerivationalSuffix": "DS", "RemovePlainPrefix": "DP"}


def _affix_kind(visitor) -> str | None:
    cls = type(visitor)
    kind = _AFFIX_KINDS.get(cls.__name__)
    if kind is None or cls.__module__ != f"Sastrawi.Stemmer.Context.Visitor.{cls.__name__}" \
            or "visit" not in cls.__dict__:
        return None
    return kind


def _affix_visit(visitor, kind: str):
    """The ``visit`` of PySastrawi 1.2's affix visitors, with the removed part found by
    :func:`_removed_part`."""
    from Sastrawi.Stemmer.Context.Removal import Removal

    remove = visitor.remove

    def visit(context):
        word = context.current_word
        result = remove(word)
        if result != word:
            removed = _removed_part(word, result)
            context.add_removal(Removal(visitor, word, result, removed, kind))
            context.current_word = result
    return visit


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
    would return None), and the removed part is found by :func:`_removed_part`."""
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
        removed = _removed_part(word, result)
        context.add_removal(Removal(visitor, word, result, removed, "DP"))
        context.current_word = result
    return visit


_PLAIN = re.compile(r"[a-z0-9\-]*").fullmatch  # no character that is special in a pattern


def _removed_part(word: str, result: str) -> str:
    """What PySastrawi records as removed, ``re.sub(result, "", word, count=1)``: the remaining
    word compiled as a pattern, a new one for nearly every word (30-60 us each, ``re``'s cache
    does not help). For a word of letters, digits and hyphens it is ``str.replace``."""
    return word.replace(result, "", 1) if _PLAIN(result) else re.sub(result, "", word, count=1)


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
    try:
        code = rule_class.disambiguate.__code__
        fn = _functions_in(code.co_filename)[code.co_firstlineno]
    except (AttributeError, KeyError, OSError, SyntaxError, ValueError):
        return None
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    arg = fn.args.args[1].arg if len(fn.args.args) == 2 else None
    letters: set[str] = set()
    # Leading exceptions: ``if word == 'belajar': return 'ajar'`` (rules 4 and 32).
    while body and _is_word_equals_return(body[0], arg):
        word = body[0].test.comparators[0].value
        if not word:
            return None
        letters.add(word[0])
        body = body[1:]
    if not body and letters:
        return frozenset(letters)
    if len(body) != 2 or not isinstance(body[0], ast.Assign) or not isinstance(body[1], ast.If):
        return None
    call, branch = body[0].value, body[1]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "match" and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "re" and len(call.args) == 2 and not call.keywords
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
            and isinstance(call.args[1], ast.Name) and call.args[1].id == arg
            and len(body[0].targets) == 1 and isinstance(body[0].targets[0], ast.Name)
            and isinstance(branch.test, ast.Name) and branch.test.id == body[0].targets[0].id
            and not branch.orelse):
        return None
    first = _pattern_first_letters(call.args[0].value)
    return None if first is None else first | letters


@lru_cache(maxsize=None)
def _functions_in(filename: str) -> dict[int, ast.FunctionDef]:
    """The functions of a source file by the line of their ``def``, the file parsed whole: what
    ``inspect.getsource`` of each would give, without its pure-Python tokenizing of each one
    (15 ms of a Router's start for PySastrawi's 58 rules, against 1 ms). A decorated function's
    code starts at its decorator, so it is not found: no gate, as for any code not understood."""
    import linecache

    source = "".join(linecache.getlines(filename))
    if not source:
        raise OSError(f"no source for {filename}")
    return {node.lineno: node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}


def _is_word_equals_return(stmt, arg) -> bool:
    """``if ARG == 'constant': return ...`` with no else."""
    return (isinstance(stmt, ast.If) and not stmt.orelse and isinstance(stmt.test, ast.Compare)
            and isinstance(stmt.test.left, ast.Name) and stmt.test.left.id == arg
            and len(stmt.test.ops) == 1 and isinstance(stmt.test.ops[0], ast.Eq)
            and isinstance(stmt.test.comparators[0], ast.Constant)
            and isinstance(stmt.test.comparators[0].value, str)
            and len(stmt.body) == 1 and isinstance(stmt.body[0], ast.Return))


def _pattern_first_letters(pattern: str) -> frozenset | None:
    """The characters a match of ``pattern`` (anchored at the start) can begin with; None when
    unknown (a class with categories or negation, an optional first element, '.')."""
    try:
        from re import _parser as sre  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as sre  # type: ignore[no-redef]
    try:
        parsed = sre.parse(pattern)
    except Exception:  # noqa: BLE001 - any parse failure: no gate
        return None
    if parsed.state.flags & re.IGNORECASE:  # "(?i)ber" also starts with "B": no gate
        return None
    items = list(parsed)
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
    """Make room for one entry in a FIFO cache bounded at ``size``: when it is full, drop its
    oldest 1/32 at once. One key at a time would cost a scan over the holes that earlier
    deletions leave at the front of a dict (141 us per eviction in a full 200,000-entry cache);
    a batch costs about 1 us per key dropped (1.7 ms at worst for one batch of that cache).
    Threads may race to evict the same keys: ``pop`` with a default and the re-check keep that
    from failing or from letting the cache grow past its bound."""
    while len(cache) >= size:
        try:
            oldest = list(islice(cache, len(cache) - size + 1 + size // 32))
        except RuntimeError:  # changed by another thread meanwhile: try again
            continue
        for key in oldest:
            cache.pop(key, None)
        if not oldest:
            break


class SastrawiStemmer:
    """Stem tokens with Sastrawi, caching each word's stem (at most ``cache_size`` words)."""

    def __init__(self, cache_size: int = 200_000, cache: Mapping[str, str] | None = None):
        if cache_size < 0:
            raise InputValueError("cache_size must be >= 0")
        self.cache_size = cache_size
        self._stemmer = create_sastrawi_stemmer()
        accelerate(self._stemmer)  # same stems, about 6x faster on unseen words
        self._cache: dict[str, str] = {}
        # The stems of common words (read once per process at the first word not in the cache,
        # ~13 MiB, shared; a word found there is cached like any other, so that a model still
        # exports its vocabulary's stems): see lapor_nlp.text.stem_common.
        self._common: dict[str, str] | None = None
        if cache:
            self.load_cache(cache)

    def word(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            if type(word) is not str:  # checked on a miss only: a cached word is a str already
                raise InputTypeError(f"a word to stem must be str, got {type(word).__name__}")
            if word.isdigit() and word.isascii():
                # Every Sastrawi rule needs a letter (affixes, dictionary roots), so a number is
                # its own stem (tests/test_stem_common.py checks it against PySastrawi).
                stem = word
            else:
                common = self._common
                if common is None:
                    common = self._common = common_stems()
                stem = common.get(word)
                if stem is None:
                    # stem_word() is what Stemmer.stem() applies to each word once the text is
                    # normalised; the public stem() is used so that results equal plain
                    # PySastrawi's.
                    stem = self._stemmer.stem(word)
            if self.cache_size:
                _evict_oldest(self._cache, self.cache_size)
                self._cache[word] = stem
        return stem

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        return [self.word(t) for t in tokens]

    def clear_cache(self) -> None:
        """Forget every stem, and what :func:`accelerate` remembers of prefix passes."""
        self._cache.clear()
        memo = getattr(self._stemmer, "prefix_pass_memo", None)
        if memo is not None:
            memo.clear()

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
