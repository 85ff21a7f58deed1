"""TF-IDF features over preprocessed tokens: unigrams and bigrams, vectorised with numpy.

scikit-learn's ``TfidfVectorizer`` builds every n-gram as a Python string, one document at a time;
at 20,000 complaints a second that alone would take the whole time budget. Here tokens become
integer ids with one dict lookup each, and bigrams are found for the whole batch at once as
``id_a * V + id_b`` codes looked up in a hash table of the codes seen in training (``_CodeTable``).
The weighting is scikit-learn's ``sublinear_tf=True, smooth_idf=True, norm='l2'``
(``tests/test_features.py`` checks the two agree).

The fitted state is plain arrays and a word list, so it is saved without pickle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain, repeat
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .errors import InputValueError, NotFittedError
from .probing import place


class TokenTfidf:
    """Sublinear TF-IDF of unigrams and (optionally) bigrams of token lists."""

    #: dtype of the matrices ``transform`` returns (float32 halves memory and matches the
    #: float32 weights of the linear heads; TF-IDF values need no more precision).
    dtype = np.float32

    def __init__(self, ngram_max: int = 2, min_df: int = 1, max_features: int | None = None):
        if ngram_max not in (1, 2):
            raise InputValueError("ngram_max must be 1 or 2")
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, docs: Sequence[Sequence[str]]) -> "TokenTfidf":
        df: Counter = Counter()
        for doc in docs:
            df.update(set(doc))
        self.words_ = sorted(w for w, n in df.items() if n >= self.min_df)
        self.vocabulary_ = {w: i for i, w in enumerate(self.words_)}
        ids, offsets = self._ids(docs, self.vocabulary_)
        n_docs = len(docs)
        doc_of = _doc_of(offsets)
        V = len(self.words_)
        uni_df = np.bincount(np.unique(doc_of[ids >= 0].astype(np.int64) * V + ids[ids >= 0]) % max(V, 1),
                             minlength=V)
        if self.ngram_max == 2 and V:
            codes, cdoc = self._bigram_codes(ids, doc_of)
            uniq_pairs = np.unique(cdoc * (V * V) + codes) if len(codes) else np.zeros(0, np.int64)
            pair_codes = uniq_pairs % (V * V)
            bi_codes, bi_df = np.unique(pair_codes, return_counts=True)
            keep = bi_df >= self.min_df
            bi_codes, bi_df = bi_codes[keep], bi_df[keep]
        else:
            bi_codes, bi_df = np.zeros(0, np.int64), np.zeros(0, np.int64)
        df = np.concatenate([uni_df, bi_df]).astype(np.float64)
        if self.max_features and len(df) > self.max_features:
            top = np.sort(np.argsort(-df, kind="stable")[: self.max_features])
            # Keep all kept unigrams' ids stable by mapping dropped ones to -1 at transform time.
            keep_mask = np.zeros(len(df), bool)
            keep_mask[top] = True
            self._feature_map_ = np.cumsum(keep_mask) - 1
            self._feature_map_[~keep_mask] = -1
            df = df[keep_mask]
        else:
            self._feature_map_ = None
        self.bigram_codes_ = bi_codes.astype(np.int64)
        self.idf_ = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        return self

    @property
    def n_features_(self) -> int:
        return len(self.idf_)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The name of each output column ("jalan", "jalan rusak"), as scikit-learn names it."""
        if not hasattr(self, "idf_"):
            raise NotFittedError("this TokenTfidf is not fitted")
        V = len(self.words_)
        names = self.words_ + [f"{self.words_[c // V]} {self.words_[c % V]}" for c in self.bigram_codes_]
        if self._feature_map_ is not None:
            names = [n for n, m in zip(names, self._feature_map_) if m >= 0]
        return np.asarray(names, dtype=object)

    def names_of(self, columns: list[int]) -> list[str]:
        """The names of some output columns: ``get_feature_names_out()[columns]``, without
        building the other names (an explanation names a few columns a row; all of them take
        about 5 MiB as Python strings)."""
        if not hasattr(self, "idf_"):
            raise NotFittedError("this TokenTfidf is not fitted")
        words, codes = self.words_, self.bigram_codes_
        V = len(words)
        if self._feature_map_ is not None:  # output column -> column before the map
            kept = getattr(self, "_kept_columns", None)
            if kept is None:
                kept = self._kept_columns = np.flatnonzero(self._feature_map_ >= 0).tolist()
            columns = [kept[c] for c in columns]
        out = []
        for k in columns:
            if k < V:
                out.append(words[k])
            else:
                c = int(codes[k - V])
                out.append(f"{words[c // V]} {words[c % V]}")
        return out

    def feature_names(self) -> list[str]:
        """Deprecated alias of :meth:`get_feature_names_out`, as a list."""
        import warnings

        warnings.warn("TokenTfidf.feature_names() is deprecated: use get_feature_names_out()",
                      DeprecationWarning, stacklevel=2)
        return self.get_feature_names_out().tolist()

    def get_params(self, deep: bool = True) -> dict:
        return {"ngram_max": self.ngram_max, "min_df": self.min_df, "max_features": self.max_features}

    def set_params(self, **params) -> "TokenTfidf":
        for k, v in params.items():
            if k not in self.get_params():
                raise InputValueError(f"TokenTfidf has no parameter {k!r}")
            setattr(self, k, v)
        return self

    # -- transforming -----------------------------------------------------------------------------
    @staticmethod
    def _ids(docs: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        get = vocab.get
        flat = list(map(get, chain.from_iterable(docs), repeat(-1)))
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        offsets = np.zeros(len(docs) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return np.asarray(flat, dtype=np.int64), offsets

    def _bigram_table(self) -> "_CodeTable":
        """The hash table of ``bigram_codes_`` (built at first use; rebuilt if they change)."""
        cached = getattr(self, "_bigram_table_", None)
        if cached is None or cached.codes is not self.bigram_codes_:
            cached = self._bigram_table_ = _CodeTable(self.bigram_codes_)
        return cached

    def _bigram_positions(self, codes: np.ndarray) -> np.ndarray:
        """Each bigram code's index in ``bigram_codes_``, or -1: found in the hash table, or for a
        few codes (a few documents) by one binary search, fewer numpy calls than the probes."""
        if len(codes) > _FEW_CODES:
            return self._bigram_table().find(codes)
        known = self.bigram_codes_
        pos = np.searchsorted(known, codes)
        pos[pos >= len(known)] = 0
        return np.where(known[pos] == codes, pos, -1)

    def _bigram_codes(self, ids: np.ndarray, doc_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        V = len(self.words_) if hasattr(self, "words_") else 0
        if len(ids) < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a, b = ids[:-1], ids[1:]
        ok = (a >= 0) & (b >= 0) & (doc_of[:-1] == doc_of[1:])
        return a[ok] * V + b[ok], doc_of[:-1][ok]

    def transform(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """The documents' TF-IDF rows as a scipy CSR matrix."""
        return self.transform_rows(docs).tocsr()

    def transform_rows(self, docs: Sequence[Sequence[str]]) -> "Rows":
        """The same rows as plain CSR arrays, without a scipy matrix: building one costs ~35 us
        of checks, a tenth of a single prediction (the router uses these arrays directly)."""
        if not hasattr(self, "idf_"):
            raise NotFittedError("TokenTfidf is not fitted; call fit() first")
        ids, offsets = self._ids(docs, self.vocabulary_)
        return self.transform_ids(ids, offsets)

    def transform_ids(self, ids: np.ndarray, offsets: np.ndarray) -> "Rows":
        """:meth:`transform_rows` of documents given as token ids (``vocabulary_`` ids, -1 for a
        token outside it), documents one after another, document ``d`` at
        ``ids[offsets[d]:offsets[d + 1]]``: the router's fast path gathers these from its chunk
        table without building a token list, and gets the same numbers (the same code runs)."""
        if not hasattr(self, "idf_"):
            raise NotFittedError("TokenTfidf is not fitted; call fit() first")
        ids = np.asarray(ids, dtype=np.int64)  # bigram codes id_a * V + id_b need 64 bits
        offsets = np.asarray(offsets, dtype=np.int64)
        n_docs = len(offsets) - 1
        if n_docs == 1 and len(ids) <= _ONE_DOC_TOKENS and offsets[0] == 0 and offsets[1] == len(ids):
            return self._transform_one(ids)
        doc_of = _doc_of(offsets)
        V = len(self.words_)
        known = ids >= 0
        rows = [doc_of[known]]
        cols = [ids[known]]
        if self.ngram_max == 2 and len(self.bigram_codes_):
            codes, cdoc = self._bigram_codes(ids, doc_of)
            pos = self._bigram_positions(codes)
            hit = pos >= 0
            rows.append(cdoc[hit])
            cols.append(V + pos[hit])
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        if self._feature_map_ is not None:
            c = self._feature_map_[c]
            r, c = r[c >= 0], c[c >= 0]
        # Count (row, feature) pairs with numpy and build the CSR matrix once: scipy's COO ->
        # CSR path costs several matrix constructions per call, which dominated single predictions.
        F = self.n_features_
        keys = r * F + c
        if n_docs * F <= _UINT32_KEYS:  # a batch's keys fit 32 bits: sorted in about 60% of the time
            keys = keys.astype(np.uint32)
        keys, counts = _count(keys)
        rows_of = keys // F
        indices = (keys - rows_of * F).astype(np.int32)
        data = (np.log(counts) + 1.0) * self.idf_[indices]
        indptr = np.zeros(n_docs + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows_of, minlength=n_docs), out=indptr[1:])
        norms = np.sqrt(np.bincount(rows_of, weights=data * data, minlength=n_docs))
        norms[norms == 0] = 1.0
        data /= norms[rows_of]
        return Rows(data.astype(self.dtype, copy=False), indices, indptr, (n_docs, F))

    def _transform_one(self, ids: np.ndarray) -> "Rows":
        """:meth:`transform_ids` of one document (``predict``), counted in Python: a third of the
        numpy calls, whose fixed cost is most of the time for a few dozen tokens. The numbers are
        the batch path's: the same ufuncs on the same values (``np.log`` of the int64 counts), the
        norm summed in feature order as ``np.bincount`` sums it; tests/test_features.py compares the
        paths bit for bit on generated documents, with and without a feature map, and
        tests/test_fast_path.py single predictions with batches on real texts."""
        tokens = ids.tolist()
        V = len(self.words_)
        cols = [t for t in tokens if t >= 0]
        if self.ngram_max == 2 and len(self.bigram_codes_) and len(tokens) > 1:
            codes = [a * V + b for a, b in zip(tokens, tokens[1:]) if a >= 0 and b >= 0]
            if codes:
                cols += [V + p for p in self._bigram_positions(np.array(codes, np.int64)).tolist() if p >= 0]
        if self._feature_map_ is not None:
            fmap = self._feature_map_
            cols = [m for m in fmap[cols].tolist() if m >= 0] if cols else []
        counted = Counter(cols)
        indices = sorted(counted)
        counts = np.array([counted[c] for c in indices], np.int64)
        idx = np.array(indices, np.int64)
        data = (np.log(counts) + 1.0) * self.idf_[idx]
        total = 0.0
        for w in (data * data).tolist():  # np.bincount's order: one running sum, feature order
            total += w
        norm = float(np.sqrt(total)) or 1.0
        data /= norm
        return Rows(data.astype(self.dtype, copy=False), idx.astype(np.int32),
                    np.array([0, len(indices)], np.int32), (1, self.n_features_))

    # -- persistence without pickle ---------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"ngram_max": self.ngram_max, "min_df": self.min_df,
                "max_features": self.max_features, "words": self.words_}
        arrays = {"idf": self.idf_, "bigram_codes": self.bigram_codes_}
        if self._feature_map_ is not None:
            arrays["feature_map"] = self._feature_map_
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "TokenTfidf":
        self = cls(meta["ngram_max"], meta["min_df"], meta["max_features"])
        self.words_ = list(meta["words"])
        self.vocabulary_ = {w: i for i, w in enumerate(self.words_)}
        self.idf_ = np.asarray(arrays["idf"], dtype=np.float64)
        self.bigram_codes_ = np.asarray(arrays["bigram_codes"], dtype=np.int64)
        self._feature_map_ = arrays.get("feature_map")
        return self


class Rows(NamedTuple):
    """Sparse rows in CSR layout (``data``, ``indices``: int32, ``indptr``: int32), as plain arrays."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    def tocsr(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


# One document of at most this many tokens is counted in Python (TokenTfidf._transform_one).
_ONE_DOC_TOKENS = 2048
# Above this many bigram codes in a call, they are looked up in the hash table (_CodeTable).
_FEW_CODES = 256
_UINT32_KEYS = (1 << 32) - 1


class _CodeTable:
    """An open-addressing hash table of distinct non-negative int64 codes (the bigram codes seen
    in training) -> their index in ``codes``: a batch's codes are found with a few vectorised probe
    rounds, about 2.5x faster than ``np.searchsorted`` in the sorted codes (whose binary search
    misses the cache at every step), and exactly: a slot matches only its own code.

    Linear probing (:func:`lapor_nlp.probing.place`), load at most 1/2, multiplicative
    (Fibonacci) hashing on the top bits."""

    _MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, codes: np.ndarray):
        self.codes = codes
        n = len(codes)
        self.bits = max(4, (2 * n - 1).bit_length())
        size = 1 << self.bits
        self.mask = size - 1
        self.keys = np.full(size, -1, np.int64)
        self.values = np.full(size, -1, np.int64)
        slots = place(self._home(np.asarray(codes, np.int64)), np.ones(size, bool), self.mask)
        self.keys[slots] = codes
        self.values[slots] = np.arange(n)

    def _home(self, codes: np.ndarray) -> np.ndarray:
        return ((codes.astype(np.uint64) * self._MULT) >> np.uint64(64 - self.bits)).astype(np.int64)

    def find(self, codes: np.ndarray) -> np.ndarray:
        """Each code's index in the table's codes, or -1."""
        out = np.full(len(codes), -1, np.int64)
        at = np.arange(len(codes))
        slot = self._home(codes)
        while len(at):
            key = self.keys[slot]
            hit = key == codes
            out[at[hit]] = self.values[slot[hit]]
            go_on = ~hit & (key != -1)
            at, codes, slot = at[go_on], codes[go_on], (slot[go_on] + 1) & self.mask
        return out


def _doc_of(offsets: np.ndarray) -> np.ndarray:
    """For each position in the flat token array, the index of its document."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), offsets[1:] - offsets[:-1])


def _count(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_counts=True)`` in four array operations: np.unique's own
    overhead (~20 us a call) was the largest part of transforming a single document."""
    keys = np.sort(keys)
    if len(keys) == 0:
        return keys, np.zeros(0, np.int64)
    first = np.empty(len(keys), bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty(len(starts), np.int64)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1] = len(keys) - starts[-1]
    return keys[starts], counts
