"""Re-classify a backlog file: CSV, JSON Lines or Parquet in, the same rows plus predictions out.

:func:`classify_file` streams the input in chunks of ``chunk_size`` rows, so memory stays bounded
whatever the input size; it keeps every input column, adds the prediction columns
(:data:`~lapor_nlp.batch.rows.PRED_COLUMNS`) and writes the rows in input order.

Nothing is lost. A row that cannot be classified (no text, bytes that are not UTF-8, a malformed
line, a location field the complaint schema refuses) goes to ``OUTPUT.rejects.csv`` (or ``.jsonl``)
with its input line number and the reason, and the run checks ``rows read = rows written + rows
rejected`` before it reports success.

This module only orchestrates; each step has its own module: the input (:mod:`.inputs`), a
chunk's work (:mod:`.chunk`, :mod:`.rows`), the writers (:mod:`.formats`), the work directory that
makes a run crash-safe and resumable (:mod:`.workdir`), and where chunks run (:mod:`.executors` on
this machine, :mod:`.dask` on a cluster).
"""

from __future__ import annotations

import collections
import errno
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..columns import Columns
from ..errors import BatchCheckError, BatchInputError, BatchWriteError, LaporError
from ..io import detect_format, refuse_wide_text, require_file
from ..gc_pause import gc_paused
from .chunk import ChunkSpec
from .dask import DaskExecutor
from .executors import LocalExecutor
from .formats import OutputFormat, RejectsFormat, output_format, rejects_format
from .inputs import InputFile
from .rows import choose_prefix, default_columns
from .summary import Summary
from .workdir import (
    PartFiles, assemble, check_output_paths, finished_chunks, job_manifest, open_workdir, output_paths,
)

#: Without a terminal on stderr (cron, a CI log, a pipe), the progress is a log line this often.
LOG_EVERY_S = 30.0


