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

Each file the loader uses is read once into memory, and the bytes that were hashed are the bytes
that are parsed: a file swapped while a model loads is either the one the manifest names or a
refusal, never half of each. ``model.npz`` is opened as a zip from those bytes and only the arrays
the model needs are read, after their size in the zip's directory and their ``.npy`` header were
checked (an extra member, however large, is never decompressed). A file that matches its hash but
is not what lapor-nlp writes (not a zip, not JSON, nested too deep, over the size limits below, an
array of the wrong type or shape) raises :class:`~lapor_nlp.errors.ModelFormatError`.

Pinning: ``Router.load(path, sha256=...)`` (``--model-sha256``) refuses a model directory whose
``manifest.json`` does not have that sha256 (``sha256sum model/manifest.json``). The manifest holds
the sha256 of every other file and the loader checks each of them, so that one hash pins the whole
model, the way pip's ``--require-hashes`` pins a download.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import struct
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .errors import (
    InputValueError, ModelFormatError, ModelIntegrityError, ModelNotFoundError, ModelPinError,
    ModelVersionError,
)
from .io import sha256_file

if TYPE_CHECKING:  # imported where a model is built: verify() and the manifest readers need none
    from .classifier import ComplaintClassifier
    from .features import TokenTfidf

#: Written by this version: 2 adds the heads' out-of-fold evidence (``unknown_agency``) and their
#: ``novelty_quantile`` parameter, which lapor-nlp before 0.4 cannot read. Format 1 models load.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"


ROUTING = "routing.json"

#: Limits on what a model directory may hold, far above what lapor-nlp writes (the default model:
#: a 34 KB manifest, 120 KB model.json, 22 MB model.npz whose largest array is 16 MB), so that a
#: crafted file fails with a clear error instead of exhausting memory.
MAX_JSON_BYTES = 256 << 20
MAX_NPZ_BYTES = 2 << 30
MAX_ARRAY_BYTES = 2 << 30
#: Array element kinds a model holds: booleans, integers, floats (never objects, strings, ...).
_ARRAY_KINDS = frozenset("biuf")


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
                        r"metrics\.json|errors\.md|MODEL_CARD\.md|(confusion_matrix|calibration)_[A-Za-z0-9_-]+\.png)")


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


def manifest_sha256(model_dir: str | Path) -> str:
    """The sha256 that pins ``model_dir`` (``Router.load(path, sha256=...)``): its manifest's."""
    return hashlib.sha256(_read_bytes(Path(model_dir) / MANIFEST, MAX_JSON_BYTES)).hexdigest()


def read_manifest(model_dir: str | Path, *, sha256: str | None = None) -> dict:
    """The manifest of ``model_dir``, checked against ``sha256`` when given (a pinned model)."""
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(f"{model_dir} is not a lapor-nlp model directory (no {MANIFEST})")
    data = _read_bytes(path, MAX_JSON_BYTES)
    if sha256 is not None:
        _check_pin(model_dir, data, sha256)
    manifest = _parse_json(data, path)
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{path} does not hold a JSON object")
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in files.items()):
        raise ModelFormatError(f"{path}: 'files' must map file names to sha256 digests")
    return manifest


def _check_pin(model_dir, manifest_bytes: bytes, sha256: str) -> None:
    """Refuse a manifest whose sha256 is not ``sha256`` (hex, any case, ``sha256:`` prefix allowed)."""
    want = sha256.strip().lower().removeprefix("sha256:") if isinstance(sha256, str) else None
    if want is None or not re.fullmatch(r"[0-9a-f]{64}", want):
        raise InputValueError(f"sha256 must be 64 hexadecimal digits (the sha256 of the model's "
                              f"{MANIFEST}), got {sha256!r}", field="sha256")
    got = hashlib.sha256(manifest_bytes).hexdigest()
    if got != want:
        raise ModelPinError(f"{model_dir} is not the pinned model: its {MANIFEST} has sha256 {got}, "
                            f"the pin is {want}; it is not loaded")


