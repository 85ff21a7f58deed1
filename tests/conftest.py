"""Shared fixtures. Real complaint data lives in ../shared/data (never in this repo): tests that need
it use the ``surabaya_rows`` fixture, which skips with a reason when it is absent."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LAPOR_SHARED_DATA", REPO.parent / "shared" / "data"))
SURABAYA_CSV = SHARED_DATA / "surabaya" / "complaints_2022.csv"


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
def model_dir(tmp_path_factory):
    """The default model (trained from datasets/corpus), built once per test session."""
    from lapor_nlp.default_model import build_default_model

    out = tmp_path_factory.mktemp("models") / "default"
    build_default_model(out, quiet=True)
    return out


@pytest.fixture(scope="session")
def router(model_dir):
    from lapor_nlp import Router

    return Router.load(model_dir)
