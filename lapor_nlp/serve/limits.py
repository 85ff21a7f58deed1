"""Load limits of one worker process: how many work requests are in flight, how long one may wait
for the prediction thread, and how many body bytes are held in memory.

Why a prediction thread: a prediction is CPU work of a few ms (a batch, up to seconds). Run on the
event loop, it holds up every other connection, so that under load ``/healthz`` waits behind the
queue and a full queue cannot even be refused quickly. Here the loop only reads, refuses and
writes; predictions run one at a time on one thread of this worker (more threads would not add
throughput under the GIL, only latency: use ``--workers`` for more cores).

Why shed rather than queue: a request that would wait longer than a client waits is better
answered 503 with ``Retry-After`` at once. Three gates, each cheap:

- at most ``max_concurrency`` work requests in flight (checked before the body is read, and again
  when the prediction is queued);
- an admitted request that waited more than ``queue_timeout`` s for the thread is refused when its
  turn comes (so a burst of large batches cannot push everyone's latency up);
- at most ``max_buffered_bytes`` of request bodies in memory, all requests together (a declared
  Content-Length is reserved up front).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from .settings import RETRY_AFTER


class Overloaded(Exception):
    """A request refused for load: answered 503 with ``Retry-After`` (``reason`` goes to the
    shed counter)."""

    def __init__(self, reason: str, message: str):
        super().__init__(reason)
        self.reason, self.message = reason, message
        self.retry_after = RETRY_AFTER


class Limits:
    """The load limits and their counters, one per app (the gate and the routes share it)."""

    def __init__(self, *, max_concurrency: int, queue_timeout: float, max_buffered_bytes: int):
        self.max_concurrency = max_concurrency
        self.queue_timeout = queue_timeout
        self.max_buffered_bytes = max_buffered_bytes
        self.in_flight = 0  # admitted work requests (event-loop thread only)
        self.buffered = 0  # body bytes held or reserved (event-loop thread only)
        self._executor: ThreadPoolExecutor | None = None

    # -- admission (event-loop thread) --------------------------------------------------------------
    def check(self) -> None:
        """Refuse a work request now if it could not be admitted (before its body is read)."""
        if self.in_flight >= self.max_concurrency:
            raise Overloaded("concurrency", f"the server is at its limit of {self.max_concurrency} "
                                            "requests in flight; retry after the Retry-After delay")

    def admit(self) -> None:
        self.check()
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def reserve(self, n: int) -> None:
        """Hold ``n`` more body bytes, or refuse the request."""
        if self.buffered + n > self.max_buffered_bytes:
            raise Overloaded("buffer", "the server holds as many request bodies as it may; retry "
                                       "after the Retry-After delay")
        self.buffered += n

    def unreserve(self, n: int) -> None:
        self.buffered -= n

    # -- the prediction thread ----------------------------------------------------------------------
    async def run(self, fn, *args):
        """``fn(*args)`` on the prediction thread; :class:`Overloaded` if it waited there longer
        than ``queue_timeout`` before its turn came."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="lapor-predict")
        queued = time.monotonic()
        timeout = self.queue_timeout

        def job():
            waited = time.monotonic() - queued
            if waited > timeout:
                raise Overloaded("queue_timeout", f"the request waited {waited:.2f} s for a "
                                                  "prediction slot; retry after the Retry-After delay")
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
