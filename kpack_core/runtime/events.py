"""`EventRecorder`: core/v1 Events for `kubectl describe`, correlated like client-go's `tools/record` so a hot loop
cannot flood the apiserver.

`event()` is synchronous and does no I/O: it correlates the occurrence (`EventCorrelator`: identical events count up
one Event, similar ones aggregate into a "(combined from similar events)" Event) and queues a write, which one
background task performs. Writes are rate-limited per involved object by client-go's spam filter. Every cache is an
LRU bounded like client-go's (4096 entries), and the queue holds at most one write per Event, so memory and API
traffic stay bounded whatever the callers do.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog

from kpack_core.runtime import errors
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.resource import EVENTS, Resource

JSON = dict[str, Any]
NORMAL = "Normal"
WARNING = "Warning"
EVENT_TYPES = frozenset({NORMAL, WARNING})
COMBINED_PREFIX = "(combined from similar events): "

# An Event's name is `<object name>.<16 hex digits>`; the object name is cut so the whole stays a valid
# (253-character) DNS subdomain even for the longest object names.
_MAX_NAME_PREFIX = 253 - 17
# reportingComponent must be a Kubernetes qualified name (optional DNS prefix, then a 63-character name).
_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_MAX_INSTANCE = 128  # the apiserver's limit on reportingInstance

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EventRecorderOptions:
    """Limits of the correlator and the queue; the defaults are client-go's unless noted."""

    cache_size: int = 4096
    """Entries in each LRU cache (aggregation records, Event series, spam buckets)."""
    max_similar: int = 10
    """Distinct messages for one (object, type, reason) within `aggregation_window` before the next ones are
    combined into a single "(combined from similar events)" Event: the first 9 are recorded individually."""
    aggregation_window: float = 600.0
    """Seconds since the last similar event after which aggregation starts afresh."""
    spam_burst: int = 25
    """API writes one involved object may cause in a burst."""
    spam_refill_seconds: float = 300.0
    """Seconds to earn back one write once the burst is spent."""
    max_queued: int = 1000
    """Distinct Events waiting to be written; an event needing a new slot beyond this is dropped."""
    max_message_length: int = 1024
    """Messages are cut to this many characters (events.k8s.io/v1's note limit; not client-go's): it bounds the
    memory of the caches, and `kubectl describe` is no place for a build log."""
    close_timeout: float = 10.0
    """Seconds `close()` waits for the queue to drain before giving up on what is left."""


@dataclass(slots=True)
class EventRecorderStats:
    """What became of the events handed to a recorder, for tests and debugging."""

    emitted: int = 0
    """`event()` calls accepted."""
    coalesced: int = 0
    """Occurrences folded into a write already queued for the same Event (no API call of their own)."""
    aggregated: int = 0
    """Occurrences counted into a "(combined from similar events)" Event."""
    dropped: int = 0
    """Occurrences not queued: the queue was full or the recorder closed."""
    abandoned: int = 0
    """Queued writes given up when `close()` reached its deadline."""
    spam_filtered: int = 0
    """Writes refused by the per-object token bucket; their occurrences still count in the next write that passes."""
    requests: int = 0
    """Create and patch calls made to the apiserver."""
    created: int = 0
    patched: int = 0
    failed: int = 0
    """Writes the apiserver refused or could not be reached for (after the client's own retries)."""


class EventSink(Protocol):
    """The two calls the recorder makes; `client.Client` is one."""

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON: ...

    async def patch(self, resource: Resource, name: str, patch: Any, *, namespace: str | None = None) -> JSON: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A dict that forgets its least recently used entry beyond `capacity` entries."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an LRU cache needs room for at least one entry, not {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class _TokenBucket:
    """A passive token bucket: `take` answers at once whether a token was available."""

    tokens: float
    updated: float

    def take(self, now: float, burst: int, refill_seconds: float) -> bool:
        self.tokens = min(float(burst), self.tokens + (now - self.updated) / refill_seconds)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class _SimilarRecord:
    """The distinct messages seen lately for one (object, type, reason); an ordered set, oldest first."""

    messages: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_seen: float = 0.0


@dataclass(slots=True, eq=False)
class Series:
    """One Event object as the recorder knows it (client-go's `eventLog`): `body` is the Event as it should be on
    the server now, its `count` the occurrences observed so far. `on_server` says whether a create succeeded,
    which decides between PATCH and POST when the write is made."""

    body: JSON
    object_key: tuple[str, ...]
    aggregated: bool = False
    on_server: bool = False

    @property
    def count(self) -> int:
        return int(self.body["count"])


