"""Build in both versions: defaulting; every validation rule by table (path and message); the fields only the
controller may set; the cosign key's namespace; the immutable spec (status updates included); lossless JSON round
trips, status included; unknown fields refused."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kpack_core.apis.base import ApiModel
from kpack_core.apis.core import CONTROLLER_USERNAME
from kpack_core.apis.crdgen import structural_schema
from kpack_core.apis.errors import FieldError, from_pydantic
from kpack_core.apis.kinds import REGISTRY
from kpack_core.apis.v1alpha1 import build as build_v1
from kpack_core.apis.v1alpha2 import build as build_v2
from kpack_core.apis.v1alpha2.image import CosignKeyRef
from tests.model_strategies import for_model

JSON = dict[str, Any]
BUILDS = [pytest.param(build_v1, id="v1alpha1"), pytest.param(build_v2, id="v1alpha2")]
DIGEST = "sha256:" + "d" * 64


def _version(module: ModuleType) -> str:
    return module.__name__.split(".")[-2]


def build_json(module: ModuleType, **spec: Any) -> JSON:
    """A valid, defaulted Build of `module`'s version as the Image controller makes it, with `spec` fields replaced
    (None removes one)."""
    body: JSON = {
        "tags": ["registry.example.com/my-app", "registry.example.com/my-app:b1.20211005.142501"],
        "builder": {"image": f"registry.example.com/my-builder@{DIGEST}"},
        "serviceAccountName" if module is build_v2 else "serviceAccount": "builder",
        "source": {"git": {"url": "https://github.com/example/my-app", "revision": "a" * 40}},
        "env": [{"name": "BP_JAVA_VERSION", "value": "17"}],
    }
    body.update(spec)
    return {
        "apiVersion": f"kpack.io/{_version(module)}",
        "kind": "Build",
        "metadata": {"name": "my-app-build-1", "namespace": "default", "labels": {"image.kpack.io/buildNumber": "1"}},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def errors_of(module: ModuleType, obj: Any, old: Any = None, **options: Any) -> list[tuple[str, str]]:
    return sorted((e.path, e.message) for e in module.validate(obj, old, **options))


BUILD_STATUS: JSON = {
    "observedGeneration": 1,
    "conditions": [{"type": "Succeeded", "status": "True", "lastTransitionTime": "2021-10-05T14:30:00Z"}],
    "buildMetadata": [{"id": "paketo-buildpacks/java", "version": "5.0.0", "homepage": "https://paketo.io"}],
    "stack": {"runImage": f"registry.example.com/stacks/run@{DIGEST}", "id": "io.buildpacks.stacks.bionic"},
    "latestImage": f"registry.example.com/my-app@{DIGEST}",
    "podName": "my-app-build-1-build-pod",
    "stepStates": [{"terminated": {"exitCode": 0, "reason": "Completed"}}, {"running": {}}],
    "stepsCompleted": ["prepare", "detect"],
}


# -- defaulting ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "field"), [(build_v1, "serviceAccount"), (build_v2, "serviceAccountName")], ids=["v1", "v2"]
)
@pytest.mark.parametrize("storage_class", [False, True])
def test_defaults(module: ModuleType, field: str, storage_class: bool) -> None:
    build = module.Build.from_json({"spec": {}})
    # Through the kind's VersionApi, as the webhook calls it: the option is given, a Build does not use it.
    REGISTRY["Build"].versions[module.__name__.split(".")[-2]].set_defaults(
        build, has_default_storage_class=storage_class
    )
    assert build.to_json() == {"spec": {field: "default"}}
    given = module.Build.from_json({"spec": {field: "sa"}})
    module.set_defaults(given)
    assert given.to_json() == {"spec": {field: "sa"}}
    assert module.service_account_name(given) == "sa"
    assert module.service_account_name(module.Build.from_json({"spec": {}})) == "default"


# -- validation ----------------------------------------------------------------------------------------------------

SHARED_CASES = [
    pytest.param({}, [], id="valid"),
    pytest.param({"tags": None}, [("spec.tags", "missing field(s)")], id="tags-missing"),
    pytest.param({"tags": []}, [("spec.tags", "missing field(s)")], id="tags-empty"),
    pytest.param(
        {"tags": ["r.io/a", f"r.io/a@{DIGEST}", "r.io/A"]},
        [("spec.tags[1]", f"invalid value: r.io/a@{DIGEST}"), ("spec.tags[2]", "invalid value: r.io/A")],
        id="tags-invalid",
    ),
    pytest.param({"builder": None}, [("spec.builder.image", "missing field(s)")], id="builder-missing"),
    pytest.param({"builder": {"image": "r.io/B"}}, [("spec.builder.image", "invalid value: r.io/B")], id="builder"),
    pytest.param({"builder": {"image": "r.io/b:1"}}, [], id="builder-by-tag"),
    pytest.param(
        {"builder": {"image": "r.io/b", "imagePullSecrets": [{}]}},
        [("spec.builder.imagePullSecrets[0].name", "missing field(s)")],
        id="builder-pull-secret",
    ),
    pytest.param(
        {"source": None},
        [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got neither")],
        id="source",
    ),
    pytest.param({"source": {"registry": {"image": "r.io/src"}, "subPath": "app"}}, [], id="registry-source"),
    pytest.param({"lastBuild": {"image": "", "stackId": "s"}}, [], id="last-build-empty-image"),
    pytest.param(
        {"lastBuild": {"image": "r.io/not an image"}},
        [("spec.lastBuild.image", "invalid value: r.io/not an image")],
        id="last-build-image",
    ),
    pytest.param(
        {"notary": {"v1": {"url": "u"}}}, [("spec.notary.v1.secretRef.name", "missing field(s)")], id="notary"
    ),
    pytest.param(
        {"tags": [], "builder": {}, "source": {"git": {}}},
        [
            ("spec.builder.image", "missing field(s)"),
            ("spec.source.git.revision", "missing field(s)"),
            ("spec.source.git.url", "missing field(s)"),
            ("spec.tags", "missing field(s)"),
        ],
        id="all-accumulated",
    ),
]


@pytest.mark.parametrize("module", BUILDS)
@pytest.mark.parametrize(("spec", "expected"), SHARED_CASES)
def test_shared_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    assert errors_of(module, module.Build.from_json(build_json(module, **spec))) == expected


V2_CASES = [
    pytest.param(
        {"cache": {"volume": {"persistentVolumeClaimName": "c"}, "registry": {"tag": "r.io/c"}}},
        [("spec.cache.volume, spec.cache.registry", "only one type of cache can be specified")],
        id="two-caches",
    ),
    pytest.param({"cache": {}}, [], id="no-cache"),
    pytest.param({"cache": {"volume": {"persistentVolumeClaimName": "my-app-cache"}}}, [], id="volume"),
    pytest.param({"cache": {"registry": {"tag": "r.io/c"}}}, [], id="registry"),
    pytest.param({"cache": {"registry": {"tag": ""}}}, [("spec.cache.registry.tag", "missing field(s)")]),
    pytest.param(
        {"services": [{"name": "db", "kind": "Secret"}, {"name": "BAD", "kind": "Secret"}]},
        [("spec.services[1].name", "invalid value: BAD")],
        id="services",
    ),
    pytest.param(
        {"services": [{"name": "db", "kind": "Secret", "namespace": "kpack"}]},
        [("spec.services[0].namespace", "invalid value: kpack")],
        id="service-other-namespace",
    ),
    pytest.param(
        {"cnbBindings": [{"name": "b", "metadataRef": {}}]},
        [("spec.cnbBindings[0].metadataRef.name", "missing field(s)")],
        id="cnb-bindings",
    ),
    pytest.param(
        {"lastBuild": {"image": f"r.io/a@{DIGEST}", "cache": {"image": "r.io/C"}, "stackId": "s"}},
        [("spec.lastBuild.cache.image", "invalid value: r.io/C")],
        id="last-build-cache-image",
    ),
    pytest.param(
        {"nodeSelector": {"kubernetes.io/os": "windows"}},
        [("spec.nodeSelector", 'invalid key name "kubernetes.io/os"')],
        id="node-selector-os",
    ),
    pytest.param(
        {"cosign": {"keyRef": {"name": "k", "namespace": "team-b"}, "annotations": [{"value": "v"}]}},
        [
            ("spec.cosign.annotations[0].name", "missing field(s)"),
            ("spec.cosign.keyRef.namespace", "invalid value: team-b"),
        ],
        id="cosign",
    ),
    pytest.param(
        {"cosign": {"enabled": True, "keyRef": {"name": "k", "namespace": "default"}}}, [], id="cosign-own-key"
    ),
    pytest.param(
        {
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": {},
            "runtimeClassName": "r",
            "schedulerName": "s",
            "projectDescriptorPath": "p.toml",
            "defaultProcess": "web",
            "resources": {"requests": {"memory": "1Gi"}},
        },
        [],
        id="pod-fields",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), V2_CASES)
def test_v2_rules(spec: JSON, expected: list[tuple[str, str]]) -> None:
    assert errors_of(build_v2, build_v2.Build.from_json(build_json(build_v2, **spec))) == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"notary": {"v1": {"url": "u", "secretRef": {"name": "s"}}}}, "spec.notary", id="notary"),
        pytest.param({"cnbBindings": [{"name": "b", "metadataRef": {"name": "m"}}]}, "spec.cnbBindings", id="cnb"),
    ],
)
def test_v2_controller_only_fields(spec: JSON, field: str) -> None:
    build = build_v2.Build.from_json(build_json(build_v2, **spec))
    (error,) = build_v2.validate(build, username="system:serviceaccount:default:default")
    assert error.path == field
    assert error.message.startswith("use of this field has been deprecated in v1alpha2")
    assert build_v2.validate(build, username=CONTROLLER_USERNAME) == []
    assert build_v2.validate(build) == []


def test_v1_rules() -> None:
    build = build_v1.Build.from_json(
        build_json(
            build_v1,
            cacheName="my-app-cache",
            bindings=[{"name": "b", "metadataRef": {"name": "m"}}, {"name": "b", "metadataRef": {"name": "n"}}],
            notary={"v1": {"url": "https://notary", "secretRef": {"name": "s"}}},
            lastBuild={"image": f"r.io/a@{DIGEST}", "stackId": "s"},
        )
    )
    assert errors_of(build_v1, build) == [
        ("spec.bindings[0].name, spec.bindings[1].name", 'duplicate binding name "b"')
    ]


def test_cosign_key_ref() -> None:
    build = build_v2.Build.from_json(build_json(build_v2, cosign={"keyRef": {"name": "k"}}))
    assert build_v2.cosign_key_ref(build) == CosignKeyRef(name="k", namespace="default")
    off = build_v2.Build.from_json(build_json(build_v2, cosign={"enabled": False, "keyRef": {"name": "k"}}))
    assert build_v2.cosign_key_ref(off) is None


# -- the immutable spec --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDS)
def test_spec_is_immutable_and_the_details_list_each_change(module: ModuleType) -> None:
    old = module.Build.from_json(build_json(module))
    new = module.Build.from_json(
        build_json(module, tags=["registry.example.com/my-app"], env=None, source={"blob": {"url": "https://b"}})
    )
    (error,) = module.validate(new, old)
    assert (error.path, error.message) == ("spec", "Immutable fields changed (-old +new)")
    assert error.details.splitlines() == [
        '-spec.env: [{"name":"BP_JAVA_VERSION","value":"17"}]',
        '+spec.source.blob: {"url":"https://b"}',
        '-spec.source.git: {"url":"https://github.com/example/my-app","revision":"' + "a" * 40 + '"}',
        '-spec.tags: ["registry.example.com/my-app","registry.example.com/my-app:b1.20211005.142501"]',
        '+spec.tags: ["registry.example.com/my-app"]',
    ]


@pytest.mark.parametrize("module", BUILDS)
def test_status_updates_keep_the_spec(module: ModuleType) -> None:
    """The validating webhook also sees `/status` updates; an unchanged spec passes whatever the status does."""
    old = module.Build.from_json(build_json(module))
    raw = build_json(module)
    raw["status"] = copy.deepcopy(BUILD_STATUS)
    raw["metadata"]["annotations"] = {"x": "y"}
    assert module.validate(module.Build.from_json(raw), old) == []


@pytest.mark.parametrize("module", BUILDS)
@pytest.mark.parametrize(
    ("old_spec", "new_spec"),
    [
        pytest.param({"resources": {}}, {}, id="empty-resources-is-absent"),
        pytest.param({"env": []}, {"env": None}, id="empty-list-is-absent"),
        pytest.param({"lastBuild": {"image": "", "stackId": "s"}}, {"lastBuild": {"stackId": "s"}}, id="empty-string"),
    ],
)
def test_empty_values_compare_as_absent(module: ModuleType, old_spec: JSON, new_spec: JSON) -> None:
    """As Go's `omitempty` writes them: a client that drops empty members does not change the spec."""
    old = module.Build.from_json(build_json(module, **old_spec))
    new = module.Build.from_json(build_json(module, **new_spec))
    assert module.validate(new, old) == []


