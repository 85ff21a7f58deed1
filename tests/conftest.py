"""Shared fixtures. Real complaint data lives in ../shared/data (never in this repo): tests that need
it use the ``surabaya_rows`` fixture, which skips with a reason when it is absent.

The default model is built once per test run, into a cache directory of the run's own: the first
``lapor-nlp predict`` without ``--model`` builds it there (the first-use path a user meets, checked
by test_cli), and every other test that needs it reuses that directory. ``LAPOR_NLP_CACHE`` points
there for the whole run, so subprocesses and in-process calls that resolve the default model find
it instead of building another, and a run never writes into the user's own cache.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LAPOR_SHARED_DATA", REPO.parent / "shared" / "data"))
SURABAYA_CSV = SHARED_DATA / "surabaya" / "complaints_2022.csv"
#: The complaint the first-use run predicts (test_cli checks its answer).
FIRST_USE_TEXT = "sampah di TPS belum diangkut seminggu di Kota Bandung"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """An empty model cache for this run, exported as ``LAPOR_NLP_CACHE`` (restored afterwards)."""
    cache = tmp_path_factory.mktemp("lapor-nlp-cache")
    old = os.environ.get("LAPOR_NLP_CACHE")
    os.environ["LAPOR_NLP_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("LAPOR_NLP_CACHE", None)
    else:
        os.environ["LAPOR_NLP_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def feedback_db(tmp_path_factory):
    """``LAPOR_NLP_FEEDBACK_DB`` for this run, so that a service started by a test (and fuzzed by
    schemathesis) stores corrections there, never in the user's data directory."""
    path = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAPOR_NLP_FEEDBACK_DB", str(path))
        yield path


@pytest.fixture(scope="session")
def default_model_first_use(session_cache):
    """``lapor-nlp predict`` on the run's empty cache: the run that builds the default model.
    Returns the finished process and whether the cache was empty before it."""
    was_empty = not any(session_cache.iterdir())
    proc = subprocess.run([sys.executable, "-m", "lapor_nlp", "predict", FIRST_USE_TEXT],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LAPOR_NLP_CACHE": str(session_cache)})
    return proc, was_empty


@pytest.fixture(scope="session")
def model_dir(default_model_first_use):
    """The default model (trained from datasets/corpus), built once per test session."""
    from lapor_nlp.training.default import ensure_default_model

    return ensure_default_model(quiet=True)  # already there, unless the first-use run failed


@pytest.fixture(scope="session")
def surabaya_csv() -> Path:
    if not SURABAYA_CSV.exists():
        pytest.skip(f"real data not available: {SURABAYA_CSV} is absent (it lives beside the checkout, "
                    "never in the repo)")
    return SURABAYA_CSV


@pytest.fixture(scope="session")
def surabaya_rows(surabaya_csv) -> list[dict]:
    with surabaya_csv.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def preprocessor():
    from lapor_nlp.text import Preprocessor

    return Preprocessor()


@pytest.fixture(scope="session")
def router(model_dir):
    from lapor_nlp import Router

    return Router.load(model_dir)
