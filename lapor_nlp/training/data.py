"""Labelled complaint data for training and evaluation: column mapping, validation, splits.

Nothing is dropped silently. :func:`load_labelled` returns every row it read as either *kept* or a
:class:`Problem` (line number + reason); :class:`DataReport` counts them all, and by default any
problem stops training or evaluation with a clear message (``skip_bad=True`` goes on without those rows).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from ..agency import AgencySplitter
from ..columns import Columns, cell_value, reason_kind
from ..errors import DataValidationError, InputValueError
from ..io import ERROR, LINE, UNDECODABLE, detect_format, iter_rows, require_file, sha256_file, undecodable

# Moved to lapor_nlp.columns under public names; the old private names still resolve, with a warning.
_MOVED = {"_value": cell_value, "_reason_kind": reason_kind}


def __getattr__(name: str):
    if name in _MOVED:
        import warnings

        new = _MOVED[name]
        warnings.warn(f"lapor_nlp.training.data.{name} moved to lapor_nlp.columns.{new.__name__}",
                      DeprecationWarning, stacklevel=2)
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_log = logging.getLogger("lapor_nlp")

@dataclass
class Example:
    """One usable labelled complaint."""

    line: int
    text: str
    topic: str | None = None
    agency: str | None = None          # the agency TYPE (see lapor_nlp.agency)
    agency_label: str | None = None    # the label as written ("Kelurahan Kertajaya")
    agency_place: str | None = None
    agency_level: str | None = None    # level of agency_place ("village", "regency", ...)
    #: The agency type came from a correction that named no place: the row says nothing about
    #: whether the type serves a region (training does not count it when it decides that).
    agency_place_unknown: bool = False
    date: str | None = None
    id: str | None = None
    location: dict = field(default_factory=dict)


@dataclass
class Problem:
    line: int
    reason: str
    id: str | None = None


@dataclass
class DataReport:
    """Every input row accounted for: rows_read == len(examples) + rows_rejected."""

    source: str
    sha256: str
    rows_read: int = 0
    rows_used: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    rare_labels: dict = field(default_factory=dict)
    #: {task: [[spellings of one label], ...]}: labels that differ only by case or spacing
    label_variants: dict = field(default_factory=dict)
    #: old agency names mapped to current taxonomy codes (see lapor_nlp.training.relabel)
    label_mapping: dict = field(default_factory=dict)
    #: {task: rows kept without that task's label}: they train and test the other task only
    missing_labels: dict = field(default_factory=dict)
    #: {task: {"train": n, "test": n}}: the rows each task learnt from and was measured on
    #: (filled by :func:`lapor_nlp.training.train`)
    rows_per_task: dict = field(default_factory=dict)

    def to_dict(self, max_problems: int = 200) -> dict:
        d = asdict(self)
        d["problems"] = d["problems"][:max_problems]
        d["problems_total"] = len(self.problems)
        return d


def load_labelled(
    path: str | Path,
    columns: Columns | None = None,
    *,
    fmt: str | None = None,
    skip_bad: bool = False,
    splitter: AgencySplitter | None = None,
    require_optional: bool = True,
) -> tuple[list[Example], DataReport]:
    """Read and validate a labelled file; raise :class:`DataValidationError` on any bad row unless
    ``skip_bad``. Checked: unparsable line, undecodable bytes, no text, no label for any task in
    use (a row missing only one task's label is kept for the other task, and counted in
    ``report.missing_labels``), a duplicate id. A label column absent from the file is an error, and so
    is an optional column named but absent from a CSV/Parquet header unless ``require_optional``
    is False (evaluate, whose columns come from the model, not from the caller)."""
    columns = columns or Columns()
    splitter = splitter or AgencySplitter()
    report = DataReport(source=str(path), sha256=sha256_file(require_file(path)))
    examples: list[Example] = []
    seen_ids: set[str] = set()
    checked_header = False
    is_jsonl = detect_format(path, fmt) == "jsonl"
    tasks = [t for t in ("topic", "agency") if getattr(columns, t)]
    # JSON lines may each lack an optional key, so a named one is only required on some line.
    unseen = set(columns.optional().values()) if require_optional and is_jsonl else set()
    for row in iter_rows(path, fmt):
        report.rows_read += 1
        line = row[LINE]
        if ERROR in row:
            report.problems.append(Problem(line, row[ERROR]))
            continue
        if not checked_header:
            checked_header = True
            # A CSV or Parquet row holds every column; the optional ones (title, date, id,
            # location) may be absent from a single JSON line, so only there they are not required.
            wanted = [c for c in (columns.text, columns.topic, columns.agency) if c]
            if require_optional and not is_jsonl:
                wanted += columns.optional().values()
            missing = [c for c in wanted if c not in row]
            if missing:
                raise DataValidationError(
                    f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has "
                    f"{', '.join(repr(k) for k in row if k != LINE)}. Map columns with --text-col, "
                    "--topic-col, --agency-col (or set one to '' to leave that label out)."
                )
        if unseen:
            unseen.difference_update([c for c in unseen if c in row])
        rid = cell_value(row, columns.id)
        fields = {k: cell_value(row, getattr(columns, k)) for k in
                  ("text", "title", "topic", "agency", "date")}
        loc = {k: cell_value(row, c) for k, c in columns.location().items()}
        if any(undecodable(v) for v in [*fields.values(), *loc.values(), rid]):
            report.problems.append(Problem(line, UNDECODABLE, rid))
            continue
        text = " ".join(x for x in (fields["title"], fields["text"]) if x)
        # Labels are per task: a row missing one task's label still trains and tests the other
        # (counted in missing_labels); only a row that no task can use is a problem.
        missing = [t for t in tasks if not fields[t]]
        reason = None
        if not text.strip() or not fields["text"]:
            reason = "no text"
        elif tasks and len(missing) == len(tasks):
            reason = f"missing {' and '.join(missing)} label" + ("s" if len(missing) > 1 else "")
        elif rid is not None and rid in seen_ids:
            reason = f"duplicate id {rid!r}"
        if reason:
            report.problems.append(Problem(line, reason, rid))
            continue
        for t in missing:
            report.missing_labels[t] = report.missing_labels.get(t, 0) + 1
        if rid is not None:
            seen_ids.add(rid)
        ex = Example(line=line, text=text, topic=fields["topic"] and fields["topic"].strip(),
                     date=fields["date"], id=rid, location={k: v for k, v in loc.items() if v})
        if fields["agency"]:
            name = splitter.split(fields["agency"])
            ex.agency, ex.agency_label = name.type, name.label
            ex.agency_place, ex.agency_level = name.place, name.level
        examples.append(ex)
    if unseen and report.rows_read > len(report.problems):
        raise DataValidationError(
            f"{path}: no line has the key(s) {', '.join(map(repr, sorted(unseen)))} named for an "
            "optional column; check the spelling (keys are case-sensitive) or leave the option out")
    report.rows_rejected = len(report.problems)
    report.rows_used = len(examples)
    report.label_variants = label_variants(examples)
    report.rejected_by_reason = dict(Counter(reason_kind(p.reason) for p in report.problems))
    if report.problems and not skip_bad:
        shown = "\n".join(f"  line {p.line}: {p.reason}" for p in report.problems[:20])
        more = len(report.problems) - 20
        raise DataValidationError(
            f"{path}: {len(report.problems)} of {report.rows_read} rows are unusable:\n{shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + ("\nThe file is read as UTF-8: one saved in another encoding (Windows-1252, Latin-1) "
               "must be saved again as UTF-8." if UNDECODABLE in report.rejected_by_reason else "")
            + "\nFix them, or pass --skip-bad (skip_bad=True) to go on without them.",
            problems=report.problems,
        )
    return examples, report


def label_variants(examples: list[Example]) -> dict[str, list[list[str]]]:
    """Per task, the groups of label spellings that differ only by case or spacing ("Dinsos",
    "DINSOS"): each is learnt as a class of its own, which is rarely what the data means."""
    out = {}
    for task in ("topic", "agency"):
        groups: dict[str, set] = {}
        for e in examples:
            label = getattr(e, "agency_label" if task == "agency" else task)
            if label:
                groups.setdefault(" ".join(label.casefold().split()), set()).add(label)
        found = [sorted(g) for g in groups.values() if len(g) > 1]
        if found:
            out[task] = sorted(found)
    return out


def handle_rare(examples: list[Example], attr: str, min_count: int, policy: str,
                other: str = "lainnya") -> tuple[list[Example], dict]:
    """Labels with fewer than ``min_count`` examples: ``drop`` them from this task (the row stays
    for the other task), ``merge`` them into ``other``, or ``keep`` them. Returns the examples and
    ``{label: count}`` of the rare labels."""
    if policy not in ("drop", "merge", "keep"):
        raise InputValueError("rare-label policy must be 'drop', 'merge' or 'keep'")
    counts = Counter(getattr(e, attr) for e in examples if getattr(e, attr) is not None)
    rare = {lab: n for lab, n in counts.items() if n < min_count}
    if rare and policy != "keep":
        for e in examples:
            if getattr(e, attr) in rare:
                setattr(e, attr, None if policy == "drop" else other)
    return examples, rare


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def test_share(value: float, what: str = "test_size") -> float:
    """``value`` if it is a test share in [0, 1) (0: no test side), else a typed error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InputValueError(f"{what} must be a share in [0, 1), got {value!r}")
    return value