def _read_bytes(path: Path, limit: int) -> bytes:
    """The whole file, refused when larger than ``limit`` (checked before reading)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise ModelFormatError(f"{path} is {size:,} bytes, more than a model file may hold "
                                       f"({limit:,}); it is not loaded")
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise ModelIntegrityError(f"{path.parent}: {path.name} is missing") from None
    except MemoryError:
        raise ModelFormatError(f"{path} is too large to read") from None
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:  # grew while read
        raise ModelFormatError(f"{path} is more than a model file may hold ({limit:,} bytes)")
    return data


def _parse_json(data: bytes, path: Path):
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFormatError(f"{path} is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ModelFormatError(f"{path} is nested too deeply to be a lapor-nlp file") from None
    except MemoryError:
        raise ModelFormatError(f"{path} is too large to parse") from None


def _verified_bytes(model_dir: Path, manifest: dict, name: str, limit: int) -> bytes:
    """The bytes of ``name``, read once, whose sha256 is the manifest's: what is checked is what
    gets parsed."""
    digest = manifest["files"][name]
    data = _read_bytes(model_dir / name, limit)
    if hashlib.sha256(data).hexdigest() != digest:
        raise _changed(model_dir, name)
    return data


def _check_version(model_dir: Path, manifest: dict) -> None:
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
    for name in files:
        if Path(name).name != name or name in ("", ".", ".."):
            raise ModelIntegrityError(f"{model_dir}: manifest names a file outside the directory: {name!r}")


def verify(model_dir: str | Path, *, sha256: str | None = None) -> dict:
    """Check versions and every file's sha256 (and the manifest's own, when pinned by
    ``sha256``); return the manifest or raise."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir, sha256=sha256)
    _check_version(model_dir, manifest)
    for name in manifest["files"]:
        _check_file(model_dir, manifest, name)
    return manifest


def _check_file(model_dir: Path, manifest: dict, name: str) -> None:
    """Check a file's sha256 (read in blocks: for files that are checked, not parsed)."""
    path = model_dir / name
    if not path.is_file():
        raise ModelIntegrityError(f"{model_dir}: {name} is missing")
    if sha256_file(path) != manifest["files"][name]:
        raise _changed(model_dir, name)


def _changed(model_dir: Path, name: str) -> ModelIntegrityError:
    return ModelIntegrityError(
        f"{model_dir}: {name} does not match its sha256 in the manifest: the model was "
        "changed or corrupted after it was saved; it is not loaded")


def read_routing(model_dir: str | Path, manifest: dict) -> dict:
    """The routing information of a model directory (``{}`` for a model without it), its bytes
    checked against the manifest's sha256."""
    model_dir = Path(model_dir)
    if ROUTING not in manifest.get("files", {}):
        return {}
    routing = _parse_json(_verified_bytes(model_dir, manifest, ROUTING, MAX_JSON_BYTES), model_dir / ROUTING)
    if not isinstance(routing, dict):
        raise ModelFormatError(f"{model_dir / ROUTING} does not hold a JSON object")
    return routing


