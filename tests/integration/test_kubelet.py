"""The test kubelet writes pod status through the real API, as a kubelet would."""

from __future__ import annotations

import pytest

from kpack_core.envtest.controlplane import ControlPlane
from kpack_core.envtest.kubelet import Kubelet

pytestmark = pytest.mark.integration

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "build-pod"},
    "spec": {
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "prepare", "image": "example.invalid/prepare"},
            {"name": "detect", "image": "example.invalid/detect"},
            {"name": "build", "image": "example.invalid/build"},
        ],
        "containers": [{"name": "completion", "image": "example.invalid/completion"}],
    },
}


async def _create_pod(control_plane: ControlPlane, namespace: str) -> None:
    status, body = await control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", POD)
    assert status == 201, body


async def test_failed_init_container_is_visible_with_exit_code_and_message(
    control_plane: ControlPlane, kubelet: Kubelet, namespace: str
) -> None:
    await _create_pod(control_plane, namespace)
    running = await kubelet.run_init_container(namespace, "build-pod", "detect")
    assert running["status"]["phase"] == "Pending"
    await kubelet.fail_init_container(namespace, "build-pod", "detect", 51, "no buildpacks participating")
    status, pod = await control_plane.request("GET", f"/api/v1/namespaces/{namespace}/pods/build-pod")
    assert status == 200
    assert pod["status"]["phase"] == "Failed"
    states = {s["name"]: s["state"] for s in pod["status"]["initContainerStatuses"]}
    assert states["prepare"]["terminated"]["exitCode"] == 0
    assert states["detect"]["terminated"] == {
        **states["detect"]["terminated"],
        "exitCode": 51,
        "message": "no buildpacks participating",
    }
    assert "waiting" in states["build"]
    assert "waiting" in pod["status"]["containerStatuses"][0]["state"]


async def test_succeeded_pod(control_plane: ControlPlane, kubelet: Kubelet, namespace: str) -> None:
    await _create_pod(control_plane, namespace)
    pod = await kubelet.succeed(namespace, "build-pod")
    assert pod["status"]["phase"] == "Succeeded"
    assert all(s["state"]["terminated"]["exitCode"] == 0 for s in pod["status"]["initContainerStatuses"])
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


async def test_unknown_init_container_is_named(control_plane: ControlPlane, kubelet: Kubelet, namespace: str) -> None:
    await _create_pod(control_plane, namespace)
    with pytest.raises(ValueError, match="has no init container 'export'"):
        await kubelet.fail_init_container(namespace, "build-pod", "export", 1)
