"""An informer: keeps a `Store` in step with one resource on the apiserver and tells handlers what changed.

The reflector loop follows client-go: a paginated list, then a watch from the list's resourceVersion with bookmarks
and a random 5-10 minute server timeout, re-watching from the last resourceVersion when the server ends the stream.
A client-side inactivity timeout notices a stream that went silent (a dropped connection nobody told us about) and
re-opens it. 410 Gone means our resourceVersion expired: relist at that version, then (if that is gone too) at the
newest; objects that vanished meanwhile are delivered as deletions wrapped in `DeletedFinalStateUnknown`. Failures
back off 0.8 s doubling to 30 s with jitter, reset after 2 minutes of health. Every resync period each cached object
is re-delivered as an update with old == new, without API traffic.

Handlers are called synchronously, in order, on the informer's task: they must be quick and must not block (the
controller's handlers only compute keys and add them to a queue). Objects passed to handlers are fresh decodes and
may be kept, but a handler must not expect changes to them to reach the cache.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog

from kpack_core.runtime import errors
from kpack_core.runtime.client import Client
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.resource import Resource
from kpack_core.runtime.store import JSON, IndexFunc, Store, object_key

log = structlog.get_logger(__name__)

Transform = Callable[[JSON], JSON]


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A deletion the informer inferred from a relist: the object was gone from the new list. `obj` is the last
    state the informer saw, which may be stale."""

    key: str
    obj: JSON


class EventHandler(Protocol):
    """What an informer calls for each change. `is_in_initial_list` is true for adds from the very first list."""

    def on_add(self, obj: JSON, is_in_initial_list: bool) -> None: ...

    def on_update(self, old: JSON, new: JSON) -> None: ...

    def on_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None: ...


@dataclass(frozen=True)
class InformerOptions:
    """Tuning of one informer; the defaults are client-go's / controller-runtime's."""

    resync_period: float | None = 10 * 3600.0
    """Re-deliver every cached object this often (jittered to [0.9, 1.1)x); None disables. controller-runtime's
    default SyncPeriod is 10 h."""
    watch_timeout: tuple[int, int] = (300, 600)
    """Bounds of the random server-side `timeoutSeconds` of each watch (client-go: 5-10 minutes)."""
    inactivity_timeout: float = 70.0
    """Re-open a watch that delivered nothing, not even a bookmark, for this long (the apiserver bookmarks about
    once a minute)."""
    page_size: int = 500
    """Items per list page; bounds the transient memory of a (re)list."""
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    backoff_reset: float = 120.0


class Backoff:
    """Exponential backoff with jitter that resets after a quiet period (client-go's reflector backoff)."""

    def __init__(self, initial: float, maximum: float, reset_after: float, clock: Clock) -> None:
        self.initial, self.maximum, self.reset_after, self.clock = initial, maximum, reset_after, clock
        self._current = 0.0
        self._last_failure = float("-inf")

    def next_delay(self) -> float:
        now = self.clock.now()
        if now - self._last_failure > self.reset_after:
            self._current = 0.0
        self._last_failure = now
        self._current = self.initial if self._current == 0 else min(self.maximum, self._current * 2)
        return self._current * (1 + random.random())  # jitter factor 1.0, as client-go


