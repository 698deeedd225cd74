"""Bounded retries with full-jitter exponential backoff, shared by the Kubernetes API client
(`kpack_core.runtime.client`) and the OCI registry transport (`kpack_core.registry.transport`). The API client
narrows the jitter to the upper half of the ceiling (`jitter_floor=0.5`); the registry transport uses it in full.

A caller writes one attempt as a coroutine function that raises `Transient` for a failure worth another try (which
failures those are is the caller's business: statuses, lost connections); `retried` runs it under a `RetryPolicy`
and, once the policy is spent, raises the wrapped error rather than the wrapper. Every other exception passes through
at once. The pieces (`parse_retry_after`, `backoff_ceiling`, `delay`, `retrying`) are public to be tested alone.

This module depends on tenacity only: the runtime and registry packages import it, never the other way round.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried. Defaults: up to 5 attempts within 30 s, backoff from 0.2 s doubling to
    5 s with jitter; a server's Retry-After is waited instead, capped at `max_retry_after`.

    The 30 s `total` is the API client's default (`Client(retry=None)`); the registry transport defaults to
    `RetryPolicy(total=60.0)` through `RegistryOptions.retry`. Both stop at whichever bound comes first.
    """

    attempts: int = 5
    total: float = 30.0
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    max_retry_after: float = 10.0


class Transient(Exception):
    """A retryable failure inside the retry loop: `error` is what the caller sees once the retries are spent;
    `retry_after` the server's requested wait in seconds, if it sent one."""

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds, negative values read as 0; None when absent or not a number (an
    HTTP-date, which the apiserver never sends: a server that does gets the ordinary backoff)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def backoff_ceiling(policy: RetryPolicy, attempt_number: int) -> float:
    """The longest wait after attempt `attempt_number` (1-based): `initial_backoff` doubling, capped at
    `max_backoff`."""
    return min(policy.max_backoff, policy.initial_backoff * 2.0 ** (attempt_number - 1))


def delay(policy: RetryPolicy, attempt_number: int, server_wait: float | None, *, jitter_floor: float = 0.0) -> float:
    """The wait after attempt `attempt_number`: the server's `server_wait` capped at `max_retry_after` when it sent
    one, else a uniform draw between `jitter_floor` times the ceiling and the ceiling (0: full jitter)."""
    if server_wait is not None:
        return min(server_wait, policy.max_retry_after)
    ceiling = backoff_ceiling(policy, attempt_number)
    return random.uniform(ceiling * jitter_floor, ceiling)


def retrying(policy: RetryPolicy, *, jitter_floor: float = 0.0) -> AsyncRetrying:
    """A tenacity loop that retries `Transient` only, stops after `attempts` or `total` seconds, whichever is first,
    and re-raises the last `Transient` (for `retried` to unwrap)."""

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        server_wait = exc.retry_after if isinstance(exc, Transient) else None
        return delay(policy, state.attempt_number, server_wait, jitter_floor=jitter_floor)

    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, Transient)),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total),
        wait=wait,
        reraise=True,
    )


async def retried(policy: RetryPolicy, attempt: Callable[[], Awaitable[T]], *, jitter_floor: float = 0.0) -> T:
    """`await attempt()` under `policy`. When the retries are spent the last `Transient`'s `error` is raised with
    that `Transient`'s cause (if any) as its own, so the low-level failure stays in the traceback."""
    try:
        async for state in retrying(policy, jitter_floor=jitter_floor):
            with state:
                return await attempt()
    except Transient as exc:
        raise exc.error from exc.__cause__
    raise AssertionError("unreachable: tenacity either returns or raises")
