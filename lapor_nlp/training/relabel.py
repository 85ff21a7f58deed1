"""Old agency names in a training export, mapped to the taxonomy's current codes.

An export spans cabinets: rows filed to "Kemenkumham" before October 2024 belong today to DJKI,
Imigrasi, Pemasyarakatan, AHU or the human-rights ministry. Learning "Kemenkumham" as a class would
teach the router a body that no longer exists, and dropping those rows would lose data. So:

* a label that is an old name of exactly one current type is mapped to that type's code;
* a label whose duties were split is resolved row by row from the text, by the bundled default
  model restricted to the successors; a row it cannot place with confidence is reported as
  ambiguous and left out of the agency task only (its topic still trains), and a row it placed
  is never a test row (its label is the resolver's guess: ``train`` drops it from the test side,
  counted);
* every label that names a current body is mapped too, so that old and new rows share one code: a
  code or a type's own name to that type, a name two types share ("Bapenda") or a ministry's name
  ("Kementerian Imigrasi dan Pemasyarakatan") resolved from the text among them;
* nothing is dropped silently: :func:`map_old_labels` returns a report of every mapping.

``mode="auto"`` (the default of ``train``) does this only when the export contains an old name, so
an export that never uses one (a city portal's own office names) is left exactly as it is.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from ..errors import DataValidationError, InputValueError
from ..taxonomy import Taxonomy, bundled, name_key
from .data import Example

log = logging.getLogger("lapor_nlp")

MODES = ("auto", "all", "none")
#: Resolver: (texts, candidate codes) -> (chosen code, its score renormalised over the candidates).
Resolver = Callable[[Sequence[str], Sequence[str]], list[tuple[str, float]]]


def model_resolver(model=None) -> Resolver:
    """Resolve split labels with a Router, a model directory, a callable that gives one (called
    when a split label first needs it), or (None) the bundled default model, which must then be
    built already (``lapor_nlp.load()`` builds it; ``lapor-nlp train`` does so by itself). The
    model must predict taxonomy codes. A row goes to the candidate the whole model finds most
    likely, with that probability among all its labels as the score: a text about none of the
    candidates ("lampu PJU mati" under "Kemenkumham") scores low, however it compares among them."""
    state: dict = {}

    def classifier():
        if "clf" not in state:
            from ..router import Router

            m = model() if callable(model) and not isinstance(model, Router) else model
            if isinstance(m, Router):
                state["clf"] = m.model
            else:
                from ..artifact import load_model

                state["clf"] = load_model(m if m is not None else _built_default_model())[0]
            state["labels"] = list(map(str, state["clf"].task_classes_["agency"]))
        return state["clf"], state["labels"]

    def resolve(texts, candidates):
        clf, labels = classifier()
        known = [labels.index(c) for c in candidates if c in labels]
        if not known or not texts:
            return [(candidates[0], 0.0)] * len(texts)
        P = clf.predict_proba(list(texts), "agency")[:, known]
        best = P.argmax(1)
        return [(labels[known[b]], float(P[i, b])) for i, b in enumerate(best)]

    return resolve


def _built_default_model():
    from ..bundled import default_model_dir, is_built

    if not is_built():
        raise DataValidationError(
            "old agency names that were split need a model to resolve them from the text: build "
            "the bundled default model first (lapor_nlp.load()), or pass relabel_with= a model "
            "directory or Router; lapor-nlp train does it by itself")
    return default_model_dir()


def map_old_labels(examples: list[Example], mode: str = "auto", *, taxonomy: Taxonomy | None = None,
                   resolver: Resolver | None = None, min_score: float = 0.5) -> tuple[list[Example], dict]:
    """Map the agency labels of ``examples`` (in place) to current taxonomy codes; see the module
    docstring. Returns the examples and a report: ``mapped`` {label: {code: rows}}, ``ambiguous``
    {label: {rows, lines (the first 50), candidates}}, ``unmapped`` {label: rows} (names no type;
    kept as is), ``resolved_from_text`` (rows whose code the resolver chose; each is marked
    ``label_from_text``)."""
    if mode not in MODES:
        raise InputValueError(f"map_labels must be one of {', '.join(MODES)}, got {mode!r}")
    report = {"mode": mode, "applied": False, "old_labels": [], "mapped": {}, "ambiguous": {},
              "unmapped": {}}
    if mode == "none":
        return examples, report
    taxonomy = taxonomy or bundled()
    counts = Counter(e.agency for e in examples if e.agency is not None)
    old = sorted(lab for lab in counts if taxonomy.is_old_name(lab))
    report["old_labels"] = old
    if mode == "auto" and not old:
        return examples, report
    report["applied"] = True
    report["resolved_from_text"] = 0
    by_label: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        if e.agency is not None:
            by_label[e.agency].append(e)
    for label, rows in sorted(by_label.items()):
        cands = taxonomy.candidates(label)
        if not cands:
            report["unmapped"][label] = len(rows)
            continue
        if len(cands) == 1:
            for e in rows:
                e.agency = cands[0]
            report["mapped"][label] = {cands[0]: len(rows)}
            continue
        resolver = resolver or model_resolver()
        chosen = resolver([e.text for e in rows], cands)
        mapped: Counter = Counter()
        unsure = []
        for e, (code, score) in zip(rows, chosen):
            if score >= min_score:
                e.agency = code
                e.label_from_text = True  # kept out of the test side: it would grade the resolver
                mapped[code] += 1
            else:
                e.agency = None
                unsure.append(e.line)
        report["resolved_from_text"] += sum(mapped.values())
        if mapped:
            report["mapped"][label] = dict(mapped.most_common())
        if unsure:
            report["ambiguous"][label] = {"rows": len(unsure), "lines": unsure[:50],
                                          "candidates": cands}
    for label, m in report["mapped"].items():
        if list(m) != [label]:
            log.info("agency label %r -> %s", label, ", ".join(f"{c} ({n})" for c, n in m.items()))
    if report["unmapped"]:
        log.info("agency labels that name no body of the taxonomy, kept as they are: %s",
                 ", ".join(f"{k!r} ({n})" for k, n in sorted(report["unmapped"].items())[:10]))
    for label, a in report["ambiguous"].items():
        log.warning("agency label %r: %d row(s) could not be placed among %s from their text; they "
                    "train the topic only (lines %s)", label, a["rows"], ", ".join(a["candidates"]),
                    ", ".join(map(str, a["lines"][:10])) + (" ..." if a["rows"] > 10 else ""))
    return examples, report
