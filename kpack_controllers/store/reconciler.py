"""The ClusterStore reconciler (spec §1.5): list the buildpacks of every source image.

A reconcile reads the spec, builds the keychain (`resolving.keychain_for`), reads every source image concurrently
(manifest and config: the buildpack layers themselves are never downloaded), turns each image's labels into store
buildpacks (`buildpackages.store_buildpacks`) and writes status:

- Ready: `{observedGeneration, conditions: [Ready=True], buildpacks}` (sorted as kpack; omitted when empty); then
  it asks to be reconciled again after the poll interval, which notices a buildpackage tag that moved.
- Not ready: `Ready=False` with a reason and a message naming the source image at fault (the first failing one in
  spec order), then the error is raised and retried with backoff (see `resolving`). **The last good buildpacks are
  kept** for the sources the spec still lists, so a registry outage or a source re-pointed at a broken image does
  not take buildpacks away from Builders (which, as in kpack, do not check the store's Ready). Buildpacks of
  sources the spec no longer lists are dropped. kpack cleared all of them on every failure.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import Unpack

from kpack_controllers.resolving import (
    ControllerOptions,
    ImageResolvingReconciler,
    checked_spec,
    first_failure_in_order,
    keychain_for,
    read_image,
    register_controller,
)
from kpack_controllers.store.buildpackages import sort_buildpacks, store_buildpacks
from kpack_core.apis.resources import CLUSTER_STORES
from kpack_core.apis.v1alpha2.clusterstore import ClusterStoreSpec, validate_spec
from kpack_core.registry import RegistryClient
from kpack_core.runtime.controller import Controller
from kpack_core.runtime.manager import Manager

JSON = dict[str, Any]

CONTROLLER_NAME = "clusterstore"
"""The controller's name in logs and metrics."""


def parse_spec(obj: JSON) -> tuple[list[str], JSON | None]:
    """Source images (as written) and service account reference of a valid spec; `InvalidSpecError` names every
    violation."""
    spec = checked_spec("ClusterStore", obj, ClusterStoreSpec.from_json, validate_spec)
    sources = [source.image for source in spec.sources or () if source.image]
    ref = spec.service_account_ref
    return sources, ref.to_json() if ref is not None else None


def kept_buildpacks(obj: JSON) -> JSON:
    """The last published buildpacks of sources the spec still lists (module docstring), as status fields."""
    sources = {source.get("image") for source in (obj.get("spec") or {}).get("sources") or () if source}
    kept = [
        bp
        for bp in (obj.get("status") or {}).get("buildpacks") or ()
        if (bp.get("storeImage") or {}).get("image") in sources
    ]
    return {"buildpacks": kept} if kept else {}


async def read_source(registry: RegistryClient, source: str) -> list[JSON]:
    """The buildpacks of one source image."""
    image = await read_image(registry, source, "store image")
    return store_buildpacks(source, image.labels, image.config.diff_ids, image.manifest.layers)


class ClusterStoreReconciler(ImageResolvingReconciler):
    """Resolves ClusterStores (see `ImageResolvingReconciler`): `objects` is the ClusterStore informer."""

    resource = CLUSTER_STORES

    def kept(self, obj: JSON) -> JSON:
        return kept_buildpacks(obj)

    async def resolve(self, obj: JSON) -> JSON:
        """`buildpacks`: every buildpack of every source, sorted (left out when there are none); raises
        `ResolveError` naming the source at fault."""
        sources, service_account_ref = parse_spec(obj)
        keychain = await keychain_for(self.secrets, service_account_ref)
        async with self.registry_client(keychain) as registry:
            per_source = await first_failure_in_order([read_source(registry, source) for source in sources])
        buildpacks = sort_buildpacks(bp for found in per_source for bp in found)
        return {"buildpacks": buildpacks} if buildpacks else {}


def setup(manager: Manager, **options: Unpack[ControllerOptions]) -> Controller:
    """Register the ClusterStore controller on `manager` and return it (options and their defaults:
    `kpack_controllers.resolving.register_controller`)."""
    return register_controller(manager, ClusterStoreReconciler, CONTROLLER_NAME, **options)
