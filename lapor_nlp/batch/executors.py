"""Where a run's chunks are computed: an executor, chosen once per run.

An executor does two things for :func:`lapor_nlp.batch.classify_file`:

* ``model_key(model_dir, quiet=...)``: which model the workers load (the key every worker
  process caches its router under), the default model built first if need be;
* ``model_version(model_key)``: its version for the manifest, checked where the executor can
  check it (the run asks it once the workers are starting: they load the model meanwhile);
* ``start(model_key, spec, parts)`` -> a running executor with ``jobs``, ``window`` (how many
  chunks may be in flight), ``reads_blocks`` (whether it takes a CSV file's chunks as text, which
  its workers parse: :meth:`~lapor_nlp.batch.inputs.InputFile.chunks`), ``submit(index, rows)`` (a
  result whose ``get()`` gives :func:`~lapor_nlp.batch.chunk.run_chunk`'s triple) and
  ``close(ok)``.

:class:`LocalExecutor` runs the chunks on this machine, in this process (``jobs=1``) or in a pool of
worker processes that never copy this process: the caller may be a multi-threaded program (a
progress thread, a web app, a Dask client), and forking a process that holds other threads' locks
can deadlock the child. On Linux they are forked from multiprocessing's fork server, a fresh
interpreter that has loaded the model once (:func:`_pool_context`); elsewhere they are started with
``spawn`` and each loads the model itself (pool initializer). (As with any such pool, a script
calling ``classify_file`` with ``jobs > 1`` needs the ``if __name__ == "__main__":`` guard.)
Local workers parse their CSV chunks and write their own part files, so the parent only cuts the
input and dispatches.
:class:`lapor_nlp.batch.dask.DaskExecutor` runs them on a Dask cluster instead.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BatchCheckError
from .chunk import ChunkSpec, run_chunk
from .workdir import PartFiles

# -- the router cache: one Router per model and options in each process ---------------------------
_ROUTERS: dict[str, Any] = {}
_ROUTER_LOCK = threading.Lock()
LOADS: collections.Counter = collections.Counter()  # model loads in this process, by model key


def get_router(model_dir: str | None, options: dict | None = None):
    """The Router for ``model_dir`` (None: the default model) with ``Router.load`` options
    (``home_region``), loaded once per process."""
    key = (str(model_dir) if model_dir is not None else "", tuple(sorted((options or {}).items())))
    router = _ROUTERS.get(key)
    if router is None:
        with _ROUTER_LOCK:
            router = _ROUTERS.get(key)
            if router is None:
                from ..router import Router
                from ..training.default import ensure_default_model

                path = model_dir if model_dir is not None else ensure_default_model(quiet=True)
                router = Router.load(path, **(options or {}))
                _ROUTERS[key] = router
                LOADS[key[0]] += 1
    return router


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- this machine ---------------------------------------------------------------------------------
class LocalExecutor:
    """Chunks computed on this machine: ``jobs`` worker processes (None: every CPU this process may
    use), or this process alone for ``jobs <= 1``."""

    def __init__(self, jobs: int | None = None):
        self.jobs = jobs

    def model_key(self, model_dir, *, quiet: bool = True) -> str:
        """The model directory (the default model, built if need be, when None)."""
        if model_dir is None:
            from ..bundled import default_model_dir, is_built

            if is_built():  # (the training side, and its imports, only when it must be built)
                model_dir = default_model_dir()
            else:
                from ..training.default import ensure_default_model

                model_dir = ensure_default_model(quiet=quiet)  # says so on stderr when it builds
        return str(Path(model_dir).resolve())

    def model_version(self, model_key: str) -> str | None:
        """The model's version, the model verified here so that a missing or damaged one fails
        once, with its own error, not in every worker."""
        from ..artifact import model_version, verify

        return model_version(verify(model_key))

    def start(self, model_key: str | None, spec: ChunkSpec, parts: PartFiles):
        jobs = default_jobs() if self.jobs is None else self.jobs
        spec = replace(spec, parts=parts)
        return InProcess(model_key, spec) if jobs <= 1 else ProcessPool(model_key, spec, jobs)


class _Done:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


class InProcess:
    """jobs=1: the chunks run in this process, one after the other."""

    jobs = 1
    window = 1
    reads_blocks = False  # one process: cutting text and parsing it again would be work twice

    def __init__(self, model_dir: str | None, spec: ChunkSpec):
        self.router = get_router(model_dir, spec.router_options)
        self.spec = spec

    def submit(self, index, rows):
        return _Done(run_chunk(self.router, self.spec, index, rows))

    def close(self, ok: bool):
        pass


_WORKER: dict = {}


def _set_parent_death_signal() -> None:
    """Linux: die with the parent even when it is SIGKILLed (no orphan worker writing parts)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass


