"""The chunk table: what routing needs from each distinct whitespace chunk, kept as numpy rows.

The text stages after :func:`~lapor_nlp.text.clean.prepare` act on one whitespace-separated chunk
at a time (see :mod:`lapor_nlp.text.pipeline`), so a batch is routed from its chunks: the whole
batch is joined and split once, each chunk becomes an integer id with one dict lookup, and a chunk
seen for the first time goes through the Preprocessor's stages once. Its row holds

- its tokens as feature ids (-1: not in the model's vocabulary; kept, since a bigram must not
  join the tokens on either side of an unknown one),
- how many of its tokens are Sastrawi dictionary words (the ``not_indonesian`` test),
- its plain words as gazetteer word ids (-1: a word no place name or cue contains).

A batch's documents are then gathered from these rows with a few array operations, with no Python
work per token. The table is bounded (``max_chunks``); when full it starts again with the batch's
chunks and the most used others (at most half of it), their rows copied.

A large batch does not look its chunks up one by one in the dict (~200 ns each, the largest cost
left in routing): it is encoded to UTF-8 once, its chunk boundaries found with numpy, and each
chunk of at most 16 bytes is found by its bytes themselves, read as two little-endian words, in
an open-addressing table (:class:`_ByteKeys`). The key *is* the chunk (no prepared text holds a
NUL byte there, so a chunk's bytes and length are both in it), so a hit is exact; a miss (a new
chunk, a longer one) is looked up in the dict as before: 3.1-3.8 us a complaint instead of 9.1
(``bench/latency.py``'s stage table).

Threads: ids are given and rows appended under a lock; a row, once written, never changes, and a
grown array is a new array, so a batch keeps reading the arrays it was given. The byte keys are
written under the same lock, the keys of an insert before their ids, and read id first; a slot
read while it is being filled is a miss, which the dict answers; a grown key table is a new one.
"""

from __future__ import annotations

import operator
import re
import threading
from itertools import chain, compress, repeat
from typing import NamedTuple

import numpy as np

from .probing import place

#: Joins the texts of a batch: a chunk no prepared text can hold (``prepare`` removes lone
#: surrogates from a non-ASCII text, and an ASCII text has none), so it marks the boundaries.
SEPARATOR = "\ud800"
_JOIN = f" {SEPARATOR} "
# Below this many words in a batch, the gazetteer's words are picked in Python (see _relevant).
_SMALL = 512
# From this many characters a batch's chunks are found by their bytes (_ByteKeys); below it the
# dozen numpy calls cost more than the dict lookups they save.
_BYTES_FROM = 4096
# The byte path joins texts with a NUL between spaces: it is then the only chunk made of byte 0.
_NUL_JOIN = " \x00 "
# What str.split() splits at: these ASCII bytes, and the non-ASCII whitespace (which the byte path
# turns into spaces first, which leaves split()'s result as it was).
_SPACE_BYTES = np.array([chr(i).isspace() for i in range(256)], bool) & (np.arange(256) < 128)
# (Written out: finding them among all code points costs 60 ms at import. A test checks the list.)
_WIDE_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


class _Column:
    """A growable numpy array (capacity doubling); ``view()`` is the filled part."""

    __slots__ = ("a", "n")

    def __init__(self, dtype, capacity: int = 4096):
        self.a = np.empty(capacity, dtype)
        self.n = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self.a.dtype)
        end = self.n + len(values)
        if end > len(self.a):
            grown = np.empty(max(end, 2 * len(self.a)), self.a.dtype)
            grown[:self.n] = self.a[:self.n]
            self.a = grown  # readers keep the old array; its filled part is never written again
        self.a[self.n:end] = values
        self.n = end

    def view(self) -> np.ndarray:
        return self.a[:self.n]


class _Ids(dict):
    """chunk -> id; a chunk not in it reads -1 (what ``ChunkTable.ids`` looks for), without a
    KeyError ending its one pass of lookups. ``in`` and ``get`` are the plain dict's."""

    __slots__ = ()

    def __missing__(self, chunk):
        return -1


