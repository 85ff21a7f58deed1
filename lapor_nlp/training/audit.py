"""Find the labels that are probably wrong: out-of-fold probabilities, confident learning, and
texts that say the same thing under different labels.

Why this way: the measurements say this field's ceiling is its labels (the same text filed twice
went to the same agency type in 44% of pairs), so the audit ranks rows for a person to re-check,
most suspect first. Three signals:

* **Out-of-fold probabilities** from the project's own features and heads (TF-IDF fitted once on
  every text, which sees no label; a calibrated linear head per fold), so that no row is scored by a
  model that learnt its label.
* **Confident learning** (Northcutt et al. 2021) through cleanlab, the field's maintained library:
  ``cleanlab.filter.find_label_issues`` flags a row whose given label's probability is below that
  label's own average confidence while another label's is above its own; the ranking score is
  cleanlab's ``normalized_margin`` label quality with per-class adjusted probabilities (a rare label's
  rows are not all suspect just because rare labels get low probabilities). ``bench/audit.py``
  measures it beside the plain "lowest out-of-fold probability of the given label".
* **Conflicting duplicates**: rows whose normalised tokens are identical (or whose TF-IDF cosine
  is at least ``near``) but whose labels differ; a row outvoted within its group is suspect.

Only labels with at least ``min_count`` rows are audited (a label seen twice has no out-of-fold
probability worth the name); the others are counted in ``summary["not_audited"]``.
"""

from __future__ import annotations

import copy
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputValueError

log = logging.getLogger("lapor_nlp")

METHODS = ("cleanlab", "self_confidence")


