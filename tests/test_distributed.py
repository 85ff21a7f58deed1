"""Classification on Dask: a real LocalCluster with 2 worker processes gives exactly the
single-machine results, and each worker process loads the model once."""

from __future__ import annotations

import csv
import logging
import json

import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from lapor_nlp.batch import PRED_COLUMNS, classify_file, output_paths  # noqa: E402
from lapor_nlp.resources import dataset_path  # noqa: E402


def corpus_rows():
    rows = []
    for p in sorted(dataset_path("corpus").glob("*.jsonl")):
        rows += [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=logging.ERROR) as lc, Client(lc) as client:
        yield lc, client


@pytest.fixture(scope="module")
def backlog(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "backlog.csv"
    rows = corpus_rows()[::6]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "regency"])
        for i, r in enumerate(rows):
            w.writerow([r["id"], "" if i in (7, 300) else r["text"], r.get("regency", "")])
    return path


@pytest.fixture(scope="module")
def local(backlog, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "routed.csv"
    summary = classify_file(backlog, out, model_dir=model_dir, jobs=1, chunk_size=100, progress=False)
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return out, summary, rows


def _cell(v):
    from lapor_nlp.batch.formats import cell

    if v is None or (isinstance(v, float) and v != v):
        return ""
    return cell(bool(v) if type(v).__name__ == "bool_" else v)


def test_dask_dataframe_equals_single_machine(cluster, backlog, local, model_dir):
    from lapor_nlp.batch.dask import classify

    _, summary, want = local
    ddf = classify(str(backlog), model=model_dir, blocksize="40KB")
    assert ddf.npartitions >= 2
    got = ddf.compute()
    assert list(got.columns) == ["id", "text", "regency", *PRED_COLUMNS, "reject_reason"]
    rejected = got[got["reject_reason"].notna()]
    assert list(rejected["reject_reason"]) == ["no text", "no text"]
    assert rejected[list(PRED_COLUMNS)].isna().all().all()
    ok = got[got["reject_reason"].isna()]
    assert len(ok) == summary.rows_written == len(want)
    assert list(ok["id"]) == [r["id"] for r in want]
    for (_, g), w in zip(ok.iterrows(), want):
        assert [_cell(g[c]) for c in PRED_COLUMNS] == [w[c] for c in PRED_COLUMNS]


def test_csv_files_with_bad_lines_lose_no_row(cluster, backlog, local, model_dir, tmp_path):
    """A glob of CSV files (one partition each): a malformed line and undecodable bytes stay rows,
    with null predictions and the reason (and line) in reject_reason; the rest equal the
    single-machine results."""
    from lapor_nlp.batch.dask import classify

    _, _, want = local
    lines = backlog.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    half = len(body) // 2
    (tmp_path / "a.csv").write_bytes(header + b"".join(body[:half]))
    (tmp_path / "b.csv").write_bytes(header + b"X-1,too,many,fields\n" + b"".join(body[half:])
                                     + b"X-2,jalan rusak \xff\xfe parah,Kota Malang\n")
    ddf = classify(str(tmp_path / "*.csv"), model=model_dir)
    assert ddf.npartitions == 2
    got = ddf.compute()
    assert list(got.columns) == ["id", "text", "regency", *PRED_COLUMNS, "reject_reason"]
    assert len(got) == len(body) + 2
    assert sorted(got["reject_reason"].dropna()) == sorted([
        "no text", "no text", "line 2: malformed CSV: 4 fields, header has 3",
        f"line {len(body) - half + 3}: undecodable bytes (not UTF-8)"])
    assert got[got["reject_reason"].notna()][list(PRED_COLUMNS)].isna().all().all()
    assert "X-2" in set(got["id"])  # the decodable fields of that row are kept
    ok = got[got["reject_reason"].isna()]
    assert list(ok["id"]) == [r["id"] for r in want]
    assert list(ok["agency"]) == [r["agency"] for r in want]


def test_jsonl_files_with_bad_lines_lose_no_row(cluster, local, model_dir, tmp_path):
    """JSON Lines paths: a malformed line, a non-object line and undecodable bytes stay rows with
    their reason; keys that only later lines have are columns too; the rest equal classify_file."""
    import json

    from lapor_nlp.batch.dask import classify

    _, _, want = local
    good = [json.dumps({"id": r["id"], "text": r["text"], "regency": r["regency"]}).encode() + b"\n"
            for r in want[:40]]
    good[5] = json.dumps({"id": want[5]["id"], "text": want[5]["text"], "regency": want[5]["regency"],
                          "channel": "wa"}).encode() + b"\n"
    (tmp_path / "a.jsonl").write_bytes(b"".join(good[:20]) + b'{"id": "J-1", "text": \n' + b"[1, 2]\n")
    (tmp_path / "b.jsonl").write_bytes(b'{"id": "J-2", "text": "jalan \xff rusak"}\n' + b"".join(good[20:]))
    got = classify(str(tmp_path / "*.jsonl"), model=model_dir).compute()
    assert list(got.columns) == ["id", "text", "regency", "channel", *PRED_COLUMNS, "reject_reason"]
    assert len(got) == 43
    assert sorted(got["reject_reason"].dropna()) == [
        "line 1: line is not valid UTF-8", "line 21: malformed JSON: Expecting value",
        "line 22: a JSON line must be an object"]
    ok = got[got["reject_reason"].isna()]
    assert list(ok["id"]) == [r["id"] for r in want[:40]]
    assert list(ok["agency"]) == [r["agency"] for r in want[:40]]
    assert list(ok["channel"].fillna("")).count("wa") == 1


def test_jsonl_values_keep_their_json_types(cluster, model_dir, tmp_path):
    """As classify_file writes them: numbers, booleans and null stay so; objects become JSON text."""
    import json

    from lapor_nlp.batch.dask import classify

    text = "jalan rusak parah di depan sekolah mohon segera diperbaiki"
    src = tmp_path / "typed.jsonl"
    src.write_text(json.dumps({"id": 7, "text": text, "n": 2.5, "urgent": True, "loc": {"rt": 3}}) + "\n"
                   + json.dumps({"id": 8, "text": text, "n": None, "urgent": False}) + "\n", encoding="utf-8")
    got = classify(str(src), model=model_dir).compute()
    rows = got[["id", "n", "urgent", "loc"]].to_dict("records")
    assert rows[0] == {"id": 7, "n": 2.5, "urgent": True, "loc": '{"rt": 3}'}
    assert rows[1]["id"] == 8 and rows[1]["n"] is None and rows[1]["urgent"] is False
    assert rows[1]["loc"] != rows[1]["loc"]  # a key the line does not have: missing (NaN)
    out = tmp_path / "typed.out.jsonl"
    classify_file(src, out, model_dir=model_dir, jobs=1, progress=False)
    single = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["n"], r["urgent"], r["agency"]) for r in single] == \
        [(r["id"], r["n"], r["urgent"], r["agency"]) for r in got.to_dict("records")]


