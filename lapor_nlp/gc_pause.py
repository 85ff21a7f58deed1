"""The cyclic collector relaxed while a batch runs (``gc_paused``), shared by the router and the
batch machinery. A module of its own so that a process that only cuts and dispatches a backlog
(``classify --jobs N``'s parent) uses it without importing the router's stack."""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

# Young-generation threshold while a batch runs (CPython's default is 700). See gc_paused.
_BATCH_GC_GEN0 = 10_000
_gc_lock = threading.Lock()
_gc_batches = 0  # batches running now, in all threads
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def gc_paused(pause: bool = True):
    """Make the cyclic collector's young collections rarer while a batch runs, without switching
    it off: a batch builds many objects that all stay alive, and collecting every 700 allocations
    walks them again and again. Until 0.4 the collector was switched off for the block,
    process-wide, so another thread's cyclic garbage waited for as long as batches ran. Now
    collections still run, every 10,000 allocations, so no thread's garbage waits longer than
    that. Measured (docs/benchmarks.md): ``predict_batch`` at 0.86x the speed of switching it off
    and 1.6x the speed of no pause; 4 threads of ``predict_batch``, one making cyclic garbage,
    peaked at 484 MiB against 652 MiB switched off (100,000: 0.97x, but 935 MiB). Threads share
    one count: the threshold is raised by the first batch to start and restored by the last to
    end, and left alone when the program set its own meanwhile or keeps the collector off."""
    global _gc_batches, _gc_saved
    if not pause:
        yield
        return
    with _gc_lock:
        if _gc_batches == 0:
            saved = gc.get_threshold()
            _gc_saved = saved if 0 < saved[0] < _BATCH_GC_GEN0 else None
            if _gc_saved is not None:
                gc.set_threshold(_BATCH_GC_GEN0, *saved[1:])
        _gc_batches += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_batches -= 1
            if _gc_batches == 0 and _gc_saved is not None:
                if gc.get_threshold()[0] == _BATCH_GC_GEN0:  # not changed by the program meanwhile
                    gc.set_threshold(*_gc_saved)
                _gc_saved = None
