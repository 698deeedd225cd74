"""Registry source resolution: an image holding source code, resolved to its digest (`repository@sha256:...`).

kpack 0.4.0 passed the reference through unchanged, so a moved tag changed the source of later builds without
the SourceResolver noticing. Resolving to the digest makes the resolved source immutable like a git commit. The
digest is the manifest's (an index stays an index: the build pod picks the platform). Registry errors
(`ManifestUnknownError`, `UnauthorizedError`, `TransientError`, ...) pass through unchanged; the credentials are
the caller's `RegistryClient`'s keychain (built from `imagePullSecrets` and the service account).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from kpack_core.registry import InvalidReferenceError, RegistryClient, parse_reference
from kpack_core.source.errors import InvalidSourceError
from kpack_core.source.resolved import ResolvedRegistry

log = structlog.get_logger(__name__)

REGISTRY_IMAGE_FIELD = "spec.source.registry.image"
"""The spec field a source image comes from, named in validation errors."""


async def resolve_registry_image(
    client: RegistryClient,
    image: str,
    *,
    image_pull_secrets: Sequence[str] = (),
    sub_path: str | None = None,
    field: str = REGISTRY_IMAGE_FIELD,
) -> ResolvedRegistry:
    """The source image by digest. An unparsable reference is an `InvalidSourceError` naming `field`;
    `image_pull_secrets` (secret names) are passed through to the result for the build pod."""
    try:
        reference = parse_reference(image)
    except InvalidReferenceError as exc:
        raise InvalidSourceError(field, image, exc.problem) from exc
    digest = await client.get_digest(reference)
    resolved = str(reference.with_digest(digest))
    log.debug("registry source resolved", image=image, resolved=resolved)
    return ResolvedRegistry(image=resolved, image_pull_secrets=tuple(image_pull_secrets), sub_path=sub_path)