def classify_file(
    input: str | Path,
    output: str | Path,
    *,
    model_dir: str | Path | None = None,
    jobs: int | None = None,
    chunk_size: int = 5000,
    resume: bool = False,
    columns: Columns | None = None,
    fmt: str | None = None,
    out_fmt: str | None = None,
    prefix: str | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    client=None,
    log=None,
    home_region: str | None = None,
    scope: str | None = None,
    model_sha256: str | None = None,
    review_queue: str | Path | None = None,
) -> Summary:
    """Classify every row of ``input`` into ``output`` (see :mod:`lapor_nlp.batch`).

    input, output:
        files; ``fmt`` is the input's format (default: from its name), ``out_fmt`` the output's
        (default: from the output's name, else the input's).
    model_dir:
        a model directory; None: the bundled default model.
    jobs:
        worker processes (default: all cores); 1 runs in this process.
    chunk_size:
        rows per chunk: the unit of work, of memory (about ``2 * jobs`` chunks are in flight) and
        of checkpointing.
    resume:
        continue an interrupted run from its finished chunks (refused if the input or options
        changed). Without it, an existing work directory is an error.
    columns:
        which columns hold the text, title and location (:class:`lapor_nlp.columns.Columns`;
        default: the text in ``text``). Every column is kept in the output.
    prefix:
        put before the prediction columns' names; default ``""``, or ``"pred_"`` when the input
        already has a column named like one of them.
    progress:
        a progress bar on stderr when it is a terminal; otherwise a line through ``log`` every
        :data:`LOG_EVERY_S` seconds (rows done of the total, rows per second, time left).
    home_region:
        the regency/city the backlog's portal serves ("Kota Surabaya"), for complaints that name
        no place (:class:`~lapor_nlp.router.Router`); default: the model's.
    scope:
        an institution's own desk (a taxonomy code such as ``"kemenimipas"``): route only among
        the agency types under it (:class:`~lapor_nlp.router.Router`).
    scheduler, client:
        run the chunks on a Dask cluster (an address like ``tcp://host:8786``, or a
        ``distributed.Client``) instead of local processes; ``model_dir`` must then be readable by
        every worker (None: each worker builds/uses the default model).
    log:
        a callable for one-line messages (default: stderr when ``progress``).
    model_sha256:
        pin the model: the sha256 of its ``manifest.json`` (:meth:`lapor_nlp.Router.load`'s
        ``sha256``); checked here and by every worker that loads it.
    review_queue:
        also write the rows that need review here, most useful to label first, with their
        alternatives (:mod:`lapor_nlp.batch.review_queue`; CSV, or JSON lines for ``.jsonl``).

    A full disk (any error writing the parts or the output) ends the run with
    :class:`~lapor_nlp.errors.BatchWriteError`; the finished chunks are kept for ``resume``.
    """
    t0 = time.perf_counter()
    if log is None:
        log = _to_stderr if progress else _nowhere
    if scheduler is not None or client is not None:
        executor = DaskExecutor(scheduler=scheduler, client=client)
    else:
        executor = LocalExecutor(jobs)
    job = _Job.plan(input, output, fmt=fmt, out_fmt=out_fmt, chunk_size=chunk_size, columns=columns,
                    prefix=prefix, log=log)
    model_key = executor.model_key(model_dir, quiet=not progress)
    router_options = {k: v for k, v in (("home_region", home_region), ("scope", scope)) if v}
    load_options = dict(router_options)  # the pin is not part of the job: model_version is
    if model_sha256:
        load_options["sha256"] = model_sha256

    def checks() -> str | None:
        """The model and the options, checked here (once, with their own errors, not in every
        worker), while the workers start; the model's version."""
        version = executor.model_version(model_key)
        if model_sha256 and Path(model_key).is_dir():  # a cluster's model may not be readable here
            from ..artifact import verify

            verify(model_key, sha256=model_sha256)
        if home_region:
            from ..jurisdiction import require_regency

            require_regency(home_region)
        if scope and Path(model_key).is_dir():  # a cluster's model may not be readable here
            from ..router import check_scope

            check_scope(model_key, scope)
        return version

    try:
        summary = job.run(executor, model_key, checks, router_options, load_options,
                          resume=resume, progress=progress, log=log)
    except LaporError:
        raise
    except OSError as exc:  # a full disk, a quota, a read-only file system: one clear line
        raise _write_error(exc, job.parts.dir) from None
    if review_queue is not None:
        from .review_queue import queue_for_run

        queue_for_run(review_queue, job, model_key, load_options, log)
    summary.seconds = time.perf_counter() - t0
    return summary


def _write_error(exc: OSError, parts_dir: Path) -> BatchWriteError:
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"
    n = finished_chunks(parts_dir)
    if n:
        then = (f"the {n} finished chunk(s) are kept in {parts_dir}: {fix}, then run the same "
                "command with --resume (resume=True)")
    else:
        then = f"no chunk had finished, so nothing is kept: {fix}, then run the same command again"
    return BatchWriteError(f"the run stopped: {what}{where}; {then}")


def _to_stderr(msg: str) -> None:
    print(f"lapor-nlp: {msg}", file=sys.stderr, flush=True)


def _nowhere(msg: str) -> None:
    pass


