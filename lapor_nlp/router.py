"""The :class:`Router`: complaint in, topic + agency + concrete office + review decision out.

The whole flow, in one place (``Router._route``)::

    text pipeline -> features -> topic head, agency head -> jurisdiction -> routing -> review

run column by column over a batch: the text stages once per distinct whitespace chunk
(:mod:`lapor_nlp.chunks`), array operations for features, heads and review rules, the per-row
place rules once per distinct input, and objects only at the edge (:mod:`lapor_nlp.columnar`;
``tests/test_fast_path.py`` checks it against 0.4's per-document flow, field by field).

One vocabulary for calling it, as spaCy's ``nlp(text)`` and ``nlp.pipe(texts)``: ``router(item)``
for one complaint, ``router.pipe(items, batch_size=...)`` for a stream, in input order.

A Router is read-only after loading: its only mutable state is its caches (the text pipeline's
words, the chunk table, the place memos), whose entries are pure functions of their keys, so any number of threads can share one Router and
get exactly the answers they would get one after another. Nothing is held open, so it is also safe
to use in a process forked after loading.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
import threading
from itertools import compress, islice, repeat
from typing import get_args
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from .artifact import load_verified, model_version, read_routing
from .errors import InputTypeError, InputValueError, LaporError, UndecodableTextError, check_on_error
from .gc_pause import gc_paused
from .jurisdiction import (
    LEVELS, Gazetteer, Place, find_regency, most_specific, only_regency, require_regency, several_regions,
)
from .schemas import Complaint, Prediction, checked_complaint, complaint_error, refuse_text
from .chunks import ChunkTable, Gathered
from .columnar import RoutingResult, TaskColumns
from .heads import _csr_matvecs, calibrated_scores, stack_heads
from .schemas import ReviewReason
from .taxonomy import Taxonomy
from .text.clean import prepare, prepare_normalized
from .text.pii import _mask_numbers_nfkc, _may_change

log = logging.getLogger("lapor_nlp")
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
DEFAULT_MAX_CHARS = 20_000
# Validates a batch of records into Prediction objects: what predict_batch's objects must equal
# (tests, bench/latency.py); predict_batch builds them without this second check.
_PREDICTIONS = TypeAdapter(list[Prediction])


def _outside_caller() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside lapor-nlp, so that
    Python's default filters (which show a DeprecationWarning only where ``__main__`` triggers it)
    show it for a call that reached Router through ``lapor_nlp.load`` or ``Router.load``."""
    frame, level = sys._getframe(2), 2  # the function that warns is at level 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("lapor_nlp"):
        frame, level = frame.f_back, level + 1
    return level




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
                                  "model); for this model, list its labels with restrict_to", field="scope")
        allowed &= set(taxonomy.members(scope))
    if restrict_to is not None:
        if isinstance(restrict_to, (str, bytes, Mapping)) or not isinstance(restrict_to, Iterable):
            raise InputTypeError(f"restrict_to takes a list of agency labels, got "
                                 f"{type(restrict_to).__name__}", field="restrict_to")
        wanted = list(restrict_to)
        if not wanted:
            raise InputValueError("restrict_to is empty: name at least one agency label", field="restrict_to")
        if not all(isinstance(w, str) for w in wanted):
            raise InputTypeError("restrict_to takes agency labels (str)", field="restrict_to")
        unknown = sorted(set(wanted) - set(labels))
        if unknown:
            raise InputValueError(f"restrict_to names unknown agency label(s) "
                                  f"{', '.join(map(repr, unknown[:5]))}; see Router.labels['agency']",
                                  field="restrict_to")
        allowed &= set(wanted)
    if not allowed:
        what = " and ".join(x for x, v in (("scope", scope), ("restrict_to", restrict_to)) if v is not None)
        raise InputValueError(f"{what} leave{'s' if ' and ' not in what else ''} no agency label of "
                              f"this model (its labels are in Router.labels['agency'])",
                              field="scope" if restrict_to is None else "restrict_to")
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
        deprecated; the collector pause is internal (see :func:`lapor_nlp.gc_pause.gc_paused`).
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
            raise InputValueError("max_chars must be at least 1", field="max_chars")
        if top_k < 0:
            raise InputValueError("top_k must be at least 0", field="top_k")
        if target_precision is not None and (isinstance(target_precision, bool) or not (
                isinstance(target_precision, (int, float)) and 0 < target_precision <= 1)):
            raise InputValueError(f"target_precision must be a number in (0, 1], got {target_precision!r}",
                                  field="target_precision")
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
            raise InputValueError(f"unknown_quantile must be a number in [0, 1), got {unknown_quantile!r}",
                                  field="unknown_quantile")
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
        self._feature_names: dict[int, str] | None = None  # column -> name, see _explain
        self._from_fields = lru_cache(maxsize=4096)(self._from_fields_uncached)
        self._fast_state: _FastState | None = None  # the fast path's tables, built on first use
        _release_free_memory()  # what loading parsed and converted, freed but still held

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, *, sha256: str | None = None, **options) -> "Router":
        """Read a model directory made by ``lapor-nlp train`` (it only loads; for the bundled
        default model, which may need building first, use :func:`lapor_nlp.load`).

        ``sha256`` pins the model: the sha256 of its ``manifest.json`` (``sha256sum
        model/manifest.json``), which holds the sha256 of every other file; another model
        directory, or a changed one, raises :class:`~lapor_nlp.errors.ModelPinError`."""
        if path is None:
            warnings.warn("Router.load() without a path is deprecated: use lapor_nlp.load(), which "
                          "builds the bundled default model on first use", DeprecationWarning,
                          stacklevel=_outside_caller())
            from . import load

            return load(None, sha256=sha256, **options)
        # One read of each file; the heads' weights built in the fast path's layout at once.
        model, manifest, routing = load_verified(path, sha256=sha256, stacked=True)
        return cls(model, manifest, routing, **options)

    @staticmethod
    def _threshold_value(value, what: str) -> float:
        """A review threshold: a number >= 0 (0: never ask for review; above 1: always ask)."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise InputTypeError(f"{what} must be a number, got {type(value).__name__}", field="thresholds")
        if not value >= 0:  # negative, or NaN
            raise InputValueError(f"{what} must be >= 0 (0: never ask for review; above 1: always "
                                  f"ask), got {value!r}", field="thresholds")
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
                                      f"the model's labels are in Router.labels", field="thresholds")
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
        """One batch item as a :class:`Complaint`, or the typed error that says why it cannot be
        one (its ``field`` set; :meth:`_coerce` sets its ``index``)."""
        if isinstance(item, Complaint):
            # Checked again: model_construct() builds one without validation.
            if not isinstance(item.text, str):
                raise InputTypeError(f"complaint text must be str, got {type(item.text).__name__}",
                                     field="text")
            refuse_text(item.text)
            return item
        if isinstance(item, str):
            refuse_text(item)
            return Complaint.model_construct(text=item, title=None, id=None, date=None, channel=None,
                                             location=None)
        if isinstance(item, Mapping):
            from pydantic import ValidationError

            try:
                return Complaint.model_validate(item)
            except ValidationError as exc:
                raise complaint_error(exc) from None
        if isinstance(item, (bytes, bytearray)):
            try:
                text = bytes(item).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UndecodableTextError(f"the complaint's bytes are not valid UTF-8 (byte "
                                           f"{exc.start + 1}); decode them first", field="text") from None
            return Router._as_complaint(text)
        raise InputTypeError(
            f"a complaint must be a str, a Complaint or a dict, got {type(item).__name__}")

    def _coerce(self, items, *, on_error: str = "raise") -> tuple[list, list[int], dict[int, Exception]]:
        """Check a batch before any routing: (the usable complaints, each one's position in
        ``items``, the errors of the unusable ones by position). The one seam through which every
        batch entry point (``predict_batch``, ``predict_records``, ``pipe``, ``route``) takes
        its input, so that a rule about bad input is written once. With ``on_error="raise"`` the
        first bad item raises its error (``index`` set) before anything is routed."""
        check_on_error(on_error)
        items = self._iter_items(items, "predict_batch")
        complaints: list = []
        positions: list[int] = []
        errors: dict[int, Exception] = {}
        as_complaint = self._as_complaint
        for i, item in enumerate(items):
            try:
                if type(item) is str:  # the fast path keeps a plain text a str
                    refuse_text(item)
                    complaints.append(item)
                elif type(item) is dict and (checked := checked_complaint(item)) is not None:
                    complaints.append(checked)  # a batch row's dict, as the schema accepts it
                else:
                    complaints.append(as_complaint(item))
            except (InputTypeError, InputValueError) as exc:
                exc.index = i
                if on_error == "raise":
                    raise exc from None
                errors[i] = exc
                continue
            positions.append(i)
        return complaints, positions, errors

    @staticmethod
    def _iter_items(items, caller: str) -> Iterator:
        """An iterator over a batch's items; a single complaint, ``None`` or anything else that
        is not an iterable of complaints is an :class:`InputTypeError` (not Python's own)."""
        if isinstance(items, (str, bytes, bytearray, Complaint, Mapping)):
            raise InputTypeError(f"{caller}() takes an iterable of complaints, not one complaint; "
                                 "use predict() for a single complaint")
        try:
            return iter(items)
        except TypeError:
            raise InputTypeError(f"{caller}() takes an iterable of complaints (str, Complaint or "
                                 f"dict), got {type(items).__name__}") from None

    @staticmethod
    def _with_errors(results: list, positions: list[int], errors: dict[int, Exception],
                     on_error: str = "raise") -> list:
        """The results of the usable complaints put back among the errors of the unusable ones,
        as ``on_error`` asks (the other half of :meth:`_coerce`): "skip" leaves the bad items
        out, "return" puts each error at its item's position, so ``len(out) == len(items)``."""
        if not errors or on_error == "skip":
            return results
        if on_error == "raise":  # _coerce has raised already; kept so no error is ever dropped
            raise errors[min(errors)]
        if len(results) != len(positions):
            raise RuntimeError(f"{len(results)} results for {len(positions)} usable items")
        out: list = [None] * (len(results) + len(errors))
        for pos, res in zip(positions, results):
            out[pos] = res
        for pos, exc in errors.items():
            out[pos] = exc
        return out

    # -- prediction -------------------------------------------------------------------------------
    def __call__(self, complaint: str | Complaint | Mapping, **options) -> Prediction:
        """``router(text)``: the same as :meth:`predict`."""
        return self.predict(complaint, **options)

    def pipe(self, items: Iterable[str | Complaint | Mapping], *, batch_size: int = 4096,
             explain: bool | None = None, as_records: bool = False, thresholds=None,
             on_error: str = "raise") -> Iterator:
        """Route a stream of complaints lazily, ``batch_size`` at a time, in input order: a
        :class:`Prediction` each, or with ``as_records`` the plain dict of :meth:`predict_records`
        (faster; for files and services that write JSON themselves). ``explain`` defaults to what
        each form does alone: on for predictions, off for records. A bad item is handled as
        ``on_error`` says (see :meth:`predict_batch`) when its batch is reached; its error's
        ``index`` counts from the start of the stream."""
        check_on_error(on_error)
        items = self._iter_items(items, "pipe")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InputTypeError(f"batch_size must be a whole number, got {type(batch_size).__name__}",
                                 field="batch_size")
        if batch_size < 1:
            raise InputValueError(f"batch_size must be at least 1, got {batch_size!r}", field="batch_size")
        route = self.predict_records if as_records else self.predict_batch
        if explain is None:
            explain = not as_records
        return self._stream(items, route, batch_size, explain, thresholds, on_error)

    @staticmethod
    def _stream(it, route, batch_size, explain, thresholds, on_error="raise") -> Iterator:
        done = 0
        while True:
            chunk = list(islice(it, batch_size))
            if not chunk:
                return
            try:
                results = route(chunk, thresholds=thresholds, explain=explain, batch_size=batch_size,
                                on_error=on_error)
            except (InputTypeError, InputValueError) as exc:
                if exc.index is not None:  # the index in the stream, not in this batch
                    exc.index += done
                raise
            if on_error == "return" and done:
                for r in results:
                    if isinstance(r, LaporError):
                        r.index += done
            yield from results
            done += len(chunk)

    def predict(self, complaint: str | Complaint | Mapping, *, thresholds=None,
                explain: bool = True) -> Prediction:
        """Route one complaint. ``thresholds`` overrides review thresholds for this call."""
        try:
            return self.predict_batch([complaint], thresholds=thresholds, explain=explain)[0]
        except LaporError as exc:  # one complaint is not a batch: its error has no index
            exc.index = None
            raise

    def predict_batch(self, items: Iterable[str | Complaint | Mapping], *, thresholds=None,
                      explain: bool = True, batch_size: int = 4096,
                      on_error: str = "raise") -> list[Prediction]:
        """Route many complaints (vectorised). Every item is checked first; an unusable one is
        handled as ``on_error`` says: "raise" (default) raises its typed error (``index``,
        ``field`` and ``code`` say which item and why) and returns nothing; "skip" leaves it out
        of the result; "return" puts the error itself (a :class:`~lapor_nlp.errors.LaporError`)
        at its position, so the result has one entry per item."""
        with gc_paused(self._pause_gc):
            complaints, positions, errors = self._coerce(items, on_error=on_error)
            # The objects are built from the checked columns without validating every value
            # again (columnar.RoutingResult.to_predictions: 2x cheaper than _PREDICTIONS'
            # validation, and the same objects; tests/test_fast_path.py compares them).
            preds = self._route_all(complaints, thresholds, explain, batch_size).to_predictions()
        return self._with_errors(preds, positions, errors, on_error)

    def predict_records(self, items: Iterable[str | Complaint | Mapping], *, thresholds=None,
                        explain: bool = False, batch_size: int = 4096,
                        on_error: str = "raise") -> list[dict]:
        """Like :meth:`predict_batch` but returns plain dicts, each what ``Prediction.model_dump()``
        gives (for batch jobs and services that write JSON or CSV themselves). No explanation
        unless asked for: it is the one part a file of results rarely needs."""
        with gc_paused(self._pause_gc):
            complaints, positions, errors = self._coerce(items, on_error=on_error)
            records = self._route_all(complaints, thresholds, explain, batch_size).to_records()
        return self._with_errors(records, positions, errors, on_error)

    def route(self, items: Iterable[str | Complaint | Mapping], *, thresholds=None,
              explain: bool = False, on_error: str = "raise", batch_size: int = 4096) -> RoutingResult:
        """Route many complaints into a :class:`~lapor_nlp.columnar.RoutingResult`: labels,
        scores, thresholds, review flags and reasons, offices and regions as arrays, with no
        object per complaint (``.to_records()``, ``.to_pandas()``, ``.to_arrow()`` when wanted).
        The same answers as :meth:`predict_records`, field by field. Items are checked as in
        :meth:`predict_batch`; with ``on_error="skip"`` or ``"return"``, ``result.positions``
        gives each row's index in ``items`` and ``result.errors`` the refused items' errors."""
        with gc_paused(self._pause_gc):
            complaints, positions, errors = self._coerce(items, on_error=on_error)
            result = self._route_all(complaints, thresholds, explain, batch_size)
        result.positions = np.asarray(positions, dtype=np.int64)
        result.errors = dict(errors)
        # to_records() puts the errors back among the rows as this call's on_error asks.
        result._with_errors, result._on_error = self._with_errors, on_error
        return result

    def _route_all(self, complaints: list, thresholds, explain: bool, batch_size: int) -> RoutingResult:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        th = self.thresholds if thresholds is None else self._merge_thresholds(thresholds)
        return RoutingResult.concat([self._route(complaints[start:start + batch_size], th, explain)
                                     for start in range(0, len(complaints), batch_size)] or
                                    [self._route([], th, explain)])

    # -- the columnar fast path -------------------------------------------------------------------
    def _fast(self) -> "_FastState":
        """What the fast path keeps between batches, built on first use (and rebuilt whole when
        its memos are full)."""
        state = self._fast_state
        if state is None or state.full():
            with _FAST_LOCK:
                state = self._fast_state
                if state is None:
                    state = self._fast_state = _FastState(self)
                    # The head weights as they were before stacking (a Router made from a
                    # trained model; Router.load builds them stacked, and nothing is freed here).
                    _release_free_memory()
                elif state.full():
                    state = self._fast_state = _FastState(self, table=state.table, stacked=state.stacked)
        return state

    def _texts(self, complaints: list) -> tuple[list[str], list, np.ndarray]:
        """(each complaint's text, masked and prepared; its id; whether it was cut)."""
        max_chars = self.max_chars
        n = len(complaints)
        texts: list[str] = []
        ids: list = [None] * n
        truncated = np.zeros(n, bool)
        for i, c in enumerate(complaints):
            if type(c) is not str:  # a Complaint, checked by _coerce
                ids[i] = c.id
                c = c.full_text()
            if len(c) > max_chars:
                c = c[:max_chars]
                truncated[i] = True
            texts.append(c)
        pre = self.model.preprocessor_
        if pre.mask_pii:
            # The routing pipeline masks numbers only (people=False: the street and kelurahan words
            # are what the gazetteer reads). That masking cannot change an ASCII text with no
            # digit and no "@" (lapor_nlp.text.pii: every number rule starts at a digit or an "@",
            # and only a non-ASCII text is normalised), so only the others are masked;
            # tests/test_fast_path.py checks the rule on real texts.
            # A non-ASCII text is normalised (NFKC) by the masking and again by prepare(): where
            # the masking gives the text back unchanged, its normal form is prepared instead
            # (prepare_normalized), which saves the second normalisation.
            normalized = []
            for i in compress(range(n), map(_may_change, texts)):
                texts[i], nfkc = _mask_numbers_nfkc(texts[i])
                if nfkc is not None:
                    normalized.append((i, nfkc))
                    texts[i] = ""
            if normalized:
                prepared = list(map(prepare, texts))
                for i, nfkc in normalized:
                    prepared[i] = prepare_normalized(nfkc)
                return prepared, ids, truncated
        return list(map(prepare, texts)), ids, truncated

    def _route(self, complaints: list[str | Complaint], th: dict, explain: bool) -> RoutingResult:
        """The whole flow for one batch (see the module docstring), column by column: the text
        stages once per distinct chunk, features, heads, thresholds and review rules as array
        operations over the batch, the region and the office once per distinct input."""
        state = self._fast()
        n = len(complaints)
        texts, ids, truncated = self._texts(complaints)
        if n:
            cids, arrays = state.table.ids(texts)
            g = state.table.gather(cids, arrays, n)
        else:
            g = _EMPTY_GATHER
        X = self.model.features_.transform_ids(g.token_ids, g.token_offsets)
        block, cols = state.stacked
        # Both heads in one sparse x dense product (scipy's kernel, as LinearHead uses it).
        raw = np.zeros((n, block.shape[1]), dtype=np.float32)
        if n:
            _csr_matvecs(n, X.shape[1], block.shape[1], X.indptr, X.indices, X.data,
                         block.ravel(), raw.ravel())
        flags: list[tuple[np.ndarray, int]] = []  # (rows with a review reason, its bit)
        bit = state.bit
        tasks: dict[str, TaskColumns] = {}
        explained = []
        best_of: dict[str, np.ndarray] = {}
        unknown = outside = None
        for task, head, col in zip(state.tasks, state.heads, cols):
            mass = None
            if task == "agency":
                P, evidence = calibrated_scores(head, raw[:, col])
                unknown = evidence < self.unknown_threshold
                if self.allowed_agencies is not None:
                    outside = ~self.allowed_agencies[P.argmax(1)]
                    P = P * self.allowed_agencies
                    mass = np.maximum(P.sum(1), 1e-12)
                    P /= mass[:, None]
            else:
                P = calibrated_scores(head, raw[:, col])[0]
            top, top_p = _top(P, self.top_k + 1)
            labels = self._labels[task]
            best = top[:, 0]
            score = top_p[:, 0]
            if n < len(labels):  # a few rows (predict): look up only their labels' thresholds
                get = th[task].get
                t_of = np.array([get(labels[b], 1.01) for b in best.tolist()], float)
            else:
                t_of = np.fromiter(map(th[task].get, labels, repeat(1.01)), float, len(labels))[best]
            if mass is not None:
                # A desk's score is renormalised over its labels; its threshold is scaled the same
                # way, so a label is routed exactly when the whole model's score would route it
                # (renormalising must not turn the model's doubt into certainty).
                t_of = t_of / mass
            if task == "agency" or self.review_topic:
                flags.append((score < t_of, bit["low_confidence_" + task]))
            tasks[task] = TaskColumns(labels, best, score, t_of, top[:, 1:], top_p[:, 1:],
                                      state.names[task], *state.level_parent(task),
                                      positive_alternatives=task == "agency" and outside is not None)
            best_of[task] = best
            explained.append((task, head, P, top))
        explanation = self._explain(X, explained) if explain else None
        if unknown is not None:
            flags.append((unknown, bit["unknown_agency"]))
        if outside is not None:
            flags.append((outside, bit["outside_scope"]))
        if state.disagree is not None:
            flags.append((state.disagree[best_of["topic"], best_of["agency"]], bit["topic_agency_disagree"]))
        region, routed, place_bits = self._places(state, complaints, g, best_of.get("agency"))
        n_tokens = g.token_offsets[1:] - g.token_offsets[:-1]
        short = n_tokens < self.min_tokens
        foreign = ~short & (g.n_words >= 5) & (g.known_words < self.min_known_share * n_tokens)
        flags += [(short, bit["text_too_short"]), (foreign, bit["not_indonesian"]),
                  (truncated, bit["truncated"])]
        # One bitmask a row: the bits are distinct powers of two, so their sum is their OR.
        if n == 1:  # predict(): summed in Python, 3 us against 7 for the stack and product
            reasons = place_bits + np.array([sum(b for f, b in flags if f[0])], np.uint32)
        else:
            reasons = place_bits + (np.stack([f for f, _ in flags], 1) @
                                    np.array([b for _, b in flags], np.uint32)).astype(np.uint32)
        return RoutingResult(tasks, ids, reasons != 0, reasons, state.reason_names, routed, region,
                             state.regions_of(region), truncated, explanation, self.name, self.version)

    def _places(self, state: "_FastState", complaints: list, g, agency: np.ndarray | None):
        """(region index per row, office per row, place review bits per row), calling the
        per-row rules once per distinct input: ``_jurisdiction`` per distinct set of the words
        that matter to the gazetteer (rows without a structured location), ``_routed_to`` per
        distinct (agency, region)."""
        n = len(complaints)
        region = np.empty(n, np.int64)  # every row is set below
        routed = np.empty(n, object)
        bits = np.zeros(n, np.uint32)
        words = g.place_words.tolist()
        offsets = g.place_offsets.tolist()
        agency_labels = self._labels.get("agency")
        agency_ids = agency.tolist() if agency is not None else [None] * n
        jmemo, rmemo, place_of = state.jmemo, state.rmemo, state.place_of
        as_words = state.as_words
        for i, (c, a) in enumerate(zip(complaints, agency_ids)):
            key = tuple(words[offsets[i]:offsets[i + 1]])
            if type(c) is str or c.location is None:
                hit = jmemo.get(key)
                if hit is None:
                    hit = jmemo[key] = place_of(*self._jurisdiction(c, as_words(key)))
            else:
                hit = place_of(*self._jurisdiction(c, as_words(key)))
            p, note_bit = hit
            region[i] = p
            office = rmemo.get((a, p))
            if office is None:
                found = state.found[p] if p >= 0 else None
                got, missing = self._routed_to(agency_labels[a], found) if a is not None else (None, False)
                office = rmemo[(a, p)] = (got, state.bit["place_not_found"] if missing else 0)
            routed[i] = office[0]
            bits[i] = office[1] | note_bit
        return region, routed, bits

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
        places = None
        if loc is not None:
            place = self._from_fields(loc.province, loc.regency, loc.district, loc.subdistrict)
            if place is not None:
                return (place, "field"), None
            if loc.province or loc.regency or loc.district or loc.subdistrict:
                unresolved = "location_not_resolved"  # a misspelt field: the text decides, a person checks
            in_address = self.gazetteer.find_in_text(loc.address) if loc.address else []
            if (loc.district or loc.subdistrict) and not loc.regency:
                # A kecamatan or kelurahan name that several cities have ("Tambaksari"): the one
                # city the address, else the text, names says which is meant.
                places = self.gazetteer.find_in_words(words)
                for context in (in_address, places):
                    city = only_regency(context)
                    place = city and self._from_fields(loc.province, city, loc.district, loc.subdistrict)
                    if place and place.level in ("district", "village"):  # not the city alone
                        return (place, "field"), None
            found = most_specific(in_address)
            if found is not None:
                return (found, "field"), unresolved
        if places is None:
            places = self.gazetteer.find_in_words(words)
        if places:
            return (most_specific(places), "text"), unresolved or ("several_places" if several_regions(places) else None)
        if self._home_place is not None:
            return (self._home_place, "model_default"), unresolved
        return None, unresolved

    @staticmethod
    def _region(found: tuple[Place, str]) -> dict:
        """The region as the output shows it: ``province`` and ``regency`` name the province and
        regency the place lies in at every level, the place itself included (a regency's
        ``regency`` is its own name, a province's ``province`` too), so a reader can group by
        them whatever level matched."""
        p, source = found
        return {"name": p.name, "level": p.level, "code": p.code,
                "province": p.name if p.level == "province" else p.province,
                "regency": p.name if p.level == "regency" else p.regency, "source": source}

    def _routed_to(self, agency: str, found: tuple[Place, str] | None) -> tuple[str | None, bool]:
        """(the concrete office, or None when it cannot be resolved; whether that is because no
        place of the level the office serves was found, the ``place_not_found`` reason). A pure
        function of its arguments (contract C5). None rather than a generic name ("Dinas
        Perhubungan", "Kelurahan"): a caller that forwards ``routed_to`` must not send a
        complaint to an office that does not exist; the agency's name stays in ``agency.name``."""
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
            if info.get("national_office", False):
                return info.get("name", agency), False
            return None, True
        return info["template"].replace("{" + serves + "}", name), False

    # -- explanation ------------------------------------------------------------------------------
    def _explain(self, X, results, n_terms: int = 5) -> dict[str, list[list[str]]]:
        # Names of the columns explanations have named so far, made when first needed (not all
        # ~95,000 at once: ~5 MiB of a loaded Router for the few thousand an explanation uses).
        names = self._feature_names
        if names is None:
            names = self._feature_names = {}
        out = {}
        n = X.shape[0]
        if n == 1:  # one complaint (predict): the same terms in a third of the numpy calls
            for task, head, P, top, *_ in results:
                contrib = X.data * head.coef_[top[0, 0], X.indices]
                pos = np.flatnonzero(contrib > 0)
                columns = X.indices[pos[np.argsort(-contrib[pos], kind="stable")][:n_terms]].tolist()
                missing = sorted(set(columns).difference(names))
                if missing:
                    names.update(zip(missing, self.model.features_.names_of(missing)))
                out[task] = [list(map(names.__getitem__, columns))]
            return out
        rows = np.repeat(np.arange(n), X.indptr[1:] - X.indptr[:-1])
        for task, head, P, top, *_ in results:
            contrib = X.data * head.coef_[top[rows, 0], X.indices]
            # Each row's positive terms by descending contribution, ties in feature order (what
            # np.lexsort((-contrib, rows)) gives), with stable argsorts (faster than lexsort).
            pos = np.flatnonzero(contrib > 0)
            if contrib.dtype == np.float32:
                # One sort instead of two: a positive float32's bits, read as an unsigned
                # integer, order as its value, so (row, ~bits) packed in 64 bits orders by row,
                # then by descending contribution; a stable sort keeps ties in feature order.
                key = rows[pos].astype(np.uint64) << np.uint64(32)
                key |= (np.uint32(0xFFFFFFFF) - contrib[pos].view(np.uint32)).astype(np.uint64)
                pos = pos[np.argsort(key, kind="stable")]
            else:
                pos = pos[np.argsort(-contrib[pos], kind="stable")]
                pos = pos[np.argsort(rows[pos], kind="stable")]
            r = rows[pos]
            keep = pos[np.arange(len(pos)) - np.searchsorted(r, r) < n_terms]
            # ``keep`` is grouped by row already: cut one flat list of names at the row bounds.
            columns = X.indices[keep].tolist()
            missing = sorted(set(columns).difference(names))
            if missing:
                names.update(zip(missing, self.model.features_.names_of(missing)))
            flat = list(map(names.__getitem__, columns))
            bounds = np.zeros(n + 1, np.int64)
            np.cumsum(np.bincount(rows[keep], minlength=n), out=bounds[1:])
            b = bounds.tolist()
            out[task] = [flat[b[i]:b[i + 1]] for i in range(n)]
        return out


_FAST_LOCK = threading.Lock()


def _release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere nothing).
    Loading a model frees many small objects (parsed JSON, weights before conversion) and
    stacking the heads frees their old weights; glibc keeps such memory for later, so a loaded
    Router measured 161 MiB RSS instead of 135 (bench/latency.py). Called after those two steps
    only: it takes a few milliseconds and changes no result."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _MALLOC_TRIM = ctypes.CDLL(None).malloc_trim  # glibc only; musl has none
            except (OSError, AttributeError):
                pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None
