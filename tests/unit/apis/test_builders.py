"""Builder and ClusterBuilder in both versions: the seed manifest parses, defaults and validates clean; every
defaulting and validation rule by table (path and message); the two service-account spellings; no immutable
fields; lossless JSON round trips, status included; unknown fields refused with their path."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kpack_core.apis import buildpacks
from kpack_core.apis.base import ApiModel
from kpack_core.apis.crdgen import structural_schema
from kpack_core.apis.errors import FieldError, from_pydantic
from kpack_core.apis.v1alpha1 import builder as builder_v1
from kpack_core.apis.v1alpha1 import clusterbuilder as cluster_builder_v1
from kpack_core.apis.v1alpha1 import clusterstack as cluster_stack_v1
from kpack_core.apis.v1alpha1 import clusterstore as cluster_store_v1
from kpack_core.apis.v1alpha2 import builder as builder_v2
from kpack_core.apis.v1alpha2 import clusterbuilder as cluster_builder_v2
from kpack_core.apis.v1alpha2 import clusterstack as cluster_stack_v2
from kpack_core.apis.v1alpha2 import clusterstore as cluster_store_v2
from tests.model_strategies import for_model

JSON = dict[str, Any]

# Verbatim copy of the seed manifest 01-builder.yaml (kept here so the unit tests need nothing outside the repo).
SEED_BUILDER = """\
apiVersion: kpack.io/v1alpha2
kind: Builder
metadata:
  name: my-builder
  namespace: default
spec:
  serviceAccount: builder
  tag: registry.example.com/my-builder
  stack:
    name: base
    kind: ClusterStack
  store:
    name: default
    kind: ClusterStore
  order:
  - group:
    - id: paketo-buildpacks/java
"""

BUILDERS = [pytest.param(builder_v1, id="v1alpha1"), pytest.param(builder_v2, id="v1alpha2")]
CLUSTER_BUILDERS = [pytest.param(cluster_builder_v1, id="v1alpha1"), pytest.param(cluster_builder_v2, id="v1alpha2")]


def _version(module: ModuleType) -> str:
    return module.__name__.split(".")[-2]


def builder_json(module: ModuleType, **spec: Any) -> JSON:
    """A valid, fully defaulted Builder of `module`'s version, with `spec` fields replaced (None removes one)."""
    body: JSON = {
        "tag": "registry.example.com/my-builder",
        "stack": {"name": "base", "kind": "ClusterStack"},
        "store": {"name": "default", "kind": "ClusterStore"},
        "order": [{"group": [{"id": "paketo-buildpacks/java"}]}],
        "serviceAccount": "builder",
    }
    body.update(spec)
    return {
        "apiVersion": f"kpack.io/{_version(module)}",
        "kind": "Builder",
        "metadata": {"name": "my-builder", "namespace": "default"},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def cluster_builder_json(module: ModuleType, **spec: Any) -> JSON:
    """A valid ClusterBuilder of `module`'s version, with `spec` fields replaced (None removes one)."""
    body: JSON = {
        "tag": "registry.example.com/cluster-builder",
        "stack": {"name": "base", "kind": "ClusterStack"},
        "store": {"name": "default", "kind": "ClusterStore"},
        "order": [{"group": [{"id": "paketo-buildpacks/java"}]}],
        "serviceAccountRef": {"name": "builder", "namespace": "kpack"},
    }
    body.update(spec)
    return {
        "apiVersion": f"kpack.io/{_version(module)}",
        "kind": "ClusterBuilder",
        "metadata": {"name": "cluster-builder"},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def errors_of(module: ModuleType, obj: Any, old: Any = None) -> list[tuple[str, str]]:
    return sorted((e.path, e.message) for e in module.validate(obj, old))


BUILDER_STATUS: JSON = {
    "observedGeneration": 3,
    "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2021-10-05T14:25:01Z"},
        {"type": "Other", "status": "False", "severity": "Warning", "reason": "Why", "message": "what"},
    ],
    "builderMetadata": [
        {"id": "paketo-buildpacks/java", "version": "5.0.0", "homepage": "https://paketo.io"},
        {"id": "paketo-buildpacks/jvm", "version": "1.2.3"},
    ],
    "order": [{"group": [{"id": "paketo-buildpacks/java", "version": "5.0.0"}, {"id": "x", "optional": True}]}],
    "stack": {"runImage": "registry.example.com/stacks/run@sha256:" + "a" * 64, "id": "io.buildpacks.stacks.bionic"},
    "latestImage": "registry.example.com/my-builder@sha256:" + "b" * 64,
    "observedStackGeneration": 1,
    "observedStoreGeneration": 2,
    "os": "linux",
}


