"""Buildpackage images: one layer per buildpack and the two labels a ClusterStore reads (formats.md §3.3).

- `io.buildpacks.buildpack.layers`: id -> version -> `{api, stacks?, order?, layerDiffID, homepage?}`; kpack's
  store reader lists buildpacks from this label alone and finds each layer by its diffID.
- `io.buildpacks.buildpackage.metadata`: `{id, version, homepage?, stacks}` of the entry buildpack (the first one
  given). A meta-buildpack entry has no stacks of its own; like pack, the package then declares the stacks every
  child with stacks supports (mixins merged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpack_core.cnb.layers import Layer
from kpack_core.envtest.cnb.buildpack import BuildpackStack, ShellBuildpack, order_json
from kpack_core.envtest.cnb.image import ImageBuild, assemble_image, json_label
from kpack_core.envtest.cnb.layer import build_layer_async
from kpack_core.registry import Reference, RegistryClient

BUILDPACK_LAYERS_LABEL = "io.buildpacks.buildpack.layers"
BUILDPACKAGE_METADATA_LABEL = "io.buildpacks.buildpackage.metadata"


def check_package(buildpacks: Sequence[ShellBuildpack], *, allow_missing_children: bool = False) -> None:
    """Raises ValueError for an empty package, a buildpack given twice, or (unless allowed) a meta-buildpack
    child that is not in the package: pack refuses to build such a package."""
    if not buildpacks:
        raise ValueError("a buildpackage needs at least one buildpack")
    keys = [bp.key for bp in buildpacks]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"buildpacks given more than once: {', '.join(duplicates)}")
    if allow_missing_children:
        return
    for buildpack in buildpacks:
        for child in buildpack.children():
            if not any(bp.id == child.id and child.version in (None, "", bp.version) for bp in buildpacks):
                wanted = f"{child.id}@{child.version}" if child.version else child.id
                raise ValueError(f"{buildpack.key} orders {wanted}, which is not in the package")


def layer_info(buildpack: ShellBuildpack, diff_id: str) -> dict[str, Any]:
    """The label entry of one buildpack, keys in the order of Go's `BuildpackLayerInfo` fields."""
    info: dict[str, Any] = {"api": buildpack.api}
    if buildpack.stacks:
        info["stacks"] = [stack.to_json() for stack in buildpack.stacks]
    if buildpack.order:
        info["order"] = order_json(buildpack.order)
    info["layerDiffID"] = diff_id
    if buildpack.homepage:
        info["homepage"] = buildpack.homepage
    return info


def buildpack_layers(buildpacks: Sequence[ShellBuildpack], diff_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The `io.buildpacks.buildpack.layers` map for buildpacks whose layers have these diffIDs (same order)."""
    out: dict[str, dict[str, Any]] = {}
    # Go marshals maps with sorted keys; sorting by (id, version) gives the same order here.
    pairs = sorted(zip(buildpacks, diff_ids, strict=True), key=lambda pair: (pair[0].id, pair[0].version))
    for buildpack, diff_id in pairs:
        out.setdefault(buildpack.id, {})[buildpack.version] = layer_info(buildpack, diff_id)
    return out


def merge_stacks(current: Sequence[BuildpackStack], other: Sequence[BuildpackStack]) -> list[BuildpackStack]:
    """The stacks in both (by id, in `current`'s order), each requiring the union of both mixin lists."""
    others = {stack.id: stack for stack in other}
    return [
        BuildpackStack(stack.id, tuple(sorted({*stack.mixins, *others[stack.id].mixins})))
        for stack in current
        if stack.id in others
    ]


def package_stacks(buildpacks: Sequence[ShellBuildpack]) -> list[BuildpackStack]:
    """The stacks the package as a whole supports: the entry's, narrowed by every other buildpack that has stacks
    (a meta-buildpack, having none, narrows nothing)."""
    stacks = list(buildpacks[0].stacks)
    for buildpack in buildpacks[1:]:
        if not buildpack.stacks:
            continue
        stacks = merge_stacks(stacks, buildpack.stacks) if stacks else list(buildpack.stacks)
    return stacks


def buildpackage_metadata(buildpacks: Sequence[ShellBuildpack]) -> dict[str, Any]:
    """The `io.buildpacks.buildpackage.metadata` object: the entry buildpack's identity and the package stacks."""
    entry = buildpacks[0]
    out: dict[str, Any] = {"id": entry.id, "version": entry.version}
    if entry.homepage:
        out["homepage"] = entry.homepage
    out["stacks"] = [stack.to_json() for stack in package_stacks(buildpacks)]
    return out


async def buildpackage_image(
    buildpacks: Sequence[ShellBuildpack], *, allow_missing_children: bool = False
) -> ImageBuild:
    """The buildpackage image: layers in the order given, the entry buildpack first."""
    check_package(buildpacks, allow_missing_children=allow_missing_children)
    layers: list[Layer] = [await build_layer_async(bp.layer_entries()) for bp in buildpacks]
    labels = {
        BUILDPACKAGE_METADATA_LABEL: json_label(buildpackage_metadata(buildpacks)),
        BUILDPACK_LAYERS_LABEL: json_label(buildpack_layers(buildpacks, [layer.diff_id for layer in layers])),
    }
    return assemble_image(layers, labels=labels)


async def push_buildpackage(
    client: RegistryClient,
    reference: Reference | str,
    buildpacks: Sequence[ShellBuildpack],
    *,
    allow_missing_children: bool = False,
) -> Reference:
    """Pushes a buildpackage of `buildpacks` (the first is the entry, e.g. a meta-buildpack followed by its
    children) to `reference`; returns the reference by digest. `allow_missing_children` lets a test build a
    package whose meta-buildpack orders buildpacks found only elsewhere in a store (or nowhere)."""
    image = await buildpackage_image(buildpacks, allow_missing_children=allow_missing_children)
    return await image.push(client, reference)
