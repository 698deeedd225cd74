"""Rate limiter arithmetic, checked against client-go's numbers on a fake clock."""

from __future__ import annotations

import pytest

from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_from_base() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    assert [limiter.when("a") for _ in range(5)] == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert limiter.num_requeues("a") == 5


def test_exponential_reaches_the_cap_on_the_19th_failure() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=0.005, max_delay=1000.0)
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:18] == [0.005 * 2**n for n in range(18)]
    assert delays[17] == pytest.approx(655.36)  # the 18th failure
    assert delays[18] == delays[19] == 1000.0  # the 19th and later
    assert limiter.num_requeues("a") == 20


def test_exponential_survives_huge_failure_counts() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(3000)]  # 2**1100 overflows a float
    assert delays[-1] == 1000.0
    assert limiter.num_requeues("a") == 3000


def test_exponential_is_per_item_and_forget_resets() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    limiter.when("a")
    limiter.when("a")
    assert limiter.when("b") == 0.005
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005
    limiter.forget("never-seen")


def test_exponential_rejects_negative_delays() -> None:
    with pytest.raises(ValueError, match="negative"):
        ItemExponentialFailureRateLimiter(base=-1)


async def test_bucket_allows_the_burst_then_spaces_by_one_over_qps() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    assert [limiter.when(i) for i in range(100, 105)] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert limiter.num_requeues(100) == 0
    limiter.forget(100)  # no-op: the bucket is shared, not per item
    assert limiter.when("x") == pytest.approx(0.6)


async def test_bucket_refills_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    for i in range(102):
        limiter.when(i)  # two tokens in debt
    await clock.advance(0.3)  # three tokens back: one available
    assert limiter.when("a") == 0.0
    assert limiter.when("b") == pytest.approx(0.1)
    await clock.advance(3600)  # refills to the burst, not beyond
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    assert limiter.when("over") == pytest.approx(0.1)


def test_bucket_validates_its_parameters() -> None:
    with pytest.raises(ValueError, match="qps"):
        BucketRateLimiter(qps=0)
    with pytest.raises(ValueError, match="burst"):
        BucketRateLimiter(burst=0)


class _Fixed:
    def __init__(self, delay: float, requeues: int) -> None:
        self.delay = delay
        self.requeues = requeues
        self.asked: list[object] = []
        self.forgotten: list[object] = []

    def when(self, item: object) -> float:
        self.asked.append(item)
        return self.delay

    def forget(self, item: object) -> None:
        self.forgotten.append(item)

    def num_requeues(self, item: object) -> int:
        return self.requeues


def test_max_of_asks_everyone_and_returns_the_longest_wait() -> None:
    short, long = _Fixed(0.1, 3), _Fixed(2.0, 1)
    limiter: RateLimiter = MaxOfRateLimiter(short, long)
    assert limiter.when("a") == 2.0
    assert short.asked == long.asked == ["a"]
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert short.forgotten == long.forgotten == ["a"]


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MaxOfRateLimiter()


async def test_default_controller_rate_limiter_is_max_of_exponential_and_bucket() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock)
    # One key failing repeatedly: the exponential limiter dominates.
    assert [limiter.when("a") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert limiter.num_requeues("a") == 3
    # A herd of distinct keys: the bucket (which already served 3) dominates past its burst.
    herd = [limiter.when(i) for i in range(99)]
    assert herd[:97] == [0.005] * 97
    assert herd[97:] == [pytest.approx(0.1), pytest.approx(0.2)]
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    await clock.advance(60)
    assert limiter.when("a") == 0.005
