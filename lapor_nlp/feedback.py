"""Operators' corrections, kept in an embedded SQLite database, to be fed back into training.

A correction says, for one complaint ``id``, what the router predicted and what a person says it
should have been (topic, agency, office), who said so and when. ``version`` numbers the
corrections of one complaint: storing the same ``(id, version)`` twice is a no-op (a client that
retries after a timeout stores nothing twice); the same key with other content is refused
(:class:`FeedbackConflictError`), since one of the two would be lost silently. When several
versions exist, the latest (highest version, then latest ``when``) wins.

Why SQLite: the standard library's embedded database, one file, no server to run, atomic and
durable commits. The database runs in WAL mode (readers never block the writer) with a busy
timeout (concurrent writers, from several service workers or a CLI beside the service, wait for
each other instead of failing) and ``synchronous=FULL`` (a commit that returned survives a power
cut; corrections are people's work and come slowly enough to afford one fsync each).

Where: the path given, else ``LAPOR_NLP_FEEDBACK_DB``, else ``feedback.sqlite3`` in the user's
data directory (``platformdirs``). Used by ``POST /v1/feedback``, ``lapor-nlp feedback`` and
``lapor-nlp train --corrections``.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DataValidationError, InputValueError, LaporError, schema_error_message

ENV_DB = "LAPOR_NLP_FEEDBACK_DB"
TASKS = ("topic", "agency", "office")
#: The columns of an export (CSV header / JSON keys), in order.
FIELDS = ("id", "version", "predicted_topic", "predicted_agency", "predicted_office",
          "corrected_topic", "corrected_agency", "corrected_office", "who", "when", "received_at")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    predicted_topic TEXT, predicted_agency TEXT, predicted_office TEXT,
    corrected_topic TEXT, corrected_agency TEXT, corrected_office TEXT,
    who TEXT NOT NULL,
    "when" TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (id, version)
)"""


class FeedbackStoreError(LaporError, OSError):
    """The feedback database cannot be opened or used (a path that cannot be created, a file
    that is not one, a disk that is full): a fault of the server's side, never the client's."""

    code = "LAPOR-E091"


class FeedbackConflictError(LaporError, ValueError):
    """A correction with the ``(id, version)`` of a stored one but other content: give it the next
    version instead (the stored one is kept)."""

    code = "LAPOR-E090"


def _storable(value):
    """A text SQLite can store as UTF-8 (JSON may carry a lone surrogate, which it cannot)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text holds a lone surrogate (not valid Unicode)") from None
    return value


class Labels(BaseModel):
    """Topic, agency and office: each may be left out."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    topic: str | None = Field(None, min_length=1, max_length=200)
    agency: str | None = Field(None, min_length=1, max_length=200)
    office: str | None = Field(None, min_length=1, max_length=300)

    _check_text = field_validator("topic", "agency", "office")(_storable)


class Feedback(BaseModel):
    """One correction. ``corrected`` must name at least one of topic, agency, office."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(..., min_length=1, max_length=200, description="the complaint's id")
    version: int = Field(1, ge=1, le=1_000_000, description="1 for a complaint's first correction, "
                                                            "then 2, 3...: (id, version) is stored once")
    predicted: Labels = Field(default_factory=Labels, description="what the router said")
    corrected: Labels = Field(..., description="what a person says is right")
    who: str = Field(..., min_length=1, max_length=200,
                     description="who corrected it (required: the audit trail names a person)")
    when: datetime = Field(default_factory=lambda: datetime.now(timezone.utc),
                           description="when it was corrected (ISO 8601; UTC when no offset); "
                                       "default: when it is received")

    _check_text = field_validator("id", "who")(_storable)

    @field_validator("when")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Stored in UTC (no offset given: taken as UTC), so that text order is time order."""
        try:
            return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except (OverflowError, ValueError):
            raise ValueError("when is out of range") from None

    @field_validator("corrected")
    @classmethod
    def _names_a_correction(cls, value: Labels) -> Labels:
        # A field validator, not a model one, so that the error names the field "corrected".
        if not any(getattr(value, t) for t in TASKS):
            raise ValueError("name at least one of topic, agency, office")
        return value

    def row(self) -> dict:
        """The flat row stored (``FIELDS`` less ``received_at``)."""
        return {"id": self.id, "version": self.version,
                **{f"predicted_{t}": getattr(self.predicted, t) for t in TASKS},
                **{f"corrected_{t}": getattr(self.corrected, t) for t in TASKS},
                "who": self.who, "when": self.when.isoformat()}


