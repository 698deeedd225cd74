"""Lease-based leader election (coordination.k8s.io/v1), with client-go's `tryAcquireOrRenew` semantics.

Replicas of a manager race for one Lease: `LeaderElector.acquire()` returns once this replica holds it, `hold()`
keeps renewing it and raises `LeadershipLost` when renewal fails for `renew_deadline` (the manager then stops
reconciling at once and exits non-zero), and `release()` hands it over on a graceful stop. Expiry is judged only on
this process's monotonic clock — when *we* last saw the record change — never on the `renewTime` another node wrote,
so clock skew between nodes cannot make two leaders.
"""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog

from kpack_core.runtime import errors
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.metrics import LEADER_ELECTION_MASTER_STATUS
from kpack_core.runtime.resource import LEASES, Resource

JSON = dict[str, Any]
T = TypeVar("T")

JITTER_FACTOR = 1.2
"""client-go's `JitterFactor`: acquire attempts are `retry_period` apart, stretched by a random factor of up to this,
and `renew_deadline` must exceed `retry_period` times this so a renewal gets more than one try."""

MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_ROUND_ERRORS = (errors.ApiError, errors.TransportError, TimeoutError)
"""Failures that cost one attempt, not the process: the attempt is retried on the next tick."""

log = structlog.get_logger(__name__)


def default_identity() -> str:
    """`<hostname>_<uuid4>`, as controller-runtime builds it: unique even for two replicas on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def format_micro_time(epoch_seconds: float) -> str:
    """A Lease `MicroTime`: RFC 3339 UTC with exactly six fractional digits.

    `datetime.isoformat()` drops the fraction when it is zero, and the apiserver rejects any other precision.
    """
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime(MICRO_TIME_FORMAT)


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Which Lease to contend for, and the timings (controller-runtime's defaults, from component-base).

    Safety rests on `lease_duration > renew_deadline`: the leader gives up at `renew_deadline` after its last
    successful renewal, strictly before any standby — counting `lease_duration` from its own later observation of
    that renewal — may take over. The gap also absorbs clock *rate* differences between nodes.
    """

    name: str
    """The Lease's name (controller-runtime's `LeaderElectionID`); required."""
    namespace: str
    """The Lease's namespace; required."""
    identity: str = field(default_factory=default_identity)
    """This replica's holderIdentity; default `<hostname>_<uuid4>`, fresh per process."""
    lease_duration: float = 15.0
    """Seconds a standby waits, from when it last saw the record change, before taking an unrenewed lease. Written
    as the Lease's integer `leaseDurationSeconds`, so it must be whole seconds."""
    renew_deadline: float = 10.0
    """Seconds after its last successful renewal at which the leader gives up."""
    retry_period: float = 2.0
    """Seconds between renewals, and between acquire attempts (before jitter)."""
    release_on_cancel: bool = True
    """Whether the manager calls `LeaderElector.release()` on a graceful stop, after its leader-only work stopped, so
    a standby takes over within about `retry_period` instead of `lease_duration`."""

    def __post_init__(self) -> None:
        for name in ("name", "namespace", "identity"):
            if not getattr(self, name):
                raise ValueError(f"leader election: {name} is required")
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            if not getattr(self, name) > 0:
                raise ValueError(f"leader election: {name} must be > 0, got {getattr(self, name)}")
        if not float(self.lease_duration).is_integer():
            raise ValueError(
                f"leader election: lease_duration must be whole seconds (it is written as leaseDurationSeconds), "
                f"got {self.lease_duration}"
            )
        if not self.lease_duration > self.renew_deadline:
            raise ValueError(
                f"leader election: lease_duration ({self.lease_duration}) must be greater than "
                f"renew_deadline ({self.renew_deadline})"
            )
        if not self.renew_deadline > JITTER_FACTOR * self.retry_period:
            raise ValueError(
                f"leader election: renew_deadline ({self.renew_deadline}) must be greater than "
                f"{JITTER_FACTOR} x retry_period ({self.retry_period})"
            )

    def describe(self) -> str:
        return f"Lease {self.namespace}/{self.name}"


class LeadershipLost(Exception):
    """The lease could not be renewed within `renew_deadline`; leader-only work must stop now."""


