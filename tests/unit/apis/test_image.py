"""Image in both versions: every seed manifest parses, defaults and validates clean; defaulting and every validation
rule by table (path and message); our users' spellings and their conflicts; the cosign key's namespace; the
immutable tag and the growing cache; lossless JSON round trips, status included; unknown fields refused."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kpack_core.apis.base import ApiModel, ObjectReference
from kpack_core.apis.core import CONTROLLER_USERNAME
from kpack_core.apis.crdgen import structural_schema
from kpack_core.apis.errors import FieldError, from_pydantic
from kpack_core.apis.kinds import REGISTRY
from kpack_core.apis.v1alpha1 import image as image_v1
from kpack_core.apis.v1alpha2 import image as image_v2
from tests.model_strategies import for_model

JSON = dict[str, Any]
IMAGES = [pytest.param(image_v1, id="v1alpha1"), pytest.param(image_v2, id="v1alpha2")]
DIGEST = "sha256:" + "c" * 64

# Verbatim copies of the seed manifests that are Images (kept here so the unit tests need nothing outside the repo).
_REST = """\
  serviceAccount: builder
  builder:
    name: my-builder
    kind: Builder
  source:
    git:
      url: https://github.com/example/my-app
      revision: main
"""
_HEAD = """\
apiVersion: kpack.io/{version}
kind: Image
metadata:
  name: my-app
  namespace: default
spec:
  tag: registry.example.com/my-app
"""
SEEDS = {
    "10-image-v1alpha2": _HEAD.format(version="v1alpha2")
    + """\
  serviceAccount: builder
  builder:
    name: my-builder
    kind: Builder
  source:
    git:
      url: https://github.com/example/my-app
      revision: main
  build:
    env:
    - name: BP_JAVA_VERSION
      value: "17"
""",
    "11-image-cosign": _HEAD.format(version="v1alpha2")
    + """\
  cosign:
    enabled: true
    keyRef:
      name: cosign-key
      namespace: default
"""
    + _REST,
    "12-image-remote-cache": _HEAD.format(version="v1alpha2")
    + """\
  cache:
    registry:
      tag: registry.example.com/my-app-cache
"""
    + _REST,
    "13-image-service-binding": _HEAD.format(version="v1alpha2")
    + """\
  serviceBindings:
  - name: database
    kind: Secret
    apiVersion: v1
"""
    + _REST,
    "14-image-node-affinity": _HEAD.format(version="v1alpha2")
    + """\
  build:
    nodeSelector:
      kubernetes.io/arch: amd64
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
          - matchExpressions:
            - key: node-type
              operator: In
              values:
              - build
"""
    + _REST,
    "15-image-tolerations": _HEAD.format(version="v1alpha2")
    + """\
  build:
    tolerations:
    - key: build-workload
      operator: Equal
      value: "true"
      effect: NoSchedule
"""
    + _REST,
    "20-image-v1alpha1": "# Before migration: the same Image written against v1alpha1.\n"
    + _HEAD.format(version="v1alpha1")
    + _REST,
}


def _module(raw: JSON) -> ModuleType:
    return image_v2 if raw["apiVersion"] == "kpack.io/v1alpha2" else image_v1


def _version(module: ModuleType) -> str:
    return module.__name__.split(".")[-2]


def image_json(module: ModuleType, **spec: Any) -> JSON:
    """A valid, fully defaulted Image of `module`'s version, with `spec` fields replaced (None removes one)."""
    body: JSON = {
        "tag": "registry.example.com/my-app",
        "builder": {"name": "my-builder", "kind": "Builder"},
        "serviceAccountName" if module is image_v2 else "serviceAccount": "builder",
        "source": {"git": {"url": "https://github.com/example/my-app", "revision": "main"}},
        "failedBuildHistoryLimit": 10,
        "successBuildHistoryLimit": 10,
        "imageTaggingStrategy": "BuildNumber",
    }
    body.update(spec)
    return {
        "apiVersion": f"kpack.io/{_version(module)}",
        "kind": "Image",
        "metadata": {"name": "my-app", "namespace": "default"},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def errors_of(module: ModuleType, obj: Any, old: Any = None, **options: Any) -> list[tuple[str, str]]:
    return sorted((e.path, e.message) for e in module.validate(obj, old, **options))


IMAGE_STATUS: JSON = {
    "observedGeneration": 4,
    "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2021-10-05T14:25:01Z"},
        {"type": "BuilderReady", "status": "True", "lastTransitionTime": None},
    ],
    "latestBuildRef": "my-app-build-3",
    "latestBuildImageGeneration": 4,
    "latestImage": f"registry.example.com/my-app@{DIGEST}",
    "latestStack": "io.buildpacks.stacks.bionic",
    "buildCounter": 3,
    "buildCacheName": "my-app-cache",
    "latestBuildReason": "COMMIT,BUILDPACK",
}


