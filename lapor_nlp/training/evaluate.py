"""``evaluate()``: score a saved model on any labelled file and write the same report as training."""

from __future__ import annotations

import logging
from pathlib import Path

from ..artifact import load_model
from ..errors import DataValidationError, InputValueError
from .data import Columns, load_labelled
from .metrics import evaluate_model
from .report import write_report

log = logging.getLogger("lapor_nlp")


def evaluate(model_dir: str | Path, data: str | Path, *, columns: Columns | None = None,
             fmt: str | None = None, skip_bad: bool = False, report_dir: str | Path | None = None,
             ) -> dict:
    """Metrics of the model in ``model_dir`` on ``data`` (labels the model does not know are
    counted apart, in ``n_excluded`` and ``unknown_labels_in_data``)."""
    if report_dir is not None:  # the model's own files are hashed: a report there would break it
        model_root, report_root = Path(model_dir).resolve(), Path(report_dir).resolve()
        if report_root == model_root or model_root in report_root.parents:
            raise InputValueError(f"the report directory {report_dir} is the model directory or inside "
                                  "it; writing there would change the model's hashed files. Choose "
                                  "another --report directory")
    model, manifest = load_model(model_dir)
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
    if report_dir is not None:
        write_report(metrics, report_dir, {"model": manifest.get("name"),
                                           "data": {"source": Path(data).name, "sha256": report.sha256,
                                                    "rows_read": report.rows_read,
                                                    "rows_used": report.rows_used,
                                                    "rows_rejected": report.rows_rejected}})
    return metrics
