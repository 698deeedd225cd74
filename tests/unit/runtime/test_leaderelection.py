"""The leader election state machine on a FakeClock, over an in-memory Lease store with the apiserver's optimistic
concurrency (a stale resourceVersion conflicts, a duplicate create already exists). A fake is enough here: only the
election logic is under test; tests/integration/runtime/test_leaderelection.py runs it against a real apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import re
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from kpack_core.runtime import errors
from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.leaderelection import (
    LeaderElectionConfig,
    LeaderElector,
    LeadershipLost,
    format_micro_time,
)
from kpack_core.runtime.metrics import REGISTRY
from kpack_core.runtime.resource import LEASES, Resource

JSON = dict[str, Any]
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
NAMESPACE = "kpack"

# controller-runtime's defaults
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
MAX_RETRY = RETRY * 1.2


@dataclass(frozen=True)
class Write:
    at: float
    writer: str
    spec: JSON


class LeaseStore:
    """Leases by (namespace, name), with resourceVersions and MicroTime validation like the apiserver's."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.objects: dict[tuple[str, str], JSON] = {}
        self.writes: list[Write] = []
        self.rejected: list[str] = []
        self._version = 0

    def put(self, name: str, spec: JSON) -> None:
        """Store a lease as some other process (or an earlier life) left it."""
        self._version += 1
        metadata = {"name": name, "namespace": NAMESPACE, "resourceVersion": str(self._version)}
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata}
        self.objects[(NAMESPACE, name)] = {**lease, "spec": copy.deepcopy(spec)}

    def spec(self, name: str) -> JSON:
        return copy.deepcopy(self.objects[(NAMESPACE, name)]["spec"])

    def _reject(self, error: errors.ApiError) -> errors.ApiError:
        self.rejected.append(type(error).__name__)
        return error

    def _store(self, writer: str, body: JSON) -> JSON:
        spec = body.get("spec") or {}
        for key in ("acquireTime", "renewTime"):
            if key in spec and not MICRO_TIME.fullmatch(spec[key]):
                raise self._reject(errors.InvalidError(422, "Invalid", f"spec.{key}: {spec[key]!r}", "Lease"))
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self._version)
        self.objects[(stored["metadata"]["namespace"], stored["metadata"]["name"])] = stored
        self.writes.append(Write(self.clock.now(), writer, copy.deepcopy(spec)))
        return copy.deepcopy(stored)

    def get(self, namespace: str, name: str) -> JSON:
        if (namespace, name) not in self.objects:
            raise self._reject(errors.NotFoundError(404, "NotFound", "not found", f"Lease {namespace}/{name}"))
        return copy.deepcopy(self.objects[(namespace, name)])

    def create(self, writer: str, body: JSON, namespace: str) -> JSON:
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = namespace
        if (namespace, body["metadata"]["name"]) in self.objects:
            raise self._reject(errors.AlreadyExistsError(409, "AlreadyExists", "exists", "Lease"))
        return self._store(writer, body)

    def update(self, writer: str, body: JSON) -> JSON:
        metadata = body["metadata"]
        current = self.objects.get((metadata["namespace"], metadata["name"]))
        if current is None:
            raise self._reject(errors.NotFoundError(404, "NotFound", "not found", "Lease"))
        if metadata.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise self._reject(errors.ConflictError(409, "Conflict", "the object has been modified", "Lease"))
        return self._store(writer, body)


class FakeClient:
    """One replica's view of the store; `partitioned` makes every call fail, `hang` makes it never answer."""

    def __init__(self, store: LeaseStore, writer: str) -> None:
        self.store = store
        self.writer = writer
        self.partitioned = False
        self.hang = False
        self.calls: list[tuple[float, str]] = []

    async def _enter(self, verb: str) -> None:
        self.calls.append((self.store.clock.now(), verb))
        # A real request suspends; this lets concurrent candidates interleave between GET and PUT.
        await asyncio.sleep(0)
        if self.partitioned:
            raise errors.TransportError(f"{verb}: connection refused")
        if self.hang:
            await asyncio.Event().wait()

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        assert resource is LEASES
        await self._enter("get")
        return self.store.get(namespace or "", name)

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON:
        await self._enter("create")
        return self.store.create(self.writer, body, namespace or "")

    async def update(self, resource: Resource, body: JSON) -> JSON:
        await self._enter("update")
        return self.store.update(self.writer, body)