class _NpzArrays:
    """The arrays of a ``model.npz`` held in memory, read one by one when asked for: a member
    nobody asks for is never decompressed. Each member's size in the zip directory and its
    ``.npy`` header are checked before its data is read (``allow_pickle`` is never needed: only
    numeric arrays are accepted)."""

    def __init__(self, data: bytes, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
            raise ModelFormatError(f"{path} is not a valid zip (npz) file: {exc}") from None
        self.data = memoryview(data)  # the deflated members are inflated from it (_inflate)
        self.members = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}
        self.cache: dict[str, np.ndarray] = {}

    def __contains__(self, key) -> bool:
        return key in self.members

    def get(self, key, default=None):
        return self[key] if key in self.members else default

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.cache:
            if key not in self.members:
                raise ModelFormatError(f"{self.path} has no array {key!r}")
            self.cache[key] = self._read(self.members[key])
        return self.cache[key]

    def _read(self, info: zipfile.ZipInfo) -> np.ndarray:
        where = f"{self.path} member {info.filename!r}"
        if info.file_size > MAX_ARRAY_BYTES:
            raise ModelFormatError(f"{where} is {info.file_size:,} bytes, more than a model array "
                                   f"may hold ({MAX_ARRAY_BYTES:,})")
        fmt = np.lib.format
        try:
            with self.zip.open(info) as fh:
                version = fmt.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = fmt.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = fmt.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
                    raise ModelFormatError(f"{where} holds {dtype} values, not numbers")
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                nbytes = count * dtype.itemsize
                if count < 0 or nbytes != info.file_size - fh.tell():
                    raise ModelFormatError(f"{where}: its header announces {nbytes:,} bytes of data, "
                                           f"the member holds {info.file_size - fh.tell():,}")
                if info.compress_type == zipfile.ZIP_DEFLATED:
                    raw = self._inflate(info, fh.tell(), where)
                else:
                    raw = bytearray(nbytes)  # writable, as np.load's arrays are
                    view, got = memoryview(raw), 0
                    while got < nbytes:
                        n = fh.readinto(view[got:])
                        if not n:
                            raise ModelFormatError(f"{where} is truncated")
                        got += n
        except ModelFormatError:
            raise
        except MemoryError:
            raise ModelFormatError(f"{where} is too large to read") from None
        except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, RuntimeError,
                NotImplementedError, SyntaxError, TypeError) as exc:
            raise ModelFormatError(f"{where} is not a valid .npy array: {exc}") from None
        array = np.frombuffer(raw, dtype=dtype, count=count)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)

    #: Compressed bytes inflated per call by _inflate: its output (about twice as much) stays in
    #: the CPU's cache on its way to the array.
    INFLATE_PIECE = 1 << 18

    def _inflate(self, info: zipfile.ZipInfo, skip: int, where: str) -> bytearray:
        """The data of the deflated member ``info`` after its first ``skip`` bytes (the ``.npy``
        header, already read and checked through ``ZipFile.open``), inflated straight from the
        file's bytes into the writable buffer of the array, a piece at a time. The same bytes as
        reading the member through ``ZipFile.open``, CRC-32 checked as it does, at about 0.7x its
        cost (0.14 s against 0.20 s for the default model's 43 MB: its reader copies the
        compressed bytes, then each array's bytes twice more). The output is capped at the size
        the zip's directory gives (which the header was checked against), so that no member
        inflates to more than that. Other members (stored ones) are read through ZipFile.open."""
        # The data follows the member's local header (30 bytes, then its name and extra field:
        # APPNOTE 4.3.7); ZipFile.open has checked that header already.
        start = info.header_offset + 30
        name_len, extra_len = struct.unpack_from("<HH", self.data, info.header_offset + 26)
        start += name_len + extra_len
        comp = self.data[start:start + info.compress_size]
        if len(comp) != info.compress_size:
            raise ModelFormatError(f"{where} is truncated")
        size, piece = info.file_size, self.INFLATE_PIECE
        raw = bytearray(size - skip)  # writable, as np.load's arrays are
        view, got, crc = memoryview(raw), 0, 0
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        for at in range(0, len(comp), piece):
            out = inflater.decompress(comp[at:at + piece], size - got + 1)
            if got + len(out) > size:
                raise ModelFormatError(f"{where} inflates to more than its {size:,} bytes")
            crc = zlib.crc32(out, crc)
            if got + len(out) > skip:
                lo = max(skip - got, 0)
                view[got + lo - skip:got + len(out) - skip] = memoryview(out)[lo:]
            got += len(out)
        if got != size:
            raise ModelFormatError(f"{where} is truncated")
        if crc != info.CRC:
            raise ModelFormatError(f"{where} is corrupt (its CRC-32 does not match)")
        return raw


def _check_features(features: TokenTfidf, path: Path) -> None:
    """The vocabulary, the bigrams and the idf must describe the same columns."""
    columns = len(features.words_) + len(features.bigram_codes_)
    fmap = features._feature_map_
    for name, a in (("idf", features.idf_), ("bigram_codes", features.bigram_codes_), ("feature_map", fmap)):
        if a is not None and a.ndim != 1:
            raise ModelFormatError(f"{path}: {name} has shape {a.shape}, not one dimension")
    if fmap is None and columns != features.n_features_:
        raise ModelFormatError(f"{path}: idf has {features.n_features_} values for {columns} features")
    if fmap is not None and (len(fmap) != columns or fmap.dtype.kind not in "iu"
                             or (len(fmap) and fmap.max() >= features.n_features_)):
        raise ModelFormatError(f"{path}: feature_map does not fit the vocabulary")


