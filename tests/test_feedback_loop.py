"""The loop around the model (issue 17, LOOPB): the label audit, the review queue, and operators'
corrections stored (SQLite, HTTP, CLI) and fed back into training."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from lapor_nlp.feedback import FeedbackConflictError, FeedbackStore, read_corrections, write_export
from lapor_nlp.errors import DataValidationError, InputValueError
from lapor_nlp.training import Columns, load_labelled, train
from lapor_nlp.training.audit import audit, audit_examples, markdown, plant_flips, write_csv as audit_csv
from lapor_nlp.training.data import apply_corrections

from test_training import corpus_rows, write_csv


def correction(i: int, version: int = 1, agency: str = "dinsos", **kw) -> dict:
    return {"id": f"c{i}", "version": version, "predicted": {"agency": "kelurahan"},
            "corrected": {"agency": agency}, "who": f"op{i % 3}",
            "when": f"2026-01-{1 + i % 28:02d}T10:00:00+07:00", **kw}


# -- the store ------------------------------------------------------------------------------------
def test_store_is_idempotent_on_id_and_version_and_refuses_a_changed_repeat(tmp_path):
    with FeedbackStore(tmp_path / "fb.db") as store:
        assert store.add(correction(1)) is True
        assert store.add(correction(1)) is False          # a retry stores nothing twice
        with pytest.raises(FeedbackConflictError) as e:   # same key, other content
            store.add(correction(1, agency="dinas_pu"))
        assert e.value.field == "version" and "version 2" in e.value.message
        assert store.add(correction(1, version=2, agency="dinas_pu")) is True
        assert store.count() == 2
        latest = store.records(latest=True)
        assert [(r["id"], r["version"], r["corrected_agency"]) for r in latest] == [("c1", 2, "dinas_pu")]
        assert latest[0]["when"] == "2026-01-02T03:00:00+00:00"  # stored in UTC
        mode = store._connect().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_a_correction_must_correct_something_and_name_its_fields(tmp_path):
    with FeedbackStore(tmp_path / "fb.db") as store:
        with pytest.raises(InputValueError, match="at least one"):
            store.add({"id": "x", "corrected": {}, "who": "a", "when": "2026-01-01T00:00:00"})
        with pytest.raises(InputValueError) as e:
            store.add({"id": "x", "corrected": {"topic": "t"}, "who": "a", "when": "yesterday"})
        assert e.value.field == "when"
        assert store.count() == 0


def test_when_defaults_to_receipt_and_labels_are_checked_when_given(tmp_path):
    from datetime import datetime, timedelta, timezone

    labels = {"topic": ["jalan", "sosial"], "agency": ["dinsos", "dinas_pu"]}
    with FeedbackStore(tmp_path / "fb.db") as store:
        item = {"id": "w1", "corrected": {"agency": "dinsos"}, "who": "ani"}
        before = datetime.now(timezone.utc)
        assert store.add(item, labels=labels) is True
        when = datetime.fromisoformat(store.records()[0]["when"])
        assert when.utcoffset() == timedelta(0) and before <= when <= datetime.now(timezone.utc)
        assert store.add(item) is False  # a retry without `when` is the same correction
        for task, bad in (("agency", "dinsoss"), ("topic", "jalan_raya")):
            with pytest.raises(InputValueError) as e:
                store.add({"id": "w2", "corrected": {task: bad}, "who": "ani"}, labels=labels)
            assert e.value.field == f"corrected.{task}" and bad in e.value.message
        # predicted may come from another model; office has no labels to check
        assert store.add({"id": "w3", "predicted": {"agency": "old"}, "corrected":
                          {"agency": "dinas_pu", "office": "UPTD X"}, "who": "b"}, labels=labels)
        with pytest.raises(InputValueError) as e:
            store.add({"id": "w4", "corrected": {"agency": "dinsos"}})
        assert e.value.field == "who" and "required" in e.value.message
        with pytest.raises(InputValueError) as e:
            store.add({"id": "w4", "corrected": {}, "who": "ani"})
        assert e.value.field == "corrected" and "Value error" not in str(e.value)
        assert store.count() == 2


def test_the_service_checks_labels_stamps_when_and_explains_who(model_dir, router, tmp_path):
    pytest.importorskip("fastapi")
    from datetime import datetime, timezone

    from fastapi.testclient import TestClient

    from lapor_nlp.serve import create_app

    topic, agency = router.labels["topic"][0], router.labels["agency"][0]
    db = tmp_path / "app.db"
    with TestClient(create_app(model_dir, feedback_db=db)) as client:
        for corrected, field in (({"agency": agency + "_x"}, "corrected.agency"),
                                 ({"topic": "no such topic", "agency": agency}, "corrected.topic")):
            r = client.post("/v1/feedback", json={"id": "s1", "corrected": corrected, "who": "ani"})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == field
        r = client.post("/v1/feedback", json={"id": "s1", "corrected": {"agency": agency}})
        err = r.json()["error"]
        assert r.status_code == 422 and err["field"] == "who" and "required" in err["message"]
        assert "Value error" not in err["message"] and "JSON object" not in err["message"]
        r = client.post("/v1/feedback", json={"id": "s1", "corrected": {}, "who": "ani"})
        err = r.json()["error"]
        assert r.status_code == 422 and err["field"] == "corrected", err
        assert "Value error" not in err["message"] and "JSON object" not in err["message"]
        before = datetime.now(timezone.utc)
        body = {"id": "s1", "corrected": {"topic": topic, "agency": agency}, "who": "ani"}
        assert client.post("/v1/feedback", json=body).status_code == 201
        assert client.post("/v1/feedback", json=body).status_code == 200  # a retry, not a 409
    with FeedbackStore(db) as store:
        (row,) = store.records()
    assert before <= datetime.fromisoformat(row["when"]) <= datetime.now(timezone.utc)


def test_export_round_trips_and_the_latest_wins(tmp_path):
    with FeedbackStore(tmp_path / "fb.db") as store:
        store.add_many([correction(1), correction(2), correction(1, version=2, agency="dishub")])
        rows = store.records()
    for fmt in ("csv", "jsonl"):
        path = tmp_path / f"export.{fmt}"
        with open(path, "w", encoding="utf-8", newline="") as f:
            assert write_export(rows, f, fmt) == 3
        got = {r["id"]: r["corrected_agency"] for r in read_corrections(path)}
        assert got == {"c1": "dishub", "c2": "dinsos"}
    assert {r["id"]: r["corrected_agency"] for r in read_corrections(tmp_path / "fb.db")} == got


def _write_from_process(db: str, start: int, n: int) -> None:
    subprocess.run([sys.executable, "-c", (
        "import sys; from lapor_nlp.feedback import FeedbackStore\n"
        f"s = FeedbackStore({db!r})\n"
        f"for i in range({start}, {start + n}):\n"
        "    s.add({'id': f'p{i}', 'corrected': {'topic': 't'}, 'who': 'w', 'when': '2026-01-01T00:00:00'})\n")],
        check=True, timeout=120)


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    db = str(tmp_path / "fb.db")
    threads = [threading.Thread(target=_write_from_process, args=(db, k * 150, 150)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with FeedbackStore(db) as store:
        assert store.count() == 450
        assert {r["id"] for r in store.records()} == {f"p{i}" for i in range(450)}


def test_feedback_cli_add_and_export(tmp_path):
    db = tmp_path / "cli.db"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "feedback", "--db", str(db), *args],
                              capture_output=True, text=True, timeout=120)

    first = cli("add", "--id", "A1", "--corrected-agency", "dinsos", "--who", "ani")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["stored"] == 1
    second = cli("add", "--id", "A1", "--corrected-agency", "dishub", "--who", "budi")  # next version
    assert json.loads(second.stdout) | {"db": None} == {"stored": 1, "duplicates": 0, "total": 2, "db": None}
    bad = cli("add", "--id", "A1", "--version", "1", "--corrected-agency", "dinkes", "--who", "x")
    assert bad.returncode == 1 and "LAPOR-E090" in bad.stderr
    out = cli("export", "--latest")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["id"], r["version"], r["corrected_agency"]) for r in rows] == [("A1", "2", "dishub")]
    again = cli("add", "--file", str(_export_file(tmp_path, out.stdout)))
    assert json.loads(again.stdout)["duplicates"] == 1


def test_feedback_cli_speaks_plainly_and_checks_labels_with_model(model_dir, tmp_path):
    db = tmp_path / "cli.db"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "feedback", "--db", str(db), *args],
                              capture_output=True, text=True, timeout=300)

    bad = cli("add", "--id", "A1", "--who", "ani")  # corrects nothing
    assert bad.returncode == 1 and "LAPOR-E002" in bad.stderr and "corrected" in bad.stderr
    assert "Value error" not in bad.stderr
    unknown = cli("add", "--model", str(model_dir), "--id", "A1", "--who", "ani",
                  "--corrected-agency", "dinas_tidak_ada")
    assert unknown.returncode == 1 and "corrected.agency" in unknown.stderr, unknown.stderr
    ok = cli("add", "--model", str(model_dir), "--id", "A1", "--who", "ani", "--corrected-agency", "dinsos")
    assert ok.returncode == 0 and json.loads(ok.stdout)["stored"] == 1, ok.stderr


def _export_file(tmp_path, text):
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    return path


# -- the HTTP route, on a real server -------------------------------------------------------------
httpx = pytest.importorskip("httpx")
KEY = "test-key-feedback-0123456789"


def _server(model_dir, db, log_path):
    pytest.importorskip("fastapi")
    from test_serve import Server

    srv = Server(["--model", str(model_dir), "--feedback-db", str(db)], log_path,
                 env={"LAPOR_NLP_API_KEY": KEY})
    srv.wait_ready()
    return srv


def test_eight_clients_post_500_each_lose_nothing_and_a_restart_keeps_all(model_dir, tmp_path):
    db = tmp_path / "service.db"
    srv = _server(model_dir, db, tmp_path / "server1.log")
    try:
        assert httpx.post(srv.base + "/v1/feedback", json=correction(0)).status_code == 401  # the gate

        def client(k: int) -> Counter:
            codes = Counter()
            with httpx.Client(base_url=srv.base, headers={"X-API-Key": KEY}, timeout=60) as c:
                for j in range(500):
                    codes[c.post("/v1/feedback", json=correction(k * 500 + j)).status_code] += 1
                # a client retrying its first post stores nothing twice
                codes[c.post("/v1/feedback", json=correction(k * 500)).status_code] += 1
            return codes

        with ThreadPoolExecutor(8) as pool:
            totals = sum(pool.map(client, range(8)), Counter())
        assert totals == {201: 4000, 200: 8}
        with httpx.Client(base_url=srv.base, headers={"X-API-Key": KEY}) as c:
            r = c.post("/v1/feedback", json=correction(7, agency="dinkes"))
            assert r.status_code == 409 and r.json()["error"]["code"] == "feedback_conflict"
            assert c.post("/v1/feedback", json={"id": "x", "who": "a"}).status_code == 422
    finally:
        assert srv.stop() == 0
    with FeedbackStore(db) as store:
        before = store.records()
    assert len(before) == 4000 and {r["id"] for r in before} == {f"c{i}" for i in range(4000)}

    srv = _server(model_dir, db, tmp_path / "server2.log")  # a new process on the same database
    try:
        with httpx.Client(base_url=srv.base, headers={"X-API-Key": KEY}) as c:
            assert c.post("/v1/feedback", json=correction(5)).status_code == 200   # still known
            r = c.post("/v1/feedback", json=correction(5, version=2, agency="dishub"))
            assert r.status_code == 201 and r.json() == {"id": "c5", "version": 2, "stored": True}
    finally:
        srv.stop()
    with FeedbackStore(db) as store:
        after = store.records()
    assert len(after) == 4001 and [r for r in after if (r["id"], r["version"]) != ("c5", 2)] == before


# -- corrections fed back into training -----------------------------------------------------------
@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    rows = corpus_rows()[::6]
    for i, r in enumerate(rows):
        r["id"] = f"r{i}"
        r["date"] = f"2024-01-{1 + i % 28:02d}"
    return write_csv(tmp_path_factory.mktemp("loop") / "labelled.csv", rows), rows


def test_corrections_change_exactly_the_corrected_rows(labelled_csv, tmp_path):
    path, rows = labelled_csv
    cols = Columns(id="id", date="date")
    before, _ = load_labelled(path, cols)
    others = [a for a in sorted({e.agency for e in before}) if a != before[3].agency]
    # r3: another agency, then a later version with a third one; r8: a new topic; r12: the label
    # it already has; and an id that no row has
    corr = [{"id": "r3", "version": 1, "corrected_agency": others[0], "who": "a",
             "when": "2026-01-01T00:00:00+00:00"},
            {"id": "r3", "version": 2, "corrected_agency": others[1], "who": "a",
             "when": "2026-01-02T00:00:00+00:00"},
            {"id": "r8", "version": 1, "corrected_topic": "topik_baru", "who": "b",
             "when": "2026-01-01T00:00:00+00:00"},
            {"id": "r12", "version": 1, "corrected_agency": before[12].agency, "who": "c",
             "when": "2026-01-01T00:00:00+00:00"},
            {"id": "no-such-row", "version": 1, "corrected_topic": "x", "who": "d",
             "when": "2026-01-01T00:00:00+00:00"}]
    export = tmp_path / "corrections.jsonl"
    export.write_text("".join(json.dumps(c) + "\n" for c in corr), encoding="utf-8")
    after, summary = apply_corrections(load_labelled(path, cols)[0], export)
    diff = {(b.id, t) for b, a in zip(before, after) for t in ("topic", "agency")
            if getattr(b, t) != getattr(a, t)}
    assert diff == {("r3", "agency"), ("r8", "topic")}
    assert after[3].agency == corr[1]["corrected_agency"]  # the latest version wins
    assert summary["rows_changed"] == 2 and summary["unmatched_ids"] == 1
    assert summary["labels_changed"] == {"agency": 1, "topic": 1}

    common = dict(columns=cols, test_size=0, min_count=1, rare="keep", quiet=True, map_labels="none")
    plain = train(path, **common)
    fixed = train(path, tmp_path / "model", corrections=export, **common)
    delta = {t: Counter(fixed.info["label_counts"][t]) - Counter(plain.info["label_counts"][t])
             for t in ("topic", "agency")}
    assert delta["topic"] == Counter({"topik_baru": 1})
    assert delta["agency"] == Counter({corr[1]["corrected_agency"]: 1})
    report = json.loads((tmp_path / "model" / "data_report.json").read_text(encoding="utf-8"))
    assert report["corrections"]["rows_changed"] == 2
    assert fixed.info["data"]["corrections"]["changed_ids"] == ["r3", "r8"]


# -- the audit ------------------------------------------------------------------------------------
def test_audit_puts_planted_flips_at_the_top(labelled_csv):
    _, rows = labelled_csv
    texts = [r["text"] for r in rows]
    given = [r["agency"] for r in rows]
    noisy, flipped = plant_flips(given, 0.05, seed=1)
    assert 0 < len(flipped) and sum(a != b for a, b in zip(given, noisy)) == len(flipped)
    res = audit_examples(texts, noisy, task="agency", folds=3, seed=0)
    top = [r["line"] - 1 for r in res.rows[: len(res.rows) // 10]]
    recall = len(set(top) & flipped) / len(flipped)
    assert recall >= 0.6, recall  # random: 0.10
    suggested = {r["line"] - 1: r["suggested"] for r in res.rows}
    fixed = sum(suggested[i] == given[i] for i in flipped) / len(flipped)
    assert fixed >= 0.3, fixed  # often the label before the flip (by chance: about 1 in 100)
    assert [r["rank"] for r in res.rows] == list(range(1, len(res.rows) + 1))


def test_audit_file_outputs_and_conflicting_duplicates(tmp_path):
    rows = corpus_rows()[::10]
    twin = dict(rows[0], id="twin", agency=next(r["agency"] for r in rows if r["agency"] != rows[0]["agency"]))
    rows = [dict(r, id=f"r{i}") for i, r in enumerate(rows)] + [twin, dict(rows[0], id="twin2")]
    rows[0]["text"] += " 081234567890"  # a phone number: masked in the Markdown view
    path = write_csv(tmp_path / "dups.csv", rows)
    cols = Columns(id="id")
    results = audit(path, cols, folds=3, tasks=["agency"])
    res = results["agency"]
    by_id = {r["id"]: r for r in res.rows}
    assert by_id["twin"]["duplicate_conflict"] and by_id["twin"]["suggested"] == rows[0]["agency"]
    assert by_id["twin"]["conflict_group"] == by_id["r0"]["conflict_group"] is not None
    assert res.summary["duplicate_groups_in_conflict"] >= 1
    out = io.StringIO()
    assert audit_csv(results, out) == len(res.rows)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert table[0]["rank"] == "1" and {"id", "line", "given", "suggested", "score"} <= set(table[0])
    assert float(table[0]["score"]) >= float(table[-1]["score"]) or table[0]["flagged"] == "True"
    examples, _ = load_labelled(path, cols)
    md = markdown(results, {e.line: e.text for e in examples}, top=len(res.rows))
    assert "081234567890" not in md and "[TELEPON]" in md


# -- the review queue -----------------------------------------------------------------------------
def test_review_queue_orders_by_margin_and_merges_copies(router):
    from lapor_nlp.batch.review_queue import review_queue

    texts = [r["text"] for r in corpus_rows()[::97][:40]] + ["lampu jalan mati dan sampah menumpuk",
                                                              "jalan rusak", "jalan rusak"]
    queue = review_queue(router, texts, review_only=False)
    margins = [r["margin"] for r in queue]
    assert margins == sorted(margins)
    assert len(queue) == len(texts) - 1  # the two identical texts are one entry
    assert next(r for r in queue if r["position"] == len(texts) - 1)["copies"] == 2
    top = queue[0]
    assert top["agency_alternatives"] and round(top["agency_score"] - top["agency_alternatives"][0]["score"], 2) \
        == pytest.approx(top["margin"], abs=0.02)
    by_entropy = review_queue(router, texts, review_only=False, by="entropy")
    entropies = [r["entropy"] for r in by_entropy]
    assert entropies == sorted(entropies, reverse=True)
    flagged = review_queue(router, texts)
    assert flagged and all(r["needs_review"] for r in flagged) and len(flagged) < len(queue)


def test_classify_writes_the_review_queue(model_dir, tmp_path):
    rows = corpus_rows()[::211][:30]
    src = write_csv(tmp_path / "backlog.csv", [dict(r, id=f"b{i}") for i, r in enumerate(rows)],
                    header=("id", "text"))
    proc = subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "classify", str(src), "-o",
                           str(tmp_path / "out.csv"), "--model", str(model_dir), "--id-col", "id",
                           "--jobs", "1", "--review-queue", str(tmp_path / "queue.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8")))
    queue = list(csv.DictReader(open(tmp_path / "queue.csv", encoding="utf-8")))
    need = {r["id"] for r in out if r["needs_review"] == "True"}
    assert {q["id"] for q in queue} <= need and sum(int(q["copies"]) for q in queue) == len(need)
    assert [float(q["margin"]) for q in queue] == sorted(float(q["margin"]) for q in queue)


def test_a_type_only_correction_keeps_the_rows_place_and_does_not_vote_on_its_level():
    # Corrections name agency types (the service checks them against the model's labels): the
    # same type must leave an export's "Kelurahan Kertajaya" as it is, and another type must not
    # turn a place-bound type into one that serves no region.
    from lapor_nlp.training.data import Example
    from lapor_nlp.training.train import agency_places

    def row(i, label):
        from lapor_nlp.agency import AgencySplitter

        name = AgencySplitter().split(label)
        return Example(line=i, text="x", id=f"k{i}", agency=name.type, agency_label=name.label,
                       agency_place=name.place, agency_level=name.level)

    rows = [row(i, f"Kelurahan Desa{i}") for i in range(4)] + [row(9, "Dinas Sosial")]
    kel = rows[0].agency
    corr = [{"id": "k0", "version": 1, "corrected_agency": kel},                 # the same type
            {"id": "k1", "version": 1, "corrected_agency": "Dinas Sosial"},      # another type
            {"id": "k9", "version": 1, "corrected_agency": kel},                 # to Kelurahan,
            {"id": "k2", "version": 1, "corrected_agency": kel,                  # twice with no place
             "corrected_office": "Kelurahan Baru"}]                              # one with an office
    after, summary = apply_corrections(rows, corr)
    level = rows[3].agency_level
    assert level and (after[0].agency, after[0].agency_place, after[0].agency_level) == (kel, "Desa0", level)
    assert summary["labels_changed"] == {"agency": 3}  # k1, k9 and k2 (its office names a new place)
    assert summary["rows_changed"] == 3
    assert (after[1].agency, after[1].agency_place) == ("Dinas Sosial", None)
    assert (after[2].agency, after[2].agency_place, after[2].agency_level) == (kel, "Baru", level)
    types, _ = agency_places(after)
    assert types[kel]["serves"] != "none"  # k9's type-only correction did not vote "no place"


def test_reading_corrections_leaves_a_foreign_sqlite_file_untouched_and_says_what_it_is(tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    with pytest.raises(DataValidationError, match="feedback table"):
        read_corrections(other)
    assert other.read_bytes() == before  # no table added, journal mode unchanged
    assert not (tmp_path / "other.db-wal").exists()


def test_a_feedback_database_that_cannot_be_opened_is_a_server_fault_not_a_client_error(tmp_path):
    # The service answers a library error that is not an input error with 500 and its request id
    # (serve/errors.py), not 422 with the server's file path.
    from lapor_nlp.feedback import FeedbackStoreError
    from lapor_nlp.serve.errors import _INPUT_ERRORS

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(FeedbackStoreError) as info:
        FeedbackStore(blocker / "fb.sqlite3")
    assert not isinstance(info.value, _INPUT_ERRORS)
