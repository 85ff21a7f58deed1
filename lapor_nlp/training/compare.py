"""``compare()``: should model B replace model A? Both scored on the same rows, with paired intervals.

Two models measured on different test sets, or one split, cannot be told apart from noise (twenty
variants of this router stayed within it). So both models route the same labelled rows through the
:class:`~lapor_nlp.router.Router` as deployed, and each figure's difference B − A gets a paired
bootstrap interval: the same resamples of rows for both models, so what varies is the models, not
the rows. A promotion gate turns that into an exit code for a nightly job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataValidationError, InputValueError
from ..text import mask_pii
from .data import Columns, load_labelled
from .evaluate import route_examples, routed_right
from .metrics import (
    bootstrap_counts, interval, weighted_accuracy, weighted_coverage, weighted_f1,
    weighted_precision, weighted_share,
)

#: The figures a gate may be set on (per task).
GATE_METRICS = ("accuracy", "macro_f1", "coverage", "auto_route")


@dataclass
class Comparison:
    """What :func:`compare` found, over the rows whose label at least one model knows (``n`` per
    task; ``n_unknown_to_both`` left out). ``tasks[task][figure]`` holds ``a``, ``b``, ``delta`` (B − A),
    ``delta_ci`` (its paired-bootstrap interval), ``a_ci``, ``b_ci`` and a ``verdict``: "better"
    (B's interval lies above 0), "worse" (below) or "no_difference". ``per_label`` has each label's
    F1 delta with its interval; ``changed_routes`` the complaints routed differently (PII-masked,
    the first ``max_changes``; ``changed_total`` counts them all). ``gate`` says whether B passed."""

    model_a: str
    model_b: str
    data: dict
    n_rows: int
    n_boot: int
    seed: int
    confidence: float
    target_precision: float
    tasks: dict = field(default_factory=dict)
    routing: dict = field(default_factory=dict)
    per_label: dict = field(default_factory=dict)
    changed_total: int = 0
    changed_routes: list = field(default_factory=list)
    gate: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether B passed the gate (True when no gate was asked for)."""
        return bool(self.gate.get("passed", True))

    @property
    def verdict(self) -> str:
        """The gate metric's verdict over the tasks both models have: "better" only when B is
        better in every one, "worse" when it is worse in any."""
        verdicts = [self.tasks[t][self.gate["metric"]]["verdict"] for t in self.gate["tasks"]]
        if verdicts and all(v == "better" for v in verdicts):
            return "better"
        return "worse" if "worse" in verdicts else "no_difference"

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict, "passed": self.passed}


def _figure(a_values, b_values, a_point, b_point, confidence) -> dict:
    delta = b_values - a_values
    ci = interval(delta, confidence)
    verdict = ("no_difference" if ci[0] is None else "better" if ci[0] > 0 else "worse" if ci[1] < 0
               else "no_difference")
    return {"a": _round(a_point), "b": _round(b_point),
            "delta": _round(None if a_point is None or b_point is None else b_point - a_point),
            "delta_ci": ci, "a_ci": interval(a_values, confidence), "b_ci": interval(b_values, confidence),
            "verdict": verdict}


def _round(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 4)