def test_v2_immutability_covers_every_field() -> None:
    old = build_v2.Build.from_json(build_json(build_v2, nodeSelector={"disk": "ssd"}))
    new = build_v2.Build.from_json(build_json(build_v2, nodeSelector={"disk": "hdd"}))
    (error,) = build_v2.validate(new, old)
    assert error.details.splitlines() == ['-spec.nodeSelector.disk: "ssd"', '+spec.nodeSelector.disk: "hdd"']


# -- JSON -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", BUILDS)
def test_round_trip_with_status(module: ModuleType) -> None:
    raw = build_json(module, lastBuild={"image": f"r.io/a@{DIGEST}", "stackId": "s"})
    raw["status"] = copy.deepcopy(BUILD_STATUS)
    if module is build_v2:
        raw["status"]["latestCacheImage"] = f"registry.example.com/my-app-cache@{DIGEST}"
    assert module.Build.from_json(raw).to_json() == raw


def test_v2_round_trip_of_every_field() -> None:
    raw = build_json(
        build_v2,
        builder={"image": "r.io/b", "imagePullSecrets": [{"name": "p"}]},
        cache={"registry": {"tag": "r.io/cache"}},
        services=[{"name": "db", "kind": "Secret", "apiVersion": "v1"}],
        cnbBindings=[{"name": "b", "metadataRef": {"name": "m"}}],
        projectDescriptorPath="p.toml",
        resources={"limits": {"memory": "2Gi"}},
        lastBuild={"image": f"r.io/a@{DIGEST}", "cache": {"image": f"r.io/cache@{DIGEST}"}, "stackId": "s"},
        notary={"v1": {"url": "https://n", "secretRef": {"name": "n"}}},
        cosign={"annotations": [{"name": "a", "value": "b"}]},
        defaultProcess="web",
        tolerations=[{"key": "k", "operator": "Exists"}],
        nodeSelector={"disk": "ssd"},
        affinity={"nodeAffinity": {}},
        runtimeClassName="gvisor",
        schedulerName="sched",
    )
    build = build_v2.Build.from_json(raw)
    assert build.to_json() == raw
    assert build_v2.validate(build, username=CONTROLLER_USERNAME) == []


