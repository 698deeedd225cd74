"""The shared informer cache: one informer per (resource, namespace, selectors), however many controllers ask.

Two controllers watching Pods get the same `Informer`, so one watch and one copy of every Pod. Informers are made
only when asked for (a controller's watches, or an explicit `informer()` call), never lazily by a read: reading a
resource nobody watches raises instead of silently caching a whole resource type (controller-runtime's most
common memory surprise).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.informer import Informer, InformerOptions, Transform
from kpack_core.runtime.resource import Resource
from kpack_core.runtime.store import JSON


@dataclass(frozen=True)
class InformerKey:
    resource: Resource
    namespace: str | None
    label_selector: str | None
    field_selector: str | None


class NoInformerError(LookupError):
    """A cache read named a resource no informer watches."""


class Cache:
    """Shared informers and reads from them."""

    def __init__(self, client: Client, *, options: InformerOptions | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.options = options or InformerOptions()
        self.clock = clock
        self._informers: dict[InformerKey, Informer] = {}
        self._started = False

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform | None = None,
    ) -> Informer:
        """The informer for this resource and scope, created on first request (and started if the cache runs).

        A `transform` applies to the informer created by the first caller only; pass the same one everywhere.
        """
        key = InformerKey(resource, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client,
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                transform=transform,
                options=self.options,
                clock=self.clock,
            )
            self._informers[key] = informer
            if self._started:
                informer.start()
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer, and any made later."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, within: float | None = 120.0) -> None:
        """Wait until every informer has synced (controller-runtime's CacheSyncTimeout is 2 minutes)."""
        await asyncio.gather(*(informer.wait_for_sync(within) for informer in self._informers.values()))

    @property
    def synced(self) -> bool:
        return all(informer.has_synced for informer in self._informers.values())

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))

    def _find(self, resource: Resource, namespace: str | None) -> Informer:
        candidates = [
            informer
            for key, informer in self._informers.items()
            if key.resource == resource and key.label_selector is None and key.field_selector is None
        ]
        for informer in candidates:
            if informer.namespace is None or informer.namespace == namespace:
                return informer
        raise NoInformerError(
            f"no informer watches {resource.describe(namespace)}; ask the cache for one (cache.informer(...)) or "
            "watch it from a controller before reading it from the cache"
        )

    def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON | None:
        """A copy of the cached object, or None."""
        return self._find(resource, namespace).get(name, namespace)

    def list(self, resource: Resource, namespace: str | None = None) -> list[JSON]:
        """Copies of the cached objects (of one namespace, or all)."""
        return self._find(resource, namespace).list(namespace)