# -- the seed manifest ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDERS)
def test_seed_builder_parses_defaults_and_validates_clean(module: ModuleType) -> None:
    raw = yaml.safe_load(SEED_BUILDER)
    raw["apiVersion"] = f"kpack.io/{_version(module)}"
    builder = module.Builder.from_json(raw)
    assert builder.to_json() == raw
    module.set_defaults(builder)
    assert builder.to_json() == raw  # everything a default would fill is already given
    assert module.validate(builder) == []
    assert module.service_account_name(builder) == "builder"


# -- defaulting ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDERS)
@pytest.mark.parametrize(
    ("spec", "defaulted"),
    [
        pytest.param(
            {"tag": "r.io/b"},
            {
                "tag": "r.io/b",
                "serviceAccount": "default",
                "stack": {"kind": "ClusterStack"},
                "store": {"kind": "ClusterStore"},
            },
            id="nothing-given",
        ),
        pytest.param(
            {"stack": {"name": "s"}, "store": {"name": "t"}, "serviceAccount": "sa"},
            {
                "stack": {"name": "s", "kind": "ClusterStack"},
                "store": {"name": "t", "kind": "ClusterStore"},
                "serviceAccount": "sa",
            },
            id="kinds-filled-names-kept",
        ),
        pytest.param(
            {"stack": {"name": "s", "kind": "Other"}, "store": {"name": "t", "kind": "Other"}, "serviceAccount": "sa"},
            {"stack": {"name": "s", "kind": "Other"}, "store": {"name": "t", "kind": "Other"}, "serviceAccount": "sa"},
            id="given-kinds-kept",
        ),
        pytest.param(
            {"stack": {"name": "s", "kind": ""}, "store": {"name": "t", "kind": ""}, "serviceAccount": ""},
            {
                "stack": {"name": "s", "kind": "ClusterStack"},
                "store": {"name": "t", "kind": "ClusterStore"},
                "serviceAccount": "default",
            },
            id="empty-counts-as-absent",
        ),
        pytest.param(
            {
                "stack": {"name": "s", "kind": "ClusterStack"},
                "store": {"name": "t", "kind": "ClusterStore"},
                "serviceAccountName": "sa",
            },
            {
                "stack": {"name": "s", "kind": "ClusterStack"},
                "store": {"name": "t", "kind": "ClusterStore"},
                "serviceAccountName": "sa",
            },
            id="service-account-name-spelling-not-doubled",
        ),
    ],
)
def test_builder_defaults(module: ModuleType, spec: JSON, defaulted: JSON) -> None:
    builder = module.Builder.from_json({"spec": spec})
    module.set_defaults(builder)
    assert builder.to_json() == {"spec": defaulted}  # defaulted fields count as set: they reach the JSON
    module.set_defaults(builder)
    assert builder.to_json() == {"spec": defaulted}  # idempotent


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
def test_cluster_builder_defaults_the_reference_kinds_only(module: ModuleType) -> None:
    builder = module.ClusterBuilder.from_json({"spec": {"tag": "r.io/b", "stack": {"name": "s"}}})
    module.set_defaults(builder)
    assert builder.to_json() == {
        "spec": {"tag": "r.io/b", "stack": {"name": "s", "kind": "ClusterStack"}, "store": {"kind": "ClusterStore"}}
    }


# -- validation ----------------------------------------------------------------------------------------------------

