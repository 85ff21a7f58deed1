"""Where the files that this project writes (``datasets/``) are found at run time.

In a wheel, ``datasets/`` is packed inside the package as ``lapor_nlp/datasets`` (see
``pyproject.toml``); in a source checkout or an editable install it is the repository's
``datasets/`` beside the package. One function decides, so no other module guesses paths.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import ResourceError

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def datasets_dir() -> Path:
    """Return the directory holding the taxonomy, lexicons, gazetteer and corpus."""
    for candidate in (_PACKAGE_DIR / "datasets", _PACKAGE_DIR.parent / "datasets"):
        if (candidate / "taxonomy").is_dir():
            return candidate
    raise ResourceError(
        "lapor-nlp's datasets/ folder was not found next to the package; reinstall lapor-nlp "
        "(pip install lapor-nlp) or run from a complete source checkout."
    )


def dataset_path(*parts: str) -> Path:
    """Path of a file under ``datasets/``; raises :class:`ResourceError` when it is missing."""
    path = datasets_dir().joinpath(*parts)
    if not path.exists():
        raise ResourceError(f"bundled resource {'/'.join(parts)!r} is missing from {datasets_dir()}")
    return path


def read_lines(path: Path) -> list[str]:
    """Non-empty, non-comment (``#``) lines of a UTF-8 text file, stripped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResourceError(f"cannot read {path}: {exc}") from exc
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
