"""The text pipeline: each stage alone, the composed fast path, and bad input."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lapor_nlp.errors import InputTypeError, InputValueError
from lapor_nlp.resources import dataset_path
from lapor_nlp.text import (
    KEEP, PIPE_NAMES, Normalizer, Preprocessor, SastrawiStemmer, StopwordFilter, clean, tokenize,
)
from lapor_nlp.text.clean import TOKEN_PATTERN


def corpus_texts(limit=400):
    texts = []
    for path in sorted(dataset_path("corpus").glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return texts[:limit]


# -- clean / tokenize ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("Jalan RUSAK bangettt!!!", "jalan rusak banget!!!"),
    ("anak2 sekolah", "anak-anak sekolah"),
    ("cek <b>ini</b> &amp; itu", "cek  ini  & itu"),
    ("lihat https://contoh.id/x?a=1 ya", "lihat   ya"),
    ("cc @pemkot_sby #banjir", "cc   #banjir"),
    ("ＡＢＣ　def", "abc def"),
])
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_tokenize_splits_glued_punctuation_and_keeps_reduplication():
    assert tokenize("rusak.tolong,segera") == ["rusak", "tolong", "segera"]
    assert tokenize("anak-anak anak-anaknya") == ["anak-anak", "anak-anaknya"]
    assert tokenize("ktp-el covid-19") == ["ktp", "el", "covid", "19"]
    assert tokenize("hubungi [telepon] sekarang") == ["hubungi", "[TELEPON]", "sekarang"]


def test_emoji_and_hash_fall_away():
    assert tokenize(clean("😡😡 air mati 🙏 #tolong")) == ["air", "mati", "tolong"]


# -- normalize / stopwords / stem -----------------------------------------------------------------
def test_normalize_maps_slang_and_is_extensible(tmp_path):
    norm = Normalizer()
    assert norm(["yg", "tdk", "gak", "udh", "jl", "pju"])[:4] == ["yang", "tidak", "tidak", "sudah"]
    assert len(norm.lexicon) >= 600
    extra = tmp_path / "mine.tsv"
    extra.write_text("informal\tstandard\nsbyy\tsurabaya\n", encoding="utf-8")
    assert Normalizer.from_files(extra)(["sbyy"]) == ["surabaya"]


def test_stopwords_keep_negations():
    sw = StopwordFilter()
    assert sw(["air", "tidak", "mengalir", "dan", "belum", "bukan", "jangan", "assalamualaikum", "yth"]) \
        == ["air", "tidak", "mengalir", "belum", "bukan", "jangan"]
    assert not (KEEP & sw.words)
    # even a user list that names them cannot drop them
    assert StopwordFilter(words=["tidak", "dan"])(["tidak", "dan"]) == ["tidak"]


def test_stemmer_cache_is_bounded_and_exportable():
    st_ = SastrawiStemmer(cache_size=3)
    assert st_(["perbaikan", "dibersihkan", "mengalir", "pelayanan"]) == ["baik", "bersih", "alir", "layan"]
    assert len(st_) == 3
    warm = SastrawiStemmer(cache=st_.export_cache())
    assert warm.export_cache() == st_.export_cache()


def test_old_sastrawi_distribution_is_refused(monkeypatch):
    """The abandoned `sastrawi` 1.0.1 keeps its dictionary in a list: detected and refused."""
    from Sastrawi.Dictionary import ArrayDictionary as mod

    from lapor_nlp.errors import DependencyError
    from lapor_nlp.text.stem import create_sastrawi_stemmer

    def old_init(self, words=None):
        self.words = list(words or [])

    monkeypatch.setattr(mod.ArrayDictionary, "__init__", old_init)
    with pytest.raises(DependencyError, match="PySastrawi>=1.2.1"):
        create_sastrawi_stemmer()


# -- the composed pipeline ------------------------------------------------------------------------
def test_pipe_names_and_stages(preprocessor):
    assert preprocessor.pipe_names == PIPE_NAMES
    out = preprocessor.stages("Air PDAM tdk ngalir sdh 3 hari, hub 081234567890")
    assert list(out) == list(PIPE_NAMES)
    assert "[TELEPON]" in out["mask_pii"]
    assert "tidak" in out["normalize"] and "tidak" in out["stem"]


def test_fast_path_equals_stages_run_one_after_another(preprocessor):
    for text in corpus_texts() + ["Jalan rusak parah!!! anak2 jatuh, tlg pak", "bangettt,rusak.tolong"]:
        assert preprocessor.tokens(text) == preprocessor.stages(text)["stem"]
    pre = Preprocessor(stem=False)
    assert pre.tokens("Jalan rusak parah!!! anak2") == list(pre.stages("Jalan rusak parah!!! anak2").values())[-1]
    # HTML entities escaped twice are unescaped once, on both paths
    for text in ("Harga &amp;quot;naik&amp;quot;", "Jalan &amp;lt;b&amp;gt;rusak"):
        assert preprocessor.tokens(text) == preprocessor.stages(text)["stem"]



# Chunks that take each branch of Preprocessor._process_chunk's shortcuts, and those that must not.
TRICKY_CHUNKS = [
    "jalan", "bangettt", "BANGETTT", "Jalan", "aaa", "saat", "tidakkk", "yang", "sdh", "tlg", "gak",
    "ll", "a", "anak2", "ANAK2", "anak2nya", "anak22", "2anak", "ab\u00b2", "rt03", "12345", "1234",
    "telp0215551234", "anak-anak", "anak-anaknya", "ktp-el", "-", "--a--", "a-b-c", "sd-smp",
    "https://lapor.go.id/x", "www.lapor.go.id", "hhhttp", "wwwkkk", "foo.com", "x.id", "kota.net",
    "warga@mail.co.id", "@walikota", "[telepon]", "[nik],", "[TELEPON]", "(jalan)", "rusak,tolong",
    "jl.kenanga", "rt.03/rw.05", "dan/atau", "#banjir", "caf\u00e9", "na\u00efve", "\u00fc",
    "\U0001f600", "!!!", "...", "pemerintahannya", "dikerahkan", "xyz", "qq", "mengapa?",
]


@pytest.mark.parametrize("params", [{}, {"keep_numbers": True}, {"min_token_len": 0}, {"stem": False},
                                    {"normalize": False, "stopwords": False}, "lexicon"])
def test_chunk_shortcuts_equal_the_stages_one_after_another(params, tmp_path):
    """_process_chunk skips work for chunks cleaned to [a-z]+ and for raw tokens without a hyphen;
    each chunk must still give what clean, tokenize, normalize, stopwords and stem give in turn."""
    from lapor_nlp.text.clean import clean_prepared

    if params == "lexicon":  # a word that becomes several, one of them a stopword; one that is dropped
        lexicon = tmp_path / "lex.tsv"
        lexicon.write_text("xyz\tjalan yang rusak\nqq\tyang\n", encoding="utf-8")
        params = {"lexicon_files": [lexicon]}
    pre = Preprocessor(**params)
    stem, stop, norm = pre.get_stage("stem"), pre.get_stage("stopwords"), pre.get_stage("normalize")
    for chunk in TRICKY_CHUNKS:
        cleaned = clean_prepared(chunk)
        expected_tokens = tuple(stem(stop(norm(tokenize(cleaned)))))
        expected_words = tuple(p for raw in TOKEN_PATTERN.findall(cleaned) if raw[0] != "["
                               for p in raw.split("-"))
        assert pre._process_chunk(chunk) == (expected_tokens, expected_words), chunk


def test_invisible_characters_and_glued_long_numbers(preprocessor):
    assert preprocessor.tokens("ja\u00adlan rus\u200dak parah") == preprocessor.tokens("jalan rusak parah")
    # a zero-width space is a word break, as Unicode defines it
    assert preprocessor.tokens("jalan\u200brusak") == preprocessor.tokens("jalan rusak")
    # "mohon" is a stopword; the glued numbers are dropped whole
    assert preprocessor.tokens("kode0015551234 mohon transfer1234567890 jalan") == ["jalan"]
    assert "[TELEPON]" in preprocessor.tokens("telp0215551234 jalan")  # a glued landline is masked
    assert "rt" in preprocessor.tokens("rt 03 rw 05")  # short numbers next to words stay as they were
    kept = Preprocessor(keep_numbers=True).tokens("kode0015551234 rt 03")
    assert "kode0015551234" in kept and "03" in kept


def test_scikit_learn_can_clone_and_search_a_preprocessor():
    from sklearn.base import clone
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=Preprocessor(stopwords=False, lexicon_files=()))
    copy = clone(vec)
    assert copy.analyzer is not vec.analyzer
    assert copy.analyzer.get_params() == vec.analyzer.get_params(deep=True)
    pre = Preprocessor().set_params(stem=False, cache_size=10)
    assert pre.get_params()["stem"] is False and pre.pipe_names[-1] != "stem"
    with pytest.raises(InputValueError):
        pre.set_params(no_such=1)


@pytest.mark.parametrize("bad", [{"cache_size": None}, {"cache_size": "10"}, {"cache_size": -1},
                                 {"min_token_len": "2"}])
def test_bad_parameters_are_typed_errors(bad):
    with pytest.raises(InputValueError):
        Preprocessor(**bad)


def test_one_lexicon_path_is_one_file_and_tokens_batch_needs_an_iterable(preprocessor, tmp_path):
    lex = tmp_path / "lex.tsv"
    lex.write_text("jln2\tjalan\n", encoding="utf-8")
    assert Preprocessor(lexicon_files=str(lex)).lexicon_files == (str(lex),)
    with pytest.raises(InputTypeError):
        preprocessor.tokens_batch(None)


def test_switching_stages_off():
    pre = Preprocessor(stem=False, stopwords=False, normalize=False, mask_pii=False)
    assert pre.tokens("Yth bapak, perbaikan jln tdk ada") == ["yth", "bapak", "perbaikan", "jln", "tdk", "ada"]
    assert pre.pipe_names == ("clean", "tokenize")


def test_tokens_batch_refuses_a_bare_string(preprocessor):
    with pytest.raises(InputTypeError):
        preprocessor.tokens_batch("one text")
    assert preprocessor.tokens_batch(["air mati", ""]) == [["air", "mati"], []]


def test_pickling_keeps_the_stem_cache(preprocessor):
    import pickle

    preprocessor.tokens("perbaikan jalan berlubang")
    clone = pickle.loads(pickle.dumps(preprocessor))
    assert clone.export_stem_cache() == preprocessor.export_stem_cache()
    assert clone.tokens("perbaikan jalan") == preprocessor.tokens("perbaikan jalan")


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   \n\t ", "😡😡🙏", "1234 5678", "!!!???...", "\x00\x01\x02"])
def test_texts_without_words_give_no_tokens(preprocessor, text):
    assert preprocessor.tokens(text) == []


@pytest.mark.parametrize("bad", [None, 42, 3.5, ["list"], {"text": "x"}])
def test_non_text_is_a_type_error(preprocessor, bad):
    with pytest.raises(InputTypeError) as info:
        preprocessor.tokens(bad)
    assert isinstance(info.value, TypeError) and "LAPOR-E001" in str(info.value)


def test_bytes_are_decoded_and_invalid_utf8_is_a_value_error(preprocessor):
    assert preprocessor.tokens("air mati".encode()) == ["air", "mati"]
    with pytest.raises(InputValueError) as info:
        preprocessor.tokens(b"air \xff\xfe mati")
    assert isinstance(info.value, ValueError)


def test_binary_junk_and_huge_text(preprocessor):
    import os

    junk = os.urandom(4096).decode("latin-1")
    assert all(TOKEN_PATTERN.fullmatch(t.lower()) for t in preprocessor.tokens(junk))
    huge = "jalan rusak parah di depan sekolah. " * 30_000  # about 1 MB
    assert preprocessor.tokens(huge)[:3] == ["jalan", "rusak", "parah"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_unicode_gives_tokens_never_an_exception(preprocessor, text):
    tokens = preprocessor.tokens(text)
    assert isinstance(tokens, list)
    for tok in tokens:
        assert tok and not tok.isspace()
        assert TOKEN_PATTERN.fullmatch(tok.lower()) or tok.startswith("[")


def test_tiny_caches_shared_by_threads_evict_without_errors():
    """With caches far smaller than the vocabulary every call evicts; threads racing to evict the
    same oldest entry must neither fail nor change a result."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"jalan rusak di gang {w} nomor {i} tolong diperbaiki segera pak lurah"
             for i, w in enumerate(["mawar", "melati", "kenanga", "anggrek", "dahlia"] * 40)]
    want = [Preprocessor().tokens(t) for t in texts]
    shared = Preprocessor(cache_size=3)
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(shared.tokens, texts)) == want
    # bounded: at most one extra entry per racing thread
    assert max(len(shared._token_cache), len(shared._tokens_of), len(shared._stemmer)) <= 3 + 8
    shared.tokens("satu dua tiga empat lima enam")  # alone again: back within the bound
    assert max(len(shared._token_cache), len(shared._tokens_of), len(shared._stemmer)) <= 3


