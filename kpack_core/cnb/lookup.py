"""Buildpacks of a ClusterStore status, found by id and version, and a builder's order resolved against them
(spec §1.3.2 and §1.3.1 steps 4-5).

- A reference with a version matches exactly (the first such store entry wins: duplicates across store images are
  not merged). Without one the highest semantic version wins; a candidate whose version is not semantic makes the
  choice impossible and is an error, as in kpack.
- Each resolved buildpack brings its own layer and, recursively, those of every buildpack its order names
  (meta-buildpacks). Layers are de-duplicated by (id, version, homepage); a meta-buildpack ordering itself is an
  error here (kpack recursed until it crashed).
- The layers are sorted by compressed size, largest first, ties by `id@version` descending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kpack_core.apis.buildpacks import OrderEntry, StoreBuildpack
from kpack_core.cnb.errors import (
    BuildpackCycleError,
    BuildpackNotFoundError,
    InvalidBuildpackVersionError,
    InvalidStoreBuildpackError,
)
from kpack_core.cnb.metadata import BuildpackLayer, Order, OrderRef, StackSupport
from kpack_core.cnb.semver import Version, parse_version


def order_from_entries(entries: Sequence[OrderEntry] | None) -> Order:
    """An API order (builder spec or store status) as plain values."""
    return tuple(
        tuple(OrderRef(ref.id, ref.version or None, ref.optional) for ref in entry.group or ())
        for entry in entries or ()
    )


def buildpack_layer(store: str, entry: StoreBuildpack) -> BuildpackLayer:
    """A store status entry as a builder layer; `InvalidStoreBuildpackError` when it lacks what the layer needs."""
    key = f"{entry.id}@{entry.version}"
    if not entry.version:
        raise InvalidStoreBuildpackError(store, key, "no version")
    image = entry.store_image.image if entry.store_image else None
    fields = {"diffId": entry.diff_id, "digest": entry.digest, "size": entry.size, "storeImage.image": image}
    missing = [name for name, value in fields.items() if value is None or value == ""]
    if missing or not entry.diff_id or not entry.digest or entry.size is None or not image:
        raise InvalidStoreBuildpackError(store, key, f"no {', '.join(missing)} in the store status")
    return BuildpackLayer(
        id=entry.id,
        version=entry.version,
        api=entry.api or "",
        diff_id=entry.diff_id,
        digest=entry.digest,
        size=entry.size,
        store_image=image,
        homepage=entry.homepage or None,
        order=order_from_entries(entry.order),
        stacks=tuple(StackSupport(stack.id, tuple(stack.mixins or ())) for stack in entry.stacks or ()),
    )


class StoreIndex:
    """The buildpacks of one ClusterStore status, looked up by id and version."""

    def __init__(self, store: str, buildpacks: Sequence[StoreBuildpack]) -> None:
        self.store = store
        self._by_id: dict[str, list[StoreBuildpack]] = {}
        for entry in buildpacks:
            self._by_id.setdefault(entry.id, []).append(entry)

    def find(self, buildpack_id: str, version: str | None = None, *, required_by: str | None = None) -> BuildpackLayer:
        """The buildpack `buildpack_id` at `version`, or at its highest version when `version` is empty;
        `required_by` names the meta-buildpack whose order asks for it (for the error message)."""
        candidates = self._by_id.get(buildpack_id, [])
        if not candidates:
            raise BuildpackNotFoundError(self.store, buildpack_id, required_by=required_by)
        if version:
            for entry in candidates:
                if entry.version == version:
                    return buildpack_layer(self.store, entry)
            raise BuildpackNotFoundError(self.store, buildpack_id, version, required_by=required_by)
        best: tuple[Version, StoreBuildpack] | None = None
        for entry in candidates:
            parsed = parse_version(entry.version or "")
            if parsed is None:
                raise InvalidBuildpackVersionError(self.store, buildpack_id, entry.version or "")
            # Strictly greater: among equal versions the first store entry wins.
            if best is None or parsed > best[0]:
                best = (parsed, entry)
        assert best is not None
        return buildpack_layer(self.store, best[1])


@dataclass(frozen=True)
class ResolvedBuildpacks:
    """A builder's order with concrete versions, and every layer it needs, in builder layer order."""

    order: Order
    layers: tuple[BuildpackLayer, ...]


def sort_layers(layers: Sequence[BuildpackLayer]) -> list[BuildpackLayer]:
    """Largest compressed size first; equal sizes by `id@version`, descending (kpack's order)."""
    by_key = sorted(layers, key=lambda layer: layer.key, reverse=True)
    return sorted(by_key, key=lambda layer: layer.size, reverse=True)


def resolve_order(order: Order, store: StoreIndex) -> ResolvedBuildpacks:
    """Resolve every member of `order` in `store` and collect the layers of the buildpacks they need."""
    layers: dict[tuple[str, str, str | None], BuildpackLayer] = {}

    def collect(buildpack: BuildpackLayer, chain: tuple[str, ...]) -> None:
        if buildpack.key in chain:
            raise BuildpackCycleError((*chain, buildpack.key))
        identity = (buildpack.id, buildpack.version, buildpack.homepage)
        if identity in layers:
            return
        layers[identity] = buildpack
        for group in buildpack.order:
            for child in group:
                collect(store.find(child.id, child.version, required_by=buildpack.key), (*chain, buildpack.key))

    resolved_groups = []
    for group in order:
        resolved = []
        for ref in group:
            buildpack = store.find(ref.id, ref.version)
            collect(buildpack, ())
            resolved.append(OrderRef(buildpack.id, buildpack.version, ref.optional))
        resolved_groups.append(tuple(resolved))
    return ResolvedBuildpacks(tuple(resolved_groups), tuple(sort_layers(list(layers.values()))))
