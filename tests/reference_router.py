"""The oracle of the fast path: lapor-nlp 0.4's per-document ``Router._route``, kept verbatim as a
plain function (``self`` is ``router``). It calls the router's own ``_jurisdiction``, ``_region``,
``_routed_to`` and ``_explain``, so that changes to those flow to both paths, and
``tests/test_fast_path.py`` compares every field of the columnar fast path with it.

Do not optimise this file: it is slow on purpose, one complaint at a time, as 0.4 was.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import numpy as np

from lapor_nlp.errors import InputTypeError


def reference_route(router, complaints: list, th: dict, explain: bool) -> list[dict]:
    """The whole flow for one batch, as plain dicts. Per-row Python work is kept to building
    the output: scores, thresholds and the review tests are numpy operations over the batch."""
    if not complaints:
        return []
    pre = router.model.preprocessor_
    max_chars = router.max_chars
    n = len(complaints)
    truncated = [False] * n
    docs, words = [], []
    for i, c in enumerate(complaints):
        if type(c) is not str:
            if not isinstance(c.text, str):
                raise InputTypeError(f"complaint text must be str, got {type(c.text).__name__}")
            c = c.full_text()
        if len(c) > max_chars:
            c = c[:max_chars]
            truncated[i] = True
        toks, ws = pre.analyze(c)
        docs.append(toks)
        words.append(ws)
    X = router.model.features_.transform_rows(docs)
    rows = np.arange(n)[:, None]
    tasks = []
    unknown = outside = None
    for task, head in router.model.heads_.items():
        mass = None
        if task == "agency":
            P, evidence = head.predict_proba_evidence(X)
            unknown = (evidence < router.unknown_threshold).tolist()
            if router.allowed_agencies is not None:
                outside = (~router.allowed_agencies[P.argmax(1)]).tolist()
                P = P * router.allowed_agencies
                mass = np.maximum(P.sum(1), 1e-12)
                P /= mass[:, None]
        else:
            P = head.predict_proba(X)
        # A few dozen labels: one argsort per row is cheaper than argpartition + reordering.
        top = np.argsort(-P, axis=1, kind="stable")[:, :router.top_k + 1]
        top_p = P[rows, top]
        labels = router._labels[task]
        best = top[:, 0]
        score = top_p[:, 0]
        t_of = np.fromiter(map(th[task].get, labels, repeat(1.01)), float, len(labels))[best]
        if mass is not None:
            # A desk's score is renormalised over its labels; its threshold is scaled the same
            # way, so a label is routed exactly when the whole model's score would route it
            # (renormalising must not turn the model's doubt into certainty).
            t_of = t_of / mass
        low = (score < t_of) if (task == "agency" or router.review_topic) else np.zeros(n, bool)
        names = router.label_names.get(task, {})
        tasks.append((task, head, P, top, labels, best.tolist(), score.tolist(), t_of.tolist(),
                      low.tolist(), names, top_p[:, 1:].tolist(), top[:, 1:].tolist()))
    explanation = router._explain(X, tasks) if explain else None
    short = np.fromiter(map(len, docs), np.int64, n) < router.min_tokens
    dictionary = router._dictionary
    agency_types = router.agency_types
    records = []
    for i, c in enumerate(complaints):
        reasons: list[str] = []
        rec: dict[str, Any] = {"id": None if type(c) is str else c.id, "topic": None, "agency": None}
        for task, head, P, top, labels, best, score, t_of, low, names, alt_p, alt_j in tasks:
            label = labels[best[i]]
            rec[task] = {"label": label, "score": score[i], "name": names.get(label),
                         "threshold": t_of[i],
                         "alternatives": [{"label": labels[j], "score": s}
                                          for j, s in zip(alt_j[i], alt_p[i])],
                         "level": None, "parent": None}
            if low[i]:
                reasons.append("low_confidence_" + task)
        if outside is not None:  # a desk's answer lists only the labels it may route to
            rec["agency"]["alternatives"] = [a for a in rec["agency"]["alternatives"] if a["score"] > 0]
        topic, agency = rec["topic"], rec["agency"]
        agency_label = agency["label"] if agency else None
        if agency:
            info = agency_types.get(agency_label) or {}
            agency["level"] = info.get("level")
            agency["parent"] = info.get("parent")
            if unknown[i]:
                reasons.append("unknown_agency")
            if outside is not None and outside[i]:
                reasons.append("outside_scope")
        if topic and agency and topic["label"] in router._pair_share:
            if router._pair_share[topic["label"]].get(agency_label, 0.0) < 0.02:
                reasons.append("topic_agency_disagree")
        place, place_note = router._jurisdiction(c, words[i])
        rec["jurisdiction"] = router._region(place) if place else None
        routed, place_missing = router._routed_to(agency_label, place) if agency_label else (None, False)
        rec["routed_to"] = routed
        if place_missing:
            reasons.append("place_not_found")
        if place_note:
            reasons.append(place_note)
        if short[i]:
            reasons.append("text_too_short")
        else:
            toks = docs[i]
            if len(words[i]) >= 5 and sum(map(dictionary.__contains__, toks)) < router.min_known_share * len(toks):
                reasons.append("not_indonesian")
        if truncated[i]:
            reasons.append("truncated")
        rec["needs_review"] = bool(reasons)
        rec["review_reasons"] = reasons
        rec["explanation"] = {task: explanation[task][i] for task in explanation} if explanation else {}
        rec["truncated"] = truncated[i]
        rec["model"] = router.name
        rec["model_version"] = router.version
        records.append(rec)
    return records


def reference_explain(router, X, results, n_terms: int = 5) -> dict[str, list[list[str]]]:
    """0.4's ``Router._explain``, verbatim: the fast path's own ``_explain`` is checked against it
    (``reference_route`` calls the router's, as the contract between the two paths says)."""
    names = router.model.features_.get_feature_names_out().tolist()
    out = {}
    n = X.shape[0]
    rows = np.repeat(np.arange(n), X.indptr[1:] - X.indptr[:-1])
    for task, head, P, top, *_ in results:
        contrib = X.data * head.coef_[top[rows, 0], X.indices]
        pos = np.flatnonzero(contrib > 0)
        pos = pos[np.argsort(-contrib[pos], kind="stable")]
        pos = pos[np.argsort(rows[pos], kind="stable")]
        r = rows[pos]
        keep = pos[np.arange(len(pos)) - np.searchsorted(r, r) < n_terms]
        terms: list[list[str]] = [[] for _ in range(n)]
        for r_, f in zip(rows[keep].tolist(), X.indices[keep].tolist()):
            terms[r_].append(names[f])
        out[task] = terms
    return out
