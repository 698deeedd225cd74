"""SourceResolver in both versions (one JSON): kpack had no defaults or checks for it; ours default the service
account and check the source as an Image's. Lossless JSON round trips, status included; unknown fields refused."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kpack_core.apis.base import ApiModel
from kpack_core.apis.crdgen import structural_schema
from kpack_core.apis.errors import FieldError, from_pydantic
from kpack_core.apis.kinds import REGISTRY
from kpack_core.apis.v1alpha1 import sourceresolver as resolver_v1
from kpack_core.apis.v1alpha2 import sourceresolver as resolver_v2
from tests.model_strategies import for_model

JSON = dict[str, Any]
RESOLVERS = [pytest.param(resolver_v1, id="v1alpha1"), pytest.param(resolver_v2, id="v1alpha2")]
SHA = "b" * 40


def resolver_json(module: ModuleType, **spec: Any) -> JSON:
    """A SourceResolver as the Image controller makes it, with `spec` fields replaced (None removes one)."""
    body: JSON = {
        "serviceAccount": "builder",
        "source": {"git": {"url": "https://github.com/example/my-app", "revision": "main"}, "subPath": "app"},
    }
    body.update(spec)
    return {
        "apiVersion": f"kpack.io/{module.__name__.split('.')[-2]}",
        "kind": "SourceResolver",
        "metadata": {"name": "my-app-source", "namespace": "default"},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


@pytest.mark.parametrize("module", RESOLVERS)
def test_defaults_the_service_account(module: ModuleType) -> None:
    resolver = module.SourceResolver.from_json(resolver_json(module, serviceAccount=None))
    assert module.service_account_name(resolver) == "default"
    REGISTRY["SourceResolver"].versions[module.__name__.split(".")[-2]].set_defaults(
        resolver, has_default_storage_class=True
    )
    assert resolver.to_json()["spec"]["serviceAccount"] == "default"
    given_one = module.SourceResolver.from_json(resolver_json(module))
    module.set_defaults(given_one)
    assert given_one.to_json() == resolver_json(module)
    assert module.service_account_name(given_one) == "builder"


@pytest.mark.parametrize("module", RESOLVERS)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, [], id="valid"),
        pytest.param({"serviceAccount": None}, [], id="service-account-defaulted-later"),
        pytest.param({"source": {"blob": {"url": "https://b/x.zip"}}}, [], id="blob"),
        pytest.param(
            {"source": None},
            [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got neither")],
            id="no-source",
        ),
        pytest.param(
            {"source": {"git": {"url": "u", "revision": "r"}, "blob": {"url": "u"}}},
            [("spec.source.git, spec.source.blob", "expected exactly one, got both")],
            id="two-sources",
        ),
        pytest.param(
            {"source": {"registry": {"image": "R"}}}, [("spec.source.registry.image", "invalid value: R")], id="image"
        ),
        pytest.param(
            {"source": {"git": {"url": "u", "revision": "r"}, "subPath": "../x"}},
            [("spec.source.subPath", "invalid value: ../x")],
            id="sub-path",
        ),
    ],
)
def test_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    resolver = module.SourceResolver.from_json(resolver_json(module, **spec))
    assert sorted((e.path, e.message) for e in module.validate(resolver)) == expected


@pytest.mark.parametrize("module", RESOLVERS)
def test_nothing_is_immutable(module: ModuleType) -> None:
    old = module.SourceResolver.from_json(resolver_json(module))
    new = module.SourceResolver.from_json(
        resolver_json(module, serviceAccount="other", source={"blob": {"url": "https://b/x.zip"}})
    )
    assert module.validate(new, old) == []


STATUSES = [
    pytest.param(
        {
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": None},
                {"type": "ActivePolling", "status": "True", "lastTransitionTime": None},
            ],
            "source": {
                "git": {"url": "https://github.com/example/my-app", "revision": SHA, "subPath": "app", "type": "Branch"}
            },
        },
        id="git",
    ),
    pytest.param({"source": {"blob": {"url": "https://b/x.zip"}}}, id="blob"),
    pytest.param(
        {"source": {"registry": {"image": "r.io/src", "subPath": "s", "imagePullSecrets": [{"name": "p"}]}}},
        id="registry",
    ),
]


@pytest.mark.parametrize("module", RESOLVERS)
@pytest.mark.parametrize("status", STATUSES)
def test_round_trip_with_status(module: ModuleType, status: JSON) -> None:
    raw = resolver_json(module)
    raw["status"] = copy.deepcopy(status)
    assert module.SourceResolver.from_json(raw).to_json() == raw


@pytest.mark.parametrize("model", [resolver_v1.SourceResolver, resolver_v2.SourceResolver])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_object_round_trips(model: type[ApiModel], data: st.DataObject) -> None:
    raw = data.draw(for_model(model))
    assert model.from_json(raw).to_json() == raw


@pytest.mark.parametrize("module", RESOLVERS)
@pytest.mark.parametrize(
    ("raw_patch", "expected"),
    [
        pytest.param(("spec", "serviceAccountName", "sa"), FieldError("spec.serviceAccountName", "unknown field")),
        pytest.param(
            ("status", "source", {"git": {"type": "Sometimes"}}),
            FieldError(
                "status.source.git.type", "invalid value: Input should be 'Unknown', 'Branch', 'Tag' or 'Commit'"
            ),
        ),
    ],
)
def test_bad_fields_are_refused_with_their_path(
    module: ModuleType, raw_patch: tuple[str, str, Any], expected: FieldError
) -> None:
    raw = resolver_json(module)
    section, key, value = raw_patch
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ValidationError) as caught:
        module.SourceResolver.from_json(raw)
    assert from_pydantic(caught.value) == [expected]


@pytest.mark.parametrize("model", [resolver_v1.SourceResolver, resolver_v2.SourceResolver])
def test_models_make_structural_crd_schemas(model: Any) -> None:
    schema = structural_schema(model)
    assert schema["properties"]["spec"]["properties"]["serviceAccount"]["type"] == "string"
    git = schema["properties"]["status"]["properties"]["source"]["properties"]["git"]
    assert git["properties"]["type"]["enum"] == ["Unknown", "Branch", "Tag", "Commit"]
