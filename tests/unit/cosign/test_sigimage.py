"""The signature image: tags, where it lives, ggcr-compatible configs, appending and the dupe check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kpack_core.cosign import (
    SIGNATURE_ANNOTATION,
    build_payload,
    signature_reference,
    signature_tag,
    verify_signature,
)
from kpack_core.cosign.keys import SigningKey
from kpack_core.cosign.sigimage import append_signature, is_duplicate, parse_config, signature_layer
from kpack_core.registry import Descriptor, ImageManifest, InvalidReferenceError, mediatypes, parse_reference
from kpack_core.registry.digest import sha256_digest

DIGEST = "sha256:" + "ab" * 32
ZERO = "0001-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


def test_signature_tag() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"


@pytest.mark.parametrize("digest", ["sha256:abc", "latest", "sha256:" + "A" * 64])
def test_signature_tag_refuses_bad_digests(digest: str) -> None:
    with pytest.raises(InvalidReferenceError):
        signature_tag(digest)


@pytest.mark.parametrize(
    ("image", "repository", "expected"),
    [
        ("gcr.io/proj/app:v1", None, "gcr.io/proj/app"),
        (f"gcr.io/proj/app@{DIGEST}", None, "gcr.io/proj/app"),
        ("gcr.io/proj/app:v1", "gcr.io/other/sigs", "gcr.io/other/sigs"),
        ("busybox", "docker.io/me/sigs", "index.docker.io/me/sigs"),
    ],
)
def test_signature_reference(image: str, repository: str | None, expected: str) -> None:
    ref = signature_reference(parse_reference(image), DIGEST, repository)

    assert str(ref) == f"{expected}:sha256-{'ab' * 32}.sig"
    assert ref.digest is None


def test_first_signature_makes_ggcr_config_and_oci_manifest(key: SigningKey) -> None:
    payload = build_payload(parse_reference("gcr.io/proj/app"), DIGEST)
    layer = signature_layer(payload, key.sign(payload))

    image = append_signature(None, None, layer)

    payload_digest = sha256_digest(payload)
    assert (
        image.config
        == (
            '{"architecture":"","created":"' + ZERO + '","history":[{"created":"' + ZERO + '"}],"os":"",'
            '"rootfs":{"type":"layers","diff_ids":["' + payload_digest + '"]},"config":{}}'
        ).encode()
    )
    manifest = image.manifest.image()
    assert image.manifest.media_type == mediatypes.OCI_MANIFEST
    assert json.loads(image.manifest.content)["mediaType"] == mediatypes.OCI_MANIFEST
    assert manifest.config == Descriptor.of(image.config, mediatypes.OCI_CONFIG)
    assert manifest.layers == (layer,)
    assert layer.media_type == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert (layer.digest, layer.size) == (payload_digest, len(payload))
    assert layer.annotations is not None
    assert set(layer.annotations) == {SIGNATURE_ANNOTATION}
    assert verify_signature(key.public_key, payload, layer.annotations[SIGNATURE_ANNOTATION])


def test_docker_media_types(key: SigningKey) -> None:
    payload = b"{}"
    image = append_signature(None, None, signature_layer(payload, key.sign(payload)), docker_media_types=True)

    assert image.manifest.media_type == mediatypes.DOCKER_MANIFEST
    body = json.loads(image.manifest.content)
    assert body["mediaType"] == mediatypes.DOCKER_MANIFEST
    assert body["config"]["mediaType"] == mediatypes.DOCKER_CONFIG
    assert body["layers"][0]["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"


def test_appending_keeps_foreign_layers_and_extends_the_config(key: SigningKey) -> None:
    foreign = Descriptor(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "sha256:" + "1" * 64,
        10,
        annotations={SIGNATURE_ANNOTATION: "MEUCIQ==", "dev.sigstore.cosign/bundle": '{"x":1}'},
        extra={"artifactType": "kept"},
    )
    existing = ImageManifest(
        Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "2" * 64, 5),
        (foreign,),
        annotations={"org.example": "kept"},
    )
    existing_config: dict[str, Any] = {
        "architecture": "",
        "created": ZERO,
        "history": [{"created": ZERO, "comment": "theirs"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [foreign.digest]},
        "config": {},
        "unknown": {"kept": True},
    }
    payload = b'{"critical":{}}'
    layer = signature_layer(payload, key.sign(payload))

    image = append_signature(existing, existing_config, layer, docker_media_types=True)

    manifest = image.manifest.image()
    assert manifest.layers == (foreign, layer)
    assert manifest.layers[0].extra == {"artifactType": "kept"}
    assert manifest.annotations == {"org.example": "kept"}
    assert manifest.media_type == mediatypes.DOCKER_MANIFEST
    assert manifest.config.media_type == mediatypes.DOCKER_CONFIG
    config = json.loads(image.config)
    assert list(config) == list(existing_config)
    assert config["rootfs"]["diff_ids"] == [foreign.digest, layer.digest]
    assert config["history"] == [{"created": ZERO, "comment": "theirs"}, {"created": ZERO}]
    assert config["unknown"] == {"kept": True}
    assert existing_config["rootfs"]["diff_ids"] == [foreign.digest]  # the input is not mutated


def test_a_config_without_history_or_rootfs_gains_them(key: SigningKey) -> None:
    payload = b"x"
    image = append_signature(None, {"os": "linux", "rootfs": "weird"}, signature_layer(payload, key.sign(payload)))

    config = json.loads(image.config)
    assert list(config) == ["history", "os", "rootfs"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256_digest(payload)]}
    assert config["history"] == [{"created": ZERO}]


def test_a_config_without_os_gets_history_appended() -> None:
    config = json.loads(
        append_signature(None, {"architecture": ""}, Descriptor.of(b"p", "x", annotations={"a": "b"})).config
    )

    assert list(config) == ["architecture", "history", "rootfs"]


@pytest.mark.parametrize(
    ("data", "message"), [(b"\xff", "not JSON"), (b"[1]", "not a JSON object"), (b"{", "not JSON")]
)
def test_parse_config_refuses_non_objects(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(data)


def test_duplicate_needs_same_payload_a_verifying_signature_and_no_other_annotations(key: SigningKey) -> None:
    other = SigningKey(ec.generate_private_key(ec.SECP256R1()), "other")
    payload = b'{"same":"payload"}'
    ours = signature_layer(payload, key.sign(payload))

    assert is_duplicate(ours, payload, key.public_key)
    assert is_duplicate(signature_layer(payload, key.sign(payload)), payload, key.public_key)  # new random k
    assert not is_duplicate(ours, b'{"other":"payload"}', key.public_key)
    assert not is_duplicate(ours, payload, other.public_key)
    assert not is_duplicate(signature_layer(payload, other.sign(payload)), payload, key.public_key)
    with_bundle = Descriptor(
        ours.media_type,
        ours.digest,
        ours.size,
        annotations={**(ours.annotations or {}), "dev.sigstore.cosign/bundle": "{}"},
    )
    assert not is_duplicate(with_bundle, payload, key.public_key)
    unsigned = Descriptor(ours.media_type, ours.digest, ours.size)
    assert not is_duplicate(unsigned, payload, key.public_key)