def _corpus_words_affixed_and_mistyped() -> list[str]:
    """The corpus's words, affixed forms and typos of them, and forms that take stem()'s normalising
    path (reduplication, clitics, capitals, punctuation): what the equivalence checks stem."""
    import random

    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(dataset_path("corpus").glob("*.jsonl")))
    base = sorted(set(re.findall(r"[a-z]{3,}", text.lower())))
    rng = random.Random(7)
    words = set(base)
    for w in base:
        words.add(rng.choice(["me", "mem", "men", "meng", "meny", "ber", "di", "ke", "pe", "pen",
                              "per", "ter", "se"]) + w + rng.choice(["", "kan", "an", "i", "nya", "lah"]))
        i = rng.randrange(len(w) - 1)
        words.add(w[:i] + w[i + 1] + w[i] + w[i + 2:])
        words.update((w + "-" + w, w + "-nya", w.upper(), w + "!"))
    return sorted(words)


def test_accelerated_sastrawi_agrees_with_plain_sastrawi_on_a_sample():
    """The first-letter gate read from prefix patterns, and the check below on one word in fifty:
    the whole check is marked slow (CI runs it), this part runs by default."""
    from lapor_nlp.text.stem import _pattern_first_letters, accelerate, create_sastrawi_stemmer

    assert _pattern_first_letters(r"^ber([aiueo].*)$") == frozenset("b")
    assert _pattern_first_letters(r"^(me|pe)n(.*)$") == frozenset("mp")
    assert _pattern_first_letters(r"^([bcd])er(.*)$") == frozenset("bcd")
    for unknown in (r"^(.*)$", r"^[^a]x", r"^a?b", r"^\w+", r"(?i)^ber(.*)$"):
        assert _pattern_first_letters(unknown) is None
    words = _corpus_words_affixed_and_mistyped()[::50]
    fast = create_sastrawi_stemmer()
    assert accelerate(fast) > 55
    plain = create_sastrawi_stemmer()
    assert [fast.stem(w) for w in words] == [plain.stem(w) for w in words]