def die_with_run(run_pid: int) -> None:
    """For a process the run started (a worker, or the fork server the workers come from): die
    with its parent (:func:`_set_parent_death_signal`), and now if the run's process died before
    that took effect. Down the chain run -> fork server -> workers, each dies with the one above."""
    _set_parent_death_signal()
    try:
        os.kill(run_pid, 0)
    except ProcessLookupError:
        os._exit(1)
    except OSError:  # pragma: no cover - alive, but not ours to signal
        pass


def _exit_without_teardown() -> None:
    """A worker's last step (the last exit handler it registered, so the first to run): end the
    process as a forked multiprocessing child ends, with ``os._exit``, instead of tearing the
    interpreter down object by object: freeing a loaded router took 0.25 s at the end of every
    ``--jobs 2`` run, which the parent waits for before it joins the parts. Nothing is lost: a
    worker writes and closes its part files before returning a chunk's result, and its queues are
    flushed by multiprocessing before exit handlers run; its standard streams are flushed here.
    The exit status is 0 (a process pool does not read it: a worker that dies while it holds a
    chunk breaks the pool, which the parent reports)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - a closed or broken stream
            pass
    os._exit(0)


def _init_worker(model_dir, spec, parent_pid) -> None:
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_run(parent_pid)
    try:
        _WORKER["router"] = get_router(model_dir, spec.router_options)
    except BaseException as exc:  # reported by the first task, not a silently broken pool
        _WORKER["error"] = exc
    _WORKER["spec"] = spec
    atexit.register(_exit_without_teardown)  # the last registered: the first exit handler to run


def _started() -> None:
    """A pool's first tasks, one per worker: they make the pool start every worker at once."""


def _pool_task(index, rows):
    if "error" in _WORKER:
        raise _WORKER["error"]
    return run_chunk(_WORKER["router"], _WORKER["spec"], index, rows)


