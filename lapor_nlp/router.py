"""The :class:`Router`: complaint in, topic + agency + concrete office + review decision out.

The whole flow, in one place (``Router._route``)::

    text pipeline -> features -> topic head, agency head -> jurisdiction -> routing -> review

One vocabulary for calling it, as spaCy's ``nlp(text)`` and ``nlp.pipe(texts)``: ``router(item)``
for one complaint, ``router.pipe(items, batch_size=...)`` for a stream, in input order.

A Router is read-only after loading: its only mutable state is the text pipeline's word caches,
whose entries are pure functions of their keys, so any number of threads can share one Router and
get exactly the answers they would get one after another. Nothing is held open, so it is also safe
to use in a process forked after loading.
"""

from __future__ import annotations

import gc
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice, repeat
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from .artifact import load_model, model_version, read_routing
from .errors import InputTypeError, InputValueError
from .jurisdiction import (
    LEVELS, Gazetteer, Place, find_regency, most_specific, require_regency, several_regions,
)
from .schemas import Complaint, Prediction
from .taxonomy import Taxonomy

log = logging.getLogger("lapor_nlp")
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
DEFAULT_MAX_CHARS = 20_000
# One pydantic-core call validates a whole batch of records into Prediction objects: faster than
# building ten objects per prediction in Python, and every value is checked on the way.
_PREDICTIONS = TypeAdapter(list[Prediction])


