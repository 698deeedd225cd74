"""The signature image at `<sigrepo>:sha256-<hex>.sig`: its tag, and appending one signature layer to it.

formats.md §1.4 and §1.5. Pure functions: the signer fetches the existing manifest and config, this module computes the
next manifest and config, the signer pushes them. Existing layers (another signer's, the cosign CLI's with its
bundle or certificate) are kept exactly as described; one layer is appended, and the config gains the matching
`diff_ids` and `history` entries, as go-containerregistry's `mutate.Append` on an empty image does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from kpack_core.cosign.keys import verify_signature
from kpack_core.cosign.payload import MEDIA_TYPE as PAYLOAD_MEDIA_TYPE
from kpack_core.cosign.payload import go_json
from kpack_core.registry import mediatypes
from kpack_core.registry.digest import sha256_digest
from kpack_core.registry.manifest import Descriptor, ImageManifest, RawManifest
from kpack_core.registry.reference import Reference, parse_reference, validate_digest

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
"""The layer annotation holding the base64 signature (note the old `cosignproject` namespace)."""
SIGNATURE_SUFFIX = ".sig"
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time, which ggcr writes for `created` on the empty image and every appended layer."""


def signature_tag(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.sig`."""
    validate_digest(digest)
    return digest.replace(":", "-", 1) + SIGNATURE_SUFFIX


def signature_reference(image: Reference, digest: str, signature_repository: str | None = None) -> Reference:
    """Where the signatures of `image`@`digest` live: the image's repository, or `signature_repository` (a full
    repository name, `COSIGN_REPOSITORY` semantics) when given."""
    repository = parse_reference(signature_repository) if signature_repository else image
    return repository.with_tag(signature_tag(digest))


def media_types(docker: bool) -> tuple[str, str]:
    """(manifest, config) media types: OCI by default, Docker schema 2 for registries that refuse OCI."""
    if docker:
        return mediatypes.DOCKER_MANIFEST, mediatypes.DOCKER_CONFIG
    return mediatypes.OCI_MANIFEST, mediatypes.OCI_CONFIG


def empty_config() -> dict[str, Any]:
    """ggcr's config of `empty.Image`, keys in its struct order so digests match what cosign writes."""
    return {
        "architecture": "",
        "created": ZERO_TIME,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {},
    }


def signature_layer(payload: bytes, signature: str) -> Descriptor:
    """The layer of one signature: the payload stored uncompressed, the signature in an annotation."""
    return Descriptor.of(payload, PAYLOAD_MEDIA_TYPE, annotations={SIGNATURE_ANNOTATION: signature})


def is_duplicate(layer: Descriptor, payload: bytes, key: ec.EllipticCurvePublicKey) -> bool:
    """Whether `layer` already carries this payload, signed by this key, with no other annotations (cosign's dupe
    check: same payload digest, a signature that verifies, the same certificate/chain/bundle — none here)."""
    annotations = layer.annotations or {}
    if layer.digest != sha256_digest(payload) or set(annotations) != {SIGNATURE_ANNOTATION}:
        return False
    return verify_signature(key, payload, annotations[SIGNATURE_ANNOTATION])


def _appended_config(config: dict[str, Any], diff_id: str) -> dict[str, Any]:
    """`config` with one more layer: `diff_ids` and `history` entries added at the end, other fields untouched."""
    updated = dict(config)
    rootfs = updated.get("rootfs")
    rootfs = dict(rootfs) if isinstance(rootfs, dict) else {"type": "layers"}
    diff_ids = rootfs.get("diff_ids")
    rootfs["diff_ids"] = [*(diff_ids if isinstance(diff_ids, list) else []), diff_id]
    history = updated.get("history")
    history = [*(history if isinstance(history, list) else []), {"created": ZERO_TIME}]
    if "history" in updated:
        updated["history"] = history
        updated["rootfs"] = rootfs
        return updated
    # ggcr's struct order puts history between created and os; keep that order for a config that lacked it.
    ordered: dict[str, Any] = {}
    for key, value in updated.items():
        if key == "os":
            ordered["history"] = history
        ordered[key] = rootfs if key == "rootfs" else value
    ordered.setdefault("history", history)
    ordered.setdefault("rootfs", rootfs)
    return ordered


def parse_config(data: bytes) -> dict[str, Any]:
    """An existing signature image's config; `ValueError` when it is not a JSON object."""
    try:
        decoded = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("the signature image config is not JSON") from exc
    if not isinstance(decoded, dict):
        raise ValueError("the signature image config is not a JSON object")
    return decoded


@dataclass(frozen=True)
class SignatureImage:
    """The next signature image: the manifest to PUT and the config blob it references."""

    manifest: RawManifest
    config: bytes


def append_signature(
    existing: ImageManifest | None,
    existing_config: dict[str, Any] | None,
    layer: Descriptor,
    *,
    docker_media_types: bool = False,
) -> SignatureImage:
    """The signature image with `layer` appended to `existing` (None: start from the empty image). The manifest and
    config media types follow `docker_media_types`; existing layers and manifest annotations are kept."""
    manifest_type, config_type = media_types(docker_media_types)
    config = _appended_config(existing_config if existing_config is not None else empty_config(), layer.digest)
    config_bytes = go_json(config)
    layers = (*(existing.layers if existing is not None else ()), layer)
    manifest = ImageManifest(
        config=Descriptor.of(config_bytes, config_type),
        layers=layers,
        media_type=manifest_type,
        annotations=existing.annotations if existing is not None else None,
    )
    return SignatureImage(RawManifest.of(manifest), config_bytes)
