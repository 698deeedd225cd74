"""Label JSON shapes of a builder image and the lifecycle metadata label (formats.md §3.2)."""

from __future__ import annotations

import json

import pytest

from kpack_core.cnb import LifecycleImageError, LifecycleMetadata, OrderRef, StoreIndex
from kpack_core.cnb.metadata import (
    BUILDER_METADATA_LABEL,
    BUILDPACK_LAYERS_LABEL,
    BUILDPACK_ORDER_LABEL,
    LIFECYCLE_APIS_LABEL,
    LIFECYCLE_VERSION_LABEL,
    builder_labels,
)

from .helpers import BIONIC, digest_of, lifecycle, store_buildpack

LABEL = json.dumps(
    {
        "version": "0.11.4",
        "api": {"buildpack": "0.2", "platform": "0.3"},
        "apis": {
            "buildpack": {"deprecated": [], "supported": ["0.2", "0.3"]},
            "platform": {"deprecated": ["0.3"], "supported": ["0.4"]},
        },
    }
)


def test_the_lifecycle_label_parses_and_serialises_back() -> None:
    parsed = LifecycleMetadata.parse(LABEL, "r.io/lifecycle@sha256:x")

    assert parsed.version == "0.11.4"
    assert parsed.platform_apis.all == ("0.3", "0.4")
    assert parsed.to_json() == json.loads(LABEL)


def test_a_legacy_lifecycle_label_gives_one_version_of_each_kind() -> None:
    parsed = LifecycleMetadata.parse('{"version":"0.7.0","api":{"buildpack":"0.2","platform":"0.3"}}', "img")

    assert parsed.buildpack_apis.supported == ("0.2",)
    assert parsed.platform_apis.supported == ("0.3",)


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        (None, "label io.buildpacks.lifecycle.metadata is missing"),
        ("{", "is not JSON"),
        ("[]", "the label is not an object"),
        ('{"api": {}}', "no version"),
        ('{"version": "1", "apis": {"platform": {"supported": "0.3"}}}', "apis.platform.supported is not a list"),
        ('{"version": "1", "apis": []}', "apis is not an object"),
    ],
)
def test_a_bad_lifecycle_label_names_the_image_and_the_fault(label: str | None, problem: str) -> None:
    with pytest.raises(LifecycleImageError, match=r"lifecycle image r\.io/lc@sha256:1: .*" + problem):
        LifecycleMetadata.parse(label, "r.io/lc@sha256:1")


def test_builder_labels_have_kpacks_shapes() -> None:
    index = StoreIndex(
        "s",
        [
            store_buildpack("meta", "1.0.0", order=[{"group": [{"id": "b"}]}], homepage="https://meta"),
            store_buildpack("b", "2.0.0", stacks=[{"id": BIONIC, "mixins": ["build:git"]}]),
        ],
    )
    layers = [index.find("b"), index.find("meta")]
    order = ((OrderRef("meta", "1.0.0"), OrderRef("b", "2.0.0", optional=True)),)

    labels = builder_labels("r.io/run:base", lifecycle(), layers, order, "v1.0.0 (kpack-py)")

    assert json.loads(labels[BUILDER_METADATA_LABEL]) == {
        "description": "Custom Builder built with kpack",
        "stack": {"runImage": {"image": "r.io/run:base", "mirrors": None}},
        "lifecycle": {
            "version": "0.11.4",
            "api": {"buildpack": "0.2", "platform": "0.3"},
            "apis": {
                "buildpack": {"deprecated": [], "supported": ["0.2", "0.3", "0.4", "0.5", "0.6"]},
                "platform": {"deprecated": [], "supported": ["0.3", "0.4", "0.5", "0.6"]},
            },
        },
        "createdBy": {"name": "kpack Builder", "version": "v1.0.0 (kpack-py)"},
        "buildpacks": [{"id": "b", "version": "2.0.0"}, {"id": "meta", "version": "1.0.0", "homepage": "https://meta"}],
    }
    # Go marshals maps with sorted keys and struct fields in declaration order.
    assert labels[BUILDPACK_LAYERS_LABEL] == json.dumps(
        {
            "b": {
                "2.0.0": {
                    "api": "0.4",
                    "layerDiffID": digest_of("diff b@2.0.0"),
                    "stacks": [{"id": BIONIC, "mixins": ["build:git"]}],
                }
            },
            "meta": {
                "1.0.0": {
                    "api": "0.4",
                    "layerDiffID": digest_of("diff meta@1.0.0"),
                    "order": [{"group": [{"id": "b"}]}],
                    "homepage": "https://meta",
                }
            },
        },
        separators=(",", ":"),
    )
    assert json.loads(labels[BUILDPACK_ORDER_LABEL]) == [
        {"group": [{"id": "meta", "version": "1.0.0"}, {"id": "b", "version": "2.0.0", "optional": True}]}
    ]
    assert labels[LIFECYCLE_VERSION_LABEL] == "0.11.4"
    assert json.loads(labels[LIFECYCLE_APIS_LABEL]) == lifecycle().apis_json()
