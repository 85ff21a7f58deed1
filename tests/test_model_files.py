"""Model files under faults: a file whose hash matches but whose content is not what lapor-nlp
writes gives a typed error (and one line from the CLI), an extra member of model.npz is never read,
a pinned model refuses any other, and a file swapped while a model loads is never half-accepted."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lapor_nlp
from lapor_nlp import Router, artifact
from lapor_nlp.cli import main
from lapor_nlp.errors import (
    InputValueError, LaporError, ModelFormatError, ModelIntegrityError, ModelPinError,
)


@pytest.fixture
def copy(model_dir, tmp_path) -> Path:
    """A private copy of the default model, to damage."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def rehash(model: Path) -> None:
    """Update the manifest's hashes to the files as they are now: the damage is 'signed'."""
    manifest = json.loads((model / "manifest.json").read_text(encoding="utf-8"))
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((model / name).read_bytes()).hexdigest()
    (model / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def rewrite_npz(model: Path, change) -> None:
    """model.npz with ``change(arrays)`` applied (a dict of name -> array), re-hashed."""
    with np.load(model / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(model / "model.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    rehash(model)


def deep(n: int = 100_000) -> bytes:
    return b"[" * n + b"]" * n


def _corrupt_cases():
    yield "npz not a zip", lambda m: (m / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    yield "npz truncated", lambda m: (m / "model.npz").write_bytes((m / "model.npz").read_bytes()[:100_000])
    yield "model.json not JSON", lambda m: (m / "model.json").write_bytes(b'{"format_version": 2,')
    yield "model.json not UTF-8", lambda m: (m / "model.json").write_bytes(b'{"a": "\xff"}')
    yield "model.json nested deep", lambda m: (m / "model.json").write_bytes(deep())
    yield "routing.json nested deep", lambda m: (m / "routing.json").write_bytes(deep())
    yield "stem cache nested deep", lambda m: (m / "stem_cache.json").write_bytes(deep())
    yield "routing.json a list", lambda m: (m / "routing.json").write_bytes(b"[1, 2]")
    yield "model.json wrong keys", lambda m: (m / "model.json").write_bytes(b'{"params": {}}')


def _npz_cases():
    yield "idf strings", lambda a: a.__setitem__("idf", np.array(["x"] * len(a["idf"])))
    yield "idf 2-D", lambda a: a.__setitem__("idf", a["idf"].reshape(1, -1))
    yield "idf one short", lambda a: a.__setitem__("idf", a["idf"][:-1])
    yield "intercept short", lambda a: a.__setitem__("agency_intercept", a["agency_intercept"][:-1])
    yield "indices out of range", lambda a: a["agency_coef_indices"].__setitem__(0, 10**9)
    yield "negative index", lambda a: a["topic_coef_indices"].__setitem__(3, -5)
    yield "array missing", lambda a: a.pop("topic_platt_a")
    yield "complex weights", lambda a: a.__setitem__("topic_coef_data", a["topic_coef_data"].astype(np.complex64))


@pytest.mark.parametrize("case", [c for c, _ in _corrupt_cases()])
def test_a_corrupt_file_whose_hash_matches_is_a_typed_error(copy, case):
    dict(_corrupt_cases())[case](copy)
    rehash(copy)
    with pytest.raises(ModelFormatError) as err:
        Router.load(copy)
    assert err.value.code == "LAPOR-E033" and isinstance(err.value, ModelIntegrityError)


@pytest.mark.parametrize("case", [c for c, _ in _npz_cases()])
def test_arrays_of_the_wrong_type_or_shape_are_a_typed_error(copy, case):
    rewrite_npz(copy, dict(_npz_cases())[case])
    with pytest.raises(ModelFormatError):
        Router.load(copy)


def test_an_npy_header_announcing_more_data_than_the_member_holds_is_refused_unread(copy):
    """``idf`` whose header claims 10**12 float64s (8 TB) in a 64-byte member: refused from the
    header, with no allocation attempted."""
    lying = io.BytesIO()
    np.lib.format.write_array_header_1_0(lying, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (10**12,)})
    lying.write(b"\0" * 64)
    src = zipfile.ZipFile(io.BytesIO((copy / "model.npz").read_bytes()))
    with zipfile.ZipFile(copy / "model.npz", "w") as z:
        for info in src.infolist():
            z.writestr(info.filename, lying.getvalue() if info.filename == "idf.npy" else src.read(info))
    rehash(copy)
    with pytest.raises(ModelFormatError, match="header announces"):
        Router.load(copy)


def test_files_over_the_size_limits_are_refused_before_reading(copy, monkeypatch):
    monkeypatch.setattr(artifact, "MAX_JSON_BYTES", 50_000)  # model.json is ~120 KB
    with pytest.raises(ModelFormatError, match="more than a model file may hold"):
        Router.load(copy)
    monkeypatch.undo()
    monkeypatch.setattr(artifact, "MAX_ARRAY_BYTES", 1 << 20)  # the weights are ~16 MB
    with pytest.raises(ModelFormatError, match="more than a model array"):
        Router.load(copy)


def test_the_cli_says_one_line_and_exits_1_for_a_corrupt_model(copy, capsys):
    (copy / "routing.json").write_bytes(deep())
    rehash(copy)
    assert main(["predict", "jalan rusak", "--model", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lapor-nlp: error: [LAPOR-E033]") and "nested too deeply" in err


def _add_zero_member(npz: Path, name: str, nbytes: int) -> None:
    """Append a member of ``nbytes`` zeros (compressed to almost nothing) without holding it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (nbytes // 8,)})
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(npz, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open(f"{name}.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            for _ in range(nbytes // len(block)):
                fh.write(block)


def _peak_load_bytes(model: Path) -> int:
    tracemalloc.start()
    try:
        Router.load(model)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_extra_npz_member_is_never_read(copy, monkeypatch):
    baseline = _peak_load_bytes(copy)
    _add_zero_member(copy / "model.npz", "junk", 256 << 20)
    rehash(copy)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: (opened.append(getattr(name, "filename", name)),
                                                     real_open(self, name, *a, **k))[1])
    peak = _peak_load_bytes(copy)
    assert "junk.npy" not in opened and "idf.npy" in opened
    assert peak - baseline < 32 << 20, (baseline, peak)  # the 256 MiB member would show


def test_a_pinned_model_loads_only_with_its_own_hash(copy, capsys):
    pin = hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest()
    assert artifact.manifest_sha256(copy) == pin
    assert Router.load(copy, sha256=pin).version == lapor_nlp.load(copy, sha256=pin.upper()).version
    with pytest.raises(ModelPinError) as err:
        Router.load(copy, sha256="0" * 64)
    assert err.value.code == "LAPOR-E034" and pin in str(err.value)
    with pytest.raises(InputValueError):
        Router.load(copy, sha256="abc")
    # the pin covers every file: a changed file whose hash is updated changes the manifest
    (copy / "errors.md").write_text("changed", encoding="utf-8")
    rehash(copy)
    with pytest.raises(ModelPinError):
        Router.load(copy, sha256=pin)
    assert main(["predict", "jalan rusak", "--model", str(copy), "--model-sha256", pin]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LAPOR-E034" in err


def test_a_file_swapped_while_loading_is_never_half_accepted(copy):
    """routing.json is swapped back and forth with another version (whose hash the manifest does
    not hold) while the model loads: each load either refuses or holds the manifest's routing."""
    good = (copy / "routing.json").read_bytes()
    routing = json.loads(good)
    routing["swapped"] = True
    other = json.dumps(routing).encode("utf-8")
    for name, data in (("a", good), ("b", other)):
        (copy.parent / name).write_bytes(data)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            for name in ("a", "b"):
                shutil.copyfile(copy.parent / name, copy.parent / "next")
                (copy.parent / "next").replace(copy / "routing.json")

    t = threading.Thread(target=swap, daemon=True)
    t.start()
    accepted = refused = 0
    try:
        for _ in range(12):
            try:
                router = Router.load(copy)
            except ModelIntegrityError:
                refused += 1
                continue
            accepted += 1
            assert "swapped" not in router.routing
    finally:
        stop.set()
        t.join()
    assert accepted + refused == 12


def test_every_model_error_is_a_lapor_error_with_a_code(copy):
    (copy / "model.npz").write_bytes(b"\0" * 10)
    rehash(copy)
    with pytest.raises(LaporError) as err:
        artifact.load_model(copy)
    assert err.value.code.startswith("LAPOR-E03")


def test_classify_and_serve_refuse_a_model_that_is_not_the_pinned_one(copy, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,jalan rusak di Kota Malang\n", encoding="utf-8")
    pin = artifact.manifest_sha256(copy)
    assert main(["-q", "classify", str(src), "-o", str(tmp_path / "out.csv"), "--model", str(copy),
                 "--jobs", "1", "--model-sha256", pin]) == 0
    capsys.readouterr()
    wrong = "f" * 64
    assert main(["-q", "classify", str(src), "-o", str(tmp_path / "o2.csv"), "--model", str(copy),
                 "--jobs", "1", "--model-sha256", wrong]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LAPOR-E034" in err
    assert not (tmp_path / "o2.csv").exists() and not (tmp_path / "o2.csv.parts").exists()
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    assert main(["-q", "serve", "--model", str(copy), "--model-sha256", wrong, "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LAPOR-E034" in err



def _npz_bytes(arrays: dict, compressed: bool = True) -> bytes:
    out = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


def _central_entry(data: bytes, name: str) -> int:
    """The offset of ``name``'s entry in the zip's central directory (APPNOTE 4.3.12)."""
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    return at


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_members_read_as_np_load_reads_them(compressed):
    """Deflated members are inflated from the file's bytes (``_NpzArrays._inflate``), stored ones
    streamed: either way the arrays are np.load's, writable, Fortran order and empty ones too."""
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((300, 70)).astype(np.float32),
              "f": np.asfortranarray(rng.integers(0, 9, (40, 30))), "e": np.zeros(0, np.int32),
              "s": np.float64(2.5), "big": rng.integers(0, 3, 1 << 20).astype(np.int8)}
    data = _npz_bytes(arrays, compressed)
    pieces = artifact._NpzArrays(data, Path("m.npz"))
    pieces.INFLATE_PIECE = 50  # many pieces, the .npy header ending inside the second one
    for reader in (artifact._NpzArrays(data, Path("m.npz")), pieces):
        for name, want in arrays.items():
            got = reader[name]
            assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
            assert got.flags.writeable and got.flags.f_contiguous == want.flags.f_contiguous


def test_a_deflated_member_that_fails_its_crc_or_inflates_past_its_size_is_refused():
    data = _npz_bytes({"w": np.arange(5000, dtype=np.float64)})
    entry = _central_entry(data, "w.npy")
    bad_crc = bytearray(data)
    bad_crc[entry + 16] ^= 0xFF  # the CRC-32 the central directory gives
    with pytest.raises(ModelFormatError, match="CRC"):
        artifact._NpzArrays(bytes(bad_crc), Path("m.npz"))["w"]
    # A member whose .npy header and directory entry both say 5000 float64s, and whose deflated
    # stream holds 8 bytes more: refused, neither cut short nor read past its size. (Random
    # values: the stream must outlast ZipFile.open's first read, which checks the CRC itself.)
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (5000,)})
    member.write(np.random.default_rng(0).standard_normal(5001).tobytes())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", member.getvalue())
    lying = bytearray(out.getvalue())
    entry = _central_entry(bytes(lying), "w.npy")
    size = int.from_bytes(lying[entry + 24:entry + 28], "little")
    lying[entry + 24:entry + 28] = (size - 8).to_bytes(4, "little")
    with pytest.raises(ModelFormatError, match="more than"):
        artifact._NpzArrays(bytes(lying), Path("m.npz"))["w"]
