"""Loading a head's weights: scattered from the saved sparse rows into their final layout, the
numbers ``csr.toarray()`` gives (bit for bit), a block of its own per head or, for the Router,
one block shared by all heads that :func:`~lapor_nlp.heads.stack_heads` then uses as it is."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lapor_nlp import Router
from lapor_nlp.artifact import load_model
from lapor_nlp.features import Rows
from lapor_nlp.heads import LinearHead, heads_from_state, stack_heads

N_FEATURES = 50


def _saved(prefix: str, coef: sp.csr_matrix) -> tuple[dict, dict]:
    """(meta, arrays) as ``LinearHead.to_state`` writes them, for the sparse weights ``coef``."""
    k = coef.shape[0]
    classes = [f"{prefix}{i}" for i in range(k)]
    meta = {"classes": classes, "thresholds": dict.fromkeys(classes, 0.5), "evidence_threshold": 0.0,
            "params": {"C": 0.5, "class_weight": "balanced", "cv": 5, "target_precision": 0.95,
                       "random_state": 0, "novelty_quantile": 0.1}}
    arrays = {f"{prefix}_coef_data": coef.data, f"{prefix}_coef_indices": coef.indices,
              f"{prefix}_coef_indptr": coef.indptr, f"{prefix}_intercept": np.linspace(-1, 1, k),
              f"{prefix}_platt_a": np.full(k, -1.5), f"{prefix}_platt_b": np.zeros(k),
              f"{prefix}_oof_pred": np.zeros(3, np.int32), f"{prefix}_oof_score": np.ones(3, np.float32),
              f"{prefix}_oof_true": np.zeros(3, np.int32)}
    return meta, arrays


def _random_coef(k: int, seed: int, dtype=np.float32) -> sp.csr_matrix:
    return sp.random(k, N_FEATURES, density=0.4, format="csr", random_state=seed, dtype=dtype)


def _rows(seed: int = 7) -> Rows:
    X = sp.random(30, N_FEATURES, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    return Rows(X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32), X.shape)


def _non_canonical() -> sp.csr_matrix:
    """Rows with repeated and unsorted indices (lapor-nlp never writes them; toarray sums the
    repeats), in float64, whose sums are rounded to float32 once."""
    data = np.array([0.1, 0.2, 1 / 3, 0.7, -0.25, 1e-8, 3.0])
    indices = np.array([7, 2, 7, 40, 40, 40, 0], np.int32)
    return sp.csr_matrix((data, indices, np.array([0, 3, 3, 7], np.int32)), shape=(3, N_FEATURES))


@pytest.mark.parametrize("coef", [_random_coef(4, 0), _random_coef(5, 1, np.float64), _non_canonical()],
                         ids=["float32", "float64", "repeated-indices"])
def test_a_head_is_loaded_with_the_weights_toarray_gives(coef):
    meta, arrays = _saved("t", coef)
    head = LinearHead.from_state("t", meta, arrays, N_FEATURES)
    want = np.ascontiguousarray(coef.toarray().T, dtype=np.float32)
    assert head._W.tobytes() == want.tobytes() and head._W.flags.c_contiguous
    assert head._block is None  # a block of its own: scoring it computes its columns only


def test_heads_are_loaded_into_the_block_stack_heads_would_make():
    metas, arrays = {}, {}
    coefs = {"topic": _random_coef(3, 2), "agency": _non_canonical()}
    for task, coef in coefs.items():
        metas[task], more = _saved(task, coef)
        arrays.update(more)
    alone = {t: LinearHead.from_state(t, metas[t], arrays, N_FEATURES) for t in metas}
    together = heads_from_state(metas, arrays, N_FEATURES)
    assert list(together) == list(metas)
    block, cols = stack_heads(list(together.values()))
    assert block is together["topic"]._block[0] and block.flags.c_contiguous  # used as loaded
    assert cols == [slice(0, 3), slice(3, 6)]
    assert block.tobytes() == np.hstack([alone[t]._W for t in metas]).tobytes()
    X = _rows()
    for task in metas:  # a head of the shared block scores as one of its own, to the bit
        assert np.array_equal(together[task].decision_function(X), alone[task].decision_function(X))
        assert np.array_equal(together[task].coef_, alone[task].coef_)


def test_a_loaded_router_scores_with_the_block_its_weights_were_loaded_in(model_dir):
    """Router.load builds the fast path's block at load (no dense copy per head, no stacking
    copy at the first route); load_model keeps a block per head, with the same weights."""
    router = Router.load(model_dir)
    heads = list(router.model.heads_.values())
    block, cols = stack_heads(heads)
    assert all(h._block[0] is block and np.shares_memory(h._W, block) for h in heads)
    model, _ = load_model(model_dir)
    for (task, head), col in zip(model.heads_.items(), cols):
        assert head._block is None and head._W.flags.c_contiguous
        assert np.array_equal(head.coef_, router.model.heads_[task].coef_)
        assert np.array_equal(head._W, block[:, col])


def test_flat_positions_past_two_to_the_31_are_not_wrapped():
    """int32 indices times the block's width, past 2**31: computed in the platform's int (a
    wrapped position would put a weight in another feature's row without an error)."""
    from lapor_nlp.heads import _scatter_transposed

    n, width = (1 << 21) + 5, 1100  # n * width > 2**31: a 9 GB block, so a stand-in with strides
    indices = np.array([3, n - 1], np.int32)
    written = {}

    class Flat:  # what block.reshape(-1) gives, recording where the weights go
        def __setitem__(self, pos, values):
            written.update(zip(pos.tolist(), values.tolist()))

    class Block:
        shape = (n, width)

        def reshape(self, _):
            return Flat()

    _scatter_transposed(np.array([0.5, 2.0], np.float32), indices, np.array([0, 2], np.int32),
                        Block(), slice(1099, 1100))
    assert written == {3 * width + 1099: 0.5, (n - 1) * width + 1099: 2.0}
