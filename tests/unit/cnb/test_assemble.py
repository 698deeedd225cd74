"""Builder image assembly from a build image, a lifecycle image and resolved buildpacks, without a registry: the
inputs are images made by `kpack_core.envtest.cnb`, as a registry would serve them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from kpack_core.cnb import (
    BUILDER_METADATA_LABEL,
    BUILDPACK_ORDER_LABEL,
    LifecycleImage,
    LifecycleImageError,
    OrderRef,
    RemoteImage,
    StackImageError,
    StackInputs,
    StackNotSupportedError,
    StoreIndex,
    assemble_builder,
    resolve_order,
)
from kpack_core.envtest.cnb import ImageBuild, StackRole, lifecycle_image, stack_image
from kpack_core.registry import mediatypes, parse_reference

from .helpers import BIONIC, store_buildpack

BUILD_REF = parse_reference("registry.example.com/stack/build@sha256:" + "1" * 64)
LIFECYCLE_REF = parse_reference("registry.example.com/kpack/lifecycle@sha256:" + "2" * 64)
STACK = StackInputs(BIONIC, "registry.example.com/stack/run:base", ("ca-certificates",), 1000, 1000)


def _remote(image: ImageBuild, reference: Any) -> RemoteImage:
    return RemoteImage(reference, image.manifest, image.config_json())


async def _inputs(*, os_label: str | None = "linux") -> tuple[RemoteImage, LifecycleImage]:
    build = await stack_image(StackRole.BUILD, BIONIC, mixins=["ca-certificates"])
    lifecycle = await lifecycle_image(os_label=os_label)
    return _remote(build, BUILD_REF), LifecycleImage.of(_remote(lifecycle, LIFECYCLE_REF))


def _resolved(**kwargs: Any) -> Any:
    index = StoreIndex(
        "default",
        [
            store_buildpack("big", "1.0.0", size=900, image="registry.example.com/bp/big:1", **kwargs),
            store_buildpack("small", "1.0.0", size=10, image="registry.example.com/bp/small:1"),
        ],
    )
    return resolve_order(((OrderRef("small"), OrderRef("big", optional=True)),), index)


async def test_layers_config_and_labels_are_kpacks() -> None:
    build, lifecycle = await _inputs()
    resolved = _resolved()

    image = assemble_builder(build, lifecycle, STACK, resolved, "v0 (test)")

    layers = image.manifest.layers
    assert len(layers) == 1 + 1 + 1 + 2 + 2  # base, dirs, lifecycle, two buildpacks, stack.toml, order.toml
    assert layers[0] == build.manifest.layers[0]
    assert layers[2].digest == lifecycle.image.manifest.layers[0].digest
    assert [layer.digest for layer in layers[3:5]] == [bp.digest for bp in resolved.layers]
    assert [layer.size for layer in layers[3:5]] == [900, 10]
    assert {layer.media_type for layer in layers} == {mediatypes.DOCKER_LAYER}
    assert image.manifest.media_type == build.manifest.media_type
    # the small layers are the only blobs that may need an upload
    assert set(image.blobs) == {layers[1].digest, layers[5].digest, layers[6].digest, image.manifest.config.digest}
    assert [layer.source.name for layer in image.remote] == [
        "registry.example.com/stack/build",
        "registry.example.com/kpack/lifecycle",
        "registry.example.com/bp/big",
        "registry.example.com/bp/small",
    ]

    config = json.loads(image.config)
    assert config["config"]["WorkingDir"] == "/layers"
    assert config["config"]["Env"] == build.config["config"]["Env"]  # inherited
    labels = config["config"]["Labels"]
    assert labels["io.buildpacks.stack.id"] == BIONIC  # inherited
    assert json.loads(labels[BUILDPACK_ORDER_LABEL]) == [
        {"group": [{"id": "small", "version": "1.0.0"}, {"id": "big", "version": "1.0.0", "optional": True}]}
    ]
    metadata = json.loads(labels[BUILDER_METADATA_LABEL])
    assert metadata["stack"]["runImage"]["image"] == STACK.run_image
    assert [bp["id"] for bp in metadata["buildpacks"]] == ["big", "small"]
    assert len(config["rootfs"]["diff_ids"]) == len(layers)
    assert config["rootfs"]["diff_ids"][2] == lifecycle.image.labels["linux"]
    assert image.os == "linux"


async def test_equal_inputs_give_an_equal_digest_and_any_change_a_new_one() -> None:
    build, lifecycle = await _inputs()

    first = assemble_builder(build, lifecycle, STACK, _resolved(), "v0 (test)")
    again = assemble_builder(build, lifecycle, STACK, _resolved(), "v0 (test)")
    other_run = assemble_builder(build, lifecycle, dataclasses.replace(STACK, run_image="r.io/x:1"), _resolved(), "v0")

    assert first.digest == again.digest
    assert other_run.digest != first.digest


async def test_an_oci_build_image_gets_oci_layer_types() -> None:
    build, lifecycle = await _inputs()
    oci = dataclasses.replace(build, manifest=dataclasses.replace(build.manifest, media_type=mediatypes.OCI_MANIFEST))

    image = assemble_builder(oci, lifecycle, STACK, _resolved(), "v0")

    assert image.manifest.media_type == mediatypes.OCI_MANIFEST
    assert {layer.media_type for layer in image.manifest.layers[1:]} == {mediatypes.OCI_LAYER}


async def test_a_lifecycle_image_without_the_os_label_is_named() -> None:
    build, lifecycle = await _inputs(os_label=None)

    with pytest.raises(
        LifecycleImageError,
        match=r"lifecycle image registry\.example\.com/kpack/lifecycle@sha256:2+: "
        r"could not find lifecycle for os 'linux'",
    ):
        assemble_builder(build, lifecycle, STACK, _resolved(), "v0")


async def test_a_lifecycle_label_naming_no_layer_is_named() -> None:
    build, lifecycle = await _inputs()
    labels = {**lifecycle.image.config["config"]["Labels"], "linux": "sha256:" + "9" * 64}
    config = {**lifecycle.image.config, "config": {**lifecycle.image.config["config"], "Labels": labels}}
    broken = LifecycleImage(dataclasses.replace(lifecycle.image, config=config), lifecycle.metadata)

    with pytest.raises(LifecycleImageError, match=r"label 'linux' names sha256:9+, which is not one of its layers"):
        assemble_builder(build, broken, STACK, _resolved(), "v0")


async def test_a_windows_build_image_is_refused_naming_the_image() -> None:
    build, lifecycle = await _inputs()
    windows = dataclasses.replace(build, config={**build.config, "os": "windows"})

    with pytest.raises(
        StackImageError, match=r"build image registry\.example\.com/stack/build@sha256:1+: os 'windows'"
    ):
        assemble_builder(windows, lifecycle, STACK, _resolved(), "v0")


async def test_a_build_image_whose_config_and_manifest_disagree_is_refused() -> None:
    build, lifecycle = await _inputs()
    broken = dataclasses.replace(build, config={**build.config, "rootfs": {"type": "layers", "diff_ids": []}})

    with pytest.raises(StackImageError, match=r"1 layers in the manifest but 0 diff_ids in the config"):
        assemble_builder(broken, lifecycle, STACK, _resolved(), "v0")


async def test_validation_runs_before_anything_is_built() -> None:
    build, lifecycle = await _inputs()

    with pytest.raises(StackNotSupportedError, match=r"buildpack big@1\.0\.0 does not support stack"):
        assemble_builder(build, lifecycle, STACK, _resolved(stacks=[{"id": "io.other"}]), "v0")


async def test_history_is_extended_when_the_build_image_keeps_one() -> None:
    build, lifecycle = await _inputs()
    with_history = dataclasses.replace(build, config={**build.config, "history": [{"created_by": "base"}]})

    image = assemble_builder(with_history, lifecycle, STACK, _resolved(), "v0")

    history = json.loads(image.config)["history"]
    assert len(history) == len(image.manifest.layers)
    assert history[-1]["created_by"] == "kpack: /cnb/order.toml"
