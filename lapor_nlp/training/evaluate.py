"""``evaluate()``: score a saved model on any labelled file and write the same report as training."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..artifact import load_verified
from ..errors import DataValidationError, InputValueError
from ..schemas import Complaint, Location
from .data import Columns, Example, load_labelled
from .metrics import evaluate_model
from .report import write_report

log = logging.getLogger("lapor_nlp")


def evaluate(model_dir: str | Path, data: str | Path, *, columns: Columns | None = None,
             fmt: str | None = None, skip_bad: bool = False, report_dir: str | Path | None = None,
             operator: bool = True) -> dict:
    """Metrics of the model in ``model_dir`` on ``data`` (labels the model does not know are
    counted apart, in ``n_excluded`` and ``unknown_labels_in_data``).

    ``operator``: also route every row through the :class:`~lapor_nlp.router.Router` as deployed
    (the model's own per-label thresholds, every review test) and add the figures an operator
    lives by to each task (:func:`operator_figures`): ``auto_route`` (the share routed without
    review and its precision), ``above_threshold`` (the share whose score clears its label's
    threshold and its precision) and, for agency with location columns, ``routed_to``."""
    if report_dir is not None:  # the model's own files are hashed: a report there would break it
        model_root, report_root = Path(model_dir).resolve(), Path(report_dir).resolve()
        if report_root == model_root or model_root in report_root.parents:
            raise InputValueError(f"the report directory {report_dir} is the model directory or inside "
                                  "it; writing there would change the model's hashed files. Choose "
                                  "another --report directory")
    model, manifest, routing = load_verified(model_dir)  # routing parsed from the bytes verified
    given = columns is not None
    columns = columns or Columns(**{k: v for k, v in manifest.get("columns", {}).items()
                                    if k in Columns.__dataclass_fields__})
    for task in ("topic", "agency"):
        if task not in model.heads_:
            setattr(columns, task, None)
    # Columns named by the caller must exist; those taken from the model's training data may not.
    examples, report = load_labelled(data, columns, fmt=fmt, skip_bad=skip_bad,
                                     require_optional=given)
    tasks = [t for t in model.heads_ if getattr(columns, t)]
    if not tasks:
        raise DataValidationError("nothing to evaluate: no label column of the model's tasks "
                                  f"({', '.join(model.heads_)}) is mapped; name one with --topic-col or --agency-col")
    unscorable = {}
    for task in tasks:
        known = set(map(str, model.heads_[task].classes_))
        if not any(getattr(e, task) is not None and str(getattr(e, task)) in known for e in examples):
            unscorable[task] = known
    for task, known in unscorable.items():
        msg = (f"no row of {Path(data).name} has a {task} label the model knows (it knows {len(known)}, "
               f"e.g. {', '.join(sorted(known)[:5])})")
        if len(unscorable) == len(tasks):
            raise DataValidationError(f"nothing to evaluate: {msg}")
        log.warning("%s: %s is not scored", msg, task)
    tasks = [t for t in tasks if t not in unscorable]
    metrics = evaluate_model(model, [e.text for e in examples],
                             {t: [getattr(e, t) for e in examples] for t in tasks})
    if operator:
        from ..router import Router

        router = Router(model, manifest, routing)
        records = route_examples(router, examples)
        for task, figures in operator_figures(examples, records, tasks,
                                              with_location=bool(columns.location())).items():
            metrics[task].update(figures)
    if report_dir is not None:
        write_report(metrics, report_dir, {"model": manifest.get("name"),
                                           "data": {"source": Path(data).name, "sha256": report.sha256,
                                                    "rows_read": report.rows_read,
                                                    "rows_used": report.rows_used,
                                                    "rows_rejected": report.rows_rejected}})
    return metrics


def complaint_of(e: Example) -> Complaint:
    """The complaint a labelled row stands for, with its location fields (as a portal sends it)."""
    loc = {("subdistrict" if k == "village" else k): v for k, v in e.location.items()}
    return Complaint(text=e.text, location=Location(**loc) if loc else None)


def route_examples(router, examples: list[Example], batch_size: int = 2048) -> list[dict]:
    """The router's records for labelled rows, in order (no explanations)."""
    return router.predict_records([complaint_of(e) for e in examples], batch_size=batch_size)


def routed_right(e: Example, record: dict) -> bool:
    """Whether ``routed_to`` names the office of the gold label: the full label ("Kelurahan
    Kertajaya") where it names a place, else the agency type (as recipes/reproduce.py scores it)."""
    label = (record.get("agency") or {}).get("label")
    if e.agency_place is None:
        return label == e.agency
    return record.get("routed_to") == e.agency_label


def operator_figures(examples: list[Example], records: list[dict], tasks,
                     with_location: bool = False) -> dict:
    """Per task, over the rows with that task's label: ``auto_route`` (``share`` of rows the router
    routes with no review reason, and the ``precision`` of this task's label among them),
    ``above_threshold`` (the same for the rows whose score clears its label's own threshold, the
    one review test that belongs to the task) and, for agency when location columns were given,
    ``routed_to`` (how often it names the right office: all rows, and those whose label names a
    place)."""
    out = {}
    for task in tasks:
        rows = [(e, r) for e, r in zip(examples, records) if getattr(e, task) is not None]
        gold = np.array([getattr(e, task) for e, _ in rows], dtype=object)
        pred = np.array([r[task]["label"] for _, r in rows], dtype=object)
        correct = gold == pred
        auto = np.array([not r["needs_review"] for _, r in rows], bool)
        above = np.array([r[task]["score"] >= r[task]["threshold"] for _, r in rows], bool)
        figures = {}
        for name, flag in (("auto_route", auto), ("above_threshold", above)):
            figures[name] = {"n": int(flag.sum()), "share": float(flag.mean()) if len(flag) else 0.0,
                             "precision": float(correct[flag].mean()) if flag.any() else None}
        if task == "agency" and with_location:
            ok = np.array([routed_right(e, r) for e, r in rows], bool)
            placed = np.array([e.agency_place is not None for e, _ in rows], bool)
            figures["routed_to"] = {
                "n": int(len(ok)), "accuracy": float(ok.mean()) if len(ok) else 0.0,
                "n_place_bound": int(placed.sum()),
                "accuracy_place_bound": float(ok[placed].mean()) if placed.any() else None,
                "accuracy_auto_routed": float(ok[auto].mean()) if auto.any() else None}
        out[task] = figures
    return out
