"""Media-type negotiation, digests, manifests and platform selection, error bodies, upload URLs, loopback hosts."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from kpack_core.registry import (
    BlobUnknownError,
    DeniedError,
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    Platform,
    RawManifest,
    RegistryError,
    UnauthorizedError,
    compute_digest,
    mediatypes,
    sha256_digest,
)
from kpack_core.registry.client import _location, _with_digest
from kpack_core.registry.digest import THREAD_THRESHOLD
from kpack_core.registry.errors import error_from_response, parse_error_body
from kpack_core.registry.reference import parse_reference
from kpack_core.registry.transport import Answer, is_loopback


def test_accept_header_lists_docker_schema2_first() -> None:
    assert mediatypes.ACCEPT_ALL.split(", ") == [
        mediatypes.DOCKER_MANIFEST,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.OCI_INDEX,
    ]
    assert (
        mediatypes.accept_header((mediatypes.OCI_MANIFEST,))
        == f"{mediatypes.DOCKER_MANIFEST}, {mediatypes.OCI_MANIFEST}"
    )


@pytest.mark.parametrize(
    ("content_type", "body_type", "expected"),
    [
        (mediatypes.OCI_MANIFEST, None, mediatypes.OCI_MANIFEST),
        (f"{mediatypes.DOCKER_MANIFEST}; charset=utf-8", None, mediatypes.DOCKER_MANIFEST),
        ("application/json", mediatypes.OCI_INDEX, mediatypes.OCI_INDEX),
        (None, mediatypes.DOCKER_MANIFEST_LIST, mediatypes.DOCKER_MANIFEST_LIST),
        ("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", None, mediatypes.OCI_INDEX),
    ],
)
def test_negotiated_media_type(content_type: str | None, body_type: str | None, expected: str) -> None:
    assert mediatypes.negotiated(content_type, body_type) == expected


@pytest.mark.parametrize("content_type", [mediatypes.DOCKER_SCHEMA1_SIGNED, "text/html", None])
def test_unsupported_media_types_are_refused(content_type: str | None) -> None:
    with pytest.raises(ValueError, match="unsupported manifest media type"):
        mediatypes.negotiated(content_type, None)
    assert not mediatypes.is_index(content_type)


@given(st.binary(max_size=2048))
def test_digest_is_sha256_of_the_exact_bytes(data: bytes) -> None:
    assert sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()


async def test_large_blobs_hash_the_same_in_a_thread() -> None:
    data = b"x" * (THREAD_THRESHOLD + 1)
    assert await compute_digest(data) == sha256_digest(data)
    assert await compute_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _image(layers: int = 1) -> ImageManifest:
    return ImageManifest(
        Descriptor.of(b"{}", mediatypes.OCI_CONFIG),
        tuple(Descriptor.of(bytes([i]), mediatypes.OCI_LAYER) for i in range(layers)),
    )


def test_manifest_round_trip_keeps_bytes_and_unknown_fields() -> None:
    raw = RawManifest.of(_image(2))
    assert raw.digest == sha256_digest(raw.content)
    assert raw.image() == _image(2)
    assert RawManifest.of(raw.image()).content == raw.content
    descriptor = Descriptor.from_json(
        {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1, "artifactType": "a"}
    )
    assert descriptor.to_json()["artifactType"] == "a"
    with pytest.raises(ValueError, match="not an index"):
        raw.index()


def test_platform_selection_from_an_index() -> None:
    def entry(n: int, platform: Platform) -> Descriptor:
        return Descriptor(mediatypes.OCI_MANIFEST, f"sha256:{n:064x}", 10, platform=platform)

    index = ImageIndex(
        (
            entry(1, Platform("linux", "amd64")),
            entry(2, Platform("linux", "arm", "v6")),
            entry(3, Platform("linux", "arm", "v7")),
            entry(4, Platform("windows", "amd64", os_version="10.0.17763.1")),
        )
    )
    raw = RawManifest.of(index)
    parsed = raw.index()
    assert raw.is_index
    assert parsed == index

    def chosen(platform: Platform) -> int | None:
        found = parsed.select(platform)
        return None if found is None else int(found.digest.split(":")[1], 16)

    assert chosen(Platform()) == 1
    assert chosen(Platform.parse("linux/arm/v7")) == 3
    assert chosen(Platform("linux", "arm")) == 2  # no variant asked: the first arm entry
    assert chosen(Platform("windows", "amd64")) == 4
    assert chosen(Platform("linux", "arm64")) is None
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(ValueError, match="os/arch"):
        Platform.parse("linux")


def test_image_config_labels() -> None:
    config = ImageConfig.from_bytes(
        orjson.dumps(
            {"os": "linux", "architecture": "arm64", "config": {"Labels": {"a": "b"}}, "rootfs": {"diff_ids": ["d"]}}
        )
    )
    assert config.labels == {"a": "b"}
    assert config.platform == Platform("linux", "arm64")
    assert config.diff_ids == ["d"]
    assert ImageConfig.from_bytes(b'{"config": {"Labels": null}}').labels == {}


@pytest.mark.parametrize(
    ("status", "body", "cls", "text"),
    [
        (
            404,
            b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
            ManifestUnknownError,
            "manifest unknown",
        ),
        (404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}', BlobUnknownError, "BLOB_UNKNOWN"),
        (
            400,
            b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"x"}]}',
            BlobUnknownError,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}', NameUnknownError, "NAME"),
        (401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', UnauthorizedError, "auth"),
        (403, b"forbidden by policy", DeniedError, "forbidden by policy"),
        (404, b"", NotFoundError, "no details"),
        (400, b"<html>bad</html>", RegistryError, "<html>bad</html>"),
    ],
)
def test_error_bodies(status: int, body: bytes, cls: type[RegistryError], text: str) -> None:
    error = error_from_response("gcr.io/app:v1", "get manifest", status, body)
    assert type(error) is cls
    assert str(error).startswith("gcr.io/app:v1: get manifest failed with HTTP")
    assert text in str(error)
    assert error.status == status


def test_bare_404_is_refined_and_bodies_parse_leniently() -> None:
    assert type(error_from_response("r", "head", 404, b"", not_found=ManifestUnknownError)) is ManifestUnknownError
    assert parse_error_body(b'{"errors": [{"code": "DENIED", "detail": {"a": 1}}, 5]}')[0].detail == {"a": 1}
    assert parse_error_body(b'{"errors": "x"}') == ()
    assert parse_error_body(b"not json") == ()


def _answer(url: str, location: str | None) -> Answer:
    headers: CIMultiDict[str] = CIMultiDict()
    if location is not None:
        headers["Location"] = location
    return Answer(202, CIMultiDictProxy(headers), b"", URL(url))


def test_upload_locations_resolve_and_keep_their_state() -> None:
    ref = parse_reference("r.io/app")
    base = "https://r.io/v2/app/blobs/uploads/"
    assert _location(_answer(base, "/v2/app/blobs/uploads/u1?_state=ab%3D%3D"), ref) == (
        "https://r.io/v2/app/blobs/uploads/u1?_state=ab%3D%3D"
    )
    assert _location(_answer(base, "https://s3.example/u?x=1"), ref) == "https://s3.example/u?x=1"
    with pytest.raises(RegistryError, match="without a Location"):
        _location(_answer(base, None), ref)
    digest = "sha256:" + "1" * 64
    assert str(_with_digest("https://r.io/u1?_state=ab%3D%3D", digest)) == (
        f"https://r.io/u1?_state=ab%3D%3D&digest=sha256%3A{'1' * 64}"
    )
    assert str(_with_digest("https://r.io/u1", digest)).endswith("/u1?digest=sha256%3A" + "1" * 64)


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:41234", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("gcr.io", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
