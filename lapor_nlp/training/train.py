"""``train()``: labelled file -> validated data -> split -> fitted model -> report -> model directory.

The same function serves ``lapor-nlp train`` and notebooks.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..classifier import ComplaintClassifier
from ..errors import DataValidationError, InputValueError
from .data import (
    Columns, DataReport, Example, handle_rare, iso_date, load_labelled, split_examples, test_share,
)
from .metrics import evaluate_model, metric_intervals, summary_line
from .relabel import MODES, map_old_labels, model_resolver
from .card import MODEL_CARD, model_card
from .cv import CV_GROUPS, cross_validate, cv_line
from .report import report_files

log = logging.getLogger("lapor_nlp")


@dataclass
class TrainResult:
    model: ComplaintClassifier
    metrics: dict
    data_report: DataReport
    out_dir: Path | None
    info: dict = field(default_factory=dict)


class _Progress:
    """A tqdm bar per stage on a terminal; nothing when quiet (or not a terminal)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bars = {}

    def __call__(self, stage: str, i: int, n: int):
        if self.quiet:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=n, desc=stage, file=sys.stderr, leave=False,
                                          disable=None)
        bar.update(i - bar.n)
        if i >= n:
            bar.close()


def topic_agency_counts(examples: list[Example]) -> dict:
    """How often each (topic, agency type) pair occurs: the router flags a pair that the training
    data (almost) never saw as "topic and agency disagree"."""
    counts: dict = defaultdict(Counter)
    for e in examples:
        if e.topic is not None and e.agency is not None:
            counts[e.topic][e.agency] += 1
    return {t: dict(c) for t, c in counts.items()}


def agency_places(examples: list[Example]) -> tuple[dict, dict]:
    """Which agency types are place-bound (``{type: {"serves": level, "template": ...}}``) and
    the places the data names (``{level: [names]}``, village -> district, and district/village ->
    regency where the data gives one)."""
    levels: dict[str, Counter] = defaultdict(Counter)
    places: dict[str, set] = defaultdict(set)
    village_district: dict[str, str] = {}
    place_regency: dict[str, set] = defaultdict(set)  # district/village -> regencies given with it
    for e in examples:
        if e.agency is None:
            continue
        # The label was split into type, place and level when it was read (load_labelled); a
        # type from a correction that named no place says nothing about the level.
        if not e.agency_place_unknown:
            levels[e.agency][e.agency_level] += 1
        if e.agency_place and e.agency_level:
            places[e.agency_level].add(e.agency_place)
        for lvl in ("province", "regency", "district", "village"):
            if e.location.get(lvl):
                places[lvl].add(e.location[lvl].strip())
        if e.location.get("village") and e.location.get("district"):
            village_district[e.location["village"].strip()] = e.location["district"].strip()
        if e.location.get("regency"):
            for lvl in ("district", "village"):
                if e.location.get(lvl):
                    place_regency[e.location[lvl].strip()].add(e.location["regency"].strip())
    types = {}
    for e in examples:  # a type known only from corrections still gets an entry
        if e.agency is not None:
            levels.setdefault(e.agency, Counter())
    for t, c in levels.items():
        if not c:
            types[t] = {"serves": "none", "template": t}
            continue
        level, n = c.most_common(1)[0]
        if level and n >= 0.5 * sum(c.values()):
            types[t] = {"serves": level, "template": f"{t} {{{level}}}"}
        else:
            types[t] = {"serves": "none", "template": t}
    # Where the data says in which regency a learnt district or village lies (and always the
    # same one), the router places it there instead of in the model's home region.
    return types, {"places": {k: sorted(v) for k, v in places.items()},
                   "village_district": village_district,
                   "place_regency": {k: next(iter(v)) for k, v in sorted(place_regency.items())
                                     if len(v) == 1}}


def date_range(examples: list[Example]) -> list[str] | None:
    """The first and last date (YYYY-MM-DD) of the rows, None when they have none."""
    days = sorted(e.date[:10] for e in examples if e.date)
    return [days[0], days[-1]] if days else None


def add_intervals(model: ComplaintClassifier, metrics: dict, test_ex: list[Example], *,
                  seed: int = 0, n_boot: int = 1000) -> None:
    """Bootstrap intervals of each task's test figures, as ``metrics[task]["intervals"]``."""
    docs = model.tokenize([e.text for e in test_ex])
    X = model.transform(docs)
    for task, m in metrics.items():
        head = model.heads_[task]
        known = set(head.classes_)
        gold = [getattr(e, task) if getattr(e, task) in known else None for e in test_ex]
        P = head.predict_proba(X)
        m["intervals"] = metric_intervals(gold, head.classes_[P.argmax(1)], P.max(1),
                                          n_boot=n_boot, seed=seed)