@dataclass
class AuditResult:
    """``rows``: one dict per audited row, most suspect first (``rank`` 1 = most suspect), with
    ``line``, ``id``, ``task``, ``given``, ``suggested``, ``score`` (0..1, higher = more suspect),
    ``p_given``, ``p_suggested``, ``flagged`` (confident learning), ``conflict_group`` (duplicate
    group number or None). ``pairs``: per (given, suggested) label pair, the flagged count.
    ``summary``: figures (rows audited, flagged, duplicate conflicts, not audited)."""

    task: str
    method: str
    rows: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def out_of_fold_proba(X, labels, *, folds: int = 5, C: float = 0.5, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, classes): row i's calibrated distribution from a head that never saw row i.

    ``X``: TF-IDF rows (:class:`~lapor_nlp.features.TokenTfidf`). The heads are the project's
    :class:`~lapor_nlp.heads.LinearHead` SVMs; the Platt sigmoids are fitted once on every row's
    out-of-fold scores, as the head itself calibrates.
    """
    from sklearn.model_selection import StratifiedKFold

    from ..heads import LinearHead, _fit_platt

    y = np.asarray(labels, dtype=object)
    classes = np.array(sorted(set(y)), dtype=object)
    yi = np.searchsorted(classes, y)
    head = LinearHead(C=C, random_state=seed)
    head.classes_ = classes
    counts = np.bincount(yi, minlength=len(classes))
    folds = max(2, min(folds, int(counts.max())))
    strat = np.where(counts[yi] >= folds, yi, -1)
    scores = np.zeros((len(y), len(classes)))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for tr, te in skf.split(np.zeros(len(y)), strat):
        scores[te] = head._decision(head._fit_svm(X[tr], yi[tr]), X[te])
    present = (scores > -500).all(axis=1)
    head.platt_a_, head.platt_b_ = _fit_platt(scores[present], yi[present], len(classes))
    return head._calibrate(scores), classes


def duplicate_groups(docs: list[list[str]], X=None, near: float = 0.9) -> list[int | None]:
    """Group number per row (None: no twin). Rows are twins when their normalised tokens are
    identical, or (``X`` given, ``near`` < 1) when their TF-IDF cosine is at least ``near``."""
    parent = list(range(len(docs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i, j):
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first: dict[str, int] = {}
    for i, doc in enumerate(docs):
        if not doc:
            continue
        key = " ".join(doc)
        if key in first:
            join(first[key], i)
        else:
            first[key] = i
    if X is not None and near < 1:
        import scipy.sparse as sp

        X = sp.csr_matrix(X, dtype=np.float32)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        X = sp.diags(1 / norms).astype(np.float32) @ X
        XT = X.T.tocsc()
        for start in range(0, X.shape[0], 1000):
            sims = (X[start:start + 1000] @ XT).tocoo()
            keep = (sims.data >= near) & (sims.row + start < sims.col)
            for r, c in zip(sims.row[keep] + start, sims.col[keep]):
                join(int(r), int(c))
    roots = [find(i) for i in range(len(docs))]
    sizes = Counter(roots)
    numbers: dict[int, int] = {}
    out: list[int | None] = []
    for r in roots:
        if sizes[r] < 2:
            out.append(None)
        else:
            out.append(numbers.setdefault(r, len(numbers) + 1))
    return out


def suspicion(proba: np.ndarray, yi: np.ndarray, method: str = "cleanlab"
              ) -> tuple[np.ndarray, np.ndarray]:
    """(score per row, 0..1 with higher = more suspect; confident-learning flag per row).

    The score is 1 - p(given label) (self-confidence) for both methods. ``self_confidence`` flags
    nothing (the plain baseline: rows ordered by score alone). ``cleanlab`` flags the rows that
    ``cleanlab.filter.find_label_issues(filter_by="both")`` finds (the given label is below its
    class's confident threshold and the joint-count pruning agrees), which are ranked first:
    cleanlab's own default recipe (issues ranked by self-confidence). ``bench/audit.py`` compares
    other cleanlab scores (``normalized_margin`` with adjusted probabilities ranked best on topics
    alone, worse on agency and with the joint labels).
    """
    score = 1 - proba[np.arange(len(yi)), yi]
    if method == "self_confidence":
        return score, np.zeros(len(yi), bool)
    if method != "cleanlab":
        raise InputValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    import warnings

    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():  # cleanlab warns about every label with few rows
        warnings.simplefilter("ignore")
        flagged = find_label_issues(yi, proba, filter_by="both", n_jobs=1)
    return score, np.asarray(flagged, bool)


def rank_suspects(score: np.ndarray, flagged: np.ndarray, conflict: np.ndarray) -> np.ndarray:
    """Row order, most suspect first: rows that confident learning flags or that a duplicate
    group outvotes come before the rest; within each part, by score."""
    first = flagged | conflict
    return np.lexsort((-score, ~first))


def audit_examples(texts: list[str], labels: list, *, lines=None, ids=None, task: str = "agency",
                   method: str = "cleanlab", folds: int = 5, min_count: int = 5, near: float = 0.9,
                   C: float = 0.5, seed: int = 0, preprocessor=None, docs=None,
                   context: list | None = None) -> AuditResult:
    """Audit one task's labels. ``labels`` may hold None (the row has no label for this task: not
    audited). ``docs``: the texts' tokens, when already computed. ``context``: the row's label of
    the other task (or None), given to the out-of-fold model as one more feature: a topic label
    that always goes with one agency makes an agency label that disagrees with it suspect."""
    from ..features import TokenTfidf
    from ..text import Preprocessor

    if method not in METHODS:
        raise InputValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputValueError(f"folds must be a whole number >= 2, got {folds!r}")
    n = len(texts)
    if len(labels) != n:
        raise InputValueError(f"{len(labels)} labels for {n} texts")
    lines = list(lines) if lines is not None else list(range(1, n + 1))
    ids = list(ids) if ids is not None else [None] * n
    counts = Counter(lab for lab in labels if lab is not None)
    use = np.array([lab is not None and counts[lab] >= min_count for lab in labels])
    if len({labels[i] for i in np.flatnonzero(use)}) < 2:
        raise InputValueError(f"{task}: fewer than two labels with {min_count} or more rows; "
                              "nothing to audit")
    if docs is None:
        docs = (preprocessor or Preprocessor()).tokens_batch(texts)
    features = TokenTfidf(2, 1).fit(docs)
    X = features.transform(docs)
    if context is not None:
        X = _with_context(X, context)
    idx = np.flatnonzero(use)
    y = [labels[i] for i in idx]
    proba, classes = out_of_fold_proba(X[idx], y, folds=folds, C=C, seed=seed)
    yi = np.searchsorted(classes, np.asarray(y, dtype=object))
    score, flagged = suspicion(proba, yi, method)
    groups = duplicate_groups([docs[i] for i in idx], X[idx], near)
    # Within a duplicate group, a row whose label is not the group's most common one is outvoted.
    members: dict[int, list[int]] = defaultdict(list)
    for k, g in enumerate(groups):
        if g is not None:
            members[g].append(k)
    conflict = np.zeros(len(idx), bool)
    group_vote: dict[int, str] = {}
    for g, ks in members.items():
        votes = Counter(y[k] for k in ks)
        if len(votes) > 1:
            # ties go to the label the out-of-fold model finds likelier for the group
            best = max(votes, key=lambda lab: (votes[lab], proba[ks][:, np.searchsorted(classes, lab)].sum()))
            group_vote[g] = best
            for k in ks:
                conflict[k] = y[k] != best
    suggested = proba.copy()
    suggested[np.arange(len(yi)), yi] = -1
    alt = suggested.argmax(1)
    order = rank_suspects(score, flagged, conflict)
    rows = []
    for rank, k in enumerate(order, 1):
        i = idx[k]
        g = groups[k]
        sug = group_vote.get(g) if conflict[k] else classes[alt[k]]
        rows.append({
            "rank": rank, "line": lines[i], "id": ids[i], "task": task, "given": y[k],
            "suggested": sug, "score": round(float(score[k]), 4),
            "p_given": round(float(proba[k, yi[k]]), 4),
            "p_suggested": round(float(proba[k, np.searchsorted(classes, sug)]), 4),
            "flagged": bool(flagged[k]), "duplicate_conflict": bool(conflict[k]),
            "conflict_group": g if g in group_vote else None,
        })
    pair_counts = Counter((r["given"], r["suggested"]) for r in rows
                          if r["flagged"] or r["duplicate_conflict"])
    pairs = [{"given": a, "suggested": b, "rows": c} for (a, b), c in pair_counts.most_common()]
    summary = {
        "task": task, "method": method, "folds": folds, "rows": n, "rows_audited": int(len(idx)),
        "not_audited": {"no_label": int(sum(lab is None for lab in labels)),
                        f"label_under_{min_count}_rows": int(sum(1 for lab in labels
                                                                  if lab is not None and counts[lab] < min_count))},
        "labels": int(len(classes)), "flagged": int(flagged.sum()),
        "duplicate_groups_in_conflict": len(group_vote),
        "duplicate_conflicts": int(conflict.sum()),
        "suspects": int((flagged | conflict).sum()),
        "oof_accuracy": round(float((proba.argmax(1) == yi).mean()), 4),
        "context": context is not None,
    }
    return AuditResult(task, method, rows, pairs, summary)


def _with_context(X, context: list):
    """``X`` with one column per label of the other task (1 where the row has that label)."""
    import scipy.sparse as sp

    cats = {c: k for k, c in enumerate(sorted({c for c in context if c is not None}))}
    rows = [i for i, c in enumerate(context) if c is not None]
    onehot = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, [cats[context[i]] for i in rows])),
                           shape=(len(context), len(cats)))
    return sp.hstack([X, onehot]).tocsr().astype(np.float32)


def plant_flips(labels: list, share: float = 0.05, seed: int = 0, min_count: int = 5
                ) -> tuple[list, set[int]]:
    """(labels with ``share`` of the auditable rows flipped, the flipped positions). The new label
    is drawn from the other labels in proportion to their frequency (flips to common labels, as
    real mistakes are), never a label under ``min_count`` rows."""
    counts = Counter(lab for lab in labels if lab is not None)
    common = [lab for lab, c in counts.items() if c >= min_count]
    eligible = [i for i, lab in enumerate(labels) if lab in common]
    rng = random.Random(seed)
    flipped = set(rng.sample(eligible, int(round(share * len(eligible)))))
    out = list(labels)
    weights = [counts[lab] for lab in common]
    for i in sorted(flipped):
        while True:
            new = rng.choices(common, weights)[0]
            if new != labels[i]:
                break
        out[i] = new
    return out, flipped


# -- a labelled file ------------------------------------------------------------------------------
def audit(data, columns=None, *, fmt: str | None = None, tasks=None, method: str = "cleanlab",
          folds: int = 5, min_count: int = 5, near: float = 0.9, joint: bool = True, seed: int = 0,
          C: float = 0.5, examples=None) -> dict[str, AuditResult]:
    """Audit the labels of a labelled file (``lapor-nlp audit``): ``{task: AuditResult}``.

    Rows the file cannot use (no text, unreadable) are left out and logged, as ``train
    --skip-bad`` leaves them. ``joint``: each task's out-of-fold model also sees the row's label of
    the other task (see :func:`audit_examples`). ``examples``: already read rows (then ``data``
    is only named in messages).
    """
    from .data import Columns, load_labelled
    from ..text import Preprocessor

    columns = columns or Columns()
    if examples is None:
        examples, report = load_labelled(data, columns, fmt=fmt, skip_bad=True)
        if report.rows_rejected:
            log.warning("%d of %d rows left out of the audit: %s", report.rows_rejected,
                        report.rows_read, report.rejected_by_reason)
    tasks = list(tasks or [t for t in ("topic", "agency") if getattr(columns, t)])
    if not tasks:
        raise InputValueError("nothing to audit: name a topic and/or agency column")
    texts = [e.text for e in examples]
    docs = Preprocessor().tokens_batch(texts)
    out = {}
    for task in tasks:
        other = "agency" if task == "topic" else "topic"
        context = [getattr(e, other) for e in examples]
        if not joint or all(c is None for c in context):
            context = None
        out[task] = audit_examples(
            texts, [getattr(e, task) for e in examples], lines=[e.line for e in examples],
            ids=[e.id for e in examples], task=task, method=method, folds=folds,
            min_count=min_count, near=near, C=C, seed=seed, docs=docs, context=context)
        log.info("%s: %d of %d audited rows are suspect (%d flagged, %d outvoted duplicates)",
                 task, out[task].summary["suspects"], out[task].summary["rows_audited"],
                 out[task].summary["flagged"], out[task].summary["duplicate_conflicts"])
    return out


CSV_FIELDS = ("rank", "task", "id", "line", "given", "suggested", "score", "p_given",
              "p_suggested", "flagged", "duplicate_conflict", "conflict_group")


def ranked_rows(results: dict[str, AuditResult]) -> list[dict]:
    """Every task's rows in one ranking, most suspect first (suspects of any task before the
    rest, then by score), ``rank`` renumbered."""
    rows = [r for res in results.values() for r in res.rows]
    rows.sort(key=lambda r: (not (r["flagged"] or r["duplicate_conflict"]), -r["score"]))
    return [{**r, "rank": k} for k, r in enumerate(rows, 1)]


def write_csv(results: dict[str, AuditResult], file) -> int:
    """The ranked CSV (``CSV_FIELDS``) to an open text file; returns the rows written."""
    import csv

    w = csv.DictWriter(file, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    rows = ranked_rows(results)
    w.writerows(rows)
    return len(rows)


def summary(results: dict[str, AuditResult]) -> dict:
    """Per task: the figures and the label pairs (given -> suggested) of the suspects."""
    return {t: {**r.summary, "pairs": r.pairs} for t, r in results.items()}


def markdown(results: dict[str, AuditResult], texts_by_line: dict[int, str], top: int = 50,
             width: int = 160) -> str:
    """A Markdown view for a person: figures, label pairs and the ``top`` suspects of each task
    with their text PII-masked (:func:`lapor_nlp.text.mask_pii`) and cut to ``width`` characters."""
    from ..text import mask_pii

    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["# Label audit", ""]
    for task, res in results.items():
        s = res.summary
        out += [f"## {task}", "",
                f"{s['rows_audited']} rows audited ({s['labels']} labels, {s['folds']}-fold "
                f"out-of-fold accuracy {s['oof_accuracy']:.3f}); {s['suspects']} suspect: "
                f"{s['flagged']} flagged by confident learning, {s['duplicate_conflicts']} outvoted "
                f"in {s['duplicate_groups_in_conflict']} groups of identical or near-identical texts. "
                f"Not audited: {s['not_audited']}.", "",
                "| given | suggested | rows |", "| --- | --- | ---: |"]
        out += [f"| {cell(p['given'])} | {cell(p['suggested'])} | {p['rows']} |" for p in res.pairs[:20]]
        out += ["", f"Most suspect {min(top, len(res.rows))} (text PII-masked):", "",
                "| rank | line | id | given | suggested | score | text |",
                "| ---: | ---: | --- | --- | --- | ---: | --- |"]
        for r in res.rows[:top]:
            text = " ".join(mask_pii(texts_by_line.get(r["line"], "")).split())
            text = text[:width] + ("…" if len(text) > width else "")
            out.append(f"| {r['rank']} | {r['line']} | {cell(r['id'] or '')} | {cell(r['given'])} | "
                       f"{cell(r['suggested'])} | {r['score']:.3f} | {cell(text)} |")
        out.append("")
    return "\n".join(out)


# -- the effect of acting on it -----------------------------------------------------------------
def apply_audit(examples: list, results: dict[str, AuditResult], mode: str = "drop") -> tuple[list, dict]:
    """(examples after acting on the suspects, counts). ``drop``: a suspect row's label leaves its
    task (the row stays for the other task; a row left with no label leaves). ``relabel``: the
    suggested label replaces the given one."""
    if mode not in ("drop", "relabel"):
        raise InputValueError(f"mode must be 'drop' or 'relabel', got {mode!r}")
    by_line = {e.line: copy.copy(e) for e in examples}
    changed = Counter()
    for task, res in results.items():
        for r in res.rows:
            if r["flagged"] or r["duplicate_conflict"]:
                setattr(by_line[r["line"]], task, None if mode == "drop" else r["suggested"])
                changed[task] += 1
    tasks = list(results)
    kept = [e for e in by_line.values() if any(getattr(e, t) is not None for t in tasks)]
    return kept, {"mode": mode, "labels_changed": dict(changed), "rows_left_out": len(examples) - len(kept)}


def retrain_effect(data, columns=None, *, mode: str = "drop", split_date: str | None = None,
                   test_size: float = 0.2, fmt: str | None = None, seed: int = 0,
                   min_count: int = 5, **audit_options) -> dict:
    """Train on the train side as it is and after acting on the audit of the train side alone
    (``mode``: drop or relabel), and score both on the same untouched test side.

    The test side keeps its given labels, so it is graded against the same (noisy) labels; a gain
    there is a gain a user of those labels would see."""
    from sklearn.metrics import f1_score

    from ..classifier import ComplaintClassifier
    from .data import Columns, handle_rare, load_labelled, split_examples

    columns = columns or Columns()
    examples, _ = load_labelled(data, columns, fmt=fmt, skip_bad=True)
    tasks = [t for t in ("topic", "agency") if getattr(columns, t)]
    train_ex, test_ex = split_examples(examples, split_date=split_date, test_size=test_size,
                                       stratify=tasks[-1], seed=seed)
    results = audit(data, columns, tasks=tasks, examples=train_ex, seed=seed, min_count=min_count,
                    **audit_options)
    cleaned, counts = apply_audit(train_ex, results, mode)
    out = {"split": {"split_date": split_date, "test_size": None if split_date else test_size,
                     "train_rows": len(train_ex), "test_rows": len(test_ex)}, **counts}
    for name, rows in (("before", train_ex), ("after", cleaned)):
        rows = [copy.copy(e) for e in rows]  # handle_rare changes them
        for task in tasks:
            rows, _ = handle_rare(rows, task, min_count, "drop")
        model = ComplaintClassifier(random_state=seed).fit(
            [e.text for e in rows], {t: [getattr(e, t) for e in rows] for t in tasks})
        out[name] = {}
        for task in tasks:
            test = [e for e in test_ex if getattr(e, task) is not None]
            pred = model.predict([e.text for e in test], task=task)
            gold = np.array([getattr(e, task) for e in test], dtype=object)
            out[name][task] = {"n": len(test), "accuracy": round(float(np.mean(pred == gold)), 4),
                               "macro_f1": round(float(f1_score(gold, pred, average="macro",
                                                                labels=sorted(set(gold)),
                                                                zero_division=0)), 4)}
    out["delta"] = {t: {k: round(out["after"][t][k] - out["before"][t][k], 4)
                        for k in ("accuracy", "macro_f1")} for t in tasks}
    return out
