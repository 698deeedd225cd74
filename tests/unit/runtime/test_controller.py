"""`Controller` without a server: every row of the reconcile outcome table (queue action and metrics, read back through
the Prometheus text format), workers that survive failures, graceful stop, concurrency limits and the worker gauges.

Each test uses its own controller name, so its series are its own; values are still compared as deltas.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import pytest
import structlog.testing
from prometheus_client.parser import text_string_to_metric_families

from kpack_core.runtime.clock import REAL_CLOCK, Clock, FakeClock
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.metrics import RECONCILE_TIME_BUCKETS, exposition
from kpack_core.runtime.reconcile import Reconciler, ReportedError, Request, Result, TerminalError

Behaviour = Callable[[Request], Awaitable[Result]]

COUNTERS = {
    "success": ("controller_runtime_reconcile_total", {"result": "success"}),
    "error": ("controller_runtime_reconcile_total", {"result": "error"}),
    "requeue": ("controller_runtime_reconcile_total", {"result": "requeue"}),
    "requeue_after": ("controller_runtime_reconcile_total", {"result": "requeue_after"}),
    "errors": ("controller_runtime_reconcile_errors_total", {}),
    "terminal": ("controller_runtime_terminal_reconcile_errors_total", {}),
    "timeouts": ("controller_runtime_reconcile_timeouts_total", {}),
    "panics": ("controller_runtime_reconcile_panics_total", {}),
    "time_count": ("controller_runtime_reconcile_time_seconds_count", {}),
}


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sample(name: str, controller: str, **labels: str) -> float | None:
    """The value of one sample of `controller` in the exposition, or None when the series does not exist."""
    for family in text_string_to_metric_families(exposition().decode()):
        for s in family.samples:
            if s.name != name or s.labels.get("controller") != controller:
                continue
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def snapshot(controller: str) -> dict[str, float]:
    """Every counter of `controller` (missing series read as 0)."""
    text = exposition().decode()
    values = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("controller") != controller:
                continue
            for key, (name, labels) in COUNTERS.items():
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    values[key] = float(s.value)
    return values


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The counters that changed, with their increase."""
    return {key: after[key] - before[key] for key in before if after[key] != before[key]}


class MakeController(Protocol):
    def __call__(
        self,
        prefix: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int = 1,
        reconcile_timeout: float | None = None,
        clock: Clock = ...,
    ) -> Controller: ...


