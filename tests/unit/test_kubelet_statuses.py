"""Container statuses written by the test kubelet have the shape a real kubelet writes."""

from __future__ import annotations

import pytest

from kpack_core.envtest.kubelet import Running, Terminated, Waiting, container_statuses

SPEC = [{"name": "prepare", "image": "img/prepare"}, {"name": "build", "image": "img/build"}]


def test_statuses_follow_spec_order_and_default() -> None:
    statuses = container_statuses(SPEC, {"prepare": Terminated(0)}, Waiting("PodInitializing"))
    assert [s["name"] for s in statuses] == ["prepare", "build"]
    assert statuses[0]["state"]["terminated"]["exitCode"] == 0
    assert statuses[0]["state"]["terminated"]["reason"] == "Completed"
    assert statuses[1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert statuses[1]["image"] == "img/build"


def test_failed_container_has_error_reason_and_termination_message() -> None:
    statuses = container_statuses(SPEC, {"build": Terminated(3, "no buildpack")}, Running())
    terminated = statuses[1]["state"]["terminated"]
    assert terminated == {**terminated, "exitCode": 3, "reason": "Error", "message": "no buildpack"}
    assert statuses[0]["state"]["running"]["startedAt"]
    assert statuses[0]["ready"] is True


def test_unknown_container_is_named() -> None:
    with pytest.raises(ValueError, match=r"no such container.*nope"):
        container_statuses(SPEC, {"nope": Running()}, Running())
