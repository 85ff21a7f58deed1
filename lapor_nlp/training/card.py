"""``MODEL_CARD.md``: what a model directory holds, for the person deciding whether to deploy it.

``manifest.json`` is for machines; the card says the same things to a reader (after setfit's
``create_model_card`` and skops' ``Card``): the data and what was left out of it, the figures with
their intervals, what the model is for and where it fails, its review thresholds, how to rebuild it.
Written by :func:`lapor_nlp.training.train`, listed and hashed in the manifest like every other file.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .._version import __version__

MODEL_CARD = "MODEL_CARD.md"

#: Measured on Surabaya 2022 (docs/benchmarks.md, "The ceiling of this split"): the field's labels
#: themselves disagree, which bounds every model trained on them.
LABEL_CONSISTENCY = ("the very same text filed on different days went to the same agency type in "
                     "only 44% of 174 pairs (Surabaya 2022, `bench/ceiling.py`)")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else ""


def retrain_command(info: dict, data_name: str = "DATA", out: str | None = None, fmt: str | None = None) -> str:
    """The ``lapor-nlp train`` command line that rebuilds this model from its data: every option
    that changed the rows or labels it learnt from (corrections, label mapping, --skip-bad) or how
    it was measured. ``out``: the model directory as it was given (default: the model's name)."""
    d, p = info["data"], info["params"]
    name = info.get("name", "MODEL")
    args = ["lapor-nlp", "train", "--data", data_name, "--out", out or name]
    if out and name != Path(out).name:
        args += ["--name", name]
    if fmt:
        args += ["--format", fmt]
    defaults = {"text": "text", "topic": "topic", "agency": "agency"}
    cols = info.get("columns", {})
    for key, col in cols.items():
        if defaults.get(key) != col:
            args += [f"--{'subdistrict' if key == 'village' else key}-col", col]  # the CLI's name
    for key in ("topic", "agency"):
        if key not in cols:
            args += [f"--{key}-col", ""]
    split = d.get("split", {})
    if split.get("split_date"):
        args += ["--split-date", split["split_date"]]
    elif split.get("test_size") is not None and split["test_size"] != 0.2:
        args += ["--test-size", str(split["test_size"])]
    for opt, key, default in (("--seed", "random_state", 0), ("--C", "C", 0.5),
                              ("--ngram-max", "ngram_max", 2), ("--min-df", "min_df", 1),
                              ("--target-precision", "target_precision", 0.95),
                              ("--min-count", "min_count", 5), ("--rare", "rare", "drop")):
        if p.get(key, default) != default:
            args += [opt, str(p[key])]
    if d.get("refit_all"):
        args.append("--refit-all")
    if d.get("skip_bad"):
        args.append("--skip-bad")
    mode = (d.get("label_mapping") or {}).get("mode")
    if mode and mode != "auto":
        args += ["--map-labels", mode]
    if d.get("corrections"):
        source = d["corrections"].get("source")
        args += ["--corrections", source if source and source != "rows" else "CORRECTIONS"]
    if info.get("home_region"):
        args += ["--home-region", info["home_region"]]
    if d.get("cv"):
        args += ["--cv", str(d["cv"]["k"])] + (["--cv-group", "date"] if d["cv"]["group"] == "date" else [])
    return " ".join(shlex.quote(a) for a in args)


def _corrections_line(c: dict) -> str:
    """The data section's line for operators' corrections: the labels are no longer the file's."""
    by_task = ", ".join(f"{t} {n}" for t, n in c.get("labels_changed", {}).items()) or "none"
    source = "rows given in Python" if c.get("source") == "rows" else f"`{c.get('source')}`"
    return (f"- corrections: {c.get('rows_changed', 0)} rows relabelled by {c.get('corrections', 0)} "
            f"operators' corrections from {source} (labels changed: {by_task})"
            + (f", sha256 `{c['sha256']}` (of the corrections applied)" if c.get("sha256") else "")
            + (f"; {c['unmatched_ids']} named ids not in the data" if c.get("unmatched_ids") else "")
            + ": the labels learnt are the data file's with these applied, not the file's own")


def model_card(info: dict, metrics: dict, thresholds: dict, *, date_range=None, cv: dict | None = None,
               out: str | None = None, fmt: str | None = None) -> str:
    """The card's Markdown. ``info``: what train() puts in the manifest (with ``intervals`` per
    task in ``metrics`` when measured); ``thresholds``: ``{task: {label: threshold}}``;
    ``date_range``: (first, last) date of the rows used; ``out``, ``fmt``: the model directory and
    data format as train() was given them, for the retrain command."""
    d = info["data"]
    name = info.get("name", "model")
    lines = [f"# Model card: {name}", "",
             "A lapor-nlp router model: it reads an Indonesian public-service complaint and names its "
             f"{' and '.join(info.get('label_counts', {}))} label, with a calibrated score and a review "
             "flag. Written by `lapor-nlp train`; the machine-readable facts are in `manifest.json`, every "
             "input row is accounted for in `data_report.json`, the evaluation in `metrics.json` and "
             "`errors.md`.", "", "## Data", "",
             f"- source: `{d['source']}`, sha256 `{d['sha256']}`",
             f"- rows: {d['rows_read']} read, {d['rows_used']} used, {d['rows_rejected']} rejected"
             + (f" ({', '.join(f'{k}: {v}' for k, v in d['rejected_by_reason'].items())})"
                if d.get("rejected_by_reason") else ""),
             ]
    if d.get("corrections"):
        lines.append(_corrections_line(d["corrections"]))
    if date_range:
        lines.append(f"- dates: {date_range[0]} to {date_range[1]}")
    if d.get("missing_labels"):
        lines.append("- kept for one task only (the other label missing): "
                     + ", ".join(f"{n} rows with no {t} label" for t, n in d["missing_labels"].items()))
    dropped = {k: v for k, v in d.get("rows_dropped", {}).items() if v}
    why = {"ambiguous_old_label": "an old agency name the text could not place",
           "test_labels_from_text": "test rows whose label was resolved from the text",
           "rare_labels": "every label under --min-count",
           "test_duplicates_of_train": "test texts also in the training side"}
    for k, v in dropped.items():
        lines.append(f"- dropped: {v} rows ({why.get(k, k)})")
    for task, rare in d.get("rare_labels", {}).items():
        lines.append(f"- {task}: {len(rare['labels'])} labels under {rare['min_count']} examples "
                     f"({rare['policy']}; {sum(rare['labels'].values())} rows)")
    split = d.get("split", {})
    lines.append(f"- split: " + (f"train before {split['split_date']}, test from it"
                                 if split.get("split_date") else
                                 f"stratified random, {split.get('test_size')} test share, seed {split.get('seed')}")
                 + f"; {d['train_rows']} train rows, {d['test_rows']} test rows"
                 + ("; the saved model was refitted on all rows" if d.get("refit_all") else ""))
    for task, n in d.get("rows_per_task", {}).items():
        lines.append(f"- {task}: trained on {n['train']} rows, tested on {n['test']}")
    for task, counts in info.get("label_counts", {}).items():
        shown = list(counts.items())[:12]
        more = len(counts) - len(shown)
        lines.append(f"- {task} labels ({len(counts)}): " + ", ".join(f"{k} {v}" for k, v in shown)
                     + (f", and {more} more (all in manifest.json)" if more > 0 else ""))
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += ["On the held-out split; 95% bootstrap intervals in brackets (1,000 resamples of the "
                  "test rows, seeded).", "",
                  "| task | n | accuracy | macro-F1 | coverage at 95% precision | ECE |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for task, m in metrics.items():
            iv = m.get("intervals", {})
            lines.append(f"| {task} | {m['n']} | {m['accuracy']:.3f}{_ci(iv.get('accuracy'))} | "
                         f"{m['macro_f1']:.3f}{_ci(iv.get('macro_f1'))} | "
                         f"{m['coverage_at_precision']['0.95']:.3f}{_ci(iv.get('coverage_at_0.95'))} | "
                         f"{m['ece']:.3f} |")
    else:
        lines.append("No held-out split: no metrics (train with --split-date or --test-size > 0).")
    if cv:
        lines += ["", f"{cv['k']}-fold cross-validation ({cv['group']}), mean ± sd over the folds:", "",
                  "| task | accuracy | macro-F1 | coverage at 95% precision | ECE |", "| --- | --- | --- | --- | --- |"]
        for task, s in cv["summary"].items():
            cells = [f"{s[k]['mean']:.3f} ± {s[k]['sd']:.3f}" for k in ("accuracy", "macro_f1", "coverage_at_0.95", "ece")]
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "## Intended use", "",
              "Routing complaints of the kind it was trained on (the same portal, the same label scheme) "
              "to the responsible agency, with a person reviewing every complaint it flags "
              "(`needs_review`). It is a decision aid for a disposition desk: a complaint whose score "
              "is under its label's threshold, or that fails another review test, goes to a person.",
              "", "Not for: complaints from another region or portal without measuring it there first "
              "(`lapor-nlp evaluate` or `lapor-nlp compare` on a labelled sample), decisions about "
              "people, or routing without review of what it flags.", "",
              "## Known limits", "",
              f"- The labels are the ceiling: {LABEL_CONSISTENCY}. No model trained on such labels can "
              "agree with them much more often than they agree with themselves.",
              "- *Kelurahan* against *Kecamatan*: complaints about subjects that both (and often a dinas) "
              "handle are sent by local practice the text does not show; a classifier for these two "
              "alone reaches 0.61 balanced accuracy on the text."]
    agency = metrics.get("agency") if metrics else None
    if agency:
        kk = [c for c in agency["top_confusions"]
              if {str(c["gold"]).casefold(), str(c["predicted"]).casefold()} == {"kelurahan", "kecamatan"}]
        if kk:
            lines.append("  In this model's test: " + "; ".join(
                f"{c['gold']} predicted as {c['predicted']} {c['count']} times" for c in kk) + ".")
        worst = sorted(((lab, r) for lab, r in agency["per_class"].items() if r["support"] >= 10),
                       key=lambda kv: kv[1]["f1"])[:5]
        if worst:
            lines.append("- Weakest agency labels on the test (F1, support): " + ", ".join(
                f"{lab} {r['f1']:.2f} ({r['support']})" for lab, r in worst) + ".")
    lines += ["- Complaints drift: labels' shares change over the year; retraining every few days on "
              "everything labelled so far gained +1.7 points of accuracy on Surabaya 2022 "
              "(`bench/retrain.py`).", "",
              "## Review thresholds", "",
              f"Each label's threshold is the lowest score at which that label's out-of-fold "
              f"predictions reached {info['params'].get('target_precision', 0.95):.0%} precision "
              "(above 1: never routed without review). `lapor_nlp.load(dir, target_precision=...)` "
              "recomputes them for another target.", ""]
    for task, th in thresholds.items():
        never = sorted(lab for lab, t in th.items() if t > 1)
        lines += [f"| {task} label | threshold |", "| --- | --- |"]
        lines += [f"| {lab} | {t:.3f} |" for lab, t in sorted(th.items(), key=lambda kv: (kv[1], kv[0])) if t <= 1]
        if never:
            lines += ["", f"{task}: {len(never)} labels never reached the target out of fold and always go "
                          "to review: " + ", ".join(never)]
        lines.append("")
    lines += ["## How to retrain", "",
              "With the same data file (check its sha256 above)"
              + (", the same corrections" if d.get("corrections") else "")
              + f" and this lapor-nlp version ({__version__}):", "", "```bash",
              retrain_command(info, d["source"], out, fmt), "```", "",
              "Before replacing a deployed model, compare the two on the same labelled rows "
              "(`lapor-nlp compare --data FILE OLD_DIR NEW_DIR --require-better`).", ""]
    return "\n".join(lines)
