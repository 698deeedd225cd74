"""Manifests, indexes, descriptors and image configs as small frozen values, plus platform selection.

A digest is the sha256 of the exact bytes (formats.md §2.3), so a fetched manifest is kept as `RawManifest`
(bytes, media type, digest) and parsed on demand; a manifest built here is serialised once (`to_bytes`) and those
bytes are what gets pushed and hashed. Unknown fields of descriptors survive a parse (kept in `extra`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kpack_core.registry import mediatypes
from kpack_core.registry.digest import sha256_digest

JSONObject = dict[str, Any]


def _object(value: Any, what: str) -> JSONObject:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


@dataclass(frozen=True)
class Platform:
    """`os`/`architecture`/`variant` of an index entry (`os.version`, `os.features` kept for Windows)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64/v8` -> Platform("linux", "arm64", "v8")."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, value: JSONObject) -> Platform:
        return cls(
            str(value.get("os", "")),
            str(value.get("architecture", "")),
            value.get("variant") or None,
            value.get("os.version") or None,
        )

    def to_json(self) -> JSONObject:
        out: JSONObject = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def satisfies(self, wanted: Platform) -> bool:
        """True when this (an index entry) serves `wanted`; a wanted variant or os.version must match exactly."""
        return (
            self.os == wanted.os
            and self.architecture == wanted.architecture
            and (wanted.variant is None or self.variant == wanted.variant)
            and (wanted.os_version is None or self.os_version == wanted.os_version)
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or a child manifest."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()
    extra: JSONObject = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, data: bytes, media_type: str, **kwargs: Any) -> Descriptor:
        """The descriptor of `data` (sha256 computed here: keep this for small blobs)."""
        return cls(media_type, sha256_digest(data), len(data), **kwargs)

    @classmethod
    def from_json(cls, value: Any) -> Descriptor:
        raw = _object(value, "descriptor")
        known = {"mediaType", "digest", "size", "platform", "annotations", "urls"}
        platform = raw.get("platform")
        return cls(
            media_type=str(raw.get("mediaType", "")),
            digest=str(raw["digest"]),
            size=int(raw["size"]),
            platform=Platform.from_json(platform) if isinstance(platform, dict) else None,
            annotations=raw.get("annotations"),
            urls=tuple(raw.get("urls") or ()),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    def to_json(self) -> JSONObject:
        out: JSONObject = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = self.annotations
        if self.urls:
            out["urls"] = list(self.urls)
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class ImageManifest:
    """A Docker schema 2 or OCI image manifest: one config and ordered layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_MANIFEST
    annotations: dict[str, str] | None = None

    @classmethod
    def from_json(cls, value: Any, media_type: str | None = None) -> ImageManifest:
        raw = _object(value, "manifest")
        return cls(
            config=Descriptor.from_json(raw["config"]),
            layers=tuple(Descriptor.from_json(layer) for layer in raw.get("layers") or ()),
            media_type=media_type or str(raw.get("mediaType") or mediatypes.OCI_MANIFEST),
            annotations=raw.get("annotations"),
        )

    def to_bytes(self) -> bytes:
        out: JSONObject = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return orjson.dumps(out)


@dataclass(frozen=True)
class ImageIndex:
    """An OCI index or Docker manifest list: child manifests, usually one per platform."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_INDEX
    annotations: dict[str, str] | None = None

    @classmethod
    def from_json(cls, value: Any, media_type: str | None = None) -> ImageIndex:
        raw = _object(value, "index")
        return cls(
            manifests=tuple(Descriptor.from_json(m) for m in raw.get("manifests") or ()),
            media_type=media_type or str(raw.get("mediaType") or mediatypes.OCI_INDEX),
            annotations=raw.get("annotations"),
        )

    def to_bytes(self) -> bytes:
        out: JSONObject = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return orjson.dumps(out)

    def select(self, platform: Platform) -> Descriptor | None:
        """The first image manifest for `platform` (first wins, like ggcr), or None."""
        for candidate in self.manifests:
            if candidate.platform is not None and candidate.platform.satisfies(platform):
                return candidate
        return None

    def platforms(self) -> list[Platform]:
        return [m.platform for m in self.manifests if m.platform is not None]


@dataclass(frozen=True)
class RawManifest:
    """A manifest exactly as the registry stored it; `digest` is the sha256 of `content`."""

    content: bytes
    media_type: str
    digest: str

    @classmethod
    def of(cls, manifest: ImageManifest | ImageIndex) -> RawManifest:
        content = manifest.to_bytes()
        return cls(content, manifest.media_type, sha256_digest(content))

    @property
    def is_index(self) -> bool:
        return mediatypes.is_index(self.media_type)

    def json(self) -> JSONObject:
        return _object(orjson.loads(self.content), "manifest")

    def image(self) -> ImageManifest:
        if not mediatypes.is_image_manifest(self.media_type):
            raise ValueError(f"{self.digest} is a {self.media_type}, not an image manifest")
        return ImageManifest.from_json(self.json(), self.media_type)

    def index(self) -> ImageIndex:
        if not self.is_index:
            raise ValueError(f"{self.digest} is a {self.media_type}, not an index")
        return ImageIndex.from_json(self.json(), self.media_type)

    def descriptor(self, platform: Platform | None = None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.content), platform=platform)


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config blob kpack reads; `raw` keeps everything else."""

    raw: JSONObject

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        return cls(_object(orjson.loads(data), "image config"))

    @property
    def labels(self) -> dict[str, str]:
        config = self.raw.get("config") or {}
        return dict(config.get("Labels") or {}) if isinstance(config, dict) else {}

    @property
    def platform(self) -> Platform:
        return Platform(
            str(self.raw.get("os", "")), str(self.raw.get("architecture", "")), self.raw.get("variant") or None
        )

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.raw.get("rootfs") or {}
        return list(rootfs.get("diff_ids") or []) if isinstance(rootfs, dict) else []
