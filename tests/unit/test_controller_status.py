"""Conditions keep their transition time while their status holds, and change it when it flips."""

from __future__ import annotations

import datetime

from kpack_controllers.status import condition, condition_status, ready


def at(minute: int) -> datetime.datetime:
    return datetime.datetime(2026, 1, 1, 0, minute, tzinfo=datetime.UTC)


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = condition("Ready", True, now=lambda: at(1))
    assert first == {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:01:00Z"}
    again = condition("Ready", True, previous=[first], message="still", now=lambda: at(5))
    assert again["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert again["message"] == "still"


def test_transition_time_moves_when_the_status_flips() -> None:
    first = condition("Ready", True, now=lambda: at(1))
    flipped = condition("Ready", False, previous=[first], reason="Bad", message="x", now=lambda: at(7))
    assert flipped == {
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": "2026-01-01T00:07:00Z",
        "reason": "Bad",
        "message": "x",
    }
    assert condition("Ready", None, now=lambda: at(2))["status"] == "Unknown"


def test_ready_reads_the_ready_condition() -> None:
    obj = {"status": {"conditions": [{"type": "Other", "status": "True"}, {"type": "Ready", "status": "False"}]}}
    assert not ready(obj)
    assert condition_status(obj, "Other") == "True"
    assert not ready({})
    assert ready({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