def as_feedback(item) -> Feedback:
    """A :class:`Feedback` from itself, a nested dict, or a flat row (``predicted_topic``...,
    as an export writes them); a typed error naming the field otherwise."""
    if isinstance(item, Feedback):
        return item
    if not isinstance(item, Mapping):
        raise InputValueError(f"a correction is a Feedback or a dict, got {type(item).__name__}")
    item = dict(item)
    item.pop("received_at", None)
    for side in ("predicted", "corrected"):
        flat = {t: item.pop(f"{side}_{t}") for t in TASKS if f"{side}_{t}" in item}
        if flat:
            item[side] = {**item.get(side, {}), **{t: v for t, v in flat.items() if v not in (None, "")}}
    try:
        return Feedback.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        why = schema_error_message(err)
        raise InputValueError(f"correction: {field + ': ' if field else ''}{why}", field=field) from None


def check_labels(item: Feedback, labels: Mapping[str, Iterable[str]]) -> None:
    """Refuse a correction to a topic or agency the model does not know (``labels``: a router's
    ``labels``), naming the field (``corrected.agency``): a typo would otherwise train a new class.
    Tasks the model has no labels for (office) and ``predicted`` (maybe an older model's) pass."""
    for task in TASKS:
        value = getattr(item.corrected, task)
        known = labels.get(task)
        if value is None or known is None:
            continue
        known = [str(k) for k in known]
        if value not in known:
            shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
            raise InputValueError(f"corrected.{task} {value!r} is not one of the model's {task} "
                                  f"labels ({shown})", field=f"corrected.{task}")


def default_path() -> Path:
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("lapor-nlp")) / "feedback.sqlite3"


