"""Backlog runs under faults: a kill during the final join, a full disk, UTF-16 input, Ctrl-C
before and after chunks finished, and what a run shows of its progress (rows, not newlines; a log
line when stderr is not a terminal)."""

from __future__ import annotations

import builtins
import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lapor_nlp.batch import classify_file, output_paths
from lapor_nlp.batch import run as batch_run
from lapor_nlp.batch.inputs import InputFile
from lapor_nlp.cli import main
from lapor_nlp.errors import BatchInputError, BatchWriteError
from lapor_nlp.resources import dataset_path
from test_batch import _interrupt_after  # Ctrl-C after n chunks

REPO = Path(__file__).resolve().parent.parent


def corpus_texts(n: int) -> list[dict]:
    rows = []
    for p in sorted(dataset_path("corpus").glob("*.jsonl")):
        rows += [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows[:: max(1, len(rows) // n)][:n]


def write_backlog(path: Path, n: int = 40, line_breaks: bool = False) -> Path:
    """A CSV backlog of ``n`` corpus complaints; with ``line_breaks`` every other text holds two."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "text"])  # no location column: the CLI and Python read the same columns
        for i, r in enumerate(corpus_texts(n)):
            text = r["text"]
            if line_breaks and i % 2:
                text = f"{text}\n\nMohon segera ditindaklanjuti.\nTerima kasih"
            w.writerow([f"B{i:04d}", text])
    return path


@pytest.fixture
def backlog(tmp_path) -> Path:
    return write_backlog(tmp_path / "backlog.csv")


@pytest.fixture
def reference(backlog, model_dir, tmp_path) -> Path:
    out = tmp_path / "ref" / "routed.csv"
    classify_file(backlog, out, model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    return out


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".tmp"))


def test_a_kill_during_the_final_join_leaves_no_tmp_after_resume(backlog, reference, model_dir, tmp_path):
    out = tmp_path / "run" / "routed.csv"
    # SIGKILL the run itself just as the joined OUTPUT would be renamed into place
    script = f"""
import os, signal
real = os.replace
def replace(src, dst, *a, **k):
    if os.fspath(dst) == {str(out)!r}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
from lapor_nlp.batch import classify_file
classify_file({str(backlog)!r}, {str(out)!r}, model_dir={str(model_dir)!r}, jobs=1, chunk_size=7,
              progress=False)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not out.exists()
    s = classify_file(backlog, out, model_dir=model_dir, jobs=1, chunk_size=7, resume=True, progress=False)
    assert s.balanced and s.chunks_resumed == s.chunks
    assert out.read_bytes() == reference.read_bytes()
    assert leftovers(tmp_path / "run") == []
    assert not output_paths(out, "csv")[1].exists()


class DiskFull:
    """Fault injection: files opened for writing whose path ``when(path)`` accepts fail their
    first write with ENOSPC, as a full disk makes them fail."""

    def __init__(self, monkeypatch, when):
        real_open = builtins.open

        class Failing:
            def __init__(self, fh):
                self._fh = fh

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self._fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._fh.close()

        def fake_open(file, mode="r", *args, **kwargs):
            fh = real_open(file, mode, *args, **kwargs)
            if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax") and when(Path(file)):
                self.hits += 1
                return Failing(fh)
            return fh

        self.hits = 0
        monkeypatch.setattr(builtins, "open", fake_open)


@pytest.mark.parametrize("where", ["part", "join"])
def test_a_full_disk_ends_classify_with_one_line_and_the_data_safe(where, backlog, reference, model_dir,
                                                                   tmp_path, monkeypatch, capsys):
    out = tmp_path / "run" / "routed.csv"
    if where == "part":  # the 4th chunk cannot be written
        when = lambda p: p.name.startswith(".part-0000003.")  # noqa: E731
    else:  # every chunk is written, then the join of OUTPUT fails
        when = lambda p: p.name.startswith(".routed.csv.")  # noqa: E731
    fault = DiskFull(monkeypatch, when)
    rc = main(["-q", "classify", str(backlog), "-o", str(out), "--model", str(model_dir), "--jobs", "1",
               "--chunk-size", "7"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert fault.hits >= 1
    assert rc == 1
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "[LAPOR-E042]" in err and "No space left on device" in err and "free some space" in err
    parts = output_paths(out, "csv")[1]
    kept = len(list(parts.glob("part-*.meta.json")))
    assert kept == (3 if where == "part" else 6)
    assert f"the {kept} finished chunk(s) are kept" in err
    assert not out.exists() and leftovers(tmp_path / "run") == []
    s = classify_file(backlog, out, model_dir=model_dir, jobs=1, chunk_size=7, resume=True, progress=False)
    assert s.chunks_resumed == kept and out.read_bytes() == reference.read_bytes()


def test_a_full_disk_is_a_typed_error_from_python_too(backlog, model_dir, tmp_path, monkeypatch):
    DiskFull(monkeypatch, lambda p: p.name.startswith(".part-0000000."))
    with pytest.raises(BatchWriteError, match="nothing is kept") as err:
        classify_file(backlog, tmp_path / "o.csv", model_dir=model_dir, jobs=1, chunk_size=7, progress=False)
    assert isinstance(err.value, OSError)
    assert not output_paths(tmp_path / "o.csv", "csv")[1].exists()  # nothing to resume: no directory


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_utf16_input_is_refused_not_classified(encoding, fmt, model_dir, tmp_path, capsys):
    src = tmp_path / f"backlog.{fmt}"
    if fmt == "csv":
        text = "id,text\n1,jalan rusak di Kota Malang\n2,lampu jalan mati\n"
    else:
        text = '{"id": 1, "text": "jalan rusak di Kota Malang"}\n{"id": 2, "text": "lampu mati"}\n'
    src.write_bytes(text.encode(encoding))
    with pytest.raises(BatchInputError, match="UTF-(16|32)"):
        classify_file(src, tmp_path / f"out.{fmt}", model_dir=model_dir, jobs=1, progress=False)
    assert main(["classify", str(src), "-o", str(tmp_path / f"o.{fmt}"), "--model", str(model_dir)]) == 1
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "iconv" in err and "Traceback" not in err
    assert not (tmp_path / f"out.{fmt}").exists()


def test_utf8_with_a_bom_is_still_read(model_dir, tmp_path):
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbf" + "id,text\n1,jalan rusak di Kota Malang\n".encode())
    s = classify_file(src, tmp_path / "o.csv", model_dir=model_dir, jobs=1, progress=False)
    assert s.rows_written == 1


@pytest.mark.parametrize("finished", [0, 3])
def test_ctrl_c_says_what_is_kept(finished, backlog, model_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "routed.csv"
    _interrupt_after(monkeypatch, finished)
    rc = main(["-q", "classify", str(backlog), "-o", str(out), "--model", str(model_dir), "--jobs", "1",
               "--chunk-size", "7"])
    err = capsys.readouterr().err
    assert rc == 130
    parts = output_paths(out, "csv")[1]
    if finished:
        assert len(list(parts.glob("part-*.meta.json"))) == finished
        assert f"{finished} finished chunk(s) are kept in {parts}" in err and "--resume" in err
    else:
        assert not parts.exists()
        assert "nothing is kept" in err and "are kept" not in err and "--resume" not in err


def test_the_progress_total_counts_rows_not_line_breaks(model_dir, tmp_path, monkeypatch):
    src = write_backlog(tmp_path / "multi.csv", n=60, line_breaks=True)
    raw_lines = src.read_bytes().count(b"\n") - 1
    assert raw_lines > 60 * 1.5  # the texts' own line breaks would inflate a newline count
    assert InputFile.open(src, "csv").estimate_rows() == 60
    lines = []
    monkeypatch.setattr(batch_run, "LOG_EVERY_S", 0.0)
    s = classify_file(src, tmp_path / "o.csv", model_dir=model_dir, jobs=1, chunk_size=20, progress=True,
                      log=lines.append)
    assert s.rows_read == 60
    progress = [x for x in lines if x.startswith("classify:")]
    assert progress[-1].startswith("classify: 60 of ~60 rows (100%)")


def test_a_log_line_shows_progress_when_stderr_is_not_a_terminal(backlog, model_dir, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.setattr(batch_run, "LOG_EVERY_S", 0.0)  # every chunk (30 s in real runs)
    assert not sys.stderr.isatty()
    rc = main(["classify", str(backlog), "-o", str(tmp_path / "o.csv"), "--model", str(model_dir),
               "--jobs", "1", "--chunk-size", "10"])
    assert rc == 0
    err = capsys.readouterr().err
    progress = [x for x in err.splitlines() if x.startswith("lapor-nlp: classify: ")]
    assert [p.split(" of ")[0] for p in progress] == [f"lapor-nlp: classify: {n}" for n in (10, 20, 30, 40)]
    assert all(" of ~40 rows (" in p and "rows/s" in p for p in progress)
    assert "left" in progress[0]


def test_no_progress_lines_with_quiet_or_between_intervals(backlog, model_dir, tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(batch_run, "LOG_EVERY_S", 3600.0)
    classify_file(backlog, tmp_path / "o.csv", model_dir=model_dir, jobs=1, chunk_size=10, progress=True,
                  log=lines.append)
    assert not [x for x in lines if x.startswith("classify:")]