@pytest.mark.parametrize("model", [build_v1.Build, build_v2.Build])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_object_round_trips(model: type[ApiModel], data: st.DataObject) -> None:
    raw = data.draw(for_model(model))
    assert model.from_json(raw).to_json() == raw


@pytest.mark.parametrize(
    ("module", "section", "key", "expected"),
    [
        pytest.param(build_v1, "spec", "cache", "spec.cache", id="v2-field-in-v1"),
        pytest.param(build_v2, "spec", "cacheName", "spec.cacheName", id="v1-field-in-v2"),
        pytest.param(build_v1, "status", "latestCacheImage", "status.latestCacheImage", id="v2-status-in-v1"),
        pytest.param(build_v2, "spec", "serviceBindings", "spec.serviceBindings", id="image-spelling"),
    ],
)
def test_unknown_fields_are_refused_with_their_path(module: ModuleType, section: str, key: str, expected: str) -> None:
    raw = build_json(module)
    raw.setdefault(section, {})[key] = {}
    with pytest.raises(ValidationError) as caught:
        module.Build.from_json(raw)
    assert from_pydantic(caught.value) == [FieldError(expected, "unknown field")]


@pytest.mark.parametrize("model", [build_v1.Build, build_v2.Build])
def test_models_make_structural_crd_schemas(model: Any) -> None:
    schema = structural_schema(model)
    assert schema["properties"]["spec"]["properties"]["tags"]["type"] == "array"
    assert schema["properties"]["status"]["properties"]["stepStates"]["items"]["x-kubernetes-preserve-unknown-fields"]


def test_status_updates_of_builds_with_controller_only_fields_pass() -> None:
    build = build_v2.Build.from_json(build_json(build_v2, notary={"v1": {"url": "u", "secretRef": {"name": "s"}}}))
    assert build_v2.validate(build, build, username="alice") == []
