"""ClusterStack and ClusterStore in both versions: the seed manifests parse, default and validate clean; every
validation rule by table (path and message); no immutable fields; lossless JSON round trips, status included;
unknown fields refused with their path; and the image-reference rules the checks use."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kpack_core.apis.base import ApiModel
from kpack_core.apis.buildpacks import is_image_reference, is_tag_reference
from kpack_core.apis.errors import FieldError, from_pydantic
from kpack_core.apis.v1alpha1 import clusterstack as stack_v1
from kpack_core.apis.v1alpha1 import clusterstore as store_v1
from kpack_core.apis.v1alpha2 import clusterstack as stack_v2
from kpack_core.apis.v1alpha2 import clusterstore as store_v2
from tests.model_strategies import for_model

JSON = dict[str, Any]

# Verbatim copies of the seed manifests 00-clusterstack.yaml and 00-clusterstore.yaml (kept here so the unit tests
# need nothing outside the repo).
SEED_STACK = """\
apiVersion: kpack.io/v1alpha2
kind: ClusterStack
metadata:
  name: base
spec:
  id: io.buildpacks.stacks.bionic
  buildImage:
    image: registry.example.com/stacks/build:base
  runImage:
    image: registry.example.com/stacks/run:base
"""
SEED_STORE = """\
apiVersion: kpack.io/v1alpha2
kind: ClusterStore
metadata:
  name: default
spec:
  sources:
  - image: registry.example.com/buildpacks/java
"""

STACKS = [pytest.param(stack_v1, id="v1alpha1"), pytest.param(stack_v2, id="v1alpha2")]
STORES = [pytest.param(store_v1, id="v1alpha1"), pytest.param(store_v2, id="v1alpha2")]
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _version(module: ModuleType) -> str:
    return module.__name__.split(".")[-2]


def stack_json(module: ModuleType, **spec: Any) -> JSON:
    """The seed ClusterStack in `module`'s version, with `spec` fields replaced (None removes one)."""
    raw: JSON = yaml.safe_load(SEED_STACK)
    raw["apiVersion"] = f"kpack.io/{_version(module)}"
    raw["spec"].update(spec)
    raw["spec"] = {k: v for k, v in raw["spec"].items() if v is not None}
    return raw


def store_json(module: ModuleType, **spec: Any) -> JSON:
    """The seed ClusterStore in `module`'s version, with `spec` fields replaced (None removes one)."""
    raw: JSON = yaml.safe_load(SEED_STORE)
    raw["apiVersion"] = f"kpack.io/{_version(module)}"
    raw["spec"].update(spec)
    raw["spec"] = {k: v for k, v in raw["spec"].items() if v is not None}
    return raw


def errors_of(module: ModuleType, obj: Any, old: Any = None) -> list[tuple[str, str]]:
    return sorted((e.path, e.message) for e in module.validate(obj, old))


# -- the seed manifests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", STACKS)
def test_seed_stack_parses_defaults_and_validates_clean(module: ModuleType) -> None:
    raw = stack_json(module)
    stack = module.ClusterStack.from_json(raw)
    assert stack.to_json() == raw
    module.set_defaults(stack)
    assert stack.to_json() == raw  # a ClusterStack has no defaults
    assert module.validate(stack) == []


@pytest.mark.parametrize("module", STORES)
def test_seed_store_parses_defaults_and_validates_clean(module: ModuleType) -> None:
    raw = store_json(module)
    store = module.ClusterStore.from_json(raw)
    assert store.to_json() == raw
    module.set_defaults(store)
    assert store.to_json() == raw  # a ClusterStore has no defaults
    assert module.validate(store) == []


