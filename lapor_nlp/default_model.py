"""The bundled default model: trained from this project's own corpus (``datasets/corpus``), built
on first use into the user cache directory, and rebuilt when the corpus or the library changes.

Why build instead of ship: the corpus is small and trains in seconds, a wheel stays small, and the
model always matches the installed code. The cache key is a sha256 over the corpus, taxonomy,
lexicon and gazetteer files plus the library version. ``LAPOR_NLP_CACHE`` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from ._version import __version__
from .resources import datasets_dir

log = logging.getLogger("lapor_nlp")

#: How the default model is trained (also written to the model's manifest).
RECIPE = {"test_size": 0.2, "seed": 0, "min_count": 5, "rare": "keep", "refit_all": True,
          "C": 0.5, "ngram_max": 2, "min_df": 1, "target_precision": 0.95}


def corpus_files() -> list[Path]:
    return sorted((datasets_dir() / "corpus").glob("*.jsonl"))


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Cache key of the default model (read once per process: every Router.load() asks)."""
    h = hashlib.sha256(__version__.encode())
    base = datasets_dir()
    for sub in ("corpus", "taxonomy", "lexicons", "gazetteer"):
        for p in sorted((base / sub).glob("*")):
            if p.is_file():
                h.update(p.name.encode())
                h.update(p.read_bytes())
    h.update(json.dumps(RECIPE, sort_keys=True).encode())
    return h.hexdigest()


def cache_root() -> Path:
    env = os.environ.get("LAPOR_NLP_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lapor-nlp"))


def default_model_dir() -> Path:
    return cache_root() / "models" / f"default-{__version__}-{fingerprint()[:16]}"


def taxonomy_routing() -> dict:
    """Agency types with their office templates, levels and parents, and the label names, from the
    taxonomy files (what the default model's ``routing.json`` holds)."""
    from .taxonomy import Taxonomy

    tax = datasets_dir() / "taxonomy"
    taxonomy = Taxonomy.load(tax / "agency_types.json")
    topics = json.loads((tax / "topics.json").read_text(encoding="utf-8"))["topics"]
    return {
        "agency_types": taxonomy.routing(),
        "parents": {code: {"name": p["name"], "parent": p.get("parent"), "level": p.get("level")}
                    for code, p in taxonomy.parents.items()},
        "label_names": {"agency": {c: t["name"] for c, t in taxonomy.types.items()},
                        "topic": {t["code"]: t["name"] for t in topics}},
    }


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
    from .training import Columns, train

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
    if (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"lapor-nlp: building the default model from the bundled corpus into {target} "
              "(once per version, about 30 s)...", file=sys.stderr, flush=True)
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
            if not (target / "manifest.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"lapor-nlp: default model ready ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return target