_EMPTY_GATHER = Gathered(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64),
                         np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(1, np.int64))


def _top(P: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the ``k`` best columns of each row, their values), best first, ties to the lower column:
    what the first ``k`` columns of ``np.argsort(-P, axis=1, kind="stable")`` give, by ``k``
    argmax passes (a few dozen labels: cheaper than sorting every row)."""
    n, width = P.shape
    k = min(k, width)
    if n <= 16:  # a few rows: one stable argsort is fewer numpy calls than k argmax passes
        idx = np.argsort(-P, axis=1, kind="stable")[:, :k]
        return idx, P[np.arange(n)[:, None], idx]  # take_along_axis's values, fewer calls
    idx = np.empty((n, k), np.int64)
    val = np.empty((n, k), P.dtype)
    if n == 0 or k == 0:
        return idx, val
    rows = np.arange(n)
    Q = P.copy() if k > 1 else P
    for j in range(k):
        best = Q.argmax(1)
        idx[:, j] = best
        val[:, j] = P[rows, best]
        if j + 1 < k:
            Q[rows, best] = -np.inf
    return idx, val


class _FastState:
    """A Router's fast-path state: the chunk table, the stacked head weights, the per-label
    columns of the output, and the memos of the per-row rules (bounded: when one is full the
    Router starts a new state, keeping the table and the weights)."""

    MAX_MEMO = 100_000

    def __init__(self, router: "Router", table: ChunkTable | None = None, stacked=None):
        model = router.model
        self.tasks = list(model.heads_)
        self.heads = [model.heads_[t] for t in self.tasks]
        self.stacked = stacked or stack_heads(self.heads)
        pre = model.preprocessor_
        roles = router.gazetteer._word_roles()
        self.table = table or ChunkTable(pre, model.features_.vocabulary_, router._dictionary, roles,
                                         max_chunks=pre.cache_size or 1)
        word_of = sorted(roles[0], key=roles[0].get)
        self.as_words = lambda key: [word_of[w] if w >= 0 else "" for w in key]
        labels = router._labels
        self.names = {t: [router.label_names.get(t, {}).get(lab) for lab in labels[t]] for t in self.tasks}
        self._level_parent = {}
        if "agency" in labels:
            infos = [router.agency_types.get(lab) or {} for lab in labels["agency"]]
            self._level_parent["agency"] = ([i.get("level") for i in infos], [i.get("parent") for i in infos])
        # Review reasons in the order Prediction.review_reasons lists them; the place notes of
        # _jurisdiction (at most one a row) between place_not_found and text_too_short.
        before = ["low_confidence_" + t for t in self.tasks] + [
            "unknown_agency", "outside_scope", "topic_agency_disagree", "place_not_found"]
        after = ["text_too_short", "not_indonesian", "truncated"]
        notes = [r for r in get_args(ReviewReason) if r not in before and r not in after]
        self.reason_names = tuple(before + notes + after)
        self.bit = {name: 1 << b for b, name in enumerate(self.reason_names)}
        self.disagree = None
        if "topic" in labels and "agency" in labels:
            self.disagree = np.zeros((len(labels["topic"]), len(labels["agency"])), bool)
            for ti, t in enumerate(labels["topic"]):
                share = router._pair_share.get(t)
                if share is not None:
                    self.disagree[ti] = [share.get(a, 0.0) < 0.02 for a in labels["agency"]]
        self.jmemo: dict[tuple, tuple[int, int]] = {}
        self.rmemo: dict[tuple, tuple] = {}
        self.found: list = []        # region index -> (Place, source)
        self.regions: list[dict] = []  # region index -> Router._region(...)
        self._index: dict = {}
        self._region = router._region
        self._lock = threading.Lock()

    def level_parent(self, task: str):
        return self._level_parent.get(task, (None, None))

    def full(self) -> bool:
        return max(len(self.jmemo), len(self.rmemo), len(self.found)) > self.MAX_MEMO

    def place_of(self, found, note) -> tuple[int, int]:
        """(the region's index, the note's review bit) for what ``_jurisdiction`` returned."""
        note_bit = self.bit[note] if note else 0
        if found is None:
            return -1, note_bit
        idx = self._index.get(found)
        if idx is None:
            with self._lock:
                idx = self._index.get(found)
                if idx is None:
                    self.regions.append(self._region(found))
                    self.found.append(found)
                    idx = self._index[found] = len(self.found) - 1
        return idx, note_bit

    def regions_of(self, region: np.ndarray) -> list[dict]:
        # Append-only: a result keeps the list, and its indices stay valid.
        return self.regions
