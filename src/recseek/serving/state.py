"""The state every router shares: configuration, registry, feedback store, executor, load."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Request

from ..errors import RecseekError
from .batching import Load
from .config import ServeConfig
from .metrics import Metrics
from .registry import Endpoint, ServingRegistry, retrain
from .store import FeedbackEvent, FeedbackStore

__all__ = ["Server", "server_of"]

log = logging.getLogger("recseek.serving")


class Server:
    """Everything the routes share: config, registry, feedback store, caches."""

    FOLDIN_CACHE = 10_000
    EXECUTOR_THREADS = 16

    def __init__(self, config: ServeConfig, feedback: FeedbackStore | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.load = Load()
        # batches run in these threads; each limits recseek's multi-core kernels to kernel_threads
        # (parallelism comes from several batch workers, and a busy machine makes short
        # multi-threaded kernel launches slow)
        self.executor = ThreadPoolExecutor(max_workers=self.EXECUTOR_THREADS, thread_name_prefix="recseek-serve",
                                           initializer=limit_kernel_threads, initargs=(config.kernel_threads,))
        self.registry = ServingRegistry(config, self.executor, self.metrics, self.load)
        self.feedback = feedback
        self._own_feedback = feedback is None
        self._foldin: OrderedDict[str, list[FeedbackEvent]] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._retrain_locks: dict[str, asyncio.Lock] = {}
        self.started = False

    async def start(self) -> None:
        """Open the feedback store and load every configured version; a failing one is logged and skipped."""
        loop = asyncio.get_running_loop()
        limit_kernel_threads(self.config.kernel_threads)  # cheap batches run on this thread
        if self.feedback is None:
            self.feedback = await loop.run_in_executor(self.executor, FeedbackStore, self.config.feedback_url)
        for spec in self.config.servables:
            try:
                await self.registry.register(spec.name, spec.version, at_startup=True)
                log.info("serving %s %s", spec.kind, spec.name)
            except RecseekError as e:
                log.error("not serving %s %s: %s", spec.kind, spec.name, e)
                if not any(key[0] == spec.name for key in self.registry.problems):
                    self.registry.record_failure(spec.name, spec.version or "latest", str(e))
        for spec in self.config.servables:
            if spec.retrain is not None and spec.retrain.interval_s > 0:
                self.spawn(self._retrain_every(spec.name, spec.retrain.interval_s))
        # what is loaded now lives as long as the server: keep it out of the cyclic garbage
        # collector, whose full passes over every library object would stall requests
        gc.collect()
        gc.freeze()
        self.started = True

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run ``coro`` in the background for as long as the server runs."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.registry.close()
        if self._own_feedback and self.feedback is not None:
            self.feedback.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def blocking(self, fn: Any, *args: Any) -> Any:
        """Run a blocking call in the executor."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ------------------------------------------------------------ feedback and fold-in
    async def user_events(self, user: str) -> list[FeedbackEvent]:
        cached = self._foldin.get(user)
        if cached is not None:
            self._foldin.move_to_end(user)
            return cached
        assert self.feedback is not None
        events = await self.blocking(self.feedback.events_for_user, user)
        self._foldin[user] = events
        if len(self._foldin) > self.FOLDIN_CACHE:
            self._foldin.popitem(last=False)
        return events

    async def add_feedback(self, events: list[FeedbackEvent]) -> int:
        assert self.feedback is not None
        n = await self.blocking(self.feedback.add, events)
        for e in events:
            self._foldin.pop(str(e.user), None)
        return n

    def forget_fold_in(self) -> None:
        """Drop cached feedback (after events were deleted)."""
        self._foldin.clear()

    # ------------------------------------------------------------ retraining
    async def retrain_and_register(self, name: str) -> dict[str, Any]:
        lock = self._retrain_locks.setdefault(name, asyncio.Lock())
        async with lock:
            version, _, n = await self.blocking(retrain, self.config, name, self.feedback)
            await self.registry.register(name, version, make_default=True)
            # keep the new version and the one before it; drain and drop older ones
            served = [v for _, v, ep, _ in self.registry.entries(name) if isinstance(ep, Endpoint)]
            for old in served[:-2]:
                await self.registry.unregister(name, old)
            return {"name": name, "version": version, "events": n}

    async def _retrain_every(self, name: str, interval: float) -> None:
        last = -1
        while True:
            await asyncio.sleep(interval)
            try:
                count = await self.blocking(self.feedback.count)
                if count == last:
                    continue
                info = await self.retrain_and_register(name)
                last = count
                log.info("retrained %s: version %s from %d events", name, info["version"], info["events"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep serving; report and try again next interval
                log.error("scheduled retraining of %s failed: %s", name, e)


def server_of(request: Request) -> Server:
    """The :class:`Server` of the application answering ``request`` (a FastAPI dependency)."""
    return request.app.state.server


def limit_kernel_threads(n: int) -> None:
    if n > 0:
        from .._numba import set_num_threads

        set_num_threads(n)
