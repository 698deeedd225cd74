"""Media types of manifests, indexes, configs and layers (formats.md §2.4), and the Accept header we send.

The Accept header always lists Docker schema 2 as well as OCI: leaving it out makes Docker Hub and distribution
down-convert to legacy schema 1. Content-Type parameters (`; charset=...`) are ignored when comparing.
"""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_UNCOMPRESSED_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_UNCOMPRESSED_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFESTS = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
"""Every manifest type this client reads, in the order of the Accept header."""

ACCEPT_ALL = ", ".join(MANIFESTS)
ACCEPT_IMAGE = ", ".join((DOCKER_MANIFEST, OCI_MANIFEST))
ACCEPT_INDEX = ", ".join((DOCKER_MANIFEST_LIST, OCI_INDEX))


def base(content_type: str | None) -> str:
    """The media type without parameters, lowercased: `application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_index(media_type: str | None) -> bool:
    return base(media_type) in INDEXES


def is_image_manifest(media_type: str | None) -> bool:
    return base(media_type) in IMAGE_MANIFESTS


def accept_header(media_types: tuple[str, ...] = MANIFESTS) -> str:
    """The Accept header for these types; an image manifest request always includes Docker schema 2."""
    wanted = list(media_types)
    if OCI_MANIFEST in wanted and DOCKER_MANIFEST not in wanted:
        wanted.insert(0, DOCKER_MANIFEST)
    return ", ".join(wanted)


def negotiated(content_type: str | None, body_media_type: object, accepted: tuple[str, ...] = MANIFESTS) -> str:
    """The manifest's media type: the response Content-Type unless it is generic (then the body's `mediaType`).

    Raises `ValueError` when the result is not one we asked for (a schema 1 answer, most likely)."""
    header = base(content_type)
    media_type = header
    if header in ("", "application/json", "application/octet-stream", "text/plain") and isinstance(
        body_media_type, str
    ):
        media_type = base(body_media_type)
    if media_type not in accepted:
        raise ValueError(f"unsupported manifest media type {media_type or '(none)'!r}")
    return media_type