# -- the seed manifests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEEDS))
@pytest.mark.parametrize("storage_class", [False, True], ids=["no-storage-class", "default-storage-class"])
def test_seed_images_parse_default_and_validate_clean(name: str, storage_class: bool) -> None:
    raw = yaml.safe_load(SEEDS[name])
    module = _module(raw)
    image = module.Image.from_json(raw)
    assert image.to_json() == raw
    module.set_defaults(image, has_default_storage_class=storage_class)
    assert module.validate(image, has_default_storage_class=storage_class) == []
    assert module.validate(image, image, has_default_storage_class=storage_class) == []  # an update changing nothing
    assert module.service_account_name(image) == "builder"
    spec = image.to_json()["spec"]
    assert "serviceAccountName" not in spec  # the user's spelling is not doubled
    assert (spec["failedBuildHistoryLimit"], spec["successBuildHistoryLimit"]) == (10, 10)
    if storage_class and "cache" not in raw["spec"]:
        cache = {"cacheSize": "2G"} if module is image_v1 else {"cache": {"volume": {"size": "2G"}}}
        assert cache.items() <= spec.items()


def test_seed_effective_values() -> None:
    cosign = image_v2.Image.from_json(yaml.safe_load(SEEDS["11-image-cosign"]))
    assert image_v2.cosign_key_ref(cosign) == image_v2.CosignKeyRef(name="cosign-key", namespace="default")
    assert image_v2.cosign_enabled(cosign)
    bound = image_v2.Image.from_json(yaml.safe_load(SEEDS["13-image-service-binding"]))
    assert image_v2.services(bound) == [ObjectReference(name="database", kind="Secret", api_version="v1")]
    plain = image_v2.Image.from_json(yaml.safe_load(SEEDS["10-image-v1alpha2"]))
    assert image_v2.services(plain) == []
    assert image_v2.cosign_key_ref(plain) is None
    assert image_v2.cosign_enabled(plain)


# -- defaulting ----------------------------------------------------------------------------------------------------

V2_DEFAULTS: JSON = {
    "serviceAccountName": "default",
    "imageTaggingStrategy": "BuildNumber",
    "failedBuildHistoryLimit": 10,
    "successBuildHistoryLimit": 10,
}
V1_DEFAULTS: JSON = {**{k: v for k, v in V2_DEFAULTS.items() if k != "serviceAccountName"}, "serviceAccount": "default"}


@pytest.mark.parametrize(
    ("spec", "storage_class", "defaulted"),
    [
        pytest.param({}, False, V2_DEFAULTS, id="nothing"),
        pytest.param({}, True, {**V2_DEFAULTS, "cache": {"volume": {"size": "2G"}}}, id="storage-class"),
        pytest.param({"cache": {}}, True, {**V2_DEFAULTS, "cache": {}}, id="empty-cache-means-none"),
        pytest.param(
            {"cache": {"registry": {"tag": "r.io/c"}}},
            True,
            {**V2_DEFAULTS, "cache": {"registry": {"tag": "r.io/c"}}},
            id="registry-cache-kept",
        ),
        pytest.param({"cache": {"volume": {}}}, True, {**V2_DEFAULTS, "cache": {"volume": {}}}, id="empty-volume-kept"),
        pytest.param(
            {"serviceAccount": "sa"},
            False,
            {**{k: v for k, v in V2_DEFAULTS.items() if k != "serviceAccountName"}, "serviceAccount": "sa"},
            id="users-spelling-not-doubled",
        ),
        pytest.param(
            {"serviceAccountName": "", "imageTaggingStrategy": ""}, False, V2_DEFAULTS, id="empty-counts-as-absent"
        ),
        pytest.param(
            {
                "serviceAccountName": "sa",
                "imageTaggingStrategy": "None",
                "failedBuildHistoryLimit": 1,
                "successBuildHistoryLimit": 0,
            },
            False,
            {
                "serviceAccountName": "sa",
                "imageTaggingStrategy": "None",
                "failedBuildHistoryLimit": 1,
                "successBuildHistoryLimit": 0,
            },
            id="given-kept",
        ),
    ],
)
def test_v2_defaults(spec: JSON, storage_class: bool, defaulted: JSON) -> None:
    image = image_v2.Image.from_json({"spec": spec})
    image_v2.set_defaults(image, has_default_storage_class=storage_class)
    assert image.to_json() == {"spec": defaulted}  # defaulted fields count as set: they reach the JSON
    image_v2.set_defaults(image, has_default_storage_class=storage_class)
    assert image.to_json() == {"spec": defaulted}  # idempotent


