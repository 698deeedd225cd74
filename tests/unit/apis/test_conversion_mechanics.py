"""The conversion machinery on a toy kind: moves, what has no home travels in the annotation, both round trips
exact (hypothesis), and malformed annotations are refused with a clear error."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings

from kpack_core.apis.base import ApiModel, KubeObjectModel, Status
from kpack_core.apis.conversion import ANNOTATION, ConversionError, KindConversion, Move, convert, down, up
from tests.model_strategies import for_model


class NewCache(ApiModel):
    size: str | None = None
    registry: str | None = None


class NewSpec(ApiModel):
    tag: str
    service_account_name: str | None = None
    cache: NewCache | None = None
    additional_tags: list[str] | None = None
    env: list[dict[str, str]] | None = None


class NewStatus(Status):
    latest_image: str | None = None
    latest_cache_image: str | None = None


class NewThing(KubeObjectModel):
    spec: NewSpec
    status: NewStatus | None = None


class OldSpec(ApiModel):
    tag: str
    service_account: str | None = None
    cache_size: str | None = None
    env: list[dict[str, str]] | None = None


class OldStatus(Status):
    latest_image: str | None = None


class OldThing(KubeObjectModel):
    spec: OldSpec
    status: OldStatus | None = None


THING = KindConversion(
    "Thing",
    NewThing,
    OldThing,
    (
        Move(("spec", "serviceAccountName"), ("spec", "serviceAccount")),
        Move(("spec", "cache", "size"), ("spec", "cacheSize")),
    ),
)
CONVERSIONS = {"Thing": THING}
META = {"name": "t", "namespace": "ns", "labels": {"a": "b"}}


def hub(spec: dict[str, object], **extra: object) -> dict[str, object]:
    return {"apiVersion": "kpack.io/v1alpha2", "kind": "Thing", "metadata": copy.deepcopy(META), "spec": spec, **extra}


def test_moves_and_leftovers() -> None:
    original = hub({"tag": "x", "serviceAccountName": "sa", "cache": {"size": "2G", "registry": "r"}})
    old = convert(original, "kpack.io/v1alpha1", CONVERSIONS)
    assert old["spec"] == {"tag": "x", "serviceAccount": "sa", "cacheSize": "2G"}
    assert old["metadata"]["labels"] == {"a": "b"}
    assert ANNOTATION in old["metadata"]["annotations"]
    back = convert(old, "kpack.io/v1alpha2", CONVERSIONS)
    assert back == original
    assert "annotations" not in back["metadata"]


def test_nothing_to_carry_means_no_annotation() -> None:
    original = hub({"tag": "x", "cache": {"size": "1G"}})
    old = convert(original, "kpack.io/v1alpha1", CONVERSIONS)
    assert "annotations" not in old["metadata"]
    assert convert(old, "kpack.io/v1alpha2", CONVERSIONS) == original


def test_old_read_modify_write_keeps_hub_only_fields_and_takes_the_edit() -> None:
    original = hub({"tag": "x", "additionalTags": ["y"], "cache": {"size": "1G", "registry": "r"}})
    old = convert(original, "kpack.io/v1alpha1", CONVERSIONS)
    old["spec"]["cacheSize"] = "5G"  # edited through v1alpha1
    back = convert(old, "kpack.io/v1alpha2", CONVERSIONS)
    assert back["spec"] == {"tag": "x", "additionalTags": ["y"], "cache": {"size": "5G", "registry": "r"}}


@pytest.mark.parametrize(
    ("annotation", "message"),
    [("{not json", "is not JSON"), ("[1]", "not a JSON object"), ('{"set": [[[], 1]]}', "whole object"),
     ('{"set": [1]}', "malformed")],
)  # fmt: skip
def test_malformed_annotation_is_a_clear_error(annotation: str, message: str) -> None:
    old = {"apiVersion": "kpack.io/v1alpha1", "kind": "Thing", "metadata": {"name": "t", "annotations": {
        ANNOTATION: annotation}}, "spec": {"tag": "x"}}  # fmt: skip
    with pytest.raises(ConversionError, match=message):
        up(old, THING)


@pytest.mark.parametrize(
    ("obj", "target", "message"),
    [
        ({"apiVersion": "kpack.io/v1alpha2", "kind": "Nope", "metadata": {"name": "n"}}, "kpack.io/v1alpha1", "Nope"),
        ({"apiVersion": "other.io/v1", "kind": "Thing", "metadata": {"name": "n"}}, "kpack.io/v1alpha1", "other.io"),
        ({"apiVersion": "kpack.io/v1alpha2", "kind": "Thing", "metadata": {"name": "n"}}, "kpack.io/v9", "v9"),
    ],
)
def test_unknown_kinds_and_versions_are_refused(obj: dict[str, object], target: str, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        convert(obj, target, CONVERSIONS)


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("m", "Thing <unnamed>: metadata is a JSON string, not an object"),
        (["x"], "Thing <unnamed>: metadata is a JSON array, not an object"),
        ({"name": "t", "annotations": "a"}, "Thing t: metadata.annotations is a JSON string, not an object"),
        ({"name": "t", "namespace": "n", "annotations": 5}, "Thing n/t: metadata.annotations is a JSON number"),
    ],
)
def test_metadata_or_annotations_that_are_not_objects_are_a_clear_error(
    version: str, metadata: object, message: str
) -> None:
    obj = {"apiVersion": f"kpack.io/{version}", "kind": "Thing", "metadata": metadata, "spec": {"tag": "x"}}
    target = "kpack.io/v1alpha2" if version == "v1alpha1" else "kpack.io/v1alpha1"
    with pytest.raises(ConversionError) as refused:
        convert(obj, target, CONVERSIONS)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("metadata", [None, {"name": "t", "annotations": None}])
def test_null_metadata_or_annotations_convert(metadata: object) -> None:
    obj = {"apiVersion": "kpack.io/v1alpha2", "kind": "Thing", "metadata": metadata, "spec": {"tag": "x", "y": 1}}
    old = convert(obj, "kpack.io/v1alpha1", CONVERSIONS)
    assert ANNOTATION in old["metadata"]["annotations"]
    assert convert(old, "kpack.io/v1alpha2", CONVERSIONS)["spec"] == {"tag": "x", "y": 1}


@settings(max_examples=300, deadline=None)
@given(spec=for_model(NewSpec), status=for_model(NewStatus))
def test_hub_round_trip_is_exact(spec: dict[str, object], status: dict[str, object]) -> None:
    original = hub(spec, status=status)
    assert up(down(original, THING, "v1alpha1"), THING) == original


@settings(max_examples=300, deadline=None)
@given(spec=for_model(OldSpec), status=for_model(OldStatus))
def test_old_round_trip_is_exact(spec: dict[str, object], status: dict[str, object]) -> None:
    original = {"apiVersion": "kpack.io/v1alpha1", "kind": "Thing", "metadata": dict(META), "spec": spec,
                "status": status}  # fmt: skip
    assert down(up(original, THING), THING, "v1alpha1") == original
