"""Workqueue throughput: 10k distinct keys through add/get/done by 4 workers, metrics on, on one core.

The baseline, measured in the same run, is the least a deduplicating asyncio queue must do: `asyncio.Queue` plus a
set. Each side runs several rounds; the figure is the median round.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from kpack_core.runtime.workqueue import ShutDown, WorkQueue

KEYS = 10_000
WORKERS = 4
ROUNDS = 15
_names = itertools.count()


@contextmanager
def one_core() -> Iterator[None]:
    """Pin the process to one CPU for the measurement (the event loop is single-threaded anyway; this keeps the
    scheduler from migrating it) and restore the previous affinity."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


async def workqueue_round(round_number: int) -> float:
    queue: WorkQueue[str] = WorkQueue(f"bench-workqueue-{next(_names)}")  # fresh counters for the checks below
    keys = [f"namespace-{i % 50}/object-{i}" for i in range(KEYS)]
    processed = 0

    async def worker() -> None:
        nonlocal processed
        get, done = queue.get, queue.done
        while True:
            try:
                key = await get()
            except ShutDown:
                return
            done(key)
            processed += 1

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    await asyncio.sleep(0)  # the workers wait on the empty queue
    start = time.perf_counter()
    add = queue.add
    for key in keys:
        add(key)
    queue.shutdown()  # the workers drain what is queued, then stop
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    assert processed == KEYS
    metrics = queue._metrics
    assert metrics is not None
    assert metrics.adds == KEYS
    assert len(queue) == 0
    assert sum(metrics.queue_duration.counts) == sum(metrics.work_duration.counts) == KEYS
    return KEYS / elapsed


async def bare_round(round_number: int) -> float:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    queued: set[str] = set()
    keys = [f"namespace-{i % 50}/object-{i}" for i in range(KEYS)]
    processed = 0

    async def worker() -> None:
        nonlocal processed
        while True:
            key = await queue.get()
            if key is None:
                return
            queued.discard(key)
            queue.task_done()
            processed += 1

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for key in keys:
        if key not in queued:
            queued.add(key)
            queue.put_nowait(key)
    for _ in range(WORKERS):
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    assert processed == KEYS
    return KEYS / elapsed


async def median_rate(run: Callable[[int], Awaitable[float]]) -> float:
    rates = []
    for round_number in range(ROUNDS):
        gc.collect()
        rates.append(await run(round_number))
    return statistics.median(rates)


async def test_workqueue_add_get_done() -> None:
    with one_core():
        await median_rate(workqueue_round)  # warm-up
        bare = await median_rate(bare_round)
        ours = await median_rate(workqueue_round)
    print(f"\nbench: workqueue_add_get_done: {ours:.0f} keys/s ({ours / bare:.2f} × bare asyncio dedup queue)")  # noqa: RUF001
