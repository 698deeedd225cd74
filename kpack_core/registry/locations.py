"""Where blobs were last seen: per registry, digest → repositories holding it; and one upload per blob at a time.

A blob a registry holds in one repository can be mounted into another with one request instead of being uploaded
again (formats.md §2.5). The client remembers a repository whenever it finds, mounts or uploads a blob there, and
callers add what they know (the repository a layer was read from). A remembered location is only a hint: the blob
may have been deleted since, or the credentials of a later push may not read that repository. A mount that fails is
forgotten, and the next candidate, a HEAD or an upload follows.

`exclusive()` serialises the placing of one digest on one registry among the clients sharing the memory (those of a
`RegistryClients` pool): a second pusher of the same content waits for the first, then mounts from where it went,
so identical layers pushed concurrently to many repositories are uploaded once.

Bounded: at most `max_digests` digests (least recently used dropped) with `per_digest` repositories each (most
recent first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator

DEFAULT_MAX_DIGESTS = 10_000
DEFAULT_PER_DIGEST = 4


class BlobLocations:
    """The memory; not thread-safe (one event loop)."""

    def __init__(self, max_digests: int = DEFAULT_MAX_DIGESTS, per_digest: int = DEFAULT_PER_DIGEST) -> None:
        if max_digests < 1 or per_digest < 1:
            raise ValueError("max_digests and per_digest must be at least 1")
        self.max_digests = max_digests
        self.per_digest = per_digest
        self._seen: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def remember(self, registry: str, repository: str, digest: str) -> None:
        """`digest` is in `repository` of `registry` (the newest location is tried first)."""
        key = (registry, digest)
        repositories = [repository, *(r for r in self._seen.pop(key, ()) if r != repository)]
        self._seen[key] = repositories[: self.per_digest]
        while len(self._seen) > self.max_digests:
            self._seen.popitem(last=False)

    def forget(self, registry: str, repository: str, digest: str) -> None:
        """A mount of `digest` from `repository` failed: do not offer it again."""
        key = (registry, digest)
        repositories = [r for r in self._seen.get(key, ()) if r != repository]
        if repositories:
            self._seen[key] = repositories
        else:
            self._seen.pop(key, None)

    def repositories(self, registry: str, digest: str) -> list[str]:
        """Where `digest` was seen on `registry`, most recent first."""
        key = (registry, digest)
        found = self._seen.get(key)
        if found is None:
            return []
        self._seen.move_to_end(key)
        return list(found)

    def __len__(self) -> int:
        return len(self._seen)

    @contextlib.asynccontextmanager
    async def exclusive(self, registry: str, digest: str) -> AsyncIterator[None]:
        """Hold the right to place `digest` on `registry` (waits while another client places it)."""
        key = (registry, digest)
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
