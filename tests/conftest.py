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
