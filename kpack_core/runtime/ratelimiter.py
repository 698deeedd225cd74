"""Rate limiters that decide how long a failed key waits before the workqueue hands it out again.

Each limiter is a few lines, mirroring client-go's `workqueue` rate limiters; `MaxOfRateLimiter` composes them.
`default_controller_rate_limiter` is what a controller gets unless it asks for something else.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Protocol

from kpack_core.runtime.clock import REAL_CLOCK, Clock


class RateLimiter(Protocol):
    """How long an item must wait before its next retry; client-go's `TypedRateLimiter`."""

    def when(self, item: Hashable) -> float:
        """Seconds the item must wait now. Counts as one more failure of `item` for per-item limiters."""
        ...

    def forget(self, item: Hashable) -> None:
        """The item succeeded (or was given up on): drop its failure history."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many times `when` was asked about `item` since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-item exponential backoff: `base * 2**failures`, capped at `max_delay`.

    With the defaults (5 ms, 1000 s) the waits are 5, 10, 20 ms, ... 655.36 s on the 18th consecutive failure and
    `max_delay` from the 19th on. The failure count keeps growing while capped, so `num_requeues` stays truthful.
    """

    def __init__(self, base: float = 0.005, max_delay: float = 1000.0) -> None:
        if base < 0 or max_delay < 0:
            raise ValueError(f"delays must not be negative (base={base}, max_delay={max_delay})")
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        try:
            # ldexp scales by a power of two exactly; it overflows (rather than returning inf) for huge counts.
            delay = math.ldexp(self.base, failures)
        except OverflowError:
            return self.max_delay
        return min(delay, self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket shared by all items: `burst` immediate retries, then `qps` per second.

    Like golang.org/x/time/rate's `Reserve`, a request always succeeds and returns how long to wait; tokens may go
    negative, which books future capacity, so under a thundering herd the k-th request past the burst waits about
    k/qps seconds (kubernetes/kubernetes#104554). It keeps no per-item state: `forget` is a no-op and
    `num_requeues` is always 0.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = REAL_CLOCK) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be positive, got {qps}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Hashable) -> float:
        now = self._clock.now()
        # Rounded to whole nanoseconds like Go's durations, so float noise in clock readings (1000.3 - 1000.0 is
        # 0.29999999999995) neither loses a refilled token nor turns "no wait" into a wait of 1e-14 s.
        elapsed = max(0.0, round(now - self._last, 9))
        tokens = min(float(self.burst), self._tokens + elapsed * self.qps) - 1.0
        self._tokens = tokens
        self._last = max(now, self._last)
        return 0.0 if tokens >= 0 else round(-tokens / self.qps, 9)

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of its limiters asks for; every limiter sees every call."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter, ...] = limiters

    def when(self, item: Hashable) -> float:
        # Ask every limiter (not just until one is large): each `when` updates that limiter's own state.
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter:
    """client-go's `DefaultTypedControllerRateLimiter`: max of per-item exponential (5 ms .. 1000 s) and a shared
    token bucket (10 qps, burst 100).

    This is the default of controller-runtime up to v0.22 and of v0.23+ when `UsePriorityQueue=false`. From v0.23
    on, controller-runtime defaults to the priority queue with the per-item exponential limiter only; pass
    `ItemExponentialFailureRateLimiter()` to imitate that generation.
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base=0.005, max_delay=1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
