"""Fixtures for the runtime's integration tests: a test CRD with a status subresource, an apiserver without watch
cache, a fault-injecting proxy route and a recording event handler. (`client` comes from the envtest plugin.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest_asyncio

from kpack_core.envtest import ControlPlane
from kpack_core.envtest.crds import schemaless_crd
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.informer import DeletedFinalStateUnknown, Informer, InformerOptions
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from kpack_core.runtime.store import JSON, object_key

WIDGETS = Resource("test.kpack.io", "v1", "widgets", "Widget")

WIDGET_CRD = schemaless_crd(WIDGETS.group, WIDGETS.version, WIDGETS.plural, WIDGETS.kind)


@pytest_asyncio.fixture(loop_scope="session")
async def widgets(client: Client) -> Resource:
    """The Widget CRD (namespaced, status subresource), installed once and served."""
    with contextlib.suppress(errors.AlreadyExistsError):
        await client.create(CUSTOM_RESOURCE_DEFINITIONS, WIDGET_CRD)
    for _ in range(100):
        crd = await client.get(CUSTOM_RESOURCE_DEFINITIONS, "widgets.test.kpack.io")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True":
            try:
                await client.list(WIDGETS, "default", limit=1)
                return WIDGETS
            except errors.NotFoundError:
                pass
        await asyncio.sleep(0.1)
    raise AssertionError("the Widget CRD was not served within 10 s")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def uncached_control_plane(envtest_dir: Path) -> AsyncIterator[ControlPlane]:
    """A second control plane whose kube-apiserver has no watch cache, so every list and watch reaches etcd:
    after `compact_etcd()` an old resourceVersion is answered with 410 Gone, as a busy production cluster would."""
    async with ControlPlane(envtest_dir / "uncached", extra_apiserver_flags={"watch-cache": "false"}) as plane:
        yield plane


@pytest_asyncio.fixture(loop_scope="session")
async def uncached_client(uncached_control_plane: ControlPlane) -> AsyncIterator[Client]:
    """An admin Client of the uncached control plane."""
    async with await Client.from_kubeconfig(str(uncached_control_plane.kubeconfig_path)) as c:
        yield c


async def watch_all(client: Client, resource: Resource, namespace: str | None, resource_version: str) -> list[str]:
    """Consume a watch to its end (or error) and return the event types seen."""
    seen = []
    async with client.watch(resource, namespace, resource_version=resource_version) as events:
        async for event in events:
            seen.append(event.type)
    return seen


def kubeconfig_via(control_plane: ControlPlane, port: int, path: Path) -> Path:
    """A copy of the admin kubeconfig that reaches the apiserver through 127.0.0.1:`port` (a test proxy)."""
    config = json.loads(control_plane.kubeconfig_path.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(json.dumps(config))
    return path


class Recorder:
    """An informer event handler that records what it is told, for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, JSON | None]] = []
        self.changed = asyncio.Event()

    def _record(self, kind: str, obj: JSON) -> None:
        self.events.append((kind, object_key(obj), obj))
        self.changed.set()

    def on_add(self, obj: JSON, is_in_initial_list: bool) -> None:
        self._record("initial-add" if is_in_initial_list else "add", obj)

    def on_update(self, old: JSON, new: JSON) -> None:
        same = old["metadata"]["resourceVersion"] == new["metadata"]["resourceVersion"]
        self._record("resync" if same else "update", new)

    def on_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key, obj.obj))
            self.changed.set()
        else:
            self._record("delete", obj)

    def kinds(self, key: str) -> list[str]:
        return [kind for kind, k, _ in self.events if k == key]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        """Wait until `predicate()` holds, checking on every recorded event and every 50 ms."""
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.05)


@asynccontextmanager
async def running_informer(
    client: Client, resource: Resource, namespace: str, options: InformerOptions
) -> AsyncIterator[tuple[Informer, Recorder]]:
    """A started, synced informer on one namespace with a `Recorder` handler; stopped on exit."""
    informer = Informer(client, resource, namespace=namespace, options=options)
    recorder = Recorder()
    informer.add_handler(recorder)
    informer.start()
    try:
        await informer.wait_for_sync(30)
        yield informer, recorder
    finally:
        await informer.stop()
