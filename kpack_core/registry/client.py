"""The OCI distribution client: manifests, indexes, blobs, mounts and tags over an authorised `Transport`.

Pushes never leave anything half written that a tag points at: every blob an image references is present (found by
HEAD, mounted, or uploaded) before its manifest is PUT, and a tag only moves with that final PUT (formats.md §2.5).
Digests are always the sha256 of the exact bytes; a manifest fetched by digest is checked against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
from collections.abc import Iterable, Mapping
from types import TracebackType
from urllib.parse import quote, urljoin

import aiohttp
from yarl import URL

from kpack_core.registry import mediatypes
from kpack_core.registry.auth import Keychain, pull_scope, push_scope
from kpack_core.registry.digest import compute_digest, sha256_digest
from kpack_core.registry.errors import (
    BlobUnknownError,
    DigestMismatchError,
    ManifestUnknownError,
    NotFoundError,
    RegistryError,
)
from kpack_core.registry.locations import BlobLocations
from kpack_core.registry.manifest import (
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    Platform,
    RawManifest,
)
from kpack_core.registry.reference import Reference, parse_reference, validate_digest
from kpack_core.registry.transport import Answer, Endpoints, RegistryOptions, Transport

BLOB_PUSH_CONCURRENCY = 4
"""Blobs of one image uploaded at once: enough to overlap round trips, few enough not to starve other tasks."""


class BlobPush(enum.Enum):
    """How `push_blob` made a blob present in the target repository."""

    EXISTED = "existed"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


def _ref(reference: Reference | str) -> Reference:
    return reference if isinstance(reference, Reference) else parse_reference(reference)


def _location(answer: Answer, reference: Reference) -> str:
    """The upload URL of a 202, resolved against the request URL (registries may send it relative)."""
    location = answer.headers.get("Location")
    if not location:
        raise RegistryError(str(reference), f"upload answer {answer.status} without a Location header")
    return urljoin(str(answer.url), location)


def _with_digest(location: str, digest: str) -> URL:
    """`location` with `digest=` added to its existing query; state parameters such as `_state` stay untouched."""
    separator = "&" if "?" in location else "?"
    return URL(f"{location}{separator}digest={quote(digest, safe='')}", encoded=True)


class RegistryClient:
    """Reads and writes images in OCI registries. Use as `async with RegistryClient(keychain) as client:`.

    References may be given as `Reference` or as text. Every method raises a `RegistryError` subclass naming
    the reference on failure (`ManifestUnknownError`, `BlobUnknownError`, `UnauthorizedError`, `DeniedError`, ...).
    """

    def __init__(
        self,
        keychain: Keychain | None = None,
        options: RegistryOptions | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        endpoints: Endpoints | None = None,
        locations: BlobLocations | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`session` (not closed by `close()`), `endpoints` (pings and tokens), `locations` (where blobs are) and
        `tls` (the client context) may be shared with other clients: `RegistryClients` does; each is the client's
        own otherwise."""
        self.options = options or RegistryOptions()
        self.transport = Transport(keychain, self.options, session, endpoints=endpoints, tls=tls)
        self.locations = locations if locations is not None else BlobLocations()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()

    # --- manifests ---------------------------------------------------------------------------------------------

    async def get_manifest(
        self, reference: Reference | str, accept: tuple[str, ...] = mediatypes.MANIFESTS
    ) -> RawManifest:
        """The manifest at the reference's tag or digest, exactly as stored; checked against a requested digest."""
        ref = _ref(reference)
        answer = await self.transport.request(
            ref,
            "get manifest",
            "GET",
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scopes=[pull_scope(ref.repository)],
            headers={"Accept": mediatypes.accept_header(accept)},
            not_found=ManifestUnknownError,
        )
        digest = await compute_digest(answer.body)
        if ref.digest is not None and digest != ref.digest:
            raise DigestMismatchError(str(ref), f"manifest content hashes to {digest}")
        try:
            body_type = RawManifest(answer.body, "", digest).json().get("mediaType")
            media_type = mediatypes.negotiated(answer.headers.get("Content-Type"), body_type, accept)
        except ValueError as exc:
            raise RegistryError(str(ref), f"unusable manifest: {exc}", status=answer.status) from exc
        return RawManifest(answer.body, media_type, digest)

    async def head_manifest(self, reference: Reference | str) -> Descriptor | None:
        """Digest, size and type of the manifest from a HEAD; None when the manifest does not exist. The digest
        is None-safe: registries that leave out `Docker-Content-Digest` are answered by `get_digest`."""
        ref = _ref(reference)
        answer = await self.transport.request(
            ref,
            "head manifest",
            "HEAD",
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scopes=[pull_scope(ref.repository)],
            headers={"Accept": mediatypes.ACCEPT_ALL},
            ok=(200, 404),
        )
        if answer.status == 404:
            return None
        digest = answer.headers.get("Docker-Content-Digest", "")
        return Descriptor(
            mediatypes.base(answer.headers.get("Content-Type")),
            digest,
            int(answer.headers.get("Content-Length", "0") or 0),
        )

    async def get_digest(self, reference: Reference | str) -> str:
        """The digest the reference points at: HEAD's `Docker-Content-Digest`, else the sha256 of a GET's body."""
        ref = _ref(reference)
        head = await self.head_manifest(ref)
        if head is None:
            raise ManifestUnknownError(str(ref), "manifest unknown", status=404)
        if head.digest:
            return validate_digest(head.digest, str(ref))
        return (await self.get_manifest(ref)).digest

    async def put_manifest(
        self, reference: Reference | str, manifest: RawManifest | ImageManifest | ImageIndex
    ) -> Reference:
        """PUTs the manifest at the reference's tag (or digest) and returns the reference by digest."""
        ref = _ref(reference)
        raw = manifest if isinstance(manifest, RawManifest) else RawManifest.of(manifest)
        if ref.digest is not None and ref.digest != raw.digest:
            raise DigestMismatchError(str(ref), f"manifest content hashes to {raw.digest}")
        answer = await self.transport.request(
            ref,
            "put manifest",
            "PUT",
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scopes=[push_scope(ref.repository)],
            headers={"Content-Type": raw.media_type},
            data=raw.content,
            ok=(200, 201),
        )
        announced = answer.headers.get("Docker-Content-Digest")
        if announced and announced != raw.digest:
            raise DigestMismatchError(str(ref), f"registry stored {announced}, we sent {raw.digest}")
        return ref.with_digest(raw.digest)

    async def resolve_image(self, reference: Reference | str, platform: Platform | None = None) -> RawManifest:
        """The image manifest for `platform` (default linux/amd64): the manifest itself, or the matching child of
        an index fetched by digest."""
        ref = _ref(reference)
        raw = await self.get_manifest(ref)
        if not raw.is_index:
            return raw
        wanted = platform or Platform()
        chosen = raw.index().select(wanted)
        if chosen is None:
            offered = ", ".join(str(p) for p in raw.index().platforms()) or "none"
            raise ManifestUnknownError(str(ref), f"no image for platform {wanted} in the index (offered: {offered})")
        return await self.get_manifest(ref.with_digest(chosen.digest))

    async def get_config(self, reference: Reference | str, platform: Platform | None = None) -> ImageConfig:
        """The image config of the (platform-selected) image."""
        ref = _ref(reference)
        manifest = (await self.resolve_image(ref, platform)).image()
        return ImageConfig.from_bytes(await self.get_blob(ref, manifest.config.digest))

    async def get_labels(self, reference: Reference | str, platform: Platform | None = None) -> dict[str, str]:
        return (await self.get_config(reference, platform)).labels

    async def tag(self, source: Reference | str, tag: str) -> Reference:
        """Points `tag` (same repository) at what `source` points at, byte for byte; returns the new tag reference."""
        ref = _ref(source)
        raw = await self.get_manifest(ref)
        target = ref.with_tag(tag)
        await self.put_manifest(target, raw)
        return target

    async def list_tags(self, reference: Reference | str, page_size: int = 1000) -> list[str]:
        """All tags of the repository, following `Link: <...>; rel="next"` pagination."""
        ref = _ref(reference)
        tags: list[str] = []
        target: str | URL = f"/v2/{ref.repository}/tags/list?n={page_size}"
        while True:
            answer = await self.transport.request(ref, "list tags", "GET", target, scopes=[pull_scope(ref.repository)])
            decoded = RawManifest(answer.body, "", "").json()
            tags.extend(decoded.get("tags") or [])
            link = answer.headers.get("Link", "")
            if 'rel="next"' not in link:
                return tags
            target = URL(urljoin(str(answer.url), link.split(";", 1)[0].strip(" <>")), encoded=True)

    # --- blobs -------------------------------------------------------------------------------------------------

    async def blob_exists(self, reference: Reference | str, digest: str, *, push: bool = False) -> bool:
        """HEAD the blob in the reference's repository (with a push token when a push follows, so one token
        serves the whole push)."""
        ref = _ref(reference)
        answer = await self.transport.request(
            ref,
            "head blob",
            "HEAD",
            f"/v2/{ref.repository}/blobs/{validate_digest(digest, str(ref))}",
            scopes=[push_scope(ref.repository) if push else pull_scope(ref.repository)],
            ok=(200, 404),
        )
        return answer.status == 200

    async def get_blob(self, reference: Reference | str, digest: str) -> bytes:
        """The blob's bytes (redirects to object storage followed), checked against the digest."""
        ref = _ref(reference)
        answer = await self.transport.request(
            ref,
            "get blob",
            "GET",
            f"/v2/{ref.repository}/blobs/{validate_digest(digest, str(ref))}",
            scopes=[pull_scope(ref.repository)],
            not_found=BlobUnknownError,
        )
        actual = await compute_digest(answer.body)
        if actual != digest:
            raise DigestMismatchError(str(ref), f"blob {digest} hashes to {actual}")
        self.locations.remember(ref.registry, ref.repository, digest)
        return answer.body

    async def push_blob(
        self,
        reference: Reference | str,
        data: bytes,
        *,
        digest: str | None = None,
        mount_from: Iterable[Reference | str] = (),
        chunk_size: int | None = None,
    ) -> BlobPush:
        """Makes the blob present in the reference's repository: mounted from where it was last seen (see
        `locations`), else skipped when a HEAD finds it, else mounted from the first of `mount_from` (same registry)
        that has it, else uploaded (monolithic, or PATCH chunks when `chunk_size` or the options' `chunk_size` is
        set)."""
        ref = _ref(reference)
        digest = digest or await compute_digest(data)
        return await self._place(ref, digest, data, [_ref(s) for s in mount_from], chunk_size)

    def remember_blob(self, reference: Reference | str, digest: str) -> None:
        """`digest` is in the reference's repository (a layer read from there): later pushes mount it from there."""
        ref = _ref(reference)
        self.locations.remember(ref.registry, ref.repository, digest)

    async def _place(
        self, ref: Reference, digest: str, data: bytes | None, sources: list[Reference], chunk_size: int | None = None
    ) -> BlobPush:
        """`push_blob`'s work, also for blobs with no bytes given (`data` None: BlobUnknownError when it can be
        neither found nor mounted). One digest is placed on one registry at a time among the clients sharing
        `locations`, so a concurrent push of the same content mounts what the first one uploaded.

        A remembered location is tried before the HEAD: a mount of a blob the repository already holds succeeds too,
        so one request does both. A refused mount may open an upload session (202): it is used for the upload when
        the bytes are at hand, else cancelled."""
        validate_digest(digest, str(ref))
        async with self.locations.exclusive(ref.registry, digest):
            remembered = [
                Reference(ref.registry, repository, None)
                for repository in self.locations.repositories(ref.registry, digest)
                if repository != ref.repository
            ]
            tried = {source.repository for source in remembered}
            given = [s for s in sources if s.registry != ref.registry or s.repository not in tried]
            opened: str | None = None
            try:
                # Remembered locations, then a HEAD of the target (None marks it), then the sources given.
                for source in (*remembered, None, *given):
                    if source is None:
                        if await self.blob_exists(ref, digest, push=True):
                            return self._placed(ref, digest, BlobPush.EXISTED)
                        continue
                    mounted, opened = await self._mount(ref, digest, source)
                    if mounted:
                        return self._placed(ref, digest, BlobPush.MOUNTED)
                    if source in remembered:  # (the sources given exclude those)
                        self.locations.forget(ref.registry, source.repository, digest)
                    if opened is not None:
                        if data is not None:
                            break
                        await self._cancel(ref, opened)
                        opened = None
                if data is None:
                    raise BlobUnknownError(str(ref), f"blob {digest} is neither given nor in the registry")
                location, opened = opened or await self._start_upload(ref), None
                size = chunk_size or self.options.chunk_size
                if size:
                    await self._upload_chunked(ref, location, data, digest, size)
                else:
                    await self._finish_upload(ref, location, digest, data)
                return self._placed(ref, digest, BlobPush.UPLOADED)
            finally:
                if opened is not None:
                    await self._cancel(ref, opened)

    def _placed(self, ref: Reference, digest: str, how: BlobPush) -> BlobPush:
        self.locations.remember(ref.registry, ref.repository, digest)
        return how

    async def _mount(self, ref: Reference, digest: str, source: Reference) -> tuple[bool, str | None]:
        """(True, None) when mounted; (False, location) when the registry started an upload instead; (False, None)
        when the mount was refused (then a plain upload follows, as the spec advises)."""
        if source.registry != ref.registry or source.repository == ref.repository:
            return False, None
        query = f"mount={quote(digest, safe='')}&from={quote(source.repository, safe='/')}"
        try:
            answer = await self.transport.request(
                ref,
                f"mount blob from {source.name}",
                "POST",
                f"/v2/{ref.repository}/blobs/uploads/?{query}",
                scopes=[push_scope(ref.repository), pull_scope(source.repository)],
                headers={"Content-Length": "0"},
                ok=(201, 202),
            )
        except RegistryError:
            return False, None
        return (True, None) if answer.status == 201 else (False, _location(answer, ref))

    async def _start_upload(self, ref: Reference) -> str:
        answer = await self.transport.request(
            ref,
            "start blob upload",
            "POST",
            f"/v2/{ref.repository}/blobs/uploads/",
            scopes=[push_scope(ref.repository)],
            headers={"Content-Length": "0"},
            ok=(202,),
        )
        return _location(answer, ref)

    async def _finish_upload(self, ref: Reference, location: str, digest: str, data: bytes) -> None:
        await self.transport.request(
            ref,
            f"upload blob {digest}",
            "PUT",
            _with_digest(location, digest),
            scopes=[push_scope(ref.repository)],
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            ok=(201, 204),
        )

    async def _upload_chunked(self, ref: Reference, location: str, data: bytes, digest: str, chunk_size: int) -> None:
        for start in range(0, len(data), chunk_size):
            chunk = data[start : start + chunk_size]
            answer = await self.transport.request(
                ref,
                f"upload chunk {start}-{start + len(chunk) - 1} of {digest}",
                "PATCH",
                URL(location, encoded=True),
                scopes=[push_scope(ref.repository)],
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                },
                data=chunk,
                ok=(202,),
            )
            # Each answer carries the next location (its state changes); always continue from the newest.
            location = _location(answer, ref)
        await self._finish_upload(ref, location, digest, b"")

    # --- images ------------------------------------------------------------------------------------------------

    async def push_image(
        self,
        reference: Reference | str,
        manifest: ImageManifest | RawManifest,
        blobs: Iterable[bytes] | Mapping[str, bytes] = (),
        *,
        mount_from: Iterable[Reference | str] = (),
    ) -> Reference:
        """Pushes the image's blobs (layers, then config), then its manifest at the reference's tag or digest.

        `blobs` are the contents the registry may lack (keyed by digest, or a plain list); a referenced blob with no
        content given must already be in the repository or mountable. On any failure the manifest is not PUT, so
        no tag moves. Returns the reference by digest."""
        ref = _ref(reference)
        raw = manifest if isinstance(manifest, RawManifest) else RawManifest.of(manifest)
        image = raw.image()
        given = dict(blobs) if isinstance(blobs, Mapping) else {sha256_digest(b): b for b in blobs}
        sources = [_ref(s) for s in mount_from]
        limit = asyncio.Semaphore(BLOB_PUSH_CONCURRENCY)

        async def ensure(descriptor: Descriptor) -> None:
            async with limit:
                await self._place(ref, descriptor.digest, given.get(descriptor.digest), sources)

        pending = {d.digest: d for d in (*image.layers, image.config)}
        await self.transport.authorize(ref, self._push_scopes(ref, pending, sources))
        results = await asyncio.gather(*(ensure(d) for d in pending.values()), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return await self.put_manifest(ref, raw)

    def _push_scopes(self, ref: Reference, digests: Iterable[str], sources: Iterable[Reference]) -> list[str]:
        """Push to `ref`, and pull from every repository of its registry a blob may be mounted from."""
        repositories = {s.repository for s in sources if s.registry == ref.registry}
        for digest in digests:  # the newest location of each: the one a mount tries first
            repositories.update(self.locations.repositories(ref.registry, digest)[:1])
        repositories.discard(ref.repository)
        return [push_scope(ref.repository), *(pull_scope(r) for r in sorted(repositories))]

    async def push_index(
        self, reference: Reference | str, index: ImageIndex | RawManifest, *, check_children: bool = True
    ) -> Reference:
        """PUTs an index after checking (HEAD) that every child manifest is in the repository."""
        ref = _ref(reference)
        raw = index if isinstance(index, RawManifest) else RawManifest.of(index)
        if check_children:
            for child in raw.index().manifests:
                if await self.head_manifest(ref.with_digest(child.digest)) is None:
                    raise ManifestUnknownError(str(ref), f"index child {child.digest} is not in the repository")
        return await self.put_manifest(ref, raw)

    async def _cancel(self, ref: Reference, location: str) -> None:
        """Best effort: an abandoned upload session is purged by the registry anyway."""
        with contextlib.suppress(RegistryError):
            await self.transport.request(
                ref,
                "cancel upload",
                "DELETE",
                URL(location, encoded=True),
                scopes=[push_scope(ref.repository)],
                ok=(200, 202, 204, 404),
            )

    async def delete_manifest(self, reference: Reference | str) -> None:
        """DELETE by digest (registries refuse deleting by tag)."""
        ref = _ref(reference)
        if ref.digest is None:
            raise NotFoundError(str(ref), "delete needs a digest reference")
        await self.transport.request(
            ref,
            "delete manifest",
            "DELETE",
            f"/v2/{ref.repository}/manifests/{ref.digest}",
            scopes=[f"repository:{ref.repository}:delete"],
            ok=(200, 202),
            not_found=ManifestUnknownError,
        )