def iso_date(text: str, what: str) -> str:
    """``text`` if it is a YYYY-MM-DD date, else a typed error naming the option."""
    if not isinstance(text, str) or not _is_iso_date(text):
        raise InputValueError(f"{what} must be a date written YYYY-MM-DD, got {text!r}")
    return text


def split_examples(examples: list[Example], *, split_date: str | None = None, test_size: float = 0.2,
                   stratify: str | None = "agency", seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Train/test split. With ``split_date`` (YYYY-MM-DD): train before it, test from it (the honest
    measure of a router meeting future complaints); otherwise a stratified random split of
    ``test_size``. Either way an exact-duplicate text never sits on both sides: duplicates are
    removed from the test side (and repeated test texts are kept once)."""
    if split_date:
        split_date = iso_date(split_date, "split_date")
        undated = [Problem(e.line, "no date", e.id) for e in examples if e.date is None]
        if undated:
            raise DataValidationError(
                f"--split-date needs a date for every row; {len(undated)} row(s) have none, the first "
                f"at line {undated[0].line} (map the date column with --date-col, or fill those dates)",
                undated)
        # Dates are compared as text, which is right only for YYYY-MM-DD[...] values: check them.
        bad = [Problem(e.line, f"date {e.date[:40]!r} is not YYYY-MM-DD", e.id)
               for e in examples if not _is_iso_date(e.date[:10])]
        if bad:
            raise DataValidationError(
                f"--split-date needs dates written YYYY-MM-DD[ hh:mm]; {len(bad)} row(s) are not, the "
                f"first at line {bad[0].line} ({bad[0].reason})", bad)
        train = [e for e in examples if e.date[:10] < split_date]
        test = [e for e in examples if e.date[:10] >= split_date]
    else:
        rng = random.Random(seed)
        groups: dict[object, list[Example]] = {}
        for e in examples:
            groups.setdefault(getattr(e, stratify) if stratify else None, []).append(e)
        train, test = [], []
        for key in sorted(groups, key=str):
            g = groups[key][:]
            rng.shuffle(g)
            k = int(round(len(g) * test_size)) if len(g) > 1 else 0
            test += g[:k]
            train += g[k:]
        train.sort(key=lambda e: e.line)
        test.sort(key=lambda e: e.line)
    train_texts = {e.text for e in train}
    seen: set[str] = set()
    deduped = []
    for e in test:
        if e.text in train_texts or e.text in seen:
            continue
        seen.add(e.text)
        deduped.append(e)
    return train, deduped


# -- Corrections fed back by operators -------------------------------------------------------------
def corrections_fingerprint(rows) -> str:
    """sha256 of the corrections as applied (id and corrected labels, latest per id, by id): the
    same for a feedback database and its export, so that a model card can name what changed its
    labels whatever the corrections came from."""
    import hashlib
    import json

    fields = ("id", "corrected_topic", "corrected_agency", "corrected_office")
    canon = sorted([str(r.get(f) or "") for f in fields] for r in rows)
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()


def apply_corrections(examples: list[Example], corrections, splitter: AgencySplitter | None = None
                      ) -> tuple[list[Example], dict]:
    """Operators' corrections over the data, by id (:mod:`lapor_nlp.feedback`): ``corrections`` is
    a feedback database or an export (CSV/JSONL) path, or rows as an export holds them; the latest
    correction of an id wins. Sets ``topic`` / ``agency`` (split with the AgencySplitter, as
    :func:`load_labelled` does) on the examples whose ``id`` a correction names, and returns them
    with a JSON-able summary: how many rows changed, per task, and the ids no row has.
    ``train(corrections=...)`` calls it right after :func:`load_labelled`, before old names are
    mapped, rare labels handled and the data split, so that a corrected label (or one given to a
    row that lacked it) trains and tests like any other. A corrected office trains nothing (there
    is no office task) and is counted apart."""
    from ..feedback import latest_by_id, read_corrections

    if isinstance(corrections, (str, Path)):
        source, rows = str(corrections), read_corrections(corrections)
    else:
        source = "rows"
        rows = latest_by_id({**r, "id": str(r["id"]), "version": r.get("version") or 0,
                             "when": r.get("when") or f"{k:09d}"} for k, r in enumerate(corrections))
    if rows and not any(e.id is not None for e in examples):
        raise DataValidationError("corrections are matched to rows by id: name the id column "
                                  "(--id-col, columns.id)")
    splitter = splitter or AgencySplitter()
    by_id = {e.id: e for e in examples if e.id is not None}
    changed: Counter = Counter()
    changed_ids: set[str] = set()
    unmatched: list[str] = []
    office_only = 0
    for c in rows:
        e = by_id.get(c["id"])
        if e is None:
            unmatched.append(c["id"])
            continue
        topic, agency = c.get("corrected_topic"), c.get("corrected_agency")
        if topic and topic.strip() != e.topic:
            e.topic = topic.strip()
            changed["topic"] += 1
            changed_ids.add(e.id)
        if agency:
            name = splitter.split(agency)
            office = c.get("corrected_office")
            if name.place is None and office:
                name = splitter.split(office)  # "Kelurahan Kertajaya" names the type and its place
            if name.place is None:
                # A correction usually names an agency type only (the service checks it against
                # the model's labels). The same type keeps the row as it is, place and all; another
                # type leaves the place unknown, and training does not let the row vote on whether
                # the type serves a region (agency_places).
                if name.type != e.agency:
                    e.agency, e.agency_label = name.type, name.label
                    e.agency_place = e.agency_level = None
                    e.agency_place_unknown = True
                    changed["agency"] += 1
                    changed_ids.add(e.id)
            elif (name.type, name.place) != (e.agency, e.agency_place):
                e.agency, e.agency_label = name.type, name.label
                e.agency_place, e.agency_level = name.place, name.level
                e.agency_place_unknown = False
                changed["agency"] += 1
                changed_ids.add(e.id)
        if c.get("corrected_office") and not topic and not agency:
            office_only += 1
    summary = {"source": source, "corrections": len(rows), "sha256": corrections_fingerprint(rows),
               "matched": len(rows) - len(unmatched),
               "rows_changed": len(changed_ids), "labels_changed": dict(changed),
               "office_only": office_only, "unmatched_ids": len(unmatched),
               "unmatched_examples": unmatched[:20], "changed_ids": sorted(changed_ids)[:1000]}
    _log.info("corrections: %d read, %d rows changed (%s), %d ids not in the data", len(rows),
              len(changed_ids), dict(changed) or "none", len(unmatched))
    return examples, summary
