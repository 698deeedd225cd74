"""Sign an image in its registry: resolve it once, sign the payload, append the signature to `sha256-<hex>.sig`.

kpack 0.4.0 signed whatever its tag pointed at when signing ran, so a push in between could get the wrong image
signed. Here a tag is resolved to its manifest digest exactly once and that digest is signed; a digest reference is
signed as given and never resolved. The push order is payload blob, config blob, manifest: a failure leaves no tag
pointing at a missing blob, and the `.sig` tag only moves with the final PUT. The read-modify-write of the `.sig`
manifest races with another signer of the same digest, as in cosign (formats.md §1.5); the later PUT wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from kpack_core.cosign import sigimage
from kpack_core.cosign.errors import SigningError
from kpack_core.cosign.keys import SigningKey
from kpack_core.cosign.payload import build_payload
from kpack_core.cosign.settings import parse_signature_repository
from kpack_core.registry.client import RegistryClient
from kpack_core.registry.errors import NotFoundError, RegistryError
from kpack_core.registry.manifest import ImageManifest
from kpack_core.registry.reference import Reference, parse_reference

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SignResult:
    """What was signed and where the signature went.

    `image` is the signed image by digest and `digest` that digest; `signature` the `.sig` tag reference;
    `signature_digest` the digest of the signature manifest now at that tag. `appended` is False when an
    identical signature was already there (then nothing was pushed)."""

    image: Reference
    digest: str
    signature: Reference
    signature_digest: str
    appended: bool = True


@dataclass(frozen=True)
class _Existing:
    manifest: ImageManifest | None
    config: dict[str, Any] | None
    digest: str | None


async def _resolve(client: RegistryClient, ref: Reference) -> str:
    if ref.digest is not None:
        return ref.digest
    try:
        return await client.get_digest(ref)
    except RegistryError as exc:
        raise SigningError(str(ref), f"resolving the tag to a digest: {str(exc).removeprefix(f'{ref}: ')}") from exc


async def _existing(client: RegistryClient, image: str, signature: Reference) -> _Existing:
    """The current signature image at the `.sig` tag; a 404 (no tag, or no repository yet) means none."""
    try:
        raw = await client.get_manifest(signature)
    except NotFoundError:
        return _Existing(None, None, None)
    except RegistryError as exc:
        raise SigningError(image, f"reading the existing signatures: {exc}") from exc
    try:
        manifest = raw.image()
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningError(image, f"{signature} is not a signature image: {exc}") from exc
    try:
        config = sigimage.parse_config(await client.get_blob(signature, manifest.config.digest))
    except RegistryError as exc:
        raise SigningError(image, f"reading the config of the existing signatures: {exc}") from exc
    except ValueError as exc:
        raise SigningError(image, f"{signature}: {exc}") from exc
    return _Existing(manifest, config, raw.digest)


async def sign_image(
    client: RegistryClient,
    key: SigningKey,
    image: Reference | str,
    *,
    annotations: Mapping[str, str] | None = None,
    signature_repository: str | None = None,
    docker_media_types: bool = False,
) -> SignResult:
    """Signs `image` (a tag, resolved once, or a digest, used as is) with `key` and appends the signature to
    `<sigrepo>:sha256-<hex>.sig`, where sigrepo is `signature_repository` or the image's repository.

    `annotations` become the payload's `optional` claims. Raises `SigningError` (registry error as `__cause__`)
    naming the image; on failure no tag has moved. A signature repository with a tag or digest is an
    `InvalidSettingError`, raised before any request."""
    ref = image if isinstance(image, Reference) else parse_reference(image)
    signature_repository = parse_signature_repository(signature_repository, "signature_repository")
    digest = await _resolve(client, ref)
    signed = ref.with_digest(digest)
    signature_ref = sigimage.signature_reference(ref, digest, signature_repository)
    payload = build_payload(ref, digest, annotations)
    signature = key.sign(payload)

    existing = await _existing(client, str(signed), signature_ref)
    if existing.manifest is not None and existing.digest is not None:
        for layer in existing.manifest.layers:
            if sigimage.is_duplicate(layer, payload, key.public_key):
                log.info("signature already present", image=str(signed), signature=str(signature_ref))
                return SignResult(signed, digest, signature_ref, existing.digest, appended=False)

    next_image = sigimage.append_signature(
        existing.manifest,
        existing.config,
        sigimage.signature_layer(payload, signature),
        docker_media_types=docker_media_types,
    )
    try:
        await client.push_blob(signature_ref, payload)
        await client.push_blob(signature_ref, next_image.config)
        await client.put_manifest(signature_ref, next_image.manifest)
    except RegistryError as exc:
        raise SigningError(str(signed), f"pushing the signature: {exc}") from exc
    log.info(
        "signed image",
        image=str(signed),
        signature=str(signature_ref),
        signatures=len(next_image.manifest.image().layers),
    )
    return SignResult(signed, digest, signature_ref, next_image.manifest.digest)
