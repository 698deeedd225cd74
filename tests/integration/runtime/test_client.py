"""The client against a real kube-apiserver: every verb, pagination, typed errors, watches, request metrics."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, PatchType, RetryPolicy, WatchEvent
from kpack_core.runtime.metrics import exposition
from kpack_core.runtime.resource import CONFIGMAPS, Resource
from tests.integration.runtime.conftest import watch_all


def configmap(name: str, namespace: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_create_get_update_delete(client: Client, namespace: str) -> None:
    created = await client.create(CONFIGMAPS, configmap("a", namespace, k="1"))
    assert created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, "a", namespace)
    assert got["data"] == {"k": "1"}
    got["data"]["k"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"] == {"k": "2"}
    await client.delete(CONFIGMAPS, "a", namespace)
    with pytest.raises(errors.NotFoundError, match=f"ConfigMap {namespace}/a"):
        await client.get(CONFIGMAPS, "a", namespace)


async def test_conflict_and_already_exists_are_typed(client: Client, namespace: str) -> None:
    first = await client.create(CONFIGMAPS, configmap("c", namespace, k="1"))
    with pytest.raises(errors.AlreadyExistsError):
        await client.create(CONFIGMAPS, configmap("c", namespace))
    await client.patch(CONFIGMAPS, "c", {"data": {"k": "2"}}, namespace=namespace)
    first["data"]["k"] = "stale"
    with pytest.raises(errors.ConflictError) as caught:
        await client.update(CONFIGMAPS, first)
    assert caught.value.status == 409
    assert (await client.get(CONFIGMAPS, "c", namespace))["data"] == {"k": "2"}


async def test_invalid_object_names_the_field(client: Client, namespace: str) -> None:
    with pytest.raises(errors.InvalidError, match=r"metadata\.name"):
        await client.create(CONFIGMAPS, configmap("Not_Valid", namespace))


async def test_patch_flavours(client: Client, namespace: str) -> None:
    await client.create(CONFIGMAPS, configmap("p", namespace, a="1"))
    await client.patch(CONFIGMAPS, "p", {"data": {"b": "2"}}, namespace=namespace)
    await client.patch(
        CONFIGMAPS, "p", [{"op": "remove", "path": "/data/a"}], namespace=namespace, patch_type=PatchType.JSON
    )
    applied = await client.patch(
        CONFIGMAPS,
        "p",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"c": "3"}},
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager="kpack-test",
        force=True,
    )
    assert applied["data"] == {"b": "2", "c": "3"}
    with pytest.raises(ValueError, match="field_manager"):
        await client.patch(CONFIGMAPS, "p", {}, namespace=namespace, patch_type=PatchType.APPLY)


async def test_list_follows_pages(client: Client, namespace: str) -> None:
    await asyncio.gather(*(client.create(CONFIGMAPS, configmap(f"m{i:02}", namespace)) for i in range(25)))
    pages = [len(items) async for items, _ in client.list_pages(CONFIGMAPS, namespace, limit=10)]
    assert pages == [10, 10, 5]
    listed = await client.list(CONFIGMAPS, namespace, limit=7)
    names = {item["metadata"]["name"] for item in listed.items}
    assert {f"m{i:02}" for i in range(25)} <= names
    assert int(listed.resource_version) > 0


async def test_label_selector(client: Client, namespace: str) -> None:
    labelled = configmap("l", namespace)
    labelled["metadata"]["labels"] = {"team": "a"}  # type: ignore[index]
    await client.create(CONFIGMAPS, labelled)
    await client.create(CONFIGMAPS, configmap("u", namespace))
    listed = await client.list(CONFIGMAPS, namespace, label_selector="team=a")
    assert [item["metadata"]["name"] for item in listed.items] == ["l"]


async def test_status_subresource(client: Client, namespace: str, widgets: Resource) -> None:
    widget = await client.create(
        widgets, {"apiVersion": "test.kpack.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"x": 1}},
        namespace,
    )  # fmt: skip
    widget["status"] = {"phase": "Ready"}
    widget["spec"] = {"x": 2}
    updated = await client.update_status(widgets, widget)
    assert updated["status"] == {"phase": "Ready"}
    assert updated["spec"] == {"x": 1}, "a status update must not change the spec"


async def test_watch_sees_changes_and_gone_is_typed(client: Client, namespace: str) -> None:
    listed = await client.list(CONFIGMAPS, namespace)
    seen: list[WatchEvent] = []
    async with client.watch(CONFIGMAPS, namespace, resource_version=listed.resource_version) as events:
        await client.create(CONFIGMAPS, configmap("w", namespace, k="1"))
        await client.patch(CONFIGMAPS, "w", {"data": {"k": "2"}}, namespace=namespace)
        await client.delete(CONFIGMAPS, "w", namespace)
        async for event in events:
            if event.type != "BOOKMARK":
                seen.append(event)
            if len(seen) == 3:
                break
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[1].object["data"] == {"k": "2"}


async def test_expired_resource_version_is_gone(uncached_client: Client, uncached_control_plane: ControlPlane) -> None:
    old = await uncached_client.list(CONFIGMAPS, "default")
    # Two writes: etcd keeps the compaction revision itself, so one write would leave the next one watchable.
    await uncached_client.create(CONFIGMAPS, configmap("gone", "default"))
    await uncached_client.delete(CONFIGMAPS, "gone", "default")
    await uncached_control_plane.compact_etcd()
    with pytest.raises(errors.GoneError, match="too old"):
        await watch_all(uncached_client, CONFIGMAPS, "default", old.resource_version)
    with pytest.raises(errors.GoneError):
        await uncached_client.list(CONFIGMAPS, "default", resource_version=old.resource_version)


async def test_forbidden_is_typed(control_plane: ControlPlane, namespace: str) -> None:
    path = control_plane.kubeconfig_for_user("nobody")
    async with await Client.from_kubeconfig(str(path), retry=RetryPolicy(attempts=1)) as c:
        with pytest.raises(errors.ForbiddenError, match="nobody"):
            await c.list(CONFIGMAPS, namespace)


async def test_requests_are_counted(client: Client, namespace: str) -> None:
    def count(code: str, method: str) -> float:
        for family in text_string_to_metric_families(exposition().decode()):
            if family.name == "rest_client_requests":
                for sample in family.samples:
                    labels = sample.labels
                    if sample.name == "rest_client_requests_total" and labels == {
                        "code": code,
                        "method": method,
                        "host": client.host,
                    }:
                        return sample.value
        return 0.0

    before_get, before_404 = count("200", "GET"), count("404", "GET")
    await client.create(CONFIGMAPS, configmap("n", namespace))
    await client.get(CONFIGMAPS, "n", namespace)
    with pytest.raises(errors.NotFoundError):
        await client.get(CONFIGMAPS, "missing", namespace)
    assert count("200", "GET") == before_get + 1
    assert count("404", "GET") == before_404 + 1
    assert count("201", "POST") >= 1