@pytest.mark.parametrize(
    ("spec", "storage_class", "defaulted"),
    [
        pytest.param({}, False, V1_DEFAULTS, id="nothing"),
        pytest.param({}, True, {**V1_DEFAULTS, "cacheSize": "2G"}, id="storage-class"),
        pytest.param({"cacheSize": "5Gi"}, True, {**V1_DEFAULTS, "cacheSize": "5Gi"}, id="size-kept"),
        pytest.param({"serviceAccount": "sa"}, False, {**V1_DEFAULTS, "serviceAccount": "sa"}, id="sa-kept"),
    ],
)
def test_v1_defaults(spec: JSON, storage_class: bool, defaulted: JSON) -> None:
    image = image_v1.Image.from_json({"spec": spec})
    image_v1.set_defaults(image, has_default_storage_class=storage_class)
    assert image.to_json() == {"spec": defaulted}
    image_v1.set_defaults(image, has_default_storage_class=storage_class)
    assert image.to_json() == {"spec": defaulted}


# -- validation: rules both versions share ---------------------------------------------------------------------------

SHARED_CASES = [
    pytest.param({"tag": None}, [("spec.tag", "missing field(s)")], id="tag-missing"),
    pytest.param({"tag": ""}, [("spec.tag", "missing field(s)")], id="tag-empty"),
    pytest.param({"tag": "r.io/App"}, [("spec.tag", "invalid value: r.io/App")], id="tag-invalid"),
    pytest.param({"tag": f"r.io/a@{DIGEST}"}, [("spec.tag", f"invalid value: r.io/a@{DIGEST}")], id="tag-digest"),
    pytest.param({"tag": "my-app"}, [], id="tag-docker-hub"),
    pytest.param(
        {"builder": None}, [("spec.builder.kind", "missing field(s)"), ("spec.builder.name", "missing field(s)")]
    ),
    pytest.param({"builder": {"kind": "Builder"}}, [("spec.builder.name", "missing field(s)")], id="builder-name"),
    pytest.param({"builder": {"name": "b"}}, [("spec.builder.kind", "missing field(s)")], id="builder-no-kind"),
    pytest.param(
        {"builder": {"name": "b", "kind": "ClusterStack"}},
        [("spec.builder.kind", "invalid value: ClusterStack")],
        id="builder-kind",
    ),
    pytest.param({"builder": {"name": "b", "kind": "ClusterBuilder"}}, [], id="cluster-builder"),
    pytest.param(
        {"source": None},
        [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got neither")],
        id="source-missing",
    ),
    pytest.param(
        {"source": {"blob": {"url": "u"}, "registry": {"image": "r.io/s"}}},
        [("spec.source.blob, spec.source.registry", "expected exactly one, got both")],
        id="source-two",
    ),
    pytest.param({"source": {"git": {"url": "u"}}}, [("spec.source.git.revision", "missing field(s)")]),
    pytest.param(
        {"failedBuildHistoryLimit": 0, "successBuildHistoryLimit": -1},
        [
            ("spec.failedBuildHistoryLimit", "build history limit must be greater than 0"),
            ("spec.successBuildHistoryLimit", "build history limit must be greater than 0"),
        ],
        id="history-limits",
    ),
    pytest.param({"failedBuildHistoryLimit": None, "successBuildHistoryLimit": 1}, [], id="limits-undefaulted"),
    pytest.param(
        {"imageTaggingStrategy": "Latest"}, [("spec.imageTaggingStrategy", "invalid value: Latest")], id="strategy"
    ),
    pytest.param({"imageTaggingStrategy": "None"}, [], id="strategy-none"),
    pytest.param(
        {"notary": {"v1": {"url": ""}}},
        [("spec.notary.v1.secretRef.name", "missing field(s)"), ("spec.notary.v1.url", "missing field(s)")],
        id="notary",
    ),
    pytest.param(
        {"tag": "", "builder": {"name": "b", "kind": "X"}, "failedBuildHistoryLimit": 0},
        [
            ("spec.builder.kind", "invalid value: X"),
            ("spec.failedBuildHistoryLimit", "build history limit must be greater than 0"),
            ("spec.tag", "missing field(s)"),
        ],
        id="all-accumulated",
    ),
]


@pytest.mark.parametrize("module", IMAGES)
@pytest.mark.parametrize(("spec", "expected"), SHARED_CASES)
def test_shared_rules(module: ModuleType, spec: JSON, expected: list[tuple[str, str]]) -> None:
    assert errors_of(module, module.Image.from_json(image_json(module, **spec))) == expected


@pytest.mark.parametrize("module", IMAGES)
@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("my-app", True),
        ("a", True),
        ("my_app.v2", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-app", False),
        ("app-", False),
        ("app/x", False),
    ],
)
def test_name_must_be_a_label_value(module: ModuleType, name: str, valid: bool) -> None:
    raw = image_json(module)
    raw["metadata"]["name"] = name
    expected = [] if valid else [("metadata.name", f"invalid image name: {name}, name must be a a valid label")]
    assert errors_of(module, module.Image.from_json(raw)) == expected