def _outside_caller() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside lapor-nlp, so that
    Python's default filters (which show a DeprecationWarning only where ``__main__`` triggers it)
    show it for a call that reached Router through ``lapor_nlp.load`` or ``Router.load``."""
    frame, level = sys._getframe(2), 2  # the function that warns is at level 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("lapor_nlp"):
        frame, level = frame.f_back, level + 1
    return level


def _shift_item_index(message: str, offset: int) -> str:
    """'item 3: ...' of a batch that starts at ``offset`` of a stream -> 'item {3 + offset}: ...'."""
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("item ") and head[5:].isdigit():
        return f"item {int(head[5:]) + offset}: {rest}"
    return message


@contextmanager
def _gc_paused(pause: bool = True):
    """Switch the cyclic garbage collector off for the block (Mercurial's ``util.nogc`` idea):
    collections are triggered by allocation counts, and a batch of results is many allocations
    that are all still alive, so each full collection walks them all again for nothing
    (``bench/latency.py`` measures what that saves). It is switched back on at the end only if it
    was on at the start, so a program that keeps it off keeps it off."""
    was_on = pause and gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def allowed_agencies(labels: list[str] | None, taxonomy: Taxonomy, scope, restrict_to) -> np.ndarray | None:
    """Mask over the agency ``labels`` a desk may route to (None: all of them), for ``scope`` (a
    code of ``taxonomy``) and/or ``restrict_to`` (labels); typed errors for what cannot work."""
    if scope is None and restrict_to is None:
        return None
    if labels is None:
        raise InputValueError("scope/restrict_to need a model with an agency task")
    allowed = set(labels)
    if scope is not None:
        carries_taxonomy = bool(taxonomy.parents) or any(
            "parent" in t for t in taxonomy.types.values())
        if isinstance(scope, str) and not carries_taxonomy:
            raise InputValueError(f"scope {scope!r} needs a model whose routing.json carries the "
                                  "taxonomy (one trained on taxonomy codes, such as the default "
                                  "model); for this model, list its labels with restrict_to")
        allowed &= set(taxonomy.members(scope))
    if restrict_to is not None:
        if isinstance(restrict_to, (str, bytes, Mapping)) or not isinstance(restrict_to, Iterable):
            raise InputTypeError(f"restrict_to takes a list of agency labels, got "
                                 f"{type(restrict_to).__name__}")
        wanted = list(restrict_to)
        if not wanted:
            raise InputValueError("restrict_to is empty: name at least one agency label")
        if not all(isinstance(w, str) for w in wanted):
            raise InputTypeError("restrict_to takes agency labels (str)")
        unknown = sorted(set(wanted) - set(labels))
        if unknown:
            raise InputValueError(f"restrict_to names unknown agency label(s) "
                                  f"{', '.join(map(repr, unknown[:5]))}; see Router.labels['agency']")
        allowed &= set(wanted)
    if not allowed:
        what = " and ".join(x for x, v in (("scope", scope), ("restrict_to", restrict_to)) if v is not None)
        raise InputValueError(f"{what} leave{'s' if ' and ' not in what else ''} no agency label of "
                              f"this model (its labels are in Router.labels['agency'])")
    return np.array([lab in allowed for lab in labels])


def check_scope(model_dir: str | Path, scope: str) -> None:
    """Raise the error ``Router.load(model_dir, scope=scope)`` would, from the model's manifest and
    routing alone (no weights read): for commands that start workers, so a bad scope stops once."""
    from .artifact import read_manifest

    manifest = read_manifest(model_dir)
    routing = read_routing(model_dir, manifest)
    labels = (manifest.get("tasks") or {}).get("agency", {}).get("labels")
    allowed_agencies(labels, Taxonomy(routing.get("agency_types", {}), routing.get("parents", {})),
                     scope, None)


class Router:
    """Route complaints with a trained model. Build it with :meth:`load`.

    Options (also accepted by :meth:`load`):

    target_precision:
        recompute every label's review threshold for this precision (default: the model's, 0.95).
    thresholds:
        a float (one threshold for all labels) or ``{label: threshold}`` overriding the model's;
        each >= 0 (above 1: always review), and every label named must be one of the model's.
    max_chars:
        longer texts are cut to this many characters and flagged ``truncated`` (default 20,000).
    min_tokens:
        fewer tokens than this -> review reason ``text_too_short`` (default 3).
    review_topic:
        also ask for review when only the topic is uncertain (default False: routing depends on
        the agency; a low topic score is still visible in ``topic.score``).
    top_k:
        alternatives listed per task (default 3).
    home_region:
        the regency/city a portal serves ("Kota Surabaya"): used when a complaint names no place,
        so a regional portal's complaints route to its own offices (default: the model's, if any).
    scope:
        an institution's own desk: an agency type or a parent of the taxonomy ("kemenimipas",
        "mahkamah_agung", "kemenkeu"). Agency scores are renormalised over the types under it; a
        complaint the whole model would give to a type outside it gets ``outside_scope``.
    restrict_to:
        the same with an explicit list of agency labels (both given: the types in both).
    unknown_quantile:
        how eagerly ``unknown_agency`` is raised: the share of the model's own correct
        out-of-fold predictions whose evidence would be flagged (default: the model's, 0.10;
        0 switches the check off). See :class:`~lapor_nlp.heads.LinearHead`.
    pause_gc:
        deprecated; the collector pause is internal (see ``_gc_paused``).
    """

    def __init__(self, model, manifest: dict, routing: dict | None = None, *,
                 target_precision: float | None = None,
                 thresholds: float | Mapping[str, float] | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, min_tokens: int = 3,
                 review_topic: bool = False, top_k: int = 3, min_known_share: float = 0.3,
                 home_region: str | None = None, scope: str | None = None,
                 restrict_to: Iterable[str] | None = None, unknown_quantile: float | None = None,
                 pause_gc: bool | None = None):
        if max_chars < 1:
            raise InputValueError("max_chars must be at least 1")
        if top_k < 0:
            raise InputValueError("top_k must be at least 0")
        if target_precision is not None and (isinstance(target_precision, bool) or not (
                isinstance(target_precision, (int, float)) and 0 < target_precision <= 1)):
            raise InputValueError(f"target_precision must be a number in (0, 1], got {target_precision!r}")
        self.model = model
        self.manifest = manifest
        self.routing = routing or {}
        self.max_chars = max_chars
        self.min_tokens = min_tokens
        self.review_topic = review_topic
        self.top_k = top_k
        self.min_known_share = min_known_share
        if pause_gc is not None:
            warnings.warn("Router(pause_gc=...) is deprecated: pausing the collector during a batch "
                          "is internal", DeprecationWarning, stacklevel=_outside_caller())
        self._pause_gc = True if pause_gc is None else bool(pause_gc)
        self.name = manifest.get("name", "model")
        self.version = model_version(manifest)
        self._labels = {task: [str(c) for c in head.classes_] for task, head in model.heads_.items()}
        self.thresholds = {task: dict(zip(self._labels[task],
                                          (head.thresholds_for(target_precision)
                                           if target_precision is not None else head.thresholds_).tolist()))
                           for task, head in model.heads_.items()}
        if thresholds is not None:
            self.thresholds = self._merge_thresholds(thresholds)
        self.agency_types: dict = self.routing.get("agency_types", {})
        self.label_names: dict = self.routing.get("label_names", {})
        self.taxonomy = Taxonomy(self.agency_types, self.routing.get("parents", {}))
        self.scope = scope
        self.allowed_agencies = allowed_agencies(self._labels.get("agency"), self.taxonomy, scope,
                                                 restrict_to)
        if unknown_quantile is not None and (isinstance(unknown_quantile, bool) or not (
                isinstance(unknown_quantile, (int, float)) and 0 <= unknown_quantile < 1)):
            raise InputValueError(f"unknown_quantile must be a number in [0, 1), got {unknown_quantile!r}")
        head = model.heads_.get("agency")
        if unknown_quantile and head is not None and getattr(head, "oof_evidence_", None) is None:
            log.warning("this model keeps no out-of-fold evidence (saved before lapor-nlp 0.4), so "
                        "unknown_quantile has no effect; retrain it to get unknown_agency")
        self.unknown_threshold = 0.0 if head is None else (
            head.evidence_threshold_for(unknown_quantile) if unknown_quantile is not None
            else float(getattr(head, "evidence_threshold_", 0.0)))
        # home_region says where a complaint that names no place goes, and which of several
        # same-named districts or villages a bare name means.
        model_home = self.routing.get("home_region")
        model_place = find_regency(model_home) if model_home else None
        if model_home and model_place is None:
            log.warning("the model's home_region %r is not a regency or city of the gazetteer; "
                        "ignored", model_home)
        home_place = require_regency(home_region) if home_region else model_place
        # Where the learnt districts and villages lie: in the model's own region when it has one
        # (or where its training rows said), each in the regency its rows gave for a national
        # model such as the default one, and, when such a model serves one portal, all in the
        # portal's region: a name that a portal's complaint shares with a place far away almost
        # always means a street or kampung of its own (measured on Surabaya's complaints).
        portal_only = model_place is None and home_place is not None
        places_in = model_place or home_place
        self.gazetteer = Gazetteer(
            {k: v for k, v in self.routing.get("places", {}).items() if k in ("district", "village")},
            self.routing.get("village_district"), places_in.name if places_in else None,
            prefer_regency=home_place.name if home_place else None,
            place_regency=None if portal_only else self.routing.get("place_regency"),
        )
        self._home_place = home_place
        pairs = self.routing.get("topic_agency_counts", {})
        self._pair_share = {t: {a: n / max(sum(c.values()), 1) for a, n in c.items()}
                            for t, c in pairs.items()}
        from .jurisdiction import _indonesian_words

        # Stems of Indonesian words are Sastrawi dictionary words; English or junk text is not.
        self._dictionary = _indonesian_words()
        self._feature_names: list[str] | None = None
        self._from_fields = lru_cache(maxsize=4096)(self._from_fields_uncached)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, **options) -> "Router":
        """Read a model directory made by ``lapor-nlp train`` (it only loads; for the bundled
        default model, which may need building first, use :func:`lapor_nlp.load`)."""
        if path is None:
            warnings.warn("Router.load() without a path is deprecated: use lapor_nlp.load(), which "
                          "builds the bundled default model on first use", DeprecationWarning,
                          stacklevel=_outside_caller())
            from . import load

            return load(None, **options)
        model, manifest = load_model(path)
        return cls(model, manifest, read_routing(path, manifest), **options)

    @staticmethod
    def _threshold_value(value, what: str) -> float:
        """A review threshold: a number >= 0 (0: never ask for review; above 1: always ask)."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise InputTypeError(f"{what} must be a number, got {type(value).__name__}")
        if not value >= 0:  # negative, or NaN
            raise InputValueError(f"{what} must be >= 0 (0: never ask for review; above 1: always "
                                  f"ask), got {value!r}")
        return float(value)

    def _merge_thresholds(self, thresholds) -> dict:
        """The review thresholds with ``thresholds`` (one number for every label, or
        ``{label: number}``) laid over them; an unknown label is refused (a typo would otherwise
        leave the label it meant on its old threshold, silently)."""
        if isinstance(thresholds, Mapping):
            known = {label for labels in self.thresholds.values() for label in labels}
            unknown = sorted(map(str, set(thresholds) - known))
            if unknown:
                raise InputValueError(f"thresholds name unknown label(s) {', '.join(map(repr, unknown[:5]))}; "
                                      f"the model's labels are in Router.labels")
            thresholds = {k: self._threshold_value(v, f"threshold of {k!r}") for k, v in thresholds.items()}
        else:
            thresholds = self._threshold_value(thresholds, "thresholds")
        merged = {task: dict(v) for task, v in self.thresholds.items()}
        for task, labels in merged.items():
            for label in labels:
                if isinstance(thresholds, Mapping):
                    if label in thresholds:
                        labels[label] = thresholds[label]
                else:
                    labels[label] = thresholds
        return merged

    @property
    def pipe_names(self) -> tuple[str, ...]:
        """Deprecated: the flow is written out in ``_route`` (and the module docstring)."""
        warnings.warn("Router.pipe_names is deprecated: it named stages that are not separate "
                      "objects", DeprecationWarning, stacklevel=2)
        return ("text", "features", "topic", "agency", "jurisdiction", "routing", "review")

    @property
    def home_regency(self) -> str | None:
        """The regency/city complaints that name no place are routed to (None: none)."""
        return self._home_place.name if self._home_place else None

    @property
    def labels(self) -> dict[str, list[str]]:
        return {task: list(labels) for task, labels in self._labels.items()}

    # -- input ------------------------------------------------------------------------------------
    @staticmethod
    def _as_complaint(item: Any) -> Complaint:
        if isinstance(item, Complaint):
            return item
        if isinstance(item, str):
            return Complaint.model_construct(text=item, title=None, id=None, date=None, channel=None,
                                             location=None)
        if isinstance(item, Mapping):
            from pydantic import ValidationError

            try:
                return Complaint.model_validate(item)
            except ValidationError as exc:
                raise InputValueError(f"invalid complaint: {exc.errors(include_url=False)}") from None
        if isinstance(item, (bytes, bytearray)):
            try:
                return Router._as_complaint(bytes(item).decode("utf-8"))
            except UnicodeDecodeError:
                raise InputValueError("complaint bytes are not valid UTF-8") from None
        raise InputTypeError(
            f"a complaint must be a str, a Complaint or a dict, got {type(item).__name__}")

    def _coerce(self, items, *, on_error: str = "raise") -> tuple[list, list[int], dict[int, Exception]]:
        """Check a batch before any routing: (the usable complaints, each one's position in
        ``items``, the errors of the unusable ones by position). The one seam through which every
        batch entry point (``predict_batch``, ``predict_records``, ``pipe``, ``route``) takes
        its input, so that a rule about bad input is written once."""
        if isinstance(items, (str, bytes, Complaint, Mapping)):
            raise InputTypeError("predict_batch() takes an iterable of complaints, not one complaint; "
                                 "use predict() for a single complaint")
        complaints = []
        for i, item in enumerate(items):
            try:
                complaints.append(item if type(item) is str else self._as_complaint(item))
            except (InputTypeError, InputValueError) as exc:
                raise type(exc)(f"item {i}: {exc.message}") from None
        return complaints, list(range(len(complaints))), {}

    @staticmethod
    def _with_errors(results: list, positions: list[int], errors: dict[int, Exception],
                     on_error: str = "raise") -> list:
        """The results of the usable complaints put back among the errors of the unusable ones,
        as ``on_error`` asks (the other half of :meth:`_coerce`)."""
        return results

    # -- prediction -------------------------------------------------------------------------------
    def __call__(self, complaint: str | Complaint | Mapping, **options) -> Prediction:
        """``router(text)``: the same as :meth:`predict`."""
        return self.predict(complaint, **options)

    def pipe(self, items: Iterable[str | Complaint | Mapping], *, batch_size: int = 4096,
             explain: bool | None = None, as_records: bool = False, thresholds=None) -> Iterator:
        """Route a stream of complaints lazily, ``batch_size`` at a time, in input order: a
        :class:`Prediction` each, or with ``as_records`` the plain dict of :meth:`predict_records`
        (faster; for files and services that write JSON themselves). ``explain`` defaults to what
        each form does alone: on for predictions, off for records. A bad item raises a typed error
        naming its index when its batch is reached."""
        if isinstance(items, (str, bytes, Complaint, Mapping)):
            raise InputTypeError("pipe() takes an iterable of complaints, not one complaint; "
                                 "use router(complaint) for a single complaint")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InputTypeError(f"batch_size must be a whole number, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise InputValueError(f"batch_size must be at least 1, got {batch_size!r}")
        route = self.predict_records if as_records else self.predict_batch
        if explain is None:
            explain = not as_records
        return self._stream(iter(items), route, batch_size, explain, thresholds)

    @staticmethod
    def _stream(it, route, batch_size, explain, thresholds) -> Iterator:
        done = 0
        while True:
            chunk = list(islice(it, batch_size))
            if not chunk:
                return
            try:
                yield from route(chunk, thresholds=thresholds, explain=explain, batch_size=batch_size)
            except (InputTypeError, InputValueError) as exc:
                raise type(exc)(_shift_item_index(exc.message, done)) from None
            done += len(chunk)

    def predict(self, complaint: str | Complaint | Mapping, *, thresholds=None,
                explain: bool = True) -> Prediction:
        """Route one complaint. ``thresholds`` overrides review thresholds for this call."""
        return self.predict_batch([complaint], thresholds=thresholds, explain=explain)[0]

    def predict_batch(self, items: Iterable[str | Complaint | Mapping], *, thresholds=None,
                      explain: bool = True, batch_size: int = 4096) -> list[Prediction]:
        """Route many complaints (vectorised). Every item is checked first: one bad item raises a
        typed error naming its index, and no partial result is returned."""
        with _gc_paused(self._pause_gc):
            return _PREDICTIONS.validate_python(
                self.predict_records(items, thresholds=thresholds, explain=explain, batch_size=batch_size))

    def predict_records(self, items: Iterable[str | Complaint | Mapping], *, thresholds=None,
                        explain: bool = False, batch_size: int = 4096) -> list[dict]:
        """Like :meth:`predict_batch` but returns plain dicts, each what ``Prediction.model_dump()``
        gives (for batch jobs and services that write JSON or CSV themselves). No explanation
        unless asked for: it is the one part a file of results rarely needs."""
        complaints, positions, errors = self._coerce(items)
        th = self.thresholds if thresholds is None else self._merge_thresholds(thresholds)
        out: list[dict] = []
        with _gc_paused(self._pause_gc):
            for start in range(0, len(complaints), batch_size):
                out += self._route(complaints[start:start + batch_size], th, explain)
        return self._with_errors(out, positions, errors)

    def _route(self, complaints: list[str | Complaint], th: dict, explain: bool) -> list[dict]:
        """The whole flow for one batch, as plain dicts. Per-row Python work is kept to building
        the output: scores, thresholds and the review tests are numpy operations over the batch."""
        if not complaints:
            return []
        pre = self.model.preprocessor_
        max_chars = self.max_chars
        n = len(complaints)
        truncated = [False] * n
        docs, words = [], []
        for i, c in enumerate(complaints):
            if type(c) is not str:
                if not isinstance(c.text, str):
                    raise InputTypeError(f"complaint text must be str, got {type(c.text).__name__}")
                c = c.full_text()
            if len(c) > max_chars:
                c = c[:max_chars]
                truncated[i] = True
            toks, ws = pre.analyze(c)
            docs.append(toks)
            words.append(ws)
        X = self.model.features_.transform_rows(docs)
        rows = np.arange(n)[:, None]
        tasks = []
        unknown = outside = None
        for task, head in self.model.heads_.items():
            mass = None
            if task == "agency":
                P, evidence = head.predict_proba_evidence(X)
                unknown = (evidence < self.unknown_threshold).tolist()
                if self.allowed_agencies is not None:
                    outside = (~self.allowed_agencies[P.argmax(1)]).tolist()
                    P = P * self.allowed_agencies
                    mass = np.maximum(P.sum(1), 1e-12)
                    P /= mass[:, None]
            else:
                P = head.predict_proba(X)
            # A few dozen labels: one argsort per row is cheaper than argpartition + reordering.
            top = np.argsort(-P, axis=1, kind="stable")[:, :self.top_k + 1]
            top_p = P[rows, top]
            labels = self._labels[task]
            best = top[:, 0]
            score = top_p[:, 0]
            t_of = np.fromiter(map(th[task].get, labels, repeat(1.01)), float, len(labels))[best]
            if mass is not None:
                # A desk's score is renormalised over its labels; its threshold is scaled the same
                # way, so a label is routed exactly when the whole model's score would route it
                # (renormalising must not turn the model's doubt into certainty).
                t_of = t_of / mass
            low = (score < t_of) if (task == "agency" or self.review_topic) else np.zeros(n, bool)
            names = self.label_names.get(task, {})
            tasks.append((task, head, P, top, labels, best.tolist(), score.tolist(), t_of.tolist(),
                          low.tolist(), names, top_p[:, 1:].tolist(), top[:, 1:].tolist()))
        explanation = self._explain(X, tasks) if explain else None
        short = np.fromiter(map(len, docs), np.int64, n) < self.min_tokens
        dictionary = self._dictionary
        agency_types = self.agency_types
        records = []
        for i, c in enumerate(complaints):
            reasons: list[str] = []
            rec: dict[str, Any] = {"id": None if type(c) is str else c.id, "topic": None, "agency": None}
            for task, head, P, top, labels, best, score, t_of, low, names, alt_p, alt_j in tasks:
                label = labels[best[i]]
                rec[task] = {"label": label, "score": score[i], "name": names.get(label),
                             "threshold": t_of[i],
                             "alternatives": [{"label": labels[j], "score": s}
                                              for j, s in zip(alt_j[i], alt_p[i])],
                             "level": None, "parent": None}
                if low[i]:
                    reasons.append("low_confidence_" + task)
            if outside is not None:  # a desk's answer lists only the labels it may route to
                rec["agency"]["alternatives"] = [a for a in rec["agency"]["alternatives"] if a["score"] > 0]
            topic, agency = rec["topic"], rec["agency"]
            agency_label = agency["label"] if agency else None
            if agency:
                info = agency_types.get(agency_label) or {}
                agency["level"] = info.get("level")
                agency["parent"] = info.get("parent")
                if unknown[i]:
                    reasons.append("unknown_agency")
                if outside is not None and outside[i]:
                    reasons.append("outside_scope")
            if topic and agency and topic["label"] in self._pair_share:
                if self._pair_share[topic["label"]].get(agency_label, 0.0) < 0.02:
                    reasons.append("topic_agency_disagree")
            place, place_note = self._jurisdiction(c, words[i])
            rec["jurisdiction"] = self._region(place) if place else None
            routed, place_missing = self._routed_to(agency_label, place) if agency_label else (None, False)
            rec["routed_to"] = routed
            if place_missing:
                reasons.append("place_not_found")
            if place_note:
                reasons.append(place_note)
            if short[i]:
                reasons.append("text_too_short")
            else:
                toks = docs[i]
                if len(words[i]) >= 5 and sum(map(dictionary.__contains__, toks)) < self.min_known_share * len(toks):
                    reasons.append("not_indonesian")
            if truncated[i]:
                reasons.append("truncated")
            rec["needs_review"] = bool(reasons)
            rec["review_reasons"] = reasons
            rec["explanation"] = {task: explanation[task][i] for task in explanation} if explanation else {}
            rec["truncated"] = truncated[i]
            rec["model"] = self.name
            rec["model_version"] = self.version
            records.append(rec)
        return records

    # -- jurisdiction and routing -----------------------------------------------------------------
    def _from_fields_uncached(self, province, regency, district, subdistrict) -> Place | None:
        from .schemas import Location

        loc = Location.model_construct(province=province, regency=regency, district=district,
                                       subdistrict=subdistrict, address=None)
        return self.gazetteer.from_fields(loc)

    def _jurisdiction(self, c: str | Complaint, words: list[str]) -> tuple[tuple[Place, str] | None, str | None]:
        """(the region and where it came from, or None; a review reason about it, or None)."""
        loc = None if type(c) is str else c.location
        unresolved = None
        if loc is not None:
            place = self._from_fields(loc.province, loc.regency, loc.district, loc.subdistrict)
            if place is not None:
                return (place, "field"), None
            if loc.province or loc.regency or loc.district or loc.subdistrict:
                unresolved = "location_not_resolved"  # a misspelt field: the text decides, a person checks
            if loc.address:
                found = most_specific(self.gazetteer.find_in_text(loc.address))
                if found is not None:
                    return (found, "field"), unresolved
        places = self.gazetteer.find_in_words(words)
        if places:
            return (most_specific(places), "text"), unresolved or ("several_places" if several_regions(places) else None)
        if self._home_place is not None:
            return (self._home_place, "model_default"), unresolved
        return None, unresolved

    @staticmethod
    def _region(found: tuple[Place, str]) -> dict:
        p, source = found
        return {"name": p.name, "level": p.level, "code": p.code, "province": p.province,
                "regency": p.regency, "source": source}

    def _routed_to(self, agency: str, found: tuple[Place, str] | None) -> tuple[str, bool]:
        info = self.agency_types.get(agency)
        if not info or info.get("serves", "none") == "none":
            return (info or {}).get("template", agency), False
        serves = info["serves"]
        place = found[0] if found else None
        name = None
        if place is not None:
            if place.level == serves:
                name = place.name
            elif _LEVEL_RANK[place.level] > _LEVEL_RANK[serves]:
                name = {"province": place.province, "regency": place.regency,
                        "district": place.district}.get(serves)
        if not name:
            # A national body or state company with regional offices can still take a complaint
            # that names no place at its national office; a regional office, or a court, cannot
            # be guessed.
            return info.get("name", agency), not info.get("national_office", False)
        return info["template"].replace("{" + serves + "}", name), False

    # -- explanation ------------------------------------------------------------------------------
    def _explain(self, X, results, n_terms: int = 5) -> dict[str, list[list[str]]]:
        if self._feature_names is None:
            self._feature_names = self.model.features_.get_feature_names_out().tolist()
        names = self._feature_names
        out = {}
        n = X.shape[0]
        rows = np.repeat(np.arange(n), X.indptr[1:] - X.indptr[:-1])
        for task, head, P, top, *_ in results:
            contrib = X.data * head.coef_[top[rows, 0], X.indices]
            # Each row's positive terms by descending contribution, ties in feature order (what
            # np.lexsort((-contrib, rows)) gives): two stable argsorts, twice as fast.
            pos = np.flatnonzero(contrib > 0)
            pos = pos[np.argsort(-contrib[pos], kind="stable")]
            pos = pos[np.argsort(rows[pos], kind="stable")]
            r = rows[pos]
            keep = pos[np.arange(len(pos)) - np.searchsorted(r, r) < n_terms]
            terms: list[list[str]] = [[] for _ in range(n)]
            for r_, f in zip(rows[keep].tolist(), X.indices[keep].tolist()):
                terms[r_].append(names[f])
            out[task] = terms
        return out
