"""The command line as a user meets it: --help, --version, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lapor_nlp import __version__


def cli(*args, env=None, input=None):
    return subprocess.run([sys.executable, "-m", "lapor_nlp", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, input=input, timeout=600)


def test_help_and_version():
    r = cli("--help")
    assert r.returncode == 0
    for verb in ("predict", "preprocess", "train", "evaluate", "classify", "serve", "schemas"):
        assert verb in r.stdout
    r = cli("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_no_command_and_bad_usage_exit_2():
    assert cli().returncode == 2
    r = cli("train")
    assert r.returncode == 2 and "--data" in r.stderr


def test_preprocess_prints_each_stage_with_pii_masked():
    r = cli("preprocess", "Lampu PJU mati, hub 0812-3456-7890 tlg ya")
    assert r.returncode == 0
    assert "[TELEPON]" in r.stdout and "3456" not in r.stdout
    for stage in ("mask_pii", "clean", "tokenize", "normalize", "stopwords", "stem", "tokens"):
        assert f"{stage}:" in r.stdout
    r = cli("preprocess", "--json", "-", input="air tdk ngalir\njalan rusak\n")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 2 and "tidak" in lines[0]["stem"]


def test_predict_with_a_model_prints_json_on_stdout(model_dir):
    r = cli("-q", "predict", "--model", str(model_dir),
            "Lampu PJU di jalan kami mati sudah seminggu, Kota Malang")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["agency"]["label"] == "dishub" and p["routed_to"] == "Dinas Perhubungan Kota Malang"
    assert r.stderr == ""


def test_predict_home_region_for_a_complaint_that_names_no_place(model_dir):
    text = "Lampu PJU di jalan depan rumah kami mati sudah seminggu"
    r = cli("-q", "predict", "--model", str(model_dir), "--home-region", "Kota Surabaya", text)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["routed_to"] == "Dinas Perhubungan Kota Surabaya"
    assert p["jurisdiction"]["source"] == "model_default"
    r = cli("-q", "predict", "--model", str(model_dir), "--home-region", "Kota Atlantis", text)
    assert r.returncode == 1 and "Atlantis" in r.stderr and r.stdout == ""


def test_errors_go_to_stderr_with_exit_1(tmp_path):
    r = cli("predict", "--model", str(tmp_path / "nope"), "air mati")
    assert r.returncode == 1
    assert "LAPOR-E032" in r.stderr and r.stdout == ""


def test_default_model_is_built_on_first_use(default_model_first_use, session_cache):
    # conftest.py's first-use run, `lapor-nlp predict` without --model on this run's empty cache
    # (rubbish not collected in Kota Bandung), built the default model that every other test uses
    r, cache_was_empty = default_model_first_use
    assert cache_was_empty
    assert r.returncode == 0, r.stderr
    assert "building the default model" in r.stderr
    assert json.loads(r.stdout)["routed_to"] == "Dinas Lingkungan Hidup Kota Bandung"
    env = {"LAPOR_NLP_CACHE": str(session_cache)}
    r = cli("-q", "predict", "sampah", env=env)  # second run: cached, nothing on stderr
    assert r.returncode == 0 and r.stderr == ""


def test_predict_answers_every_stdin_line_and_refuses_bytes_that_are_not_utf8(model_dir):
    r = cli("-q", "predict", "--model", str(model_dir), "-", input="lampu jalan mati\n\n   \nair pdam mati\n")
    assert r.returncode == 1 and "2 input line(s) were not complaints" in r.stderr, r.stderr
    answers = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(answers) == 4  # one answer per input line: a blank line gets an error in its place
    assert [(a["error"]["code"], a["error"]["line"]) for a in answers[1:3]] == [("LAPOR-E006", 2), ("LAPOR-E006", 3)]
    assert answers[0]["agency"]["label"] and answers[3]["agency"]["label"]
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", "preprocess", "--json", "-"], capture_output=True,
                       input=b"jalan rusak\r\nlampu mati\rair pdam\n\n", timeout=600)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 4  # CRLF, bare CR and LF all end a line
    for verb in (["predict", "--model", str(model_dir)], ["preprocess", "--json"]):
        r = subprocess.run([sys.executable, "-m", "lapor_nlp", "-q", *verb, "-"], capture_output=True,
                           input=b"jalan rusak\nx \xff y\n", timeout=600,
                           env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert r.returncode == 1
        assert b"LAPOR-E002" in r.stderr and b"stdin line 2 is not valid UTF-8" in r.stderr
        assert len(r.stdout.splitlines()) == 1  # the line before it was answered


def test_missing_or_directory_input_is_a_clear_error(tmp_path, model_dir):
    for args in (["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")],
                 ["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "nope.csv")],
                 ["classify", str(tmp_path), "-o", str(tmp_path / "out.csv")]):
        r = cli("-q", *args)
        assert r.returncode == 1, args
        assert "LAPOR-E040" in r.stderr and "Traceback" not in r.stderr
        assert ("is a directory" if args[0] == "classify" else "does not exist") in r.stderr


def test_classify_refuses_a_utf16_input_before_saying_its_location_columns(tmp_path):
    """Review finding: "location columns: none" came before the input was refused."""
    src = tmp_path / "u16.csv"
    src.write_text("id,text,kecamatan\n1,jalan rusak,Tegalsari\n", encoding="utf-16")
    r = cli("classify", str(src), "-o", str(tmp_path / "out.csv"))
    assert r.returncode == 1 and "UTF-16" in r.stderr and "Traceback" not in r.stderr
    assert "location columns" not in r.stderr, r.stderr
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_with_no_label_the_model_knows_is_a_clear_error(tmp_path, model_dir):
    data = tmp_path / "x.csv"
    data.write_text("id,text,topic\n1,jalan rusak,bukan_topik\n2,lampu mati,bukan_topik\n", encoding="utf-8")
    r = cli("-q", "evaluate", "--model", str(model_dir), "--data", str(data), "--agency-col", "")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "LAPOR-E010" in r.stderr and "no row of x.csv has a topic label the model knows" in r.stderr


def test_schemas_verb_prints_both_json_schemas():
    r = cli("schemas")
    assert r.returncode == 0 and r.stderr == ""
    schemas = json.loads(r.stdout)
    assert schemas["Complaint"]["required"] == ["text"]
    assert "needs_review" in schemas["Prediction"]["properties"]


def test_a_task_with_no_known_label_is_skipped_with_a_warning_that_quiet_silences(tmp_path, model_dir):
    data = tmp_path / "x.csv"
    data.write_text("id,text,topic,agency\n1,lampu jalan mati,bukan_topik,dishub\n"
                    "2,sampah belum diangkut,bukan_topik,dlh\n", encoding="utf-8")
    args = ["evaluate", "--model", str(model_dir), "--data", str(data)]
    loud, quiet = cli(*args), cli("-q", *args)
    assert loud.returncode == quiet.returncode == 0, loud.stderr
    assert "topic is not scored" in loud.stderr
    assert quiet.stderr == ""
    assert set(json.loads(quiet.stdout)) == {"agency"}


def test_serve_refuses_a_tampered_model_before_starting(model_dir, tmp_path):
    pytest.importorskip("uvicorn")
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    with open(bad / "model.json", "a", encoding="utf-8") as fh:
        fh.write(" ")
    r = cli("serve", "--model", str(bad), "--port", "0")
    assert r.returncode == 1
    assert "LAPOR-E030" in r.stderr and "Traceback" not in r.stderr