# -- validation: v1alpha2 ------------------------------------------------------------------------------------------

V2_CASES = [
    pytest.param({"additionalTags": ["registry.example.com/other:1", "registry.example.com/x"]}, [], id="more-tags"),
    pytest.param(
        {"additionalTags": ["registry.example.com/a", "registry.example.com/B"]},
        [("spec.additionalTags[1]", "invalid value: registry.example.com/B")],
        id="more-tags-invalid",
    ),
    pytest.param(
        {"additionalTags": ["registry.example.com/a", "gcr.io/a", "a"]},
        [
            ("spec.additionalTags[1]", "all additionalTags must have the same registry as tag"),
            ("spec.additionalTags[2]", "all additionalTags must have the same registry as tag"),
        ],
        id="more-tags-other-registry",
    ),
    pytest.param(
        {"build": {"nodeSelector": {"kubernetes.io/os": "linux", "disk": "ssd"}}},
        [("spec.build.nodeSelector", 'invalid key name "kubernetes.io/os"')],
        id="node-selector-os",
    ),
    pytest.param(
        {"build": {"services": [{"name": "db"}, {"name": "db", "kind": "Secret"}]}},
        [
            ("spec.build.services[0].kind", "missing field(s)"),
            ("spec.build.services[0].name, spec.build.services[1].name", 'duplicate service name "db"'),
        ],
        id="services",
    ),
    pytest.param(
        {"serviceBindings": [{"name": "db", "kind": "Database"}]},
        [("spec.serviceBindings[0].apiVersion", "missing field(s)")],
        id="service-bindings-checked-as-services",
    ),
    pytest.param(
        {"build": {"cnbBindings": [{"name": "b"}]}},
        [("spec.build.cnbBindings[0].metadataRef", "missing field(s)")],
        id="cnb-bindings-rules",
    ),
    pytest.param(
        {"cache": {"volume": {"size": "2G"}, "registry": {"tag": "r.io/c"}}},
        [("spec.cache.volume, spec.cache.registry", "only one type of cache can be specified")],
        id="two-caches",
    ),
    pytest.param({"cache": {"registry": {}}}, [("spec.cache.registry.tag", "missing field(s)")], id="cache-tag"),
    pytest.param(
        {"cache": {"registry": {"tag": "r.io/c@" + DIGEST}}},
        [("spec.cache.registry.tag", "invalid value: r.io/c@" + DIGEST)],
        id="cache-tag-digest",
    ),
    pytest.param({"cache": {"volume": {"size": "big"}}}, [("spec.cache.volume.size", "invalid value: big")]),
    pytest.param({"cache": {"volume": {"size": 0}}}, [("spec.cache.volume.size", "invalid value: 0")], id="size-0"),
    pytest.param({"cache": {"volume": {}}}, [], id="volume-without-size"),
    pytest.param({"cache": {}}, [], id="no-cache"),
    pytest.param(
        {"cosign": {"annotations": [{"name": "a", "value": "b"}, {"name": ""}]}},
        [
            ("spec.cosign.annotations[1].name", "missing field(s)"),
            ("spec.cosign.annotations[1].value", "missing field(s)"),
        ],
        id="cosign-annotations",
    ),
    pytest.param({"cosign": {"enabled": True, "keyRef": {}}}, [("spec.cosign.keyRef.name", "missing field(s)")]),
    pytest.param({"cosign": {"enabled": True, "keyRef": {"name": "k"}}}, [], id="cosign-key-own-namespace-implied"),
    pytest.param({"cosign": {"enabled": False}}, [], id="cosign-off"),
    pytest.param(
        {"cosign": {"keyRef": {"name": "k", "namespace": "kpack"}}},
        [("spec.cosign.keyRef.namespace", "invalid value: kpack")],
        id="cosign-key-other-namespace",
    ),
    pytest.param({"projectDescriptorPath": "x/project.toml", "defaultProcess": "worker"}, [], id="free-fields"),
]


