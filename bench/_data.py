"""Shared by the benchmarks: where the real data is, and the public Surabaya split."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LAPOR_SHARED_DATA", REPO.parent / "shared" / "data"))
SURABAYA = SHARED / "surabaya" / "complaints_2022.csv"
SPLIT_DATE = "2022-10-01"


def require_surabaya() -> Path:
    if not SURABAYA.exists():
        sys.exit(f"bench: {SURABAYA} not found (real data lives beside the checkout in ../shared)")
    return SURABAYA


def surabaya_rows() -> list[dict]:
    with require_surabaya().open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def agency_type(label: str) -> str:
    from lapor_nlp.agency import AgencySplitter

    return AgencySplitter().split(label).type


def public_split(rows: list[dict]):
    """Train before 2022-10-01, test from it, exact duplicate texts removed from the test side."""
    train = [r for r in rows if r["date"][:10] < SPLIT_DATE]
    seen = {r["text"] for r in train}
    test = []
    for r in rows:
        if r["date"][:10] >= SPLIT_DATE and r["text"] not in seen:
            seen.add(r["text"])
            test.append(r)
    return train, test


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
