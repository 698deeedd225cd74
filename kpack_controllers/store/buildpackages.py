"""The buildpacks of one store image, read from its labels (spec §1.5, formats §3.3), as pure functions.

- `io.buildpacks.buildpack.layers` (required): id -> version -> `{api, layerDiffID, order?, stacks?, homepage?}`;
  each buildpack's layer is found by diffID (the config's `rootfs.diff_ids` index into the manifest's layers),
  which gives the compressed digest and size builders mount the layer by.
- `io.buildpacks.buildpackage.metadata` (optional): `{id, version, homepage?}` of the package's entry buildpack,
  reported on every buildpack of the image as `buildpackage`.

Each store buildpack is `{id, version, buildpackage, storeImage: {image}, diffId, digest, size, api?, homepage?,
order?, stacks?}`; `order` and `stacks` are rebuilt with exactly the fields of the API types, so what the apiserver
stores equals what was computed (an unknown field it pruned would make every reconcile write the status again).
The list of a store is sorted by `id@version`, ties by store image (`sort_buildpacks`). Every failure is an
`ImageContentError` naming the store image.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from kpack_controllers.resolving import ImageContentError
from kpack_core.registry import Descriptor

BUILDPACK_LAYERS_LABEL: Final = "io.buildpacks.buildpack.layers"
BUILDPACKAGE_METADATA_LABEL: Final = "io.buildpacks.buildpackage.metadata"

INVALID_BUILDPACKAGE: Final = "InvalidBuildpackage"
"""Condition reason: a store image lacks or garbles the buildpack labels, or a layer they name."""

JSON = dict[str, Any]


def _invalid(store_image: str, problem: str) -> ImageContentError:
    return ImageContentError(INVALID_BUILDPACKAGE, f"store image {store_image}: {problem}")


def _json_label(store_image: str, labels: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(labels[name])
    except ValueError:
        raise _invalid(store_image, f"label {name} is not valid JSON") from None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def buildpackage_info(store_image: str, labels: Mapping[str, str]) -> JSON:
    """`{id?, version?, homepage?}` of the entry buildpack; `{}` without the label (a builder image)."""
    if BUILDPACKAGE_METADATA_LABEL not in labels:
        return {}
    metadata = _json_label(store_image, labels, BUILDPACKAGE_METADATA_LABEL)
    if not isinstance(metadata, dict):
        raise _invalid(store_image, f"label {BUILDPACKAGE_METADATA_LABEL} is not a JSON object")
    return {key: value for key in ("id", "version", "homepage") if (value := _string(metadata.get(key)))}


def normalise_order(value: object, where: str) -> list[JSON]:
    """An order (`[{group: [{id, version?, optional?}]}]`) with only the API's fields; ValueError names `where`."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: order is not a list")
    order = []
    for entry in value:
        group = entry.get("group") if isinstance(entry, dict) else None
        if not isinstance(group, list):
            raise ValueError(f"{where}: order entry without a group list")
        refs = []
        for ref in group:
            if not isinstance(ref, dict) or not _string(ref.get("id")):
                raise ValueError(f"{where}: order group member without an id")
            out: JSON = {"id": ref["id"]}
            if version := _string(ref.get("version")):
                out["version"] = version
            if ref.get("optional") is True:
                out["optional"] = True
            refs.append(out)
        order.append({"group": refs})
    return order


def normalise_stacks(value: object, where: str) -> list[JSON]:
    """Stacks (`[{id, mixins?}]`) with only the API's fields; ValueError names `where`."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: stacks is not a list")
    stacks = []
    for stack in value:
        if not isinstance(stack, dict) or not _string(stack.get("id")):
            raise ValueError(f"{where}: stack without an id")
        out: JSON = {"id": stack["id"]}
        mixins = stack.get("mixins")
        if mixins:
            if not isinstance(mixins, list) or not all(isinstance(m, str) for m in mixins):
                raise ValueError(f"{where}: stack {stack['id']} mixins are not a list of strings")
            out["mixins"] = list(mixins)
        stacks.append(out)
    return stacks


def store_buildpack(
    store_image: str, buildpack_id: str, version: str, info: object, package: JSON, layers: Mapping[str, Descriptor]
) -> JSON:
    """One status entry from one `layers` label entry; `layers` maps diffID -> the layer's descriptor."""
    where = f"buildpack {buildpack_id}@{version}"
    if not isinstance(info, dict):
        raise _invalid(store_image, f"{where}: entry of label {BUILDPACK_LAYERS_LABEL} is not an object")
    diff_id = _string(info.get("layerDiffID"))
    if diff_id is None:
        raise _invalid(store_image, f"{where}: no layerDiffID in label {BUILDPACK_LAYERS_LABEL}")
    layer = layers.get(diff_id)
    if layer is None:
        raise _invalid(store_image, f"{where}: no layer with diffID {diff_id}")
    out: JSON = {
        "id": buildpack_id,
        "version": version,
        "buildpackage": dict(package),
        "storeImage": {"image": store_image},
        "diffId": diff_id,
        "digest": layer.digest,
        "size": layer.size,
    }
    for key in ("api", "homepage"):
        if value := _string(info.get(key)):
            out[key] = value
    try:
        if info.get("order"):
            out["order"] = normalise_order(info["order"], where)
        if info.get("stacks"):
            out["stacks"] = normalise_stacks(info["stacks"], where)
    except ValueError as exc:
        raise _invalid(store_image, str(exc)) from None
    return out


def layers_by_diff_id(store_image: str, diff_ids: Sequence[str], layers: Sequence[Descriptor]) -> dict[str, Descriptor]:
    """The manifest's layers keyed by the config's diffIDs (same order); they must pair up one to one."""
    if len(diff_ids) != len(layers):
        raise _invalid(store_image, f"config lists {len(diff_ids)} diffIDs for {len(layers)} layers")
    return dict(zip(diff_ids, layers, strict=True))


def store_buildpacks(
    store_image: str, labels: Mapping[str, str], diff_ids: Sequence[str], layers: Sequence[Descriptor]
) -> list[JSON]:
    """Every buildpack of one store image (`store_image` as the spec wrote it), in label order."""
    if BUILDPACK_LAYERS_LABEL not in labels:
        raise _invalid(store_image, f"label {BUILDPACK_LAYERS_LABEL} is missing (not a buildpackage or builder)")
    metadata = _json_label(store_image, labels, BUILDPACK_LAYERS_LABEL)
    if not isinstance(metadata, dict):
        raise _invalid(store_image, f"label {BUILDPACK_LAYERS_LABEL} is not a JSON object")
    package = buildpackage_info(store_image, labels)
    by_diff_id = layers_by_diff_id(store_image, diff_ids, layers)
    out = []
    for buildpack_id, versions in metadata.items():
        if not isinstance(versions, dict):
            raise _invalid(store_image, f"buildpack {buildpack_id}: versions in {BUILDPACK_LAYERS_LABEL} not a map")
        for version, info in versions.items():
            out.append(store_buildpack(store_image, buildpack_id, version, info, package, by_diff_id))
    return out


def sort_buildpacks(buildpacks: Iterable[JSON]) -> list[JSON]:
    """kpack's order: by `id@version` (string order, so `1.10.0` sorts before `1.9.0`), ties by store image."""
    return sorted(buildpacks, key=lambda bp: (f"{bp['id']}@{bp['version']}", bp["storeImage"]["image"]))