@pytest.mark.parametrize(("spec", "expected"), V2_CASES)
def test_v2_rules(spec: JSON, expected: list[tuple[str, str]]) -> None:
    image = image_v2.Image.from_json(image_json(image_v2, **spec))
    assert errors_of(image_v2, image, has_default_storage_class=True) == expected


def test_v2_volume_cache_needs_a_default_storage_class() -> None:
    image = image_v2.Image.from_json(image_json(image_v2, cache={"volume": {"size": "2G"}}))
    assert errors_of(image_v2, image) == [
        ("spec.cache.volume.size", "spec.cache.volume.size cannot be set with no default StorageClass")
    ]
    assert errors_of(image_v2, image, has_default_storage_class=True) == []


def test_cross_namespace_key_names_the_namespace_wanted() -> None:
    image = image_v2.Image.from_json(image_json(image_v2, cosign={"keyRef": {"name": "k", "namespace": "kpack"}}))
    (error,) = image_v2.validate(image)
    assert error.details == "the key must be in the object's own namespace (default)"
    assert image_v2.cosign_key_ref(image) == image_v2.CosignKeyRef(name="k", namespace="kpack")  # as written


def test_key_namespace_cannot_match_an_unknown_namespace() -> None:
    raw = image_json(image_v2, cosign={"keyRef": {"name": "k", "namespace": "default"}})
    del raw["metadata"]["namespace"]
    assert errors_of(image_v2, image_v2.Image.from_json(raw)) == [
        ("spec.cosign.keyRef.namespace", "invalid value: default")
    ]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"notary": {"v1": {"url": "u", "secretRef": {"name": "s"}}}}, "spec.notary", id="notary"),
        pytest.param(
            {"build": {"cnbBindings": [{"name": "b", "metadataRef": {"name": "m"}}]}},
            "spec.build.cnbBindings",
            id="cnb-bindings",
        ),
    ],
)
def test_v2_controller_only_fields(spec: JSON, field: str) -> None:
    image = image_v2.Image.from_json(image_json(image_v2, **spec))
    (error,) = image_v2.validate(image, username="alice")
    assert error.path == field
    assert error.message.startswith("use of this field has been deprecated in v1alpha2, please use v1alpha1")
    assert image_v2.validate(image, username=CONTROLLER_USERNAME) == []
    assert image_v2.validate(image) == []  # not an admission request


def test_v1_has_no_controller_only_fields() -> None:
    image = image_v1.Image.from_json(
        image_json(
            image_v1,
            notary={"v1": {"url": "u", "secretRef": {"name": "s"}}},
            build={"bindings": [{"name": "b", "metadataRef": {"name": "m"}}]},
        )
    )
    assert image_v1.validate(image) == []
    assert REGISTRY["Image"].versions["v1alpha1"].validate(image, None, username="alice") == []


# -- validation: v1alpha1 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "storage_class", "expected"),
    [
        pytest.param({"cacheSize": "2G"}, True, [], id="size"),
        pytest.param(
            {"cacheSize": "2G"},
            False,
            [("spec.cacheSize", "spec.cacheSize cannot be set with no default StorageClass")],
            id="size-without-storage-class",
        ),
        pytest.param({"cacheSize": "-2G"}, True, [("spec.cacheSize", "invalid value: -2G")], id="size-negative"),
        pytest.param(
            {"build": {"bindings": [{"name": "a", "metadataRef": {"name": "m"}}, {"name": "a", "secretRef": {}}]}},
            True,
            [
                ("spec.build.bindings[0].name, spec.build.bindings[1].name", 'duplicate binding name "a"'),
                ("spec.build.bindings[1].metadataRef", "missing field(s)"),
                ("spec.build.bindings[1].secretRef.name", "missing field(s)"),
            ],
            id="bindings",
        ),
        pytest.param({"build": {"env": [{"name": "A", "value": "1"}], "resources": {}}}, True, [], id="build"),
    ],
)
def test_v1_rules(spec: JSON, storage_class: bool, expected: list[tuple[str, str]]) -> None:
    image = image_v1.Image.from_json(image_json(image_v1, **spec))
    assert errors_of(image_v1, image, has_default_storage_class=storage_class) == expected