class _ByteKeys:
    """Chunks of at most 16 UTF-8 bytes -> their id, found for a whole batch with numpy.

    A chunk's key is its bytes as two little-endian 64-bit words, zero past its end: no chunk
    holds a NUL byte (the byte path checks it), so different chunks have different keys, and a
    lookup that finds a key has found the chunk. Open addressing with linear probing
    (:func:`lapor_nlp.probing.place`, as ``features._CodeTable``), at most half full; a slot is
    never emptied. The batch's separator, the chunk of one NUL byte, is key (0, 0) -> id 0.
    """

    _M0 = np.uint64(0x9E3779B97F4A7C15)
    _M1 = np.uint64(0xC2B2AE3D27D4EB4F)
    # Masks that keep a chunk's first min(len, 8) bytes in the first word, the rest in the second.
    _LOW = np.array([(1 << 8 * min(k, 8)) - 1 for k in range(17)], np.uint64)
    _HIGH = np.array([(1 << 8 * (k - 8)) - 1 if k > 8 else 0 for k in range(17)], np.uint64)

    def __init__(self, bits: int = 12):
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.k0 = np.zeros(1 << bits, np.uint64)
        self.k1 = np.zeros(1 << bits, np.uint64)
        self.v = np.full(1 << bits, -1, np.int64)
        self.n = 0

    @classmethod
    def keys(cls, data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, k0, k1, short) of the whitespace-separated chunks of ``data``;
        ``short``: the chunk has at most 16 bytes (only those have keys)."""
        n = len(data)
        padded = np.full(n + 24, 32, np.uint8)  # spaces after the end: no chunk runs on
        padded[:n] = np.frombuffer(data, np.uint8)
        space = np.empty(n + 25, bool)
        space[0] = True
        np.take(_SPACE_BYTES, padded, out=space[1:])
        edges = np.flatnonzero(space[1:] != space[:-1])  # a chunk's start, then its end, ...
        starts, ends = edges[0::2], edges[1::2]
        length = ends - starts
        short = length <= 16
        length = np.minimum(length, 16)
        # Every position's next 8 bytes as one (unaligned) little-endian word.
        words = np.ndarray((n + 17,), "<u8", buffer=padded.data, strides=(1,))
        k0 = words[starts] & cls._LOW[length]
        k1 = words[starts + 8] & cls._HIGH[length]
        return starts, ends, k0.astype(np.uint64, copy=False), k1.astype(np.uint64, copy=False), short

    @classmethod
    def mix(cls, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """One 64-bit word of a key's two (its top bits are its home slot)."""
        return (k0 ^ (k1 * cls._M1)) * cls._M0

    def _home(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        return (self.mix(k0, k1) >> np.uint64(64 - self.bits)).astype(np.int64)

    def find(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """Each key's id, or -1."""
        slot = self._home(k0, k1)
        v = self.v[slot]  # the id first: a slot's keys are written before its id
        hit = (v >= 0) & (self.k0[slot] == k0) & (self.k1[slot] == k1)
        out = np.where(hit, v, -1)
        at = np.flatnonzero(~hit & (v >= 0))  # most keys are found at home: probe on for the rest
        k0, k1, slot = k0[at], k1[at], (slot[at] + 1) & self.mask
        while len(at):
            v = self.v[slot]
            hit = (v >= 0) & (self.k0[slot] == k0) & (self.k1[slot] == k1)
            out[at[hit]] = v[hit]
            go_on = ~hit & (v >= 0)
            at, k0, k1, slot = at[go_on], k0[go_on], k1[go_on], (slot[go_on] + 1) & self.mask
        return out

    def add(self, k0: np.ndarray, k1: np.ndarray, ids: np.ndarray) -> "_ByteKeys":
        """Insert distinct keys not in the table (under the ChunkTable's lock); the table to use
        from now on (a bigger copy once it would be more than half full)."""
        table = self
        if 2 * (self.n + len(k0)) > len(self.v):
            bits = max(self.bits, (2 * (self.n + len(k0))).bit_length())
            table = _ByteKeys(bits)
            old = self.v >= 0
            table._insert(self.k0[old], self.k1[old], self.v[old])
        table._insert(k0, k1, ids)
        return table

    def _insert(self, k0: np.ndarray, k1: np.ndarray, ids: np.ndarray) -> None:
        slots = place(self._home(k0, k1), self.v == -1, self.mask)
        self.k0[slots] = k0
        self.k1[slots] = k1
        self.v[slots] = ids  # last: readers look at the id first
        self.n += len(k0)


def _distinct(at: np.ndarray, k0: np.ndarray, k1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the first position of each distinct key (k0, k1) among the positions ``at``, and for each
    of ``at`` the index of its key's first position among those), grouping by one 64-bit mix of
    the two words. Two keys with the same mix are caught (each key is compared with its group's
    first) and then nothing is grouped, so the answer is exact."""
    if len(at) < 2:
        return at, np.arange(len(at))
    a0, a1 = k0[at], k1[at]
    _, first, again = np.unique(_ByteKeys.mix(a0, a1), return_index=True, return_inverse=True)
    again = again.ravel()  # (numpy 2.0.x gives the inverse the input's shape; 2.1+ flat)
    lead = first[again]
    if not (np.array_equal(a0[lead], a0) and np.array_equal(a1[lead], a1)):
        return at, np.arange(len(at))
    return at[first], again


class _State:
    """One generation of the table: chunk -> id, and the rows (row 0: the separator)."""

    def __init__(self):
        self.ids: _Ids = _Ids({SEPARATOR: 0})
        self.byte_keys = _ByteKeys().add(np.zeros(1, np.uint64), np.zeros(1, np.uint64),
                                         np.zeros(1, np.int64))
        self.tok_start, self.tok_len, self.known = _Column(np.int64), _Column(np.int64), _Column(np.int64)
        self.word_start, self.word_len = _Column(np.int64), _Column(np.int64)
        self.tokens, self.words = _Column(np.int32), _Column(np.int32)
        # in how many batches each chunk was used: what a new generation keeps (ChunkTable._carried)
        self.uses = _Column(np.int64)
        for col in (self.tok_start, self.tok_len, self.known, self.word_start, self.word_len, self.uses):
            col.extend([0])

    def arrays(self) -> tuple:
        return (self.tok_start.view(), self.tok_len.view(), self.known.view(),
                self.word_start.view(), self.word_len.view(), self.tokens.view(), self.words.view())


class Gathered(NamedTuple):
    """A batch's documents, as arrays (``n`` documents)."""

    token_ids: np.ndarray       # feature ids of every token, documents one after another
    token_offsets: np.ndarray   # (n + 1,) where each document's tokens start
    known_words: np.ndarray     # (n,) tokens that are dictionary words
    n_words: np.ndarray         # (n,) plain words (before normalisation)
    place_words: np.ndarray     # gazetteer word ids of the words that can matter to find_in_words
    place_offsets: np.ndarray   # (n + 1,)


class ChunkTable:
    """Rows per distinct chunk for one Router (its model's vocabulary, its gazetteer).

    ``word_roles`` is :meth:`~lapor_nlp.jurisdiction.Gazetteer._word_roles`: (word -> gazetteer
    word id, is-first-word-of-a-name, is-word-of-a-name, is-cue, longest name in words).
    """

    def __init__(self, preprocessor, vocabulary: dict[str, int], dictionary, word_roles,
                 max_chunks: int = 200_000):
        self._pre = preprocessor
        self._vocab = vocabulary
        self._dictionary = dictionary
        self._place_ids, self._first, self._name, self._cue, self._max_len = word_roles
        self._roles_lists = None
        self.max_chunks = max(int(max_chunks), 1)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every chunk (the next batch processes its chunks again)."""
        self._state = _State()

    def __len__(self) -> int:
        return len(self._state.ids)

    # -- ids --------------------------------------------------------------------------------------
    def ids(self, prepared_texts: list[str]) -> tuple[np.ndarray, tuple]:
        """(chunk ids of the joined batch, separators included; the arrays to gather them from)."""
        joined = _NUL_JOIN.join(prepared_texts) if len(prepared_texts) > 1 else ""
        found = None
        if len(joined) >= _BYTES_FROM:
            found = self._ids_by_bytes(joined, prepared_texts)
        if found is None:
            return self._ids_by_dict(prepared_texts)
        # A large batch counts once for each of its chunks (a repeated index adds once): what a
        # full table keeps (_carried). A race between threads, or a table started again
        # meanwhile, only blurs the counts. (Small batches, a service's single complaints, do
        # not pay for it: 0.2 us a complaint in a large batch.)
        cids, arrays = found
        uses = self._state.uses
        if len(uses.a) > cids.max():
            uses.a[cids] += 1
        return cids, arrays

    def _ids_by_bytes(self, joined: str, prepared_texts: list[str]) -> tuple[np.ndarray, tuple] | None:
        """:meth:`ids` for a large batch, or None where only the dict path can answer (a text
        holds a NUL, a lone surrogate; the table would have to start again)."""
        if joined.count("\x00") != len(prepared_texts) - 1:
            return None
        if not joined.isascii():  # (a few texts: searched one by one, not the whole batch)
            wide = _WIDE_SPACE.search
            if any(not t.isascii() and wide(t) for t in prepared_texts):
                joined = _WIDE_SPACE.sub(" ", joined)
        try:
            data = joined.encode("utf-8")
        except UnicodeEncodeError:
            return None
        starts, ends, k0, k1, short = _ByteKeys.keys(data)
        state = self._state
        found = state.byte_keys.find(k0, k1)
        found[~short] = -1
        missing = np.flatnonzero(found < 0)
        if len(missing):
            # Each distinct miss is looked up once: a cold table, or one just started again,
            # misses most of a batch, each chunk many times (275,000 misses for 31,000 distinct
            # chunks in the first batch of a backlog), and a Python slice and lookup costs more
            # than numpy's grouping of the keys. Long chunks (no key) are looked up each.
            keyed = missing[short[missing]]
            firsts, again = _distinct(keyed, k0, k1)
            missing = np.concatenate([firsts, missing[~short[missing]]])
            pairs = zip(starts[missing].tolist(), ends[missing].tolist())
            if len(data) == len(joined):  # ASCII: byte positions are character positions
                missed = [joined[a:b] for a, b in pairs]
            else:
                missed = [data[a:b].decode("utf-8") for a, b in pairs]
            # The dict first, without the lock: a warm batch's only misses are its chunks of
            # more than 16 bytes, which have no byte key (and nothing to publish).
            known = np.fromiter(map(state.ids.__getitem__, missed), np.int64, len(missed))
            if known.min() >= 0 and not len(firsts):
                found[missing] = known
                return found, state.arrays()
            with self._lock:
                if state is not self._state:
                    return None
                unknown = np.flatnonzero(known < 0)
                if len(unknown):  # looked up again: another thread may have added some
                    again_missed = [missed[i] for i in unknown.tolist()]
                    known[unknown] = np.fromiter(map(state.ids.__getitem__, again_missed), np.int64,
                                                 len(unknown))
                    unknown = np.flatnonzero(known < 0)
                if len(unknown):
                    new = dict.fromkeys([missed[i] for i in unknown.tolist()])
                    if len(state.ids) + len(new) > self.max_chunks:
                        return None  # the dict path starts the table again
                    self._add(state, list(new))
                    ids = state.ids
                    known[unknown] = [ids[missed[i]] for i in unknown.tolist()]
                found[missing] = known
                found[keyed] = found[firsts[again]]
                # Publish the byte keys of the short chunks missed (each once, if still absent).
                if len(firsts):
                    absent = state.byte_keys.find(k0[firsts], k1[firsts]) < 0
                    firsts = firsts[absent]
                    if len(firsts):
                        state.byte_keys = state.byte_keys.add(k0[firsts], k1[firsts], found[firsts])
        return found, state.arrays()

    def _ids_by_dict(self, prepared_texts: list[str]) -> tuple[np.ndarray, tuple]:
        """:meth:`ids` by one dict lookup per chunk."""
        # The separator stands between spaces, so that it is a chunk of its own.
        chunks = _JOIN.join(prepared_texts).split()
        state = self._state
        # One pass of dict lookups straight into the array; a chunk not in the table reads -1
        # (_Ids.__missing__), so a batch with new chunks is not looked up a second time: only
        # its misses are (a typo'd backlog has new chunks in every batch).
        found = np.fromiter(map(state.ids.__getitem__, chunks), np.int64, len(chunks))
        if len(found) and found.min() < 0:  # (one reduction: the warm path of a single text)
            with self._lock:
                if state is not self._state:  # the table started again meanwhile: look again
                    state = self._state
                    found = np.fromiter(map(state.ids.__getitem__, chunks), np.int64, len(chunks))
                missing = np.flatnonzero(found < 0)
                missed = [chunks[i] for i in missing.tolist()]
                contains = state.ids.__contains__  # another thread may have added some meanwhile
                new = dict.fromkeys(compress(missed, map(operator.not_, map(contains, missed))))
                if len(state.ids) + len(new) > self.max_chunks:
                    # Full: a new generation, holding this batch's chunks (the known ones copied)
                    # and the most used others, up to half the table.
                    batch = dict.fromkeys(chunks)
                    batch.pop(SEPARATOR, None)
                    others = min(self.max_chunks // 2, self.max_chunks - len(batch) - 1)
                    self._state = state = self._carried(state, np.unique(found[found > 0]), others)
                    self._add(state, [c for c in batch if c not in state.ids])
                    found = np.fromiter(map(state.ids.__getitem__, chunks), np.int64, len(chunks))
                else:
                    self._add(state, list(new))
                    found[missing] = np.fromiter(map(state.ids.__getitem__, missed), np.int64,
                                                 len(missed))
        # Taken after the ids: every id found has its row in these arrays.
        return found, state.arrays()

    def _carried(self, old: "_State", present: np.ndarray, others: int) -> "_State":
        """A new generation holding the chunks ``present`` (ids in ``old``: the batch's own) and
        the ``others`` most used other chunks of ``old``, their rows copied, not made again: a
        backlog whose vocabulary outgrows the table would otherwise run its common chunks through
        the text stages once more after every start (65,206 of the bench backlog's 292,507 first
        sights), and a service would pay for them request by request. Their byte keys are
        published again as the byte path meets them."""
        new = _State()
        uses = old.uses.view().copy()
        uses[0] = -1  # the separator: row 0 of every generation
        uses[present] = -1
        others = min(max(others, 0), int(np.count_nonzero(uses >= 0)))
        top = np.argpartition(-uses, others - 1)[:others] if others else present[:0]
        ids = np.sort(np.concatenate([present, top]))
        if not len(ids):
            return new
        seen = old.uses.view()
        tok_start, tok_len, known, word_start, word_len, tokens, words = old.arrays()
        tl, wl = tok_len[ids], word_len[ids]
        whole = np.array([0, len(ids)])
        new.tokens.extend(_gather(tok_start[ids], tl, whole, tokens)[1])
        new.words.extend(_gather(word_start[ids], wl, whole, words)[1])
        new.tok_start.extend(np.cumsum(tl) - tl)
        new.tok_len.extend(tl)
        new.known.extend(known[ids])
        new.word_start.extend(np.cumsum(wl) - wl)
        new.word_len.extend(wl)
        new.uses.extend(seen[ids])
        names = list(old.ids)  # a chunk's id is its place in the dict (ids are never reused)
        new.ids.update(zip(map(names.__getitem__, ids.tolist()), range(1, len(ids) + 1)))
        return new

    def _add(self, state: "_State", new_chunks: list[str]) -> None:
        """Run each new chunk through the text stages once and append its row (under the lock);
        the ids are published last, so a reader never finds an id without its row. The rows are
        made for all new chunks at once: their tokens and words flattened, looked up in one pass
        each, and counted per chunk from cumulative sums."""
        pre = self._pre
        cached, process = pre._token_cache.get, pre._process_chunk
        entries = [cached(chunk) or process(chunk) for chunk in new_chunks]
        n = len(entries)
        toks = [e[0] for e in entries]
        ws = [e[1] for e in entries]
        tok_len = np.fromiter(map(len, toks), np.int64, n)
        word_len = np.fromiter(map(len, ws), np.int64, n)
        flat_toks = list(chain.from_iterable(toks))
        flat_words = list(chain.from_iterable(ws))
        m = len(flat_toks)
        tok_end = np.cumsum(tok_len)
        # dictionary words per chunk: the count of known tokens up to each chunk's end, less that
        # up to its start
        known_upto = np.zeros(m + 1, np.int64)
        np.cumsum(np.fromiter(map(self._dictionary.__contains__, flat_toks), bool, m), out=known_upto[1:])
        t0, w0 = state.tokens.n, state.words.n
        state.tokens.extend(np.fromiter(map(self._vocab.get, flat_toks, repeat(-1)), np.int32, m))
        state.words.extend(np.fromiter(map(self._place_ids.get, flat_words, repeat(-1)), np.int32,
                                       len(flat_words)))
        state.tok_start.extend(t0 + tok_end - tok_len)
        state.tok_len.extend(tok_len)
        state.known.extend(known_upto[tok_end] - known_upto[tok_end - tok_len])
        state.word_start.extend(w0 + np.cumsum(word_len) - word_len)
        state.word_len.extend(word_len)
        state.uses.extend(np.zeros(n, np.int64))
        next_id = len(state.ids)
        state.ids.update(zip(new_chunks, range(next_id, next_id + n)))

    # -- documents --------------------------------------------------------------------------------
    def gather(self, cids: np.ndarray, arrays: tuple, n_docs: int) -> Gathered:
        """The batch's documents from its chunk ids (``ids()``)."""
        tok_start, tok_len, known, word_start, word_len, tokens, words = arrays
        # Chunk positions where each document starts: 0 and one after each separator.
        bounds = np.empty(n_docs + 1, np.int64)
        bounds[0] = 0
        bounds[1:-1] = np.flatnonzero(cids == 0) + 1
        bounds[-1] = len(cids)
        tl = tok_len[cids]
        tok_offsets, token_ids = _gather(tok_start[cids], tl, bounds, tokens)
        kc = np.zeros(len(cids) + 1, np.int64)
        np.cumsum(known[cids], out=kc[1:])
        wl = word_len[cids]
        wc = np.zeros(len(cids) + 1, np.int64)
        np.cumsum(wl, out=wc[1:])
        word_offsets, place = _gather(word_start[cids], wl, bounds, words)
        place, place_offsets = self._relevant(place, word_offsets)
        kb, wb = kc[bounds], wc[bounds]
        return Gathered(token_ids, tok_offsets, kb[1:] - kb[:-1], wb[1:] - wb[:-1],
                        place, place_offsets)

    def _relevant(self, g: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The words that can change what ``Gazetteer.find_in_words`` finds, each run of other
        words between them as one -1, none at either end of a document. What it finds in them is
        what it finds in all the words: a name's words are all kept (each is a word of a name
        within the longest name's length after a first word), a cue just before a first word is
        kept, and a word that is neither is not a cue, so -1 (no name, no cue) stands for it."""
        if len(g) < _SMALL:
            return self._relevant_small(g, offsets)
        known = g >= 0
        gi = np.where(known, g, 0)
        first = self._first[gi] & known
        if not first.any():  # no name can start anywhere: find_in_words finds nothing
            return g[:0], np.zeros(len(offsets), np.int64)
        doc = np.repeat(np.arange(len(offsets) - 1), offsets[1:] - offsets[:-1])
        keep = first.copy()
        # a cue right before a first word of the same document
        keep[:-1] |= self._cue[gi[:-1]] & known[:-1] & first[1:] & (doc[:-1] == doc[1:])
        name = self._name[gi] & known
        for k in range(1, self._max_len):  # a name's word, within a name's length after a first word
            keep[k:] |= name[k:] & first[:-k] & (doc[k:] == doc[:-k])
        # Collapse each run of dropped words into one -1, and drop runs at either end.
        kept_before = np.cumsum(keep)  # kept words up to and including each position
        start_kept = np.concatenate(([0], kept_before))[offsets[:-1]]  # before each document
        has_kept_before = kept_before - start_kept[doc] > 0
        # kept words after a position in its document
        total = kept_before[offsets[1:] - 1] - start_kept
        after = total[doc] - (kept_before - start_kept[doc])
        run_start = ~keep & np.concatenate(([True], keep[:-1] | (doc[1:] != doc[:-1])))
        marker = run_start & has_kept_before & (after > 0)
        out = keep | marker
        vals = np.where(keep, g, -1)[out]
        cnt = np.bincount(doc[out], minlength=len(offsets) - 1)
        new_offsets = np.zeros(len(offsets), np.int64)
        np.cumsum(cnt, out=new_offsets[1:])
        return vals.astype(np.int32, copy=False), new_offsets

    def _relevant_small(self, g: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_relevant` in plain Python, for a few words (a single complaint): the same
        rules, word by word, cheaper than the ~40 numpy calls of the batch version there."""
        if self._roles_lists is None:
            self._roles_lists = (self._first.tolist(), self._name.tolist(), self._cue.tolist())
        first, name, cue = self._roles_lists
        span = self._max_len
        words = g.tolist()
        bounds = offsets.tolist()
        out: list[int] = []
        new_offsets = [0]
        for a, b in zip(bounds[:-1], bounds[1:]):
            doc = words[a:b]
            m = len(doc)
            keep = [False] * m
            for i, w in enumerate(doc):
                if w >= 0 and first[w]:
                    keep[i] = True
                    if i and doc[i - 1] >= 0 and cue[doc[i - 1]]:
                        keep[i - 1] = True
                    for j in range(i + 1, min(i + span, m)):
                        if doc[j] >= 0 and name[doc[j]]:
                            keep[j] = True
            start = len(out)
            gap = False
            for w, k in zip(doc, keep):
                if k:
                    if gap and len(out) > start:
                        out.append(-1)
                    gap = False
                    out.append(w)
                else:
                    gap = True
            new_offsets.append(len(out))
        return np.array(out, np.int32), np.array(new_offsets, np.int64)


def _gather(starts: np.ndarray, lengths: np.ndarray, bounds: np.ndarray,
            flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``flat[starts[i]:starts[i] + lengths[i]]`` over i: (document offsets, values)."""
    cum = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=cum[1:])
    total = int(cum[-1])
    idx = np.repeat(starts - cum[:-1], lengths) + np.arange(total)
    return cum[bounds], flat[idx]
