"""Backlog classification (lapor_nlp.batch, `lapor-nlp classify`): every reject kind with its line
number, the row-count identity, columns and order kept, jobs=2 == jobs=1, JSON Lines and Parquet,
resume (refusing another input), and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lapor_nlp.batch import PRED_COLUMNS, classify_file, output_paths
from lapor_nlp.cli import main
from lapor_nlp.errors import BatchInputError, InputValueError
from lapor_nlp.resources import dataset_path
from lapor_nlp.training import Columns

REPO = Path(__file__).resolve().parent.parent


def corpus_rows(n=None):
    rows = []
    for p in sorted(dataset_path("corpus").glob("*.jsonl")):
        rows += [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows[:n] if n else rows


HEADER = ["id", "text", "regency", "note"]


def _csv_line(values) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """A CSV of corpus complaints with one row of each reject kind. Returns (path, expected rejects
    {line: reason prefix}, ids of the good rows in order)."""
    path = tmp_path_factory.mktemp("batch") / "backlog.csv"
    good = corpus_rows()[::25]
    lines = [_csv_line(HEADER)]
    ids = []
    for i, r in enumerate(good):
        if i == 5:
            lines.append(_csv_line(["E-1", "", "Kota Malang", "empty"]))
        if i == 9:
            lines.append(_csv_line(["E-2", "   \t ", "", "blank"]))
        if i == 13:
            lines.append(b"U-1,jalan rusak \xff\xfe parah di gg mawar,Kota Malang,latin-1\n")
        if i == 17:
            lines.append(b"M-1,too,many,fields,here\n")
        if i == 21:  # a quoted text with a newline in it: one row over two physical lines
            ids.append("NL-1")
            lines.append(_csv_line(["NL-1", "lampu jalan mati\nsudah seminggu di jl kenanga", "", "multi-line"]))
        ids.append(r["id"])
        lines.append(_csv_line([r["id"], r["text"], r.get("regency", ""), f"n{i}"]))
    path.write_bytes(b"".join(lines))
    # the expected rejects by physical line number (the two-line row shifts those after it)
    rejects = {}
    for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if raw.startswith(b"E-"):
            rejects[n] = "no text"
        elif raw.startswith(b"U-"):
            rejects[n] = "undecodable bytes"
        elif raw.startswith(b"M-"):
            rejects[n] = "malformed CSV"
    return path, rejects, ids


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference(messy, model_dir, tmp_path_factory):
    path, _, _ = messy
    out = tmp_path_factory.mktemp("ref") / "routed.csv"
    summary = classify_file(path, out, model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    return out, summary


def test_rejects_identity_columns_and_order(messy, reference):
    path, expected, ids = messy
    out, s = reference
    rej_path, parts = output_paths(out, "csv")
    assert not parts.exists()
    assert s.rows_read == len(ids) + len(expected)
    assert s.rows_written == len(ids) and s.rows_rejected == len(expected)
    assert s.rows_read == s.rows_written + s.rows_rejected and s.balanced
    assert s.rejected_by_reason == {"no text": 2, "undecodable bytes (not UTF-8)": 1, "malformed CSV": 1}
    assert sum(s.agencies.values()) == s.rows_written
    assert 0 <= s.needs_review <= s.rows_written

    rows = read_csv(out)
    header = list(rows[0])
    assert header == HEADER + list(PRED_COLUMNS)  # input columns first, then predictions
    assert [r["id"] for r in rows] == ids          # input order, rejected rows left out
    assert rows[[r["id"] for r in rows].index("NL-1")]["text"] == "lampu jalan mati\nsudah seminggu di jl kenanga"
    for r in rows:
        assert r["agency"] and r["topic"]
        assert r["routed_to"] or "place_not_found" in r["review_reasons"]  # empty: no office resolved
        assert 0.0 <= float(r["agency_score"]) <= 1.0
        assert r["needs_review"] in ("True", "False")
        assert (r["needs_review"] == "True") == bool(r["review_reasons"])
        assert r["model_version"] == s.model_version
    assert sum(r["needs_review"] == "True" for r in rows) == s.needs_review

    # the rejects file: line numbers, reasons and the raw row, undecodable bytes kept as they came
    raw = rej_path.read_bytes()
    assert b"\xff\xfe" in raw
    with open(rej_path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        rej = list(csv.DictReader(fh))
    assert list(rej[0]) == ["line", "reason"] + HEADER + ["raw_record"]
    assert {int(r["line"]): r["reason"] for r in rej}.keys() == expected.keys()
    for r in rej:
        assert r["reason"].startswith(expected[int(r["line"])])
    assert [int(r["line"]) for r in rej] == sorted(expected)
    by_id = {r["id"]: r for r in rej if r["id"]}
    assert by_id["E-1"]["note"] == "empty" and by_id["E-2"]["note"] == "blank"
    # a line that could not be parsed into columns keeps its text, and only such a line has one
    malformed = [r for r in rej if r["reason"].startswith("malformed")]
    assert [r["raw_record"] for r in malformed] == ["M-1,too,many,fields,here"]
    assert all(r["raw_record"] == "" for r in rej if r not in malformed)


def test_jobs2_equals_jobs1(messy, reference, model_dir, tmp_path):
    path, _, _ = messy
    ref_out, _ = reference
    out = tmp_path / "routed.csv"
    s = classify_file(path, out, model_dir=model_dir, jobs=2, chunk_size=5, progress=False)
    assert s.jobs == 2
    assert out.read_bytes() == ref_out.read_bytes()
    assert output_paths(out, "csv")[0].read_bytes() == output_paths(ref_out, "csv")[0].read_bytes()


def test_rejects_header_never_names_a_column_twice(model_dir, tmp_path):
    """An input column named like a rejects column (line, reason, raw_record) pushes the rejects
    file's own columns to reject_line/reject_reason/reject_raw_record, so that the file reads back
    with every value; also for JSON Lines input whose keys vary from chunk to chunk."""
    def rejects_of(src, out, counts):
        s = classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=2, progress=False)
        assert (s.rows_written, s.rows_rejected) == counts
        with open(output_paths(out, "csv")[0], encoding="utf-8", newline="") as fh:
            return list(csv.reader(fh))

    good = corpus_rows()[:6]
    src = tmp_path / "in.csv"
    lines = [_csv_line(["id", "text", "line", "reason"])]
    for i, r in enumerate(good):
        lines.append(_csv_line([r["id"], r["text"], f"L{i}", "warga"]))
    lines.insert(3, _csv_line(["E-1", "", "L-e", "kosong"]))
    src.write_bytes(b"".join(lines))
    header, *body = rejects_of(src, tmp_path / "out.csv", (6, 1))
    assert header == ["reject_line", "reject_reason", "id", "text", "line", "reason", "reject_raw_record"]
    assert body == [["4", "no text", "E-1", "", "L-e", "kosong", ""]]

    # JSON Lines -> CSV: the chunks' rejects have different keys, so parts are rewritten by position
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": "J-1", "text": ""}),
        json.dumps({"id": "J-2", "text": good[0]["text"]}),
        json.dumps({"id": "J-3", "text": "", "raw_record": "x", "line": 9}),
        "{broken",
    ]) + "\n", encoding="utf-8")
    header, *body = rejects_of(src, tmp_path / "out2.csv", (1, 3))
    assert header == ["reject_line", "reject_reason", "id", "text", "raw_record", "line", "reject_raw_record"]
    assert [b[:2] for b in body[:2]] == [["1", "no text"], ["3", "no text"]]
    assert body[2][0] == "4" and body[2][1].startswith("malformed JSON")
    assert body[1][2:6] == ["J-3", "", "x", "9"] and body[0][2:] == ["J-1", "", "", "", ""]
    assert body[2][2:6] == ["", "", "", ""] and body[2][6] == "{broken"


def test_outputs_that_would_clobber_the_input_or_fail_late_are_refused_first(model_dir, tmp_path):
    src = tmp_path / "x.rejects.csv"
    src.write_bytes(_csv_line(["id", "text"]) + _csv_line(["1", "jalan rusak di depan rumah kami"]))
    before = src.read_bytes()
    with pytest.raises(BatchInputError, match="rejects file .* would be the input"):
        classify_file(src, tmp_path / "x.csv", model_dir=model_dir, jobs=1, progress=False)
    assert src.read_bytes() == before
    (tmp_path / "isdir").mkdir()
    with pytest.raises(BatchInputError, match="is a directory"):
        classify_file(src, tmp_path / "isdir", model_dir=model_dir, jobs=1, progress=False, out_fmt="csv")
    assert not (tmp_path / "isdir.parts").exists()
    with pytest.raises(BatchInputError, match="compressed"):
        classify_file(src, tmp_path / "out.csv.gz", model_dir=model_dir, jobs=1, progress=False)


def test_a_run_still_writing_is_not_called_interrupted(model_dir, tmp_path):
    from lapor_nlp.batch.workdir import Lock as _Lock

    src = tmp_path / "in.csv"
    src.write_bytes(_csv_line(["id", "text"]) + _csv_line(["1", "jalan rusak di depan rumah kami"]))
    parts = tmp_path / "out.csv.parts"
    parts.mkdir()
    held = _Lock(parts)  # what a live run holds
    try:
        with pytest.raises(BatchInputError, match="another run is writing"):
            classify_file(src, tmp_path / "out.csv", model_dir=model_dir, jobs=1, progress=False)
    finally:
        held.release()
    with pytest.raises(BatchInputError, match="earlier, interrupted run"):
        classify_file(src, tmp_path / "out.csv", model_dir=model_dir, jobs=1, progress=False)


def test_the_last_suffix_decides_the_format(model_dir, tmp_path):
    from lapor_nlp.io import detect_format

    assert detect_format("backlog.jsonl.out.csv") == "csv"
    assert detect_format("a.parquet.csv") == "csv" and detect_format("a.csv.jsonl") == "jsonl"


def test_values_that_cannot_be_written_as_utf8_are_rejected_not_a_crash(model_dir, tmp_path):
    text = corpus_rows(1)[0]["text"]
    src = tmp_path / "nested.jsonl"
    src.write_text(json.dumps({"id": "a", "text": text, "meta": {"x": "\ud800"}}) + "\n"
                   + json.dumps({"id": "b", "text": text, "meta": {"x": "ok"}}) + "\n"
                   + json.dumps({"id": "c", "text": text + " \ud800"}) + "\n", encoding="utf-8")
    for out in (tmp_path / "n.csv", tmp_path / "n.jsonl"):
        s = classify_file(src, out, model_dir=model_dir, jobs=1, progress=False)
        assert (s.rows_written, s.rows_rejected) == (1, 2)
        assert s.rejected_by_reason == {"undecodable bytes (not UTF-8)": 2}
    # the CSV rejects file writes a lone surrogate as its JSON escape (no UTF-8 bytes stand for it)
    rejected = output_paths(tmp_path / "n.csv", "csv")[0].read_bytes()
    assert rejected.count(b"\\ud800") == 2
    # JSON nested deeper than Python's recursion limit is checked without recursing
    deep = json.dumps({"id": "d", "text": text, "meta": json.loads("[" * 600 + "]" * 600)})
    (tmp_path / "deep.jsonl").write_text(deep + "\n", encoding="utf-8")
    s = classify_file(tmp_path / "deep.jsonl", tmp_path / "deep.out.jsonl", model_dir=model_dir,
                      jobs=1, progress=False)
    assert (s.rows_written, s.rows_rejected) == (1, 0)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "blob.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": [text, text], "blob": [b"\xff\xfe", b"ok"]}), src)
    for out in (tmp_path / "b.csv", tmp_path / "b.jsonl"):
        s = classify_file(src, out, model_dir=model_dir, jobs=1, progress=False)
        assert (s.rows_written, s.rows_rejected) == (1, 1)
        assert b"\xff" not in out.read_bytes()


def test_jsonl_and_parquet(model_dir, reference, messy, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    good = corpus_rows()[::40]
    lines = []
    for i, r in enumerate(good):
        lines.append(json.dumps({"id": r["id"], "text": r["text"], "n": i, "loc": {"regency": r.get("regency")}},
                                ensure_ascii=False).encode("utf-8") + b"\n")
    lines.insert(3, b'{"id": "J-1", "text": ""}\n')
    lines.insert(6, b'{"id": "J-2", "text": "broken json\n')
    lines.insert(9, b'{"id": "J-3", "text": "jalan \xff rusak"}\n')
    lines.insert(12, b'{"id": "J-4", "judul": "no text key"}\n')
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(lines))

    out = tmp_path / "out.jsonl"
    s = classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=4, progress=False)
    assert (s.rows_read, s.rows_written, s.rows_rejected) == (len(good) + 4, len(good), 4)
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in got] == [r["id"] for r in good]
    assert got[0]["n"] == 0 and isinstance(got[0]["loc"], dict)  # JSON values kept as they were
    assert set(PRED_COLUMNS) <= set(got[0])
    rej = [json.loads(x) for x in output_paths(out, "jsonl")[0].read_text(encoding="ascii").splitlines()]
    assert [r["line"] for r in rej] == [4, 7, 10, 13]
    assert [r["reason"].split(":")[0] for r in rej] == ["no text", "malformed JSON", "line is not valid UTF-8", "no text"]
    assert rej[0]["row"]["id"] == "J-1" and rej[3]["row"]["judul"] == "no text key"
    assert rej[1]["row"] is None and rej[1]["raw_record"] == '{"id": "J-2", "text": "broken json'
    assert rej[2]["raw_record"].encode("utf-8", "surrogateescape") == b'{"id": "J-3", "text": "jalan \xff rusak"}'
    assert rej[0]["raw_record"] is None

    # JSON Lines in, Parquet out: the same predictions
    outp = tmp_path / "out.parquet"
    s2 = classify_file(src, outp, model_dir=model_dir, jobs=1, chunk_size=4, progress=False)
    assert s2.rows_written == s.rows_written
    t = pq.read_table(outp).to_pylist()
    assert [r["id"] for r in t] == [g["id"] for g in got]
    assert [r["agency_score"] for r in t] == [g["agency_score"] for g in got]
    assert pq.read_schema(outp).field("needs_review").type == pa.bool_()

    # Parquet in (typed columns kept), Parquet out, equal to the CSV run of the same rows
    ref_out, _ = reference
    ref = read_csv(ref_out)
    pin = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [r["id"] for r in ref], "text": [r["text"] for r in ref],
                             "n": list(range(len(ref)))}), pin)
    pout = tmp_path / "routed.parquet"
    s3 = classify_file(pin, pout, model_dir=model_dir, jobs=1, chunk_size=6, progress=False)
    assert s3.rows_written == len(ref) and s3.rows_rejected == 0
    t = pq.read_table(pout)
    assert t.schema.field("n").type == pa.int64()
    rows = t.to_pylist()
    assert [r["n"] for r in rows] == list(range(len(ref)))
    for r, e in zip(rows, ref):
        # no office: null in Parquet, an empty cell in CSV
        assert (r["topic"], r["agency"], r["routed_to"] or "", r["review_reasons"]) == \
               (e["topic"], e["agency"], e["routed_to"], e["review_reasons"])
        assert repr(r["agency_score"]) == e["agency_score"]


def test_prefix_when_input_has_prediction_names(model_dir, tmp_path):
    src = tmp_path / "old.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "topic", "agency"])
        for r in corpus_rows()[:20]:
            w.writerow([r["text"], r["topic"], r["agency"]])
    out = tmp_path / "new.csv"
    classify_file(src, out, model_dir=model_dir, jobs=1, progress=False)
    rows = read_csv(out)
    assert list(rows[0]) == ["text", "topic", "agency"] + ["pred_" + c for c in PRED_COLUMNS]
    assert [r["agency"] for r in rows] == [r["agency"] for r in corpus_rows()[:20]]  # old labels kept


def test_missing_text_column_is_an_error(model_dir, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("id,isi\n1,jalan rusak\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="--text-col"):
        classify_file(src, tmp_path / "y.csv", model_dir=model_dir, jobs=1, progress=False)
    out = tmp_path / "z.csv"
    s = classify_file(src, out, model_dir=model_dir, jobs=1, progress=False, columns=Columns(text="isi", topic=None, agency=None))
    assert s.rows_written == 1


def test_unknown_optional_column_and_repeated_header_are_errors(model_dir, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("id,text\n1,jalan rusak\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="--regency-col 'kota'"):
        classify_file(src, tmp_path / "y.csv", model_dir=model_dir, jobs=1, progress=False,
                      columns=Columns(text="text", topic=None, agency=None, regency="kota"))
    # the default Columns() names label columns: classify does not need them
    assert classify_file(src, tmp_path / "z.csv", model_dir=model_dir, jobs=1, progress=False,
                         columns=Columns()).rows_written == 1
    twice = tmp_path / "twice.csv"
    twice.write_text("id,text,text\n1,jalan rusak,lampu mati\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="'text' more than once"):
        classify_file(twice, tmp_path / "w.csv", model_dir=model_dir, jobs=1, progress=False)
    assert not (tmp_path / "w.csv").exists()


def test_home_region_routes_placeless_complaints_and_is_part_of_the_job(model_dir, tmp_path, monkeypatch):
    """--home-region: complaints naming no place go to the portal's own offices (jobs=2 workers
    get the option too); an unknown region fails before any work; resuming with another region
    is refused, because the predictions would differ."""
    src = tmp_path / "noplace.csv"
    texts = ["Lampu penerangan jalan di depan rumah kami mati sudah seminggu, mohon diperbaiki",
             "Sampah menumpuk di pinggir jalan dan tidak diangkut petugas sudah lima hari"]
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([[t] for t in texts * 4])
    classify_file(src, tmp_path / "plain.csv", model_dir=model_dir, jobs=1, progress=False)
    assert not any("Surabaya" in r["routed_to"] for r in read_csv(tmp_path / "plain.csv"))
    for jobs in (1, 2):
        out = tmp_path / f"home{jobs}.csv"
        classify_file(src, out, model_dir=model_dir, jobs=jobs, chunk_size=3, progress=False,
                      home_region="Kota Surabaya")
        rows = read_csv(out)
        assert len(rows) == 8
        assert all(r["routed_to"].endswith("Kota Surabaya") for r in rows), [r["routed_to"] for r in rows]
        assert "place_not_found" not in ";".join(r["review_reasons"] for r in rows)
    with pytest.raises(InputValueError, match="Atlantis"):
        classify_file(src, tmp_path / "x.csv", model_dir=model_dir, jobs=2, progress=False,
                      home_region="Kota Atlantis")
    assert not output_paths(tmp_path / "x.csv", "csv")[1].exists()

    out = tmp_path / "y.csv"
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=3, progress=False)
    monkeypatch.undo()
    with pytest.raises(BatchInputError, match="different job.*router_options"):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=3, progress=False,
                      resume=True, home_region="Kota Surabaya")


def _interrupt_after(monkeypatch, n_chunks):
    import lapor_nlp.batch.executors as executors  # where the in-process executor finds run_chunk

    real = executors.run_chunk
    calls = {"n": 0}

    def flaky(router, spec, index, rows):
        if calls["n"] >= n_chunks:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(router, spec, index, rows)

    monkeypatch.setattr(executors, "run_chunk", flaky)


def test_resume_after_interrupt_and_refusals(messy, reference, model_dir, tmp_path, monkeypatch):
    path, _, _ = messy
    ref_out, ref_summary = reference
    src = tmp_path / "in.csv"
    src.write_bytes(path.read_bytes())
    st = src.stat()
    out = tmp_path / "routed.csv"
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    monkeypatch.undo()
    parts = output_paths(out, "csv")[1]
    assert len(list(parts.glob("part-*.meta.json"))) == 3
    assert not out.exists()  # a partial OUTPUT never appears

    with pytest.raises(BatchInputError, match="--resume"):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    with pytest.raises(BatchInputError, match="chunk_size"):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=8, resume=True, progress=False)
    changed = tmp_path / "changed.csv"
    changed.write_bytes(src.read_bytes().replace(b"n1\n", b"n9\n", 1))
    os.replace(changed, src)
    with pytest.raises(BatchInputError, match="different job.*input"):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=7, resume=True, progress=False)
    src.write_bytes(path.read_bytes())  # the original content, but a new mtime: still refused
    with pytest.raises(BatchInputError, match="mtime"):
        classify_file(src, out, model_dir=model_dir, jobs=1, chunk_size=7, resume=True, progress=False)

    # the original file with its identity restored: resumed (with other jobs), finished, equal
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = classify_file(src, out, model_dir=model_dir, jobs=2, chunk_size=7, resume=True, progress=False)
    assert s.chunks_resumed == 3 and s.balanced
    assert (s.rows_read, s.rows_written, s.rows_rejected) == \
           (ref_summary.rows_read, ref_summary.rows_written, ref_summary.rows_rejected)
    assert out.read_bytes() == ref_out.read_bytes()
    assert output_paths(out, "csv")[0].read_bytes() == output_paths(ref_out, "csv")[0].read_bytes()
    assert not parts.exists()


def test_cli_exit_codes_and_summary(messy, reference, model_dir, tmp_path, capsys):
    path, expected, ids = messy
    out = tmp_path / "cli.csv"
    # the reference reads no location column; the command line would find `regency` by name
    rc = main(["classify", str(path), "-o", str(out), "--model", str(model_dir), "--jobs", "1",
               "--chunk-size", "9", "--regency-col", ""])
    assert rc == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out.strip().splitlines()[-1])
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_rejected"] == len(ids) + len(expected)
    assert "rows rejected" in cap.err and "per agency" in cap.err and "ok" in cap.err
    assert out.read_bytes() == reference[0].read_bytes()
    (tmp_path / "cli.csv.parts").mkdir()
    assert main(["classify", str(path), "-o", str(out), "--model", str(model_dir), "--jobs", "1"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["classify", str(path), "-o", str(out), "--jobs", "0"]) == 2


def _big_csv(path: Path, n: int) -> None:
    rows = corpus_rows()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "text", "regency"])
        for i in range(n):
            r = rows[i % len(rows)]
            text = r["text"] if i % 997 else ""  # a few rejects too
            w.writerow([f"K{i:06d}", text, r.get("regency", "")])


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_sigkill_then_resume_equals_uninterrupted_run(model_dir, tmp_path):
    src = tmp_path / "backlog.csv"
    n = 20_000
    _big_csv(src, n)
    ref = tmp_path / "ref.csv"
    # the command line below finds the `regency` column by name: the reference reads it too
    ref_summary = classify_file(src, ref, model_dir=model_dir, jobs=1, chunk_size=400, progress=False,
                                columns=Columns(text="text", topic=None, agency=None, regency="regency"))
    assert ref_summary.rows_read == n and ref_summary.rows_rejected == len(range(0, n, 997))

    out = tmp_path / "killed.csv"
    parts = output_paths(out, "csv")[1]
    cmd = [sys.executable, "-m", "lapor_nlp", "-q", "classify", str(src), "-o", str(out),
           "--model", str(model_dir), "--chunk-size", "400"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd + ["--jobs", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts.glob("part-*.meta.json"))) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-500:]}"
    helpers = _descendants(proc.pid)  # the workers (and on Linux their fork server); /proc only
    assert len(helpers) >= 2 or not sys.platform.startswith("linux")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    # none of them outlives the run (each would hold the model): PR_SET_PDEATHSIG down the chain
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in helpers):
        time.sleep(0.05)
    assert not [p for p in helpers if _running(p)]
    finished = len(list(parts.glob("part-*.meta.json")))
    assert 5 <= finished < n // 400
    assert not out.exists()  # never a partial OUTPUT under its final name

    # without --resume: refused; with it: finished, row for row equal to the uninterrupted run
    r = subprocess.run(cmd + ["--jobs", "1"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "--resume" in r.stderr
    time.sleep(0.2)  # the killed run's workers die with it (PR_SET_PDEATHSIG)
    r = subprocess.run(cmd + ["--jobs", "1", "--resume"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["chunks_resumed"] >= finished
    assert (summary["rows_read"], summary["rows_written"], summary["rows_rejected"]) == \
           (ref_summary.rows_read, ref_summary.rows_written, ref_summary.rows_rejected)
    got, want = read_csv(out), read_csv(ref)
    assert len(got) == len(want) == ref_summary.rows_written
    for a, b in zip(got, want):
        assert a == b
    assert out.read_bytes() == ref.read_bytes()
    assert output_paths(out, "csv")[0].read_bytes() == output_paths(ref, "csv")[0].read_bytes()
    assert not parts.exists()


def test_resume_refuses_parts_written_by_another_version(model_dir, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("id,text\n1,jalan rusak parah\n", encoding="utf-8")
    out = tmp_path / "y.csv"
    parts = output_paths(out, "csv")[1]
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"version": 1, "input": {}, "options": {}}))
    with pytest.raises(BatchInputError, match="another lapor-nlp version"):
        classify_file(src, out, model_dir=model_dir, jobs=1, progress=False, resume=True)


def test_old_import_paths_warn_and_still_work():
    """lapor_nlp.batch was one module and lapor_nlp.distributed its Dask side: their names still
    resolve for one release, with a DeprecationWarning, to the same objects."""
    import importlib
    import warnings

    import lapor_nlp.batch as batch
    from lapor_nlp.batch import chunk, dask, executors, workdir

    for name, new in (("run_chunk", chunk.run_chunk), ("get_router", executors.get_router),
                      ("_Lock", workdir.Lock), ("Columns", Columns)):
        with pytest.warns(DeprecationWarning, match=f"lapor_nlp.batch.{name}"):
            assert getattr(batch, name) is new
    with pytest.raises(AttributeError):
        batch.no_such_name
    sys.modules.pop("lapor_nlp.distributed", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("lapor_nlp.distributed")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert old.classify is dask.classify and old.worker_model_loads is dask.worker_model_loads



def test_a_desk_classifies_its_backlog_among_its_units(model_dir, tmp_path):
    src = tmp_path / "desk.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerow(["1", "paspor saya sudah tiga minggu belum jadi di kantor imigrasi"])
        w.writerow(["2", "keluarga napi dimintai uang saat besuk di lapas"])
        w.writerow(["3", "jalan berlubang di depan pasar sudah tiga bulan, Kabupaten Tulungagung"])
    out = tmp_path / "desk.out.csv"
    summary = classify_file(src, out, model_dir=model_dir, jobs=1, progress=False, scope="kemenimipas")
    assert summary.rows_written == 3 and summary.rows_rejected == 0
    with out.open(encoding="utf-8", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert {r["agency"] for r in rows.values()} <= {"imigrasi", "pemasyarakatan"}
    assert (rows["1"]["agency"], rows["2"]["agency"]) == ("imigrasi", "pemasyarakatan")
    assert "outside_scope" in rows["3"]["review_reasons"]
    with pytest.raises(InputValueError, match="unknown scope"):
        classify_file(src, tmp_path / "x.csv", model_dir=model_dir, jobs=1, progress=False, scope="kemensihir")
    assert not (tmp_path / "x.csv").exists()


def test_the_stderr_summary_shows_the_ten_largest_agencies_and_the_json_keeps_all():
    """Review finding: 2,000 rows printed 94 agency lines on stderr."""
    from lapor_nlp.batch.summary import Summary

    agencies = {f"agency_{i:02d}": 100 - i for i in range(14)}
    s = Summary(input="in.csv", output="out.csv", rejects="out.rejects.csv", rows_read=sum(agencies.values()),
                rows_written=sum(agencies.values()), agencies=agencies)
    text = s.format()
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("    agency_")]
    assert listed == [f"agency_{i:02d}" for i in range(10)]
    assert f"… and 4 more ({sum(range(87, 91))} rows" in text
    assert s.to_dict()["agencies"] == agencies
    assert "more" not in Summary(input="a", output="b", rejects="c", agencies={"x": 1}).format()


def test_prediction_values_from_columns_equal_those_from_records(model_dir):
    """classify reads each row's prediction values from the router's columns (predict_values);
    they must be what the records give, refusals included, in input order."""
    from lapor_nlp import Router
    from lapor_nlp.batch.rows import predict_items, predict_values, prediction_values

    router = Router.load(model_dir, home_region="Kota Surabaya")
    items = [r["text"] for r in corpus_rows()[::40]]
    items[3:3] = ["  ", "air \udcff mati", {"text": "lampu mati", "location": {"subdistrict": "Gubeng"}},
                  {"text": "x", "umur": 1}, "sampah di jalan tidak diangkut"]
    want = [prediction_values(r) if isinstance(r, dict) else r for r in predict_items(router, items)]
    got = predict_values(router, items)
    assert got == want
    assert sum(isinstance(v, str) for v in got) == 3 and len(got) == len(items)

    class RecordsOnly:  # a router without route(): the records are read instead
        version = router.version

        def predict_records(self, items, **options):
            return router.predict_records(items, **options)

    assert predict_values(RecordsOnly(), items) == want
    assert predict_values(router, []) == []


def test_a_chunk_is_one_batch_for_the_garbage_collector(messy, model_dir, tmp_path, monkeypatch):
    """Reading a chunk and making its rows' items and output run with the router's batch pause
    (young collections every 10,000 allocations, the collector still on), restored afterwards."""
    import gc

    import lapor_nlp.batch.chunk as chunk
    import lapor_nlp.batch.inputs as inputs

    seen, read = [], []
    real_row_item, real_iter_rows = chunk.row_item, inputs.iter_rows

    def spy(*args, **kwargs):
        seen.append((gc.isenabled(), gc.get_threshold()[0]))
        return real_row_item(*args, **kwargs)

    def reading(*args, **kwargs):  # the rows of a chunk, as this process reads them (--jobs 1)
        for row in real_iter_rows(*args, **kwargs):
            read.append((gc.isenabled(), gc.get_threshold()[0]))
            yield row

    monkeypatch.setattr(chunk, "row_item", spy)
    monkeypatch.setattr(inputs, "iter_rows", reading)
    before = gc.get_threshold()
    path, _, _ = messy
    classify_file(path, tmp_path / "out.csv", model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    assert seen and set(seen) == {(True, 10_000)}
    assert read and set(read) == {(True, 10_000)}
    assert gc.isenabled() and gc.get_threshold() == before


def test_a_pool_worker_ends_without_the_interpreters_teardown():
    """The exit handler a pool worker registers last ends the process at once (the earlier
    handlers, the interpreter's teardown, are skipped), with its output flushed and status 0."""
    code = ("import atexit, sys\n"
            "from lapor_nlp.batch.executors import _exit_without_teardown\n"
            "atexit.register(print, 'teardown ran')\n"
            "atexit.register(_exit_without_teardown)\n"
            "sys.stdout.write('written, not yet flushed')\n"
            "sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, "written, not yet flushed")


def test_a_pool_worker_registers_the_quick_exit(model_dir):
    """What the pool's initializer leaves behind: a worker whose interpreter exits skips the
    handlers registered before (here one that would print) and ends with status 0."""
    code = ("import atexit, os, sys, types\n"
            "atexit.register(print, 'teardown ran')\n"
            "from lapor_nlp.batch.executors import _WORKER, _init_worker\n"
            f"_init_worker({str(model_dir)!r}, types.SimpleNamespace(router_options={{}}), os.getppid())\n"
            "assert 'error' not in _WORKER and _WORKER['router'] is not None\n"
            "sys.stdout.write('ready')\n"
            "sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout) == (0, "ready"), run.stderr


def test_a_pool_starts_every_worker_at_once_and_the_checks_run_while_they_start(model_dir, tmp_path, monkeypatch):
    """The pool spawns all its workers when it is made (not one per early submit), and the run's
    own checks (the model's version, the options) come after the workers were started, so that
    they load the model meanwhile; a check that fails stops the workers."""
    from lapor_nlp.batch import executors
    from lapor_nlp.batch.chunk import ChunkSpec

    pool = executors.ProcessPool(str(model_dir), ChunkSpec(columns=None, output=None, rejects=None, prefix="",
                                                           layout=None), 2)
    try:
        assert len(pool.pool._processes) == 2
    finally:
        pool.close(True)

    order = []
    real_start, real_version = executors.LocalExecutor.start, executors.LocalExecutor.model_version
    monkeypatch.setattr(executors.LocalExecutor, "start",
                        lambda self, *a: order.append("start") or real_start(self, *a))
    monkeypatch.setattr(executors.LocalExecutor, "model_version",
                        lambda self, key: order.append("checks") or real_version(self, key))
    src = tmp_path / "in.csv"
    src.write_text("text\njalan rusak di depan pasar\n", encoding="utf-8")
    classify_file(src, tmp_path / "out.csv", model_dir=model_dir, jobs=2, progress=False)
    assert order == ["start", "checks"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is used on Linux")
def test_pool_workers_start_with_the_model_the_fork_server_loaded_and_the_server_ends_with_the_pool(model_dir):
    """On Linux a pool's workers are forked from a fork server that loaded the model once: no
    worker loads it again, and the server this run started is stopped when the pool closes (no
    process left holding the model)."""
    from multiprocessing import forkserver

    from lapor_nlp.batch import executors
    from lapor_nlp.batch.chunk import ChunkSpec
    from lapor_nlp.batch.preload import preloaded

    pool = executors.ProcessPool(str(model_dir), ChunkSpec(columns=None, output=None, rejects=None, prefix="",
                                                           layout=None), 2)
    try:
        server_pid = forkserver._forkserver._forkserver_pid
        assert server_pid is not None
        seen = [pool.pool.submit(preloaded).result(timeout=120) for _ in range(4)]
        # the router came with the fork: loaded once, by the server, and in no worker again
        assert seen == [([str(model_dir)], {str(model_dir): 1})] * 4
    finally:
        pool.close(True)
    assert forkserver._forkserver._forkserver_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is used on Linux")
def test_a_pool_leaves_the_callers_fork_server_settings_and_processes_alone(model_dir):
    """The caller's preload list is kept; and a pool of the caller's own that the run's fork server
    served meanwhile neither blocks the run's end nor breaks."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    from lapor_nlp.batch import executors
    from lapor_nlp.batch.chunk import ChunkSpec

    server = forkserver._forkserver
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["json"])
    try:
        pool = executors.ProcessPool(str(model_dir), ChunkSpec(columns=None, output=None, rejects=None,
                                                               prefix="", layout=None), 2)
        assert server._preload_modules == ["json"]
        theirs = ctx.Pool(1)  # served by the run's fork server, as it is the one running
        try:
            assert theirs.apply(abs, (-3,)) == 3
            closing = threading.Thread(target=pool.close, args=(True,))
            closing.start()
            closing.join(20)
            assert not closing.is_alive()  # (it would wait for their pool to end)
            assert theirs.apply(abs, (-4,)) == 4
        finally:
            theirs.close()
            theirs.join()
    finally:
        ctx.set_forkserver_preload(["__main__"])
