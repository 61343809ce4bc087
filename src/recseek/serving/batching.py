"""Dynamic batching per model version, with DJL Serving's semantics.

Requests of one model version wait in one bounded queue. A worker takes the oldest
request and keeps collecting until the batch holds ``batch_size`` requests or
``max_batch_delay_ms`` have passed since that first request arrived; the batch then runs
as one call in a thread (numpy and BLAS release the GIL) and its results are handed back
to the waiting requests. A full queue refuses new requests at once
(:class:`Overloaded`, HTTP 503 with ``Retry-After``); a request still unanswered after
its timeout gets :class:`RequestTimeout` (HTTP 504) and is skipped if not yet started.

Batches run in a worker thread, except for models whose batches are cheap: when the
running mean of a batch's compute time is below ``inline_below_ms``, batches run on the
event loop itself, which saves two thread switches and the GIL hand-overs that would cost
more than the batch (the first batch always runs in a thread, to measure it).

Batches close early when waiting cannot help (adaptive batching): with a :class:`Load`
shared by the server, a worker stops collecting as soon as the queue is empty and no
other HTTP request is in progress that could still join the batch, so a lone client never
waits out ``max_batch_delay_ms``, while concurrent clients still fill batches.

The queue limit ``max_queue`` counts requests (DJL's ``job_queue_size``), waiting or
running: a request for many users takes one place, and its jobs are queued together or
not at all.

``min_worker`` workers always run; up to ``max_worker`` run while the queue holds more
than a batch, extra ones stopping after ``max_idle_time`` idle seconds. Closing a batcher
drains it: queued requests are still answered before the workers stop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from ..errors import RecseekError
from .config import BatchSettings
from .metrics import Metrics

__all__ = ["Batcher", "Job", "Load", "Overloaded", "RequestTimeout"]


class Load:
    """Requests in the server: HTTP requests in progress and requests held by batchers.

    Both counters change on the event loop only. When every request in progress already
    sits in a batcher, nothing else can join a batch being collected.
    """

    __slots__ = ("http", "held")

    def __init__(self) -> None:
        self.http = 0
        self.held = 0

    def others_coming(self) -> bool:
        return self.http > self.held


class Overloaded(RecseekError):
    """The queue of a model version is full (HTTP 503)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeout(RecseekError):
    """A request was not answered within its timeout (HTTP 504)."""


class Job:
    """One queued request: an operation name, its payload and the future to answer."""

    __slots__ = ("op", "payload", "future", "enqueued", "timer")

    def __init__(self, op: str, payload: Any, future: asyncio.Future, enqueued: float) -> None:
        self.op = op
        self.payload = payload
        self.future = future
        self.enqueued = enqueued
        self.timer: asyncio.TimerHandle | None = None


#: Runs a batch in a worker thread; returns one result (or exception instance) per job.
Execute = Callable[[Sequence[Job]], list[Any]]