# -- ClusterStack rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", STACKS)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"id": None}, [("spec.id", "missing field(s)")], id="id-missing"),
        pytest.param({"id": ""}, [("spec.id", "missing field(s)")], id="id-empty"),
        pytest.param({"buildImage": None}, [("spec.buildImage.image", "missing field(s)")], id="build-image-absent"),
        pytest.param({"buildImage": {}}, [("spec.buildImage.image", "missing field(s)")], id="build-image-empty"),
        pytest.param(
            {"buildImage": {"image": "Reg.io/Build"}},
            [("spec.buildImage.image", "invalid value: Reg.io/Build")],
            id="build-image-invalid",
        ),
        pytest.param({"runImage": {"image": ""}}, [("spec.runImage.image", "missing field(s)")], id="run-image-empty"),
        pytest.param(
            {"runImage": {"image": "r.io/run@sha256:short"}},
            [("spec.runImage.image", "invalid value: r.io/run@sha256:short")],
            id="run-image-bad-digest",
        ),
        pytest.param({"runImage": {"image": f"r.io/run@{DIGEST}"}}, [], id="run-image-by-digest"),
        pytest.param({"runImage": {"image": f"r.io/run:base@{DIGEST}"}}, [], id="run-image-tag-and-digest"),
        pytest.param({"buildImage": {"image": "paketobuildpacks/build:base-cnb"}}, [], id="docker-hub"),
        pytest.param(
            {"serviceAccountRef": {}},
            [
                ("spec.serviceAccountRef.name", "missing field(s)"),
                ("spec.serviceAccountRef.namespace", "missing field(s)"),
            ],
            id="service-account-ref-empty",
        ),
        pytest.param(
            {"serviceAccountRef": {"name": "puller"}},
            [("spec.serviceAccountRef.namespace", "missing field(s)")],
            id="service-account-ref-namespace",
        ),
        pytest.param({"serviceAccountRef": {"name": "puller", "namespace": "kpack"}}, [], id="service-account-ref"),
        pytest.param(
            {"id": "", "buildImage": {"image": "x:y:z"}, "runImage": None, "serviceAccountRef": {"namespace": "k"}},
            [
                ("spec.buildImage.image", "invalid value: x:y:z"),
                ("spec.id", "missing field(s)"),
                ("spec.runImage.image", "missing field(s)"),
                ("spec.serviceAccountRef.name", "missing field(s)"),
            ],
            id="all-accumulated",
        ),
    ],
)
def test_stack_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    stack = module.ClusterStack.from_json(stack_json(module, **spec))
    module.set_defaults(stack)
    assert errors_of(module, stack) == expected


@pytest.mark.parametrize("module", STACKS)
def test_stack_fields_are_all_mutable(module: ModuleType) -> None:
    old = module.ClusterStack.from_json(stack_json(module))
    new = module.ClusterStack.from_json(
        stack_json(
            module,
            id="io.buildpacks.stacks.jammy",
            buildImage={"image": "registry.example.com/stacks/build:full"},
            runImage={"image": "registry.example.com/stacks/run:full"},
            serviceAccountRef={"name": "puller", "namespace": "kpack"},
        )
    )
    assert module.validate(new, old) == []
    assert module.validate(old, new) == []


# -- ClusterStore rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", STORES)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"sources": None}, [("spec.sources", "missing field(s)")], id="sources-absent"),
        pytest.param({"sources": []}, [("spec.sources", "missing field(s)")], id="sources-empty"),
        pytest.param(
            {"sources": [{"image": "r.io/java"}, {}, {"image": ""}]},
            [("spec.sources[1].image", "missing field(s)"), ("spec.sources[2].image", "missing field(s)")],
            id="source-image-missing",
        ),
        pytest.param(
            {"sources": [{"image": "r.io/java"}, {"image": "r.io/Go"}, {"image": "r.io/go@sha256:abc"}]},
            [
                ("spec.sources[1].image", "invalid value: r.io/Go"),
                ("spec.sources[2].image", "invalid value: r.io/go@sha256:abc"),
            ],
            id="source-image-invalid",
        ),
        pytest.param(
            {"sources": [{"image": "gcr.io/paketo-buildpacks/java:5"}, {"image": f"r.io/bp@{DIGEST}"}]},
            [],
            id="sources-by-tag-and-digest",
        ),
        pytest.param(
            {"serviceAccountRef": {"namespace": "kpack"}},
            [("spec.serviceAccountRef.name", "missing field(s)")],
            id="service-account-ref-name",
        ),
        pytest.param({"serviceAccountRef": {"name": "puller", "namespace": "kpack"}}, [], id="service-account-ref"),
        pytest.param(
            {"sources": [], "serviceAccountRef": {}},
            [
                ("spec.serviceAccountRef.name", "missing field(s)"),
                ("spec.serviceAccountRef.namespace", "missing field(s)"),
                ("spec.sources", "missing field(s)"),
            ],
            id="all-accumulated",
        ),
    ],
)
def test_store_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    store = module.ClusterStore.from_json(store_json(module, **spec))
    module.set_defaults(store)
    assert errors_of(module, store) == expected


