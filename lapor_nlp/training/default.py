"""Building the bundled default model from the project's corpus (``datasets/corpus``) with the
taxonomy's routing information: the training side of :mod:`lapor_nlp.bundled`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..bundled import BUILD_TIME, RECIPE, default_model_dir, fingerprint, is_built
from ..resources import datasets_dir
from ..taxonomy import bundled_routing as taxonomy_routing  # noqa: F401 - its old home

log = logging.getLogger("lapor_nlp")


def corpus_files() -> list[Path]:
    return sorted((datasets_dir() / "corpus").glob("*.jsonl"))


def build_corpus_file(path: Path) -> int:
    """Concatenate the corpus parts into one JSONL file (the training input)."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for f in corpus_files():
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.write(line.rstrip() + "\n")
                    n += 1
    return n


def build_default_model(out_dir: Path, quiet: bool = False) -> Path:
    from ..columns import Columns
    from .train import train

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "corpus.jsonl"
        build_corpus_file(data)
        train(data, out_dir, columns=Columns(id="id", province="province", regency="regency",
                                             district="district", village="village"),
              name="lapor-default", quiet=quiet, routing=taxonomy_routing(), map_labels="none",
              extra_info={"recipe": RECIPE, "corpus_fingerprint": fingerprint()}, **RECIPE)
    return out_dir


def ensure_default_model(quiet: bool = False) -> Path:
    """The default model's directory, building it first if this version has none yet."""
    target = default_model_dir()
    if is_built():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"lapor-nlp: building the default model from the bundled corpus into {target} "
              f"(once per version, {BUILD_TIME}; more on a busy machine)...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        # The training log (and its note about optional plotting) is noise for someone who only
        # asked for a prediction: the one-line messages around this are what they see.
        level = logging.getLogger("lapor_nlp").level
        logging.getLogger("lapor_nlp").setLevel(logging.ERROR)
        try:
            build_default_model(tmp, quiet=True)
        finally:
            logging.getLogger("lapor_nlp").setLevel(level)
        try:
            os.rename(tmp, target)  # atomic: a concurrent builder's result is as good as ours
        except OSError:
            if not is_built():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"lapor-nlp: default model ready ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return target