@dataclass
class _Job:
    """One backlog job, checked before any work: the input, where everything goes, the writers."""

    source: InputFile
    out_path: Path
    rej_path: Path
    parts: PartFiles
    columns: Columns
    prefix: str
    chunk_size: int
    output: OutputFormat
    rejects: RejectsFormat

    @classmethod
    def plan(cls, input, output, *, fmt, out_fmt, chunk_size, columns, prefix, log) -> _Job:
        """Refuse, before anything is written, what would fail later: a missing input, an
        unknown format, outputs that would overwrite the input, columns the file lacks."""
        in_path, out_path = Path(input), Path(output)
        require_file(in_path)
        in_fmt = detect_format(in_path, fmt)
        if in_fmt != "parquet":
            refuse_wide_text(in_path)  # UTF-16 rows would be classified as NUL-filled garbage
        out_fmt = detect_format(out_path, out_fmt, default=in_fmt)
        if chunk_size < 1:
            raise BatchInputError("chunk_size must be at least 1")
        rejects = rejects_format(out_fmt)
        rej_path, parts_dir = output_paths(out_path, rejects.name)
        check_output_paths(in_path, out_path, rej_path, parts_dir)
        columns = columns or default_columns()

        source = InputFile.open(in_path, in_fmt)
        known = source.known_columns()
        source.check_columns(columns, known)
        auto = prefix is None
        prefix = choose_prefix(known, prefix)
        if auto and prefix:
            log(f"the input already has column(s) named like predictions; the new ones are prefixed {prefix!r}")
        if out_fmt == "parquet" or in_fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise BatchInputError("Parquet needs pyarrow: pip install 'lapor-nlp[parquet]'") from None
        return cls(source=source, out_path=out_path, rej_path=rej_path,
                   parts=PartFiles(parts_dir, out_fmt, rejects.name), columns=columns, prefix=prefix,
                   chunk_size=chunk_size, rejects=rejects,
                   output=output_format(out_fmt, prefix, in_fmt=in_fmt, arrow_schema=source.arrow_schema))

    def manifest(self, model_version: str | None, router_options: dict) -> dict:
        return job_manifest(self.source.path, {
            "chunk_size": self.chunk_size, "columns": asdict(self.columns), "in_fmt": self.source.fmt,
            "out_fmt": self.output.name, "prefix": self.prefix, "model_version": model_version,
            **({"router_options": router_options} if router_options else {})})

    def run(self, executor, model_key: str | None, checks, router_options: dict,
            load_options: dict, *, resume: bool, progress: bool, log) -> Summary:
        """Start the executor (local workers begin loading the model), then run ``checks()`` (the
        model's version, or the error of a damaged model or an unknown option), open the work
        directory and classify every chunk."""
        spec = ChunkSpec(columns=self.columns, output=self.output, rejects=self.rejects, prefix=self.prefix,
                         layout=self.source.layout, router_options=load_options)
        parts = self.parts
        running = executor.start(model_key, spec, parts)
        try:
            model_version = checks()
            lock, done = open_workdir(parts, self.manifest(model_version, router_options), resume, log)
        except BaseException:
            running.close(False)
            raise
        summary = Summary(input=str(self.source.path), output=str(self.out_path), rejects=str(self.rej_path),
                          model_version=model_version)
        tally = _Tally(summary, parts.dir)
        ok = False
        try:
            summary.jobs = running.jobs
            if progress and sys.stderr.isatty():
                from tqdm import tqdm

                tally.bar = tqdm(total=self.source.estimate_rows(), unit=" rows", unit_scale=True,
                                 file=sys.stderr, dynamic_ncols=True, smoothing=0.1, desc="classify")
            elif progress:
                tally.report = _ProgressLog(self.source.estimate_rows(), log)

            def collect(item) -> None:
                index, n, fut = item
                meta, data, rdata = fut.get()
                if data is not None:  # computed elsewhere: the parts come back to be written here
                    parts.write(meta, data, rdata)
                tally.add(meta, n)

            pending: collections.deque = collections.deque()
            # Reading a chunk's rows is part of its batch for the collector (see run_chunk): the
            # rows all live until the chunk is done.
            with gc_paused():
                for index, rows in enumerate(self.source.chunks(self.chunk_size, blocks=running.reads_blocks)):
                    n = len(rows)
                    summary.rows_read += n
                    summary.chunks += 1
                    if index in done:
                        summary.chunks_resumed += 1
                        tally.add(done.pop(index), n, resumed=True)
                        continue
                    pending.append((index, n, running.submit(index, rows)))
                    del rows
                    while len(pending) >= running.window:
                        collect(pending.popleft())
                while pending:
                    collect(pending.popleft())
            if done:
                raise BatchCheckError(
                    f"{parts.dir} holds chunk(s) {sorted(done)[:5]} beyond the end of the input; "
                    f"remove {parts.dir} and run again")
            running.close(True)
            running = None

            tally.finish()
            if not summary.balanced:
                raise BatchCheckError(
                    f"rows read ({summary.rows_read:,}) != rows written ({summary.rows_written:,}) + "
                    f"rows rejected ({summary.rows_rejected:,}); the parts are kept in {parts.dir}")
            assemble(parts, summary.chunks, self.output, self.rejects, self.source.layout, self.out_path,
                     self.rej_path, summary.rows_written)
            ok = True
        finally:
            tally.close(ok)
            if running is not None:
                running.close(False)
            lock.release()
            if not ok and not parts.any_finished():
                # Failed before finishing any chunk (a cluster that cannot be reached, a model the
                # workers refuse): nothing to resume, so no work directory to block the next run.
                shutil.rmtree(parts.dir, ignore_errors=True)
        shutil.rmtree(parts.dir, ignore_errors=True)
        return summary


