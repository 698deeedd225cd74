"""Store status entries and lifecycle metadata for the cnb unit tests, built the way a ClusterStore status holds
them."""

from __future__ import annotations

import hashlib
from typing import Any

from kpack_core.apis.buildpacks import StoreBuildpack
from kpack_core.cnb import LifecycleMetadata
from kpack_core.cnb.metadata import ApiSet

BIONIC = "io.buildpacks.stacks.bionic"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def store_buildpack(
    bp_id: str,
    version: str,
    *,
    size: int = 100,
    api: str = "0.4",
    stacks: list[dict[str, Any]] | None = None,
    order: list[dict[str, Any]] | None = None,
    homepage: str | None = None,
    image: str = "registry.example.com/buildpacks/store:1",
) -> StoreBuildpack:
    """One store status entry; regular buildpacks support bionic unless `stacks` or `order` says otherwise."""
    data: dict[str, Any] = {
        "id": bp_id,
        "version": version,
        "storeImage": {"image": image},
        "diffId": digest_of(f"diff {bp_id}@{version}"),
        "digest": digest_of(f"blob {bp_id}@{version}"),
        "size": size,
        "api": api,
    }
    if order is not None:
        data["order"] = order
    else:
        data["stacks"] = stacks if stacks is not None else [{"id": BIONIC}]
    if homepage:
        data["homepage"] = homepage
    return StoreBuildpack.from_json(data)


def lifecycle(
    version: str = "0.11.4",
    buildpack: tuple[str, ...] = ("0.2", "0.3", "0.4", "0.5", "0.6"),
    platform: tuple[str, ...] = ("0.3", "0.4", "0.5", "0.6"),
) -> LifecycleMetadata:
    return LifecycleMetadata(
        version, ApiSet(supported=buildpack), ApiSet(supported=platform), (("buildpack", "0.2"), ("platform", "0.3"))
    )