def compare(model_a, model_b, data: str | Path, *, columns: Columns | None = None,
            fmt: str | None = None, skip_bad: bool = False, n_boot: int = 1000, seed: int = 0,
            confidence: float = 0.95, target_precision: float = 0.95, gate_metric: str = "accuracy",
            require_better: bool = False, tolerance: float | None = None,
            max_changes: int = 200) -> Comparison:
    """Score model A (in production) and model B (the candidate) on the same labelled rows.

    ``model_a``/``model_b``: model directories or loaded :class:`~lapor_nlp.router.Router` s.
    ``columns``: default the columns model B was trained with, where the file has them.
    The gate: ``require_better`` — B's ``gate_metric`` must be better (its B − A interval above 0)
    in every task both models have; ``tolerance`` — no figure (accuracy, macro-F1, coverage at
    ``target_precision``, auto-route share) of B may be more than ``tolerance`` below A's (point
    estimates). Either, both or neither (then ``passed`` is True and only the figures are given).
    """
    from ..router import Router

    if gate_metric not in GATE_METRICS:
        raise InputValueError(f"gate_metric must be one of {', '.join(GATE_METRICS)}, got {gate_metric!r}")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or not 0 <= tolerance < 1):
        raise InputValueError(f"tolerance must be a share in [0, 1), got {tolerance!r}", field="tolerance")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise InputValueError(f"n_boot must be a whole number >= 100, got {n_boot!r}", field="n_boot")
    if not 0 < confidence < 1 or not 0 < target_precision <= 1:
        raise InputValueError("confidence must be in (0, 1) and target_precision in (0, 1]")
    routers = [m if isinstance(m, Router) else Router.load(m) for m in (model_a, model_b)]
    names = [str(m) if not isinstance(m, Router) else (m.name or "model") for m in (model_a, model_b)]
    tasks = [t for t in ("topic", "agency") if all(t in r.model.heads_ for r in routers)]
    if not tasks:
        raise DataValidationError("the two models share no task: nothing to compare")
    given = columns is not None
    if columns is None:
        cols = routers[1].manifest.get("columns", {}) if hasattr(routers[1], "manifest") else {}
        columns = Columns(**{k: v for k, v in cols.items() if k in Columns.__dataclass_fields__})
    for task in ("topic", "agency"):
        if task not in tasks:
            setattr(columns, task, None)
    examples, report = load_labelled(data, columns, fmt=fmt, skip_bad=skip_bad, require_optional=given)
    if not examples:
        raise DataValidationError(f"{data}: no usable labelled row to compare on")
    records = [route_examples(r, examples) for r in routers]
    W = bootstrap_counts(len(examples), n_boot, seed)
    result = Comparison(model_a=names[0], model_b=names[1],
                        data={"source": Path(str(data)).name, "sha256": report.sha256,
                              "rows_read": report.rows_read, "rows_used": report.rows_used,
                              "rows_rejected": report.rows_rejected},
                        n_rows=len(examples), n_boot=n_boot, seed=seed, confidence=confidence,
                        target_precision=target_precision)
    auto = [np.array([not r["needs_review"] for r in recs], bool) for recs in records]
    for task in tasks:
        # Rows whose label neither model knows (labels under --min-count, say) say nothing about
        # which is better; a label only one knows counts against the other.
        known = set().union(*(map(str, r.model.heads_[task].classes_) for r in routers))
        labelled = np.array([getattr(e, task) is not None for e in examples], bool)
        rows = labelled & np.array([str(getattr(e, task)) in known for e in examples], bool)
        gold = np.array([getattr(e, task) for e in examples], dtype=object)[rows]
        Wt = W[:, rows]
        preds = [np.array([r[task]["label"] for r in recs], dtype=object)[rows] for recs in records]
        scores = [np.array([r[task]["score"] for r in recs], float)[rows] for recs in records]
        correct = [p == gold for p in preds]
        labels = sorted(set(gold), key=str)
        f1s = [weighted_f1(Wt, gold, p, labels) for p in preds]
        ones = np.ones((1, len(gold)), np.float32)
        points = [weighted_f1(ones, gold, p, labels) for p in preds]
        figures = {
            "n": int(rows.sum()), "n_unknown_to_both": int((labelled & ~rows).sum()),
            "accuracy": _figure(*(weighted_accuracy(Wt, c) for c in correct),
                                *(float(c.mean()) for c in correct), confidence),
            "macro_f1": _figure(f1s[0][1], f1s[1][1], float(points[0][1][0]), float(points[1][1][0]),
                                confidence),
            "coverage": _figure(*(weighted_coverage(Wt, c, s, target_precision) for c, s in zip(correct, scores)),
                                *(float(weighted_coverage(ones, c, s, target_precision)[0])
                                  for c, s in zip(correct, scores)), confidence),
            "auto_route": _figure(*(weighted_share(Wt, a[rows]) for a in auto),
                                  *(float(a[rows].mean()) for a in auto), confidence),
            "auto_route_precision": _figure(
                *(weighted_precision(Wt, a[rows], c) for a, c in zip(auto, correct)),
                *(float(c[a[rows]].mean()) if a[rows].any() else None for a, c in zip(auto, correct)),
                confidence),
        }
        figures["coverage"]["target_precision"] = target_precision
        result.tasks[task] = figures
        result.per_label[task] = {
            lab: {"support": int((gold == lab).sum()),
                  **_figure(f1s[0][0][:, j], f1s[1][0][:, j], points[0][0][0, j], points[1][0][0, j],
                            confidence)}
            for j, lab in enumerate(labels)}
    if columns.location() and "agency" in tasks:
        rows = [i for i, e in enumerate(examples) if e.agency is not None]
        ok = [np.array([routed_right(examples[i], recs[i]) for i in rows], bool) for recs in records]
        result.routing["routed_to_accuracy"] = _figure(
            *(weighted_accuracy(W[:, rows], o) for o in ok), *(float(o.mean()) for o in ok), confidence)
    changed = [i for i in range(len(examples))
               if _route(records[0][i]) != _route(records[1][i])]
    result.changed_total = len(changed)
    result.changed_routes = [_change(examples[i], records[0][i], records[1][i]) for i in changed[:max_changes]]
    result.gate = _gate(result, tasks, gate_metric, require_better, tolerance)
    return result


