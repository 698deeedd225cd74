"""Parsing the secret formats (formats.md §2.8): docker config JSON, legacy dockercfg, annotated basic-auth."""

from __future__ import annotations

import json
import re

import pytest

from kpack_core.keychains import DockerCredentials, SecretFormatError, decode_auth, kpack_docker_credentials
from kpack_core.keychains.dockerconfig import encode_auth
from kpack_core.keychains.errors import describe_key
from kpack_core.keychains.secrets import (
    annotated_basic_auth_credentials,
    docker_config_credentials,
    parse_docker_config,
    secret_data,
    secret_text,
)
from kpack_core.registry.auth import Credentials

from .helpers import b64, basic_auth, dockercfg, dockerconfigjson, secret

# The user is what comes before the first colon; everything after it, colons included, is the password.
PADDED = b64("alice:pa:ss")  # "YWxpY2U6cGE6c3M=": ends in "="
UNPADDED = PADDED.rstrip("=")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (PADDED, ("alice", "pa:ss")),
        (UNPADDED, ("alice", "pa:ss")),
        (b64("bob:"), ("bob", "")),
        (b64(":only-password"), ("", "only-password")),
        (b64("user:pass"), ("user", "pass")),  # "dXNlcjpwYXNz": a multiple of 4, no padding needed
        (" " + b64("user:pass") + "\n", ("user", "pass")),
        (b64("ünï:cødé"), ("ünï", "cødé")),
    ],
)
def test_auth_field_decodes_padded_and_unpadded_and_splits_at_the_first_colon(
    auth: str, expected: tuple[str, str]
) -> None:
    assert decode_auth(auth) == expected


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        (b64("no-colon-here"), "no colon"),
        ("!!!not base64!!!", "not valid base64"),
        ("YWJj=", "not valid base64"),  # padding where none belongs
        ("YWJjZ", "not valid base64"),  # 5 characters: no base64 length
        (b64(b"\xff\xfe:x"), "not valid base64 of UTF-8"),
    ],
)
def test_bad_auth_field_is_an_error_that_does_not_quote_it(auth: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        decode_auth(auth)
    assert auth.strip() not in str(caught.value)


def test_encode_auth_round_trips() -> None:
    assert decode_auth(encode_auth("a:b", "c:d")) == ("a", "b:c:d")


def test_dockerconfigjson_entries_with_every_field() -> None:
    credentials = docker_config_credentials(
        dockerconfigjson(
            "regcred",
            {
                "gcr.io": {"username": "u", "password": "p", "email": "e@x"},
                "quay.io": {"auth": UNPADDED, "username": "ignored", "password": "ignored"},
                "acr.io": {"identitytoken": "refresh"},
                "ecr.io": {"registrytoken": "bearer"},
                "empty.io": {},
            },
        )
    )
    assert credentials == DockerCredentials(
        {
            "gcr.io": Credentials("u", "p"),
            "quay.io": Credentials("alice", "pa:ss"),  # auth overrides username and password
            "acr.io": Credentials(identity_token="refresh"),
            "ecr.io": Credentials(registry_token="bearer"),
            "empty.io": Credentials(),
        }
    )
    assert list(credentials or {}) == ["gcr.io", "quay.io", "acr.io", "ecr.io", "empty.io"]


def test_dockercfg_has_no_auths_wrapper() -> None:
    credentials = docker_config_credentials(dockercfg("legacy", {"https://index.docker.io/v1/": {"auth": PADDED}}))
    assert dict(credentials or {}) == {"https://index.docker.io/v1/": Credentials("alice", "pa:ss")}


def test_field_names_match_case_insensitively_preferring_the_exact_one() -> None:
    data = json.dumps({"auths": {"r.io": {"Username": "upper", "PASSWORD": "pw", "username": "exact"}}}).encode()
    assert parse_docker_config(data, "test", "k", wrapped=True) == {"r.io": Credentials("exact", "pw")}


def test_null_fields_are_empty_and_a_document_without_auths_has_no_entries() -> None:
    data = json.dumps({"auths": {"r.io": {"username": None, "password": "p"}}}).encode()
    assert parse_docker_config(data, "test", "k", wrapped=True) == {"r.io": Credentials("", "p")}
    assert parse_docker_config(b'{"credsStore": "desktop"}', "test", "k", wrapped=True) == {}


def test_annotated_basic_auth_is_credentials_for_the_annotated_registry() -> None:
    annotated = basic_auth("hub", "alice", "s3cret", {"kpack.io/docker": "https://index.docker.io/v1/"})
    assert dict(annotated_basic_auth_credentials(annotated) or {}) == {
        "https://index.docker.io/v1/": Credentials("alice", "s3cret")
    }
    assert annotated_basic_auth_credentials(basic_auth("git", "a", "b", {"kpack.io/git": "github.com"})) is None
    assert annotated_basic_auth_credentials(dockercfg("cfg", {})) is None
    assert docker_config_credentials(annotated) is None


def test_kpack_merge_is_first_wins_annotated_basic_auth_then_docker_configs_then_builder_secrets() -> None:
    service_account_secrets = [
        dockerconfigjson("a-json", {"gcr.io": {"username": "json", "password": "1"}, "quay.io": {"auth": PADDED}}),
        basic_auth("z-basic", "basic", "2", {"kpack.io/docker": "gcr.io"}),
        dockercfg("b-cfg", {"quay.io": {"username": "cfg", "password": "3"}, "ghcr.io": {"username": "cfg"}}),
        secret("other", "Opaque", {"x": "y"}),
    ]
    builder = [dockerconfigjson("builder", {"ghcr.io": {"username": "builder"}, "builder.io": {"username": "b"}})]
    merged = kpack_docker_credentials(service_account_secrets, builder)
    assert merged == {
        "gcr.io": Credentials("basic", "2"),  # annotated basic-auth comes first, whatever the list order
        "quay.io": Credentials("alice", "pa:ss"),  # the earlier docker secret wins
        "ghcr.io": Credentials("cfg"),  # service account secrets before the builder's
        "builder.io": Credentials("b"),
    }
    assert merged.to_config_json() == {
        "auths": {
            "gcr.io": {"username": "basic", "password": "2", "auth": b64("basic:2")},
            "quay.io": {"username": "alice", "password": "pa:ss", "auth": PADDED},
            "ghcr.io": {"username": "cfg", "password": "", "auth": b64("cfg:")},
            "builder.io": {"username": "b", "password": "", "auth": b64("b:")},
        }
    }


def test_config_json_keeps_tokens_and_drops_empty_entries_fields() -> None:
    credentials = DockerCredentials(
        {"a.io": Credentials(identity_token="it"), "b.io": Credentials(registry_token="rt")}
    )
    assert credentials.to_config_json() == {"auths": {"a.io": {"identitytoken": "it"}, "b.io": {"registrytoken": "rt"}}}


def test_repr_shows_keys_not_values() -> None:
    credentials = DockerCredentials({"gcr.io": Credentials("alice", "s3cret", "tok1", "tok2")})
    text = repr(credentials)
    assert "gcr.io" in text
    for value in ("s3cret", "tok1", "tok2"):
        assert value not in text


def test_string_data_is_read_plain() -> None:
    hand_made = {"metadata": {"name": "s", "namespace": "n"}, "stringData": {"username": "plain"}}
    assert secret_text(hand_made, "username") == "plain"
    assert secret_data(hand_made, "password") is None


MALFORMED = [
    # (secret, key at fault, problem)
    (
        secret("bad-json", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": {"r.io": s3cret'}),
        ".dockerconfigjson",
        r"not valid JSON \(line 1, column \d+\)",
    ),
    (
        secret("not-object", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": '["s3cret"]'}),
        ".dockerconfigjson",
        "is not a JSON object",
    ),
    (
        secret("auths-string", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": "s3cret"}'}),
        ".dockerconfigjson",
        "'auths' is not a JSON object",
    ),
    (dockerconfigjson("entry-list", {"r.io": ["s3cret"]}), ".dockerconfigjson", "entry 'r.io' is not a JSON object"),
    (
        dockerconfigjson("number", {"r.io": {"password": 123456}}),
        ".dockerconfigjson",
        "entry 'r.io': field 'password' is not a string",
    ),
    (
        dockerconfigjson("bad-auth", {"r.io": {"auth": b64("s3cret-without-colon")}}),
        ".dockerconfigjson",
        "entry 'r.io': field 'auth': must be base64 of username:password",
    ),
    (dockercfg("cfg-bad-auth", {"r.io": {"auth": "s3cret!!"}}), ".dockercfg", "field 'auth': not valid base64"),
    (
        {**secret("bad-data", "kubernetes.io/dockercfg", {}), "data": {".dockercfg": "s3cret!!"}},
        ".dockercfg",
        "data value is not valid base64",
    ),
    (
        secret("latin1", "kubernetes.io/basic-auth", {"username": b"s3cret\xff"}, annotations={"kpack.io/docker": "r"}),
        "username",
        "not UTF-8",
    ),
]


@pytest.mark.parametrize(("bad", "key", "problem"), MALFORMED, ids=[row[0]["metadata"]["name"] for row in MALFORMED])
def test_malformed_secret_names_the_secret_and_key_but_no_value(bad: dict[str, object], key: str, problem: str) -> None:
    name = bad["metadata"]["name"]  # type: ignore[index]
    with pytest.raises(SecretFormatError, match=problem) as caught:
        kpack_docker_credentials([bad])
    assert caught.value.source == f"secret team/{name}"
    assert caught.value.key == key
    assert str(caught.value).startswith(f"secret team/{name}: key {key!r}: ")
    assert "s3cret" not in str(caught.value)
    # The decoder's own error (which may quote the data) is neither the cause nor shown as the context.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("gcr.io", "gcr.io"),
        ("https://index.docker.io/v1/", "https://index.docker.io/v1/"),
        ("https://user:s3cret@gcr.io/v2/", "https://***@gcr.io/v2/"),
        ("user:s3cret@gcr.io", "***@gcr.io"),
        ("gcr.io/path@x", "gcr.io/path@x"),
    ],
)
def test_keys_with_user_info_are_redacted_in_messages(key: str, shown: str) -> None:
    assert describe_key(key) == shown
    data = json.dumps({"auths": {key: {"auth": "!"}}}).encode()
    with pytest.raises(SecretFormatError, match=re.escape(f"entry {shown!r}")) as caught:
        parse_docker_config(data, "secret team/x", ".dockerconfigjson", wrapped=True)
    assert "s3cret" not in str(caught.value)
