"""Reference parsing: a table of Docker's normalisation rules, invalid references named, hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpack_core.registry import InvalidReferenceError, Reference, parse_reference
from kpack_core.registry.reference import DIGEST_PATTERN, REPOSITORY_PATTERN, TAG_PATTERN

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "index.docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "index.docker.io", "library/busybox", "1.36", None),
        ("docker.io/busybox", "index.docker.io", "library/busybox", "latest", None),
        ("index.docker.io/library/busybox", "index.docker.io", "library/busybox", "latest", None),
        ("docker.io/paketo/builder:base", "index.docker.io", "paketo/builder", "base", None),
        ("paketo/builder", "index.docker.io", "paketo/builder", "latest", None),
        ("gcr.io/proj/app", "gcr.io", "proj/app", "latest", None),
        ("gcr.io/app", "gcr.io", "app", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1", None),
        ("127.0.0.1:41234/a/b/c:1.0", "127.0.0.1:41234", "a/b/c", "1.0", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        (f"gcr.io/app@{DIGEST}", "gcr.io", "app", None, DIGEST),
        (f"gcr.io/app:v1@{DIGEST}", "gcr.io", "app", "v1", DIGEST),
        (
            "registry.example.com:443/a_b/c__d/e-f/g.h:T_ag-1.0",
            "registry.example.com:443",
            "a_b/c__d/e-f/g.h",
            "T_ag-1.0",
            None,
        ),
        ("host/app", "index.docker.io", "host/app", "latest", None),  # no dot, no port: a Hub namespace
    ],
)
def test_normalisation(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (" busybox", "whitespace"),
        ("Busybox", "lowercase"),
        ("gcr.io/App/x", "lowercase"),
        ("gcr.io/app:", "invalid tag"),
        ("gcr.io/app:-x", "invalid tag"),
        ("gcr.io/app:" + "t" * 129, "invalid tag"),
        ("gcr.io/app@sha256:abc", "invalid digest"),
        ("gcr.io/app@sha256:" + "A" * 64, "64 lowercase hex"),
        ("gcr.io/app@" + "a" * 64, "invalid digest"),
        ("gcr.io//app", "invalid repository"),
        ("gcr.io/app/", "invalid repository"),
        ("gcr.io/a--", "invalid repository"),
        ("-bad.io:5000/app", "invalid registry"),
        ("gcr.io/" + "a" * 256, "longer than 255"),
    ],
)
def test_invalid_references_are_named(text: str, problem: str) -> None:
    with pytest.raises(InvalidReferenceError, match=problem) as caught:
        parse_reference(text)
    assert caught.value.reference == text
    assert repr(text) in str(caught.value)


def test_identifier_and_derived_references() -> None:
    ref = parse_reference("gcr.io/app:v1")
    assert ref.identifier == "v1"
    assert str(ref) == "gcr.io/app:v1"
    assert ref.name == "gcr.io/app"
    pinned = ref.with_digest(DIGEST)
    assert (pinned.identifier, pinned.tag, str(pinned)) == (DIGEST, None, f"gcr.io/app@{DIGEST}")
    assert pinned.with_tag("v2") == Reference("gcr.io", "app", "v2", None)
    assert parse_reference(f"gcr.io/app:v1@{DIGEST}").identifier == DIGEST
    assert str(parse_reference("busybox")) == "index.docker.io/library/busybox:latest"
    assert parse_reference("busybox").is_docker_hub
    assert ref.in_repository("other/app") == Reference("gcr.io", "other/app", "v1")
    with pytest.raises(InvalidReferenceError):
        ref.with_tag("bad tag")
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:short")


_component = st.from_regex(r"[a-z0-9]{1,5}(?:[._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
_repositories = st.lists(_component, min_size=1, max_size=3).map("/".join)
_registries = st.one_of(
    st.sampled_from(["gcr.io", "localhost:5000", "127.0.0.1:41234", "registry.example.com", "index.docker.io"]),
    st.builds(lambda h, p: f"{h}.io:{p}", st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), st.integers(1, 65535)),
)
_tags = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True)
_digests = st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map(lambda h: f"sha256:{h}")


@given(_registries, _repositories, st.one_of(st.none(), _tags), st.one_of(st.none(), _digests))
def test_canonical_form_round_trips(registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    text = f"{registry}/{repository}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
    assert ref.registry == registry
    assert ref.digest == digest
    assert ref.tag == (tag or (None if digest else "latest"))
    assert REPOSITORY_PATTERN.fullmatch(ref.repository)
    if registry == "index.docker.io" and "/" not in repository:
        assert ref.repository == f"library/{repository}"
    else:
        assert ref.repository == repository


@given(_repositories, _tags)
def test_hub_short_names_equal_their_long_forms(repository: str, tag: str) -> None:
    if "." in repository.split("/")[0] and "/" in repository:
        return  # the first component looks like a registry host, so this is not a Hub short name
    short = parse_reference(f"{repository}:{tag}")
    assert parse_reference(f"docker.io/{repository}:{tag}") == short
    assert parse_reference(f"index.docker.io/{short.repository}:{tag}") == short


@given(st.text(max_size=40))
def test_parse_never_fails_with_anything_but_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as exc:
        refused: InvalidReferenceError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.reference == text
    else:
        assert REPOSITORY_PATTERN.fullmatch(ref.repository)
        assert ref.tag is None or TAG_PATTERN.fullmatch(ref.tag)
        assert ref.digest is None or DIGEST_PATTERN.fullmatch(ref.digest)