# -- our users' spellings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        pytest.param({"serviceAccountName": "a"}, "a", id="kpack-spelling"),
        pytest.param({"serviceAccountName": None, "serviceAccount": "b"}, "b", id="users-spelling"),
        pytest.param({"serviceAccountName": "c", "serviceAccount": "c"}, "c", id="both-same"),
        pytest.param({"serviceAccountName": None}, "default", id="neither"),
    ],
)
def test_either_spelling_names_the_service_account(given: JSON, effective: str) -> None:
    image = image_v2.Image.from_json(image_json(image_v2, **given))
    assert image_v2.validate(image) == []
    assert image_v2.service_account_name(image) == effective


def test_two_different_service_accounts_are_one_error_naming_both_fields() -> None:
    image = image_v2.Image.from_json(image_json(image_v2, serviceAccountName="a", serviceAccount="b"))
    (error,) = image_v2.validate(image)
    assert (error.path, error.message) == (
        "spec.serviceAccount, spec.serviceAccountName",
        "expected exactly one, got both",
    )
    assert '"b"' in error.details
    assert '"a"' in error.details


SECRET_DB: JSON = {"name": "db", "kind": "Secret", "apiVersion": "v1"}
PROVISIONED: JSON = {"name": "pg", "kind": "Postgres", "apiVersion": "sql.example.com/v1"}


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        pytest.param({"build": {"services": [SECRET_DB]}}, [SECRET_DB], id="kpack-spelling"),
        pytest.param({"serviceBindings": [SECRET_DB, PROVISIONED]}, [SECRET_DB, PROVISIONED], id="users-spelling"),
        pytest.param({"serviceBindings": [SECRET_DB], "build": {"services": [SECRET_DB]}}, [SECRET_DB], id="same"),
        pytest.param({"serviceBindings": [SECRET_DB], "build": {"services": []}}, [SECRET_DB], id="empty-is-absent"),
        pytest.param({}, [], id="neither"),
    ],
)
def test_either_spelling_names_the_services(given: JSON, effective: list[JSON]) -> None:
    image = image_v2.Image.from_json(image_json(image_v2, **given))
    assert image_v2.validate(image) == []
    assert [s.to_json() for s in image_v2.services(image)] == effective


def test_two_different_service_lists_are_one_error_naming_both_fields() -> None:
    image = image_v2.Image.from_json(
        image_json(image_v2, serviceBindings=[SECRET_DB], build={"services": [PROVISIONED]})
    )
    assert errors_of(image_v2, image) == [
        ("spec.serviceBindings, spec.build.services", "expected exactly one, got both")
    ]


def test_conflicting_service_lists_are_each_still_checked_once() -> None:
    image = image_v2.Image.from_json(
        image_json(image_v2, serviceBindings=[{"name": "x"}], build={"services": [{"name": "y"}]})
    )
    assert errors_of(image_v2, image) == [
        ("spec.build.services[0].kind", "missing field(s)"),
        ("spec.serviceBindings, spec.build.services", "expected exactly one, got both"),
    ]


@pytest.mark.parametrize(
    ("cosign", "key", "enabled"),
    [
        pytest.param(None, None, True, id="absent"),
        pytest.param({"enabled": True}, None, True, id="service-account-keys"),
        pytest.param({"keyRef": {"name": "k"}}, image_v2.CosignKeyRef(name="k", namespace="default"), True),
        pytest.param({"enabled": False, "keyRef": {"name": "k"}}, None, False, id="off"),
        pytest.param({"annotations": [{"name": "team", "value": "a"}]}, None, True, id="kpack-fields"),
    ],
)
def test_cosign_effective_values(cosign: JSON | None, key: Any, enabled: bool) -> None:
    image = image_v2.Image.from_json(image_json(image_v2, cosign=cosign))
    assert image_v2.validate(image) == []
    assert image_v2.cosign_key_ref(image) == key
    assert image_v2.cosign_enabled(image) is enabled