@pytest.mark.slow
def test_accelerated_sastrawi_gives_exactly_plain_sastrawis_stems():
    """accelerate() gates prefix rules by first letter and skips regex compilation: checked here
    against plain PySastrawi on the corpus's words, affixed forms and typos of them (the real-data
    test does the same on the whole Surabaya vocabulary)."""
    from lapor_nlp.text.stem import accelerate, create_sastrawi_stemmer

    words = _corpus_words_affixed_and_mistyped()
    fast = create_sastrawi_stemmer()
    assert accelerate(fast) > 55  # every prefix rule of PySastrawi 1.2.1 but none is ungated
    plain = create_sastrawi_stemmer()
    want = [plain.stem(w) for w in words]
    assert [fast.stem(w) for w in words] == want
    # again, backwards: now most prefix passes come from the memo of the first round
    assert [fast.stem(w) for w in reversed(words)] == want[::-1]


def test_first_letter_gate_reads_exceptions_and_the_pattern():
    from lapor_nlp.text.stem import _first_letters

    class Rule:
        def disambiguate(self, word):
            if word == "pelajar":
                return "ajar"
            matches = re.match(r"^pe(l[aiueo])(.*)$", word)
            if matches:
                return matches.group(1) + matches.group(2)

    class Only:
        def disambiguate(self, word):
            if word == "belajar":
                return "ajar"

    class Other:
        def disambiguate(self, word):
            if len(word) > 3:
                return word[1:]

    assert _first_letters(Rule) == frozenset("p")
    assert _first_letters(Only) == frozenset("b")
    assert _first_letters(Other) is None


