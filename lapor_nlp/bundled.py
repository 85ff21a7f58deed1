"""Where the bundled default model lives: a model trained from this project's own corpus
(``datasets/corpus``), cached in the user cache directory under a key that changes with the corpus,
the taxonomy, the lexicons, the gazetteer, the recipe and the library version.

This module only finds it; :mod:`lapor_nlp.training.default` builds it, and
:func:`lapor_nlp.load` is the one entry point that does both (building on first use, and saying so).
Why build instead of ship: the corpus trains in seconds, a wheel stays small, and the model always
matches the installed code. ``LAPOR_NLP_CACHE`` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from ._version import __version__
from .resources import datasets_dir

#: How long building the default model takes, as the first-run message, the README and the docs
#: say it (they quote this text; tests/test_wording.py checks that they agree). Measured with
#: ``LAPOR_NLP_CACHE=$(mktemp -d) lapor-nlp predict "jalan rusak"`` on a 2-core machine: 25.3 s
#: (27.0 s for the whole command) on a quiet host (load 1.0), 52.9 s while another job shared it;
#: minutes when several jobs load both cores.
BUILD_TIME = "about 25-60 s"

#: How the default model is trained (also written to the model's manifest).
RECIPE = {"test_size": 0.2, "seed": 0, "min_count": 5, "rare": "keep", "refit_all": True,
          "C": 0.5, "ngram_max": 2, "min_df": 1, "target_precision": 0.95}


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Cache key of the default model (read once per process)."""
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
    """Where this version's default model is, or will be once built."""
    return cache_root() / "models" / f"default-{__version__}-{fingerprint()[:16]}"


def is_built() -> bool:
    return (default_model_dir() / "manifest.json").is_file()