def _route(rec: dict) -> tuple:
    """Where a complaint goes: the office (or agency type) and whether a person reviews it first."""
    return rec.get("routed_to") or (rec.get("agency") or {}).get("label"), rec["needs_review"]


def _change(e, a: dict, b: dict) -> dict:
    def side(rec):
        return {"agency": (rec.get("agency") or {}).get("label"), "routed_to": rec.get("routed_to"),
                "topic": (rec.get("topic") or {}).get("label"), "needs_review": rec["needs_review"]}

    return {"line": e.line, "id": e.id, "text": mask_pii(e.text)[:300],
            "gold": {"topic": e.topic, "agency": e.agency_label or e.agency}, "a": side(a), "b": side(b)}


def _gate(result: Comparison, tasks: list[str], metric: str, require_better: bool,
          tolerance: float | None) -> dict:
    failures = []
    if require_better:
        for task in tasks:
            f = result.tasks[task][metric]
            if f["verdict"] != "better":
                failures.append(f"{task} {metric}: B − A = {f['delta']:+.4f}, interval "
                                f"[{f['delta_ci'][0]:+.4f}, {f['delta_ci'][1]:+.4f}] does not lie above 0")
    if tolerance is not None:
        for task in tasks:
            for name in GATE_METRICS:
                f = result.tasks[task][name]
                if f["delta"] is not None and f["delta"] < -tolerance:
                    failures.append(f"{task} {name}: B is {-f['delta']:.4f} below A "
                                    f"(tolerance {tolerance})")
    return {"metric": metric, "tasks": tasks, "require_better": require_better,
            "tolerance": tolerance, "passed": not failures, "failures": failures}


def comparison_markdown(c: Comparison) -> str:
    """A person's view of a comparison (texts are PII-masked)."""
    d = c.to_dict()
    lines = [f"# {c.model_b} (B) against {c.model_a} (A)", "",
             f"{c.n_rows} rows of {c.data['source']}; {c.n_boot} paired bootstrap resamples (seed "
             f"{c.seed}), {c.confidence:.0%} intervals. Verdict on {c.gate['metric']}: **{d['verdict']}**"
             + ("" if not (c.gate["require_better"] or c.gate["tolerance"] is not None)
                else f"; gate {'passed' if c.passed else 'FAILED'}") + "."]
    if c.gate.get("failures"):
        lines += [""] + [f"- {failure}" for failure in c.gate["failures"]]
    for task, figures in c.tasks.items():
        lines += ["", f"## {task} (n={figures['n']})", "", "| figure | A | B | B − A | interval | verdict |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, f in figures.items():
            if isinstance(f, dict):
                lines.append(f"| {name} | {_fmt(f['a'])} | {_fmt(f['b'])} | {_fmt(f['delta'], True)} | "
                             f"[{_fmt(f['delta_ci'][0], True)}, {_fmt(f['delta_ci'][1], True)}] | {f['verdict']} |")
        moved = sorted(c.per_label[task].items(), key=lambda kv: -abs(kv[1]["delta"] or 0))[:15]
        lines += ["", "Labels whose F1 moved most:", "", "| label | support | F1 A | F1 B | B − A | interval |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {lab} | {f['support']} | {_fmt(f['a'])} | {_fmt(f['b'])} | {_fmt(f['delta'], True)} | "
                  f"[{_fmt(f['delta_ci'][0], True)}, {_fmt(f['delta_ci'][1], True)}] |" for lab, f in moved]
    if c.routing:
        f = c.routing["routed_to_accuracy"]
        lines += ["", f"`routed_to` right: A {_fmt(f['a'])}, B {_fmt(f['b'])}, B − A {_fmt(f['delta'], True)} "
                      f"[{_fmt(f['delta_ci'][0], True)}, {_fmt(f['delta_ci'][1], True)}]"]
    lines += ["", f"## Complaints routed differently ({c.changed_total}, the first {len(c.changed_routes)})", ""]
    for ch in c.changed_routes[:50]:
        text = ch["text"].replace("\n", " ").replace("|", "/")
        lines.append(f"- line {ch['line']}: gold **{ch['gold']['agency']}**; A → {ch['a']['routed_to'] or ch['a']['agency']}"
                     f"{' (review)' if ch['a']['needs_review'] else ''}; B → {ch['b']['routed_to'] or ch['b']['agency']}"
                     f"{' (review)' if ch['b']['needs_review'] else ''}: {text}")
    return "\n".join(lines) + "\n"


def _fmt(v, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:+.4f}" if sign else f"{v:.4f}"
