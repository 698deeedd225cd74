"""Verify an image's cosign signatures with a public key, as `cosign verify --key` does (formats.md §1.6).

Every layer of the `.sig` manifest is tried on its own: its payload blob is fetched, the base64 DER signature in
its annotation is checked against the key, and the claims are checked (the signed digest equals the image's; each
requested annotation equals the payload's `optional` value, as a JSON value). A layer that fails does not spoil the
others; success means at least one layer verified. No transparency log is consulted (`--insecure-ignore-tlog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from kpack_core.cosign import sigimage
from kpack_core.cosign.errors import VerificationError
from kpack_core.cosign.keys import verify_signature
from kpack_core.cosign.payload import SimpleSigning, parse_payload
from kpack_core.cosign.settings import parse_signature_repository
from kpack_core.registry.client import RegistryClient
from kpack_core.registry.errors import NotFoundError, RegistryError
from kpack_core.registry.manifest import Descriptor
from kpack_core.registry.reference import Reference, parse_reference


@dataclass(frozen=True)
class VerifiedSignature:
    """One layer that verified: its descriptor, the exact payload bytes and their parsed claims."""

    layer: Descriptor
    payload: bytes
    claims: SimpleSigning


def check_claims(claims: SimpleSigning, digest: str, annotations: Mapping[str, Any] | None) -> str | None:
    """Why the claims do not hold for `digest` and `annotations`, or None when they do."""
    if claims.manifest_digest != digest:
        return f"signs {claims.manifest_digest}, not {digest}"
    optional = claims.optional or {}
    for name, wanted in (annotations or {}).items():
        if name not in optional or optional[name] != wanted or type(optional[name]) is not type(wanted):
            return f"annotation {name!r} is {optional.get(name)!r}, not {wanted!r}"
    return None


async def _check_layer(
    client: RegistryClient,
    signature_ref: Reference,
    layer: Descriptor,
    key: ec.EllipticCurvePublicKey,
    digest: str,
    annotations: Mapping[str, Any] | None,
) -> VerifiedSignature | str:
    """The verified layer, or why it failed."""
    encoded = (layer.annotations or {}).get(sigimage.SIGNATURE_ANNOTATION)
    if not encoded:
        return "no signature annotation"
    try:
        payload = await client.get_blob(signature_ref, layer.digest)
    except RegistryError as exc:
        return f"payload not readable: {exc}"
    if not verify_signature(key, payload, encoded):
        return "signature does not verify with the key"
    try:
        claims = parse_payload(payload)
    except ValueError as exc:
        return str(exc)
    problem = check_claims(claims, digest, annotations)
    return problem if problem is not None else VerifiedSignature(layer, payload, claims)


async def verify_image(
    client: RegistryClient,
    key: ec.EllipticCurvePublicKey,
    image: Reference | str,
    *,
    signature_repository: str | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> list[VerifiedSignature]:
    """The signatures of `image` (a tag is resolved to its digest; a digest is used as given) that verify with
    `key`, in layer order. Raises `VerificationError` naming the image when there is none, with each layer's
    reason."""
    ref = image if isinstance(image, Reference) else parse_reference(image)
    signature_repository = parse_signature_repository(signature_repository, "signature_repository")
    try:
        digest = ref.digest or await client.get_digest(ref)
    except RegistryError as exc:
        raise VerificationError(str(ref), f"resolving the image: {str(exc).removeprefix(f'{ref}: ')}") from exc
    signature_ref = sigimage.signature_reference(ref, digest, signature_repository)
    try:
        manifest = (await client.get_manifest(signature_ref)).image()
    except NotFoundError as exc:
        raise VerificationError(str(ref), f"no signatures found at {signature_ref}") from exc
    except RegistryError as exc:
        raise VerificationError(str(ref), f"reading the signatures: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(str(ref), f"{signature_ref} is not a signature image: {exc}") from exc
    verified: list[VerifiedSignature] = []
    reasons: list[str] = []
    for index, layer in enumerate(manifest.layers):
        outcome = await _check_layer(client, signature_ref, layer, key, digest, annotations)
        if isinstance(outcome, VerifiedSignature):
            verified.append(outcome)
        else:
            reasons.append(f"layer {index}: {outcome}")
    if not verified:
        detail = "; ".join(reasons) or "the signature image has no layers"
        raise VerificationError(str(ref), f"no signature at {signature_ref} verified ({detail})")
    return verified
