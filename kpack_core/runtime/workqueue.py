"""The workqueue between event handlers and reconcile workers, with client-go's semantics.

Handlers `add` keys; workers `await get()` a key, reconcile it and call `done`. The queue deduplicates keys, never
hands one key to two workers at once, delays keys (`add_after`) and backs failing keys off through a rate limiter
(`add_rate_limited`, `forget`). Named queues export the `workqueue_*` metrics (see `workqueue_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from kpack_core.runtime.clock import REAL_CLOCK, Clock, RealClock
from kpack_core.runtime.ratelimiter import RateLimiter, default_controller_rate_limiter
from kpack_core.runtime.workqueue_metrics import QueueMetrics, queue_metrics

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and holds no more keys: the worker should exit."""


class WorkQueue(Generic[T]):
    """A deduplicating, delaying, rate-limited FIFO of keys for asyncio workers (client-go's rate-limiting queue).

    Three structures keep the guarantees, exactly as in client-go:

    - `_queue`: the FIFO of keys ready to be handed out.
    - `_dirty`: every key added and not yet handed out (to the time it was added, for queue_duration). **A key is
      in the queue at most once** however often it is added before a worker takes it: `add` of a dirty key is a
      no-op. Its size is the queue's depth.
    - `_processing`: keys handed out and not yet `done` (to the time they were handed out, for work_duration).
      **A key being processed is never handed to another worker**: adding it marks it dirty but does not queue it.
      **A key added while processing is queued again at `done`**, once, however many adds came meanwhile.

    Delayed keys (`add_after`, `add_rate_limited`) are parked in `_heap`, a min-heap by ready time, with `_waiting`
    holding each parked key's live heap entry; re-parking a key keeps the earlier ready time. One waiter task,
    started lazily on the running loop and gone when nothing is parked, moves keys whose time has come into the
    queue with `add`. Parked keys count towards nothing (adds, depth) until they are ready.

    After `shutdown`, adds are ignored and parked keys dropped, but `get` still hands out keys already queued and
    raises `ShutDown` only once the queue is empty (classic client-go `Get`); `done` still re-queues a key that was
    added before the shutdown while being processed. `shutdown_with_drain` also waits until no key is in flight.

    Not thread-safe: use it from one event loop.
    """

    def __init__(
        self, name: str | None = None, *, rate_limiter: RateLimiter | None = None, clock: Clock = REAL_CLOCK
    ) -> None:
        self.name = name
        self._clock = clock
        # The bound method of the real clock costs a call more than time.monotonic; this is on every add/get/done.
        self._now: Callable[[], float] = time.monotonic if isinstance(clock, RealClock) else clock.now
        self._rate_limiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock)
        self._queue: deque[T] = deque()
        self._dirty: dict[T, float] = {}
        self._processing: dict[T, float] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._idle: asyncio.Event | None = None  # set when nothing is processing; created by shutdown_with_drain
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, tuple[float, int, T]] = {}
        self._sequence = itertools.count()
        self._waiter: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None  # resolves to wake the waiter before its timer
        self._timer: asyncio.Task[None] | None = None  # sleeps on the clock until the earliest ready time
        self._metrics: QueueMetrics | None = None
        if name:
            self._metrics = queue_metrics(name)
            self._metrics.bind(self._dirty, self._processing, self._now)

    # -- the core queue -------------------------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue `item` unless it is already queued; ignored while shutting down."""
        if self._shutting_down:
            return
        dirty = self._dirty
        if item in dirty:
            return
        dirty[item] = self._now()
        metrics = self._metrics
        if metrics is not None:
            metrics.adds += 1
        if item in self._processing:
            return  # `done` queues it
        self._queue.append(item)
        if self._getters:
            self._wake_getter()

    async def get(self) -> T:
        """The next key; it is processing until `done(key)`. Waits while the queue is empty.

        Raises `ShutDown` once the queue is shut down and empty.
        """
        queue = self._queue
        while not queue:
            if self._shutting_down:
                raise ShutDown
            await self._wait_for_item()
        item = queue.popleft()
        now = self._now()
        added = self._dirty.pop(item)
        self._processing[item] = now
        metrics = self._metrics
        if metrics is not None:
            metrics.queue_duration.observe(now - added)
        return item

    def done(self, item: T) -> None:
        """The worker finished `item`; if it was added meanwhile it is queued again now.

        A key that is not processing is ignored (client-go would queue a dirty key a second time).
        """
        started = self._processing.pop(item, None)
        if started is None:
            return
        metrics = self._metrics
        if metrics is not None:
            metrics.work_duration.observe(self._now() - started)
        if item in self._dirty:
            self._queue.append(item)
            if self._getters:
                self._wake_getter()
        if self._idle is not None and not self._processing:
            self._idle.set()

    def __len__(self) -> int:
        """The depth: keys added and not yet handed out, including keys re-added while processing (which client-go's
        `Len` leaves out until `done`); the `workqueue_depth` gauge. Parked delayed keys are not counted."""
        return len(self._dirty)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self) -> None:
        """Refuse further adds, drop parked keys and wake every waiting `get` (they drain the queue, then raise
        `ShutDown`). Idempotent."""
        self._shutting_down = True
        self._heap.clear()
        self._waiting.clear()
        for task in (self._waiter, self._timer):
            if task is not None:
                task.cancel()
        self._waiter = self._timer = self._wake = None
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """`shutdown`, then wait until every key handed out is `done`. Keys still queued are not waited for (workers
        may keep taking them, as `get` drains the queue)."""
        self.shutdown()
        if self._idle is None:
            self._idle = asyncio.Event()
        while self._processing:
            self._idle.clear()
            await self._idle.wait()

    async def _wait_for_item(self) -> None:
        getter = asyncio.get_running_loop().create_future()
        self._getters.append(getter)
        try:
            await getter
        except BaseException:
            getter.cancel()  # no-op if it was already woken
            with contextlib.suppress(ValueError):
                self._getters.remove(getter)
            # Woken but cancelled before it could take the key: pass the wake-up on, or a key would sit unserved.
            if self._queue and not getter.cancelled():
                self._wake_getter()
            raise

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    # -- delays and rate limiting ---------------------------------------------------------------------------------

    def add_after(self, item: T, delay: float) -> None:
        """Add `item` once `delay` seconds have passed (at once if `delay <= 0`). A key already parked keeps the
        earlier of its two ready times. Counts in `workqueue_retries_total`, zero delays included, like client-go.

        Must be called on the event loop when `delay > 0` (the waiter task runs there)."""
        if self._shutting_down:
            return
        metrics = self._metrics
        if metrics is not None:
            metrics.retries += 1
        if not delay > 0:
            self.add(item)
            return
        ready_at = self._now() + delay
        parked = self._waiting.get(item)
        if parked is not None and parked[0] <= ready_at:
            return
        # The superseded heap entry stays behind and is skipped when it surfaces (no decrease-key in heapq).
        entry = (ready_at, next(self._sequence), item)
        self._waiting[item] = entry
        heap = self._heap
        heapq.heappush(heap, entry)
        if self._waiter is None or self._waiter.done():  # done: cancelled from outside, e.g. by asyncio.run's end
            self._waiter = asyncio.get_running_loop().create_task(
                self._run_waiter(), name=f"workqueue-delays:{self.name or '-'}"
            )
        elif heap[0] is entry and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)  # it sleeps until a later time

    def add_rate_limited(self, item: T) -> None:
        """Add `item` after the rate limiter's delay for it (which counts one more failure of `item`)."""
        if self._shutting_down:
            return
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear `item`'s failure history in the rate limiter (after a success). It does not remove the key."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """How many rate-limited adds `item` had since it was last forgotten."""
        return self._rate_limiter.num_requeues(item)

    async def _run_waiter(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        waiting = self._waiting
        while True:
            now = self._now()
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)
                item = entry[2]
                if waiting.get(item) is entry:
                    del waiting[item]
                    self.add(item)
            if not waiting:
                heap.clear()  # only superseded entries left: no reason to sleep until they surface
            if not heap:
                self._waiter = None  # nothing parked: end; the next add_after starts a new waiter
                return
            wake = self._wake = loop.create_future()
            timer = self._timer = loop.create_task(self._ring(wake, heap[0][0] - now))
            try:
                await wake
            finally:
                timer.cancel()
                self._timer = self._wake = None

    async def _ring(self, wake: asyncio.Future[None], delay: float) -> None:
        await self._clock.sleep(delay)
        if not wake.done():
            wake.set_result(None)