# Rules shared by Builder and ClusterBuilder (the BuilderSpec part): spec fields replaced → errors.
BUILDER_SPEC_CASES = [
    pytest.param({"tag": None}, [("spec.tag", "missing field(s)")], id="tag-missing"),
    pytest.param({"tag": ""}, [("spec.tag", "missing field(s)")], id="tag-empty"),
    pytest.param({"tag": "Registry.io/UPPER"}, [("spec.tag", "invalid value: Registry.io/UPPER")], id="tag-upper"),
    pytest.param(
        {"tag": "r.io/b@sha256:" + "a" * 64},
        [("spec.tag", "invalid value: r.io/b@sha256:" + "a" * 64)],
        id="tag-is-a-digest",
    ),
    pytest.param({"tag": "r.io/b:bad/tag:x"}, [("spec.tag", "invalid value: r.io/b:bad/tag:x")], id="tag-garbled"),
    pytest.param({"tag": "localhost:5000/builder"}, [], id="tag-registry-with-port"),
    pytest.param({"tag": "r.io/team/b:1.0"}, [], id="tag-explicit"),
    pytest.param({"tag": "builder"}, [], id="tag-docker-hub-short"),
    pytest.param({"stack": {"kind": "ClusterStack"}}, [("spec.stack.name", "missing field(s)")], id="stack-name"),
    pytest.param(
        {"stack": {"name": "base", "kind": "Stack"}}, [("spec.stack.kind", "invalid value: Stack")], id="stack-kind"
    ),
    pytest.param({"store": {"kind": "ClusterStore"}}, [("spec.store.name", "missing field(s)")], id="store-name"),
    pytest.param(
        {"store": {"name": "default", "kind": "Store"}}, [("spec.store.kind", "invalid value: Store")], id="store-kind"
    ),
    pytest.param(
        {"stack": {"kind": "ClusterStore"}},
        [("spec.stack.kind", "invalid value: ClusterStore"), ("spec.stack.name", "missing field(s)")],
        id="stack-name-and-kind-both-reported",
    ),
    pytest.param(
        {"order": [{"group": [{"id": "a"}, {"id": ""}]}, {"group": [{"id": "", "version": "1"}]}]},
        [("spec.order[0].group[1].id", "missing field(s)"), ("spec.order[1].group[0].id", "missing field(s)")],
        id="order-ids",
    ),
    pytest.param({"order": None}, [], id="order-absent"),
    pytest.param({"order": [{"group": [{"id": "a", "version": "1", "optional": True}]}, {}]}, [], id="order-full"),
    pytest.param(
        {"tag": "", "stack": {"name": "base", "kind": "X"}, "store": {"kind": "ClusterStore"}},
        [
            ("spec.stack.kind", "invalid value: X"),
            ("spec.store.name", "missing field(s)"),
            ("spec.tag", "missing field(s)"),
        ],
        id="all-accumulated",
    ),
]


@pytest.mark.parametrize("module", BUILDERS)
@pytest.mark.parametrize(("spec", "expected"), BUILDER_SPEC_CASES)
def test_builder_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    assert errors_of(module, module.Builder.from_json(builder_json(module, **spec))) == expected


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
@pytest.mark.parametrize(("spec", "expected"), BUILDER_SPEC_CASES)
def test_cluster_builder_spec_rules_have_the_spec_prefix(
    module: ModuleType, spec: JSON, expected: list[tuple[str, str]]
) -> None:
    assert errors_of(module, module.ClusterBuilder.from_json(cluster_builder_json(module, **spec))) == expected


@pytest.mark.parametrize("module", BUILDERS)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"stack": None, "store": None, "serviceAccount": None},
            [
                ("spec.serviceAccount", "missing field(s)"),
                ("spec.stack.kind", "missing field(s)"),
                ("spec.stack.name", "missing field(s)"),
                ("spec.store.kind", "missing field(s)"),
                ("spec.store.name", "missing field(s)"),
            ],
            id="nothing",
        ),
        pytest.param({"stack": {"name": "base"}}, [("spec.stack.kind", "missing field(s)")], id="stack-kind"),
        pytest.param({"serviceAccount": ""}, [("spec.serviceAccount", "missing field(s)")], id="service-account"),
    ],
)
def test_builder_rules_without_defaults(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    """What defaulting would fill is reported missing when validation runs on an object that was not defaulted."""
    builder = module.Builder.from_json(builder_json(module, **spec))
    assert errors_of(module, builder) == expected
    module.set_defaults(builder)
    assert [path for path, _ in errors_of(module, builder)] == [path for path, _ in expected if path.endswith(".name")]


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param(
            None,
            [
                ("spec.serviceAccountRef.name", "missing field(s)"),
                ("spec.serviceAccountRef.namespace", "missing field(s)"),
            ],
            id="absent",
        ),
        pytest.param(
            {},
            [
                ("spec.serviceAccountRef.name", "missing field(s)"),
                ("spec.serviceAccountRef.namespace", "missing field(s)"),
            ],
            id="empty",
        ),
        pytest.param({"namespace": "kpack"}, [("spec.serviceAccountRef.name", "missing field(s)")], id="name"),
        pytest.param({"name": "sa"}, [("spec.serviceAccountRef.namespace", "missing field(s)")], id="namespace"),
        pytest.param({"name": "sa", "namespace": "kpack", "kind": "ServiceAccount"}, [], id="complete"),
    ],
)
def test_cluster_builder_service_account_ref(
    module: ModuleType, ref: JSON | None, expected: list[tuple[str, str]]
) -> None:
    builder = module.ClusterBuilder.from_json(cluster_builder_json(module, serviceAccountRef=ref))
    assert errors_of(module, builder) == expected


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
def test_cluster_builder_reports_service_account_and_spec_errors_together(module: ModuleType) -> None:
    """kpack stopped at the first service account error; every error is reported here."""
    builder = module.ClusterBuilder.from_json(cluster_builder_json(module, serviceAccountRef={}, tag="", stack={}))
    assert errors_of(module, builder) == [
        ("spec.serviceAccountRef.name", "missing field(s)"),
        ("spec.serviceAccountRef.namespace", "missing field(s)"),
        ("spec.stack.kind", "missing field(s)"),
        ("spec.stack.name", "missing field(s)"),
        ("spec.tag", "missing field(s)"),
    ]


