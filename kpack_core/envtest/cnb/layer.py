"""Deterministic image layers: a tar of sorted entries with fixed metadata, gzipped with mtime 0.

The same entries give the same bytes on every run and machine (for a given zlib), so the diffID (sha256 of the
tar) and the digest (sha256 of the gzip) are stable and tests can pin them. Every entry gets the mtime kpack and
pack write, 1980-01-01T00:00:01Z (formats.md §3.2), empty user and group names, and the uid/gid/mode given;
missing parent directories are added as root-owned 0755. Paths are written relative (`cnb/...`), as the OCI
layer spec writes them; readers treat `/cnb/...` and `cnb/...` alike.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

from kpack_core.registry import Descriptor, mediatypes, sha256_digest

NORMALIZED_MTIME = 315532801
"""1980-01-01T00:00:01Z: the mtime of every entry, as kpack's and pack's layer writers set it."""

NORMALIZED_CREATED = "1980-01-01T00:00:01Z"
"""The image config `created` of every image built here (the lifecycle writes the same constant)."""

DIRECTORY_MODE = 0o755
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755


@dataclass(frozen=True)
class TarEntry:
    """One tar entry: a directory when `content` is None, else a regular file."""

    path: str
    mode: int
    content: bytes | None = None
    uid: int = 0
    gid: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalize_path(self.path))

    @property
    def is_directory(self) -> bool:
        return self.content is None


def normalize_path(path: str) -> str:
    """`/cnb/x/` -> `cnb/x`; rejects empty paths and `..` (a layer must never write outside the root)."""
    stripped = path.strip("/")
    parts = stripped.split("/")
    if not stripped or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid layer path {path!r}")
    return stripped


def directory(path: str, *, mode: int = DIRECTORY_MODE, uid: int = 0, gid: int = 0) -> TarEntry:
    return TarEntry(path, mode, None, uid, gid)


def regular_file(path: str, content: bytes | str, *, mode: int = FILE_MODE, uid: int = 0, gid: int = 0) -> TarEntry:
    data = content.encode() if isinstance(content, str) else content
    return TarEntry(path, mode, data, uid, gid)


def executable(path: str, content: bytes | str, *, uid: int = 0, gid: int = 0) -> TarEntry:
    return regular_file(path, content, mode=EXECUTABLE_MODE, uid=uid, gid=gid)


@dataclass(frozen=True)
class Layer:
    """A built layer: the uncompressed tar (hashed to the diffID) and the gzip blob (hashed to the digest)."""

    tar: bytes
    blob: bytes
    diff_id: str
    digest: str
    media_type: str = mediatypes.DOCKER_LAYER

    @property
    def size(self) -> int:
        """The compressed size, what a manifest descriptor and a ClusterStore status report."""
        return len(self.blob)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


def with_parents(entries: Iterable[TarEntry]) -> list[TarEntry]:
    """The entries sorted by path, each missing parent directory added (root, 0755); duplicate paths rejected."""
    by_path: dict[str, TarEntry] = {}
    for entry in entries:
        if entry.path in by_path:
            raise ValueError(f"duplicate layer path {entry.path!r}")
        by_path[entry.path] = entry
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = directory(parent)
            parent = posixpath.dirname(parent)
    for path in by_path:
        parent = posixpath.dirname(path)
        if parent and not by_path[parent].is_directory:
            raise ValueError(f"layer path {path!r} is below the file {parent!r}")
    # Sorting by path puts every directory before its contents (a prefix sorts first).
    return [by_path[path] for path in sorted(by_path)]


def _tar_info(entry: TarEntry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.type = tarfile.DIRTYPE if entry.is_directory else tarfile.REGTYPE
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = NORMALIZED_MTIME
    info.size = 0 if entry.content is None else len(entry.content)
    return info


def tar_bytes(entries: Iterable[TarEntry]) -> bytes:
    """The uncompressed tar of `entries` (parents added, sorted). PAX format: headers are plain ustar unless a
    name is too long for it, and Go's archive/tar reads both."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in with_parents(entries):
            content = None if entry.content is None else io.BytesIO(entry.content)
            archive.addfile(_tar_info(entry), content)
    return buffer.getvalue()


def build_layer(entries: Iterable[TarEntry], media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    """Tars and gzips `entries`. Synchronous and CPU-bound: from async code call `build_layer_async`."""
    tar = tar_bytes(entries)
    # mtime=0 keeps the time of compression out of the gzip header, so the digest is reproducible.
    blob = gzip.compress(tar, compresslevel=9, mtime=0)
    return Layer(tar, blob, sha256_digest(tar), sha256_digest(blob), media_type)


async def build_layer_async(entries: Iterable[TarEntry], media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    """`build_layer` in a worker thread, so compressing never stalls the event loop."""
    materialized = list(entries)
    return await asyncio.to_thread(build_layer, materialized, media_type)


def read_layer(data: bytes) -> list[TarEntry]:
    """The entries of a layer blob (gzipped or plain tar), in archive order; for tests that check contents."""
    tar = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    entries: list[TarEntry] = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for info in archive.getmembers():
            content = None
            if info.isfile():
                extracted = archive.extractfile(info)
                content = extracted.read() if extracted is not None else b""
            elif not info.isdir():
                raise ValueError(f"unexpected tar entry type {info.type!r} at {info.name!r}")
            entries.append(TarEntry(info.name, info.mode, content, info.uid, info.gid))
    return entries
