"""What a user reads agrees with what happens: the first-run message, the README and the docs quote
one build time; `evaluate`'s help and errors speak of evaluating, not of training."""

from __future__ import annotations

from pathlib import Path

import pytest

import lapor_nlp
from lapor_nlp.bundled import BUILD_TIME
from lapor_nlp.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_the_first_run_message_readme_and_docs_quote_one_build_time(default_model_first_use):
    proc, was_empty = default_model_first_use
    if was_empty:  # this run built the model: its message is the one a new user reads
        assert f"once per version, {BUILD_TIME}" in proc.stderr
    for doc in ("README.md", "docs/python-api.md", "docs/institutions.md", "docs/retraining.md"):
        text = " ".join((REPO / doc).read_text(encoding="utf-8").split())
        assert BUILD_TIME in text, doc
        assert "about 30 s" not in text and "25–30 s" not in text, doc
    assert BUILD_TIME in " ".join(lapor_nlp.load.__doc__.split())


def test_evaluate_help_and_errors_speak_of_evaluating(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "to train" not in capsys.readouterr().out
    data = tmp_path / "gold.csv"
    data.write_text("text,label\njalan rusak,dinas_pu\n", encoding="utf-8")
    assert main(["evaluate", "--data", str(data), "--model", str(model_dir), "--agency-col", "label",
                 "--topic-col", "kategori"]) == 1
    err = capsys.readouterr().err
    assert "'kategori'" in err and "train" not in err.replace("lapor-nlp train", "")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,agency\n,dinas_pu\njalan rusak,dinas_pu\n", encoding="utf-8")
    assert main(["evaluate", "--data", str(bad), "--model", str(model_dir), "--topic-col", ""]) == 1
    err = capsys.readouterr().err
    assert "--skip-bad" in err and "to train" not in err
