"""The informer's list/watch `Backoff`: client-go's reflector backoff (0.8 s doubling to 30 s, jitter factor 1.0,
reset after 2 minutes without failures), on a fake clock with the jitter pinned where exact values matter."""

from __future__ import annotations

import random

import pytest

from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.informer import Backoff, InformerOptions

BASES = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0]


def reflector_backoff(clock: FakeClock) -> Backoff:
    """A backoff with the informer's defaults."""
    options = InformerOptions()
    return Backoff(options.backoff_initial, options.backoff_max, options.backoff_reset, clock)


def test_the_informer_defaults_are_client_gos() -> None:
    options = InformerOptions()
    assert (options.backoff_initial, options.backoff_max, options.backoff_reset) == (0.8, 30.0, 120.0)


def test_delays_double_from_0_8_s_and_cap_at_30_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)  # no jitter: the base delays
    backoff = reflector_backoff(FakeClock())
    assert [backoff.next_delay() for _ in BASES] == pytest.approx(BASES)


def test_jitter_adds_up_to_the_delay_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.5)
    backoff = reflector_backoff(FakeClock())
    assert [backoff.next_delay() for _ in BASES] == pytest.approx([1.5 * b for b in BASES])


def test_jittered_delays_stay_in_d_to_2d() -> None:
    for _ in range(200):
        backoff = reflector_backoff(FakeClock())
        for base in BASES:
            delay = backoff.next_delay()
            assert base <= delay < 2 * base


def test_jitter_is_applied_after_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.999)
    backoff = reflector_backoff(FakeClock())
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[-1] == pytest.approx(30.0 * 1.999)


async def test_the_backoff_resets_after_two_minutes_without_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)
    clock = FakeClock()
    backoff = reflector_backoff(clock)
    assert [backoff.next_delay() for _ in range(4)] == pytest.approx([0.8, 1.6, 3.2, 6.4])
    await clock.advance(120)  # exactly two minutes: not more than the reset period
    assert backoff.next_delay() == pytest.approx(12.8)
    await clock.advance(120.5)
    assert backoff.next_delay() == pytest.approx(0.8)
    assert backoff.next_delay() == pytest.approx(1.6)


async def test_the_reset_period_counts_from_the_last_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures every 100 s keep growing the delay, however long the run of failures lasts."""
    monkeypatch.setattr(random, "random", lambda: 0.0)
    clock = FakeClock()
    backoff = reflector_backoff(clock)
    delays = []
    for _ in range(8):
        delays.append(backoff.next_delay())
        await clock.advance(100)
    assert delays == pytest.approx(BASES[:8])


async def test_a_reset_backoff_grows_again_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)
    clock = FakeClock()
    backoff = reflector_backoff(clock)
    for _ in range(10):
        backoff.next_delay()
    await clock.advance(121)
    assert [backoff.next_delay() for _ in BASES] == pytest.approx(BASES)


def test_custom_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)
    backoff = Backoff(0.1, 0.5, 10.0, FakeClock())
    assert [backoff.next_delay() for _ in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