def train(data: str | Path, out_dir: str | Path | None = None, *, columns: Columns | None = None,
          fmt: str | None = None, split_date: str | None = None, test_size: float = 0.2,
          seed: int = 0, min_count: int = 5, rare: str = "drop", skip_bad: bool = False,
          refit_all: bool = False, C: float = 0.5, ngram_max: int = 2, min_df: int = 1,
          target_precision: float = 0.95, name: str | None = None, quiet: bool = False,
          home_region: str | None = None, routing: dict | None = None,
          extra_info: dict | None = None, map_labels: str = "auto",
          relabel_with=None, corrections=None, cv: int = 0, cv_group: str | None = None,
          ) -> TrainResult:
    """Train topic and/or agency models from a labelled file and (with ``out_dir``) save them.

    ``rare``: what to do with labels under ``min_count`` examples: ``drop`` the rows, ``merge``
    them into "lainnya", or ``keep``. ``refit_all``: after measuring on the split, fit the shipped
    model on all rows (the metrics then describe the recipe, not the exact weights).
    ``home_region``: the regency/city the data comes from ("Kota Surabaya"): its kecamatan and
    kelurahan found in the data are placed there. ``routing``: entries that replace the derived
    routing information (agency types and their office templates, label names).
    ``map_labels``: agency labels that are names a body had before a reorganisation
    ("Kemenkumham", "Kementerian PUPR") are mapped to the taxonomy's current codes, split ones
    resolved from the text (:mod:`lapor_nlp.training.relabel`): ``auto`` when the data has such a
    name, ``all`` always, ``none`` never. The mapping is in ``data_report.json``.
    ``relabel_with``: the Router or model directory (or a callable giving one, called only if a
    split label needs it) that resolves split labels (default: the bundled default model, which
    must be built; ``lapor_nlp.load()`` builds it).
    ``corrections``: operators' corrections applied over the data by id before anything else
    (:func:`lapor_nlp.training.data.apply_corrections`).
    ``cv``: also run a ``cv``-fold cross-validation of the recipe on the same rows (stratified by
    label, or ``cv_group="date"``: whole days together) and report mean ± sd beside the split's
    figures (:mod:`lapor_nlp.training.cv`). The directory gets ``MODEL_CARD.md``
    (:mod:`lapor_nlp.training.card`).
    """
    t0 = time.perf_counter()
    test_share(test_size)
    if rare not in ("drop", "merge", "keep"):
        raise InputValueError(f"rare must be 'drop', 'merge' or 'keep', got {rare!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise InputValueError(f"min_count must be a whole number >= 1, got {min_count!r}")
    if split_date is not None:
        iso_date(split_date, "split_date")
    columns = columns or Columns()
    tasks = [t for t in ("topic", "agency") if getattr(columns, t)]
    if not tasks:
        raise InputValueError("nothing to train: both label columns are switched off; name a topic "
                              "and/or agency column (--topic-col, --agency-col)")
    if home_region:  # checked before any work, stored under its gazetteer name
        from ..jurisdiction import require_regency

        home_region = require_regency(home_region).name
    def new_model() -> ComplaintClassifier:
        return ComplaintClassifier(C=C, ngram_max=ngram_max, min_df=min_df,
                                   target_precision=target_precision, random_state=seed)

    new_model().check_params()  # before reading the data
    if cv and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise InputValueError(f"cv must be a whole number >= 2 (0: none), got {cv!r}", field="cv")
    if cv_group not in CV_GROUPS:
        raise InputValueError(f"cv_group must be 'date' or None, got {cv_group!r}", field="cv_group")
    if cv and cv_group == "date" and not columns.date:
        raise InputValueError("cv_group='date' (--cv-group date) needs the date column: name it "
                              "with --date-col", field="cv_group")
    if map_labels not in MODES:
        raise InputValueError(f"map_labels must be one of {', '.join(MODES)}, got {map_labels!r}")
    progress = _Progress(quiet)
    examples, report = load_labelled(data, columns, fmt=fmt, skip_bad=skip_bad)
    log.info("read %d rows: %d usable, %d rejected %s", report.rows_read, report.rows_used,
             report.rows_rejected, report.rejected_by_reason or "")
    if report.missing_labels:
        log.info("rows kept for one task only (the other's label is missing): %s", report.missing_labels)
    corrected = None
    if corrections is not None:  # operators' corrections, over the export by id (data.py)
        from .data import apply_corrections

        examples, corrected = apply_corrections(examples, corrections)
    n_read_usable = len(examples)
    mapping = {"mode": map_labels, "applied": False}
    if "agency" in tasks:
        examples, mapping = map_old_labels(
            examples, map_labels, resolver=None if relabel_with is None else model_resolver(relabel_with))
        # A row whose only label was an old name that its text could not place trains nothing.
        examples = [e for e in examples if any(getattr(e, t) is not None for t in tasks)]
        if mapping.get("applied") and report.label_variants.get("agency"):
            # spellings that the mapping joined into one code are one class after all
            single = {lab: next(iter(m)) for lab, m in mapping["mapped"].items() if len(m) == 1}
            report.label_variants["agency"] = [
                g for g in report.label_variants["agency"] if len({single.get(lab, lab) for lab in g}) > 1]
            if not report.label_variants["agency"]:
                del report.label_variants["agency"]
    report.label_mapping = mapping
    for task, groups in report.label_variants.items():
        log.warning("%s: %d label(s) are spelt in several ways that differ only by case or spacing "
                    "and are learnt as separate classes: %s", task, len(groups),
                    "; ".join(" / ".join(map(repr, g)) for g in groups[:5]) + (" ..." if len(groups) > 5 else ""))
    n_usable = len(examples)
    for task in tasks:
        examples, rare_labels = handle_rare(examples, task, min_count, rare)
        if rare_labels:
            report.rare_labels[task] = {"policy": rare, "min_count": min_count, "labels": rare_labels}
            log.info("%s: %d labels under %d examples (%s)", task, len(rare_labels), min_count, rare)
    # A row whose every label was dropped as rare is used by no task: it leaves here, counted.
    examples = [e for e in examples if any(getattr(e, t) is not None for t in tasks)]
    if split_date or test_size > 0:
        train_ex, test_ex = split_examples(examples, split_date=split_date, test_size=test_size,
                                           stratify=tasks[-1],
                                           seed=seed)
    else:
        train_ex, test_ex = examples, []
    # A label the resolver chose from the text would grade the resolver, not the model.
    n_test = len(test_ex)
    test_ex = [e for e in test_ex if not getattr(e, "label_from_text", False)]
    # Every usable row is accounted for: trained on, tested on, or dropped (and counted) here.
    dropped = {"ambiguous_old_label": n_read_usable - n_usable,
               "test_labels_from_text": n_test - len(test_ex),
               "rare_labels": n_usable - len(examples),
               "test_duplicates_of_train": len(examples) - len(train_ex) - n_test}
    log.info("train %d, test %d%s", len(train_ex), len(test_ex),
             f" (split at {split_date})" if split_date else "")
    if not train_ex:
        raise DataValidationError(
            "the training side is empty" + (f": every row is dated on or after --split-date {split_date}"
                                            if split_date and examples else "")
            + (f" ({dropped['rare_labels']} rows dropped: their labels have fewer than --min-count "
               f"{min_count} examples)" if dropped["rare_labels"] else ""))
    if (split_date or test_size > 0) and not test_ex:
        log.warning("the test side is empty%s: no metrics and no report files are written",
                    f" (no row dated on or after {split_date})" if split_date else "")

    def fit(exs):
        return new_model().fit([e.text for e in exs], {t: [getattr(e, t) for e in exs] for t in tasks},
                               progress=progress)

    for task in tasks:  # too few to be held out once: scikit-learn's split would only warn
        single = sorted(lab for lab, n in Counter(getattr(e, task) for e in train_ex).items()
                        if lab is not None and n < 2)
        if single:
            log.warning("%s: %s only 1 training row: %s calibration and review threshold use no "
                        "held-out example of %s", task,
                        f"label {single[0]!r} has" if len(single) == 1 else
                        f"{len(single)} labels have ({', '.join(map(repr, single[:5]))}"
                        + (", ..." if len(single) > 5 else "") + ")",
                        "its" if len(single) == 1 else "their", "it" if len(single) == 1 else "them")
    t_fit = time.perf_counter()
    model = fit(train_ex)
    fit_seconds = time.perf_counter() - t_fit
    metrics = {}
    if test_ex:
        metrics = evaluate_model(model, [e.text for e in test_ex],
                                 {t: [getattr(e, t) for e in test_ex] for t in tasks})
        for task, m in metrics.items():
            log.info("test %s", summary_line(task, m))
        add_intervals(model, metrics, test_ex, seed=seed)
    cv_result = None
    if cv:
        log.info("%d-fold cross-validation (%s) on %d rows", cv, cv_group or "stratified", len(examples))
        cv_result = cross_validate(examples, tasks, new_model, k=cv, group=cv_group, seed=seed)
        for task, s in cv_result["summary"].items():
            log.info("%s", cv_line(task, s))
    if refit_all and test_ex:
        log.info("refitting on all %d rows", len(examples))
        model = fit(examples)
    agency_types, places = agency_places(examples)
    taxonomy_routing = {}
    if mapping.get("applied"):  # labels that are taxonomy codes route as the taxonomy says
        from ..taxonomy import bundled_routing

        full = bundled_routing()
        agency_types = {**agency_types, **{c: t for c, t in full["agency_types"].items() if c in agency_types}}
        taxonomy_routing = {"agency_types": agency_types, "parents": full["parents"],
                            "label_names": {"agency": {c: n for c, n in full["label_names"]["agency"].items()
                                                       if c in agency_types}}}
    info = {
        "name": name or (Path(out_dir).name if out_dir else "model"),
        "data": {"source": Path(str(data)).name, "sha256": report.sha256,
                 "rows_read": report.rows_read, "rows_used": report.rows_used,
                 "rows_rejected": report.rows_rejected, "rejected_by_reason": report.rejected_by_reason,
                 "skip_bad": skip_bad,
                 "rare_labels": report.rare_labels, "train_rows": len(train_ex),
                 "test_rows": len(test_ex), "rows_dropped": dropped, "refit_all": refit_all,
                 "label_mapping": {k: mapping.get(k) for k in ("mode", "applied", "mapped")},
                 # per task: the rows that carry its label (a row's rare label is dropped from
                 # that task only, so a task may learn from fewer rows than train_rows)
                 "rows_per_task": {t: {"train": sum(getattr(e, t) is not None for e in train_ex),
                                       "test": sum(getattr(e, t) is not None for e in test_ex)}
                                   for t in tasks},
                 "missing_labels": report.missing_labels,
                 "date_range": date_range(examples),
                 **({"cv": {"k": cv, "group": cv_result["group"]}} if cv_result else {}),
                 **({"corrections": corrected} if corrected is not None else {}),
                 "split": {"split_date": split_date, "test_size": None if split_date else test_size,
                           "seed": seed}},
        "label_counts": {t: dict(Counter(getattr(e, t) for e in (examples if refit_all else train_ex)
                                         if getattr(e, t) is not None).most_common()) for t in tasks},
        "params": {**model.hyperparameters(), "min_count": min_count, "rare": rare},
        "columns": {k: v for k, v in vars(columns).items() if v},
        "agency_types": (routing or {}).get("agency_types", agency_types),
        "home_region": home_region,
        "metrics": {t: {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1",
                                          "coverage_at_precision", "ece", "intervals") if k in m}
                    for t, m in metrics.items()},
        **({"cv": cv_result["summary"]} if cv_result else {}),
        "train_seconds": round(fit_seconds, 2),
        **(extra_info or {}),
    }
    report.rows_per_task = info["data"]["rows_per_task"]
    if out_dir is not None:
        from ..artifact import save_model
        import json

        files = report_files(metrics, {"lapor_nlp_version": __version__, "data": info["data"],
                                       **({"cv": cv_result} if cv_result else {})}) \
            if metrics else {}
        thresholds = {t: dict(zip(map(str, h.classes_), h.thresholds_.tolist())) for t, h in model.heads_.items()}
        files[MODEL_CARD] = model_card(info, metrics, thresholds, date_range=info["data"]["date_range"],
                                       cv=cv_result, out=str(out_dir), fmt=fmt).encode("utf-8")
        routing_info = {"agency_types": agency_types, **places, "home_region": home_region,
                        "topic_agency_counts": topic_agency_counts(examples if refit_all else train_ex),
                        "label_names": {}, **taxonomy_routing, **(routing or {})}
        files["data_report.json"] = json.dumps(
            {**report.to_dict(), **({"corrections": corrected} if corrected is not None else {})},
            ensure_ascii=False, indent=1, default=vars).encode("utf-8")
        save_model(model, out_dir, info=info, routing=routing_info, extra_files=files)
        log.info("saved model to %s (%.1fs)", out_dir, time.perf_counter() - t0)
    return TrainResult(model, metrics, report, Path(out_dir) if out_dir else None, info)
