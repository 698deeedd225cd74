"""Deterministic layers for the test images: the entries sorted by path, missing parents added, gzipped at level 9.

The tar writing itself (`Entry`, its path rules, the normalized headers, `Layer`) is production code in
`kpack_core.cnb.layers`; this module adds what only test images want: `with_parents` (so a buildpack or a stack
image lists just its files), the `directory`/`regular_file`/`executable` helpers, the image `created` constant,
and `read_layer` for tests that check contents. The same entries give the same bytes on every run and machine (for
a given zlib), so the diffID (sha256 of the tar) and the digest (sha256 of the gzip) are stable and tests can pin
them. Missing parent directories are added as root-owned 0755.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import posixpath
import tarfile
from collections.abc import Iterable
from typing import Final

from kpack_core.cnb import layers
from kpack_core.cnb.layers import DIRECTORY_MODE, FILE_MODE, Entry, Layer
from kpack_core.registry import mediatypes

NORMALIZED_CREATED: Final = "1980-01-01T00:00:01Z"
"""The image config `created` of every image built here (the lifecycle writes the same constant)."""

EXECUTABLE_MODE: Final = 0o755
GZIP_LEVEL: Final = 9
"""Not the builder layers' level: the test images have always been written at 9, and tests pin their digests."""


def directory(path: str, *, mode: int = DIRECTORY_MODE, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, mode, None, uid, gid)


def regular_file(path: str, content: bytes | str, *, mode: int = FILE_MODE, uid: int = 0, gid: int = 0) -> Entry:
    data = content.encode() if isinstance(content, str) else content
    return Entry(path, mode, data, uid, gid)


def executable(path: str, content: bytes | str, *, uid: int = 0, gid: int = 0) -> Entry:
    return regular_file(path, content, mode=EXECUTABLE_MODE, uid=uid, gid=gid)


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """The entries sorted by path, each missing parent directory added (root, 0755); duplicate paths rejected."""
    by_path: dict[str, Entry] = {}
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


def build_layer(entries: Iterable[Entry], media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    """Tars `entries` (parents added, sorted) and gzips them. Synchronous and CPU-bound: from async code call
    `build_layer_async`."""
    return layers.build_layer(with_parents(entries), media_type, compresslevel=GZIP_LEVEL)


async def build_layer_async(entries: Iterable[Entry], media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    """`build_layer` in a worker thread, so compressing never stalls the event loop."""
    materialized = list(entries)
    return await asyncio.to_thread(build_layer, materialized, media_type)


def read_layer(data: bytes) -> list[Entry]:
    """The entries of a layer blob (gzipped or plain tar), in archive order; for tests that check contents."""
    tar = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    entries: list[Entry] = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for info in archive.getmembers():
            content = None
            if info.isfile():
                extracted = archive.extractfile(info)
                content = extracted.read() if extracted is not None else b""
            elif not info.isdir():
                raise ValueError(f"unexpected tar entry type {info.type!r} at {info.name!r}")
            entries.append(Entry(info.name, info.mode, content, info.uid, info.gid))
    return entries
