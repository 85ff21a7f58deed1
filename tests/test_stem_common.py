"""The shipped stems of common words (datasets/lexicons/stem_common.tsv) are PySastrawi's own, the
stemmer answers from them, and a table made with another dictionary is not used."""

from __future__ import annotations

import random

import pytest

from lapor_nlp.text import stem_common
from lapor_nlp.text.stem import SastrawiStemmer, create_sastrawi_stemmer


@pytest.fixture(scope="module")
def plain():
    return create_sastrawi_stemmer()  # PySastrawi as it comes: no cache, no acceleration


@pytest.fixture()
def fresh_table(monkeypatch):
    """common_stems() re-read under the test's environment, and again after it."""
    stem_common.common_stems.cache_clear()
    yield
    stem_common.common_stems.cache_clear()


def test_a_random_sample_of_the_table_equals_pysastrawi(plain, fresh_table):
    table = stem_common.common_stems()
    assert len(table) > 50_000  # the file is there and was made with the installed dictionary
    words = random.Random(16).sample(sorted(table), 1500)
    wrong = [w for w in words if plain.stem(w) != table[w]]
    assert wrong == []


def test_the_table_holds_affixed_forms_not_only_roots(plain, fresh_table):
    table = stem_common.common_stems()
    roots = plain.dictionary.words
    affixed = [w for w, s in table.items() if w != s]
    assert len(affixed) > 0.8 * len(table)
    assert all(table[w] in roots for w in random.Random(1).sample(affixed, 200))


def test_numbers_are_their_own_stems_as_in_pysastrawi(plain):
    rng = random.Random(0)
    numbers = {"0", "00", "2022", "08123456789"} | {
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 18))) for _ in range(800)}
    stemmer = SastrawiStemmer(cache_size=0)
    assert [stemmer.word(n) for n in sorted(numbers)] == [plain.stem(n) for n in sorted(numbers)]
    # not ASCII digits: the shortcut does not apply, and the answer is still PySastrawi's
    for word in ("²", "١٢٣", "12a", "a12"):
        assert stemmer.word(word) == plain.stem(word)


def test_the_stemmer_answers_from_the_table_without_pysastrawi(fresh_table):
    stemmer = SastrawiStemmer()
    word = next(w for w, s in stem_common.common_stems().items() if w != s)
    called = []
    real = stemmer._stemmer.stem
    stemmer._stemmer.stem = lambda w: called.append(w) or real(w)
    assert stemmer.word(word) == stem_common.common_stems()[word]
    assert called == []
    assert stemmer.export_cache() == {word: stem_common.common_stems()[word]}  # a model still ships its words
    stemmer.word("jlaaan")  # not in the table: PySastrawi is asked
    assert called == ["jlaaan"]


def test_switched_off_or_made_with_another_dictionary_it_is_not_used(monkeypatch, tmp_path, fresh_table):
    monkeypatch.setenv("LAPOR_NLP_STEM_COMMON", "0")
    assert stem_common.common_stems() == {}
    monkeypatch.delenv("LAPOR_NLP_STEM_COMMON")
    stem_common.common_stems.cache_clear()
    other = tmp_path / "stem_common.tsv"
    other.write_text("# pysastrawi-dictionary-sha256: " + "0" * 64 + "\nmakan\tdimakan\n", encoding="utf-8")
    monkeypatch.setattr(stem_common, "dataset_path", lambda *parts: other)
    assert stem_common.common_stems() == {}
    digest = stem_common.dictionary_hash(create_sastrawi_stemmer().dictionary.words)
    other.write_text(f"# pysastrawi-dictionary-sha256: {digest}\nmakan\tdimakan memakan\n", encoding="utf-8")
    stem_common.common_stems.cache_clear()
    assert stem_common.common_stems() == {"dimakan": "makan", "memakan": "makan"}


def test_affixed_forms_follow_the_nasal_rules():
    forms = stem_common.affixed_forms("tulis")
    assert {"menulis", "penulis", "ditulis", "tulisan", "ditulisnya", "menuliskan"} <= forms
    assert {"menyapu", "penyapu"} <= stem_common.affixed_forms("sapu")
    assert {"mengirim", "pengiriman"} <= stem_common.affixed_forms("kirim")
    assert {"membaca", "pembacaan"} <= stem_common.affixed_forms("baca")
