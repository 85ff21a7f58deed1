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
    for verb in ("predict", "preprocess", "train", "evaluate", "classify", "serve"):
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


@pytest.mark.slow
def test_default_model_is_built_on_first_use(tmp_path):
    env = {"LAPOR_NLP_CACHE": str(tmp_path / "cache")}
    r = cli("predict", "sampah di TPS belum diangkut seminggu di Kota Bandung", env=env)
    assert r.returncode == 0, r.stderr
    assert "building the default model" in r.stderr
    assert json.loads(r.stdout)["routed_to"] == "Dinas Lingkungan Hidup Kota Bandung"
    r = cli("-q", "predict", "sampah", env=env)  # second run: cached, nothing on stderr
    assert r.returncode == 0 and r.stderr == ""
