"""Store buildpacks from buildpackage labels (spec §1.5, formats §3.3): parsing, layer lookup, failures, sorting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kpack_controllers.resolving import ImageContentError
from kpack_controllers.store.buildpackages import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    INVALID_BUILDPACKAGE,
    normalise_order,
    normalise_stacks,
    sort_buildpacks,
    store_buildpacks,
)
from kpack_core.apis.v1alpha2.clusterstore import ClusterStoreStatus
from kpack_core.envtest.cnb import SEED_BUILDPACKAGES, buildpackage_image
from kpack_core.registry import Descriptor, ImageConfig

JAVA = "registry.example.com/buildpacks/java"
LAYERS = BUILDPACK_LAYERS_LABEL
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


async def test_buildpacks_of_a_real_buildpackage_image() -> None:
    image = await buildpackage_image(SEED_BUILDPACKAGES[JAVA])
    config = ImageConfig.from_bytes(image.config)
    found = store_buildpacks(JAVA, config.labels, config.diff_ids, image.manifest.layers)
    layers = {layer.diff_id: layer for layer in image.layers}
    package = {
        "id": "paketo-buildpacks/java",
        "version": "5.0.0",
        "homepage": "https://github.com/paketo-buildpacks/java",
    }
    by_id = {bp["id"]: bp for bp in found}
    assert sorted(by_id) == [
        "paketo-buildpacks/bellsoft-liberica",
        "paketo-buildpacks/java",
        "paketo-buildpacks/maven",
    ]
    for bp in found:
        layer = layers[bp["diffId"]]
        assert bp["digest"] == layer.digest
        assert bp["size"] == len(layer.blob)
        assert bp["buildpackage"] == package
        assert bp["storeImage"] == {"image": JAVA}
        assert bp["api"] == "0.4"
    assert by_id["paketo-buildpacks/java"]["order"] == [
        {
            "group": [
                {"id": "paketo-buildpacks/bellsoft-liberica", "version": "8.0.0"},
                {"id": "paketo-buildpacks/maven", "version": "5.0.0", "optional": True},
            ]
        }
    ]
    assert "stacks" not in by_id["paketo-buildpacks/java"]
    assert by_id["paketo-buildpacks/maven"]["stacks"] == [{"id": "io.buildpacks.stacks.bionic"}]
    assert by_id["paketo-buildpacks/maven"]["homepage"] == "https://github.com/paketo-buildpacks/maven"
    # what the status model (and so the CRD schema) accepts
    ClusterStoreStatus.from_json({"buildpacks": found})


def layer(n: int) -> Descriptor:
    return Descriptor(LAYER_TYPE, f"sha256:{n:064x}", 100 + n)


def diff(n: int) -> str:
    return f"sha256:{n + 1000:064x}"


def labels(layers_label: Any, metadata: Any = None) -> dict[str, str]:
    out = {BUILDPACK_LAYERS_LABEL: layers_label if isinstance(layers_label, str) else json.dumps(layers_label)}
    if metadata is not None:
        out[BUILDPACKAGE_METADATA_LABEL] = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return out


def test_a_builder_image_without_buildpackage_metadata_gives_empty_buildpackage_info() -> None:
    found = store_buildpacks("img", labels({"a": {"1": {"api": "0.2", "layerDiffID": diff(1)}}}), [diff(1)], [layer(1)])
    assert found == [
        {
            "id": "a",
            "version": "1",
            "buildpackage": {},
            "storeImage": {"image": "img"},
            "diffId": diff(1),
            "digest": layer(1).digest,
            "size": 101,
            "api": "0.2",
        }
    ]


def test_layers_are_found_by_diff_id_not_by_position() -> None:
    label = {"a": {"1": {"layerDiffID": diff(2)}}, "b": {"1": {"layerDiffID": diff(1)}}}
    found = store_buildpacks("img", labels(label), [diff(1), diff(2)], [layer(1), layer(2)])
    assert [(bp["id"], bp["digest"]) for bp in found] == [("a", layer(2).digest), ("b", layer(1).digest)]


@pytest.mark.parametrize(
    ("image_labels", "diff_ids", "problem"),
    [
        ({}, [], f"label {BUILDPACK_LAYERS_LABEL} is missing (not a buildpackage or builder)"),
        (labels("{not json"), [], f"label {BUILDPACK_LAYERS_LABEL} is not valid JSON"),
        (labels([1]), [], f"label {BUILDPACK_LAYERS_LABEL} is not a JSON object"),
        (labels({}, "nope"), [], f"label {BUILDPACKAGE_METADATA_LABEL} is not valid JSON"),
        (labels({}, [1]), [], f"label {BUILDPACKAGE_METADATA_LABEL} is not a JSON object"),
        (labels({"a": {"1": {"layerDiffID": diff(9)}}}), [diff(1)], f"buildpack a@1: no layer with diffID {diff(9)}"),
        (
            labels({"a": {"1": {"api": "0.2"}}}),
            [diff(1)],
            f"buildpack a@1: no layerDiffID in label {BUILDPACK_LAYERS_LABEL}",
        ),
        (
            labels({"a": {"1": "x"}}),
            [diff(1)],
            f"buildpack a@1: entry of label {BUILDPACK_LAYERS_LABEL} is not an object",
        ),
        (labels({"a": []}), [diff(1)], f"buildpack a: versions in {BUILDPACK_LAYERS_LABEL} not a map"),
        (labels({}), [diff(1), diff(2)], "config lists 2 diffIDs for 1 layers"),
        (
            labels({"a": {"1": {"layerDiffID": diff(1), "order": [{"group": [{"version": "1"}]}]}}}),
            [diff(1)],
            "buildpack a@1: order group member without an id",
        ),
        (
            labels({"a": {"1": {"layerDiffID": diff(1), "stacks": [{"mixins": []}]}}}),
            [diff(1)],
            "buildpack a@1: stack without an id",
        ),
    ],
)
def test_broken_store_images_are_named(image_labels: dict[str, str], diff_ids: list[str], problem: str) -> None:
    with pytest.raises(ImageContentError) as raised:
        store_buildpacks("reg.example/bp:1", image_labels, diff_ids, [layer(1)])
    assert raised.value.reason == INVALID_BUILDPACKAGE
    assert raised.value.message == f"store image reg.example/bp:1: {problem}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], []),
        ([{"group": []}], [{"group": []}]),
        (
            [{"group": [{"id": "a", "version": "1", "optional": False, "extra": 1}, {"id": "b", "optional": True}]}],
            [{"group": [{"id": "a", "version": "1"}, {"id": "b", "optional": True}]}],
        ),
    ],
)
def test_orders_keep_only_the_api_fields(value: Any, expected: Any) -> None:
    assert normalise_order(value, "bp") == expected


@pytest.mark.parametrize(
    ("value", "problem"), [({}, "bp: order is not a list"), ([{"x": 1}], "bp: order entry without a group list")]
)
def test_malformed_orders(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalise_order(value, "bp")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([{"id": "s"}], [{"id": "s"}]),
        ([{"id": "s", "mixins": [], "other": True}], [{"id": "s"}]),
        ([{"id": "s", "mixins": ["a", "build:b"]}], [{"id": "s", "mixins": ["a", "build:b"]}]),
        ([{"id": "*"}], [{"id": "*"}]),
    ],
)
def test_stacks_keep_only_the_api_fields(value: Any, expected: Any) -> None:
    assert normalise_stacks(value, "bp") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [("x", "bp: stacks is not a list"), ([{"id": "s", "mixins": "a"}], "bp: stack s mixins are not a list of strings")],
)
def test_malformed_stacks(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalise_stacks(value, "bp")


def entry(buildpack: str, image: str) -> dict[str, Any]:
    bp_id, version = buildpack.split("@")
    return {"id": bp_id, "version": version, "storeImage": {"image": image}}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["b@1 x", "a@2 x", "a@1 x"], ["a@1 x", "a@2 x", "b@1 x"]),
        # ties on id@version are broken by the store image
        (["a@1 z", "a@1 b", "a@1 m"], ["a@1 b", "a@1 m", "a@1 z"]),
        # string order, as kpack: 1.10.0 before 1.9.0; '-' and '/' sort before '@'
        (["a@1.9.0 x", "a@1.10.0 x"], ["a@1.10.0 x", "a@1.9.0 x"]),
        (["a@1 x", "a-b@1 x", "a/b@1 x"], ["a-b@1 x", "a/b@1 x", "a@1 x"]),
    ],
)
def test_sorting(given: list[str], expected: list[str]) -> None:
    buildpacks = [entry(*item.split(" ")) for item in given]
    out = sort_buildpacks(buildpacks)
    assert [f"{bp['id']}@{bp['version']} {bp['storeImage']['image']}" for bp in out] == expected
