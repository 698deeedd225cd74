"""The ClusterStore reconciler against in-memory fakes: sorted buildpacks from every source, the first failing
source named, last good buildpacks kept for sources still listed, invalid specs terminal."""

from __future__ import annotations

from typing import Any

import pytest

from kpack_controllers.resolving import IMAGE_NOT_FOUND, INVALID_SPEC, ImageContentError, ImageReadError
from kpack_controllers.store.buildpackages import BUILDPACK_LAYERS_LABEL, INVALID_BUILDPACKAGE
from kpack_controllers.store.reconciler import ClusterStoreReconciler, kept_buildpacks
from kpack_core.envtest.cnb import (
    BuildpackStack,
    ShellBuildpack,
    StackRole,
    assemble_image,
    buildpackage_image,
    stack_image,
)
from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.reconcile import Request, Result, TerminalError
from tests.unit.controllers.fakes import FakeClient, FakeInformer, FakeRecorder, FakeRegistry, FakeSecrets

A = "reg.example/bp/a:1"
B = "reg.example/bp/b:1"
POLL = 7.0


def bp(bp_id: str, version: str = "1.0.0") -> ShellBuildpack:
    return ShellBuildpack(bp_id, version, stacks=(BuildpackStack("s"),))


def store(sources: list[str], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "default", "generation": 1},
        "spec": {"sources": [{"image": s} for s in sources]},
    }
    if status is not None:
        obj["status"] = status
    return obj


class Harness:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.informer = FakeInformer(obj)
        self.client = FakeClient(self.informer)
        self.registry = FakeRegistry()
        self.reconciler = ClusterStoreReconciler(
            self.client,  # type: ignore[arg-type]
            self.informer,  # type: ignore[arg-type]
            FakeSecrets(),
            registry_client=self.registry.factory,  # type: ignore[arg-type]
            poll_interval=POLL,
            clock=FakeClock(),
            recorder=FakeRecorder(),  # type: ignore[arg-type]
        )

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.informer.objects["default"]["status"]
        return status

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request(None, "default"))


async def test_buildpacks_of_every_source_sorted() -> None:
    h = Harness(store([B, A]))
    h.registry.put(A, await buildpackage_image([bp("z"), bp("m")]))
    h.registry.put(B, await buildpackage_image([bp("m"), bp("a", "2.0.0")]))
    assert await h.reconcile() == Result(requeue_after=POLL)
    listed = [(b["id"], b["storeImage"]["image"], b["buildpackage"]["id"]) for b in h.status["buildpacks"]]
    assert listed == [("a", B, "m"), ("m", A, "z"), ("m", B, "m"), ("z", A, "z")]
    assert h.status["conditions"][0]["status"] == "True"


async def test_the_first_failing_source_is_named_and_good_buildpacks_are_kept() -> None:
    h = Harness(store([A, B]))
    h.registry.put(A, await buildpackage_image([bp("x")]))
    h.registry.put(B, await buildpackage_image([bp("y")]))
    await h.reconcile()
    before = h.status["buildpacks"]
    h.registry.put(B, await stack_image(StackRole.RUN, "s"))  # B now points at an image without buildpacks
    with pytest.raises(ImageContentError):
        await h.reconcile()
    ready = h.status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", INVALID_BUILDPACKAGE)
    assert ready["message"].startswith(f"store image {B}: label io.buildpacks.buildpack.layers is missing")
    assert h.status["buildpacks"] == before
    del h.registry.images[A]
    with pytest.raises(ImageReadError) as raised:
        await h.reconcile()
    assert raised.value.reason == IMAGE_NOT_FOUND
    assert raised.value.message.startswith(f"store image {A}: image not found")  # A comes first in the spec


@pytest.mark.parametrize(
    ("sources", "kept"),
    [([A, B], [A, B]), ([B], [B]), (["reg.example/other:1"], [])],
)
def test_kept_buildpacks_are_those_of_sources_still_listed(sources: list[str], kept: list[str]) -> None:
    buildpacks = [{"id": "x", "version": "1", "storeImage": {"image": image}} for image in (A, B)]
    found = kept_buildpacks(store(sources, {"buildpacks": buildpacks}))
    assert [b["storeImage"]["image"] for b in found.get("buildpacks", [])] == kept


async def test_an_empty_store_is_an_invalid_spec() -> None:
    h = Harness(store([]))
    with pytest.raises(TerminalError):
        await h.reconcile()
    assert h.status["conditions"][0]["reason"] == INVALID_SPEC
    assert "spec.sources" in h.status["conditions"][0]["message"]


async def test_a_store_of_images_without_buildpacks_is_ready_without_the_field() -> None:
    h = Harness(store([A]))
    h.registry.put(A, assemble_image([], labels={BUILDPACK_LAYERS_LABEL: "{}"}))
    assert await h.reconcile() == Result(requeue_after=POLL)
    assert h.status["conditions"][0]["status"] == "True"
    assert "buildpacks" not in h.status
