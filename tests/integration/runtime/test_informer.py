"""Informers on a real apiserver: events reach handlers, and nothing is missed across apiserver restarts, expired
resourceVersions (etcd compaction) and silently stalled connections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.envtest import ControlPlane
from kpack_core.runtime.cache import Cache, NoInformerError
from kpack_core.runtime.client import Client
from kpack_core.runtime.informer import Informer, InformerOptions
from kpack_core.runtime.resource import CONFIGMAPS, NAMESPACES, SECRETS
from kpack_core.runtime.store import field_indexer
from tests.integration.runtime.conftest import Recorder, kubeconfig_via, running_informer
from tests.integration.runtime.proxy import FaultyProxy

FAST = InformerOptions(backoff_initial=0.1, backoff_max=1.0, inactivity_timeout=70.0)


def configmap(name: str, namespace: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


@pytest_asyncio.fixture(loop_scope="session")
async def informed(client: Client, namespace: str) -> AsyncIterator[tuple[Informer, Recorder]]:
    """A started ConfigMap informer on the test's namespace with a recording handler."""
    async with running_informer(client, CONFIGMAPS, namespace, FAST) as started:
        yield started


async def test_handlers_see_create_update_delete(client: Client, namespace: str) -> None:
    await client.create(CONFIGMAPS, configmap("before", namespace))
    async with running_informer(client, CONFIGMAPS, namespace, FAST) as (informer, recorder):
        assert recorder.kinds(f"{namespace}/before") == ["initial-add"]
        await client.create(CONFIGMAPS, configmap("x", namespace, v="1"))
        await client.patch(CONFIGMAPS, "x", {"data": {"v": "2"}}, namespace=namespace)
        await client.delete(CONFIGMAPS, "x", namespace)
        key = f"{namespace}/x"
        await recorder.wait_for(lambda: "delete" in recorder.kinds(key))
        assert recorder.kinds(key) == ["add", "update", "delete"]
        updated = next(obj for kind, k, obj in recorder.events if k == key and kind == "update")
        assert updated is not None
        assert updated["data"] == {"v": "2"}
        assert informer.get("x", namespace) is None
        assert informer.get("before", namespace) is not None


async def test_cache_reads_are_copies(informed: tuple[Informer, Recorder], client: Client, namespace: str) -> None:
    informer, recorder = informed
    await client.create(CONFIGMAPS, configmap("c", namespace, v="1"))
    await recorder.wait_for(lambda: informer.get("c", namespace) is not None)
    first = informer.get("c", namespace)
    assert first is not None
    first["data"]["v"] = "mutated by a careless reconciler"
    again = informer.get("c", namespace)
    assert again is not None
    assert again["data"] == {"v": "1"}


async def test_indexes_and_late_handlers(client: Client, namespace: str) -> None:
    owner = await client.create(CONFIGMAPS, configmap("owner", namespace))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    child = configmap("child", namespace, stack="base")
    child["metadata"]["ownerReferences"] = [ref]  # type: ignore[index]
    await client.create(CONFIGMAPS, child)
    informer = Informer(
        client,
        CONFIGMAPS,
        namespace=namespace,
        indexers={"stack": field_indexer(lambda o: [o.get("data", {}).get("stack", "")])},
        options=FAST,
    )
    informer.start()
    try:
        await informer.wait_for_sync(30)
        assert [o["metadata"]["name"] for o in informer.by_index("owner-uid", owner["metadata"]["uid"])] == ["child"]
        assert [o["metadata"]["name"] for o in informer.by_index("stack", f"{namespace}/base")] == ["child"]
        assert [o["metadata"]["name"] for o in informer.by_index("stack", "__all_namespaces/base")] == ["child"]
        assert {o["metadata"]["name"] for o in informer.list(namespace)} >= {"owner", "child"}
        late = Recorder()
        informer.add_handler(late)
        assert {key for _, key, _ in late.events} >= {f"{namespace}/owner", f"{namespace}/child"}
        await client.patch(CONFIGMAPS, "child", {"data": {"stack": "full"}}, namespace=namespace)
        await late.wait_for(lambda: "update" in late.kinds(f"{namespace}/child"))
        assert informer.by_index("stack", f"{namespace}/base") == []
        assert len(informer.by_index("stack", f"{namespace}/full")) == 1
    finally:
        await informer.stop()


async def test_label_selector_and_resync(client: Client, namespace: str) -> None:
    options = InformerOptions(resync_period=0.5, backoff_initial=0.1)
    informer = Informer(client, CONFIGMAPS, namespace=namespace, label_selector="pick=yes", options=options)
    recorder = Recorder()
    informer.add_handler(recorder)
    picked = configmap("picked", namespace)
    picked["metadata"]["labels"] = {"pick": "yes"}  # type: ignore[index]
    await client.create(CONFIGMAPS, picked)
    await client.create(CONFIGMAPS, configmap("ignored", namespace))
    informer.start()
    try:
        await informer.wait_for_sync(30)
        await recorder.wait_for(lambda: recorder.kinds(f"{namespace}/picked").count("resync") >= 2)
        assert recorder.kinds(f"{namespace}/ignored") == []
    finally:
        await informer.stop()