class _PoolResult:
    __slots__ = ("future",)

    def __init__(self, future):
        self.future = future

    def get(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:
            raise BatchCheckError(
                "a worker process died (killed, or out of memory?); the finished chunks are kept: "
                "run again with --resume (resume=True), perhaps with fewer --jobs") from None


#: The model a fork server loads before it forks the workers (``lapor_nlp.batch.preload``).
PRELOAD_ENV = "LAPOR_NLP_POOL_PRELOAD"
_SERVER_LOCK = threading.Lock()


def _pool_context(model_dir: str | None, options: dict):
    """How a pool's workers start. On Linux, forked from a fork server (a fresh interpreter that
    ``multiprocessing`` starts with ``spawn``'s safety: no thread of this process is copied) that
    has imported lapor-nlp and loaded the model once (:mod:`lapor_nlp.batch.preload`): each worker
    starts with the loaded router, shared copy-on-write, instead of importing and loading it again
    (0.65 s of CPU per worker, on the cores the run needs; the model's arrays are shared as well).
    Elsewhere ``spawn``, whose workers load the model themselves; where this process already runs
    a fork server (the preload is read only when a server starts), that one. Either way a worker's
    router comes from :func:`get_router`, so a preload that did not happen only costs time.
    Returns (the context, (the server, its pid) if started here: :meth:`ProcessPool.close` stops
    it, so that no process stays behind holding the model after the run; else None)."""
    import multiprocessing as mp

    server = _fork_server()
    if server is None:
        return mp.get_context("spawn"), None
    with _SERVER_LOCK:  # (two runs in two threads: one starts the server, the other uses it)
        if server._forkserver_pid is not None:  # this process runs one already
            return mp.get_context("forkserver"), None
        return _start_fork_server(server, model_dir, options)


def _start_fork_server(server, model_dir: str | None, options: dict):
    """:func:`_pool_context` where this process runs no fork server: start one that preloads."""
    import json
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    # The caller's own preload list is kept (and put back): ours is added for this server only.
    modules = list(getattr(server, "_preload_modules", ["__main__"]))
    ctx.set_forkserver_preload(modules + ["lapor_nlp.batch.preload"])
    before = os.environ.get(PRELOAD_ENV)
    os.environ[PRELOAD_ENV] = json.dumps([model_dir, options, os.getpid()])
    try:
        server.ensure_running()  # started now, with the variable in its environment
    except OSError:  # pragma: no cover - no fork server here (a sandbox without sockets?)
        return mp.get_context("spawn"), None
    finally:
        ctx.set_forkserver_preload(modules)
        if before is None:
            del os.environ[PRELOAD_ENV]
        else:
            os.environ[PRELOAD_ENV] = before
    return ctx, (server, server._forkserver_pid)


def _stop_fork_server(started: tuple, wait_s: float = 2.0) -> None:
    """Stop the fork server a pool started (``ForkServer._stop`` without its unbounded wait): close
    this process's end of its "alive" pipe, forget it (a later pool starts a new one) and reap it
    once it has exited. It exits when no process it forked is left; if another pool of this
    program was given processes by it meanwhile, it ends with them instead, and the run does not
    wait for that (``_stop`` would, for as long as that pool lives)."""
    from multiprocessing import util

    server, started_pid = started
    with server._lock:
        pid, alive, address = server._forkserver_pid, server._forkserver_alive_fd, server._forkserver_address
        if pid is None or pid != started_pid:  # stopped already, or a later one not ours
            return
        server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
    os.close(alive)
    if address and not util.is_abstract_socket_namespace(address):
        try:
            os.unlink(address)
        except OSError:  # pragma: no cover
            pass
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # pragma: no cover - reaped elsewhere
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _fork_server():
    """multiprocessing's fork server of this process (Linux, where it can be stopped), else None."""
    import multiprocessing as mp

    if not sys.platform.startswith("linux") or "forkserver" not in mp.get_all_start_methods():
        return None
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fields = ("_lock", "_forkserver_pid", "_forkserver_alive_fd", "_forkserver_address", "_preload_modules")
    return server if all(hasattr(server, f) for f in fields) else None


class ProcessPool:
    """jobs>1: a pool of worker processes, forked from a fork server that loaded the model, or
    spawned and loading it each (:func:`_pool_context`).
    (concurrent.futures rather than multiprocessing.Pool: a worker that dies makes the run fail
    with a message instead of waiting forever for the chunk it held.)"""

    def __init__(self, model_dir: str | None, spec: ChunkSpec, jobs: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = jobs
        self.window = 2 * jobs
        # CSV chunks go to the workers as blocks, which they read and parse (InputFile.chunks):
        # with 2 workers on 2 cores, parsing and pickling rows here took a third of a core.
        self.reads_blocks = True
        ctx, self._server = _pool_context(model_dir, spec.router_options)
        self.pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                        initargs=(model_dir, spec, os.getpid()))
        # Every worker now, not one at each of the first submits (the pool spawns a process only
        # when a task finds no idle one): they import and load the model while this process
        # checks the options and cuts the first chunks (the second worker started 0.1 s later).
        for _ in range(jobs):
            self.pool.submit(_started)

    def submit(self, index, rows):
        return _PoolResult(self.pool.submit(_pool_task, index, rows))

    def close(self, ok: bool):
        if not ok:  # stop now: the chunks in flight are redone by --resume
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                try:
                    proc.terminate()
                except Exception:  # pragma: no cover
                    pass
        self.pool.shutdown(wait=True, cancel_futures=not ok)
        if self._server is not None:
            _stop_fork_server(self._server)  # (reaped: its workers' CPU counts as this process's)
            self._server = None