class FeedbackStore:
    """The corrections database. Safe to share between threads (one connection per thread) and
    between processes (SQLite's locking, WAL, a busy timeout of ``timeout`` seconds)."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0):
        self.path = Path(path) if path else default_path()
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._connect()  # creates the file and the table now: a bad path fails here, not later

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise FeedbackStoreError(f"feedback database {self.path}: {exc}") from exc
        except OSError as exc:
            raise FeedbackStoreError(f"feedback database {self.path}: {exc.strerror or exc}") from exc
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def add(self, item, *, labels: Mapping[str, Iterable[str]] | None = None) -> bool:
        """Store one correction; True if it is new, False if the same one was stored before.
        ``labels`` (a router's ``labels``): refuse a correction to a label the model lacks
        (:func:`check_labels`). A correction without ``when`` is stamped with the time received,
        and a repeat of it is compared without ``when`` (a retry is still the same correction)."""
        item = as_feedback(item)
        if labels is not None:
            check_labels(item, labels)
        row = item.row()
        compared = [c for c in FIELDS if c != "received_at"
                    and (c != "when" or "when" in item.model_fields_set)]
        row["received_at"] = datetime.now(timezone.utc).isoformat()
        conn = self._connect()
        cols = ", ".join(f'"{c}"' for c in FIELDS)
        marks = ", ".join(f":{c}" for c in FIELDS)
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(f"INSERT INTO feedback ({cols}) VALUES ({marks}) "
                               "ON CONFLICT (id, version) DO NOTHING", row)
            if cur.rowcount == 1:
                conn.execute("COMMIT")
                return True
            stored = conn.execute(f"SELECT {cols} FROM feedback WHERE id = ? AND version = ?",
                                  (row["id"], row["version"])).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        same = dict(zip(FIELDS, stored))
        if any(same[c] != row[c] for c in compared):
            raise FeedbackConflictError(
                f"complaint {row['id']!r} already has a different correction version "
                f"{row['version']}; send it as version {self.next_version(row['id'])}", field="version")
        return False

    def add_many(self, items: Iterable, *, labels: Mapping[str, Iterable[str]] | None = None) -> dict:
        """Store several; ``{"stored": n, "duplicates": n}`` (``labels``: as :meth:`add`)."""
        counts = {"stored": 0, "duplicates": 0}
        for item in items:
            counts["stored" if self.add(item, labels=labels) else "duplicates"] += 1
        return counts

    def next_version(self, complaint_id: str) -> int:
        (v,) = self._connect().execute("SELECT COALESCE(MAX(version), 0) + 1 FROM feedback WHERE id = ?",
                                       (complaint_id,)).fetchone()
        return int(v)

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def records(self, *, latest: bool = False) -> list[dict]:
        """Every stored correction (``FIELDS``), by id then version; ``latest``: one per id."""
        cols = ", ".join(f'"{c}"' for c in FIELDS)
        rows = [dict(zip(FIELDS, r)) for r in self._connect().execute(
            f'SELECT {cols} FROM feedback ORDER BY id, version, "when"')]
        return latest_by_id(rows) if latest else rows

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def latest_by_id(rows: Iterable[Mapping]) -> list[dict]:
    """One correction per id: the highest version, then the latest ``when``."""
    best: dict[str, dict] = {}
    for r in rows:
        key = (int(r["version"]), str(r["when"]))
        cur = best.get(r["id"])
        if cur is None or key >= (int(cur["version"]), str(cur["when"])):
            best[r["id"]] = dict(r)
    return [best[k] for k in sorted(best)]


def write_export(rows: list[dict], file, fmt: str = "csv") -> int:
    """Rows as CSV (``FIELDS`` header) or JSON lines to an open text file; returns the count."""
    if fmt == "jsonl":
        for r in rows:
            file.write(json.dumps({k: r.get(k) for k in FIELDS}, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        w = csv.DictWriter(file, FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        raise InputValueError(f"format must be csv or jsonl, got {fmt!r}")
    return len(rows)


def _read_database(path: Path) -> list[dict]:
    """Every correction in a feedback database, opened read-only: reading corrections for
    training must not create a table in, or change the journal mode of, whatever file it is given."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataValidationError(f"corrections {path}: {exc}") from exc
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone() is None:
            raise DataValidationError(f"corrections {path}: an SQLite file without a feedback table "
                                      "(not a lapor-nlp feedback database)")
        cols = ", ".join(f'"{c}"' for c in FIELDS)
        return [dict(zip(FIELDS, r)) for r in conn.execute(
            f'SELECT {cols} FROM feedback ORDER BY id, version, "when"')]
    except sqlite3.Error as exc:
        raise DataValidationError(f"corrections {path}: {exc}") from exc
    finally:
        conn.close()


def read_corrections(source: str | Path) -> list[dict]:
    """The latest correction per id from a feedback database, or from an export (CSV or JSONL
    with ``FIELDS`` columns; ``version`` and ``when`` may be missing: then the file's order
    decides, the later line winning)."""
    path = Path(source)
    if not path.is_file():
        raise InputValueError(f"corrections: {path} is not a file")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"SQLite format 3"):
        return latest_by_id(_read_database(path))
    from .io import iter_rows, LINE, ERROR

    rows = []
    for n, row in enumerate(iter_rows(path, None)):
        if ERROR in row:
            raise DataValidationError(f"corrections {path}: line {row[LINE]}: {row[ERROR]}")
        row = {k: (v if v not in ("",) else None) for k, v in row.items() if k != LINE}
        if not row.get("id"):
            raise DataValidationError(f"corrections {path}: a row has no id")
        row["id"] = str(row["id"])
        row.setdefault("version", None)
        row["version"] = int(row["version"]) if row["version"] not in (None, "") else 0
        row["when"] = row.get("when") or f"line-{n:09d}"
        rows.append(row)
    return latest_by_id(rows)
