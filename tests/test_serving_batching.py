"""Adaptive batching: a batch closes at once when no request in progress could join it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from recseek.serving.batching import Batcher, Load
from recseek.serving.config import BatchSettings


def _batcher(load: Load | None, sizes: list[int], delay_ms: float) -> tuple[Batcher, ThreadPoolExecutor]:
    def execute(jobs):
        sizes.append(len(jobs))
        return [j.payload for j in jobs]

    ex = ThreadPoolExecutor(1)
    settings = BatchSettings(batch_size=8, max_batch_delay_ms=delay_ms, max_queue=100)
    return Batcher("m", "1", execute, settings, executor=ex, timeout_s=30, load=load), ex


def test_lone_request_does_not_wait_out_the_delay():
    """One HTTP request in progress and it is already queued: the batch runs now, not after 10 s."""
    sizes: list[int] = []

    async def scenario():
        load = Load()
        b, ex = _batcher(load, sizes, delay_ms=10_000)
        b.start()
        load.http = 1
        assert await asyncio.wait_for(b.submit("op", 1), timeout=5) == 1
        load.http = 0
        await b.close()
        ex.shutdown()

    asyncio.run(scenario())
    assert sizes == [1]


def test_batch_waits_while_other_requests_are_in_progress():
    """Three HTTP requests in progress, one queued: the worker waits and the next one joins its batch."""
    sizes: list[int] = []

    async def scenario():
        load = Load()
        b, ex = _batcher(load, sizes, delay_ms=300)
        b.start()
        load.http = 3
        first = b.submit("op", 1)
        await asyncio.sleep(0.05)
        second = b.submit("op", 2)
        assert await asyncio.gather(first, second) == [1, 2]
        load.http = 0
        await b.close()
        ex.shutdown()

    asyncio.run(scenario())
    assert sizes == [2]


@pytest.mark.parametrize("adaptive", [True, False])
def test_queue_places_are_released_when_a_request_is_answered(adaptive):
    sizes: list[int] = []

    async def scenario():
        load = Load() if adaptive else None
        b, ex = _batcher(load, sizes, delay_ms=0)
        b.start()
        futs = b.submit_many([("op", i) for i in range(5)])
        assert b.requests == 1 and (load is None or load.held == 1)
        assert await asyncio.gather(*futs) == list(range(5))
        assert b.requests == 0 and (load is None or load.held == 0)
        with pytest.raises(ValueError):
            b.submit_many([])
        await b.close()
        ex.shutdown()

    asyncio.run(scenario())