@dataclass
class World:
    clock: FakeClock
    store: LeaseStore
    spawned: list[asyncio.Task[Any]]
    lease: str

    def elector(self, identity: str, **timings: Any) -> tuple[LeaderElector, FakeClient]:
        client = FakeClient(self.store, identity)
        settings = {"lease_duration": LEASE, "renew_deadline": RENEW, "retry_period": RETRY, **timings}
        config = LeaderElectionConfig(name=self.lease, namespace=NAMESPACE, identity=identity, **settings)
        return LeaderElector(client, config, clock=self.clock), client

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self.spawned.append(task)
        return task

    async def run_until(self, done: Callable[[], bool], limit: float, step: float = 0.05) -> float:
        """Advance the clock in small steps until `done()`; return the time it took (fails after `limit`)."""
        start = self.clock.now()
        await self.clock.settle()
        while not done():
            if self.clock.now() - start > limit:
                pytest.fail(f"not done within {limit} s of fake time")
            await self.clock.advance(step)
        return self.clock.now() - start

    async def run_for(self, seconds: float, step: float = 0.05) -> None:
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-9:
            await self.clock.advance(min(step, end - self.clock.now()))

    def gauge(self) -> float | None:
        return REGISTRY.get_sample_value("leader_election_master_status", {"name": self.lease})


@pytest_asyncio.fixture
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    clock = FakeClock()
    lease = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    state = World(clock, LeaseStore(clock), [], lease)
    yield state
    for task in state.spawned:
        task.cancel()
    for task in state.spawned:
        with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
            await task


async def leader(world: World, identity: str) -> tuple[LeaderElector, FakeClient, asyncio.Task[None]]:
    """An elector that acquired the lease and keeps renewing it."""
    elector, client = world.elector(identity)
    await world.spawn(elector.acquire())
    return elector, client, world.spawn(elector.hold())


# -- configuration ----------------------------------------------------------------------------------------------------


def test_config_defaults_are_controller_runtimes() -> None:
    config = LeaderElectionConfig(name="kpack-controller", namespace="kpack")
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15.0, 10.0, 2.0)
    assert config.release_on_cancel is True
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}_[0-9a-f-]{{36}}", config.identity)
    assert LeaderElectionConfig(name="kpack-controller", namespace="kpack").identity != config.identity


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": ""}, r"name is required"),
        ({"namespace": ""}, r"namespace is required"),
        ({"identity": ""}, r"identity is required"),
        ({"lease_duration": 0}, r"lease_duration must be > 0"),
        ({"renew_deadline": -1.0}, r"renew_deadline must be > 0"),
        ({"retry_period": 0.0}, r"retry_period must be > 0"),
        ({"lease_duration": 15.5}, r"lease_duration must be whole seconds"),
        ({"lease_duration": 10.0}, r"lease_duration \(10.0\) must be greater than renew_deadline \(10.0\)"),
        ({"renew_deadline": 2.4}, r"renew_deadline \(2.4\) must be greater than 1.2 x retry_period \(2.0\)"),
        ({"lease_duration": 3, "renew_deadline": 2, "retry_period": 2}, r"renew_deadline \(2\) must be greater"),
    ],
)
def test_config_validation_names_the_field(settings: JSON, message: str) -> None:
    values: JSON = {"name": "kpack-controller", "namespace": "kpack", **settings}
    with pytest.raises(ValueError, match=message):
        LeaderElectionConfig(**values)


def test_config_accepts_short_timings() -> None:
    config = LeaderElectionConfig(name="l", namespace="n", lease_duration=3, renew_deadline=2, retry_period=0.5)
    assert config.renew_deadline > 1.2 * config.retry_period


# -- MicroTime --------------------------------------------------------------------------------------------------------


def test_micro_time_has_six_digits_even_on_a_whole_second() -> None:
    assert format_micro_time(1_700_000_000.0) == "2023-11-14T22:13:20.000000Z"
    assert format_micro_time(1_700_000_000.5) == "2023-11-14T22:13:20.500000Z"
    assert format_micro_time(1_700_000_000.000_001) == "2023-11-14T22:13:20.000001Z"


async def test_lease_times_written_on_a_whole_second_have_six_digits(world: World) -> None:
    assert world.clock.wall() == 1_700_000_000.0
    elector, _ = world.elector("a")
    await elector.acquire()
    spec = world.store.spec(world.lease)
    assert spec["acquireTime"] == spec["renewTime"] == "2023-11-14T22:13:20.000000Z"
    assert world.store.rejected == ["NotFoundError"]  # the first GET; no InvalidError for the times


# -- acquiring --------------------------------------------------------------------------------------------------------


