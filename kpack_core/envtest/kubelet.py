"""Kubelet: tests play the kubelet's part, since no kubelet runs in envtest.

A controller that watches build pods reacts to what a kubelet writes into `pod.status`: the phase and the
states of init and regular containers (running, waiting, terminated with an exit code and termination
message). These helpers write exactly that through the real API (the pod's `status` subresource), so the
controller under test sees the same objects it would see in a cluster.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kpack_core.envtest.controlplane import ControlPlane, ControlPlaneError


@dataclass(frozen=True)
class Waiting:
    reason: str = "PodInitializing"
    message: str = ""


@dataclass(frozen=True)
class Running:
    pass


@dataclass(frozen=True)
class Terminated:
    exit_code: int = 0
    message: str = ""
    reason: str | None = None  # default: "Completed" for exit code 0, "Error" otherwise


ContainerState = Waiting | Running | Terminated


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(state: ContainerState, started: str) -> dict[str, Any]:
    if isinstance(state, Running):
        return {"running": {"startedAt": started}}
    if isinstance(state, Waiting):
        return {"waiting": {"reason": state.reason, **({"message": state.message} if state.message else {})}}
    terminated: dict[str, Any] = {
        "exitCode": state.exit_code,
        "reason": state.reason or ("Completed" if state.exit_code == 0 else "Error"),
        "startedAt": started,
        "finishedAt": started,
    }
    if state.message:
        terminated["message"] = state.message
    return {"terminated": terminated}


def container_statuses(
    containers: list[dict[str, Any]], states: Mapping[str, ContainerState], default: ContainerState
) -> list[dict[str, Any]]:
    """Statuses for every container of a pod spec list, in spec order; unnamed ones get `default`."""
    unknown = set(states) - {container["name"] for container in containers}
    if unknown:
        raise ValueError(f"no such container(s) in the pod spec: {', '.join(sorted(unknown))}")
    started = _now()
    statuses = []
    for container in containers:
        state = states.get(container["name"], default)
        statuses.append(
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": isinstance(state, Running),
                "restartCount": 0,
                "started": isinstance(state, Running),
                "state": _state(state, started),
            }
        )
    return statuses


class Kubelet:
    """Writes pod status the way a kubelet would, through the admin client of `control_plane`."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self._control_plane = control_plane

    async def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        status, pod = await self._control_plane.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if status != 200:
            raise ControlPlaneError(f"pod {namespace}/{name}: {status} {pod}")
        result: dict[str, Any] = pod
        return result

    async def set_status(
        self,
        namespace: str,
        name: str,
        phase: str,
        *,
        init_containers: Mapping[str, ContainerState] | None = None,
        containers: Mapping[str, ContainerState] | None = None,
        message: str = "",
    ) -> dict[str, Any]:
        """Sets the pod's phase and the state of each container; containers not named are waiting.

        Returns the pod as stored after the update.
        """
        pod = await self._pod(namespace, name)
        spec = pod["spec"]
        status: dict[str, Any] = {
            "phase": phase,
            "initContainerStatuses": container_statuses(
                spec.get("initContainers", []), init_containers or {}, Waiting("PodInitializing")
            ),
            "containerStatuses": container_statuses(spec["containers"], containers or {}, Waiting("PodInitializing")),
            "startTime": pod.get("status", {}).get("startTime") or _now(),
        }
        if message:
            status["message"] = message
        code, updated = await self._control_plane.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )
        if code != 200:
            raise ControlPlaneError(f"updating the status of pod {namespace}/{name}: {code} {updated}")
        result: dict[str, Any] = updated
        return result

    async def run_init_container(self, namespace: str, name: str, container: str) -> dict[str, Any]:
        """Init containers before `container` succeeded, `container` runs, the rest wait (phase Pending)."""
        pod = await self._pod(namespace, name)
        order = [c["name"] for c in pod["spec"].get("initContainers", [])]
        if container not in order:
            raise ValueError(f"pod {namespace}/{name} has no init container {container!r}")
        states: dict[str, ContainerState] = {n: Terminated(0) for n in order[: order.index(container)]}
        states[container] = Running()
        return await self.set_status(namespace, name, "Pending", init_containers=states)

    async def fail_init_container(
        self, namespace: str, name: str, container: str, exit_code: int = 1, message: str = ""
    ) -> dict[str, Any]:
        """Init containers before `container` succeeded, `container` failed, the pod is Failed."""
        pod = await self._pod(namespace, name)
        order = [c["name"] for c in pod["spec"].get("initContainers", [])]
        if container not in order:
            raise ValueError(f"pod {namespace}/{name} has no init container {container!r}")
        if exit_code == 0:
            raise ValueError("a failed container needs a non-zero exit code")
        states: dict[str, ContainerState] = {n: Terminated(0) for n in order[: order.index(container)]}
        states[container] = Terminated(exit_code, message)
        return await self.set_status(namespace, name, "Failed", init_containers=states)

    async def succeed(self, namespace: str, name: str) -> dict[str, Any]:
        """Every init and regular container exited 0; the pod is Succeeded."""
        pod = await self._pod(namespace, name)
        spec = pod["spec"]
        return await self.set_status(
            namespace,
            name,
            "Succeeded",
            init_containers={c["name"]: Terminated(0) for c in spec.get("initContainers", [])},
            containers={c["name"]: Terminated(0) for c in spec["containers"]},
        )
