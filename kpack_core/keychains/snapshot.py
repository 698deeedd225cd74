"""`Snapshot`: a value loaded on first use and kept, so one keychain reads its secrets once, not per request.

The registry client asks its keychain on every request (a push is dozens); kpack builds a keychain per reconcile
and reads the secrets when it is built. A keychain here is the same kind of snapshot: make one per reconcile, or
call `reset()` to see changed secrets. Concurrent first uses share one load; a failed load is not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    """The result of `load()`, loaded at most once until `reset()`."""

    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self._load = load
        self._lock = asyncio.Lock()
        self._value: tuple[T] | None = None  # a 1-tuple, so that a loaded None is told from "not loaded"

    async def get(self) -> T:
        async with self._lock:
            if self._value is None:
                self._value = (await self._load(),)
            return self._value[0]

    def reset(self) -> None:
        """Forget the value: the next `get` loads again."""
        self._value = None