async def test_acquire_creates_an_absent_lease(world: World) -> None:
    elector, client = world.elector("a")
    assert not elector.is_leader
    await elector.acquire()
    assert elector.is_leader
    assert [verb for _, verb in client.calls] == ["get", "create"]
    spec = world.store.spec(world.lease)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == format_micro_time(world.clock.wall())


async def test_standby_does_not_acquire_while_the_leader_renews(world: World) -> None:
    a, _, hold = await leader(world, "a")
    b, client_b = world.elector("b")
    standby = world.spawn(b.acquire())
    await world.run_for(6 * LEASE)
    assert not standby.done()
    assert not hold.done()
    assert a.is_leader
    assert not b.is_leader
    assert world.store.spec(world.lease)["holderIdentity"] == "a"
    # The standby keeps trying every retry_period, jittered up to x1.2.
    gets = [at for at, verb in client_b.calls if verb == "get"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(gets)]
    assert len(gaps) > 30
    assert all(RETRY - 1e-6 <= gap <= MAX_RETRY + 1e-6 for gap in gaps), gaps


async def test_standby_waits_a_full_lease_duration_from_its_own_observation(world: World) -> None:
    # The holder died long ago by its own (skewed) clock: renewTime says 2001. Expiry is judged only on when this
    # candidate first saw the record, so it still waits the whole leaseDurationSeconds.
    ancient = "2001-01-01T00:00:00.000000Z"
    world.store.put(
        world.lease,
        {
            "holderIdentity": "dead",
            "leaseDurationSeconds": 15,
            "acquireTime": ancient,
            "renewTime": ancient,
            "leaseTransitions": 4,
        },
    )
    b, _ = world.elector("b")
    standby = world.spawn(b.acquire())
    await world.run_for(LEASE - 0.1)
    assert not standby.done()
    assert world.store.spec(world.lease)["holderIdentity"] == "dead"
    waited = await world.run_until(standby.done, limit=MAX_RETRY + 1) + LEASE - 0.1
    assert LEASE <= waited <= LEASE + MAX_RETRY + 0.1
    assert b.is_leader


async def test_takeover_increments_transitions_and_sets_a_fresh_acquire_time(world: World) -> None:
    old = "2023-11-14T20:00:00.000000Z"
    world.store.put(
        world.lease,
        {
            "holderIdentity": "dead",
            "leaseDurationSeconds": 15,
            "acquireTime": old,
            "renewTime": old,
            "leaseTransitions": 4,
        },
    )
    b, _ = world.elector("b")
    standby = world.spawn(b.acquire())
    await world.run_until(standby.done, limit=LEASE + MAX_RETRY + 1)
    spec = world.store.spec(world.lease)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 5
    assert spec["leaseDurationSeconds"] == 15
    assert spec["acquireTime"] != old
    assert spec["acquireTime"] == spec["renewTime"]


async def test_a_released_lease_is_taken_at_once(world: World) -> None:
    released = format_micro_time(world.clock.wall())
    world.store.put(
        world.lease,
        {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": released, "renewTime": released},
    )
    b, client = world.elector("b")
    await b.acquire()
    assert [verb for _, verb in client.calls] == ["get", "update"]
    assert world.store.spec(world.lease)["leaseTransitions"] == 1


async def test_racing_candidates_one_wins_the_other_conflicts(world: World) -> None:
    released = format_micro_time(world.clock.wall())
    world.store.put(world.lease, {"holderIdentity": "", "acquireTime": released, "renewTime": released})
    (a, _), (b, _) = world.elector("a"), world.elector("b")
    racers = [world.spawn(a.acquire()), world.spawn(b.acquire())]
    await world.clock.settle()
    assert sum(task.done() for task in racers) == 1
    assert a.is_leader != b.is_leader
    assert "ConflictError" in world.store.rejected
    assert world.store.spec(world.lease)["leaseTransitions"] == 1


async def test_racing_creates_one_wins_the_other_already_exists(world: World) -> None:
    (a, _), (b, _) = world.elector("a"), world.elector("b")
    racers = [world.spawn(a.acquire()), world.spawn(b.acquire())]
    await world.clock.settle()
    assert sum(task.done() for task in racers) == 1
    assert "AlreadyExistsError" in world.store.rejected
    assert world.store.spec(world.lease)["leaseTransitions"] == 0


# -- holding ----------------------------------------------------------------------------------------------------------


async def test_hold_needs_acquire_first(world: World) -> None:
    elector, _ = world.elector("a")
    with pytest.raises(RuntimeError, match="call acquire"):
        await elector.hold()


async def test_renewal_keeps_acquire_time_and_moves_renew_time(world: World) -> None:
    _, client, _ = await leader(world, "a")
    acquired = world.store.spec(world.lease)
    await world.run_for(5 * RETRY + 0.5)
    spec = world.store.spec(world.lease)
    assert spec["acquireTime"] == acquired["acquireTime"]
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] == format_micro_time(world.clock.wall() - 0.5)
    renewals = [at for at, verb in client.calls if verb == "update"]
    assert len(renewals) == 5
    # The fast path: a leader renews with one PUT, no GET, while its view of the lease is fresh.
    assert [verb for _, verb in client.calls].count("get") == 1


