"""Stage ``normalize``: slang, abbreviations and misspellings to standard Indonesian words.

The lexicon is data this project writes (``datasets/lexicons/slang.tsv``: ``informal<TAB>standard``),
so a data scientist can read, review and extend it; :meth:`Normalizer.from_files` adds the user's
own files on top (later files win).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import ResourceError
from ..resources import dataset_path


def load_lexicon(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a ``informal<TAB>standard`` file (header and ``#`` comment lines allowed)."""
    path = Path(path)
    lexicon: dict[str, tuple[str, ...]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                if lineno == 1 and row[0].strip().lower() == "informal":
                    continue
                if len(row) < 2 or not row[1].strip():
                    raise ResourceError(f"{path}:{lineno}: expected 'informal<TAB>standard'")
                lexicon[row[0].strip().lower()] = tuple(row[1].strip().lower().split())
    except OSError as exc:
        raise ResourceError(f"cannot read lexicon {path}: {exc}") from exc
    return lexicon


def default_lexicon_path() -> Path:
    return dataset_path("lexicons", "slang.tsv")


class Normalizer:
    """Map each token through a slang lexicon; a token may become several words or stay as it is."""

    def __init__(self, lexicon: Mapping[str, Iterable[str]] | None = None):
        if lexicon is None:
            lexicon = load_lexicon(default_lexicon_path())
        self.lexicon = {k: tuple(v) for k, v in lexicon.items()}

    @classmethod
    def from_files(cls, *paths: str | Path, include_default: bool = True) -> "Normalizer":
        merged: dict[str, tuple[str, ...]] = {}
        if include_default:
            merged.update(load_lexicon(default_lexicon_path()))
        for p in paths:
            merged.update(load_lexicon(p))
        return cls(merged)

    def token(self, tok: str) -> tuple[str, ...]:
        return self.lexicon.get(tok, (tok,))

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        out: list[str] = []
        for t in tokens:
            out.extend(self.lexicon.get(t, (t,)))
        return out
