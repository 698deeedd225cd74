"""Watch event → reconcile start latency at a steady 100 updates/s, against a bare `asyncio.Queue` handoff.

A private control plane holds 1,500 ConfigMaps in one namespace. One `Informer` watches them and feeds a
`Controller` (the default single worker) whose reconciler records `time.perf_counter()` as its first act. Before the
controller's watch, a timing handler is registered on the same informer: on every update it records the moment the
informer hands the event to its handlers (after the informer parsed and stored it) — the start of the interval
measured — and puts that key into a bare `asyncio.Queue`, drained by a consumer task that records when it got it.

After the cache synced and the initial list's 1,500 reconciles drained, a writer with its own `Client` (its own
connection pool, so writes never queue behind the watch stream) patches 1,000 distinct ConfigMaps at 100 per second,
each write started at its absolute slot `t0 + i / 100` (so the rate does not drift with the write latency) and not
waited for before the next one starts. Every patched key is then reconciled exactly once, which is asserted.

The figure is the p99, over the events, of the time from the event's arrival at the handlers to the start of its
reconcile. The baseline is measured concurrently, in the same phase, on the same loop, under the same load: the p99
of the time from the same arrivals to the consumer's `get`, i.e. the floor of one asyncio task handoff. The timing
handler runs first, so on each event the baseline consumer is woken just ahead of the controller's worker. Everything
runs on one event loop, the writer included. The end-to-end write-return → reconcile-start figures are printed for
information (they can be negative: the apiserver may send the watch event before the PATCH response arrives). Nothing
timed is asserted, only that every event was reconciled.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Sequence
from pathlib import Path

from kpack_core.envtest import ControlPlane
from kpack_core.runtime.client import Client
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.informer import DeletedFinalStateUnknown, Informer, InformerOptions
from kpack_core.runtime.reconcile import Request, Result
from kpack_core.runtime.resource import CONFIGMAPS, NAMESPACES
from kpack_core.runtime.store import JSON, object_key

NAMESPACE = "bench-watch"
OBJECTS = 1_500
RATE = 100.0  # updates per second
EVENTS = 1_000  # 10 s at RATE; every event patches a distinct ConfigMap
CREATE_CONCURRENCY = 32
SYNC_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0
TARGET_P99_MS = 20.0  # from the issue; reported, not asserted
OPTIONS = InformerOptions(resync_period=None)  # no resync may re-deliver objects during the measurement


def name_of(index: int) -> str:
    return f"cm-{index:05d}"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class TimingHandler:
    """Registered before the controller's handler: notes when each update reaches the handlers and hands the key
    to the baseline consumer through a bare `asyncio.Queue`."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.versions: dict[str, str] = {}
        self.duplicates = 0
        self.handoff: asyncio.Queue[str] = asyncio.Queue()

    def on_add(self, obj: JSON, is_in_initial_list: bool) -> None:
        pass

    def on_update(self, old: JSON, new: JSON) -> None:
        now = time.perf_counter()
        key = object_key(new)
        if key in self.arrivals:
            self.duplicates += 1
            return
        self.arrivals[key] = now
        self.versions[key] = (new.get("data") or {}).get("v", "")
        self.handoff.put_nowait(key)

    def on_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None:
        pass


class BaselineConsumer:
    """The other end of the bare queue: records when each key was taken."""

    def __init__(self, queue: asyncio.Queue[str]) -> None:
        self.queue = queue
        self.received: dict[str, float] = {}

    async def run(self) -> None:
        get, received = self.queue.get, self.received
        while True:
            key = await get()
            received[key] = time.perf_counter()


