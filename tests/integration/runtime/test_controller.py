"""Controllers on a real apiserver: primary, owned and mapped watches, and a key hammered with updates while its
reconcile runs."""

from __future__ import annotations

import asyncio
import time

from kpack_core.runtime.client import Client
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.informer import Informer, InformerOptions
from kpack_core.runtime.predicate import GenerationChanged
from kpack_core.runtime.reconcile import Request, Result
from kpack_core.runtime.resource import CONFIGMAPS, Resource
from kpack_core.runtime.store import JSON, field_indexer

FAST = InformerOptions(backoff_initial=0.1, backoff_max=1.0)


async def eventually(predicate: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class SerialChecker:
    """Reconciles ConfigMaps slowly from the cache, recording concurrency per key and the last value seen."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.running: dict[Request, int] = {}
        self.max_concurrent_per_key = 0
        self.max_concurrent = 0
        self.last_seen: dict[Request, str] = {}
        self.calls = 0

    async def reconcile(self, request: Request) -> Result:
        self.calls += 1
        self.running[request] = self.running.get(request, 0) + 1
        self.max_concurrent_per_key = max(self.max_concurrent_per_key, self.running[request])
        self.max_concurrent = max(self.max_concurrent, sum(self.running.values()))
        try:
            await asyncio.sleep(0.02)
            obj = self.informer.get(request.name, request.namespace)
            if obj is not None:
                self.last_seen[request] = obj.get("data", {}).get("v", "")
            return Result()
        finally:
            self.running[request] -= 1


async def test_a_key_updated_1000_times_is_never_reconciled_concurrently(client: Client, namespace: str) -> None:
    informer = Informer(client, CONFIGMAPS, namespace=namespace, options=FAST)
    checker = SerialChecker(informer)
    controller = Controller("hammer", checker, max_concurrent_reconciles=4)
    controller.watch_for(informer)
    await client.create(CONFIGMAPS, {"metadata": {"name": "hot", "namespace": namespace}, "data": {"v": "-1"}})
    for other in range(3):  # other keys keep the other workers busy, so concurrency is really available
        await client.create(CONFIGMAPS, {"metadata": {"name": f"cold{other}", "namespace": namespace}})
    informer.start()
    await controller.wait_for_sync(30)
    controller.start()
    try:
        for value in range(1000):
            await client.patch(CONFIGMAPS, "hot", {"data": {"v": str(value)}}, namespace=namespace)
            if value % 50 == 0:
                for other in range(3):
                    await client.patch(CONFIGMAPS, f"cold{other}", {"data": {"v": str(value)}}, namespace=namespace)
        hot = Request(namespace, "hot")
        await eventually(lambda: checker.last_seen.get(hot) == "999" and not any(checker.running.values()))
        assert checker.max_concurrent_per_key == 1
        assert checker.max_concurrent > 1, "the test needs parallel workers to mean anything"
        assert checker.calls < 1000 + 4 * 21, "updates arriving during a reconcile must collapse"
    finally:
        await controller.stop(5)
        await informer.stop()


class Recording:
    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def reconcile(self, request: Request) -> Result:
        self.requests.append(request)
        return Result()


async def test_owned_and_mapped_watches(client: Client, namespace: str, widgets: Resource) -> None:
    widget_informer = Informer(
        client,
        widgets,
        namespace=namespace,
        indexers={"stack": field_indexer(lambda o: [o.get("spec", {}).get("stack", "")])},
        options=FAST,
    )
    configmaps = Informer(client, CONFIGMAPS, namespace=namespace, options=FAST)
    recording = Recording()
    controller = Controller("widgets", recording)
    controller.watch_for(widget_informer, GenerationChanged())
    controller.watch_owned(configmaps, widgets)

    def widgets_using(stack: JSON) -> list[Request]:
        name = stack["metadata"]["name"]
        using = widget_informer.by_index("stack", f"{namespace}/{name}")
        return [Request(w["metadata"]["namespace"], w["metadata"]["name"]) for w in using]

    controller.watch_mapped(configmaps, widgets_using)
    body = {"apiVersion": "test.kpack.io/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"stack": "s"}}
    widget = await client.create(widgets, body, namespace)
    for informer in (widget_informer, configmaps):
        informer.start()
    await controller.wait_for_sync(30)
    controller.start()
    w1 = Request(namespace, "w1")
    try:
        await eventually(lambda: recording.requests == [w1])
        # A status-only write does not bump the generation: filtered out.
        widget["status"] = {"phase": "x"}
        await client.update_status(widgets, widget)
        # An owned ConfigMap wakes its controller owner.
        owner_ref = {
            "apiVersion": "test.kpack.io/v1", "kind": "Widget", "name": "w1",
            "uid": widget["metadata"]["uid"], "controller": True,
        }  # fmt: skip
        await client.create(
            CONFIGMAPS, {"metadata": {"name": "child", "namespace": namespace, "ownerReferences": [owner_ref]}}
        )
        await eventually(lambda: len(recording.requests) == 2)
        # A ConfigMap named like the widget's stack wakes it through the index.
        await client.create(CONFIGMAPS, {"metadata": {"name": "s", "namespace": namespace}})
        await eventually(lambda: len(recording.requests) == 3)
        await client.create(CONFIGMAPS, {"metadata": {"name": "unrelated", "namespace": namespace}})
        await client.patch(widgets, "w1", {"spec": {"stack": "s", "x": 1}}, namespace=namespace)
        await eventually(lambda: len(recording.requests) == 4)
        await asyncio.sleep(0.5)
        assert recording.requests == [w1, w1, w1, w1]
    finally:
        await controller.stop(5)
        for informer in (widget_informer, configmaps):
            await informer.stop()