class EventCorrelator:
    """Folds occurrences into Event series, as client-go's `EventCorrelator` does (pure logic on a clock).

    Invariants: an occurrence with the same involved object, type, reason and message as a remembered series
    counts up that series (same Event name); once `max_similar` distinct messages for one (object, type, reason)
    arrive within `aggregation_window` of each other, the newest go to a single combined series instead. The
    recorder's source (component, instance) is the same for all its events, so keys leave it out.
    """

    def __init__(self, options: EventRecorderOptions, clock: Clock) -> None:
        self.options = options
        self.clock = clock
        self._similar: LRUCache[tuple[Any, ...], _SimilarRecord] = LRUCache(options.cache_size)
        self._series: LRUCache[tuple[Any, ...], Series] = LRUCache(options.cache_size)
        self._buckets: LRUCache[tuple[str, ...], _TokenBucket] = LRUCache(options.cache_size)

    def observe(self, event: JSON, object_key: tuple[str, ...]) -> Series:
        """Count a fresh Event body (count 1, new name) into its series, creating the series if it is new."""
        now = self.clock.now()
        similar_key = (object_key, event["type"], event["reason"])
        record = self._similar.get(similar_key)
        if record is None or now - record.last_seen > self.options.aggregation_window:
            record = _SimilarRecord()
        record.messages[event["message"]] = None
        record.last_seen = now
        self._similar.put(similar_key, record)
        key: tuple[Any, ...] = (*similar_key, event["message"])
        aggregated = len(record.messages) >= self.options.max_similar
        if aggregated:
            # Forget the oldest message so the record stays bounded; every further new message is combined too.
            record.messages.popitem(last=False)
            key = similar_key
            event = {**event, "message": COMBINED_PREFIX + event["message"]}
        series = self._series.get(key)
        if series is None:
            series = Series(event, object_key, aggregated=aggregated)
            self._series.put(key, series)
            return series
        series.body["count"] = series.count + 1
        series.body["lastTimestamp"] = event["lastTimestamp"]
        series.body["message"] = event["message"]  # an aggregated Event shows the latest message
        return series

    def allow_write(self, object_key: tuple[str, ...]) -> bool:
        """Take a token from the object's bucket (client-go's spam filter, applied per API write)."""
        now = self.clock.now()
        bucket = self._buckets.get(object_key)
        if bucket is None:
            bucket = _TokenBucket(float(self.options.spam_burst), now)
            self._buckets.put(object_key, bucket)
        return bucket.take(now, self.options.spam_burst, self.options.spam_refill_seconds)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Entries in the (aggregation, series, spam) caches."""
        return len(self._similar), len(self._series), len(self._buckets)


def _rfc3339(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def object_reference(obj: JSON) -> JSON:
    """The involvedObject for `obj`: kind, apiVersion, namespace, name, uid, resourceVersion (those it has)."""
    metadata = obj.get("metadata") or {}
    kind, api_version, name = obj.get("kind"), obj.get("apiVersion"), metadata.get("name")
    if not (kind and api_version and name):
        raise ValueError(
            f"an event needs an object with kind, apiVersion and metadata.name; got kind={kind!r}, "
            f"apiVersion={api_version!r}, name={name!r}"
        )
    ref: JSON = {"kind": kind, "apiVersion": api_version, "name": name}
    for key in ("namespace", "uid", "resourceVersion"):
        if metadata.get(key):
            ref[key] = metadata[key]
    return ref


def _describe(ref: JSON) -> str:
    where = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
    return f"{ref['kind']} {where}"


class EventRecorder:
    """Records core/v1 Events about objects, for `kubectl describe`. Use `async with`, or `start()` and `close()`.

    `event()` never blocks and never raises for API trouble: write failures are logged (reason and object, never
    the message, which may quote anything) and counted in `stats`. Writes happen in order of first occurrence; a
    write already queued for the same Event absorbs later occurrences, so a burst of identical events costs one
    API call. Call `event()` from the event loop's thread only.
    """

    def __init__(
        self,
        client: EventSink,
        component: str,
        *,
        instance: str | None = None,
        clock: Clock = REAL_CLOCK,
        options: EventRecorderOptions | None = None,
    ) -> None:
        if not _QUALIFIED_NAME.match(component):
            raise ValueError(f"component {component!r} is not a qualified name, as reportingComponent must be")
        self.client = client
        self.component = component
        # The pod's name is its hostname: which replica reported an event is worth knowing.
        self.instance = (socket.gethostname() if instance is None else instance)[:_MAX_INSTANCE]
        self.clock = clock
        self.options = options or EventRecorderOptions()
        self.stats = EventRecorderStats()
        self.correlator = EventCorrelator(self.options, clock)
        # The queue: at most one pending write per series, oldest first. Invariant: a series is in `_pending` at
        # most once, and the consumer builds the request from the series when it writes, so a later occurrence
        # only has to update the series.
        self._pending: OrderedDict[Series, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_name_ns = 0

    # -- emitting -----------------------------------------------------------------------------------------------

    def event(self, obj: JSON, type: str, reason: str, message: str) -> None:
        """Record that `reason` happened to `obj`; `type` is "Normal" or "Warning"."""
        if type not in EVENT_TYPES:
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        ref = object_reference(obj)
        if self._closed:
            self.stats.dropped += 1
            return
        self.stats.emitted += 1
        object_key = (ref["kind"], ref["apiVersion"], ref.get("namespace", ""), ref["name"], ref.get("uid", ""))
        series = self.correlator.observe(self._make_event(ref, type, reason, message), object_key)
        if series.aggregated:
            self.stats.aggregated += 1
        if series in self._pending:
            self.stats.coalesced += 1
            return
        if len(self._pending) >= self.options.max_queued:
            self.stats.dropped += 1
            # Logged at 1, 2, 4, 8, ... drops: a flood must not turn into a flood of log lines.
            if self.stats.dropped & (self.stats.dropped - 1) == 0:
                log.warning(
                    "event queue full, dropping events",
                    reason=reason,
                    object=_describe(ref),
                    dropped=self.stats.dropped,
                )
            return
        self._pending[series] = None
        self._idle.clear()
        self._wake.set()

    def _make_event(self, ref: JSON, type: str, reason: str, message: str) -> JSON:
        wall = self.clock.wall()
        # Like client-go, the name carries the time in nanoseconds; bumped so that it is unique in this process
        # even when the clock has not moved (fast loops, coarse clocks, fake clocks).
        self._last_name_ns = max(int(wall * 1e9), self._last_name_ns + 1)
        timestamp = _rfc3339(wall)
        if len(message) > self.options.max_message_length:
            message = message[: self.options.max_message_length - 3] + "..."
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{ref['name'][:_MAX_NAME_PREFIX]}.{self._last_name_ns:016x}",
                # Cluster-scoped objects' events go to "default", as client-go does.
                "namespace": ref.get("namespace") or "default",
            },
            "involvedObject": ref,
            "type": type,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.instance},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer task on the running loop (events emitted before are written then)."""
        if self._closed:
            raise RuntimeError("this event recorder is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"event-recorder:{self.component}")

    async def flush(self) -> None:
        """Wait until every queued write has been made (or given up on)."""
        if self._task is None and self._pending:
            raise RuntimeError("flush() on an event recorder that was never started")
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is queued (for at most `options.close_timeout` seconds), then stop.

        Events emitted after close are dropped. Writes still queued at the deadline are abandoned and logged.
        """
        if self._closed:
            return
        self._closed = True
        if self._task is None:
            if not self._pending:
                return
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        try:
            await asyncio.wait_for(self._task, self.options.close_timeout)
        except TimeoutError:
            self.stats.abandoned += len(self._pending)
            log.warning("event recorder closed before its queue drained", abandoned=len(self._pending))
            self._pending.clear()

    async def __aenter__(self) -> EventRecorder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writing ------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            while self._pending:
                series, _ = self._pending.popitem(last=False)
                await self._write(series)
            self._idle.set()
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _write(self, series: Series) -> None:
        if not self.correlator.allow_write(series.object_key):
            # Dropped, not deferred (client-go's behaviour); the series keeps counting, so the next write for
            # this Event that passes carries every occurrence.
            self.stats.spam_filtered += 1
            return
        # A snapshot: occurrences during the await update the series and queue it again.
        body = {**series.body}
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        ref = body["involvedObject"]
        try:
            if series.on_server:
                try:
                    self.stats.requests += 1
                    patch = {key: body[key] for key in ("count", "lastTimestamp", "message")}
                    await self.client.patch(EVENTS, name, patch, namespace=namespace)
                    self.stats.patched += 1
                    return
                except errors.NotFoundError:
                    pass  # expired (the apiserver keeps Events for an hour) or deleted: create it anew
            self.stats.requests += 1
            await self.client.create(EVENTS, body, namespace=namespace)
            series.on_server = True
            self.stats.created += 1
        except errors.AlreadyExistsError:
            # An earlier create whose answer was lost (and retried by the client) made it: patch from now on.
            series.on_server = True
            self.stats.failed += 1
        except (errors.ApiError, errors.TransportError) as exc:
            self.stats.failed += 1
            self._log_failure(exc, body["reason"], ref)
        except Exception:
            # A bug, not API trouble; the writer must survive it or every later event would be lost silently.
            self.stats.failed += 1
            log.exception("writing an event failed", reason=body["reason"], object=_describe(ref))

    def _log_failure(self, exc: Exception, reason: str, ref: JSON) -> None:
        fields: dict[str, Any] = {"reason": reason, "object": _describe(ref), "error": type(exc).__name__}
        if isinstance(exc, errors.ApiError):
            fields.update(status=exc.status, api_reason=exc.reason)
            # 400/422 answers may quote the request (the event's message); other answers name only the request.
            if exc.status not in (400, 422):
                fields["detail"] = exc.message
            if isinstance(exc, errors.ForbiddenError) and "being terminated" in exc.message:
                log.debug("event not written: its namespace is being deleted", **fields)
                return
        log.warning("event not written", **fields)
