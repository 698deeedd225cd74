"""The kpack kinds through a real apiserver and our webhook: every seed manifest applies as written (kubectl) and
reads back identically through both versions; invalid objects are refused with our messages; a v1alpha2-only
field survives a v1alpha1 read-modify-write."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kpack_core.apis.crdgen import crd
from kpack_core.apis.kinds import KINDS, REGISTRY, convert_object
from kpack_core.envtest import ControlPlane
from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from kpack_webhooks.__main__ import EXIT_OK, parse_args, run
from kpack_webhooks.storageclasses import DEFAULT_CLASS_ANNOTATION, STORAGE_CLASSES
from tests.integration.kubectl import kubectl
from tests.integration.webhooks.conftest import eventually

SEEDS = Path(__file__).resolve().parents[3] / "config" / "samples"
ROOT = Path(__file__).resolve().parents[3]


DEFAULT_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/none",
    "metadata": {"name": "standard", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
}  # fmt: skip


def resource(kind: str, version: str) -> Resource:
    info = REGISTRY[kind].info
    return Resource("kpack.io", version, info.plural, kind, info.namespaced)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture(loop_scope="session")
async def kpack_plane(tmp_path: Path) -> AsyncIterator[tuple[ControlPlane, Client]]:
    """A control plane of its own with the generated kpack CRDs and our webhook serving them (local mode)."""
    async with (
        ControlPlane(tmp_path / "plane") as plane,
        await Client.from_kubeconfig(str(plane.kubeconfig_path)) as client,
    ):
        for info in KINDS:
            await client.create(CUSTOM_RESOURCE_DEFINITIONS, crd(info))
        await client.create(STORAGE_CLASSES, DEFAULT_CLASS)
        args = parse_args(["--local", "--port", str(free_port()), "--namespace", "default",
                           "--kubeconfig", str(plane.kubeconfig_path)])  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(run(args, stop=stop))  # the kpack kinds, as `python -m kpack_webhooks`
        try:
            images = {
                "buildImage": {"image": "registry.example.com/build"},
                "runImage": {"image": "registry.example.com/run"},
            }
            stack = {"apiVersion": "kpack.io/v1alpha1", "kind": "ClusterStack", "metadata": {"name": "probe"},
                     "spec": {"id": "x", **images}}  # fmt: skip

            async def served() -> None:
                with contextlib.suppress(errors.AlreadyExistsError):
                    await client.create(resource("ClusterStack", "v1alpha1"), stack)
                await client.get(resource("ClusterStack", "v1alpha2"), "probe")
                with pytest.raises(errors.InvalidError):
                    await client.create(resource("ClusterStack", "v1alpha2"), {**stack, "apiVersion":
                        "kpack.io/v1alpha2", "metadata": {"name": "bad"}, "spec": {}})  # fmt: skip

            await eventually(served, "the apiserver uses our webhooks", within=60)
            yield plane, client
        finally:
            stop.set()
            assert await asyncio.wait_for(running, 30) == EXIT_OK


def spec_and_status(obj: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "spec", "status")}


def with_secret_values(manifest: Path, directory: Path) -> Path:
    """The manifest, with the secret placeholders the notes leave for "a real one here" filled in. The values are
    never read here (no build runs); the cosign and registry issues put real keys and credentials in."""
    text = manifest.read_text()
    fillers = {
        "<base64-encoded-key>": base64.b64encode(b"not a real key").decode(),
        "<base64-encoded-docker-config>": base64.b64encode(b'{"auths": {}}').decode(),
    }
    for placeholder, value in fillers.items():
        text = text.replace(placeholder, value)
    path = directory / manifest.name
    path.write_text(text)
    return path


async def test_seed_manifests_apply_and_read_back_through_both_versions(
    kpack_plane: tuple[ControlPlane, Client], tmp_path: Path
) -> None:
    """The README's flow: the cluster-scoped store and stack, the service account, secrets and builder, then any
    Image — each Image manifest in turn, on its own (they are variants of one Image, `my-app`)."""
    plane, client = kpack_plane
    manifests = sorted(p for p in SEEDS.glob("*.yaml"))
    assert len(manifests) >= 10, f"seed manifests not found in {SEEDS}"
    images = [m for m in manifests if "\nkind: Image\n" in m.read_text()]
    assert len(images) >= 7
    for manifest in [m for m in manifests if m not in images]:
        out = await kubectl(plane, "apply", "-f", str(with_secret_values(manifest, tmp_path)), within=5)
        assert "created" in out or "configured" in out or "unchanged" in out, out
    checked = [("Builder", "my-builder", "default"), ("ClusterStack", "base", None), ("ClusterStore", "default", None)]
    for kind, name, namespace in checked:
        await assert_same_through_both_versions(client, kind, name, namespace)
    for manifest in images:
        out = await kubectl(plane, "apply", "-f", str(manifest), within=5)
        assert "image.kpack.io/my-app created" in out, f"{manifest.name}: {out}"
        await assert_same_through_both_versions(client, "Image", "my-app", "default")
        await kubectl(plane, "delete", "-f", str(manifest), within=5)


async def assert_same_through_both_versions(client: Client, kind: str, name: str, namespace: str | None) -> None:
    hub = await client.get(resource(kind, "v1alpha2"), name, namespace)
    old = await client.get(resource(kind, "v1alpha1"), name, namespace)
    assert spec_and_status(convert_object(old, "kpack.io/v1alpha2")) == spec_and_status(hub)
    assert spec_and_status(convert_object(hub, "kpack.io/v1alpha1")) == spec_and_status(old)


async def test_invalid_objects_are_refused_with_our_messages(kpack_plane: tuple[ControlPlane, Client]) -> None:
    _, client = kpack_plane
    image = {
        "apiVersion": "kpack.io/v1alpha2", "kind": "Image", "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"tag": "registry.example.com/app@sha256:" + "a" * 64, "builder": {"kind": "Builder", "name": "b"},
                 "source": {}, "cosign": {"keyRef": {"name": "k", "namespace": "elsewhere"}}},
    }  # fmt: skip
    with pytest.raises(errors.InvalidError) as refused:
        await client.create(resource("Image", "v1alpha2"), image)
    message = refused.value.message
    assert "spec.tag" in message
    assert "spec.source" in message
    assert "spec.cosign.keyRef.namespace" in message
    old_image = {**image, "apiVersion": "kpack.io/v1alpha1", "spec": {"tag": "", "builder": {"name": "b"}}}
    with pytest.raises(errors.InvalidError, match=r"spec\.tag"):
        await client.create(resource("Image", "v1alpha1"), old_image)


async def test_v1alpha2_only_fields_survive_a_v1alpha1_read_modify_write(
    kpack_plane: tuple[ControlPlane, Client],
) -> None:
    _, client = kpack_plane
    image = {
        "apiVersion": "kpack.io/v1alpha2", "kind": "Image", "metadata": {"name": "rmw", "namespace": "default"},
        "spec": {"tag": "registry.example.com/rmw", "additionalTags": ["registry.example.com/rmw:extra"],
                 "builder": {"kind": "ClusterBuilder", "name": "default"},
                 "source": {"git": {"url": "https://github.com/example/app", "revision": "main"}},
                 "cache": {"registry": {"tag": "registry.example.com/rmw-cache"}}},
    }  # fmt: skip
    await client.create(resource("Image", "v1alpha2"), image)
    old = await client.get(resource("Image", "v1alpha1"), "rmw", "default")
    assert "additionalTags" not in old["spec"]
    old["spec"]["serviceAccount"] = "edited"
    await client.update(resource("Image", "v1alpha1"), old)
    hub = await client.get(resource("Image", "v1alpha2"), "rmw", "default")
    assert hub["spec"]["additionalTags"] == ["registry.example.com/rmw:extra"]
    assert hub["spec"]["cache"] == {"registry": {"tag": "registry.example.com/rmw-cache"}}
    assert hub["spec"]["serviceAccountName"] == "edited"
    assert "conversion.kpack.io/v1alpha2-fields" not in (hub["metadata"].get("annotations") or {})


async def test_listing_500_objects_through_the_other_version(kpack_plane: tuple[ControlPlane, Client]) -> None:
    _, client = kpack_plane
    stores = resource("ClusterStore", "v1alpha2")

    async def make(i: int) -> None:
        body = {"apiVersion": "kpack.io/v1alpha2", "kind": "ClusterStore", "metadata": {"name": f"store-{i:03}"},
                "spec": {"sources": [{"image": f"registry.example.com/buildpacks/b{i}"}]}}  # fmt: skip
        await client.create(stores, body)

    for start in range(0, 500, 50):
        await asyncio.gather(*(make(i) for i in range(start, start + 50)))
    listed = await client.list(resource("ClusterStore", "v1alpha1"), limit=500)
    names = {item["metadata"]["name"] for item in listed.items}
    assert {f"store-{i:03}" for i in range(500)} <= names
    assert all(item["apiVersion"] == "kpack.io/v1alpha1" for item in listed.items)


GIT = {"git": {"url": "https://github.com/example/app", "revision": "main"}}
STACK_IMAGES = {
    "buildImage": {"image": "registry.example.com/build"},
    "runImage": {"image": "registry.example.com/run"},
}
BUILDER_SPEC = {
    "tag": "registry.example.com/builder",
    "stack": {"name": "base", "kind": "ClusterStack"},
    "store": {"name": "default", "kind": "ClusterStore"},
    "order": [{"group": [{"id": "paketo-buildpacks/java"}]}],
}
V1ALPHA1_OBJECTS: dict[str, dict[str, object]] = {
    "Image": {"tag": "registry.example.com/v1-app", "serviceAccount": "builder", "cacheSize": "1G",
              "builder": {"kind": "ClusterBuilder", "name": "default"}, "source": GIT,
              "build": {"env": [{"name": "A", "value": "1"}]}},
    "Build": {"tags": ["registry.example.com/v1-app"], "serviceAccount": "builder", "cacheName": "pvc",
              "builder": {"image": "registry.example.com/builder@sha256:" + "c" * 64}, "source": GIT},
    "Builder": {**BUILDER_SPEC, "serviceAccount": "builder"},
    "ClusterBuilder": {**BUILDER_SPEC, "serviceAccountRef": {"name": "builder", "namespace": "default"}},
    "ClusterStack": {"id": "io.buildpacks.stacks.jammy", **STACK_IMAGES},
    "ClusterStore": {"sources": [{"image": "registry.example.com/buildpacks/java"}]},
    "SourceResolver": {"serviceAccount": "builder", "source": GIT},
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(V1ALPHA1_OBJECTS))
async def test_each_kind_written_through_v1alpha1_reads_identically_through_v1alpha2_and_back(
    kpack_plane: tuple[ControlPlane, Client], kind: str
) -> None:
    _, client = kpack_plane
    namespaced = REGISTRY[kind].info.namespaced
    metadata = {"name": f"via-v1-{kind.lower()}", **({"namespace": "default"} if namespaced else {})}
    body = {"apiVersion": "kpack.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": V1ALPHA1_OBJECTS[kind]}
    created = await client.create(resource(kind, "v1alpha1"), body)
    namespace = "default" if namespaced else None
    hub = await client.get(resource(kind, "v1alpha2"), metadata["name"], namespace)
    old = await client.get(resource(kind, "v1alpha1"), metadata["name"], namespace)
    assert spec_and_status(old) == spec_and_status(created)
    assert spec_and_status(convert_object(old, "kpack.io/v1alpha2")) == spec_and_status(hub)
    for key, value in V1ALPHA1_OBJECTS[kind].items():
        assert old["spec"][key] == value, f"{kind} spec.{key} changed through the hub"


async def test_a_cache_size_needs_a_default_storage_class(kpack_plane: tuple[ControlPlane, Client]) -> None:
    _, client = kpack_plane
    image = {
        "apiVersion": "kpack.io/v1alpha2", "kind": "Image", "metadata": {"name": "cached", "namespace": "default"},
        "spec": {"tag": "registry.example.com/cached", "builder": {"kind": "ClusterBuilder", "name": "default"},
                 "source": GIT, "cache": {"volume": {"size": "2G"}}},
    }  # fmt: skip
    await client.delete(STORAGE_CLASSES, "standard")
    try:

        async def refused() -> None:
            with pytest.raises(errors.InvalidError, match="no default StorageClass"):
                await client.create(resource("Image", "v1alpha2"), image)

        await eventually(refused, "the webhook sees the default StorageClass gone")
    finally:
        await client.create(STORAGE_CLASSES, DEFAULT_CLASS)

    async def accepted() -> None:
        await client.create(resource("Image", "v1alpha2"), image)

    await eventually(accepted, "the webhook sees the default StorageClass back")