@pytest.fixture
async def make() -> AsyncIterator[MakeController]:
    """Controllers with unique names, stopped after the test so no worker or delayed-key task outlives it."""
    created: list[Controller] = []

    def factory(
        prefix: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int = 1,
        reconcile_timeout: float | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> Controller:
        controller = Controller(
            unique_name(prefix),
            reconciler,
            max_concurrent_reconciles=max_concurrent_reconciles,
            reconcile_timeout=reconcile_timeout,
            clock=clock,
        )
        created.append(controller)
        return controller

    yield factory
    for controller in created:
        await controller.stop(0.1)
    await settle()


class FakeReconciler:
    """Runs `behaviour` for each request and records the requests it was called with, in order."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.calls: list[Request] = []

    async def reconcile(self, request: Request) -> Result:
        self.calls.append(request)
        if self.behaviour is None:
            return Result()
        return await self.behaviour(request)


async def run_once(controller: Controller, request: Request) -> None:
    """What a worker does with one key: get it, reconcile it, mark it done."""
    controller.queue.add(request)  # a no-op when the key is already queued
    got = await asyncio.wait_for(controller.queue.get(), 1)
    assert got == request
    try:
        await controller.reconcile_handler(got)
    finally:
        controller.queue.done(got)


async def assert_comes_back_after(controller: Controller, clock: FakeClock, delay: float) -> None:
    """The key is parked: not in the queue before `delay` has passed, in it right after."""
    assert len(controller.queue) == 0
    await clock.advance(delay * 0.8)
    assert len(controller.queue) == 0, f"requeued before {delay} s"
    await clock.advance(delay * 0.4)
    assert len(controller.queue) == 1, f"not requeued after {delay} s"


@asynccontextmanager
async def running(controller: Controller, grace: float = 1.0) -> AsyncIterator[Controller]:
    controller.start()
    try:
        yield controller
    finally:
        await controller.stop(grace)


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- the outcome table (reconcile_handler called directly, no workers) ------------------------------------------------


async def test_an_exception_requeues_with_growing_backoff_and_counts_an_error(make: MakeController) -> None:
    clock = FakeClock()

    async def fail(request: Request) -> Result:
        raise RuntimeError("boom")

    controller = make("exc", FakeReconciler(fail), clock=clock)
    request = Request("ns", "a")
    before = snapshot(controller.name)
    for attempt, delay in enumerate([0.005, 0.01, 0.02, 0.04], start=1):
        await run_once(controller, request)
        assert controller.queue.num_requeues(request) == attempt
        await assert_comes_back_after(controller, clock, delay)
        assert delta(before, snapshot(controller.name)) == {"error": attempt, "errors": attempt, "time_count": attempt}


async def test_a_reported_error_is_retried_like_any_and_logged_without_a_traceback(make: MakeController) -> None:
    clock = FakeClock()
    failures: list[Exception] = [ReportedError("image r.io/a:1 not found"), RuntimeError("a bug")]

    async def fail(request: Request) -> Result:
        raise failures.pop(0)

    controller = make("reported", FakeReconciler(fail), clock=clock)
    request = Request("ns", "a")
    with structlog.testing.capture_logs() as logs:
        await run_once(controller, request)
        await assert_comes_back_after(controller, clock, 0.005)
        await run_once(controller, request)
    failed = [entry for entry in logs if entry["event"] == "reconcile failed; requeued with backoff"]
    assert [(entry["error"], entry["exc_info"]) for entry in failed] == [
        ("ReportedError: image r.io/a:1 not found", False),
        ("RuntimeError: a bug", True),
    ]
    assert controller.queue.num_requeues(request) == 2


async def test_the_error_backoff_is_per_key(make: MakeController) -> None:
    """An error backs off only its own key: another key's failure history is untouched."""
    clock = FakeClock()

    async def fail(request: Request) -> Result:
        raise ValueError(request.name)

    controller = make("exc2", FakeReconciler(fail), clock=clock)
    a, b = Request("ns", "a"), Request(None, "b")
    await run_once(controller, a)
    await clock.advance(0.006)
    await run_once(controller, a)
    await run_once(controller, b)
    assert controller.queue.num_requeues(a) == 2
    assert controller.queue.num_requeues(b) == 1


async def test_a_terminal_error_is_not_requeued_and_resets_the_backoff(make: MakeController) -> None:
    clock = FakeClock()
    outcomes: list[Exception] = [RuntimeError("transient"), TerminalError("invalid spec")]

    async def behaviour(request: Request) -> Result:
        raise outcomes.pop(0)

    controller = make("terminal", FakeReconciler(behaviour), clock=clock)
    request = Request("ns", "a")
    before = snapshot(controller.name)
    await run_once(controller, request)
    await assert_comes_back_after(controller, clock, 0.005)
    await run_once(controller, request)
    assert controller.queue.num_requeues(request) == 0  # forgotten
    await clock.advance(3600)
    assert len(controller.queue) == 0  # never comes back by itself
    assert delta(before, snapshot(controller.name)) == {"error": 2, "errors": 2, "terminal": 1, "time_count": 2}


async def test_a_timeout_counts_a_timeout_and_requeues_with_backoff(make: MakeController) -> None:
    clock = FakeClock()
    cancelled = asyncio.Event()

    async def hang(request: Request) -> Result:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    controller = make("timeout", FakeReconciler(hang), reconcile_timeout=0.02, clock=clock)
    request = Request("ns", "slow")
    before = snapshot(controller.name)
    await asyncio.wait_for(run_once(controller, request), 2)
    assert cancelled.is_set()  # the reconciler saw its deadline as a cancellation
    assert controller.queue.num_requeues(request) == 1
    await assert_comes_back_after(controller, clock, 0.005)
    assert delta(before, snapshot(controller.name)) == {"error": 1, "errors": 1, "timeouts": 1, "time_count": 1}


async def test_a_reconcile_within_its_timeout_is_a_success(make: MakeController) -> None:
    controller = make("intime", FakeReconciler(), reconcile_timeout=5.0, clock=FakeClock())
    before = snapshot(controller.name)
    await run_once(controller, Request("ns", "a"))
    assert delta(before, snapshot(controller.name)) == {"success": 1, "time_count": 1}


async def test_a_timeout_error_of_the_reconcilers_own_is_a_plain_error(make: MakeController) -> None:
    clock = FakeClock()

    async def upstream_timeout(request: Request) -> Result:
        raise TimeoutError("registry did not answer")

    controller = make("owntimeout", FakeReconciler(upstream_timeout), clock=clock)
    request = Request("ns", "a")
    before = snapshot(controller.name)
    await run_once(controller, request)
    assert controller.queue.num_requeues(request) == 1
    assert delta(before, snapshot(controller.name)) == {"error": 1, "errors": 1, "time_count": 1}


async def test_requeue_after_forgets_the_backoff_and_comes_back_after_the_delay(make: MakeController) -> None:
    clock = FakeClock()
    outcomes: list[Exception | Result] = [RuntimeError("1"), RuntimeError("2"), Result(requeue_after=30.0)]

    async def behaviour(request: Request) -> Result:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    controller = make("requeueafter", FakeReconciler(behaviour), clock=clock)
    request = Request("ns", "a")
    before = snapshot(controller.name)
    await run_once(controller, request)
    await clock.advance(0.006)
    await run_once(controller, request)
    assert controller.queue.num_requeues(request) == 2
    await clock.advance(0.011)
    await run_once(controller, request)
    assert controller.queue.num_requeues(request) == 0  # forget: the error backoff starts over
    await assert_comes_back_after(controller, clock, 30.0)
    assert delta(before, snapshot(controller.name)) == {"error": 2, "errors": 2, "requeue_after": 1, "time_count": 3}


async def test_an_empty_result_is_a_success_and_forgets_the_backoff(make: MakeController) -> None:
    clock = FakeClock()
    outcomes: list[Exception | Result] = [RuntimeError("1"), Result()]

    async def behaviour(request: Request) -> Result:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    controller = make("success", FakeReconciler(behaviour), clock=clock)
    request = Request(None, "cluster-scoped")
    before = snapshot(controller.name)
    await run_once(controller, request)
    await clock.advance(0.006)
    await run_once(controller, request)
    assert controller.queue.num_requeues(request) == 0
    await clock.advance(3600)
    assert len(controller.queue) == 0  # not requeued
    assert delta(before, snapshot(controller.name)) == {"error": 1, "errors": 1, "success": 1, "time_count": 2}
    # After a success the next failure starts the backoff from the beginning again.
    outcomes.append(RuntimeError("again"))
    await run_once(controller, request)
    await assert_comes_back_after(controller, clock, 0.005)


async def test_the_reconcile_time_histogram_observes_the_clock_time_of_each_reconcile(make: MakeController) -> None:
    clock = FakeClock()

    async def slow(request: Request) -> Result:
        await clock.sleep(0.32)
        return Result()

    controller = make("time", FakeReconciler(slow), clock=clock)
    name = controller.name
    bucket = "controller_runtime_reconcile_time_seconds_bucket"
    before_sum = sample("controller_runtime_reconcile_time_seconds_sum", name) or 0.0
    task = asyncio.create_task(run_once(controller, Request("ns", "a")))
    await clock.advance(0.32)
    await asyncio.wait_for(task, 1)
    assert sample("controller_runtime_reconcile_time_seconds_sum", name) == pytest.approx(before_sum + 0.32)
    assert sample("controller_runtime_reconcile_time_seconds_count", name) == 1
    assert sample(bucket, name, le="0.3") == 0
    assert sample(bucket, name, le="0.35") == 1
    assert sample(bucket, name, le="+Inf") == 1
    bounds = [
        float(s.labels["le"])
        for family in text_string_to_metric_families(exposition().decode())
        for s in family.samples
        if s.name == bucket and s.labels.get("controller") == name and s.labels["le"] != "+Inf"
    ]
    assert bounds == list(RECONCILE_TIME_BUCKETS)


# -- metrics at start ------------------------------------------------------------------------------------------------


async def test_start_initialises_every_series_at_zero(make: MakeController) -> None:
    controller = make("init", FakeReconciler(), max_concurrent_reconciles=3, clock=FakeClock())
    name = controller.name
    async with running(controller):
        for result in ("success", "error", "requeue", "requeue_after"):
            assert sample("controller_runtime_reconcile_total", name, result=result) == 0
        for counter in (
            "controller_runtime_reconcile_errors_total",
            "controller_runtime_terminal_reconcile_errors_total",
            "controller_runtime_reconcile_panics_total",
            "controller_runtime_reconcile_timeouts_total",
            "controller_runtime_reconcile_time_seconds_count",
            "controller_runtime_active_workers",
        ):
            assert sample(counter, name) == 0, counter
        assert sample("controller_runtime_max_concurrent_reconciles", name) == 3


# -- workers ---------------------------------------------------------------------------------------------------------


async def test_an_exception_never_kills_a_worker(make: MakeController) -> None:
    clock = FakeClock()

    async def behaviour(request: Request) -> Result:
        if request.name == "bad":
            raise RuntimeError("boom")
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("survive", reconciler, clock=clock)
    bad, good1, good2 = Request("ns", "bad"), Request("ns", "good1"), Request("ns", "good2")
    async with running(controller):
        controller.queue.add(bad)
        controller.queue.add(good1)
        await clock.settle()
        assert reconciler.calls == [bad, good1]
        controller.queue.add(good2)
        await clock.settle()
        assert reconciler.calls == [bad, good1, good2]
        await clock.advance(0.006)  # the failed key comes back on its backoff, to the same (single) worker
        assert reconciler.calls == [bad, good1, good2, bad]
        await clock.advance(0.011)
        assert reconciler.calls == [bad, good1, good2, bad, bad]
        assert controller.queue.num_requeues(bad) == 3


async def test_a_terminal_error_and_a_timeout_do_not_kill_a_worker_either(make: MakeController) -> None:
    clock = FakeClock()

    async def behaviour(request: Request) -> Result:
        if request.name == "terminal":
            raise TerminalError("no")
        if request.name == "slow":
            await asyncio.Event().wait()
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("survive2", reconciler, reconcile_timeout=0.02, clock=clock)
    keys = [Request("ns", "terminal"), Request("ns", "slow"), Request("ns", "fine")]
    async with running(controller):
        for key in keys:
            controller.queue.add(key)
        for _ in range(200):
            if len(reconciler.calls) == 3:
                break
            await asyncio.sleep(0.005)
        assert reconciler.calls == keys


async def test_a_cancelled_error_from_inside_a_reconcile_does_not_kill_the_worker(make: MakeController) -> None:
    clock = FakeClock()

    async def behaviour(request: Request) -> Result:
        if request.name == "victim":
            shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            shared.cancel()  # cancelled by some other party, not by the controller
            await shared
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("cancelled", reconciler, clock=clock)
    victim, after = Request("ns", "victim"), Request("ns", "after")
    async with running(controller):
        controller.queue.add(victim)
        await clock.settle()
        controller.queue.add(after)
        await clock.settle()
        assert reconciler.calls == [victim, after]


async def test_a_key_is_never_reconciled_by_two_workers_at_once(make: MakeController) -> None:
    release = asyncio.Event()
    active: list[Request] = []
    overlaps: list[Request] = []

    async def behaviour(request: Request) -> Result:
        if request in active:
            overlaps.append(request)
        active.append(request)
        try:
            await release.wait()
        finally:
            active.remove(request)
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("onekey", reconciler, max_concurrent_reconciles=4, clock=FakeClock())
    a = Request("ns", "a")
    async with running(controller):
        controller.queue.add(a)
        await settle()
        for _ in range(5):
            controller.queue.add(a)  # changed while being reconciled
        await settle()
        assert reconciler.calls == [a]
        release.set()
        await settle()
        assert reconciler.calls == [a, a]  # once more, however many adds came meanwhile
        assert overlaps == []


async def test_workers_run_reconciles_concurrently_up_to_the_limit(make: MakeController) -> None:
    release = asyncio.Event()

    async def behaviour(request: Request) -> Result:
        await release.wait()
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("limit", reconciler, max_concurrent_reconciles=2, clock=FakeClock())
    async with running(controller):
        for name in ("a", "b", "c"):
            controller.queue.add(Request("ns", name))
        await settle()
        assert [r.name for r in reconciler.calls] == ["a", "b"]
        release.set()
        await settle()
        assert [r.name for r in reconciler.calls] == ["a", "b", "c"]


async def test_the_active_workers_gauge_counts_reconciles_in_progress(make: MakeController) -> None:
    gates = {"a": asyncio.Event(), "b": asyncio.Event()}
    seen_inside: list[float | None] = []

    async def behaviour(request: Request) -> Result:
        await gates[request.name].wait()
        seen_inside.append(sample("controller_runtime_active_workers", controller.name))
        return Result()

    controller = make("active", FakeReconciler(behaviour), max_concurrent_reconciles=2, clock=FakeClock())
    name = controller.name
    async with running(controller):
        assert sample("controller_runtime_active_workers", name) == 0
        controller.queue.add(Request("ns", "a"))
        await settle()
        assert sample("controller_runtime_active_workers", name) == 1
        controller.queue.add(Request("ns", "b"))
        await settle()
        assert sample("controller_runtime_active_workers", name) == 2
        gates["a"].set()
        await settle()
        assert sample("controller_runtime_active_workers", name) == 1
        gates["b"].set()
        await settle()
        assert sample("controller_runtime_active_workers", name) == 0
    assert seen_inside == [2, 1]  # the finishing reconcile still counts itself


async def test_start_is_idempotent_and_starts_max_concurrent_reconciles_workers(make: MakeController) -> None:
    controller = make("workers", FakeReconciler(), max_concurrent_reconciles=3, clock=FakeClock())
    assert not controller.started

    def worker_tasks() -> list[asyncio.Task[object]]:
        prefix = f"controller {controller.name} worker "
        return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done()]

    async with running(controller):
        controller.start()
        assert controller.started
        assert len(worker_tasks()) == 3
    await settle()
    assert worker_tasks() == []
    assert not controller.started


