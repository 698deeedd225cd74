"""The kinds table's JSON-level entry points: defaulting and validation options reach only the version functions
that declare them, and an option nobody knows is refused."""

from __future__ import annotations

import inspect

import pytest

from kpack_core.apis.base import JSON
from kpack_core.apis.kinds import OPTIONS, REGISTRY, default_object, validate_object


def image(api_version: str) -> JSON:
    spec: JSON = {"tag": "registry.example.com/app", "builder": {"kind": "ClusterBuilder", "name": "default"}}
    spec["source"] = {"git": {"url": "https://github.com/example/app", "revision": "main"}}
    return {"apiVersion": api_version, "kind": "Image", "metadata": {"name": "app", "namespace": "ns"}, "spec": spec}


def build_v1() -> JSON:
    spec: JSON = {"tags": ["registry.example.com/app"], "builder": {"image": "registry.example.com/builder"}}
    spec["source"] = {"git": {"url": "https://github.com/example/app", "revision": "main"}}
    return {
        "apiVersion": "kpack.io/v1alpha1",
        "kind": "Build",
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": spec,
    }


def test_an_option_reaches_the_versions_that_use_it() -> None:
    with_class = default_object(image("kpack.io/v1alpha2"), has_default_storage_class=True, username="alice")
    assert with_class["spec"]["cache"] == {"volume": {"size": "2G"}}
    without = default_object(image("kpack.io/v1alpha2"), has_default_storage_class=False, username="alice")
    assert "cache" not in without["spec"]


def test_a_version_that_uses_no_option_is_given_none() -> None:
    defaulted = default_object(build_v1(), has_default_storage_class=True, username="alice")
    assert defaulted["spec"]["serviceAccount"] == "default"
    assert validate_object(defaulted, None, has_default_storage_class=True, username="alice") == []


def test_an_unknown_option_is_refused() -> None:
    message = r"unknown option\(s\) \['has_storage_class'\]"
    with pytest.raises(TypeError, match=message):
        default_object(image("kpack.io/v1alpha2"), has_storage_class=True)
    with pytest.raises(TypeError, match=message):
        validate_object(image("kpack.io/v1alpha2"), None, has_storage_class=True)


def test_every_version_function_declares_only_known_options() -> None:
    for kind in REGISTRY.values():
        for version, api in kind.versions.items():
            for name in ("set_defaults", "validate"):
                keyword_only = {
                    p.name
                    for p in inspect.signature(getattr(api.module, name)).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY
                }
                assert keyword_only <= OPTIONS, (kind.info.kind, version, name, keyword_only - OPTIONS)