class Informer:
    """One resource (optionally one namespace and selectors) mirrored into a `Store`.

    Use `start()` then `await wait_for_sync()`; `await stop()` ends it. Reads: `get`, `list`, `by_index`.
    """

    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        transform: Transform | None = None,
        options: InformerOptions | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.options = options or InformerOptions()
        self.clock = clock
        self.store = Store()
        for name, index in (indexers or {}).items():
            self.store.add_indexer(name, index)
        self._transform = transform
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resource_version = ""
        self.last_activity = clock.now()
        """Monotonic time the informer last heard from the apiserver (an event, a bookmark, a list page, an opened
        watch)."""
        self.failing_since: float | None = None
        """Monotonic time of the first failure in the current run of failures; None while healthy."""
        self.last_error: str | None = None
        self.relists = 0
        self.name = resource.describe(namespace) + (f"[{label_selector}]" if label_selector else "")

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def add_handler(self, handler: EventHandler) -> None:
        """Register a handler. Added after the initial list, it first receives an add for every cached object."""
        self._handlers.append(handler)
        if self._synced.is_set():
            for key, raw in self.store.iter_items():
                del key
                handler.on_add(orjson.loads(raw), True)

    def add_indexer(self, name: str, index: IndexFunc) -> None:
        self.store.add_indexer(name, index)

    def start(self) -> None:
        """Start the reflector (and resync) tasks on the running loop; idempotent."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.name}")
            if self.options.resync_period:
                self._resync_task = asyncio.create_task(self._resync_loop(), name=f"resync {self.name}")

    async def stop(self) -> None:
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
        for task in (self._task, self._resync_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._resync_task = None

    @property
    def has_synced(self) -> bool:
        """True once the first list is in the store and its adds were delivered."""
        return self._synced.is_set()

    async def wait_for_sync(self, within: float | None = None) -> None:
        """Wait for the first list; after `within` seconds raise TimeoutError naming the resource and last error."""
        try:
            async with asyncio.timeout(within):
                await self._synced.wait()
        except TimeoutError:
            raise TimeoutError(
                f"informer for {self.name} did not sync within {within:g} s (last error: {self.last_error})"
            ) from None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion the informer is synced to."""
        return self._resource_version

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> JSON | None:
        return self.store.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> list[JSON]:
        if namespace is None:
            return self.store.list()
        return self.store.by_index("namespace", namespace)

    def by_index(self, index: str, value: str) -> builtins.list[JSON]:
        return self.store.by_index(index, value)

    # -- the reflector ------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(
            self.options.backoff_initial, self.options.backoff_max, self.options.backoff_reset, self.clock
        )
        # What to list from next: "" = the newest (a consistent read), a version = "not older than" it, None = no
        # list needed (we hold a version to watch from).
        list_from: str | None = ""
        listed_at: str | None = None
        while True:
            try:
                if list_from is not None:
                    await self._list(list_from)
                    listed_at, list_from = self._resource_version, None
                await self._watch()
                self._healthy()
            except asyncio.CancelledError:
                raise
            except errors.GoneError as exc:
                self._note_failure(exc)
                # Relist "not older than" our version first; if that is gone too, or the watch right after such a
                # relist was already gone again, from the newest.
                stuck = list_from is not None or listed_at == self._resource_version
                list_from = "" if stuck else self._resource_version
                log.info("resource version expired; relisting", informer=self.name, resource_version=list_from)
                if stuck:
                    await self.clock.sleep(backoff.next_delay())
            except errors.WatchStalledError as exc:
                # Nothing arrived for a while: a reconnect from the same version is all that is needed, at once the
                # first time; a connection that keeps going silent backs off like any failure.
                repeated = self.failing_since is not None
                self._note_failure(exc)
                log.warning("watch went silent; re-opening", informer=self.name, error=str(exc))
                if repeated:
                    await self.clock.sleep(backoff.next_delay())
            except (errors.ApiError, errors.TransportError) as exc:
                self._note_failure(exc)
                delay = backoff.next_delay()
                log.warning("list/watch failed; backing off", informer=self.name, error=str(exc), delay=round(delay, 2))
                await self.clock.sleep(delay)
            except Exception as exc:  # a bug in a handler must not end the informer
                self._note_failure(exc)
                log.exception("informer loop failed", informer=self.name)
                await self.clock.sleep(backoff.next_delay())

    def _note_failure(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.failing_since is None:
            self.failing_since = self.clock.now()

    def _healthy(self) -> None:
        self.last_activity = self.clock.now()
        self.failing_since = None

    async def _list(self, resource_version: str) -> None:
        """List everything (page by page) and replace the store's content with it."""
        initial = not self._synced.is_set()
        seen: set[str] = set()
        version = ""
        async for page, page_version in self.client.list_pages(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=resource_version or None,
            resource_version_match="NotOlderThan" if resource_version else None,
            limit=self.options.page_size,
        ):
            self.last_activity = self.clock.now()
            version = page_version
            self._apply_page(page, seen, initial)
            del page  # so the next page is fetched with this one already freed
        known = self.store.keys()
        for key in [k for k in known if k not in seen]:
            old = self.store.delete(key)
            if old is not None:
                self._deliver_delete(DeletedFinalStateUnknown(key, old))
        self._resource_version = version
        if not initial:
            self.relists += 1
        self._healthy()
        self._synced.set()

    def _apply_page(self, page: builtins.list[JSON], seen: set[str], initial: bool) -> None:
        for obj in page:
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            key = object_key(obj)
            seen.add(key)
            self._upsert(key, obj, initial)

    async def _watch(self) -> None:
        low, high = self.options.watch_timeout
        async with self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self._resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=random.randint(low, high),
            inactivity_timeout=self.options.inactivity_timeout,
        ) as events:
            self._healthy()
            async for event in events:
                self.last_activity = self.clock.now()
                self.failing_since = None
                obj = event.object
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if event.type in ("ADDED", "MODIFIED"):
                    self._upsert(object_key(obj), obj, False)
                elif event.type == "DELETED":
                    key = object_key(obj)
                    self.store.delete(key)
                    self._deliver_delete(self._transformed(obj))
                if version:
                    self._resource_version = str(version)

    def _transformed(self, obj: JSON) -> JSON:
        return self._transform(obj) if self._transform is not None else obj

    def _upsert(self, key: str, obj: JSON, initial: bool) -> None:
        obj = self._transformed(obj)
        old = self.store.put(key, obj)
        for handler in self._handlers:
            try:
                if old is None:
                    handler.on_add(obj, initial)
                else:
                    handler.on_update(old, obj)
            except Exception:
                log.exception("event handler failed", informer=self.name, key=key)

    def _deliver_delete(self, obj: JSON | DeletedFinalStateUnknown) -> None:
        for handler in self._handlers:
            try:
                handler.on_delete(obj)
            except Exception:
                log.exception("event handler failed", informer=self.name)

    async def _resync_loop(self) -> None:
        period = self.options.resync_period
        assert period is not None
        while True:
            await self.clock.sleep(period * random.uniform(0.9, 1.1))
            if not self._synced.is_set():
                continue
            for _key, raw in self.store.iter_items():
                obj: Any = orjson.loads(raw)
                for handler in self._handlers:
                    try:
                        handler.on_update(obj, obj)
                    except Exception:
                        log.exception("event handler failed on resync", informer=self.name)