def _check_head(task: str, arrays: _NpzArrays, n_features: int, path: Path) -> None:
    """A head's sparse weights must stay inside the vocabulary before scipy sees them (it does not
    check every index on construction, and a dense copy of bad indices writes out of bounds)."""
    data, indices, indptr = (arrays[f"{task}_coef_{x}"] for x in ("data", "indices", "indptr"))
    if any(a.ndim != 1 for a in (data, indices, indptr)) or indices.dtype.kind not in "iu" \
            or indptr.dtype.kind not in "iu" or len(indptr) < 1:
        raise ModelFormatError(f"{path}: {task}'s weights are not a sparse matrix")
    if (indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices)
            or np.any(np.diff(indptr) < 0)
            or (len(indices) and (indices.min() < 0 or indices.max() >= n_features))):
        raise ModelFormatError(f"{path}: {task}'s weights do not fit its {n_features} features")


def _check_labels(model: ComplaintClassifier, arrays: _NpzArrays, path: Path) -> None:
    """One weight row, one intercept and one calibration pair per label."""
    for task, head in model.heads_.items():
        k = len(head.classes_)
        sizes = {name: arrays[f"{task}_{name}"].shape for name in ("intercept", "platt_a", "platt_b")}
        sizes["coef rows"] = (len(arrays[f"{task}_coef_indptr"]) - 1,)
        for name, shape in sizes.items():
            if shape != (k,):
                raise ModelFormatError(f"{path}: {task} {name} has shape {shape} for {k} labels")


def load_verified(model_dir: str | Path, *, sha256: str | None = None, stacked: bool = False
                  ) -> tuple[ComplaintClassifier, dict, dict]:
    """Load a model directory: ``(model, manifest, routing)``. Every file used is read once and
    parsed from the very bytes whose sha256 was checked; ``sha256`` pins the manifest.

    ``stacked``: build the heads' weights side by side in one block, the layout the Router's fast
    path scores with (:func:`~lapor_nlp.heads.heads_from_state`); by default each head has a
    block of its own, so that scoring one task computes only its own columns."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir, sha256=sha256)
    _check_version(model_dir, manifest)
    files = manifest["files"]
    for name in files:  # the report files are not parsed: their hash is checked as before
        if name not in ("model.json", "model.npz", "stem_cache.json", ROUTING):
            _check_file(model_dir, manifest, name)
    state = _parse_json(_verified_bytes(model_dir, manifest, "model.json", MAX_JSON_BYTES),
                        model_dir / "model.json")
    npz_path = model_dir / "model.npz"
    arrays = _NpzArrays(_verified_bytes(model_dir, manifest, "model.npz", MAX_NPZ_BYTES), npz_path)
    cache = _stem_cache(model_dir, manifest)
    routing = read_routing(model_dir, manifest)
    from .classifier import ComplaintClassifier
    from .features import TokenTfidf
    from .heads import LinearHead, heads_from_state
    from .text import Preprocessor

    try:
        pre = Preprocessor(**state["preprocessor"], stem_cache=cache)
        model = ComplaintClassifier(**state["params"], preprocessor=pre)
        model.features_ = TokenTfidf.from_state(state["features"], arrays)
        _check_features(model.features_, npz_path)
        for task in state["heads"]:
            _check_head(task, arrays, model.features_.n_features_, npz_path)
        n_features = model.features_.n_features_
        model.heads_ = heads_from_state(state["heads"], arrays, n_features) if stacked else \
            {task: LinearHead.from_state(task, meta, arrays, n_features) for task, meta in state["heads"].items()}
        _check_labels(model, arrays, npz_path)
    except (ModelIntegrityError, ModelVersionError):
        raise
    except MemoryError:
        raise ModelFormatError(f"{model_dir}: the model's arrays do not fit in memory") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        raise ModelFormatError(f"{model_dir}: model.json and model.npz do not describe a lapor-nlp "
                               f"model ({type(exc).__name__}: {exc})") from None
    return model, manifest, routing


def _stem_cache(model_dir: Path, manifest: dict) -> dict:
    """The stems saved with the model (``{}`` for a model without them)."""
    if "stem_cache.json" not in manifest["files"]:
        return {}
    path = model_dir / "stem_cache.json"
    cache = _parse_json(_verified_bytes(model_dir, manifest, "stem_cache.json", MAX_JSON_BYTES), path)
    if not isinstance(cache, dict):
        raise ModelFormatError(f"{path} does not hold a JSON object")
    return cache


def load_model(model_dir: str | Path, *, sha256: str | None = None) -> tuple[ComplaintClassifier, dict]:
    """Verify and load a model directory; returns (model, manifest) (see :func:`load_verified`)."""
    model, manifest, _ = load_verified(model_dir, sha256=sha256)
    return model, manifest