async def test_shared_cache_gives_one_informer_per_scope(client: Client, namespace: str) -> None:
    cache = Cache(client, options=FAST)
    first = cache.informer(CONFIGMAPS, namespace=namespace)
    assert cache.informer(CONFIGMAPS, namespace=namespace) is first
    assert cache.informer(CONFIGMAPS, namespace=namespace, label_selector="a=b") is not first
    cache.start()
    try:
        await client.create(CONFIGMAPS, configmap("shared", namespace))
        await cache.wait_for_sync(30)
        recorder = Recorder()
        first.add_handler(recorder)
        await recorder.wait_for(lambda: cache.get(CONFIGMAPS, "shared", namespace) is not None)
        with pytest.raises(NoInformerError, match="secrets"):
            cache.get(SECRETS, "x", namespace)
    finally:
        await cache.stop()


async def test_recovers_from_an_apiserver_restart(tmp_path: Path) -> None:
    async with (
        ControlPlane(tmp_path / "plane") as plane,
        await Client.from_kubeconfig(str(plane.kubeconfig_path)) as client,
    ):
        await client.create(CONFIGMAPS, configmap("kept", "default"))
        await client.create(CONFIGMAPS, configmap("doomed", "default"))
        async with running_informer(client, CONFIGMAPS, "default", FAST) as (informer, recorder):
            assert plane.apiserver is not None
            await plane.apiserver.stop(10)
            await recorder.wait_for(lambda: informer.failing_since is not None, within=10)
            await plane.start()
            # Changes right after the restart, racing the informer's reconnect: none may be missed.
            await client.create(CONFIGMAPS, configmap("born", "default"))
            await client.patch(CONFIGMAPS, "kept", {"data": {"v": "new"}}, namespace="default")
            await client.delete(CONFIGMAPS, "doomed", "default")
            await recorder.wait_for(
                lambda: (
                    informer.get("born", "default") is not None
                    and informer.get("doomed", "default") is None
                    and (informer.get("kept", "default") or {}).get("data") == {"v": "new"}
                )
            )
            assert "add" in recorder.kinds("default/born")
            assert {"delete", "tombstone"} & set(recorder.kinds("default/doomed"))
            assert informer.failing_since is None


async def test_relists_when_etcd_compacted_past_its_version(
    uncached_control_plane: ControlPlane, uncached_client: Client, tmp_path: Path
) -> None:
    proxy = FaultyProxy("127.0.0.1", uncached_control_plane.port)
    namespace = "compaction"
    await uncached_client.create(NAMESPACES, {"metadata": {"name": namespace}})
    for name in ("kept", "doomed"):
        await uncached_client.create(CONFIGMAPS, configmap(name, namespace))
    path = kubeconfig_via(uncached_control_plane, proxy.port, tmp_path / "kubeconfig")
    async with (
        proxy,
        await Client.from_kubeconfig(str(path)) as client,
        running_informer(client, CONFIGMAPS, namespace, FAST) as (informer, recorder),
    ):
        proxy.sever()
        await uncached_client.create(CONFIGMAPS, configmap("born", namespace))
        await uncached_client.patch(CONFIGMAPS, "kept", {"data": {"v": "new"}}, namespace=namespace)
        await uncached_client.delete(CONFIGMAPS, "doomed", namespace)
        await uncached_control_plane.compact_etcd()
        assert informer.get("born", namespace) is None, "the informer must have been cut off"
        proxy.restore()
        await recorder.wait_for(lambda: informer.get("born", namespace) is not None, within=30)
        assert informer.relists >= 1
        assert recorder.kinds(f"{namespace}/born") == ["add"]
        assert recorder.kinds(f"{namespace}/kept") == ["initial-add", "update"]
        assert recorder.kinds(f"{namespace}/doomed") == ["initial-add", "tombstone"]
        assert informer.get("doomed", namespace) is None


async def test_a_silent_watch_is_noticed_and_reopened(
    control_plane: ControlPlane, client: Client, namespace: str, tmp_path: Path
) -> None:
    proxy = FaultyProxy("127.0.0.1", control_plane.port)
    path = kubeconfig_via(control_plane, proxy.port, tmp_path / "kubeconfig")
    options = InformerOptions(backoff_initial=0.1, backoff_max=1.0, inactivity_timeout=1.0)
    async with (
        proxy,
        await Client.from_kubeconfig(str(path)) as proxied,
        running_informer(proxied, CONFIGMAPS, namespace, options) as (informer, recorder),
    ):
        proxy.freeze()
        await client.create(CONFIGMAPS, configmap("while-frozen", namespace))
        await recorder.wait_for(lambda: "WatchStalledError" in (informer.last_error or ""), within=10)
        assert informer.get("while-frozen", namespace) is None
        proxy.restore()
        await recorder.wait_for(lambda: informer.get("while-frozen", namespace) is not None, within=30)
        assert recorder.kinds(f"{namespace}/while-frozen") == ["add"]
