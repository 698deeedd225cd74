"""Pushing a builder image the way kpack's `Save` does (spec §0.5), with layers mounted rather than copied.

- When the tag already points at the assembled digest nothing is written: a reconcile that finds nothing new makes
  no registry writes at all.
- Otherwise the blobs made here are uploaded (unless present, or mountable from where the client's pool last put
  them), every reused layer is cross-repository mounted from the repository it was read from, the manifest is PUT
  at the tag, and the same manifest is tagged `<repo>:<YYYYMMDDhhmmss>` (UTC; kpack used the controller's local
  time, which in a container is UTC too).
- A reused layer that cannot be mounted (its source is on another registry, or the credentials may not read it
  there) is the only thing ever downloaded, through `fetch`, and uploaded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kpack_core.cnb.assemble import BuilderImage
from kpack_core.cnb.images import RemoteLayer
from kpack_core.registry import BlobUnknownError, Reference, RegistryClient, parse_reference

BlobFetcher = Callable[[RemoteLayer], Awaitable[bytes]]
"""Reads a reused layer's bytes from its source (only when it cannot be mounted)."""


@dataclass(frozen=True)
class SaveResult:
    """Where the image is: `identifier` is `<tag as given>@<digest>` (kpack's), `written` whether anything was
    pushed, `timestamp_tag` the extra tag written (None when nothing was)."""

    identifier: str
    digest: str
    written: bool
    timestamp_tag: str | None = None


def timestamp_tag(wall: float) -> str:
    """`YYYYMMDDhhmmss` of a wall-clock time (seconds since the epoch), in UTC."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(wall))


def mount_sources(image: BuilderImage) -> list[Reference]:
    """The repositories reused layers come from, once each, in layer order."""
    seen: dict[str, Reference] = {}
    for layer in image.remote:
        seen.setdefault(layer.source.name, layer.source)
    return list(seen.values())


async def current_digest(client: RegistryClient, tag: Reference) -> str | None:
    """The digest `tag` points at, or None when there is no such tag (or repository)."""
    head = await client.head_manifest(tag)
    if head is None:
        return None
    if head.digest:
        return head.digest
    return await client.get_digest(tag)


async def save_image(
    client: RegistryClient, tag: str, image: BuilderImage, *, fetch: BlobFetcher, wall: float
) -> SaveResult:
    """Make `tag` point at `image` (see the module docstring); registry errors propagate, naming the reference."""
    ref = parse_reference(tag)
    digest = image.digest
    identifier = f"{tag}@{digest}"
    if await current_digest(client, ref) == digest:
        return SaveResult(identifier, digest, written=False)
    for layer in image.remote:  # each reused layer is mounted from where it was read, first
        client.remember_blob(layer.source, layer.digest)
    sources = mount_sources(image)
    try:
        await client.push_image(ref, image.raw, image.blobs, mount_from=sources)
    except BlobUnknownError:
        missing = [layer for layer in image.remote if not await client.blob_exists(ref, layer.digest, push=True)]
        copied = {layer.digest: await fetch(layer) for layer in missing}
        await client.push_image(ref, image.raw, {**image.blobs, **copied}, mount_from=sources)
    stamp = timestamp_tag(wall)
    await client.put_manifest(ref.with_tag(stamp), image.raw)
    return SaveResult(identifier, digest, written=True, timestamp_tag=stamp)
