"""Builder image assembly (spec §1.3.1): the build image, plus the default directories, the lifecycle, the
buildpacks, `stack.toml` and `order.toml`, with the builder labels in the config.

`assemble_builder` is pure: it gets what was read from the registries and the store, validates it, and returns the
manifest, the config and the small blobs made here. Everything else is a `RemoteLayer` reused by reference, so the
image's digest is known before anything is pushed and equal inputs give an equal digest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kpack_core.cnb.errors import StackImageError
from kpack_core.cnb.images import LifecycleImage, RemoteImage, RemoteLayer
from kpack_core.cnb.layers import default_dirs_layer, order_layer, stack_layer
from kpack_core.cnb.lookup import ResolvedBuildpacks
from kpack_core.cnb.metadata import BuildpackLayer, Order, builder_labels
from kpack_core.cnb.validation import validate_builder
from kpack_core.registry import Descriptor, ImageManifest, RawManifest, mediatypes, parse_reference

WORKING_DIR: Final = "/layers"
SUPPORTED_OS: Final = ("linux",)
"""Windows builders need the Windows layer format (`Files/`, `Hives`) for the layers made here; not written yet."""
_HISTORY_CREATED = "1980-01-01T00:00:01Z"
"""History entries get the layers' normalized mtime, so the config (and the digest) never depends on the clock."""


@dataclass(frozen=True)
class StackInputs:
    """What a builder takes from its ClusterStack status."""

    id: str
    run_image: str
    """The run image as the stack spec names it (a tag): what `stack.toml` and the metadata label carry."""
    mixins: tuple[str, ...]
    user_id: int
    group_id: int


@dataclass(frozen=True)
class BuilderImage:
    """An assembled builder image, not yet pushed."""

    manifest: ImageManifest
    config: bytes
    blobs: dict[str, bytes]
    """What a push may have to upload: the config and the layers made here, by digest."""
    remote: tuple[RemoteLayer, ...]
    """The layers reused by reference, mounted when pushing."""
    os: str
    order: Order
    buildpacks: tuple[BuildpackLayer, ...]

    @property
    def raw(self) -> RawManifest:
        return RawManifest.of(self.manifest)

    @property
    def digest(self) -> str:
        return self.raw.digest


def layer_media_type(manifest_type: str) -> str:
    """The gzip layer type that goes with a manifest type (Docker schema 2 or OCI)."""
    return mediatypes.OCI_LAYER if manifest_type == mediatypes.OCI_MANIFEST else mediatypes.DOCKER_LAYER


def _retyped(descriptor: Descriptor, media_type: str) -> Descriptor:
    # gzip layers are the same bytes under either type; others (zstd, uncompressed) keep theirs.
    if descriptor.media_type in (mediatypes.DOCKER_LAYER, mediatypes.OCI_LAYER):
        return Descriptor(media_type, descriptor.digest, descriptor.size)
    return Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, urls=descriptor.urls)


def _buildpack_layer(buildpack: BuildpackLayer, media_type: str) -> RemoteLayer:
    source = parse_reference(buildpack.store_image)
    return RemoteLayer(
        Descriptor(media_type, buildpack.digest, buildpack.size),
        buildpack.diff_id,
        source.with_digest(buildpack.digest),
    )


def _config(build: RemoteImage, labels: dict[str, str], added: list[tuple[str, str]]) -> dict[str, Any]:
    config = copy.deepcopy(build.config)
    container = config.get("config")
    container = dict(container) if isinstance(container, dict) else {}
    container["Labels"] = {**build.labels, **labels}
    container["WorkingDir"] = WORKING_DIR
    config["config"] = container
    config["rootfs"] = {"type": "layers", "diff_ids": [*build.diff_ids, *(diff_id for diff_id, _ in added)]}
    history = config.get("history")
    if isinstance(history, list):
        # Docker counts history entries against non-empty layers; keep them aligned when the base keeps history.
        config["history"] = [*history, *({"created": _HISTORY_CREATED, "created_by": what} for _, what in added)]
    return config


def assemble_builder(
    build: RemoteImage,
    lifecycle: LifecycleImage,
    stack: StackInputs,
    resolved: ResolvedBuildpacks,
    created_by_version: str,
) -> BuilderImage:
    """The builder image of these inputs; a `BuilderError` names what makes them unusable."""
    os = build.os
    if os not in SUPPORTED_OS:
        raise StackImageError(str(build.reference), f"os {os or '(none)'!r} is not supported (supported: linux)")
    validate_builder(resolved.layers, lifecycle.metadata, stack.id, stack.mixins)
    media_type = layer_media_type(build.manifest.media_type)
    base = build.layers()
    lifecycle_layer = lifecycle.layer_for(os)
    lifecycle_layer = RemoteLayer(
        _retyped(lifecycle_layer.descriptor, media_type), lifecycle_layer.diff_id, lifecycle_layer.source
    )
    buildpacks = [_buildpack_layer(buildpack, media_type) for buildpack in resolved.layers]
    dirs, stack_toml, order_toml = (
        default_dirs_layer(stack.user_id, stack.group_id, media_type),
        stack_layer(stack.run_image, media_type),
        order_layer(resolved.order, media_type),
    )
    layers = [
        *(layer.descriptor for layer in base),
        dirs.descriptor(),
        lifecycle_layer.descriptor,
        *(layer.descriptor for layer in buildpacks),
        stack_toml.descriptor(),
        order_toml.descriptor(),
    ]
    added = [
        (dirs.diff_id, "kpack: default directories"),
        (lifecycle_layer.diff_id, f"kpack: lifecycle {lifecycle.metadata.version}"),
        *((bp.diff_id, f"kpack: buildpack {bp.key}") for bp in resolved.layers),
        (stack_toml.diff_id, "kpack: /cnb/stack.toml"),
        (order_toml.diff_id, "kpack: /cnb/order.toml"),
    ]
    labels = builder_labels(stack.run_image, lifecycle.metadata, resolved.layers, resolved.order, created_by_version)
    config = orjson.dumps(_config(build, labels, added))
    config_type = build.manifest.config.media_type or mediatypes.DOCKER_CONFIG
    manifest = ImageManifest(
        config=Descriptor.of(config, config_type), layers=tuple(layers), media_type=build.manifest.media_type
    )
    blobs = {layer.digest: layer.blob for layer in (dirs, stack_toml, order_toml)}
    blobs[manifest.config.digest] = config
    return BuilderImage(
        manifest=manifest,
        config=config,
        blobs=blobs,
        remote=(*base, lifecycle_layer, *buildpacks),
        os=os,
        order=resolved.order,
        buildpacks=resolved.layers,
    )