# -- updates ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", IMAGES)
def test_tag_is_immutable(module: ModuleType) -> None:
    old = module.Image.from_json(image_json(module))
    new = module.Image.from_json(image_json(module, tag="registry.example.com/elsewhere"))
    (error,) = module.validate(new, old)
    assert (error.path, error.message) == ("spec.tag", "Immutable field changed")
    assert error.details == "got: registry.example.com/elsewhere, want: registry.example.com/my-app"


@pytest.mark.parametrize("module", IMAGES)
def test_an_unchanged_tag_is_not_rechecked_on_update(module: ModuleType) -> None:
    """Objects admitted under older rules (or written through v1alpha1 to kpack) stay writable."""
    old = module.Image.from_json(image_json(module, tag="Bad/Tag"))
    assert module.validate(old, old) == []
    assert errors_of(module, old) == [("spec.tag", "invalid value: Bad/Tag")]


@pytest.mark.parametrize("module", IMAGES)
def test_everything_but_the_tag_may_change(module: ModuleType) -> None:
    old = module.Image.from_json(image_json(module))
    new = module.Image.from_json(
        image_json(
            module,
            builder={"name": "other", "kind": "ClusterBuilder"},
            source={"blob": {"url": "https://b/x.zip"}},
            failedBuildHistoryLimit=3,
            imageTaggingStrategy="None",
        )
    )
    assert module.validate(new, old) == []


CACHE_FIELD = {image_v1: ("cacheSize", "spec.cacheSize"), image_v2: ("cache", "spec.cache.volume.size")}


def _with_size(module: ModuleType, size: Any) -> Any:
    field, _ = CACHE_FIELD[module]
    value = size if module is image_v1 else (None if size is None else {"volume": {"size": size}})
    return module.Image.from_json(image_json(module, **{field: value}))


@pytest.mark.parametrize("module", IMAGES)
@pytest.mark.parametrize(
    ("old", "new", "storage_class", "expected"),
    [
        pytest.param("2G", "3G", True, [], id="grows"),
        pytest.param("2G", "2000M", True, [], id="same-size-other-unit"),
        pytest.param("2Gi", "2G", True, ["Field cannot be decreased"], id="shrinks"),
        pytest.param("2G", None, True, [], id="removed"),
        pytest.param(None, "1G", True, [], id="added"),
        pytest.param("2G", "2G", False, [], id="class-gone-unchanged"),
        pytest.param("2G", "3G", False, ["cannot be set with no default StorageClass"], id="class-gone-changed"),
        pytest.param(None, "1G", False, ["cannot be set with no default StorageClass"], id="class-gone-added"),
        pytest.param("junk", "1G", True, [], id="old-unparsable"),
    ],
)
def test_cache_size_on_update(module: ModuleType, old: Any, new: Any, storage_class: bool, expected: list[str]) -> None:
    _, path = CACHE_FIELD[module]
    found = module.validate(_with_size(module, new), _with_size(module, old), has_default_storage_class=storage_class)
    assert [e.path for e in found] == [path] * len(expected)
    assert all(want in e.message for e, want in zip(found, expected, strict=True))
    if expected == ["Field cannot be decreased"]:
        assert found[0].details == f"current: {old}, requested: {new}"


