"""Leader election against a real kube-apiserver: two candidates on one Lease, failover after a crash (the lease
expires) and after a release (at once), and the Lease as the apiserver stores it (MicroTime, counters).

Timings are short (lease 3 s, renew 2 s, retry 0.5 s) and the bounds generous, so a loaded machine does not flake.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio

from kpack_core.runtime.client import Client
from kpack_core.runtime.leaderelection import LeaderElectionConfig, LeaderElector, LeadershipLost
from kpack_core.runtime.resource import LEASES

pytestmark = pytest.mark.integration

MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
LEASE_NAME = "kpack-controller-leader"
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
MAX_RETRY = 1.2 * RETRY
SLACK = 1.5
"""Room for apiserver round trips and scheduling on a busy two-core machine."""


def candidate(client: Client, namespace: str, identity: str, lease_duration: float = LEASE) -> LeaderElector:
    config = LeaderElectionConfig(
        name=LEASE_NAME,
        namespace=namespace,
        identity=identity,
        lease_duration=lease_duration,
        renew_deadline=RENEW,
        retry_period=RETRY,
    )
    return LeaderElector(client, config)


def micro_time(value: str) -> float:
    assert MICRO_TIME.fullmatch(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Tasks:
    """Background tasks of one test, cancelled at its end so nothing outlives it on the session loop."""

    def __init__(self) -> None:
        self.started: list[asyncio.Task[Any]] = []

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self.started.append(task)
        return task


@pytest_asyncio.fixture
async def tasks() -> AsyncIterator[Tasks]:
    started = Tasks()
    yield started
    for task in started.started:
        task.cancel()
    for task in started.started:
        with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
            await task


async def crash(hold: asyncio.Task[None]) -> float:
    """Stop renewing without releasing, as a killed process would; returns when."""
    hold.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hold
    return time.monotonic()


async def test_standby_takes_over_only_after_a_crashed_leader_s_lease_expires(
    client: Client, namespace: str, tasks: Tasks
) -> None:
    a, b = candidate(client, namespace, "replica-a"), candidate(client, namespace, "replica-b")
    await asyncio.wait_for(a.acquire(), timeout=10)
    hold = tasks.spawn(a.hold())
    first = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert (first["holderIdentity"], first["leaseDurationSeconds"], first["leaseTransitions"]) == ("replica-a", 3, 0)
    assert micro_time(first["acquireTime"]) == micro_time(first["renewTime"])

    standby = tasks.spawn(b.acquire())
    await asyncio.sleep(2 * LEASE)  # the standby polls all along, while the leader renews
    assert not standby.done(), "the standby acquired a lease that was being renewed"
    assert not hold.done()
    renewed = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert renewed["holderIdentity"] == "replica-a"
    assert renewed["acquireTime"] == first["acquireTime"]
    assert micro_time(renewed["renewTime"]) > micro_time(first["renewTime"]) + LEASE

    crashed = await crash(hold)
    await asyncio.sleep(0.2)  # let a renewal that was in flight at the crash land, so we read the last one
    last = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    # The standby first sees the last renewal up to one jittered retry after it, waits out the lease from then, and
    # notices on its next tick.
    await asyncio.wait_for(standby, timeout=LEASE + 2 * MAX_RETRY + SLACK)
    took = time.monotonic() - crashed
    assert b.is_leader
    assert took >= LEASE - RETRY - 1.0, f"took over {took:.2f} s after the crash: before the lease could expire"

    taken = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert (taken["holderIdentity"], taken["leaseDurationSeconds"], taken["leaseTransitions"]) == ("replica-b", 3, 1)
    # Both candidates share this host's clock, so the Lease's own times show the gap: the takeover came a full
    # lease duration after the crashed leader's last renewal.
    assert micro_time(taken["acquireTime"]) - micro_time(last["renewTime"]) >= LEASE - 0.01
    assert micro_time(taken["renewTime"]) == micro_time(taken["acquireTime"])


async def test_standby_takes_over_within_a_retry_period_after_a_release(
    client: Client, namespace: str, tasks: Tasks
) -> None:
    # A long lease, so a takeover within a few seconds can only come from the release.
    a = candidate(client, namespace, "replica-a", lease_duration=10)
    b = candidate(client, namespace, "replica-b", lease_duration=10)
    await asyncio.wait_for(a.acquire(), timeout=10)
    hold = tasks.spawn(a.hold())
    standby = tasks.spawn(b.acquire())
    await asyncio.sleep(4 * RETRY)
    assert not standby.done()

    await crash(hold)  # the manager stops leader-only work (and renewing) first, then releases
    released = time.monotonic()
    await a.release()
    assert not a.is_leader
    await asyncio.wait_for(standby, timeout=MAX_RETRY + SLACK)
    assert time.monotonic() - released < 10 - RENEW
    taken = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert (taken["holderIdentity"], taken["leaseDurationSeconds"], taken["leaseTransitions"]) == ("replica-b", 10, 1)


async def test_a_released_lease_as_stored_and_taken_at_once(client: Client, namespace: str) -> None:
    a = candidate(client, namespace, "replica-a")
    await asyncio.wait_for(a.acquire(), timeout=10)
    await a.release()
    released = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert released["holderIdentity"] in ("", None)  # the apiserver may drop the empty string
    assert released["leaseDurationSeconds"] == 1
    assert released["leaseTransitions"] == 0
    assert micro_time(released["acquireTime"]) == micro_time(released["renewTime"])

    c = candidate(client, namespace, "replica-c")
    started = time.monotonic()
    await asyncio.wait_for(c.acquire(), timeout=10)
    assert time.monotonic() - started < SLACK
    taken = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("replica-c", 1)


class WholeSecondWall:
    """The real clock, except that wall time is always on a whole second (microsecond == 0)."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return float(math.floor(time.time()))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_the_apiserver_accepts_lease_times_on_a_whole_second(client: Client, namespace: str) -> None:
    config = LeaderElectionConfig(name=LEASE_NAME, namespace=namespace, identity="replica-a")
    elector = LeaderElector(client, config, clock=WholeSecondWall())
    await asyncio.wait_for(elector.acquire(), timeout=10)
    spec = (await client.get(LEASES, LEASE_NAME, namespace))["spec"]
    assert spec["acquireTime"].endswith(".000000Z")
    assert spec["renewTime"].endswith(".000000Z")