class Batcher:
    """The queue and workers of one model version."""

    def __init__(self, name: str, version: str, execute: Execute, settings: BatchSettings, *,
                 executor: Executor, metrics: Metrics | None = None, timeout_s: float = 5.0,
                 inline_below_ms: float = 0.0, load: Load | None = None) -> None:
        self.name = name
        self.version = version
        self.execute = execute
        self.settings = settings
        self.executor = executor
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.inline_below_ms = inline_below_ms
        self.load = load
        self._held = 0  # requests submitted and not yet fully answered
        self._cost_ms = float("inf")  # running mean of one batch's compute time
        self._labels = (name, version)
        self._queue: deque[Job] = deque()
        self._waiters: deque[asyncio.Future] = deque()
        self._workers: set[asyncio.Task] = set()
        self._worker_started: dict[asyncio.Task, float] = {}
        self._busy = 0
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0

    # ------------------------------------------------------------ state
    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def requests(self) -> int:
        """Requests waiting or running (what ``max_queue`` limits)."""
        return self._held

    @property
    def workers(self) -> int:
        return len(self._workers)

    @property
    def in_flight(self) -> int:
        return self._busy

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"batch_size": s.batch_size, "max_batch_delay_ms": s.max_batch_delay_ms, "max_queue": s.max_queue,
                "min_worker": s.min_worker, "max_worker": s.max_worker, "max_idle_time": s.max_idle_time,
                "workers": self.workers, "queue_depth": self.queue_depth, "requests": self._held, "busy_workers": self._busy, "batches": self.batches}

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for _ in range(self.settings.min_worker):
            self._spawn(extra=False)

    def rescale(self, settings: BatchSettings) -> None:
        """Apply new settings; workers are added at once, surplus ones stop when idle."""
        self.settings = settings
        missing = settings.min_worker - len(self._workers)
        for _ in range(max(0, missing)):
            self._spawn(extra=False)
        self._wake_all()

    async def close(self) -> None:
        """Stop accepting work once drained: answer every queued request, then stop."""
        self._closing = True
        self._wake_all()
        while self._queue or self._busy:
            self._idle.clear()
            await self._idle.wait()
        for t in list(self._workers):
            t.cancel()
        for t in list(self._workers):
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._workers.clear()

    # ------------------------------------------------------------ submitting
    def submit(self, op: str, payload: Any) -> asyncio.Future:
        """Queue one request of one job (synchronously) and return the future of its result.

        Raises :class:`Overloaded` when ``max_queue`` requests are already held.
        """
        return self.submit_many(((op, payload),))[0]

    def submit_many(self, jobs: Sequence[tuple[str, Any]]) -> list[asyncio.Future]:
        """Queue one request of several ``(operation, payload)`` jobs (all or none); their futures."""
        if not jobs:
            raise ValueError("a request needs at least one job")
        if self._held >= self.settings.max_queue:
            if self.metrics is not None:
                self.metrics.rejected.inc((*self._labels, "queue_full"))
            raise Overloaded(f"model {self.name} version {self.version} is overloaded "
                             f"({self.settings.max_queue} requests queued); retry later", 1)
        loop = self._loop or asyncio.get_running_loop()
        now = loop.time()
        request = _Request(len(jobs), self)
        futures = []
        for op, payload in jobs:
            fut = loop.create_future()
            fut.add_done_callback(request.one_done)
            job = Job(op, payload, fut, now)
            job.timer = loop.call_later(self.timeout_s, self._expire, job)
            self._queue.append(job)
            futures.append(fut)
        self._held += 1
        if self.load is not None:
            self.load.held += 1
        self._wake_one()
        if (len(self._queue) > self.settings.batch_size and self._busy >= len(self._workers)
                and len(self._workers) < self.settings.max_worker and not self._closing):
            self._spawn(extra=True)
        return futures

    def _request_done(self) -> None:
        self._held -= 1
        if self.load is not None:
            self.load.held -= 1

    def _expire(self, job: Job) -> None:
        if not job.future.done():
            if self.metrics is not None:
                self.metrics.rejected.inc((*self._labels, "timeout"))
            job.future.set_exception(RequestTimeout(
                f"model {self.name} version {self.version} did not answer within {self.timeout_s * 1000:.0f} ms"))

    # ------------------------------------------------------------ workers
    def worker_start_times(self) -> list[float]:
        """Wall-clock start time (Unix seconds) of each running worker, oldest first."""
        return sorted(self._worker_started.values())

    def _spawn(self, extra: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._work(extra))
        self._workers.add(task)
        self._worker_started[task] = time.time()
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task) -> None:
        self._workers.discard(task)
        self._worker_started.pop(task, None)

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        handle = None if timeout is None else loop.call_later(max(timeout, 0.0), _resolve, fut)
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()

    def _pop_live(self) -> Job | None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                return job
        return None

    def _surplus(self) -> bool:
        return len(self._workers) > self.settings.max_worker

    async def _work(self, extra: bool) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = self._pop_live()
            if first is None:
                if self._closing or self._surplus():
                    self._idle.set()
                    return
                idle_start = loop.time()
                idle = self.settings.max_idle_time
                await self._wait(idle if extra else None)
                if extra and not self._queue and loop.time() - idle_start >= idle:
                    return
                continue
            self._busy += 1  # collecting counts as busy, so close() waits for this batch
            batch = [first]
            size = self.settings.batch_size
            deadline = first.enqueued + self.settings.max_batch_delay_ms / 1000.0
            while len(batch) < size:
                job = self._pop_live()
                if job is not None:
                    batch.append(job)
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    break
                if self.load is not None and not self.load.others_coming():
                    break  # adaptive: no request in progress could still join this batch
                await self._wait(remaining)
            try:
                await self._run(batch, loop)
            finally:
                self._busy -= 1
                self.batches += 1
            if not self._queue and not self._busy:
                self._idle.set()

    async def _run(self, batch: list[Job], loop: asyncio.AbstractEventLoop) -> None:
        start = loop.time()
        live = [j for j in batch if not j.future.done()]
        if not live:
            return
        m = self.metrics
        if m is not None:
            for j in live:
                m.queue_time.observe(self._labels, start - j.enqueued)
            m.batch_size.observe(self._labels, len(live))
        t0 = time.perf_counter()
        try:
            if self.inline_below_ms > 0 and self._cost_ms < self.inline_below_ms:
                results = self.execute(live)
                cost = (time.perf_counter() - t0) * 1000
            else:
                results, cost = await loop.run_in_executor(self.executor, _timed, self.execute, live)
            self._cost_ms = cost if self._cost_ms == float("inf") else 0.8 * self._cost_ms + 0.2 * cost
        except asyncio.CancelledError:
            for j in live:
                if j.timer is not None:
                    j.timer.cancel()
                j.future.cancel()
            raise
        except Exception as e:  # the whole batch failed
            results = [e] * len(live)
        if m is not None:
            m.inference.observe(self._labels, time.perf_counter() - t0)
        for j, r in zip(live, results, strict=True):
            _answer(j, r)


class _Request:
    """The jobs of one request: the batcher holds one queue place until all are answered."""

    __slots__ = ("remaining", "batcher")

    def __init__(self, n: int, batcher: Batcher) -> None:
        self.remaining = n
        self.batcher = batcher

    def one_done(self, _fut: asyncio.Future) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.batcher._request_done()


def _timed(execute: Execute, jobs: Sequence[Job]) -> tuple[list[Any], float]:
    """Run a batch in a worker thread; also return its CPU time in ms (GIL waits excluded)."""
    t0 = time.thread_time()
    out = execute(jobs)
    return out, (time.thread_time() - t0) * 1000


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _answer(job: Job, result: Any) -> None:
    if job.timer is not None:
        job.timer.cancel()
    if job.future.done():
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)
