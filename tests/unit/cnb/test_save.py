"""`save_image` against a recording stand-in of RegistryClient: no write when the tag already has the digest, a
push with mounts (each reused layer's source remembered) plus the timestamp tag otherwise, and a copy through
`fetch` only for layers it cannot mount."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from kpack_core.cnb import RemoteLayer, save_image
from kpack_core.cnb.assemble import BuilderImage
from kpack_core.cnb.save import timestamp_tag
from kpack_core.registry import (
    BlobUnknownError,
    Descriptor,
    ImageManifest,
    RawManifest,
    Reference,
    RegistryClient,
    mediatypes,
    parse_reference,
)

LAYER = RemoteLayer(
    Descriptor(mediatypes.DOCKER_LAYER, "sha256:" + "a" * 64, 5),
    "sha256:" + "b" * 64,
    parse_reference("r.io/bp/go@sha256:" + "a" * 64),
)
CONFIG = b"{}"
IMAGE = BuilderImage(
    manifest=ImageManifest(
        Descriptor.of(CONFIG, mediatypes.DOCKER_CONFIG), (LAYER.descriptor,), mediatypes.DOCKER_MANIFEST
    ),
    config=CONFIG,
    blobs={Descriptor.of(CONFIG, "x").digest: CONFIG},
    remote=(LAYER,),
    os="linux",
    order=(),
    buildpacks=(),
)
WALL = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeRegistry:
    def __init__(self, current: str | None, mountable: bool = True) -> None:
        self.current = current
        self.mountable = mountable
        self.pushes: list[tuple[str, dict[str, bytes], list[str]]] = []
        self.manifests: list[str] = []
        self.remembered: list[tuple[str, str]] = []

    def remember_blob(self, reference: Reference, digest: str) -> None:
        self.remembered.append((reference.name, digest))

    async def head_manifest(self, reference: Reference) -> Descriptor | None:
        return None if self.current is None else Descriptor(mediatypes.DOCKER_MANIFEST, self.current, 1)

    async def push_image(
        self, reference: Reference, manifest: RawManifest, blobs: Mapping[str, bytes], *, mount_from: Iterable[Any]
    ) -> Reference:
        self.pushes.append((str(reference), dict(blobs), [str(s) for s in mount_from]))
        if not self.mountable and LAYER.digest not in blobs:
            raise BlobUnknownError(str(reference), "blob is neither given nor in the registry")
        return reference.with_digest(manifest.digest)

    async def blob_exists(self, reference: Reference, digest: str, *, push: bool = False) -> bool:
        return False

    async def put_manifest(self, reference: Reference, manifest: RawManifest) -> Reference:
        self.manifests.append(str(reference))
        return reference.with_digest(manifest.digest)


async def _never(layer: RemoteLayer) -> bytes:
    raise AssertionError(f"{layer.digest} should have been mounted")


async def test_nothing_is_written_when_the_tag_has_the_digest() -> None:
    registry = FakeRegistry(IMAGE.digest)

    saved = await save_image(cast(RegistryClient, registry), "r.io/builder:1", IMAGE, fetch=_never, wall=WALL)

    assert (saved.written, saved.identifier) == (False, f"r.io/builder:1@{IMAGE.digest}")
    assert (registry.pushes, registry.manifests) == ([], [])


async def test_a_new_image_is_pushed_with_mounts_and_a_timestamp_tag() -> None:
    registry = FakeRegistry("sha256:" + "0" * 64)

    saved = await save_image(cast(RegistryClient, registry), "r.io/builder", IMAGE, fetch=_never, wall=WALL)

    assert saved.written
    assert saved.identifier == f"r.io/builder@{IMAGE.digest}"  # the tag exactly as given, as kpack reports it
    assert registry.pushes == [("r.io/builder:latest", IMAGE.blobs, [str(LAYER.source)])]
    assert registry.remembered == [("r.io/bp/go", LAYER.digest)]  # mounted from where it was read, first
    assert registry.manifests == ["r.io/builder:20231114221320"]
    assert timestamp_tag(WALL) == "20231114221320"


async def test_a_layer_that_cannot_be_mounted_is_copied_through_fetch() -> None:
    registry = FakeRegistry(None, mountable=False)
    fetched: list[str] = []

    async def fetch(layer: RemoteLayer) -> bytes:
        fetched.append(layer.digest)
        return b"layer"

    await save_image(cast(RegistryClient, registry), "r.io/builder:1", IMAGE, fetch=fetch, wall=WALL)

    assert fetched == [LAYER.digest]
    assert registry.pushes[-1][1] == {**IMAGE.blobs, LAYER.digest: b"layer"}
    assert registry.manifests == ["r.io/builder:20231114221320"]