class StartRecorder:
    """The reconciler: records the start of every reconcile per key, doing nothing else."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}
        self.count = 0

    async def reconcile(self, request: Request) -> Result:
        now = time.perf_counter()
        self.starts.setdefault(str(request), []).append(now)
        self.count += 1
        return Result()


async def eventually(condition: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not done within {within:g} s")
        await asyncio.sleep(0.02)


async def create_configmaps(client: Client) -> None:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(index: int) -> None:
        async with limit:
            body = {"metadata": {"name": name_of(index), "namespace": NAMESPACE}, "data": {"v": "initial"}}
            await client.create(CONFIGMAPS, body, NAMESPACE)

    async with asyncio.TaskGroup() as group:
        for index in range(OBJECTS):
            group.create_task(create(index))


async def write_steadily(client: Client) -> tuple[dict[str, float], dict[str, float], float]:
    """Patch EVENTS distinct ConfigMaps at RATE per second, each at its absolute slot. Returns per key the time the
    write was sent and the time it returned, and the largest lag of a start behind its slot."""
    sent: dict[str, float] = {}
    returned: dict[str, float] = {}
    worst_lag = 0.0

    async def patch(index: int) -> None:
        name = name_of(index)
        key = f"{NAMESPACE}/{name}"
        sent[key] = time.perf_counter()
        await client.patch(CONFIGMAPS, name, {"data": {"v": f"event-{index}"}}, namespace=NAMESPACE)
        returned[key] = time.perf_counter()

    async with asyncio.TaskGroup() as group:
        start = time.perf_counter() + 0.05
        for index in range(EVENTS):
            slot = start + index / RATE
            delay = slot - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            worst_lag = max(worst_lag, time.perf_counter() - slot)
            group.create_task(patch(index))
    return sent, returned, worst_lag


def summary(latencies_ms: Sequence[float]) -> str:
    p50, p99, worst = percentile(latencies_ms, 0.50), percentile(latencies_ms, 0.99), max(latencies_ms)
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms"


async def test_watch_event_to_reconcile_start(tmp_path: Path) -> None:
    began = time.perf_counter()
    async with ControlPlane(tmp_path / "controlplane") as plane:  # raises (with the servers' logs) if it cannot start
        kubeconfig = str(plane.kubeconfig_path)
        async with (
            await Client.from_kubeconfig(kubeconfig) as informer_client,
            await Client.from_kubeconfig(kubeconfig) as writer_client,
        ):
            await create_configmaps(writer_client)

            informer = Informer(informer_client, CONFIGMAPS, namespace=NAMESPACE, options=OPTIONS)
            timing = TimingHandler()
            informer.add_handler(timing)  # before the controller's handler: it sees each event first
            recorder = StartRecorder()
            controller = Controller("bench-watch-latency", recorder)  # one worker, the default
            controller.watch_for(informer)
            consumer = BaselineConsumer(timing.handoff)
            consumer_task = asyncio.create_task(consumer.run(), name="baseline consumer")
            informer.start()
            try:
                await controller.wait_for_sync(SYNC_TIMEOUT)
                controller.start()
                await eventually(
                    lambda: recorder.count >= OBJECTS and len(controller.queue) == 0,
                    DRAIN_TIMEOUT,
                    "the initial list's reconciles",
                )
                assert len(recorder.starts) == OBJECTS
                assert not timing.arrivals, "no update may arrive before the writer starts"
                recorder.starts.clear()
                recorder.count = 0
                gc.collect()

                phase_began = time.perf_counter()
                sent, returned, worst_lag = await write_steadily(writer_client)
                written = set(sent)
                await eventually(
                    lambda: set(timing.arrivals) >= written and set(recorder.starts) >= written,
                    DRAIN_TIMEOUT,
                    "reconciling every written key",
                )
                await eventually(lambda: set(consumer.received) >= written, DRAIN_TIMEOUT, "the baseline consumer")
                phase_seconds = time.perf_counter() - phase_began
            finally:
                await controller.stop(5)
                await informer.stop()
                consumer_task.cancel()
                await asyncio.gather(consumer_task, return_exceptions=True)

    # Correctness: every write arrived once, with its value, and was reconciled exactly once, after its arrival.
    assert len(written) == EVENTS
    assert set(timing.arrivals) == written, "an update for a key nobody wrote arrived"
    assert timing.duplicates == 0
    assert all(timing.versions[key] == f"event-{int(key.rsplit('-', 1)[1])}" for key in written)
    assert set(recorder.starts) == written
    assert all(len(starts) == 1 for starts in recorder.starts.values()), "a key was reconciled more than once"
    assert all(recorder.starts[key][0] >= timing.arrivals[key] for key in written)

    ms = 1000.0
    latency = [(recorder.starts[key][0] - timing.arrivals[key]) * ms for key in written]
    baseline = [(consumer.received[key] - timing.arrivals[key]) * ms for key in written]
    end_to_end = [(recorder.starts[key][0] - returned[key]) * ms for key in written]
    from_send = [(recorder.starts[key][0] - sent[key]) * ms for key in written]
    ours, floor = percentile(latency, 0.99), percentile(baseline, 0.99)
    print()
    print(
        f"watch latency: {EVENTS} updates at {RATE:g}/s over {OBJECTS} ConfigMaps, 1 worker, "
        f"phase {phase_seconds:.1f} s, writer's worst lag behind its schedule {worst_lag * ms:.1f} ms, "
        f"whole benchmark {time.perf_counter() - began:.1f} s"
    )
    print(f"watch latency: event arrival → reconcile start: {summary(latency)} (target p99 ≤ {TARGET_P99_MS:g} ms)")
    print(f"watch latency: event arrival → bare asyncio.Queue get (concurrent baseline): {summary(baseline)}")
    print(f"watch latency: write return → reconcile start (info): {summary(end_to_end)}")
    print(f"watch latency: write sent → reconcile start (info): {summary(from_send)}")
    print(
        f"bench: watch_to_reconcile_p99: {ours:.2f} ms ({ours / floor:.1f} × bare asyncio.Queue handoff)"  # noqa: RUF001
    )
