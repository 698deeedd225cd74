"""The shared retry pieces (`kpack_core.retry`) on their own: backoff ceilings, jitter bounds, Retry-After parsing
and capping, and when the loop stops and what it raises. No network; the loops run with zero or tiny waits."""

from __future__ import annotations

import random
import time

import pytest
from multidict import CIMultiDict
from tenacity import RetryCallState

from kpack_core.registry import RegistryOptions
from kpack_core.retry import (
    RetryPolicy,
    Transient,
    backoff_ceiling,
    delay,
    parse_retry_after,
    retried,
    retrying,
)

POLICY = RetryPolicy(attempts=5, total=30.0, initial_backoff=0.2, max_backoff=5.0, max_retry_after=10.0)
NO_WAIT = RetryPolicy(attempts=3, total=30.0, initial_backoff=0.0, max_backoff=0.0)


def test_the_defaults_are_30_s_for_the_api_client_and_60_s_for_registries() -> None:
    assert RetryPolicy() == POLICY
    assert RegistryOptions().retry == RetryPolicy(total=60.0)


def test_the_backoff_ceiling_doubles_from_the_initial_backoff_and_is_capped() -> None:
    ceilings = [backoff_ceiling(POLICY, attempt) for attempt in range(1, 9)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 20])
def test_full_jitter_stays_within_zero_and_the_ceiling(attempt: int) -> None:
    ceiling = backoff_ceiling(POLICY, attempt)
    draws = [delay(POLICY, attempt, None) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in draws)
    assert min(draws) < ceiling / 2 < max(draws)  # spread over the whole range, not pinned to either end


@pytest.mark.parametrize("attempt", [1, 4, 20])
def test_a_jitter_floor_keeps_the_draw_in_the_upper_part(attempt: int) -> None:
    ceiling = backoff_ceiling(POLICY, attempt)
    draws = [delay(POLICY, attempt, None, jitter_floor=0.5) for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in draws)


def test_the_jitter_is_drawn_between_the_floor_and_the_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    delay(POLICY, 3, None)
    delay(POLICY, 3, None, jitter_floor=0.5)
    assert [bound for pair in bounds for bound in pair] == pytest.approx([0.0, 0.8, 0.4, 0.8])


@pytest.mark.parametrize(("server_wait", "expected"), [(0.0, 0.0), (3.0, 3.0), (10.0, 10.0), (600.0, 10.0)])
def test_a_server_wait_replaces_the_backoff_and_is_capped(server_wait: float, expected: float) -> None:
    assert delay(POLICY, 1, server_wait) == expected
    assert delay(POLICY, 6, server_wait, jitter_floor=0.5) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),  # negative: no wait rather than a backoff
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # an HTTP-date: not understood, the backoff applies
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_is_read_in_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after({"Retry-After": value}) == expected


def test_retry_after_absent_is_none_and_the_header_name_is_case_insensitive_in_http_headers() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after(CIMultiDict({"retry-after": "7"})) == 7.0


def wait_after(policy: RetryPolicy, attempt: int, exc: BaseException, *, jitter_floor: float = 0.0) -> float:
    """What the tenacity loop from `retrying` would wait after `attempt` failed with `exc`."""
    loop = retrying(policy, jitter_floor=jitter_floor)
    state = RetryCallState(loop, None, (), {})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return float(loop.wait(state))


def test_the_loop_waits_the_servers_retry_after_capped() -> None:
    assert wait_after(POLICY, 1, Transient(ValueError("busy"), retry_after=2.0)) == 2.0
    assert wait_after(POLICY, 1, Transient(ValueError("busy"), retry_after=99.0)) == POLICY.max_retry_after


def test_the_loop_backs_off_within_the_ceiling_without_a_retry_after() -> None:
    for attempt in range(1, 8):
        ceiling = backoff_ceiling(POLICY, attempt)
        assert 0.0 <= wait_after(POLICY, attempt, Transient(ValueError("down"))) <= ceiling
        assert ceiling / 2 <= wait_after(POLICY, attempt, Transient(ValueError("down")), jitter_floor=0.5) <= ceiling


class Scripted:
    """An attempt that raises or returns its outcomes in turn, the last one from then on, counting its calls."""

    def __init__(self, *outcomes: BaseException | str) -> None:
        self.outcomes = outcomes
        self.calls = 0

    async def __call__(self) -> str:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_retries_stop_after_the_attempts_and_raise_the_wrapped_error() -> None:
    attempt = Scripted(*(Transient(ValueError(f"attempt {n}")) for n in range(1, 10)))
    with pytest.raises(ValueError, match="attempt 3") as caught:
        await retried(NO_WAIT, attempt)
    assert attempt.calls == NO_WAIT.attempts
    assert not isinstance(caught.value, Transient)


async def test_retries_stop_after_the_total_time() -> None:
    attempt = Scripted(Transient(ValueError("down")))
    with pytest.raises(ValueError, match="down"):
        await retried(RetryPolicy(attempts=100, total=0.0, initial_backoff=0.0), attempt)
    assert attempt.calls == 1


async def test_a_transient_failure_then_success_returns_the_result() -> None:
    attempt = Scripted(Transient(ValueError("not yet")), Transient(ValueError("not yet")), "done")
    assert await retried(NO_WAIT, attempt) == "done"
    assert attempt.calls == 3


async def test_a_retry_after_of_zero_skips_a_long_backoff() -> None:
    attempt = Scripted(Transient(ValueError("throttled"), retry_after=0.0), "done")
    started = time.monotonic()
    assert await retried(RetryPolicy(initial_backoff=100.0, max_backoff=100.0), attempt) == "done"
    assert time.monotonic() - started < 5.0  # the backoff would be up to 100 s


async def test_other_exceptions_are_not_retried() -> None:
    attempt = Scripted(KeyError("bug"), "done")
    with pytest.raises(KeyError):
        await retried(NO_WAIT, attempt)
    assert attempt.calls == 1


async def test_the_transients_cause_becomes_the_errors_cause() -> None:
    async def lost() -> str:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError as exc:
            raise Transient(OSError("lost")) from exc

    with pytest.raises(OSError, match="lost") as caught:
        await retried(NO_WAIT, lost)
    assert isinstance(caught.value.__cause__, ConnectionResetError)


async def test_a_transient_raised_from_none_gives_an_error_without_a_cause() -> None:
    async def lost() -> str:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError:
            raise Transient(OSError("lost")) from None

    with pytest.raises(OSError, match="lost") as caught:
        await retried(NO_WAIT, lost)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