def test_a_cluster_run_that_finishes_no_chunk_leaves_nothing_behind(backlog, model_dir, tmp_path):
    import dask

    from lapor_nlp.cli import main

    out = tmp_path / "x.csv"
    # Nothing listens there: give up after 1 s instead of Dask's default 30 s of retries.
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = main(["-q", "classify", str(backlog), "-o", str(out), "--model", str(model_dir),
                   "--scheduler", "tcp://127.0.0.1:9"])
    assert rc == 1
    assert not out.exists() and not output_paths(out, "csv")[1].exists()


def test_pandas_input(cluster, local, model_dir):
    import pandas as pd

    from lapor_nlp.batch.dask import classify

    _, _, want = local
    pdf = pd.DataFrame({"id": [r["id"] for r in want[:50]], "text": [r["text"] for r in want[:50]],
                        "regency": [r["regency"] for r in want[:50]]})
    got = classify(pdf, model=model_dir, chunk_size=20).compute()
    assert list(got["agency"]) == [r["agency"] for r in want[:50]]
    assert [repr(x) for x in got["topic_score"]] == [r["topic_score"] for r in want[:50]]


def test_classify_file_on_the_cluster_equals_local(cluster, backlog, local, model_dir, tmp_path):
    _, client = cluster
    ref_out, ref_summary, _ = local
    out = tmp_path / "routed.csv"
    s = classify_file(backlog, out, model_dir=model_dir, chunk_size=50, client=client, progress=False)
    assert s.jobs == 2
    assert (s.rows_read, s.rows_written, s.rows_rejected) == \
           (ref_summary.rows_read, ref_summary.rows_written, ref_summary.rows_rejected)
    assert out.read_bytes() == ref_out.read_bytes()
    assert output_paths(out, "csv")[0].read_bytes() == output_paths(ref_out, "csv")[0].read_bytes()


def test_cli_scheduler(cluster, backlog, local, model_dir, tmp_path, capsys):
    from lapor_nlp.cli import main

    lc, _ = cluster
    ref_out, _, _ = local
    out = tmp_path / "cli.csv"
    rc = main(["-q", "classify", str(backlog), "-o", str(out), "--model", str(model_dir),
               "--scheduler", lc.scheduler_address, "--chunk-size", "64",
               "--regency-col", ""])  # the local run reads no location column; the CLI would find `regency`
    assert rc == 0, capsys.readouterr().err
    assert out.read_bytes() == ref_out.read_bytes()


def test_model_loaded_once_per_worker(cluster, backlog, model_dir):
    from lapor_nlp.batch.dask import classify, worker_model_loads

    lc, client = cluster
    classify(str(backlog), model=model_dir, blocksize="20KB").compute()  # many tasks on each worker
    loads = worker_model_loads(client)
    assert len(loads) == 2
    key = str(model_dir.resolve())
    assert all(counts == {key: 1} for counts in loads.values()), loads