class LeaseClient(Protocol):
    """The slice of `client.Client` the elector needs (a fake in unit tests)."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON: ...

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON: ...

    async def update(self, resource: Resource, body: JSON) -> JSON: ...


class LeaderElector:
    """Contends for one Lease on behalf of one identity.

    Invariants: `is_leader` is True only between a successful acquire and the loss or release of the lease; while
    `hold()` runs, it is True only if the last successful write of the lease started less than `renew_deadline` ago
    on this clock, which is before any standby may consider the lease expired. The gauge
    `leader_election_master_status{name}` mirrors `is_leader`.
    Run `hold()` only after `acquire()`, and `release()` only after `hold()` has stopped.
    """

    def __init__(self, client: LeaseClient, config: LeaderElectionConfig, *, clock: Clock = REAL_CLOCK) -> None:
        self.config = config
        self._client = client
        self._clock = clock
        self._leader = False
        self._lease: JSON | None = None
        """The Lease as last read or written, with the resourceVersion our next PUT is conditional on."""
        self._observed_spec: JSON | None = None
        self._observed_time = 0.0
        """When (our clock) the spec last changed as far as we saw; a holder's lease expires relative to this."""
        self._renewed_at = 0.0
        """When (our clock) the attempt that last wrote us as holder started; `hold()` gives up relative to this."""
        self._gauge = LEADER_ELECTION_MASTER_STATUS.labels(name=config.name)
        self._gauge.set(0)
        self._log = log.bind(lease_namespace=config.namespace, lease_name=config.name, identity=config.identity)

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def acquire(self) -> None:
        """Block until this identity holds the lease, trying every `retry_period` (jittered up to x1.2)."""
        self._log.info("attempting to acquire lease")
        while True:
            if await self._try_acquire_or_renew(self.config.renew_deadline):
                self._leader = True
                self._gauge.set(1)
                self._log.info("acquired lease", lease_transitions=self._spec().get("leaseTransitions"))
                return
            # client-go's wait.Jitter(d, f) sleeps d*(1 + rand*f), i.e. up to 2.2 x retry_period; we keep the spread
            # within x1.2 so a standby notices a released lease within 1.2 x retry_period.
            await self._clock.sleep(self.config.retry_period * random.uniform(1.0, JITTER_FACTOR))

    async def hold(self) -> None:
        """Renew the lease every `retry_period` until cancelled or released; raise `LeadershipLost` if a renewal
        does not succeed within `renew_deadline` of the last successful one."""
        if not self._leader:
            raise RuntimeError(f"{self.config.describe()}: hold() needs the lease; call acquire() first")
        while True:
            await self._clock.sleep(self.config.retry_period)
            if not self._leader:  # released meanwhile
                return
            await self._renew()
            self._log.debug("renewed lease")

    async def _renew(self) -> None:
        # Retries run until the deadline counted from the last success, not from this renewal's start: a standby
        # counts lease_duration from when it saw that success, so giving up here is strictly before it may take over.
        deadline = self._renewed_at + self.config.renew_deadline
        while (remaining := deadline - self._clock.now()) > 0:
            if await self._try_acquire_or_renew(remaining):
                return
            remaining = deadline - self._clock.now()
            if remaining > 0:
                await self._clock.sleep(min(self.config.retry_period, remaining))
        self._leader = False
        self._gauge.set(0)
        self._log.error("lost lease", renew_deadline=self.config.renew_deadline)
        raise LeadershipLost(
            f"{self.config.describe()}: {self.config.identity} could not renew within {self.config.renew_deadline} s"
        )

    async def release(self) -> None:
        """Give the lease up so a standby takes over in about `retry_period`: empty holder, a 1 s duration.

        A no-op unless we lead. Errors are logged, not raised (a failed release only makes the standby wait out the
        lease); a ConflictError means the lease moved on without us, and it is left alone.
        """
        if not self._leader or self._lease is None:
            return
        # Stop claiming leadership before the write: whatever its outcome, we no longer renew.
        self._leader = False
        self._gauge.set(0)
        now = format_micro_time(self._clock.wall())
        spec = {**self._spec(), "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}
        try:
            written = await self._bounded(
                self._client.update(LEASES, {**self._lease, "spec": spec}), self.config.renew_deadline
            )
        except Exception as exc:  # best effort on the way out: if it fails, the lease just expires on its own
            self._log.warning("failed to release lease", error=repr(exc))
            return
        self._observe(written)
        self._log.info("released lease")

    # -- one attempt ------------------------------------------------------------------------------------------------

    async def _try_acquire_or_renew(self, budget: float) -> bool:
        """One round of client-go's tryAcquireOrRenew, cut off after `budget` seconds: True if we now hold the lease.

        Every failure (API error, transport error, timeout) just means "not this round".
        """
        started = self._clock.now()
        try:
            acquired = await self._bounded(self._attempt(), budget)
        except _ROUND_ERRORS as exc:
            self._log.info("lease attempt failed", error=repr(exc))
            return False
        if acquired:
            # The attempt's start, not its end: a standby cannot have seen this write before we sent it.
            self._renewed_at = started
        return acquired

    async def _attempt(self) -> bool:
        # 1. Fast path: while we lead and our last observation is still valid, PUT over the lease we last wrote.
        if self._leader and self._lease is not None and self._observed_valid():
            try:
                self._observe(await self._client.update(LEASES, self._record(self._lease, takeover=False)))
                return True
            except (errors.ApiError, errors.TransportError) as exc:
                self._log.info("optimistic renewal failed, re-reading the lease", error=repr(exc))
        # 2. Read the lease, creating it if absent.
        try:
            lease = await self._client.get(LEASES, self.config.name, self.config.namespace)
        except errors.NotFoundError:
            try:
                created = await self._client.create(LEASES, self._new_lease(), self.config.namespace)
            except errors.AlreadyExistsError:
                self._log.info("lease was created by another candidate")
                return False
            self._observe(created)
            return True
        # 3. Remember when we saw the record change, on our own clock.
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec, self._observed_time = spec, self._clock.now()
        self._lease = lease
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.config.identity and self._observed_valid():
            self._log.debug("lease is held by another candidate", holder=holder)
            return False
        # 4. Expired, released, or already ours: write us as holder (conditional on the resourceVersion just read).
        try:
            written = await self._client.update(LEASES, self._record(lease, takeover=holder != self.config.identity))
        except errors.ConflictError:
            self._log.info("lease changed while taking it; retrying")
            return False
        if holder != self.config.identity:
            self._log.info("took over lease", previous_holder=holder or None)
        self._observe(written)
        return True

    def _observed_valid(self) -> bool:
        duration = (self._observed_spec or {}).get("leaseDurationSeconds") or 0
        return self._observed_time + float(duration) > self._clock.now()

    def _observe(self, lease: JSON) -> None:
        self._lease = lease
        self._observed_spec = lease.get("spec") or {}
        self._observed_time = self._clock.now()

    def _spec(self) -> JSON:
        return dict((self._lease or {}).get("spec") or {})

    def _record(self, lease: JSON, *, takeover: bool) -> JSON:
        """`lease` with us as holder and a fresh renewTime; a takeover also gets a fresh acquireTime and counts one
        more transition, a renewal keeps both."""
        old = lease.get("spec") or {}
        now = format_micro_time(self._clock.wall())
        spec = {
            **old,
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": int(self.config.lease_duration),
            "renewTime": now,
            "acquireTime": now if takeover or not old.get("acquireTime") else old["acquireTime"],
            "leaseTransitions": int(old.get("leaseTransitions") or 0) + (1 if takeover else 0),
        }
        return {**lease, "spec": spec}

    def _new_lease(self) -> JSON:
        now = format_micro_time(self._clock.wall())
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": {
                "holderIdentity": self.config.identity,
                "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }

    async def _bounded(self, work: Awaitable[T], seconds: float) -> T:
        """`work`, cancelled with TimeoutError after `seconds` of the elector's clock.

        Not `asyncio.timeout`: that runs on the loop's clock, and a FakeClock must be able to expire a hung request.
        """
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
            timer.cancel()
            # Let both finish, so nothing is left pending, and mark the work's outcome retrieved even when we are
            # being cancelled ourselves (else asyncio logs "Task exception was never retrieved").
            await asyncio.wait((task, timer))
            if not task.cancelled():
                task.exception()
        if task.cancelled():
            raise TimeoutError(f"{self.config.describe()}: no answer within {seconds:.3g} s")
        return task.result()
