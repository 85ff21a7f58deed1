"""Write an evaluation report: ``metrics.json``, ``confusion_matrix_<task>.png``,
``calibration_<task>.png`` and ``errors.md`` (texts PII-masked). Plots need matplotlib
(``pip install 'lapor-nlp[train]'``); without it the JSON and Markdown are still written."""

from __future__ import annotations

import io
import json
import logging

import numpy as np

log = logging.getLogger("lapor_nlp")


def report_files(metrics: dict, extra: dict | None = None) -> dict[str, bytes]:
    """Report file name -> content, for :func:`lapor_nlp.artifact.save_model` or a folder."""
    files = {"metrics.json": json.dumps({**(extra or {}), "tasks": metrics}, ensure_ascii=False,
                                        indent=1).encode("utf-8"),
             "errors.md": errors_markdown(metrics).encode("utf-8")}
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        log.warning("matplotlib is not installed: report plots skipped (pip install 'lapor-nlp[train]')")
        return files
    for task, m in metrics.items():
        files[f"confusion_matrix_{task}.png"] = _confusion_png(task, m)
        files[f"calibration_{task}.png"] = _calibration_png(task, m)
    return files


def write_report(metrics: dict, out_dir, extra: dict | None = None) -> None:
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in report_files(metrics, extra).items():
        (out / name).write_bytes(data)


def errors_markdown(metrics: dict) -> str:
    lines = ["# Evaluation: what the model got wrong", "",
             "Texts are PII-masked and cut at 400 characters. Most confident mistakes first.", ""]
    for task, m in metrics.items():
        lines += [f"## {task}", "",
                  f"accuracy {m['accuracy']:.3f} · macro-F1 {m['macro_f1']:.3f} · "
                  f"coverage at 95% precision {m['coverage_at_precision']['0.95']:.3f} · "
                  f"ECE {m['ece']:.3f} · n={m['n']}", "", *operator_lines(m), "### Worst confusions", "",
                  "| gold | predicted | count |", "| --- | --- | --- |"]
        lines += [f"| {c['gold']} | {c['predicted']} | {c['count']} |" for c in m["top_confusions"][:15]]
        lines += ["", "### Per label (lowest F1 first)", "",
                  "| label | precision | recall | F1 | support | most confused with |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for lab, r in sorted(m["per_class"].items(), key=lambda kv: kv[1]["f1"]):
            cw = ", ".join(f"{k} ({v})" for k, v in r["confused_with"].items())
            lines.append(f"| {lab} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | "
                         f"{r['support']} | {cw} |")
        lines += ["", "### Examples", ""]
        for e in m["errors"][:30]:
            text = e["text"].replace("\n", " ").replace("|", "/")
            lines.append(f"- **{e['gold']}** predicted as **{e['predicted']}** "
                         f"({e['confidence']:.2f}): {text}")
        lines.append("")
    return "\n".join(lines)


def operator_lines(m: dict) -> list[str]:
    """The operator's figures of one task (from ``evaluate``), as Markdown lines."""
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}%"

    lines = []
    for key, what in (("auto_route", "routed without review (every review test)"),
                      ("above_threshold", "score above its label's own threshold")):
        if key in m:
            f = m[key]
            lines.append(f"- {what}: {pct(f['share'])} of rows, precision {pct(f['precision'])}")
    if "routed_to" in m:
        f = m["routed_to"]
        lines.append(f"- `routed_to` names the right office: {pct(f['accuracy'])} of {f['n']} rows; "
                     f"{pct(f['accuracy_place_bound'])} of the {f['n_place_bound']} whose label names a place")
    return lines + [""] if lines else []


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


_MAX_CM_LABELS = 40  # beyond this a cell is too small to read


def _confusion_png(task: str, m: dict) -> bytes:
    import matplotlib.pyplot as plt

    labels = m["confusion_matrix"]["labels"]
    cm = np.asarray(m["confusion_matrix"]["matrix"], dtype=float)
    # Show the labels that occur (gold or predicted), at most 40 by support.
    occ = np.flatnonzero(cm.sum(0) + cm.sum(1) > 0) if cm.size else np.array([], int)
    n_occ = len(occ)
    occ = occ[np.argsort(-(cm.sum(1)[occ]), kind="stable")][:_MAX_CM_LABELS]
    cm = cm[np.ix_(occ, occ)]
    labels = [labels[i][:32] for i in occ]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(6, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=5,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold (row-normalised colour, counts in cells)")
    shown = (f"; the {len(occ)} labels with most test rows of {n_occ}, all in metrics.json"
             if n_occ > len(occ) else "")
    ax.set_title(f"{task}: confusion matrix (accuracy {m['accuracy']:.3f}, n={m['n']}{shown})")
    return _png(fig)


def _calibration_png(task: str, m: dict) -> bytes:
    import matplotlib.pyplot as plt

    rel = [r for r in m["reliability"] if r["count"]]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([r["mean_score"] for r in rel], [r["accuracy"] for r in rel], "o-", label="model")
    ax.set_xlabel("confidence (calibrated score)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{task}: reliability (ECE {m['ece']:.3f})")
    ax.legend()
    edges = [r["bin"][0] for r in m["reliability"]]
    ax2.bar(edges, [r["count"] for r in m["reliability"]], width=0.09, align="edge")
    ax2.set_xlabel("confidence")
    ax2.set_ylabel("complaints")
    cov = m["coverage_at_precision"]
    ax2.set_title("coverage at precision " + ", ".join(f"{k}: {v:.2f}" for k, v in cov.items()))
    return _png(fig)
