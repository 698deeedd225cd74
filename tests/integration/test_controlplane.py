"""The real control plane: watches, CRDs, RBAC, service accounts, restart on the same data, failures."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kpack_core.envtest import controlplane as controlplane_module
from kpack_core.envtest.controlplane import ControlPlane, ControlPlaneError

pytestmark = pytest.mark.integration


async def test_configmap_is_seen_through_a_watch(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    listed = await core.list_namespaced_config_map(namespace)
    stream = watch.Watch()
    seen: list[tuple[str, str]] = []

    async def watch_until_added() -> None:
        async with stream.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=30,
        ) as events:
            async for event in events:
                seen.append((event["type"], event["object"].metadata.name))
                if event["type"] == "ADDED" and event["object"].metadata.name == "watched":
                    return

    watcher = asyncio.create_task(watch_until_added())
    await asyncio.sleep(0.2)
    await core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"k": "v"})
    )
    await asyncio.wait_for(watcher, 30)
    assert ("ADDED", "watched") in seen


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.envtest.kpack.io"},
    "spec": {
        "group": "envtest.kpack.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}


async def test_crd_is_installed_and_its_resources_served(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str
) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    try:
        await extensions.create_custom_resource_definition(CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    custom = client.CustomObjectsApi(api_client)
    widget = {
        "apiVersion": "envtest.kpack.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
    }
    for _ in range(100):  # the new resource is served once its discovery is published
        try:
            await custom.create_namespaced_custom_object("envtest.kpack.io", "v1", namespace, "widgets", widget)
            break
        except ApiException as exc:
            if exc.status != 404:
                raise
            await asyncio.sleep(0.1)
    stored = await custom.get_namespaced_custom_object("envtest.kpack.io", "v1", namespace, "widgets", "w")
    assert stored["spec"] == {"size": 3}
    bad = {**widget, "metadata": {"name": "bad"}, "spec": {"size": "three"}}
    with pytest.raises(ApiException) as invalid:
        await custom.create_namespaced_custom_object("envtest.kpack.io", "v1", namespace, "widgets", bad)
    assert invalid.value.status == 422
    assert "spec.size" in invalid.value.body


async def _client_for(kubeconfig: Path) -> client.ApiClient:
    return await config.new_client_from_config(config_file=str(kubeconfig))


async def test_user_without_rights_is_denied(control_plane: ControlPlane, namespace: str) -> None:
    kubeconfig = control_plane.kubeconfig_for_user("nobody", ("some-team",))
    async with await _client_for(kubeconfig) as api:
        with pytest.raises(ApiException) as denied:
            await client.CoreV1Api(api).list_namespaced_config_map(namespace)
    assert denied.value.status == 403
    assert 'User "nobody" cannot list resource "configmaps"' in json.loads(denied.value.body)["message"]


async def test_service_account_gets_what_its_role_grants(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    await rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    await rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    kubeconfig = await control_plane.kubeconfig_for_service_account(namespace, "reader")
    async with await _client_for(kubeconfig) as api:
        core = client.CoreV1Api(api)
        allowed = await core.list_namespaced_config_map(namespace)
        assert allowed.items is not None
        with pytest.raises(ApiException) as denied:
            await core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nope"))
            )
        assert denied.value.status == 403
        assert f"system:serviceaccount:{namespace}:reader" in denied.value.body
        with pytest.raises(ApiException) as elsewhere:
            await core.list_namespaced_config_map("default")
        assert elsewhere.value.status == 403


@pytest.fixture
async def private_control_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    """A control plane of this test's own, for tests that stop, break or restart it."""
    async with ControlPlane(tmp_path / "cp") as control_plane:
        yield control_plane


async def test_restart_keeps_data_and_address(private_control_plane: ControlPlane) -> None:
    cp = private_control_plane
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "survivor"}, "data": {"a": "1"}}
    status, _ = await cp.request("POST", "/api/v1/namespaces/default/configmaps", body)
    assert status == 201
    url = cp.url
    await cp.stop()
    assert not cp.running
    with pytest.raises(aiohttp.ClientConnectorError):
        await cp.request("GET", "/api/v1/namespaces/default/configmaps/survivor")
    await cp.start()
    assert cp.url == url
    status, stored = await cp.request("GET", "/api/v1/namespaces/default/configmaps/survivor")
    assert status == 200
    assert stored["data"] == {"a": "1"}


async def test_dead_apiserver_is_noticed_and_started_again(private_control_plane: ControlPlane) -> None:
    cp = private_control_plane
    assert cp.apiserver is not None
    await cp.apiserver.kill()
    assert not cp.running
    await cp.start()
    assert cp.running
    status, _ = await cp.request("GET", "/api/v1/namespaces/default")
    assert status == 200


async def test_failure_to_start_shows_the_servers_logs(tmp_path: Path) -> None:
    broken = ControlPlane(tmp_path / "cp", extra_apiserver_flags={"no-such-flag": "1"}, start_timeout=30)
    with pytest.raises(ControlPlaneError) as caught:
        async with broken:
            pass
    message = str(caught.value)
    assert "kube-apiserver exited" in message
    assert "unknown flag: --no-such-flag" in message
    assert "--- etcd" in message
    assert not broken.running


async def test_busy_port_is_replaced_by_a_free_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    busy = squatter.getsockname()[1]
    real_free_ports = controlplane_module.free_ports
    calls = []

    def first_pick_is_busy(count: int) -> list[int]:
        calls.append(count)
        ports = real_free_ports(count)
        return [*ports[:-1], busy] if len(calls) == 1 else ports

    monkeypatch.setattr(controlplane_module, "free_ports", first_pick_is_busy)
    try:
        async with ControlPlane(tmp_path / "cp") as cp:
            assert cp.port != busy
            assert len(calls) == 2
            status, _ = await cp.request("GET", "/readyz")
            assert status == 200
    finally:
        squatter.close()