def test_precompiled_re_answers_as_re_does():
    from lapor_nlp.text.stem import _PrecompiledRe

    fast = _PrecompiledRe(limit=2)
    for pattern, word in [(r"^meng([aiueo])(.*)$", "mengambil"), (r"^ber(.*)$", "sepeda"),
                          (r"(is|isme|isasi|i|kan|an)$", "perbaikan"), (r"^x", "xyz")]:
        m, want = fast.match(pattern, word), re.match(pattern, word)
        assert (m and m.groups()) == (want and want.groups())
        assert fast.sub(pattern, "", word, count=1) == re.sub(pattern, "", word, count=1)
    assert len(fast._compiled) == 2  # bounded
    assert fast.IGNORECASE is re.IGNORECASE


def test_clear_cache_forgets_everything_learnt_while_running():
    """clear_cache() is a cold start (bench/preprocess.py measures one): the token and stem
    caches and the stemmer's memo of prefix passes are all emptied, and the tokens stay the same."""
    pre = Preprocessor()
    # typos the rules need not see (their stem can only be themselves) and an affixed word they do
    text = "Pembangunanya jalam rusakk, dipermasalahkanlah kapan?"
    want = pre.tokens(text)
    stemmer = pre._stemmer
    assert len(pre._token_cache) and len(stemmer) and len(stemmer._stemmer.prefix_pass_memo)
    pre.clear_cache()
    assert not pre._token_cache and not pre._tokens_of and not len(stemmer)
    assert not stemmer._stemmer.prefix_pass_memo
    assert pre.tokens(text) == want


