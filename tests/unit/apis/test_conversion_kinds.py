"""Conversion of every kpack kind: both round trips exact for any object the models accept (hypothesis), status
included; kpack 0.4.0's field moves; v1alpha2-only fields survive a v1alpha1 read-modify-write."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpack_core.apis import conversion as conversion_module
from kpack_core.apis.base import HUB_VERSION, V1ALPHA1
from kpack_core.apis.conversion import ANNOTATION, down, up
from kpack_core.apis.kinds import REGISTRY, convert_object
from tests.model_strategies import for_model

META = {"name": "x", "namespace": "team", "labels": {"app": "x"}, "resourceVersion": "7"}


def objects(kind: str, version: str) -> st.SearchStrategy[dict[str, Any]]:
    model = REGISTRY[kind].versions[version].model
    return for_model(model).map(
        lambda body: {"apiVersion": f"kpack.io/{version}", "kind": kind, "metadata": copy.deepcopy(META), **body}
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hub_round_trip_is_exact(kind: str, data: st.DataObject) -> None:
    original = data.draw(objects(kind, HUB_VERSION))
    conversion = REGISTRY[kind].conversion
    old = down(original, conversion, V1ALPHA1)
    REGISTRY[kind].versions[V1ALPHA1].model.from_json(
        {k: v for k, v in old.items() if k != "metadata"} | {"metadata": old["metadata"]}
    )  # the v1alpha1 form is a valid v1alpha1 object
    assert up(old, conversion) == original


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_old_round_trip_is_exact(kind: str, data: st.DataObject) -> None:
    original = data.draw(objects(kind, V1ALPHA1))
    conversion = REGISTRY[kind].conversion
    hub = up(original, conversion)
    REGISTRY[kind].versions[HUB_VERSION].model.from_json(hub)
    assert down(hub, conversion, V1ALPHA1) == original


def image(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kpack.io/v1alpha2", "kind": "Image", "metadata": dict(META), "spec": spec}


def test_image_fields_move_like_kpack() -> None:
    hub = image({
        "tag": "r.io/app", "serviceAccountName": "sa", "cache": {"volume": {"size": "2G"}},
        "build": {"cnbBindings": [{"name": "b", "metadataRef": {"name": "m"}}], "env": [{"name": "A", "value": "1"}]},
        "builder": {"kind": "ClusterBuilder", "name": "default"},
    })  # fmt: skip
    old = convert_object(hub, "kpack.io/v1alpha1")
    assert old["spec"] == {
        "tag": "r.io/app", "serviceAccount": "sa", "cacheSize": "2G",
        "build": {"bindings": [{"name": "b", "metadataRef": {"name": "m"}}], "env": [{"name": "A", "value": "1"}]},
        "builder": {"kind": "ClusterBuilder", "name": "default"},
    }  # fmt: skip
    assert ANNOTATION not in (old["metadata"].get("annotations") or {})
    assert convert_object(old, "kpack.io/v1alpha2") == hub


def test_v1alpha2_only_fields_survive_a_v1alpha1_read_modify_write() -> None:
    hub = image({
        "tag": "r.io/app", "additionalTags": ["r.io/app:extra"], "cache": {"registry": {"tag": "r.io/cache"}},
        "cosign": {"enabled": True, "keyRef": {"name": "key"}}, "serviceBindings": [{"name": "db", "kind": "Secret"}],
        "builder": {"kind": "ClusterBuilder", "name": "default"},
    })  # fmt: skip
    old = convert_object(hub, "kpack.io/v1alpha1")
    assert "additionalTags" not in old["spec"]
    old["spec"]["serviceAccount"] = "edited"
    back = convert_object(old, "kpack.io/v1alpha2")
    assert back["spec"]["additionalTags"] == ["r.io/app:extra"]
    assert back["spec"]["cache"] == {"registry": {"tag": "r.io/cache"}}
    assert back["spec"]["cosign"] == {"enabled": True, "keyRef": {"name": "key"}}
    assert back["spec"]["serviceAccountName"] == "edited"
    assert "annotations" not in back["metadata"], "the carrier annotation never stays on a hub object"


def test_build_fields_move_like_kpack() -> None:
    hub = {
        "apiVersion": "kpack.io/v1alpha2", "kind": "Build", "metadata": dict(META),
        "spec": {"serviceAccountName": "sa", "cache": {"volume": {"persistentVolumeClaimName": "pvc"}},
                 "tags": ["r.io/app"]},
        "status": {"latestImage": "r.io/app@sha256:" + "a" * 64, "latestCacheImage": "r.io/cache@sha256:" + "b" * 64},
    }  # fmt: skip
    old = convert_object(hub, "kpack.io/v1alpha1")
    assert old["spec"] == {"serviceAccount": "sa", "cacheName": "pvc", "tags": ["r.io/app"]}
    assert "latestCacheImage" not in old["status"]
    assert convert_object(old, "kpack.io/v1alpha2") == hub


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_conversions_leave_their_input_alone_and_the_quick_path_agrees(kind: str, data: st.DataObject) -> None:
    """`down` shares unchanged values with its input instead of copying it, and takes a one-pass path for common
    objects: neither may change the input, and the one-pass answer must equal the compare-and-diff answer."""
    original = data.draw(objects(kind, HUB_VERSION))
    snapshot = copy.deepcopy(original)
    conversion = REGISTRY[kind].conversion
    old = down(original, conversion, V1ALPHA1)
    assert original == snapshot
    old_snapshot = copy.deepcopy(old)
    up(old, conversion)
    assert old == old_snapshot
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(conversion_module, "_down_quick", lambda body, conversion: None)
        assert down(original, conversion, V1ALPHA1) == old


def test_a_field_already_at_a_move_target_takes_the_exact_path() -> None:
    # `serviceAccount` is the users' spelling of `serviceAccountName` on v1alpha2: both present on a hub object
    # collide when the move writes v1alpha1's `serviceAccount`.
    hub = image({"tag": "r.io/app", "serviceAccountName": "a", "serviceAccount": "b"})
    conversion = REGISTRY["Image"].conversion
    old = down(hub, conversion, V1ALPHA1)
    assert up(old, conversion) == hub
