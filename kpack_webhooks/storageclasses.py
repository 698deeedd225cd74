"""Whether the cluster has a default StorageClass: the Image cache-volume rules depend on it (kpack defaults a 2G
cache volume only with one, and refuses a cache size without one).

Watched through an informer, so every admission request answers from memory.
"""

from __future__ import annotations

from kpack_core.runtime.client import Client
from kpack_core.runtime.informer import Informer
from kpack_core.runtime.resource import Resource

STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


class DefaultStorageClass:
    """Callable: True when some StorageClass is annotated as the default. False until `start` synced."""

    def __init__(self) -> None:
        self._informer: Informer | None = None

    async def start(self, client: Client, within: float = 60.0) -> None:
        self._informer = Informer(client, STORAGE_CLASSES)
        self._informer.start()
        await self._informer.wait_for_sync(within)

    async def stop(self) -> None:
        if self._informer is not None:
            await self._informer.stop()

    def __call__(self) -> bool:
        if self._informer is None:
            return False
        return any(
            ((sc.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
            for sc in self._informer.list()
        )