@pytest.mark.parametrize("stage, bad", [("tokenize", None), ("tokenize", 5), ("normalize", "jalan"),
                                        ("stopwords", None), ("stem", [None]), ("stem", b"x"),
                                        ("stem", [b"jalan"]), ("normalize", [1])])
def test_each_stage_refuses_the_wrong_input_type(preprocessor, stage, bad):
    with pytest.raises(InputTypeError):
        preprocessor.get_stage(stage)(bad)


def test_stages_accept_what_they_document(preprocessor):
    assert preprocessor.get_stage("tokenize")(b"jalan rusak") == ["jalan", "rusak"]
    assert preprocessor.get_stage("stem")(("perbaikan", "jalan")) == ["baik", "jalan"]


def _typos(words: list[str], seed: int = 3) -> list[str]:
    """Each word with one typo of each kind a backlog has (swapped, dropped, doubled, wrong letter)."""
    import random

    rng = random.Random(seed)
    out = []
    for w in words:
        if len(w) < 4:
            continue
        i = rng.randrange(len(w) - 1)
        out += [w[:i] + w[i + 1] + w[i] + w[i + 2:], w[:i] + w[i + 1:], w[:i] + w[i] * 2 + w[i:],
                w[:i] + rng.choice("aiueo") + w[i + 1:]]
    return out