@pytest.mark.parametrize("workers", [0, -1])
def test_max_concurrent_reconciles_must_be_at_least_one(workers: int) -> None:
    with pytest.raises(ValueError, match=r"controller bad: max_concurrent_reconciles must be >= 1"):
        Controller("bad", FakeReconciler(), max_concurrent_reconciles=workers)


# -- stop ------------------------------------------------------------------------------------------------------------


async def test_stop_lets_an_in_flight_reconcile_finish_within_the_grace_period(make: MakeController) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[Request] = []

    async def behaviour(request: Request) -> Result:
        started.set()
        await release.wait()
        finished.append(request)
        return Result()

    controller = make("grace", FakeReconciler(behaviour), clock=FakeClock())
    before = snapshot(controller.name)
    controller.start()
    controller.queue.add(Request("ns", "a"))
    await asyncio.wait_for(started.wait(), 1)
    stopping = asyncio.create_task(controller.stop(grace=5.0))
    await settle()
    assert not stopping.done()  # waiting for the reconcile
    release.set()
    assert await asyncio.wait_for(stopping, 2) is True
    assert finished == [Request("ns", "a")]
    assert delta(before, snapshot(controller.name)) == {"success": 1, "time_count": 1}
    assert sample("controller_runtime_active_workers", controller.name) == 0


