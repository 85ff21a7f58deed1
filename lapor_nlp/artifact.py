"""Model directories: save and load a :class:`~lapor_nlp.classifier.ComplaintClassifier` safely.

A model directory holds::

    manifest.json     versions, labels with counts, data fingerprint, parameters, metrics,
                      creation time, and the sha256 of every other file
    model.json        the fitted state that is not an array (vocabulary, labels, thresholds, ...)
    model.npz         the arrays (weights, idf, bigram codes), read with allow_pickle=False
    stem_cache.json   the stems of the training vocabulary, so a loaded model starts warm
    metrics.json, confusion_matrix_*.png, calibration_*.png, errors.md   the report

No pickle: nothing in a model directory is executed on load, so a model from elsewhere cannot run
code on your machine. (scikit-learn's own persistence is pickle-based and warns about exactly
that; here the fitted state of a linear model is only arrays and lists.) Loading still checks the
sha256 of every file against the manifest and refuses a changed file, and refuses a model made by
an incompatible lapor-nlp format version. Models are loaded only from a path the caller passes.
"""

from __future__ import annotations

import json
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._version import __version__
from .classifier import ComplaintClassifier
from .errors import ModelIntegrityError, ModelNotFoundError, ModelVersionError
from .features import TokenTfidf
from .io import sha256_file
from .heads import LinearHead
from .text import Preprocessor

#: Written by this version: 2 adds the heads' out-of-fold evidence (``unknown_agency``) and their
#: ``novelty_quantile`` parameter, which lapor-nlp before 0.4 cannot read. Format 1 models load.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"


ROUTING = "routing.json"


def model_version(manifest: dict) -> str:
    """The version string of a model: library version + the start of its weights' sha256."""
    return f"{manifest.get('lapor_nlp_version', '?')}+{manifest['files']['model.npz'][:12]}"


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=False), encoding="utf-8")


def save_model(model: ComplaintClassifier, out_dir: str | Path, *, info: dict | None = None,
               routing: dict | None = None, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``model`` to ``out_dir`` (created; files written then hashed into the manifest).

    ``info`` goes into the manifest (data fingerprint, metrics, agency types, ...); ``routing``
    (agency types, their offices and parents, learnt places, label names: what the Router needs
    beside the classifier) into ``routing.json``; ``extra_files`` are report files (name -> bytes)
    written beside the model and hashed too.
    """
    model._check()
    if routing is not None:
        extra_files = {**(extra_files or {}),
                       ROUTING: json.dumps(routing, ensure_ascii=False).encode("utf-8")}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feat_meta, arrays = model.features_.to_state()
    heads_meta = {}
    for task, head in model.heads_.items():
        meta, head_arrays = head.to_state(task)
        heads_meta[task] = meta
        arrays.update(head_arrays)
    pre = model.preprocessor_
    state = {"format_version": FORMAT_VERSION, "params": model.hyperparameters(),
             "preprocessor": pre.get_params(), "features": feat_meta, "heads": heads_meta}
    _write_json(out / "model.json", state)
    with open(out / "model.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    # Only the stems of the model's own vocabulary: that is what predictions meet most.
    cache = pre.export_stem_cache()
    _write_json(out / "stem_cache.json", cache)
    for name, data in (extra_files or {}).items():
        (out / name).write_bytes(data)
    files = sorted({"model.json", "model.npz", "stem_cache.json", *(extra_files or {})})
    _remove_stale_files(out, keep=set(files))
    import sklearn

    manifest = {
        "name": (info or {}).get("name", out.name),
        "format_version": FORMAT_VERSION,
        "lapor_nlp_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tasks": {t: {"labels": list(map(str, h.classes_))} for t, h in model.heads_.items()},
        **(info or {}),
        "files": {name: sha256_file(out / name) for name in files},
    }
    _write_json(out / MANIFEST, manifest)
    return out


#: The names of the files lapor-nlp itself writes into a model directory (model, routing, data
#: report, evaluation report). Only these are ever removed when a model is retrained in place.
_OWN_FILES = re.compile(r"(model\.json|model\.npz|stem_cache\.json|routing\.json|data_report\.json|"
                        r"metrics\.json|errors\.md|(confusion_matrix|calibration)_[A-Za-z0-9_-]+\.png)")


def _remove_stale_files(out: Path, keep: set[str]) -> None:
    """Retraining into a model directory: delete the files of the previous model that this one
    does not write (an old report must not pass for the new model's). Only files that its
    manifest listed and that lapor-nlp writes are touched: 0.3.0 manifests listed every file in
    the directory, the user's own (a training CSV, notes) too, and those stay."""
    try:
        old = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError, AttributeError):
        return
    for name in old:
        if isinstance(name, str) and name not in keep and _OWN_FILES.fullmatch(name):
            path = out / name
            try:
                if path.is_file() or path.is_symlink():
                    path.unlink()
            except OSError:
                pass  # not ours to fight over: left as it is, and not in the new manifest


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(f"{model_dir} is not a lapor-nlp model directory (no {MANIFEST})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON: {exc}") from None


def verify(model_dir: str | Path) -> dict:
    """Check versions and every file's sha256; return the manifest or raise."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    fv = manifest.get("format_version")
    if fv not in READABLE_FORMATS:
        raise ModelVersionError(
            f"{model_dir} has model format {fv!r}; this lapor-nlp ({__version__}) reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}. Retrain it with this version (lapor-nlp train) or install the "
            f"lapor-nlp version that made it ({manifest.get('lapor_nlp_version')})."
        )
    files = manifest.get("files") or {}
    for required in ("model.json", "model.npz"):
        if required not in files:
            raise ModelIntegrityError(f"{model_dir}: manifest lists no {required}")
    for name, digest in files.items():
        if Path(name).name != name:
            raise ModelIntegrityError(f"{model_dir}: manifest names a file outside the directory: {name!r}")
        path = model_dir / name
        if not path.is_file():
            raise ModelIntegrityError(f"{model_dir}: {name} is missing")
        if sha256_file(path) != digest:
            raise ModelIntegrityError(
                f"{model_dir}: {name} does not match its sha256 in the manifest: the model was "
                "changed or corrupted after it was saved; it is not loaded"
            )
    return manifest


def read_routing(model_dir: str | Path, manifest: dict) -> dict:
    """The routing information of a verified model directory (``{}`` for a model without it)."""
    path = Path(model_dir) / ROUTING
    if ROUTING not in manifest.get("files", {}) or not path.is_file():
        return {}
    try:
        routing = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(routing, dict):
        raise ModelIntegrityError(f"{path} does not hold a JSON object")
    return routing


def load_model(model_dir: str | Path) -> tuple[ComplaintClassifier, dict]:
    """Verify and load a model directory; returns (model, manifest)."""
    model_dir = Path(model_dir)
    manifest = verify(model_dir)
    state = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    with np.load(model_dir / "model.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    cache = {}
    if (model_dir / "stem_cache.json").is_file() and "stem_cache.json" in manifest["files"]:
        cache = json.loads((model_dir / "stem_cache.json").read_text(encoding="utf-8"))
    pre = Preprocessor(**state["preprocessor"], stem_cache=cache)
    model = ComplaintClassifier(**state["params"], preprocessor=pre)
    model.features_ = TokenTfidf.from_state(state["features"], arrays)
    model.heads_ = {task: LinearHead.from_state(task, meta, arrays, model.features_.n_features_)
                    for task, meta in state["heads"].items()}
    return model, manifest

