"""The work directory ``OUTPUT.parts/``: crash safety and resume.

Each finished chunk is written there as a data part, a rejects part, then a small ``.meta.json``
that marks the chunk done, each to a temporary name renamed into place, so that a chunk is either
whole or absent after a crash. ``manifest.json`` records the input's identity and the options, so
that a resumed run continues the same job and refuses a different one; a lock keeps a second run
out while one is writing. Only when every chunk is done are the parts joined, into temporary files
renamed to their final names: a partial OUTPUT never exists under its final name. Every temporary
file lives in the work directory (which is on OUTPUT's file system, so the renames stay atomic):
one left by a kill, during a chunk or during the final join, is removed by ``--resume`` and, with
the directory, at the end of the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import BatchCheckError, BatchInputError

MANIFEST_VERSION = 2  # 2: rejects parts end with raw_record
_HEAD_BYTES = 1 << 20  # the input's identity hashes its head: a whole-file hash would reread a backlog


def output_paths(output: str | Path, rej_fmt: str) -> tuple[Path, Path]:
    """``(rejects file, work directory)`` of an output path."""
    out = Path(output)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.rejects.{rej_fmt}"), out.with_name(out.name + ".parts")


def check_output_paths(in_path: Path, out_path: Path, rej_path: Path, parts: Path) -> None:
    """Refuse, before any work, what would overwrite the input or fail only at the end; the
    output's directory is created here (the one way to know it can be)."""
    src = in_path.resolve()
    for what, p in (("output", out_path), ("rejects file", rej_path), ("work directory", parts)):
        if p.resolve() == src:
            raise BatchInputError(f"the {what} {p} would be the input file; choose another output name")
    for p in (out_path, rej_path):
        if p.is_dir():
            raise BatchInputError(f"{p} is a directory; give the output file's path")
    target = out_path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchInputError(f"cannot create the output directory {target}: {exc.strerror}") from None
    if not os.access(target, os.W_OK):
        raise BatchInputError(f"cannot write in the output directory {target}")


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk, say: no half-written part left behind
        tmp.unlink(missing_ok=True)
        raise


def finished_chunks(parts_dir: Path) -> int:
    """How many chunks a work directory holds finished (0 when it does not exist)."""
    try:
        return sum(1 for _ in Path(parts_dir).glob("part-*.meta.json"))
    except OSError:
        return 0


@dataclass
class PartFiles:
    """The part files of a work directory: how they are named and written. Small and picklable, so
    that a worker process can write its own chunks' parts."""

    dir: Path
    out_fmt: str
    rej_fmt: str

    def names(self, index: int) -> tuple[str, str, str]:
        """``(data part, rejects part, meta)`` file names of chunk ``index``."""
        base = f"part-{index:07d}"
        return f"{base}.{self.out_fmt}", f"{base}.rejects.{self.rej_fmt}", f"{base}.meta.json"

    def write(self, meta: dict, data: bytes, rdata: bytes) -> None:
        """Write a chunk's parts; the meta file goes last, so its presence means the chunk is done."""
        dname, rname, mname = self.names(meta["index"])
        atomic_write(self.dir / dname, data)
        atomic_write(self.dir / rname, rdata)
        atomic_write(self.dir / mname, json.dumps(meta, ensure_ascii=False).encode("utf-8"))

    def finished(self) -> dict[int, dict]:
        """The meta of every chunk whose parts are all there, by chunk index."""
        done = {}
        for p in sorted(self.dir.glob("part-*.meta.json")):
            meta = json.loads(p.read_text(encoding="utf-8"))
            dname, rname, _ = self.names(meta["index"])
            if (self.dir / dname).is_file() and (self.dir / rname).is_file():
                done[meta["index"]] = meta
        return done

    def any_finished(self) -> bool:
        return any(self.dir.glob("part-*.meta.json"))

    def metas(self, n_chunks: int) -> list[dict]:
        return [json.loads((self.dir / self.names(i)[2]).read_text(encoding="utf-8")) for i in range(n_chunks)]


class Lock:
    """An exclusive lock on the work directory, so that two runs never write the same parts (the
    kernel drops it when the process dies, even by SIGKILL)."""

    def __init__(self, parts: Path):
        self.fh = open(parts / ".lock", "a")
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            self.fh.close()
            raise BatchInputError(f"another run is writing {parts} now; wait for it to end") from None

    def release(self):
        self.fh.close()


def input_identity(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_HEAD_BYTES))
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_sha256": h.hexdigest()}