def test_wrong_kind_names_the_kind_wanted() -> None:
    builder = builder_v2.Builder.from_json(builder_json(builder_v2, store={"name": "s", "kind": "ClusterStack"}))
    assert builder_v2.validate(builder) == [
        FieldError("spec.store.kind", "invalid value: ClusterStack", "must be ClusterStore")
    ]


# -- the two spellings of the service account -----------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDERS)
@pytest.mark.parametrize(
    ("given", "effective"),
    [
        pytest.param({"serviceAccount": "a"}, "a", id="serviceAccount"),
        pytest.param({"serviceAccount": None, "serviceAccountName": "b"}, "b", id="serviceAccountName"),
        pytest.param({"serviceAccount": "c", "serviceAccountName": "c"}, "c", id="both-equal"),
        pytest.param({"serviceAccount": "", "serviceAccountName": "d"}, "d", id="empty-and-name"),
        pytest.param({"serviceAccount": None}, "default", id="neither"),
    ],
)
def test_either_spelling_names_the_service_account(module: ModuleType, given: JSON, effective: str) -> None:
    builder = module.Builder.from_json(builder_json(module, **given))
    assert module.service_account_name(builder) == effective
    module.set_defaults(builder)
    assert module.validate(builder) == []
    assert module.service_account_name(builder) == effective


@pytest.mark.parametrize("module", BUILDERS)
def test_two_different_service_accounts_are_one_error_naming_both_fields(module: ModuleType) -> None:
    builder = module.Builder.from_json(builder_json(module, serviceAccount="a", serviceAccountName="b"))
    module.set_defaults(builder)
    (error,) = module.validate(builder)
    assert error.path == "spec.serviceAccount, spec.serviceAccountName"
    assert error.message == "expected exactly one, got both"
    assert '"a"' in error.details
    assert '"b"' in error.details
    assert str(error).startswith("expected exactly one, got both: spec.serviceAccount, spec.serviceAccountName\n")


# -- updates: nothing is immutable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDERS)
def test_builder_fields_are_all_mutable(module: ModuleType) -> None:
    old = module.Builder.from_json(builder_json(module))
    new = module.Builder.from_json(
        builder_json(
            module,
            tag="registry.example.com/other:2",
            stack={"name": "full", "kind": "ClusterStack"},
            store={"name": "other", "kind": "ClusterStore"},
            order=[{"group": [{"id": "paketo-buildpacks/nodejs", "version": "1.0.0"}]}],
            serviceAccount=None,
            serviceAccountName="pusher",
        )
    )
    assert module.validate(new, old) == []
    assert module.validate(old, new) == []


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
def test_cluster_builder_fields_are_all_mutable(module: ModuleType) -> None:
    old = module.ClusterBuilder.from_json(cluster_builder_json(module))
    new = module.ClusterBuilder.from_json(
        cluster_builder_json(
            module,
            tag="registry.example.com/other:2",
            stack={"name": "full", "kind": "ClusterStack"},
            order=None,
            serviceAccountRef={"name": "other", "namespace": "elsewhere"},
        )
    )
    assert module.validate(new, old) == []


@pytest.mark.parametrize("module", BUILDERS)
def test_update_reports_the_new_objects_errors_only(module: ModuleType) -> None:
    old = module.Builder.from_json(builder_json(module, tag=""))
    new = module.Builder.from_json(builder_json(module, stack={"name": "", "kind": "ClusterStack"}))
    assert errors_of(module, new, old) == [("spec.stack.name", "missing field(s)")]


# -- JSON -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDERS)
def test_builder_round_trip_with_status(module: ModuleType) -> None:
    raw = builder_json(module, serviceAccountName="builder")
    raw["metadata"].update({"generation": 3, "labels": {"a": "b"}})
    raw["status"] = copy.deepcopy(BUILDER_STATUS)
    assert module.Builder.from_json(raw).to_json() == raw


@pytest.mark.parametrize("module", CLUSTER_BUILDERS)
def test_cluster_builder_round_trip_with_status(module: ModuleType) -> None:
    raw = cluster_builder_json(module)
    raw["status"] = copy.deepcopy(BUILDER_STATUS)
    assert module.ClusterBuilder.from_json(raw).to_json() == raw