class _Tally:
    """Adds up the chunks' meta records into the summary, checking each as it comes."""

    def __init__(self, summary: Summary, parts_dir: Path):
        self.summary = summary
        self.parts_dir = parts_dir
        self.agencies: collections.Counter = collections.Counter()
        self.reasons: collections.Counter = collections.Counter()
        self.versions: set = set()
        self.bar = None
        self.report: _ProgressLog | None = None

    def add(self, meta: dict, n: int, resumed: bool = False) -> None:
        s, parts = self.summary, self.parts_dir
        if meta["rows"] != n or meta["written"] + meta["rejected"] != n:
            raise BatchCheckError(
                f"chunk {meta['index']}: {n} rows read but the part holds {meta['rows']} "
                f"({meta['written']} written + {meta['rejected']} rejected); remove {parts} and run again")
        s.rows_written += meta["written"]
        s.rows_rejected += meta["rejected"]
        s.needs_review += meta["needs_review"]
        self.agencies.update(meta["agencies"])
        self.reasons.update(meta["reasons"])
        if meta["written"]:
            self.versions.add(meta["model_version"])
            if len(self.versions) > 1:
                raise BatchCheckError(
                    f"the parts in {parts} were made by different models ({', '.join(map(str, self.versions))}); "
                    f"remove {parts} and run again")
        if self.bar is not None:
            self.bar.update(n)
        if self.report is not None:
            self.report.update(n, resumed)

    def finish(self) -> None:
        self.summary.agencies = dict(self.agencies)
        self.summary.rejected_by_reason = dict(self.reasons)
        if self.versions:
            self.summary.model_version = next(iter(self.versions))

    def close(self, ok: bool) -> None:
        if self.bar is not None:
            if ok:
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()


class _ProgressLog:
    """The progress bar's figures as a log line every :data:`LOG_EVERY_S` seconds, for a run
    whose stderr is not a terminal (cron mails, CI logs): rows done of the total, the rate of
    this run's own rows (chunks resumed from an earlier run cost nothing), the time left."""

    def __init__(self, total: int | None, log, clock=time.monotonic):
        self.total, self.log, self.clock = total, log, clock
        self.start = self.last = clock()
        self.done = self.fresh = 0

    def update(self, n: int, resumed: bool = False) -> None:
        self.done += n
        self.fresh += 0 if resumed else n
        now = self.clock()
        if now - self.last >= LOG_EVERY_S:
            self.last = now
            self.log(self.line(now))

    def line(self, now: float) -> str:
        rate = self.fresh / max(now - self.start, 1e-9)
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f", about {_duration(left / rate)} left" if rate > 0 else ""
            return (f"classify: {self.done:,} of ~{self.total:,} rows "
                    f"({100 * min(self.done / self.total, 1):.0f}%), {rate:,.0f} rows/s{eta}")
        return f"classify: {self.done:,} rows, {rate:,.0f} rows/s"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