@pytest.mark.parametrize("module", STORES)
def test_store_fields_are_all_mutable(module: ModuleType) -> None:
    old = module.ClusterStore.from_json(store_json(module))
    new = module.ClusterStore.from_json(
        store_json(
            module,
            sources=[{"image": "registry.example.com/buildpacks/nodejs"}],
            serviceAccountRef={"name": "puller", "namespace": "kpack"},
        )
    )
    assert module.validate(new, old) == []


# -- JSON ----------------------------------------------------------------------------------------------------------

STACK_STATUS: JSON = {
    "observedGeneration": 2,
    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": None}],
    "id": "io.buildpacks.stacks.bionic",
    "buildImage": {"latestImage": f"registry.example.com/stacks/build@{DIGEST}", "image": "r.io/build:base"},
    "runImage": {"latestImage": f"registry.example.com/stacks/run@{DIGEST}", "image": "r.io/run:base"},
    "mixins": ["ca-certificates", "build:git", "run:tzdata"],
    "userId": 1000,
    "groupId": 1000,
}

STORE_STATUS: JSON = {
    "observedGeneration": 1,
    "conditions": [{"type": "Ready", "status": "False", "message": "no such image", "reason": "Failed"}],
    "buildpacks": [
        {
            "id": "paketo-buildpacks/java",
            "version": "5.0.0",
            "buildpackage": {"id": "paketo-buildpacks/java", "version": "5.0.0", "homepage": "https://paketo.io"},
            "storeImage": {"image": "registry.example.com/buildpacks/java"},
            "diffId": DIGEST,
            "digest": DIGEST,
            "size": 12345,
            "api": "0.6",
            "homepage": "https://paketo.io",
            "order": [{"group": [{"id": "paketo-buildpacks/jvm", "version": "1.0.0", "optional": False}]}],
            "stacks": [{"id": "io.buildpacks.stacks.bionic", "mixins": ["build:git"]}, {"id": "*"}],
        },
        {"id": "paketo-buildpacks/jvm"},
    ],
}


@pytest.mark.parametrize("module", STACKS)
def test_stack_round_trip_with_status(module: ModuleType) -> None:
    raw = stack_json(module, serviceAccountRef={"name": "puller", "namespace": "kpack", "kind": "ServiceAccount"})
    raw["status"] = copy.deepcopy(STACK_STATUS)
    assert module.ClusterStack.from_json(raw).to_json() == raw


@pytest.mark.parametrize("module", STORES)
def test_store_round_trip_with_status(module: ModuleType) -> None:
    raw = store_json(module, serviceAccountRef={"name": "puller", "namespace": "kpack"})
    raw["status"] = copy.deepcopy(STORE_STATUS)
    assert module.ClusterStore.from_json(raw).to_json() == raw


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(model, id=f"{model.__module__.split('.')[-2]}-{model.__name__}")
        for model in (stack_v1.ClusterStack, stack_v2.ClusterStack, store_v1.ClusterStore, store_v2.ClusterStore)
    ],
)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_object_round_trips(model: type[ApiModel], data: st.DataObject) -> None:
    raw = data.draw(for_model(model))
    assert model.from_json(raw).to_json() == raw


