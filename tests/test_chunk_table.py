"""The chunk table's two ways to give a batch its chunk ids agree, chunk for chunk.

A large batch is looked up by its bytes (``ChunkTable._ids_by_bytes``: numpy keys of chunks of at
most 16 bytes), a small one, or one the byte path cannot take, one dict lookup per chunk
(``_ids_by_dict``). The two paths number a batch's new chunks in different orders, so two tables
are compared by the chunk each id stands for, which must be what ``str.split()`` gives.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import pytest

from lapor_nlp import Router
from lapor_nlp import chunks as chunks_mod
from lapor_nlp.chunks import SEPARATOR, ChunkTable, _ByteKeys

# Characters that make the byte path's work: every kind of whitespace str.split() knows (ASCII
# ones, the file separators \x1c-\x1f, non-ASCII ones), control characters that are not
# whitespace, multi-byte letters, a 4-byte emoji, punctuation.
ALPHABET = (list("abcdefghijklmnopqrstuvwxyz") * 3 + [" "] * 20 +
            ["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
             "\u1680", "\u2000", "\u2009", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
             "\x01", "\x7f", "\u00e9", "\u20ac", "\U0001f642", "-", ".", ",", "2"])


def _texts(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randrange(0, 40)):
            # lengths around the key's limits: 8 and 16 bytes
            k = rng.choice([1, 2, 5, 7, 8, 9, 15, 16, 17, 30])
            words.append("".join(rng.choice(ALPHABET) for _ in range(k)))
        out.append(" ".join(words))
    return out


def _table(router: Router) -> ChunkTable:
    return router._fast().table


def _chunks_of(table: ChunkTable, cids: np.ndarray) -> list[str]:
    names = {v: k for k, v in table._state.ids.items()}
    return [names[i] for i in cids.tolist()]


def _split(texts: list[str]) -> list[str]:
    return f" {SEPARATOR} ".join(texts).split()


def test_the_wide_spaces_are_every_non_ascii_whitespace_character():
    wide = [c for c in map(chr, range(128, 0x110000)) if c.isspace()]
    assert [c for c in wide if chunks_mod._WIDE_SPACE.fullmatch(c)] == wide
    assert not any(chunks_mod._WIDE_SPACE.search(chr(i)) for i in range(0x3001) if not chr(i).isspace())


@pytest.fixture()
def fresh(model_dir):
    return Router.load(model_dir)


def test_byte_keys_find_exactly_what_was_added():
    rng = random.Random(3)
    words = {"".join(rng.choice("abcdeé€") for _ in range(rng.randrange(1, 7))) for _ in range(20_000)}
    words = sorted(w for w in words if len(w.encode()) <= 16)
    data = " ".join(words).encode()
    starts, ends, k0, k1, short = _ByteKeys.keys(data)
    assert [data[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist())] == words
    assert short.all()
    assert len(set(zip(k0.tolist(), k1.tolist()))) == len(words)  # one key per distinct chunk
    table = _ByteKeys(bits=4)
    half = len(words) // 2
    ids = np.arange(len(words), dtype=np.int64) + 1
    table = table.add(k0[:half], k1[:half], ids[:half])
    table = table.add(k0[half:], k1[half:], ids[half:])  # grows: from 16 slots
    assert 2 * table.n <= len(table.v)
    assert np.array_equal(table.find(k0, k1), ids)
    # keys never added are not found, including ones that differ only past 8 bytes or in length
    other = " ".join(w + "x" for w in words[:500]).encode()
    _, _, o0, o1, _ = _ByteKeys.keys(other)
    assert (table.find(o0, o1) == -1).all()


def test_byte_keys_of_chunks_at_the_16_byte_limit():
    chunk8, chunk9, chunk16, chunk17 = "a" * 8, "a" * 9, "ab" * 8, "ab" * 8 + "c"
    data = f"{chunk8} {chunk9}\n{chunk16}\t{chunk17} {'é' * 8} {'é' * 9}".encode()
    starts, ends, k0, k1, short = _ByteKeys.keys(data)
    assert short.tolist() == [True, True, True, False, True, False]
    assert k1[0] == 0 and k1[1] == ord("a") and k0[0] == k0[1]


def test_misses_are_grouped_by_their_whole_key_even_when_two_keys_mix_alike():
    # _distinct groups a batch's misses by one 64-bit mix of the two key words; keys that differ
    # and mix alike must not be grouped (then nothing is).
    with np.errstate(over="ignore"):
        b1 = np.uint64(7)
        b0 = np.uint64(5) ^ (b1 * _ByteKeys._M1)  # mixes like (5, 0)
        assert _ByteKeys.mix(b0, b1) == _ByteKeys.mix(np.uint64(5), np.uint64(0))
    k0 = np.array([5, 9, 5, 9, 5], np.uint64)
    k1 = np.array([0, 0, 0, 0, 0], np.uint64)
    at = np.array([0, 1, 2, 3, 4])
    firsts, again = chunks_mod._distinct(at, k0, k1)
    assert sorted(firsts.tolist()) == [0, 1] and firsts[again].tolist() == [0, 1, 0, 1, 0]
    k0[4], k1[4] = b0, b1
    firsts, again = chunks_mod._distinct(at, k0, k1)
    assert sorted(firsts.tolist()) == [0, 1, 2, 3, 4] and firsts[again].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(4))
def test_byte_path_gives_the_dict_paths_chunks(model_dir, seed):
    by_bytes, by_dict = _table(Router.load(model_dir)), _table(Router.load(model_dir))
    rng = random.Random(seed)
    for _ in range(12):
        batch = _texts(rng, rng.randrange(2, 200))
        if rng.random() < 0.2:
            batch[rng.randrange(len(batch))] += " a\x00b"  # a NUL in a text: the dict path answers
        cids, _ = by_bytes.ids(batch)
        ref, _ = by_dict._ids_by_dict(batch)
        assert _chunks_of(by_bytes, cids) == _chunks_of(by_dict, ref) == _split(batch)


def test_a_long_chunk_is_not_taken_for_its_first_16_bytes(fresh):
    table = _table(fresh)
    prefixes = ["abcdefgh" * 2, "é" * 8, "kelurahan" + "ketintang"[:7]]
    batch = [" ".join(p + tail for p in prefixes for tail in ("", "x", "an", "é")) + " lampu mati"] * 200
    for _ in range(2):  # the second time, the 16-byte chunks are in the key table
        cids, _ = table.ids(batch)
        assert _chunks_of(table, cids) == _split(batch)


def test_large_batches_take_the_byte_path(fresh, monkeypatch):
    table = _table(fresh)
    taken = []
    real = ChunkTable._ids_by_bytes

    def spy(self, joined, texts):
        out = real(self, joined, texts)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(ChunkTable, "_ids_by_bytes", spy)
    batch = _texts(random.Random(9), 400)
    assert len(" ".join(batch)) >= chunks_mod._BYTES_FROM
    for _ in range(2):  # cold (every chunk new), then warm (found by its key)
        cids, _ = table.ids(batch)
        assert _chunks_of(table, cids) == _split(batch)
    assert taken == [True, True]
    assert table._state.byte_keys.n > 1000
    # a text holding a NUL byte is left to the dict path
    table.ids(batch + ["x\x00y"])
    assert taken[-1] is False
    # small batches never try it
    table.ids(batch[:2])
    assert len(taken) == 3


def test_byte_path_starts_the_table_again_when_full(fresh):
    table = _table(fresh)
    table.max_chunks = 3000
    rng = random.Random(5)
    for _ in range(6):
        batch = _texts(rng, 150)
        cids, _ = table.ids(batch)
        assert _chunks_of(table, cids) == _split(batch)
        assert len(table) <= max(3000, len(set(_split(batch))) + 1)


def test_byte_path_is_the_same_from_racing_threads(fresh):
    table = _table(fresh)
    rng = random.Random(11)
    batches = [_texts(rng, 120) for _ in range(8)]

    def work(k):
        out = []
        for i in range(len(batches)):
            b = batches[(i + k) % len(batches)]
            cids, _ = table.ids(b)
            out.append((_chunks_of(table, cids), _split(b)))
        return out

    with ThreadPoolExecutor(4) as pool:  # a thread's exception is raised here
        results = [pair for pairs in pool.map(work, range(4)) for pair in pairs]
    assert len(results) == 32 and all(got == want for got, want in results)


def _rows_of(table: ChunkTable) -> dict[str, tuple]:
    """chunk -> (its feature ids, dictionary words, gazetteer word ids), read from the table."""
    tok_start, tok_len, known, word_start, word_len, tokens, words = table._state.arrays()
    out = {}
    for chunk, i in table._state.ids.items():
        if i:
            out[chunk] = (tokens[tok_start[i]:tok_start[i] + tok_len[i]].tolist(), int(known[i]),
                          words[word_start[i]:word_start[i] + word_len[i]].tolist())
    return out


def test_a_full_table_keeps_its_batch_and_most_used_chunks_with_the_same_rows(model_dir, monkeypatch):
    small, fresh = _table(Router.load(model_dir)), _table(Router.load(model_dir))
    small.max_chunks = 4000
    rng = random.Random(21)
    common = _texts(rng, 30)  # in every batch
    made = []
    real_add = ChunkTable._add

    def counting_add(self, state, new_chunks):
        if self is small:
            made.append(list(new_chunks))
        return real_add(self, state, new_chunks)

    monkeypatch.setattr(ChunkTable, "_add", counting_add)
    batches = [common + _texts(rng, 60) for _ in range(8)]
    generations = []
    for batch in batches:
        cids, _ = small.ids(batch)
        assert _chunks_of(small, cids) == _split(batch)
        generations.append(small._state)
        assert len(small) <= small.max_chunks
    assert len(set(map(id, generations))) > 1  # it did start again
    # every chunk kept over a start has the row a fresh table makes for it
    kept = _rows_of(small)
    fresh.ids(list(kept))
    assert kept == {c: r for c, r in _rows_of(fresh).items() if c in kept}
    # the chunks of every batch (the common texts) were made once, not again after each start
    made_chunks = [c for m in made for c in m]
    common_chunks = set(_split(common)) - {SEPARATOR}
    assert sum(c in common_chunks for c in made_chunks) == len(common_chunks)