async def test_stop_cancels_a_reconcile_that_exceeds_the_grace_period(make: MakeController) -> None:
    started = asyncio.Event()
    cancelled: list[Request] = []

    async def behaviour(request: Request) -> Result:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(request)
            raise
        raise AssertionError("unreachable")

    controller = make("cancel", FakeReconciler(behaviour), clock=FakeClock())
    before = snapshot(controller.name)
    controller.start()
    controller.queue.add(Request("ns", "stuck"))
    await asyncio.wait_for(started.wait(), 1)
    assert await asyncio.wait_for(controller.stop(grace=0.05), 2) is False
    assert cancelled == [Request("ns", "stuck")]
    assert not controller.started
    # A cancelled reconcile is neither a success nor an error; it is still timed.
    assert delta(before, snapshot(controller.name)) == {"time_count": 1}
    assert sample("controller_runtime_active_workers", controller.name) == 0


async def test_keys_queued_but_not_started_when_stop_is_called_are_not_reconciled(make: MakeController) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def behaviour(request: Request) -> Result:
        started.set()
        await release.wait()
        return Result()

    reconciler = FakeReconciler(behaviour)
    controller = make("undrained", reconciler, clock=FakeClock())
    controller.start()
    for name in ("a", "b", "c"):
        controller.queue.add(Request("ns", name))
    await asyncio.wait_for(started.wait(), 1)
    stopping = asyncio.create_task(controller.stop(grace=5.0))
    await settle()
    release.set()
    assert await asyncio.wait_for(stopping, 2) is True
    await settle()
    assert reconciler.calls == [Request("ns", "a")]


