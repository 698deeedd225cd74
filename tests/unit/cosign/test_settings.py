"""Cosign secrets into signing settings: Go ParseBool truthiness, the repository annotation, and every bad input."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kpack_core.cosign import (
    DOCKER_MEDIA_TYPES_ANNOTATION,
    REPOSITORY_ANNOTATION,
    CosignSecret,
    InvalidCosignSecretError,
    InvalidSettingError,
    WrongPasswordError,
    cosign_secret_from_data,
    cosign_secret_from_object,
    generate_key_pair,
    is_cosign_secret,
    parse_bool,
    parse_docker_media_types,
    parse_signature_repository,
)

KEY = b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n...\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_truthy_values(value: str) -> None:
    assert parse_docker_media_types(value) is True


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_falsy_values(value: str) -> None:
    assert parse_docker_media_types(value) is False


def test_absent_annotation_means_oci_media_types() -> None:
    assert parse_docker_media_types(None) is False


@pytest.mark.parametrize("value", ["", "yes", "no", "on", "tRUE", " true", "true\n", "2", "enabled" * 20])
def test_non_bool_values_are_rejected_naming_the_annotation(value: str) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        parse_docker_media_types(value)

    assert caught.value.setting == DOCKER_MEDIA_TYPES_ANNOTATION
    assert str(caught.value).startswith(f"{DOCKER_MEDIA_TYPES_ANNOTATION}: ")
    assert "is not a boolean" in str(caught.value)
    assert len(str(caught.value)) < 200


def test_parse_bool_names_any_setting() -> None:
    with pytest.raises(InvalidSettingError, match=r"^COSIGN_DOCKER_MEDIA_TYPES: 'x' is not a boolean"):
        parse_bool("x", "COSIGN_DOCKER_MEDIA_TYPES")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("gcr.io/other/sigs", "gcr.io/other/sigs"),
        ("127.0.0.1:5000/sigs", "127.0.0.1:5000/sigs"),
        ("docker.io/team/sigs", "index.docker.io/team/sigs"),
        ("sigs", "index.docker.io/library/sigs"),
    ],
)
def test_signature_repository_is_canonical(value: str | None, expected: str | None) -> None:
    assert parse_signature_repository(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gcr.io/other/sigs:v1", "must be a repository, without a tag or digest"),
        ("sigs:latest", "must be a repository, without a tag or digest"),
        ("gcr.io/a@sha256:" + "a" * 64, "must be a repository, without a tag or digest"),
        ("gcr.io/Other/Sigs", "repository names are lowercase"),
        ("", "empty reference"),
    ],
)
def test_bad_signature_repository_is_rejected_naming_the_annotation(value: str, message: str) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        parse_signature_repository(value)

    assert caught.value.setting == REPOSITORY_ANNOTATION
    assert message in str(caught.value)


def test_secret_data_with_everything() -> None:
    settings = cosign_secret_from_data(
        "ns/signing",
        {"cosign.key": KEY, "cosign.password": b" pass word \n", "cosign.pub": b"ignored"},
        {REPOSITORY_ANNOTATION: "gcr.io/other/sigs", DOCKER_MEDIA_TYPES_ANNOTATION: "1", "other": "x"},
    )

    assert settings == CosignSecret(
        secret="ns/signing",
        key_pem=KEY,
        password=b" pass word \n",  # byte for byte: no trimming
        signature_repository="gcr.io/other/sigs",
        docker_media_types=True,
    )
    assert settings.key_source == "secret ns/signing cosign.key"
    assert "pass word" not in repr(settings)
    assert "ENCRYPTED" not in repr(settings)


def test_missing_password_is_empty_and_no_annotations_are_defaults() -> None:
    settings = cosign_secret_from_data("ns/signing", {"cosign.key": KEY})

    assert settings.password == b""
    assert settings.signature_repository is None
    assert settings.docker_media_types is False


@pytest.mark.parametrize("data", [{}, {"cosign.key": b""}, {"cosign.password": b"x"}])
def test_secret_without_a_key_is_rejected(data: dict[str, bytes]) -> None:
    with pytest.raises(InvalidCosignSecretError) as caught:
        cosign_secret_from_data("ns/signing", data)

    assert str(caught.value) == "cosign secret ns/signing: cosign.key: missing or empty"
    assert (caught.value.secret, caught.value.field) == ("ns/signing", "cosign.key")


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        (
            {DOCKER_MEDIA_TYPES_ANNOTATION: "yes"},
            f"annotation {DOCKER_MEDIA_TYPES_ANNOTATION}",
            "'yes' is not a boolean",
        ),
        ({REPOSITORY_ANNOTATION: "gcr.io/a:b"}, f"annotation {REPOSITORY_ANNOTATION}", "without a tag or digest"),
    ],
)
def test_bad_annotations_name_the_secret_and_the_annotation(
    annotations: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(InvalidCosignSecretError) as caught:
        cosign_secret_from_data("ns/signing", {"cosign.key": KEY}, annotations)

    assert caught.value.field == field
    assert str(caught.value).startswith(f"cosign secret ns/signing: {field}: ")
    assert message in str(caught.value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_secret_object_as_the_api_server_returns_it() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "namespace": "ns",
            "name": "signing",
            "annotations": {DOCKER_MEDIA_TYPES_ANNOTATION: "true", REPOSITORY_ANNOTATION: "gcr.io/x/sigs"},
        },
        "type": "Opaque",
        "data": {"cosign.key": _b64(KEY), "cosign.password": _b64(b"pw"), "cosign.pub": _b64(b"pub")},
    }

    settings = cosign_secret_from_object(obj)

    assert settings == CosignSecret("ns/signing", KEY, b"pw", "gcr.io/x/sigs", True)
    assert is_cosign_secret(obj["data"])


@pytest.mark.parametrize(
    ("obj", "secret", "field", "message"),
    [
        ({}, "(unnamed)", "metadata.name", "missing"),
        ({"metadata": {"namespace": "ns"}}, "(unnamed)", "metadata.name", "missing"),
        ({"metadata": {"namespace": "ns", "name": "s"}, "data": []}, "ns/s", "data", "not an object"),
        (
            {"metadata": {"namespace": "ns", "name": "s"}, "data": {"cosign.key": "%%"}},
            "ns/s",
            "data.cosign.key",
            "base64",
        ),
        (
            {"metadata": {"namespace": "ns", "name": "s"}, "data": {"cosign.key": 5}},
            "ns/s",
            "data.cosign.key",
            "base64",
        ),
        (
            {"metadata": {"namespace": "ns", "name": "s"}, "data": {"cosign.key": _b64(KEY), "cosign.password": "!"}},
            "ns/s",
            "data.cosign.password",
            "not valid base64",
        ),
        ({"metadata": {"namespace": "ns", "name": "s"}, "data": {}}, "ns/s", "cosign.key", "missing or empty"),
        (
            {"metadata": {"namespace": "ns", "name": "s", "annotations": ["x"]}, "data": {"cosign.key": _b64(KEY)}},
            "ns/s",
            "metadata.annotations",
            "not an object",
        ),
    ],
)
def test_bad_secret_objects_name_the_secret_and_field(
    obj: dict[str, Any], secret: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidCosignSecretError) as caught:
        cosign_secret_from_object(obj)

    assert (caught.value.secret, caught.value.field) == (secret, field)
    assert message in str(caught.value)
    assert _b64(KEY) not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"cosign.key": "abc"}, True), ({"cosign.key": ""}, False), ({"cosign.password": "x"}, False), ({}, False)],
)
def test_is_cosign_secret(data: dict[str, str], expected: bool) -> None:
    assert is_cosign_secret(data) is expected


async def test_load_key_names_the_secret_on_a_wrong_password() -> None:
    pair = generate_key_pair(b"right")
    settings = cosign_secret_from_data("ns/signing", {"cosign.key": pair.private_pem, "cosign.password": b"wrong"})

    with pytest.raises(WrongPasswordError) as caught:
        await settings.load_key()

    assert caught.value.source == "secret ns/signing cosign.key"
    assert "wrong" not in str(caught.value).split(":", 1)[0]


async def test_load_key_with_the_right_password() -> None:
    pair = generate_key_pair(b"right")
    settings = cosign_secret_from_data("ns/signing", {"cosign.key": pair.private_pem, "cosign.password": b"right"})

    key = await settings.load_key()

    assert key.public_pem() == pair.public_pem
