"""The review queue: the complaints that need a person, the most useful to label first.

Which: those the router flags ``needs_review`` (by default; ``review_only=False`` takes all).
In what order: **uncertainty sampling by margin** — the gap between the two likeliest labels of
the routing task (agency, by default), smallest first. Why margin and not entropy: the router's
decision is the top label against a threshold, and a small gap is exactly a decision that one
labelled example can flip; entropy over 100+ labels is dominated by the long tail of tiny
probabilities, so it ranks a complaint that spreads thinly over many unlikely labels above one
torn between two real candidates (Settles, *Active Learning Literature Survey*, 2009, §3.1, makes
the same point for many-class problems). ``by="entropy"`` is there to compare.

Identical texts (after the project's normalisation) are one entry with ``copies``: one label
serves them all, so they are not reviewed twice, and the copies come first among equal margins.
Each entry carries both tasks' label, score and alternatives and the text PII-masked.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import InputValueError

BY = ("margin", "entropy")
FIELDS = ("rank", "position", "id", "copies", "uncertainty", "margin", "entropy",
          "agency", "agency_score", "agency_alternatives", "topic", "topic_score",
          "topic_alternatives", "needs_review", "review_reasons", "text_masked")


def _margin_entropy(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: p(first) - p(second), and entropy normalised to 0..1 by log(labels)."""
    top2 = -np.sort(-proba, axis=1)[:, :2]
    margin = top2[:, 0] - (top2[:, 1] if proba.shape[1] > 1 else 0)
    p = np.clip(proba, 1e-12, 1)
    entropy = -(p * np.log(p)).sum(1) / math.log(max(2, proba.shape[1]))
    return margin, entropy


def review_queue(router, items: Iterable, *, by: str = "margin", task: str = "agency",
                 review_only: bool = True, limit: int | None = None, positions=None,
                 ids=None) -> list[dict]:
    """The review queue of ``items`` (str, Complaint or dict, as :meth:`Router.predict_batch`
    takes): one dict per entry (``FIELDS``), most useful first. ``positions``: each item's row
    number to report (default 1, 2, ...); ``ids``: each item's id (default the item's own)."""
    from ..text import mask_pii

    if by not in BY:
        raise InputValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    items = list(items)
    positions = list(positions) if positions is not None else list(range(1, len(items) + 1))
    preds = router.predict_batch(items, on_error="return")
    keep = [k for k, p in enumerate(preds) if not isinstance(p, Exception)
            and getattr(p, task, None) is not None and (p.needs_review or not review_only)]
    if not keep:
        return []
    texts = [_text(items[k]) for k in keep]
    proba = router.model.predict_proba(texts, task=task)
    margin, entropy = _margin_entropy(proba)
    # one entry per normalised text: the first row stands for its copies
    pre = router.model.preprocessor_
    first: dict[str, int] = {}
    copies: dict[int, int] = {}
    for j, text in enumerate(texts):
        key = " ".join(pre.tokens(text)) or f"\0{j}"
        j0 = first.setdefault(key, j)
        copies[j0] = copies.get(j0, 0) + 1
    lead = sorted(copies)
    unc = np.array([margin[j] if by == "margin" else -entropy[j] for j in lead])
    order = sorted(range(len(lead)), key=lambda m: (unc[m], -copies[lead[m]], positions[keep[lead[m]]]))
    out = []
    for rank, m in enumerate(order[:limit] if limit else order, 1):
        j = lead[m]
        k = keep[j]
        p = preds[k]
        row = {"rank": rank, "position": positions[k],
               "id": (ids[k] if ids is not None else p.id), "copies": copies[j],
               "uncertainty": by, "margin": round(float(margin[j]), 4),
               "entropy": round(float(entropy[j]), 4),
               "needs_review": p.needs_review,
               "review_reasons": ";".join(map(str, p.review_reasons)),
               "text_masked": " ".join(mask_pii(texts[j]).split())}
        for t in ("agency", "topic"):
            tp = getattr(p, t)
            row[t] = tp.label if tp else None
            row[f"{t}_score"] = round(tp.score, 4) if tp else None
            row[f"{t}_alternatives"] = [{"label": a.label, "score": round(a.score, 4)}
                                        for a in tp.alternatives] if tp else []
        out.append(row)
    return out


def _text(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return " ".join(x for x in (item.get("title"), item.get("text")) if x)
    return " ".join(x for x in (getattr(item, "title", None), item.text) if x)


def write_queue(rows: list[dict], path: str | Path) -> int:
    """Write the queue as JSON lines (``.jsonl``) or CSV (otherwise; alternatives as
    ``label:score; ...``); returns the entries written."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            w = csv.DictWriter(f, FIELDS, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            for r in rows:
                w.writerow({**r, **{f"{t}_alternatives": "; ".join(f"{a['label']}:{a['score']}"
                                                                   for a in r[f"{t}_alternatives"])
                                    for t in ("agency", "topic")}})
    return len(rows)


def queue_from_output(output: str | Path, router, queue_path: str | Path, *, columns=None,
                      prefix: str = "", fmt: str | None = None, by: str = "margin",
                      limit: int | None = None) -> int:
    """The review queue of a finished ``classify`` run: the rows its output marks
    ``needs_review`` are routed again (alternatives and full distributions are not in the output
    columns) and written to ``queue_path``; returns the entries written."""
    from ..columns import Columns, cell_value
    from ..io import ERROR, iter_rows
    from .rows import row_item

    columns = columns or Columns(text="text", topic=None, agency=None)
    flag = f"{prefix}needs_review"
    items, positions, ids = [], [], []
    for n, row in enumerate(iter_rows(output, fmt), 1):
        if ERROR in row or str(row.get(flag)).lower() not in ("true", "1"):
            continue
        item, _ = row_item(row, columns)
        if item is None:
            continue
        items.append(item)
        positions.append(n)
        ids.append(cell_value(row, columns.id) if columns.id else None)
    rows = review_queue(router, items, by=by, positions=positions,
                        ids=ids if columns.id else None, limit=limit)
    return write_queue(rows, queue_path)


def queue_for_run(queue_path: str | Path, job, model_key: str, load_options: dict, log,
                  by: str = "margin") -> int:
    """:func:`queue_from_output` for the run :func:`~lapor_nlp.batch.classify_file` just
    finished (its output, columns and prefix), with the run's model loaded here."""
    from ..router import Router

    if model_key is None or not Path(model_key).is_dir():
        raise InputValueError("the review queue routes the rows to review again here: the model "
                              "directory must be readable on this machine")
    router = Router.load(model_key, **load_options)
    n = queue_from_output(job.out_path, router, queue_path, columns=job.columns, prefix=job.prefix,
                          fmt=job.output.name, by=by)
    log(f"review queue: {n} entries, smallest {by} first, in {queue_path}")
    return n