def test_a_stem_said_not_to_differ_is_the_word_itself():
    """_StemCanDiffer lets the accelerated stemmer give a word back without running the rules:
    checked against plain PySastrawi on the corpus's words, affixed forms and typos of them, and
    it must skip most typos (else it buys nothing)."""
    from lapor_nlp.text.stem import _StemCanDiffer, create_sastrawi_stemmer

    plain = create_sastrawi_stemmer()
    differs = _StemCanDiffer(plain.dictionary.words)
    words = [w for w in _corpus_words_affixed_and_mistyped() if re.fullmatch(r"[a-z0-9]+", w)]
    words = words[::9] + _typos(words[::21])
    skipped = [w for w in words if not differs.may_differ(w)]
    assert len(skipped) > 1000 and [plain.stem(w) for w in skipped] == skipped
    # the sample holds words the rules do change, and the test lets them through
    affixed = [w for w in words[:2000] if plain.stem(w) != w]
    assert len(affixed) > 100 and all(differs.may_differ(w) for w in affixed)
    typos = [w for w in _typos(words[::11]) if w not in plain.dictionary.words]
    assert sum(not differs.may_differ(w) for w in typos) > 0.6 * len(typos)


def test_the_stem_shortcut_is_off_for_a_dictionary_it_does_not_hold_for():
    """With a dictionary word of one letter, a suffix removal can leave a put-back letter alone
    as the stem ("menisasi" -> "t" + "isasi" -> "t"): accelerate() then keeps the rules for every
    word, and the stems stay PySastrawi's."""
    from Sastrawi.Dictionary.ArrayDictionary import ArrayDictionary
    from Sastrawi.Stemmer.Stemmer import Stemmer
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    from lapor_nlp.text.stem import _StemCanDiffer, accelerate

    words = StemmerFactory().get_words() + ["t"]
    plain, fast = Stemmer(ArrayDictionary(words)), Stemmer(ArrayDictionary(words))
    accelerate(fast)
    assert not _StemCanDiffer.holds_for(fast.dictionary.words)
    assert plain.stem("menisasi") == "t" and fast.stem("menisasi") == "t"
    assert _StemCanDiffer.holds_for(frozenset(StemmerFactory().get_words()))


def _pattern_char_sets(pattern: str) -> list[frozenset]:
    """The characters each of a pattern's first positions can hold (groups entered), up to the
    first element that is not one literal or a class of literals."""
    try:
        from re import _parser as sre  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as sre  # type: ignore[no-redef]
    out: list[frozenset] = []

    def walk(items) -> bool:
        for op, av in items:
            if op is sre.AT:
                continue
            if op is sre.LITERAL:
                out.append(frozenset(chr(av)))
            elif op is sre.IN and all(k is sre.LITERAL or k is sre.RANGE for k, _ in av):
                chars = set()
                for k, v in av:
                    chars.update(chr(v) if k is sre.LITERAL else map(chr, range(v[0], v[1] + 1)))
                out.append(frozenset(chars))
            elif op is sre.SUBPATTERN:
                if not walk(list(av[-1])):
                    return False
            else:
                return False
        return True

    walk(list(sre.parse(pattern)))
    return out


