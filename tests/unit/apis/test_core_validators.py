"""The shared checks of `kpack_core.apis.core`, by table: image reference parsing (registry defaults, tag versus
digest, the same-registry rule), quantities, sources, CNB bindings, services, notary, node selectors, the fields
only the controller may set, and two spellings of one field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kpack_core.apis import core
from kpack_core.apis.base import ApiModel, LocalObjectReference, ObjectReference
from kpack_core.apis.core import (
    CONTROLLER_USERNAME,
    CNBBinding,
    ImageReference,
    NotaryConfig,
    SourceConfig,
    check_cnb_bindings,
    check_controller_only,
    check_image,
    check_node_selector,
    check_notary,
    check_one_of_two,
    check_pull_secrets,
    check_same_registry,
    check_services,
    check_size,
    check_source,
    check_tag,
    check_tags,
    parse_quantity,
    parse_reference,
    parse_tag,
)
from kpack_core.apis.errors import FieldError
from kpack_core.apis.v1alpha1 import build as build_v1
from kpack_core.apis.v1alpha1 import image as image_v1
from kpack_core.apis.v1alpha1 import sourceresolver as resolver_v1
from kpack_core.apis.v1alpha2 import build as build_v2
from kpack_core.apis.v1alpha2 import image as image_v2
from kpack_core.apis.v1alpha2 import sourceresolver as resolver_v2

DIGEST = "sha256:" + "a" * 64


def pairs(errors: list[Any]) -> list[tuple[str, str]]:
    return sorted((e.path, e.message) for e in errors)


# -- image references ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("app", ImageReference("index.docker.io", "library/app"), id="hub-short"),
        pytest.param("team/app:1.0", ImageReference("index.docker.io", "team/app", "1.0"), id="hub-team"),
        pytest.param("docker.io/app", ImageReference("index.docker.io", "library/app"), id="hub-alias"),
        pytest.param("index.docker.io/team/app", ImageReference("index.docker.io", "team/app"), id="hub-explicit"),
        pytest.param("gcr.io/p/app", ImageReference("gcr.io", "p/app"), id="registry"),
        pytest.param("gcr.io/p/app:v_1.2-3", ImageReference("gcr.io", "p/app", "v_1.2-3"), id="tag-chars"),
        pytest.param("localhost:5000/app", ImageReference("localhost:5000", "app"), id="port"),
        pytest.param("localhost:5000/app:t", ImageReference("localhost:5000", "app", "t"), id="port-and-tag"),
        pytest.param("localhost/app", ImageReference("localhost", "app"), id="localhost"),
        pytest.param("[::1]:5000/app", ImageReference("[::1]:5000", "app"), id="ipv6"),
        pytest.param("Registry.IO/app", ImageReference("Registry.IO", "app"), id="registry-case-kept"),
        pytest.param("a/b/c/d", ImageReference("index.docker.io", "a/b/c/d"), id="deep-hub-path"),
    ],
)
def test_tags_parse(value: str, expected: ImageReference) -> None:
    assert parse_tag(value) == expected
    assert parse_reference(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("r.io/App", id="upper-case-repository"),
        pytest.param("r.io/app:", id="empty-tag"),
        pytest.param("r.io/app:bad tag", id="space"),
        pytest.param("r.io/app:" + "t" * 129, id="tag-too-long"),
        pytest.param("https://r.io/app", id="url"),
        pytest.param("r.io//app", id="empty-component"),
        pytest.param("r.io/app/", id="trailing-slash"),
        pytest.param("r.io:/app", id="empty-port"),
        pytest.param("r.io:port/app", id="named-port"),
        pytest.param(f"r.io/app@{DIGEST}", id="digest"),
        pytest.param("r.io/app:a:b", id="two-tags"),
    ],
)
def test_bad_tags_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_tag(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(f"r.io/app@{DIGEST}", ImageReference("r.io", "app", None, DIGEST), id="digest"),
        pytest.param(f"r.io/app:1@{DIGEST}", ImageReference("r.io", "app", "1", DIGEST), id="tag-and-digest"),
        pytest.param(f"app@{DIGEST}", ImageReference("index.docker.io", "library/app", None, DIGEST), id="hub"),
    ],
)
def test_digests_parse_as_references(value: str, expected: ImageReference) -> None:
    assert parse_reference(value) == expected
    assert expected.context == f"{expected.registry}/{expected.repository}"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("r.io/app@sha256:abc", id="short"),
        pytest.param("r.io/app@sha512:" + "a" * 64, id="algorithm"),
        pytest.param("r.io/app@" + DIGEST.upper(), id="upper-hex"),
        pytest.param(f"r.io/app@{DIGEST}@{DIGEST}", id="two-digests"),
        pytest.param(f"r.io/App@{DIGEST}", id="bad-repository"),
    ],
)
def test_bad_digests_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_reference(value)


def test_tag_and_image_checks() -> None:
    assert pairs(check_tag(None, "spec.tag")) == [("spec.tag", "missing field(s)")]
    assert pairs(check_tag("", "spec.tag")) == [("spec.tag", "missing field(s)")]
    assert pairs(check_tag(f"r.io/a@{DIGEST}", "spec.tag")) == [("spec.tag", f"invalid value: r.io/a@{DIGEST}")]
    assert check_tag("r.io/a:1", "spec.tag") == []
    assert pairs(check_image("", "x.image")) == [("x.image", "missing field(s)")]
    assert pairs(check_image("R/x", "x.image")) == [("x.image", "invalid value: R/x")]
    assert check_image(f"r.io/a@{DIGEST}", "x.image") == []
    assert pairs(check_tags(["r.io/a", "B", "r.io/c", "r.io/d:"], "spec.tags")) == [
        ("spec.tags[1]", "invalid value: B"),
        ("spec.tags[3]", "invalid value: r.io/d:"),
    ]
    assert check_tags(None, "spec.tags") == []


@pytest.mark.parametrize(
    ("tag", "others", "expected"),
    [
        pytest.param("r.io/a", ["r.io/b:1", "r.io/c"], [], id="same"),
        pytest.param("app", ["docker.io/team/b", "index.docker.io/c"], [], id="hub-aliases"),
        pytest.param(
            "r.io/a",
            ["r.io/b", "q.io/c", "r.io/d", "app"],
            [
                ("spec.additionalTags[1]", "q.io"),
                ("spec.additionalTags[3]", "index.docker.io"),
            ],
            id="each-offender",
        ),
        pytest.param("r.io:5000/a", ["r.io/b"], [("spec.additionalTags[0]", "r.io")], id="port-is-part-of-registry"),
        pytest.param("r.io/a", ["BAD", "q.io/x@" + DIGEST], [], id="unparsable-left-to-tag-checks"),
        pytest.param("BAD", ["q.io/b"], [], id="unparsable-tag"),
        pytest.param(None, ["q.io/b"], [], id="no-tag"),
    ],
)
def test_same_registry(tag: str | None, others: list[str], expected: list[tuple[str, str]]) -> None:
    found = check_same_registry(tag, others, "spec.additionalTags")
    assert [(e.path, e.details.rsplit(" ", 1)[-1]) for e in found] == expected
    assert all(e.message == "all additionalTags must have the same registry as tag" for e in found)
    if found:
        assert found[0].details.startswith(f"expected registry: {parse_tag(tag or '').registry}, got: ")


# -- quantities -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2G", Decimal(2_000_000_000)),
        ("500Mi", Decimal(500 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("100m", Decimal("0.1")),
        ("1e3", Decimal(1000)),
        ("2E-2", Decimal("0.02")),
        ("1E", Decimal(10**18)),
        (".5Ki", Decimal(512)),
        ("3", Decimal(3)),
        (2_000_000_000, Decimal(2_000_000_000)),
        (1.5, Decimal("1.5")),
        ("-1k", Decimal(-1000)),
    ],
)
def test_quantities(value: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize("value", ["", "2g", "2GB", "G", "1.2.3", "1e", "abc", "1 G", True])
def test_bad_quantities(value: Any) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(value)


def test_size_check() -> None:
    assert check_size(None, "s") == []
    assert check_size("1Mi", "s") == []
    assert pairs(check_size("lots", "s")) == [("s", "invalid value: lots")]
    assert pairs(check_size("0", "s")) == [("s", "invalid value: 0")]
    assert pairs(check_size("-1G", "s")) == [("s", "invalid value: -1G")]


# -- sources ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param({"git": {"url": "https://g/x", "revision": "main"}}, [], id="git"),
        pytest.param({"blob": {"url": "https://b/x.zip"}, "subPath": "app/sub"}, [], id="blob-sub-path"),
        pytest.param({"registry": {"image": "r.io/src", "imagePullSecrets": [{"name": "s"}]}}, [], id="registry"),
        pytest.param(
            None,
            [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got neither")],
            id="absent",
        ),
        pytest.param(
            {"subPath": "x"},
            [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got neither")],
            id="only-sub-path",
        ),
        pytest.param(
            {"git": {"url": "u", "revision": "r"}, "registry": {"image": "r.io/x"}},
            [("spec.source.git, spec.source.registry", "expected exactly one, got both")],
            id="two",
        ),
        pytest.param(
            {"git": {}, "blob": {}, "registry": {}},
            [("spec.source.git, spec.source.blob, spec.source.registry", "expected exactly one, got both")],
            id="three",
        ),
        pytest.param(
            {"git": {}},
            [("spec.source.git.revision", "missing field(s)"), ("spec.source.git.url", "missing field(s)")],
            id="git-empty",
        ),
        pytest.param({"git": {"url": "u", "revision": ""}}, [("spec.source.git.revision", "missing field(s)")]),
        pytest.param({"blob": {"url": ""}}, [("spec.source.blob.url", "missing field(s)")], id="blob-url"),
        pytest.param({"registry": {}}, [("spec.source.registry.image", "missing field(s)")], id="registry-image"),
        pytest.param(
            {"registry": {"image": "not an image"}},
            [("spec.source.registry.image", "invalid value: not an image")],
            id="registry-image-invalid",
        ),
        pytest.param(
            {"registry": {"image": "r.io/x", "imagePullSecrets": [{"name": "a"}, {}]}},
            [("spec.source.registry.imagePullSecrets[1].name", "missing field(s)")],
            id="pull-secret-name",
        ),
        pytest.param(
            {"blob": {"url": "u"}, "subPath": "/etc"}, [("spec.source.subPath", "invalid value: /etc")], id="abs"
        ),
        pytest.param(
            {"blob": {"url": "u"}, "subPath": "a/../../b"},
            [("spec.source.subPath", "invalid value: a/../../b")],
            id="dot-dot",
        ),
        pytest.param({"blob": {"url": "u"}, "subPath": "a..b/c"}, [], id="dots-in-a-name"),
    ],
)
def test_source(source: dict[str, Any] | None, expected: list[tuple[str, str]]) -> None:
    config = None if source is None else SourceConfig.from_json(source)
    assert pairs(check_source(config, "spec.source")) == expected


# -- bindings and services ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bindings", "expected"),
    [
        pytest.param([{"name": "db", "metadataRef": {"name": "m"}, "secretRef": {"name": "s"}}], [], id="full"),
        pytest.param([{"name": "db.1-x", "metadataRef": {"name": "m"}}], [], id="no-secret"),
        pytest.param([{"metadataRef": {"name": "m"}}], [("b[0].name", "missing field(s)")], id="name-missing"),
        pytest.param(
            [{"name": "DB", "metadataRef": {"name": "m"}}], [("b[0].name", "invalid value: DB")], id="name-invalid"
        ),
        pytest.param(
            [{"name": "x" * 254, "metadataRef": {"name": "m"}}],
            [("b[0].name", "invalid value: " + "x" * 254)],
            id="name-too-long",
        ),
        pytest.param([{"name": "db"}], [("b[0].metadataRef", "missing field(s)")], id="metadata-ref"),
        pytest.param(
            [{"name": "db", "metadataRef": {}}], [("b[0].metadataRef.name", "missing field(s)")], id="metadata-name"
        ),
        pytest.param(
            [{"name": "db", "metadataRef": {"name": "m"}, "secretRef": {}}],
            [("b[0].secretRef.name", "missing field(s)")],
            id="secret-name",
        ),
        pytest.param(
            [
                {"name": "a", "metadataRef": {"name": "m"}},
                {"name": "b", "metadataRef": {"name": "m"}},
                {"name": "a", "metadataRef": {"name": "m"}},
            ],
            [("b[0].name, b[2].name", 'duplicate binding name "a"')],
            id="duplicate",
        ),
    ],
)
def test_cnb_bindings(bindings: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert pairs(check_cnb_bindings([CNBBinding.from_json(b) for b in bindings], "b")) == expected


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        pytest.param([{"name": "db", "kind": "Secret"}], [], id="secret"),
        pytest.param([{"name": "db", "kind": "Secret", "apiVersion": "v1", "namespace": "ns"}], [], id="own-ns"),
        pytest.param([{"name": "db", "kind": "Database", "apiVersion": "x.io/v1"}], [], id="provisioned"),
        pytest.param([{"kind": "Secret"}], [("s[0].name", "missing field(s)")], id="name"),
        pytest.param([{"name": "D_B", "kind": "Secret"}], [("s[0].name", "invalid value: D_B")], id="bad-name"),
        pytest.param([{"name": "db"}], [("s[0].kind", "missing field(s)")], id="kind"),
        pytest.param([{"name": "db", "kind": "Database"}], [("s[0].apiVersion", "missing field(s)")], id="api"),
        pytest.param(
            [{"name": "db", "kind": "Secret", "namespace": "other"}],
            [("s[0].namespace", "invalid value: other")],
            id="other-namespace",
        ),
        pytest.param(
            [{"name": "db", "kind": "Secret"}, {"name": "db", "kind": "Database", "apiVersion": "x/v1"}],
            [("s[0].name, s[1].name", 'duplicate service name "db"')],
            id="duplicate-across-kinds",
        ),
    ],
)
def test_services(services: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert pairs(check_services([ObjectReference.from_json(s) for s in services], "s", "ns")) == expected


def test_services_in_an_unknown_namespace_must_not_name_one() -> None:
    refs = [ObjectReference(name="db", kind="Secret", namespace="ns")]
    assert pairs(check_services(refs, "s", None)) == [("s[0].namespace", "invalid value: ns")]
    assert check_services([ObjectReference(name="db", kind="Secret")], "s", None) == []


def test_pull_secrets() -> None:
    refs = [LocalObjectReference(name="a"), LocalObjectReference()]
    assert pairs(check_pull_secrets(refs, "p")) == [("p[1].name", "missing field(s)")]


# -- notary, node selector, controller-only, synonyms ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("notary", "expected"),
    [
        pytest.param(None, [], id="absent"),
        pytest.param({}, [], id="no-v1"),
        pytest.param({"v1": {"url": "https://n", "secretRef": {"name": "k"}}}, [], id="complete"),
        pytest.param(
            {"v1": {}},
            [("n.v1.secretRef.name", "missing field(s)"), ("n.v1.url", "missing field(s)")],
            id="empty-v1",
        ),
        pytest.param(
            {"v1": {"url": "u", "secretRef": {}}}, [("n.v1.secretRef.name", "missing field(s)")], id="secret-name"
        ),
    ],
)
def test_notary(notary: dict[str, Any] | None, expected: list[tuple[str, str]]) -> None:
    config = None if notary is None else NotaryConfig.from_json(notary)
    assert pairs(check_notary(config, "n")) == expected


def test_node_selector() -> None:
    assert check_node_selector(None, "ns") == []
    assert check_node_selector({"kubernetes.io/arch": "amd64"}, "ns") == []
    (error,) = check_node_selector({"kubernetes.io/os": "linux"}, "ns")
    assert (error.path, error.message, error.details) == (
        "ns",
        'invalid key name "kubernetes.io/os"',
        "os is determined automatically",
    )


NOTARY = NotaryConfig.from_json({"v1": {"url": "u", "secretRef": {"name": "s"}}})
OTHER_NOTARY = NotaryConfig.from_json({"v1": {"url": "other", "secretRef": {"name": "s"}}})
BINDINGS = [CNBBinding(name="b")]


@pytest.mark.parametrize(
    ("value", "old", "username", "refused"),
    [
        pytest.param(NOTARY, None, "alice", True, id="set-by-a-user"),
        pytest.param(NOTARY, None, CONTROLLER_USERNAME, False, id="set-by-the-controller"),
        pytest.param(NOTARY, None, None, False, id="not-an-admission-request"),
        pytest.param(None, None, "alice", False, id="not-set"),
        pytest.param(NOTARY, NotaryConfig.from_json(NOTARY.to_json()), "alice", False, id="kept-on-update"),
        pytest.param(NOTARY, OTHER_NOTARY, "alice", True, id="changed-on-update"),
        pytest.param(BINDINGS, None, "alice", True, id="list"),
        pytest.param([], None, "alice", False, id="empty-list"),
        pytest.param(BINDINGS, [CNBBinding(name="b")], "alice", False, id="list-kept"),
        pytest.param(BINDINGS, [CNBBinding(name="c")], "alice", True, id="list-changed"),
    ],
)
def test_controller_only(value: Any, old: Any, username: str | None, refused: bool) -> None:
    found = check_controller_only(value, old, "spec.notary", username, "deprecated")
    assert found == ([FieldError("spec.notary", "deprecated")] if refused else [])


def test_one_of_two() -> None:
    assert check_one_of_two(("a", "x"), ("b", None)) == []
    assert check_one_of_two(("a", None), ("b", "y")) == []
    assert check_one_of_two(("a", "x"), ("b", "x")) == []
    (error,) = check_one_of_two(("a", "x"), ("b", "y"))
    assert (error.path, error.message) == ("a, b", "expected exactly one, got both")
    assert '"x"' in error.details
    assert '"y"' in error.details


def test_one_of_two_compares_models_by_their_json() -> None:
    first: list[ApiModel] = [ObjectReference(name="db", kind="Secret")]
    assert check_one_of_two(("a", first), ("b", [ObjectReference.from_json({"kind": "Secret", "name": "db"})])) == []
    (error,) = check_one_of_two(("a", first), ("b", [ObjectReference(name="db", kind="Other")]))
    assert '"kind":"Other"' in error.details


# -- documentation ------------------------------------------------------------------------------------------------


def test_every_field_is_documented() -> None:
    """Field docstrings become CRD descriptions and `kubectl explain` text."""
    modules = [core, image_v1, image_v2, build_v1, build_v2, resolver_v1, resolver_v2]
    models = [
        model
        for module in modules
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, ApiModel) and model.__module__ == module.__name__
    ]
    assert len(models) > 30
    undocumented = [
        f"{model.__module__}.{model.__name__}.{name}"
        for model in models
        for name in model.__annotations__
        if name in model.model_fields and not model.model_fields[name].description
    ]
    assert undocumented == []