# -- JSON -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", IMAGES)
def test_round_trip_with_status(module: ModuleType) -> None:
    raw = image_json(module, build={"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    raw["metadata"].update({"generation": 4, "labels": {"a": "b"}})
    raw["status"] = copy.deepcopy(IMAGE_STATUS)
    assert module.Image.from_json(raw).to_json() == raw


def test_v2_round_trip_of_every_field() -> None:
    raw = image_json(
        image_v2,
        additionalTags=["registry.example.com/my-app:extra"],
        serviceAccount="builder",
        cache={"volume": {"size": 2_000_000_000}},
        projectDescriptorPath="p.toml",
        build={
            "services": [SECRET_DB],
            "cnbBindings": [{"name": "b", "metadataRef": {"name": "m"}, "secretRef": {"name": "s"}}],
            "env": [{"name": "A", "value": "1"}],
            "resources": {"limits": {"cpu": "2"}},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"podAffinity": {}},
            "runtimeClassName": "gvisor",
            "schedulerName": "sched",
        },
        serviceBindings=[SECRET_DB],
        notary={"v1": {"url": "https://notary", "secretRef": {"name": "n"}}},
        cosign={
            "enabled": True,
            "keyRef": {"name": "k", "namespace": "default"},
            "annotations": [{"name": "a", "value": "b"}],
        },
        defaultProcess="web",
    )
    raw["status"] = copy.deepcopy(IMAGE_STATUS)
    image = image_v2.Image.from_json(raw)
    assert image.to_json() == raw
    assert image_v2.validate(image, has_default_storage_class=True, username=CONTROLLER_USERNAME) == []


@pytest.mark.parametrize("model", [image_v1.Image, image_v2.Image])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_object_round_trips(model: type[ApiModel], data: st.DataObject) -> None:
    raw = data.draw(for_model(model))
    assert model.from_json(raw).to_json() == raw


@pytest.mark.parametrize(
    ("module", "section", "key", "value", "expected"),
    [
        pytest.param(image_v2, "spec", "cacheSize", "2G", "spec.cacheSize", id="v1-field-in-v2"),
        pytest.param(image_v1, "spec", "serviceBindings", [], "spec.serviceBindings", id="v2-field-in-v1"),
        pytest.param(image_v1, "spec", "cosign", {}, "spec.cosign", id="cosign-in-v1"),
        pytest.param(image_v2, "status", "latestImages", "x", "status.latestImages", id="status"),
    ],
)
def test_unknown_fields_are_refused_with_their_path(
    module: ModuleType, section: str, key: str, value: Any, expected: str
) -> None:
    raw = image_json(module)
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ValidationError) as caught:
        module.Image.from_json(raw)
    assert from_pydantic(caught.value) == [FieldError(expected, "unknown field")]


def test_unknown_field_deep_inside_is_refused() -> None:
    raw = image_json(image_v2, cosign={"enable": True, "keyRef": {"name": "k", "namespce": "x"}})
    with pytest.raises(ValidationError) as caught:
        image_v2.Image.from_json(raw)
    assert sorted(from_pydantic(caught.value), key=str) == [
        FieldError("spec.cosign.enable", "unknown field"),
        FieldError("spec.cosign.keyRef.namespce", "unknown field"),
    ]


def test_wrong_types_are_invalid_values() -> None:
    raw = image_json(image_v2, failedBuildHistoryLimit="ten", build={"nodeSelector": {"a": 1}})
    with pytest.raises(ValidationError) as caught:
        image_v2.Image.from_json(raw)
    found = from_pydantic(caught.value)
    assert [e.path for e in found] == ["spec.failedBuildHistoryLimit", "spec.build.nodeSelector.a"]
    assert all(e.message.startswith("invalid value: ") for e in found)


@pytest.mark.parametrize("model", [image_v1.Image, image_v2.Image])
def test_models_make_structural_crd_schemas(model: Any) -> None:
    schema = structural_schema(model)
    spec = schema["properties"]["spec"]
    assert spec["type"] == "object"
    assert spec["properties"]["tag"]["description"].startswith("Where the image is pushed")
    assert schema["properties"]["status"]["properties"]["latestImage"]["type"] == "string"


def test_users_may_update_images_carrying_controller_only_fields() -> None:
    """An Image written through v1alpha1 with notary and bindings stays writable through v1alpha2 (kpack refused
    every update of it, a label change included); setting or changing those fields is still refused."""
    notary = {"v1": {"url": "https://notary", "secretRef": {"name": "n"}}}
    bindings = [{"name": "b", "metadataRef": {"name": "m"}}]
    old = image_v2.Image.from_json(image_json(image_v2, notary=notary, build={"cnbBindings": bindings}))
    labelled = image_json(image_v2, notary=notary, build={"cnbBindings": bindings})
    labelled["metadata"]["labels"] = {"team": "a"}
    assert image_v2.validate(image_v2.Image.from_json(labelled), old, username="alice") == []
    changed = image_v2.Image.from_json(
        image_json(
            image_v2,
            notary={"v1": {"url": "https://elsewhere", "secretRef": {"name": "n"}}},
            build={"cnbBindings": [*bindings, {"name": "c", "metadataRef": {"name": "m"}}]},
        )
    )
    assert [e.path for e in image_v2.validate(changed, old, username="alice")] == [
        "spec.build.cnbBindings",
        "spec.notary",
    ]