def test_stem_can_differ_covers_every_prefix_rule_of_the_installed_pysastrawi():
    """What _StemCanDiffer assumes of PySastrawi's prefix rules, re-derived from their code: each
    rule removes a literal prefix and puts one of _PREFIXES' replacements before the rest of the
    word unchanged, or removes an infix after a first consonant; the table is exactly that."""
    import ast
    import inspect
    import textwrap

    from Sastrawi.Stemmer.Context.Visitor.VisitorProvider import VisitorProvider

    from lapor_nlp.text.stem import (
        _DERIVATIONAL, _INFIXES, _PARTICLE, _POSSESSIVE, _PREFIXES, _StemCanDiffer, create_sastrawi_stemmer,
    )

    derived: dict[str, set] = {"di": {""}, "ke": {""}, "se": {""}}  # RemovePlainPrefix: ^(di|ke|se)
    infixes = set()
    rules = {type(r) for v in VisitorProvider().get_prefix_visitors() for r in getattr(v, "disambiguators", ())}
    assert len(rules) > 55
    for rule in rules:
        fn = ast.parse(textwrap.dedent(inspect.getsource(rule.disambiguate)))
        pattern = next((n.args[0].value for n in ast.walk(fn) if isinstance(n, ast.Call)
                        and getattr(n.func, "attr", None) == "match" and isinstance(n.args[0], ast.Constant)), None)
        for n in ast.walk(fn):  # ``if word == 'belajar': return 'ajar'``: the prefix "bel"
            if isinstance(n, ast.If) and isinstance(n.test, ast.Compare) and isinstance(n.test.left, ast.Name) \
                    and n.test.left.id == "word":
                word, ret = n.test.comparators[0].value, n.body[0].value.value
                assert word.endswith(ret)
                derived.setdefault(word[:-len(ret)], set()).add("")
        if pattern is None:
            continue
        sets = _pattern_char_sets(pattern)
        literal = re.match(r"\^?([a-z]*)", pattern).group(1)  # the letters before the first group
        groups = re.compile(pattern).groups
        for ret in (n.value for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None):
            parts, node = [], ret
            while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                parts.append(node.right)
                node = node.left
            parts.append(node)
            parts.reverse()
            if len(parts) == 1 and isinstance(parts[0], ast.Constant):
                continue  # 'ajar', read above
            lead = parts[0].value if isinstance(parts[0], ast.Constant) else ""
            rest = parts[1:] if lead else parts
            used = [p.args[0].value for p in rest if isinstance(p, ast.Call)]
            between = [p.value for p in rest if isinstance(p, ast.Constant)]
            if literal:
                # every group in order, and only an "er" the pattern matched between two groups put
                # back: the output is the replacement + the word after the literal prefix
                assert used == list(range(1, groups + 1)) and set(between) <= {"er"}, (rule, pattern)
                assert not between or ")er(" in pattern, (rule, pattern)
                derived.setdefault(literal, set()).add(lead)
            else:  # an infix rule: ^(consonant) INFIX (...) -- the infix kept (a) or dropped (b)
                assert not lead and used == list(range(1, groups + 1)), (rule, pattern)
                infix = "".join(next(iter(c)) for c in sets[1:3])
                assert infix in _INFIXES, (rule, pattern)
                infixes.add(infix)
    assert derived == {k: set(v) for k, v in _PREFIXES.items()}
    assert infixes == set(_INFIXES)
    # the suffixes, from the three suffix visitors' patterns: -*(lah|kah|tah|pun)$, ...
    tables = {"RemoveInflectionalParticle": _PARTICLE, "RemoveInflectionalPossessivePronoun": _POSSESSIVE,
              "RemoveDerivationalSuffix": _DERIVATIONAL}
    for visitor in VisitorProvider().get_suffix_visitors():
        source = inspect.getsource(type(visitor).remove)
        alternatives = re.search(r"re\.sub\(r'(?:-\*)?\(([a-z|]+)\)\$'", source).group(1).split("|")
        assert set(alternatives) == set(tables.pop(type(visitor).__name__)) - {""}
    assert not tables
    # a suffix removal that takes the put-back letters with it leaves no dictionary word
    words = create_sastrawi_stemmer().dictionary.words
    assert _StemCanDiffer.holds_for(words)
    assert _StemCanDiffer(words)._fronts("memperbaiki") >= {("pe", 5), ("", 6)}


def test_suffix_ends_are_every_chain_once():
    """_ends lists each place a chain of suffixes can start, once (a word ending in "-ah" has
    many chains with that tail: "lah", "nyalah", "kanlah", ...), and only those."""
    from lapor_nlp.text.stem import _DERIVATIONAL, _PARTICLE, _POSSESSIVE, _StemCanDiffer, create_sastrawi_stemmer

    differs = _StemCanDiffer(create_sastrawi_stemmer().dictionary.words)
    chains = {d + p + q for d in _DERIVATIONAL for p in _POSSESSIVE for q in _PARTICLE} - {""}
    for word in ["masalah", "pemerintah", "jalannya", "i", "diperbaikinyalah", "sekolahkanlah", "x9", "pun"]:
        ends = differs._ends(word)
        assert len(ends) == len(set(ends))
        assert set(ends) == {len(word)} | {b for b in range(len(word)) if word[b:] in chains}
