"""The columnar result of :meth:`Router.route <lapor_nlp.router.Router.route>`: one array per
field, for callers that want labels, scores and flags as arrays (pandas, Arrow, numpy), and the
one place where per-complaint Python objects are built (:meth:`RoutingResult.to_records`), at the
edge and only when asked for.

Labels are integer ids into ``labels[task]`` (``Router.labels``); review reasons are a bitmask
whose bit ``b`` is ``reason_names[b]``; the region of each row is an index into ``regions``
(-1: none found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class TaskColumns:
    """One task's columns (``n`` rows, ``k`` alternatives)."""

    labels: list[str]                 # label id -> label
    label: np.ndarray                 # (n,) int: the chosen label's id
    score: np.ndarray                 # (n,) float64: its calibrated probability
    threshold: np.ndarray             # (n,) float64: its review threshold
    alt_label: np.ndarray             # (n, k) int: the runner-up labels' ids
    alt_score: np.ndarray             # (n, k) float64
    names: list[str | None]           # label id -> human name
    level: list[str | None] | None = None    # agency only: label id -> level
    parent: list[str | None] | None = None   # agency only: label id -> parent code
    positive_alternatives: bool = False      # a desk lists only alternatives it may route to


@dataclass(eq=False, repr=False)
class RoutingResult:
    """The routing of a batch, column by column. ``len(result)`` rows, in input order (rows of
    items refused with ``on_error="skip"`` or ``"return"`` are absent: ``positions`` gives each
    row's index in the input, ``errors`` the refused items' errors by input index)."""

    tasks: dict[str, TaskColumns]
    ids: list[str | None]
    needs_review: np.ndarray          # (n,) bool
    reasons: np.ndarray               # (n,) uint32 bitmask over reason_names
    reason_names: tuple[str, ...]
    routed_to: np.ndarray             # (n,) object: str or None
    region: np.ndarray                # (n,) int: index into regions, -1 for none
    regions: list[dict]               # the distinct regions (Prediction.jurisdiction's shape)
    truncated: np.ndarray             # (n,) bool
    explanation: dict[str, list[list[str]]] | None
    model: str
    model_version: str
    positions: np.ndarray | None = None
    errors: dict[int, Exception] = field(default_factory=dict)
    _with_errors: Any = field(default=None, repr=False)
    _on_error: str = field(default="raise", repr=False)

    def __len__(self) -> int:
        return len(self.needs_review)

    def __repr__(self) -> str:
        return (f"RoutingResult({len(self)} rows, tasks={list(self.tasks)}, "
                f"needs_review={int(self.needs_review.sum())}, errors={len(self.errors)})")

    # -- columns ----------------------------------------------------------------------------------
    def label(self, task: str) -> np.ndarray:
        """The chosen labels of ``task`` as an array of str (object dtype)."""
        cols = self.tasks[task]
        return np.asarray(cols.labels, dtype=object)[cols.label]

    def review_reasons(self) -> list[list[str]]:
        """Each row's review reasons, in the order ``Prediction.review_reasons`` lists them."""
        table = _reason_table(self.reason_names)
        return [list(table(m)) for m in self.reasons.tolist()]

    def review_reasons_joined(self, sep: str = ";") -> list[str]:
        """Each row's review reasons as one string (``sep`` between them, "" for none), joined
        once per distinct set of reasons: what a file of results writes."""
        table = _reason_table(self.reason_names)
        joined: dict[int, str] = {}
        out = []
        for mask in self.reasons.tolist():
            text = joined.get(mask)
            if text is None:
                text = joined[mask] = sep.join(table(mask))
            out.append(text)
        return out

    def jurisdiction(self) -> list[dict | None]:
        """Each row's region (a new dict each), or None."""
        regions = self.regions
        return [dict(regions[r]) if r >= 0 else None for r in self.region.tolist()]

    # -- conversions ------------------------------------------------------------------------------
    def to_records(self) -> list[dict]:
        """One dict per row, each what ``Prediction.model_dump()`` gives (what
        ``Router.predict_records`` returns), with the refused items' errors put back as the
        ``on_error`` of the call asked."""
        return self._rows(None)

    def to_predictions(self) -> list:
        """One :class:`~lapor_nlp.schemas.Prediction` per row (what ``Router.predict_batch``
        returns), built from the columns without validating them again (see
        :func:`~lapor_nlp.schemas.built_from_checked`); errors put back as in :meth:`to_records`."""
        return self._rows(_builders())

    def _rows(self, build) -> list:
        """The rows as dicts (``build`` None) or as Prediction objects (``build``: the four
        constructors of :func:`_builders`), nested parts included."""
        n = len(self)
        by_task = {}
        for task, cols in self.tasks.items():
            by_task[task] = _task_dicts(cols, build)
        jurisdiction = self.jurisdiction()
        reasons = self.review_reasons()
        needs = self.needs_review.tolist()
        truncated = self.truncated.tolist()
        routed = self.routed_to.tolist()
        topic = by_task.get("topic") or [None] * n
        agency = by_task.get("agency") or [None] * n
        # A Prediction has no field for another task (validation would drop it): records only.
        others = [(t, d) for t, d in by_task.items() if t not in ("topic", "agency")] if build is None else []
        exp = self.explanation
        if exp:
            exp_tasks = list(exp)
            explanations = [dict(zip(exp_tasks, terms)) for terms in zip(*exp.values())]
        else:
            explanations = [{} for _ in range(n)]
        if build is not None:
            region = build[3]
            jurisdiction = [None if j is None else region(j) for j in jurisdiction]
        model, version = self.model, self.model_version
        out = [{"id": i, "topic": t, "agency": a, "jurisdiction": j, "routed_to": r,
                "needs_review": nr, "review_reasons": rr, "explanation": e, "truncated": tr,
                "model": model, "model_version": version}
               for i, t, a, j, r, nr, rr, e, tr in zip(self.ids, topic, agency, jurisdiction, routed,
                                                       needs, reasons, explanations, truncated)]
        for task, dicts in others:
            for rec, d in zip(out, dicts):
                rec[task] = d
        if build is not None:
            out = list(map(build[0], out))
        if self._with_errors is not None and self.errors:
            return self._with_errors(out, list(self.positions.tolist()), self.errors, self._on_error)
        return out

    def columns(self) -> dict[str, Any]:
        """Flat columns (name -> array or list), what :meth:`to_pandas` and :meth:`to_arrow`
        hold: ``id``, per task ``<task>``, ``<task>_score``, ``<task>_threshold``, then
        ``routed_to``, ``region``, ``needs_review``, ``review_reasons``, ``truncated``; first
        ``position`` (each row's index in the input) when the result came from ``route()``, so that
        rows stay matched to their items after ``on_error`` left some out."""
        cols: dict[str, Any] = {} if self.positions is None else {"position": self.positions}
        cols["id"] = list(self.ids)
        for task, c in self.tasks.items():
            cols[task] = self.label(task)
            cols[f"{task}_score"] = c.score
            cols[f"{task}_threshold"] = c.threshold
        cols["routed_to"] = self.routed_to
        names = np.asarray([r["name"] for r in self.regions] + [None], dtype=object)
        cols["region"] = names[self.region]  # -1 -> the trailing None
        cols["needs_review"] = self.needs_review
        cols["review_reasons"] = self.review_reasons()
        cols["truncated"] = self.truncated
        return cols

    def to_pandas(self):
        """A pandas DataFrame of :meth:`columns`, indexed by ``position`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            from .errors import DependencyError

            raise DependencyError("RoutingResult.to_pandas() needs pandas: pip install pandas") from None
        frame = pd.DataFrame(self.columns())
        # Indexed by the input's positions: after a refused item, row k is not item k.
        return frame.set_index("position") if "position" in frame else frame

    def to_arrow(self):
        """A pyarrow Table of :meth:`columns` (needs pyarrow)."""
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - depends on the environment
            from .errors import DependencyError

            raise DependencyError("RoutingResult.to_arrow() needs pyarrow: pip install pyarrow") from None
        cols = self.columns()
        arrays = {}
        for name, values in cols.items():
            if isinstance(values, np.ndarray) and values.dtype != object:
                arrays[name] = pa.array(values)
            else:
                arrays[name] = pa.array(list(values))
        return pa.table(arrays)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def concat(cls, parts: list["RoutingResult"]) -> "RoutingResult":
        """Rows of several results of the same router, one after another."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        if all(p.regions is first.regions for p in parts):  # one router's append-only list
            regions, region_cols = first.regions, [p.region for p in parts]
        else:  # each part numbers its own regions
            regions, region_cols = [], []
            for p in parts:
                region_cols.append(np.where(p.region >= 0, p.region + len(regions), -1))
                regions = regions + p.regions
        tasks = {}
        for task, c in first.tasks.items():
            tasks[task] = TaskColumns(
                c.labels, *(np.concatenate([getattr(p.tasks[task], a) for p in parts])
                            for a in ("label", "score", "threshold", "alt_label", "alt_score")),
                c.names, c.level, c.parent, c.positive_alternatives)
        exp = None
        if first.explanation is not None:
            exp = {t: [terms for p in parts for terms in p.explanation[t]] for t in first.explanation}
        return cls(tasks, [i for p in parts for i in p.ids],
                   np.concatenate([p.needs_review for p in parts]),
                   np.concatenate([p.reasons for p in parts]), first.reason_names,
                   np.concatenate([p.routed_to for p in parts]),
                   np.concatenate(region_cols), regions,
                   np.concatenate([p.truncated for p in parts]), exp, first.model, first.model_version)


