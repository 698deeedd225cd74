"""Deterministic image layers, and the small layers a builder adds itself: the default directories,
`/cnb/stack.toml` and `/cnb/order.toml` (spec §1.3.1 step 7).

Same input, same bytes: entries in the order given, mtime 1980-01-01T00:00:01Z, empty user and group names, and a
gzip header without a timestamp, so the layer digests (and with them the builder image digest) only change when
the content does. That is what lets a reconcile that finds nothing new push nothing. Paths are written relative
(`cnb/order.toml`), as the OCI layer spec writes them.

This is the one tar-layer writer: `Entry`, `tar_bytes`, `build_layer` and `Layer` also serve the envtest test
images (`kpack_core.envtest.cnb.layer`), which add their own ordering (sorted, parents added) and gzip level.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from kpack_core.cnb.metadata import Order
from kpack_core.registry import Descriptor, mediatypes, sha256_digest

NORMALIZED_MTIME: Final = 315532801
"""1980-01-01T00:00:01Z, the mtime kpack, pack and the lifecycle give every entry."""
DIRECTORY_MODE: Final = 0o755
FILE_MODE: Final = 0o644
GZIP_LEVEL: Final = 6
"""The level builder layers have always been written with: another level changes every builder image digest."""


@dataclass(frozen=True)
class Entry:
    """One tar entry: a directory when `content` is None, else a regular file. `path` is normalized on creation."""

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


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.type = tarfile.DIRTYPE if entry.is_directory else tarfile.REGTYPE
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = NORMALIZED_MTIME
    info.size = 0 if entry.content is None else len(entry.content)
    return info


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """The uncompressed tar of `entries`, in the order given (parents must come before their children). PAX
    format: headers are plain ustar unless a name is too long for it, and Go's archive/tar reads both."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            archive.addfile(_tar_info(entry), None if entry.content is None else io.BytesIO(entry.content))
    return buffer.getvalue()


def build_layer(
    entries: Iterable[Entry], media_type: str = mediatypes.DOCKER_LAYER, *, compresslevel: int = GZIP_LEVEL
) -> Layer:
    """Tar (in the order given) and gzip `entries`. Builder layers are a few hundred bytes, so this is cheap enough
    for the event loop; bigger layers belong in a worker thread."""
    tar = tar_bytes(entries)
    # mtime=0 keeps the time of compression out of the gzip header, so the digest is reproducible.
    blob = gzip.compress(tar, compresslevel=compresslevel, mtime=0)
    return Layer(tar, blob, sha256_digest(tar), sha256_digest(blob), media_type)


def default_dirs_entries(user_id: int, group_id: int) -> list[Entry]:
    """`/workspace` and `/layers` owned by the stack user, the rest by root, all 0755."""
    return [
        Entry("workspace", DIRECTORY_MODE, uid=user_id, gid=group_id),
        Entry("layers", DIRECTORY_MODE, uid=user_id, gid=group_id),
        Entry("cnb", DIRECTORY_MODE),
        Entry("cnb/buildpacks", DIRECTORY_MODE),
        Entry("platform", DIRECTORY_MODE),
        Entry("platform/env", DIRECTORY_MODE),
    ]


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (with `ensure_ascii`) are valid TOML escapes."""
    return json.dumps(value)


def stack_toml(run_image: str, mirrors: Sequence[str] = ()) -> str:
    """`/cnb/stack.toml`: the run image builds export onto (as the stack spec names it, a tag)."""
    lines = ["[run-image]", f"image = {toml_string(run_image)}"]
    if mirrors:
        lines.append(f"mirrors = [{', '.join(toml_string(m) for m in mirrors)}]")
    return "\n".join(lines) + "\n"


def order_toml(order: Order) -> str:
    """`/cnb/order.toml`: `[[order]]` tables of `[[order.group]]` members; `optional` only when true."""
    lines: list[str] = []
    for group in order:
        lines += ["[[order]]", ""]
        for ref in group:
            lines += ["  [[order.group]]", f"    id = {toml_string(ref.id)}"]
            if ref.version:
                lines.append(f"    version = {toml_string(ref.version)}")
            if ref.optional:
                lines.append("    optional = true")
            lines.append("")
    return "\n".join(lines)


def single_file_entries(path: str, content: str) -> list[Entry]:
    """A file under `cnb/`: its root-owned parent directory, then the file (0644)."""
    parent = path.rsplit("/", 1)[0]
    return [Entry(parent, DIRECTORY_MODE), Entry(path, FILE_MODE, content.encode())]


def default_dirs_layer(user_id: int, group_id: int, media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    return build_layer(default_dirs_entries(user_id, group_id), media_type)


def stack_layer(run_image: str, media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    return build_layer(single_file_entries("cnb/stack.toml", stack_toml(run_image)), media_type)


def order_layer(order: Order, media_type: str = mediatypes.DOCKER_LAYER) -> Layer:
    return build_layer(single_file_entries("cnb/order.toml", order_toml(order)), media_type)