@pytest.mark.parametrize(
    ("make", "model", "section", "key", "expected"),
    [
        pytest.param(stack_json, stack_v2.ClusterStack, "spec", "stackId", "spec.stackId", id="stack-spec"),
        pytest.param(stack_json, stack_v1.ClusterStack, "status", "runImages", "status.runImages", id="stack-status"),
        pytest.param(store_json, store_v2.ClusterStore, "spec", "source", "spec.source", id="store-spec"),
        pytest.param(store_json, store_v1.ClusterStore, "status", "stacks", "status.stacks", id="store-status"),
    ],
)
def test_unknown_fields_are_refused_with_their_path(
    make: Any, model: type[ApiModel], section: str, key: str, expected: str
) -> None:
    raw = make(stack_v2 if model in (stack_v1.ClusterStack, stack_v2.ClusterStack) else store_v2)
    raw.setdefault(section, {})[key] = "x"
    with pytest.raises(ValidationError) as caught:
        model.from_json(raw)
    assert from_pydantic(caught.value) == [FieldError(expected, "unknown field")]


def test_unknown_fields_deep_inside_are_refused_with_their_path() -> None:
    raw = store_json(store_v2, sources=[{"image": "r.io/java"}, {"image": "r.io/go", "tag": "x"}])
    raw["status"] = {"buildpacks": [{"id": "a", "stacks": [{"id": "s", "mixin": []}]}]}
    with pytest.raises(ValidationError) as caught:
        store_v2.ClusterStore.from_json(raw)
    assert sorted(from_pydantic(caught.value), key=str) == [
        FieldError("spec.sources[1].tag", "unknown field"),
        FieldError("status.buildpacks[0].stacks[0].mixin", "unknown field"),
    ]


def test_status_types_the_controller_writes_require_their_ids() -> None:
    raw = store_json(store_v2)
    raw["status"] = {"buildpacks": [{"version": "1"}]}
    with pytest.raises(ValidationError) as caught:
        store_v2.ClusterStore.from_json(raw)
    assert from_pydantic(caught.value) == [FieldError("status.buildpacks[0].id", "missing field(s)")]


# -- image references ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag", "image"),
    [
        ("ubuntu", True, True),
        ("ubuntu:bionic", True, True),
        ("library/ubuntu:18.04", True, True),
        ("registry.example.com/stacks/run:base", True, True),
        ("registry.example.com/a/b/c", True, True),
        ("localhost:5000/app", True, True),
        ("localhost:5000/app:v1", True, True),
        ("127.0.0.1:5000/app", True, True),
        ("my_registry.local/app", True, True),
        ("[::1]:5000/app:x", True, True),
        ("localhost/app", True, True),  # no dot or port: `localhost` is a Docker Hub namespace
        (f"r.io/app@{DIGEST}", False, True),
        (f"r.io/app:v1@{DIGEST}", False, True),
        (f"localhost:5000/app@{DIGEST}", False, True),
        ("", False, False),
        ("a", False, False),  # repositories have at least two characters
        ("r.io/a", False, False),
        ("R.io/app", True, True),  # the registry host is case-insensitive
        ("r.io/App", False, False),
        ("r.io/app:", False, False),
        ("r.io/app:" + "x" * 129, False, False),
        ("r.io/app:t@g", False, False),
        ("r.io/app@sha256:abc", False, False),
        (f"r.io/app@{DIGEST}@{DIGEST}", False, False),
        (f"r.io/app@sha512:{'0' * 64}", False, False),
        ("r.io/app:v1:v2", False, False),
        ("r.io/app with space", False, False),
        ("r.io:port/app", False, False),
        ("https://r.io/app", False, False),
        ("r.io//app", False, False),
        ("r.io/app/", False, False),
        ("r.io:/app", False, False),
    ],
)
def test_image_references(value: str, tag: bool, image: bool) -> None:
    assert is_tag_reference(value) is tag
    assert is_image_reference(value) is image