@pytest.mark.parametrize("failure", ["partitioned", "hang"])
async def test_failed_renewal_loses_leadership_before_a_standby_could_acquire(world: World, failure: str) -> None:
    a, client_a, hold = await leader(world, "a")
    b, _ = world.elector("b")
    standby = world.spawn(b.acquire())
    await world.run_for(7.0)
    setattr(client_a, failure, True)  # a network partition: every call fails, or never answers
    last_renewal = max(write.at for write in world.store.writes if write.writer == "a")

    await world.run_until(hold.done, limit=RENEW + 1)
    lost_at = world.clock.now()
    with pytest.raises(LeadershipLost, match=rf"{world.lease}: a could not renew within 10.0 s"):
        hold.result()
    assert not a.is_leader
    assert world.gauge() == 0.0
    assert lost_at <= last_renewal + RENEW + 0.05
    assert not standby.done()

    await world.run_until(standby.done, limit=LEASE + MAX_RETRY + 1)
    acquired_at = world.clock.now()
    assert acquired_at >= last_renewal + LEASE
    assert acquired_at > lost_at + (LEASE - RENEW) - MAX_RETRY
    assert b.is_leader
    assert world.gauge() == 1.0
    spec = world.store.spec(world.lease)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


async def test_a_transient_renewal_failure_is_retried_within_the_deadline(world: World) -> None:
    a, client_a, hold = await leader(world, "a")
    await world.run_for(3.0)
    client_a.partitioned = True
    await world.run_for(RENEW - 3.0)  # a little less than renew_deadline after the last successful renewal
    client_a.partitioned = False
    await world.run_for(3 * RETRY)
    assert not hold.done()
    assert a.is_leader
    assert world.store.writes[-1].writer == "a"
    assert world.store.writes[-1].at > world.clock.now() - MAX_RETRY


# -- releasing --------------------------------------------------------------------------------------------------------


async def test_release_lets_a_standby_acquire_within_a_retry_period(world: World) -> None:
    a, _, hold = await leader(world, "a")
    b, _ = world.elector("b")
    standby = world.spawn(b.acquire())
    await world.run_for(5.0)
    hold.cancel()
    await world.clock.settle()
    assert a.is_leader  # cancelling hold() alone does not give the lease up

    await a.release()
    assert not a.is_leader
    assert world.gauge() == 0.0
    spec = world.store.spec(world.lease)
    assert spec["holderIdentity"] == ""
    assert spec["leaseDurationSeconds"] == 1
    assert spec["acquireTime"] == spec["renewTime"] == format_micro_time(world.clock.wall())

    waited = await world.run_until(standby.done, limit=LEASE)
    assert waited <= MAX_RETRY + 0.05
    spec = world.store.spec(world.lease)
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == ("b", 15, 1)


async def test_release_when_not_leading_writes_nothing(world: World) -> None:
    elector, client = world.elector("a")
    await elector.release()
    assert client.calls == []


async def test_release_tolerates_errors(world: World) -> None:
    a, client, hold = await leader(world, "a")
    hold.cancel()
    client.partitioned = True
    await a.release()  # logged, not raised
    assert not a.is_leader
    assert world.store.spec(world.lease)["holderIdentity"] == "a"


async def test_release_leaves_a_lease_that_moved_on_alone(world: World) -> None:
    a, _, hold = await leader(world, "a")
    hold.cancel()
    world.store.put(world.lease, {**world.store.spec(world.lease), "holderIdentity": "usurper"})
    await a.release()
    assert "ConflictError" in world.store.rejected
    assert world.store.spec(world.lease)["holderIdentity"] == "usurper"


# -- metrics ----------------------------------------------------------------------------------------------------------


async def test_master_status_gauge(world: World) -> None:
    elector, _ = world.elector("a")
    assert world.gauge() == 0.0
    await elector.acquire()
    assert world.gauge() == 1.0
    await elector.release()
    assert world.gauge() == 0.0
    await elector.acquire()
    assert world.gauge() == 1.0
    world.elector("b")  # a new elector starts as standby (one elector per lease per process in real use)
    assert world.gauge() == 0.0