async def test_stop_of_an_idle_controller_returns_at_once_and_later_adds_are_ignored(make: MakeController) -> None:
    reconciler = FakeReconciler()
    controller = make("idle", reconciler, max_concurrent_reconciles=2, clock=FakeClock())
    controller.start()
    await settle()
    assert await asyncio.wait_for(controller.stop(grace=5.0), 1) is True
    controller.queue.add(Request("ns", "late"))
    await settle()
    assert reconciler.calls == []
    assert len(controller.queue) == 0


async def test_stop_before_start_returns_true(make: MakeController) -> None:
    controller = make("never", FakeReconciler(), clock=FakeClock())
    assert await controller.stop(grace=0.1) is True


async def test_a_requeue_requested_by_a_reconcile_finishing_during_stop_is_dropped(make: MakeController) -> None:
    clock = FakeClock()
    started, release = asyncio.Event(), asyncio.Event()

    async def behaviour(request: Request) -> Result:
        started.set()
        await release.wait()
        return Result(requeue_after=1.0)

    reconciler = FakeReconciler(behaviour)
    controller = make("stopreq", reconciler, clock=clock)
    controller.start()
    controller.queue.add(Request("ns", "a"))
    await asyncio.wait_for(started.wait(), 1)
    stopping = asyncio.create_task(controller.stop(grace=5.0))
    await settle()
    release.set()
    assert await asyncio.wait_for(stopping, 2) is True
    await clock.advance(10)
    assert len(controller.queue) == 0
    assert reconciler.calls == [Request("ns", "a")]
