"""The workqueue's guarantees (dedup, one worker per key, re-queue at done), delays, rate limiting and shutdown, on a
fake clock; a hypothesis state machine checks random operation sequences against a simple model."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.ratelimiter import ItemExponentialFailureRateLimiter
from kpack_core.runtime.workqueue import ShutDown, WorkQueue


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _delay_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("workqueue-delays")]


# -- the core queue ---------------------------------------------------------------------------------------------------


async def test_hands_out_keys_in_fifo_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0


async def test_a_key_is_queued_at_most_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 1  # counted in the depth, but not handed out
    second = asyncio.create_task(queue.get())
    await _settle()
    assert not second.done()
    queue.done("a")
    assert await asyncio.wait_for(second, 1) == "a"  # exactly one more run for any number of adds
    queue.done("a")
    assert len(queue) == 0


async def test_done_of_a_key_not_processing_is_ignored() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.done("a")  # queued, not processing: must not queue it twice
    queue.done("zzz")
    assert len(queue) == 1
    assert await queue.get() == "a"
    getter = asyncio.create_task(queue.get())
    await _settle()
    assert not getter.done()
    getter.cancel()


async def test_a_waiting_get_wakes_on_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await _settle()
    queue.add("a")
    queue.add("b")
    await _settle()
    assert sorted(getter.result() for getter in getters if getter.done()) == ["a", "b"]
    waiting = [getter for getter in getters if not getter.done()]
    assert len(waiting) == 1
    waiting[0].cancel()


async def test_a_cancelled_woken_getter_passes_the_key_on() -> None:
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await _settle()
    queue.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await _settle()
    assert first.cancelled()
    assert await asyncio.wait_for(second, 1) == "a"


async def test_get_after_shutdown_drains_then_raises() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    assert queue.shutting_down
    queue.add("c")  # ignored
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    with pytest.raises(ShutDown):
        await queue.get()
    queue.shutdown()  # idempotent


async def test_shutdown_wakes_waiting_getters_with_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await _settle()
    queue.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(result, ShutDown) for result in results)


async def test_done_after_shutdown_still_requeues_a_key_added_while_processing() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.shutdown()
    queue.done("a")
    assert await queue.get() == "a"
    queue.done("a")
    with pytest.raises(ShutDown):
        await queue.get()


async def test_shutdown_with_drain_waits_for_in_flight_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    a, b = await queue.get(), await queue.get()
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await _settle()
    assert queue.shutting_down
    assert not drain.done()
    queue.done(a)
    await _settle()
    assert not drain.done()
    queue.done(b)
    await asyncio.wait_for(drain, 1)


async def test_shutdown_with_drain_returns_at_once_when_idle() -> None:
    queue: WorkQueue[str] = WorkQueue()
    await asyncio.wait_for(queue.shutdown_with_drain(), 1)


# -- delays and rate limiting ------------------------------------------------------------------------------------


async def test_add_after_adds_once_the_delay_has_passed() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 5)
    await clock.advance(4.9)
    assert len(queue) == 0
    await clock.advance(0.1)
    assert len(queue) == 1
    assert await queue.get() == "a"
    await _settle()
    assert _delay_tasks() == []  # the waiter ends when nothing is parked
    assert clock.sleepers == 0


async def test_add_after_without_delay_adds_immediately() -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    queue.add_after("c", math.nan)
    assert len(queue) == 3
    assert _delay_tasks() == []


async def test_delayed_keys_come_out_in_ready_time_order() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("late", 3)
    await clock.settle()  # the waiter sleeps until 3
    queue.add_after("early", 1)  # and is woken to sleep until 1
    queue.add_after("middle", 2)
    await clock.advance(1)
    assert [await queue.get()] == ["early"]
    await clock.advance(5)
    assert [await queue.get(), await queue.get()] == ["middle", "late"]


async def test_re_adding_a_parked_key_keeps_the_earlier_time() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 10)
    queue.add_after("a", 2)  # earlier: wins
    queue.add_after("a", 5)  # later: ignored
    await clock.advance(2)
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    await clock.advance(10)  # the superseded entries do not add it again
    assert len(queue) == 0
    await _settle()
    assert _delay_tasks() == []


async def test_a_superseded_entry_does_not_fire_a_later_parking_early() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 10)  # superseded below; its heap entry stays until t+10
    queue.add_after("a", 1)
    await clock.advance(1)
    assert await queue.get() == "a"
    queue.done("a")
    queue.add_after("a", 11)  # due at t+12
    await clock.advance(9)  # t+10: the stale entry surfaces and must be skipped
    assert len(queue) == 0
    await clock.advance(2)
    assert len(queue) == 1


async def test_a_ready_delayed_key_already_queued_is_deduplicated() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 1)
    queue.add("a")
    await clock.advance(1)
    assert len(queue) == 1


async def test_shutdown_drops_parked_keys_and_leaves_no_task() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 1)
    queue.add_after("b", 2)
    await clock.settle()
    assert len(_delay_tasks()) == 1  # one waiter for all parked keys
    queue.shutdown()
    queue.add_after("c", 1)  # ignored
    await _settle()
    assert _delay_tasks() == []
    assert clock.sleepers == 0
    await clock.advance(10)
    assert len(queue) == 0


async def test_add_rate_limited_backs_off_per_key_and_forget_resets() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)  # the default controller rate limiter
    queue.add_rate_limited("a")
    assert len(queue) == 0
    await clock.advance(0.005)
    assert await queue.get() == "a"
    queue.done("a")
    queue.add_rate_limited("a")
    await clock.advance(0.009)
    assert len(queue) == 0
    await clock.advance(0.001)
    assert len(queue) == 1
    assert queue.num_requeues("a") == 2
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    assert len(queue) == 1  # forget clears the history, not the key


async def test_a_custom_rate_limiter_is_used() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(rate_limiter=ItemExponentialFailureRateLimiter(1.0, 4.0), clock=clock)
    for _ in range(4):
        queue.add_rate_limited("a")  # parked for 1, 2, 4, 4 s: the earliest wins
    await clock.advance(1)
    assert len(queue) == 1
    assert queue.num_requeues("a") == 4


async def test_add_rate_limited_after_shutdown_is_ignored() -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    queue.shutdown()
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 0


async def test_workers_process_every_key_once_at_a_time() -> None:
    queue: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    processed: list[int] = []
    idle = asyncio.Event()

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            assert key not in active
            active.add(key)
            await asyncio.sleep(0)
            if len(processed) < 200:
                queue.add(key % 7)  # re-add keys (often while they are processed)
            processed.append(key)
            active.discard(key)
            queue.done(key)
            if not len(queue) and not queue._processing:
                idle.set()

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for key in range(50):
        queue.add(key)
    await asyncio.wait_for(idle.wait(), 5)
    queue.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert set(range(50)) <= set(processed)


# -- random sequences against a model ------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d"])
BASE = 0.25
CAP = 4.0


class WorkQueueMachine(RuleBasedStateMachine):
    """Drives a queue on its own event loop and a fake clock; the model is lists and sets."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        limiter = ItemExponentialFailureRateLimiter(BASE, CAP)
        self.queue: WorkQueue[str] = WorkQueue("hypothesis-machine", rate_limiter=limiter, clock=self.clock)
        metrics = self.queue._metrics
        assert metrics is not None
        self.metrics = metrics
        self.adds_before, self.retries_before = metrics.adds, metrics.retries
        # The model.
        self.fifo: list[str] = []
        self.dirty: set[str] = set()
        self.processing: set[str] = set()
        self.parked: dict[str, tuple[float, int]] = {}
        self.sequence = 0
        self.failures: dict[str, int] = {}
        self.shut = False
        self.adds = 0
        self.retries = 0
        self.pending: list[asyncio.Task[str]] = []  # gets waiting on an empty queue, in arrival order

    def run(self, awaitable: object) -> object:
        async def step() -> object:
            result = await awaitable  # type: ignore[misc]
            await self.clock.settle()
            return result

        return self.loop.run_until_complete(step())

    @initialize()
    def start(self) -> None:
        self.run(asyncio.sleep(0))

    # The model's operations.

    def model_add(self, key: str) -> None:
        if self.shut or key in self.dirty:
            return
        self.adds += 1
        self.dirty.add(key)
        if key not in self.processing:
            self.fifo.append(key)

    def model_hand_out(self) -> str:
        key = self.fifo.pop(0)
        self.dirty.remove(key)
        self.processing.add(key)
        return key

    def collect_pending(self) -> None:
        """Waiting gets take queued keys in the order they started waiting."""
        while self.pending and self.pending[0].done():
            task = self.pending.pop(0)
            if self.shut and not self.fifo:
                assert isinstance(task.exception(), ShutDown)
                continue
            assert task.result() == self.model_hand_out()
        assert all(not task.done() for task in self.pending)
        assert not (self.pending and self.fifo), "a get waits while a key is queued: a lost wake-up"

    # Rules.

    @rule(key=KEYS)
    def add(self, key: str) -> None:
        async def act() -> None:
            self.queue.add(key)

        self.model_add(key)
        self.run(act())
        self.collect_pending()

    @precondition(lambda self: not self.pending)
    @rule()
    def get(self) -> None:
        if self.fifo:
            assert self.run(self.queue.get()) == self.model_hand_out()
        elif self.shut:
            with pytest.raises(ShutDown):
                self.run(self.queue.get())
        else:
            self.start_waiting_get()

    @precondition(lambda self: not self.shut and not self.fifo and len(self.pending) < 3)
    @rule()
    def start_waiting_get(self) -> None:
        task = self.loop.create_task(self.queue.get())
        self.run(asyncio.sleep(0))
        assert not task.done()
        self.pending.append(task)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def cancel_waiting_get(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.pending) - 1))
        task = self.pending.pop(index)
        task.cancel()
        self.run(asyncio.sleep(0))
        assert task.cancelled()
        self.collect_pending()

    @precondition(lambda self: self.pending)
    @rule(key=KEYS)
    def add_then_cancel_the_woken_get(self, key: str) -> None:
        """The add wakes the first waiting get, which is cancelled before it runs: the key must not be stranded."""
        task = self.pending.pop(0)

        async def act() -> None:
            self.queue.add(key)
            task.cancel()

        self.model_add(key)
        self.run(act())
        assert task.cancelled()
        self.collect_pending()

    @precondition(lambda self: self.processing)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.processing)))

        async def act() -> None:
            self.queue.done(key)

        self.processing.remove(key)
        if key in self.dirty:
            self.fifo.append(key)
        self.run(act())
        self.collect_pending()

    @rule(key=KEYS, delay=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]))
    def add_after(self, key: str, delay: float) -> None:
        async def act() -> None:
            self.queue.add_after(key, delay)

        self.model_add_after(key, delay)
        self.run(act())
        self.collect_pending()

    def model_add_after(self, key: str, delay: float) -> None:
        if self.shut:
            return
        self.retries += 1
        if delay <= 0:
            self.model_add(key)
            return
        ready_at = self.clock.now() + delay
        parked = self.parked.get(key)
        if parked is None or ready_at < parked[0]:
            self.sequence += 1
            self.parked[key] = (ready_at, self.sequence)

    @rule(key=KEYS)
    def add_rate_limited(self, key: str) -> None:
        async def act() -> None:
            self.queue.add_rate_limited(key)

        if not self.shut:
            failures = self.failures.get(key, 0)
            self.failures[key] = failures + 1
            self.model_add_after(key, min(BASE * 2**failures, CAP))
        self.run(act())
        self.collect_pending()

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        self.queue.forget(key)
        self.failures.pop(key, None)
        assert self.queue.num_requeues(key) == 0

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5, 5.0]))
    def advance(self, seconds: float) -> None:
        target = self.clock.now() + seconds
        for key, _ in sorted(self.parked.items(), key=lambda item: item[1]):
            if self.parked[key][0] <= target:
                del self.parked[key]
                self.model_add(key)
        self.run(self.clock.advance(seconds))
        self.collect_pending()

    @rule()
    def shutdown(self) -> None:
        async def act() -> None:
            self.queue.shutdown()

        self.shut = True
        self.parked.clear()
        self.run(act())
        self.collect_pending()
        assert not self.pending

    # Invariants: the queue's structures equal the model's.

    @invariant()
    def matches_the_model(self) -> None:
        queue = self.queue
        assert list(queue._queue) == self.fifo
        assert len(set(queue._queue)) == len(queue._queue)  # no key queued twice
        assert set(queue._dirty) == self.dirty
        assert set(queue._processing) == self.processing
        assert not set(queue._queue) & self.processing  # never handed out while processing
        assert len(queue) == len(self.dirty)
        assert {key: entry[0] for key, entry in queue._waiting.items()} == {
            key: ready_at for key, (ready_at, _) in self.parked.items()
        }
        for key in "abcd":
            assert queue.num_requeues(key) == self.failures.get(key, 0)
        assert self.metrics.adds - self.adds_before == self.adds
        assert self.metrics.retries - self.retries_before == self.retries

    def teardown(self) -> None:
        """Nothing is lost: after shutdown, finishing in-flight keys and draining hands out exactly the dirty keys."""
        try:
            for task in self.pending:
                task.cancel()
            self.queue.shutdown()
            expected = set(self.dirty)
            for key in sorted(self.processing):
                self.queue.done(key)
            drained: list[str] = []

            async def drain() -> None:
                while True:
                    try:
                        key = await self.queue.get()
                    except ShutDown:
                        return
                    drained.append(key)
                    self.queue.done(key)

            self.run(drain())
            assert sorted(drained) == sorted(expected)
            self.run(asyncio.sleep(0))
            assert [task for task in asyncio.all_tasks(self.loop) if not task.done()] == []
            assert self.clock.sleepers == 0
        finally:
            self.loop.close()


WorkQueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_workqueue_state_machine = WorkQueueMachine.TestCase
