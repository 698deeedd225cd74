"""The images a builder is made from, as read from their registries: the stack's build image and kpack's lifecycle
image, each with the layers the builder reuses by reference.

A reused layer is a `RemoteLayer`: its descriptor, its diffID, and the image it was read from. Pushing a builder
mounts it from that image's repository (same registry), so it is never downloaded and uploaded again when the
registry already holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kpack_core.cnb.errors import LifecycleImageError, StackImageError
from kpack_core.cnb.metadata import LIFECYCLE_METADATA_LABEL, LifecycleMetadata
from kpack_core.registry import Descriptor, ImageManifest, Reference, RegistryClient, parse_reference

JSON = dict[str, Any]


@dataclass(frozen=True)
class RemoteLayer:
    """A layer the builder reuses: `source` is the image (by digest) whose repository holds the blob."""

    descriptor: Descriptor
    diff_id: str
    source: Reference

    @property
    def digest(self) -> str:
        return self.descriptor.digest


@dataclass(frozen=True)
class RemoteImage:
    """A single-platform image: where it is (by digest), its manifest and its config JSON."""

    reference: Reference
    manifest: ImageManifest
    config: JSON

    @property
    def os(self) -> str:
        value = self.config.get("os")
        return value if isinstance(value, str) else ""

    @property
    def labels(self) -> dict[str, str]:
        container = self.config.get("config")
        labels = container.get("Labels") if isinstance(container, dict) else None
        return {k: v for k, v in (labels or {}).items() if isinstance(v, str)}

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        return [d for d in diff_ids or [] if isinstance(d, str)]

    def layers(self) -> list[RemoteLayer]:
        """Every layer with its diffID; `StackImageError` when config and manifest disagree on the count."""
        diff_ids = self.diff_ids
        if len(diff_ids) != len(self.manifest.layers):
            raise StackImageError(
                str(self.reference),
                f"{len(self.manifest.layers)} layers in the manifest but {len(diff_ids)} diff_ids in the config",
            )
        return [
            RemoteLayer(d, diff_id, self.reference) for d, diff_id in zip(self.manifest.layers, diff_ids, strict=True)
        ]


async def read_image(client: RegistryClient, reference: str | Reference) -> RemoteImage:
    """Manifest (the linux/amd64 one of an index) and config of `reference`; registry errors propagate."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    raw = await client.resolve_image(ref)
    manifest = raw.image()
    decoded = orjson.loads(await client.get_blob(ref, manifest.config.digest))
    if not isinstance(decoded, dict):
        raise StackImageError(str(ref), "the image config is not a JSON object")
    return RemoteImage(ref.with_digest(raw.digest), manifest, decoded)


@dataclass(frozen=True)
class LifecycleImage:
    """kpack's lifecycle image: its metadata label and, per OS, the layer holding `/cnb/lifecycle`."""

    image: RemoteImage
    metadata: LifecycleMetadata

    @classmethod
    def of(cls, image: RemoteImage) -> LifecycleImage:
        return cls(image, LifecycleMetadata.parse(image.labels.get(LIFECYCLE_METADATA_LABEL), str(image.reference)))

    @property
    def reference(self) -> Reference:
        return self.image.reference

    def layer_for(self, os: str) -> RemoteLayer:
        """The lifecycle layer for `os`: the layer whose diffID the label named `os` holds."""
        diff_id = self.image.labels.get(os)
        if not diff_id:
            raise LifecycleImageError(str(self.reference), f"could not find lifecycle for os {os!r} (no label {os!r})")
        for layer in self.image.layers():
            if layer.diff_id == diff_id:
                return layer
        raise LifecycleImageError(str(self.reference), f"label {os!r} names {diff_id}, which is not one of its layers")
