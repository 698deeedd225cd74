"""A single-platform image assembled from built layers: config JSON, manifest, and a push through RegistryClient.

Images use Docker schema 2 media types, which is what pack and kpack (go-containerregistry) write for builders,
buildpackages and stacks. The config is serialised once with sorted keys, so equal inputs give equal digests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kpack_core.cnb.layers import Layer
from kpack_core.envtest.cnb.layer import NORMALIZED_CREATED
from kpack_core.registry import Descriptor, ImageManifest, RawManifest, Reference, RegistryClient, mediatypes


@dataclass(frozen=True)
class ImageBuild:
    """An image ready to push: its layers (bottom first), config bytes and manifest."""

    layers: tuple[Layer, ...]
    config: bytes
    manifest: ImageManifest

    @property
    def digest(self) -> str:
        """The manifest digest the image will have in any registry."""
        return RawManifest.of(self.manifest).digest

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest references, by digest."""
        blobs = {layer.digest: layer.blob for layer in self.layers}
        blobs[self.manifest.config.digest] = self.config
        return blobs

    def config_json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(self.config)
        return decoded

    async def push(self, client: RegistryClient, reference: Reference | str) -> Reference:
        """Pushes blobs then manifest to the reference's tag; returns the reference by digest."""
        return await client.push_image(reference, self.manifest, self.blobs)


def assemble_image(
    layers: Sequence[Layer],
    *,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    working_dir: str | None = None,
    os: str = "linux",
    architecture: str = "amd64",
) -> ImageBuild:
    """The image of `layers` with this runtime config. `env` is written as `NAME=value` in insertion order."""
    container: dict[str, Any] = {"Labels": dict(labels or {})}
    if env:
        container["Env"] = [f"{name}={value}" for name, value in env.items()]
    if user is not None:
        container["User"] = user
    if working_dir is not None:
        container["WorkingDir"] = working_dir
    config = orjson.dumps(
        {
            "architecture": architecture,
            "os": os,
            "created": NORMALIZED_CREATED,
            "config": container,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        },
        option=orjson.OPT_SORT_KEYS,
    )
    manifest = ImageManifest(
        config=Descriptor.of(config, mediatypes.DOCKER_CONFIG),
        layers=tuple(layer.descriptor() for layer in layers),
        media_type=mediatypes.DOCKER_MANIFEST,
    )
    return ImageBuild(tuple(layers), config, manifest)


def json_label(value: Any) -> str:
    """A label value holding JSON, compact like Go's json.Marshal (key order as given)."""
    return orjson.dumps(value).decode()