def _task_dicts(c: TaskColumns, build=None) -> list:
    """The ``TaskPrediction``-shaped dicts of one task's columns (``build``: as objects)."""
    labels, names = c.labels, c.names
    level = c.level or [None] * len(labels)
    parent = c.parent or [None] * len(labels)
    if build is None:
        if c.positive_alternatives:
            alts = [[{"label": labels[j], "score": s} for j, s in zip(js, ss) if s > 0]
                    for js, ss in zip(c.alt_label.tolist(), c.alt_score.tolist())]
        else:
            alts = [[{"label": labels[j], "score": s} for j, s in zip(js, ss)]
                    for js, ss in zip(c.alt_label.tolist(), c.alt_score.tolist())]
    else:
        pair = build[2]
        if c.positive_alternatives:
            alts = [[pair({"label": labels[j], "score": s}) for j, s in zip(js, ss) if s > 0]
                    for js, ss in zip(c.alt_label.tolist(), c.alt_score.tolist())]
        else:
            alts = [[pair({"label": labels[j], "score": s}) for j, s in zip(js, ss)]
                    for js, ss in zip(c.alt_label.tolist(), c.alt_score.tolist())]
    rows = [{"label": labels[b], "score": s, "name": names[b], "threshold": t, "alternatives": a,
             "level": level[b], "parent": parent[b]}
            for b, s, t, a in zip(c.label.tolist(), c.score.tolist(), c.threshold.tolist(), alts)]
    return rows if build is None else list(map(build[1], rows))


_BUILDERS: tuple | None = None


def _builders() -> tuple:
    """The constructors of Prediction, TaskPrediction, LabelScore and Region from checked dicts."""
    global _BUILDERS
    if _BUILDERS is None:
        from .schemas import LabelScore, Prediction, Region, TaskPrediction, built_from_checked

        _BUILDERS = tuple(map(built_from_checked, (Prediction, TaskPrediction, LabelScore, Region)))
    return _BUILDERS


_TABLES: dict[tuple[str, ...], Any] = {}


def _reason_table(names: tuple[str, ...]):
    """mask -> the tuple of reason names its bits stand for, remembered per distinct mask."""
    table = _TABLES.get(names)
    if table is None:
        memo: dict[int, tuple[str, ...]] = {}

        def table(mask: int) -> tuple[str, ...]:
            got = memo.get(mask)
            if got is None:
                got = memo[mask] = tuple(n for b, n in enumerate(names) if mask >> b & 1)
            return got

        table = _TABLES.setdefault(names, table)
    return table