def job_manifest(in_path: Path, options: dict) -> dict:
    """What ties a work directory to one job: the input's identity and the options."""
    return {"version": MANIFEST_VERSION, "input": input_identity(in_path), "options": options}


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b and k != "path":
            out.append(f"{prefix}{k} ({a!r} then, {b!r} now)")
    return out


def open_workdir(parts: PartFiles, job: dict, resume: bool, log) -> tuple[Lock, dict[int, dict]]:
    """Lock the work directory and return ``(lock, finished chunks)``: a new directory with the
    job's manifest, or, with ``resume``, an existing one checked to hold the same job."""
    path = parts.dir
    if path.exists():
        lock = Lock(path)  # first: a run still writing there is not an interrupted one
        if not resume:
            lock.release()
            raise BatchInputError(
                f"{path} holds the finished chunks of an earlier, interrupted run. Pass --resume "
                f"(resume=True) to finish it, or remove {path} to start again.")
        try:
            done = check_resume(parts, job)
        except BaseException:
            lock.release()
            raise
        log(f"resuming: {len(done)} finished chunk(s) found in {path}")
        return lock, done
    if resume:
        log(f"nothing to resume ({path} does not exist): starting from the beginning")
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise BatchInputError(f"cannot create the work directory {path}: {exc.strerror}") from None
    lock = Lock(path)
    try:
        atomic_write(path / "manifest.json", json.dumps(job, indent=1).encode("utf-8"))
    except BaseException:  # a full disk already: no half-made work directory to block the next run
        lock.release()
        shutil.rmtree(path, ignore_errors=True)
        raise
    return lock, {}


def check_resume(parts: PartFiles, job: dict) -> dict[int, dict]:
    """The finished chunks of the work directory, once its manifest shows it holds ``job``."""
    path = parts.dir
    mpath = path / "manifest.json"
    try:
        old = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BatchInputError(f"{path} has no readable manifest.json; remove {path} and run again") from None
    if old.get("version") != MANIFEST_VERSION:
        raise BatchInputError(
            f"cannot resume from {path}: its chunks were written by another lapor-nlp version (work "
            f"directory format {old.get('version')}, this version writes {MANIFEST_VERSION}); remove "
            f"{path} and run again, or finish it with the lapor-nlp version that started it")
    diff = differences({k: old.get(k) for k in ("input", "options")},
                       {k: job[k] for k in ("input", "options")})
    old_version = old.get("options", {}).get("model_version")
    if old_version is None:  # a Dask run on the default model: each worker builds its own
        diff = [d for d in diff if not d.startswith("options.model_version")]
    if diff:
        hint = ""
        if old_version is not None and job["options"].get("model_version") is None:
            hint = (" A cluster run on the default model cannot show its version here: resume it "
                    "with --model naming the model directory the first run used.")
        raise BatchInputError(
            f"cannot resume from {path}: it was made for a different job; changed: {'; '.join(diff)}. "
            f"Remove {path} to start again (or resume with the original input and options).{hint}")
    for p in path.iterdir():
        if p.name.endswith(".tmp"):  # a half-written part of the interrupted run
            p.unlink(missing_ok=True)
    return parts.finished()


def assemble(parts: PartFiles, n_chunks: int, output, rejects, layout, out_path: Path, rej_path: Path,
             rows_written: int) -> None:
    """Join the parts in order into the rejects file, then OUTPUT (each a temp file renamed), with
    the writers ``output`` and ``rejects``; ``layout`` gives the joined files' input columns."""
    metas = parts.metas(n_chunks)
    files = [parts.names(i) for i in range(n_chunks)]
    cols = layout.joined([m["columns"] for m in metas])
    rcols = layout.joined([m["reject_columns"] for m in metas])

    # In the work directory, not beside OUTPUT: a kill here leaves them where --resume (and the
    # end of the run) removes them.
    rtmp = parts.dir / f".{rej_path.name}.{os.getpid()}.tmp"
    tmp = parts.dir / f".{out_path.name}.{os.getpid()}.tmp"
    try:
        rejects.join(rtmp, [(parts.dir / f[1], m) for f, m in zip(files, metas)], rcols)
        output.join(tmp, [(parts.dir / f[0], m) for f, m in zip(files, metas)], cols)
        written = output.count_rows(tmp)
        if written is not None and written != rows_written:
            raise BatchCheckError(f"the joined output holds {written:,} rows, the parts {rows_written:,}; "
                                  f"the parts are kept in {parts.dir}")
        os.replace(rtmp, rej_path)
        os.replace(tmp, out_path)
    finally:
        for p in (tmp, rtmp):
            if p.exists():
                p.unlink()