def test_round_trip_keeps_null_condition_time() -> None:
    """kpack writes an unset lastTransitionTime as null; reading and writing keeps it."""
    raw = builder_json(builder_v2)
    raw["status"] = {"conditions": [{"type": "Ready", "status": "Unknown", "lastTransitionTime": None}]}
    assert builder_v2.Builder.from_json(raw).to_json() == raw


KIND_MODELS = [
    pytest.param(model, id=f"{model.__module__.split('.')[-2]}-{model.__name__}")
    for model in (
        builder_v1.Builder,
        builder_v2.Builder,
        cluster_builder_v1.ClusterBuilder,
        cluster_builder_v2.ClusterBuilder,
    )
]


@pytest.mark.parametrize("model", KIND_MODELS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_object_round_trips(model: type[ApiModel], data: st.DataObject) -> None:
    raw = data.draw(for_model(model))
    assert model.from_json(raw).to_json() == raw


@pytest.mark.parametrize(
    ("module", "kind", "patch", "expected"),
    [
        pytest.param(builder_v2, "Builder", ("spec", "serviceAccounts", "x"), "spec.serviceAccounts", id="spec"),
        pytest.param(builder_v1, "Builder", ("spec", "serviceAccountRef", {}), "spec.serviceAccountRef", id="v1-ref"),
        pytest.param(builder_v2, "Builder", ("status", "latestImages", "x"), "status.latestImages", id="status"),
        pytest.param(
            cluster_builder_v2,
            "ClusterBuilder",
            ("spec", "serviceAccount", "sa"),
            "spec.serviceAccount",
            id="cluster-builder-service-account",
        ),
        pytest.param(cluster_builder_v1, "ClusterBuilder", ("spec", "cosign", {}), "spec.cosign", id="v1-cluster"),
    ],
)
def test_unknown_fields_are_refused_with_their_path(
    module: ModuleType, kind: str, patch: tuple[str, str, Any], expected: str
) -> None:
    make = builder_json if kind == "Builder" else cluster_builder_json
    raw = make(module)
    section, key, value = patch
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ValidationError) as caught:
        getattr(module, kind).from_json(raw)
    assert from_pydantic(caught.value) == [FieldError(expected, "unknown field")]


def test_unknown_field_deep_in_the_order_is_refused() -> None:
    raw = builder_json(builder_v2, order=[{"group": [{"id": "a", "optinal": True}]}])
    with pytest.raises(ValidationError) as caught:
        builder_v2.Builder.from_json(raw)
    assert from_pydantic(caught.value) == [FieldError("spec.order[0].group[0].optinal", "unknown field")]


def test_wrong_types_are_invalid_values() -> None:
    raw = builder_json(builder_v2, tag=7, stack="base")
    with pytest.raises(ValidationError) as caught:
        builder_v2.Builder.from_json(raw)
    found = from_pydantic(caught.value)
    assert [e.path for e in found] == ["spec.tag", "spec.stack"]
    assert all(e.message.startswith("invalid value: ") for e in found)


def test_missing_spec_is_a_missing_field() -> None:
    with pytest.raises(ValidationError) as caught:
        builder_v2.Builder.from_json({"metadata": {"name": "b"}})
    assert from_pydantic(caught.value) == [FieldError("spec", "missing field(s)")]


# -- what every model of this family declares ---------------------------------------------------------------------

FAMILY_MODULES = [
    buildpacks,
    builder_v1,
    builder_v2,
    cluster_builder_v1,
    cluster_builder_v2,
    cluster_stack_v1,
    cluster_stack_v2,
    cluster_store_v1,
    cluster_store_v2,
]


def test_every_field_is_documented() -> None:
    """Field docstrings become CRD descriptions and `kubectl explain` text."""
    undocumented = [
        f"{model.__module__}.{model.__name__}.{name}"
        for module in FAMILY_MODULES
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, ApiModel) and model.__module__ == module.__name__
        for name in model.__annotations__
        if name in model.model_fields and not model.model_fields[name].description
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    "model",
    [
        *KIND_MODELS,
        cluster_stack_v1.ClusterStack,
        cluster_stack_v2.ClusterStack,
        cluster_store_v1.ClusterStore,
        cluster_store_v2.ClusterStore,
    ],
)
def test_models_make_structural_crd_schemas(model: Any) -> None:
    schema = structural_schema(model)
    assert schema["properties"]["spec"]["type"] == "object"
    assert schema["properties"]["status"]["type"] == "object"
