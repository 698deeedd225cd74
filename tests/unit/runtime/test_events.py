"""EventRecorder without a server: the Event body, client-go's correlation (series, aggregation, spam filter) on a
fake clock, the coalescing queue, and what happens when the API fails."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from kpack_core.runtime import errors
from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.events import (
    COMBINED_PREFIX,
    EventRecorder,
    EventRecorderOptions,
    LRUCache,
)
from kpack_core.runtime.resource import EVENTS, Resource

JSON = dict[str, Any]
NAME = re.compile(r"^settings\.[0-9a-f]{16}$")


class FakeSink:
    """An in-memory Events API: records every call; `gate` holds writes until set; `fail` makes the next call raise."""

    def __init__(self) -> None:
        self.events: dict[tuple[str | None, str], JSON] = {}
        self.calls: list[tuple[str, str, JSON]] = []
        self.gate: asyncio.Event | None = None
        self.fail: list[Exception] = []

    async def _enter(self) -> None:
        await asyncio.sleep(0)  # a real round trip yields to the loop
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise self.fail.pop(0)

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON:
        assert resource is EVENTS
        self.calls.append(("create", body["metadata"]["name"], copy.deepcopy(body)))
        await self._enter()
        key = (namespace, body["metadata"]["name"])
        if key in self.events:
            raise errors.AlreadyExistsError(409, "AlreadyExists", "exists", f"Event {key}")
        self.events[key] = copy.deepcopy(body)
        return body

    async def patch(self, resource: Resource, name: str, patch: Any, *, namespace: str | None = None) -> JSON:
        assert resource is EVENTS
        self.calls.append(("patch", name, copy.deepcopy(patch)))
        await self._enter()
        if (namespace, name) not in self.events:
            raise errors.NotFoundError(404, "NotFound", "not found", f"Event {name}")
        self.events[namespace, name].update(patch)
        return self.events[namespace, name]

    def verbs(self) -> list[str]:
        return [verb for verb, _, _ in self.calls]

    def only(self) -> JSON:
        assert len(self.events) == 1, self.events
        return next(iter(self.events.values()))


def configmap(name: str = "settings", namespace: str = "team") -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "42"},
        "data": {"password": "not-in-the-event"},
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
async def recorder(sink: FakeSink, clock: FakeClock) -> AsyncIterator[EventRecorder]:
    async with EventRecorder(sink, "kpack-controller", instance="kpack-0", clock=clock) as started:
        yield started


# -- the Event ----------------------------------------------------------------------------------------------------


async def test_event_body_is_a_core_v1_event_like_client_gos(recorder: EventRecorder, sink: FakeSink) -> None:
    recorder.event(configmap(), "Normal", "Resolved", "resolved to abc")
    await recorder.flush()

    assert sink.verbs() == ["create"]
    body = sink.calls[0][2]
    assert NAME.match(body["metadata"]["name"])
    assert body == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": body["metadata"]["name"], "namespace": "team"},
        "involvedObject": {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "namespace": "team",
            "name": "settings",
            "uid": "uid-settings",
            "resourceVersion": "42",
        },
        "type": "Normal",
        "reason": "Resolved",
        "message": "resolved to abc",
        "source": {"component": "kpack-controller", "host": "kpack-0"},
        "reportingComponent": "kpack-controller",
        "reportingInstance": "kpack-0",
        "firstTimestamp": "2023-11-14T22:13:20Z",  # FakeClock's wall start, 1_700_000_000
        "lastTimestamp": "2023-11-14T22:13:20Z",
        "count": 1,
    }


async def test_event_about_a_cluster_scoped_object_goes_to_default(recorder: EventRecorder, sink: FakeSink) -> None:
    recorder.event({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, "Warning", "Odd", "x")
    await recorder.flush()

    body = sink.only()
    assert body["metadata"]["namespace"] == "default"
    assert "namespace" not in body["involvedObject"]


async def test_names_are_unique_while_the_clock_stands_still(recorder: EventRecorder, sink: FakeSink) -> None:
    for reason in ("A", "B", "C"):
        recorder.event(configmap(), "Normal", reason, "m")
    await recorder.flush()

    names = [name for _, name, _ in sink.calls]
    assert len(set(names)) == 3
    assert all(NAME.match(name) for name in names)
    assert names == sorted(names)  # time-ordered, like client-go's UnixNano names


async def test_long_object_names_still_make_valid_event_names(recorder: EventRecorder, sink: FakeSink) -> None:
    recorder.event(configmap("a" * 253), "Normal", "Long", "m")
    await recorder.flush()

    name = sink.only()["metadata"]["name"]
    assert len(name) == 253
    assert re.match(r"^a+\.[0-9a-f]{16}$", name)


async def test_long_messages_are_cut(recorder: EventRecorder, sink: FakeSink) -> None:
    recorder.event(configmap(), "Warning", "Failed", "x" * 5000)
    await recorder.flush()

    message = sink.only()["message"]
    assert len(message) == 1024
    assert message.endswith("...")


@pytest.mark.parametrize("event_type", ["normal", "Error", ""])
def test_event_type_must_be_normal_or_warning(sink: FakeSink, event_type: str) -> None:
    recorder = EventRecorder(sink, "kpack-controller")
    with pytest.raises(ValueError, match="Normal or Warning"):
        recorder.event(configmap(), event_type, "Reason", "m")


def test_object_needs_kind_api_version_and_name(sink: FakeSink) -> None:
    recorder = EventRecorder(sink, "kpack-controller")
    with pytest.raises(ValueError, match=r"kind, apiVersion and metadata\.name"):
        recorder.event({"metadata": {"name": "x", "namespace": "y"}}, "Normal", "Reason", "m")


@pytest.mark.parametrize("component", ["", "Has Space", "-leading", "x" * 64])
def test_component_must_be_a_qualified_name(sink: FakeSink, component: str) -> None:
    with pytest.raises(ValueError, match="qualified name"):
        EventRecorder(sink, component)


def test_instance_defaults_to_the_hostname(sink: FakeSink) -> None:
    import socket

    assert EventRecorder(sink, "kpack-controller").instance == socket.gethostname()[:128]


# -- identical events: one series, counted up -----------------------------------------------------------------------


async def test_identical_event_patches_count_and_last_timestamp(
    recorder: EventRecorder, sink: FakeSink, clock: FakeClock
) -> None:
    recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()
    await clock.advance(7)
    recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()

    assert sink.verbs() == ["create", "patch"]
    created_name = sink.calls[0][1]
    assert sink.calls[1][1:] == (
        created_name,
        {"count": 2, "lastTimestamp": "2023-11-14T22:13:27Z", "message": "boom"},
    )
    event = sink.only()
    assert (event["count"], event["firstTimestamp"]) == (2, "2023-11-14T22:13:20Z")


async def test_a_burst_of_identical_events_costs_one_write(recorder: EventRecorder, sink: FakeSink) -> None:
    for _ in range(500):
        recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()

    assert sink.verbs() == ["create"]
    assert sink.only()["count"] == 500
    stats = recorder.stats
    assert (stats.emitted, stats.coalesced, stats.requests, stats.spam_filtered) == (500, 499, 1, 0)


async def test_events_during_a_write_fold_into_one_follow_up_patch(recorder: EventRecorder, sink: FakeSink) -> None:
    sink.gate = asyncio.Event()
    recorder.event(configmap(), "Warning", "Failed", "boom")
    for _ in range(5):
        await asyncio.sleep(0)  # the writer takes the event and waits inside create
    assert sink.verbs() == ["create"]
    for _ in range(99):
        recorder.event(configmap(), "Warning", "Failed", "boom")
    sink.gate.set()
    await recorder.flush()

    assert sink.verbs() == ["create", "patch"]
    assert sink.calls[0][2]["count"] == 1
    assert sink.calls[1][2]["count"] == 100
    assert sink.only()["count"] == 100


async def test_a_vanished_event_is_created_anew(recorder: EventRecorder, sink: FakeSink) -> None:
    recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()
    sink.events.clear()  # the apiserver's event TTL ran out
    recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()

    assert sink.verbs() == ["create", "patch", "create"]
    assert sink.calls[2][1] == sink.calls[0][1]
    assert sink.only()["count"] == 2


# -- similar events: aggregation ------------------------------------------------------------------------------------


async def test_similar_events_aggregate_from_the_tenth_distinct_message(
    recorder: EventRecorder, sink: FakeSink
) -> None:
    for i in range(30):
        recorder.event(configmap(), "Warning", "BuildFailed", f"attempt {i}")
    await recorder.flush()

    events = sorted(sink.events.values(), key=lambda e: e["metadata"]["name"])
    assert [e["message"] for e in events[:9]] == [f"attempt {i}" for i in range(9)]
    assert all(e["count"] == 1 for e in events[:9])
    combined = events[9:]
    assert len(combined) == 1
    assert combined[0]["message"] == COMBINED_PREFIX + "attempt 29"
    assert combined[0]["count"] == 21
    assert recorder.stats.aggregated == 21
    assert recorder.stats.requests == 10


async def test_aggregation_is_per_reason(recorder: EventRecorder, sink: FakeSink) -> None:
    for i in range(12):
        recorder.event(configmap(), "Warning", f"Reason{i}", f"message {i}")
    await recorder.flush()

    assert len(sink.events) == 12
    assert not any(e["message"].startswith(COMBINED_PREFIX) for e in sink.events.values())


async def test_aggregation_starts_afresh_after_ten_quiet_minutes(
    recorder: EventRecorder, sink: FakeSink, clock: FakeClock
) -> None:
    for i in range(10):
        recorder.event(configmap(), "Warning", "BuildFailed", f"attempt {i}")
        await clock.advance(599)  # each within the window of the previous one: the window slides
    await recorder.flush()
    assert recorder.stats.aggregated == 1

    await clock.advance(2)  # now 601 s since the last similar event
    recorder.event(configmap(), "Warning", "BuildFailed", "fresh start")
    await recorder.flush()

    assert recorder.stats.aggregated == 1
    assert sink.calls[-1][2]["message"] == "fresh start"


# -- spam filter ----------------------------------------------------------------------------------------------------


async def test_writes_per_object_are_limited_to_a_burst_of_25(
    recorder: EventRecorder, sink: FakeSink, clock: FakeClock
) -> None:
    for i in range(30):
        recorder.event(configmap(), "Normal", f"Reason{i}", "m")
    recorder.event(configmap("other"), "Normal", "Reason", "m")  # another object has its own bucket
    await recorder.flush()

    assert recorder.stats.created == 26
    assert recorder.stats.spam_filtered == 5

    await clock.advance(300)  # earns one write back
    recorder.event(configmap(), "Normal", "Later1", "m")
    recorder.event(configmap(), "Normal", "Later2", "m")
    await recorder.flush()

    assert recorder.stats.created == 27
    assert recorder.stats.spam_filtered == 6


async def test_spam_filtered_occurrences_count_in_the_next_write(
    recorder: EventRecorder, sink: FakeSink, clock: FakeClock
) -> None:
    for _ in range(30):
        recorder.event(configmap(), "Warning", "Failed", "boom")
        await recorder.flush()  # one write each: the burst runs out after 25
    assert sink.verbs() == ["create"] + ["patch"] * 24
    assert sink.only()["count"] == 25
    assert recorder.stats.spam_filtered == 5

    await clock.advance(300)
    recorder.event(configmap(), "Warning", "Failed", "boom")
    await recorder.flush()

    assert sink.only()["count"] == 31


# -- queue, failures, lifecycle -------------------------------------------------------------------------------------


async def test_full_queue_drops_the_newest_and_counts(sink: FakeSink, clock: FakeClock) -> None:
    recorder = EventRecorder(sink, "kpack-controller", clock=clock, options=EventRecorderOptions(max_queued=3))
    for i in range(5):
        recorder.event(configmap(f"cm-{i}"), "Normal", "Reason", "m")
    recorder.event(configmap("cm-0"), "Normal", "Reason", "m")  # coalesces into a queued write: no slot needed
    assert (recorder.stats.dropped, recorder.stats.coalesced) == (2, 1)

    await recorder.close()

    assert sorted(e["involvedObject"]["name"] for e in sink.events.values()) == ["cm-0", "cm-1", "cm-2"]
    assert sink.events[next(k for k in sink.events if k[1].startswith("cm-0"))]["count"] == 2


async def test_api_failure_is_logged_without_the_message_and_recording_goes_on(
    recorder: EventRecorder, sink: FakeSink
) -> None:
    sink.fail.append(errors.ForbiddenError(403, "Forbidden", "events is forbidden", "Event team/x"))
    with capture_logs() as logs:
        recorder.event(configmap(), "Warning", "Failed", "token=hunter2")  # never raises
        await recorder.flush()

    assert recorder.stats.failed == 1
    assert sink.events == {}
    [entry] = [e for e in logs if e["log_level"] == "warning"]
    assert entry["reason"] == "Failed"
    assert entry["object"] == "ConfigMap team/settings"
    assert (entry["status"], entry["api_reason"]) == (403, "Forbidden")
    assert "hunter2" not in repr(logs)

    recorder.event(configmap(), "Warning", "Failed", "token=hunter2")
    await recorder.flush()
    assert sink.verbs() == ["create", "create"]  # never made it to the server: created, not patched
    assert sink.only()["count"] == 2


async def test_invalid_answers_are_logged_without_the_servers_detail(recorder: EventRecorder, sink: FakeSink) -> None:
    sink.fail.append(errors.InvalidError(422, "Invalid", 'message: Invalid value: "s3cr3t"', "Event team/x"))
    with capture_logs() as logs:
        recorder.event(configmap(), "Warning", "Failed", "s3cr3t")
        await recorder.flush()

    assert "s3cr3t" not in repr(logs)
    assert recorder.stats.failed == 1


async def test_transport_errors_and_bugs_do_not_stop_the_writer(recorder: EventRecorder, sink: FakeSink) -> None:
    sink.fail += [errors.TransportError("connection refused"), RuntimeError("a bug")]
    with capture_logs():
        recorder.event(configmap(), "Normal", "A", "m")
        recorder.event(configmap(), "Normal", "B", "m")
        recorder.event(configmap(), "Normal", "C", "m")
        await recorder.flush()

    assert recorder.stats.failed == 2
    assert [e["reason"] for e in sink.events.values()] == ["C"]


async def test_close_flushes_events_emitted_before_start(sink: FakeSink, clock: FakeClock) -> None:
    recorder = EventRecorder(sink, "kpack-controller", clock=clock)
    for reason in ("A", "B", "C"):
        recorder.event(configmap(), "Normal", reason, "m")

    await recorder.close()
    recorder.event(configmap(), "Normal", "D", "m")
    await recorder.close()  # idempotent

    assert sorted(e["reason"] for e in sink.events.values()) == ["A", "B", "C"]
    assert recorder.stats.dropped == 1
    with pytest.raises(RuntimeError, match="closed"):
        recorder.start()


async def test_close_gives_up_at_its_deadline(sink: FakeSink, clock: FakeClock) -> None:
    sink.gate = asyncio.Event()  # the apiserver never answers
    options = EventRecorderOptions(close_timeout=0.05)
    recorder = EventRecorder(sink, "kpack-controller", clock=clock, options=options)
    recorder.start()
    recorder.event(configmap(), "Normal", "A", "m")
    recorder.event(configmap(), "Normal", "B", "m")

    with capture_logs() as logs:
        await asyncio.wait_for(recorder.close(), 5)

    assert recorder.stats.abandoned == 1  # B; A was in flight
    assert any(e["event"] == "event recorder closed before its queue drained" for e in logs)


async def test_caches_stay_bounded(sink: FakeSink, clock: FakeClock) -> None:
    options = EventRecorderOptions(cache_size=8)
    async with EventRecorder(sink, "kpack-controller", clock=clock, options=options) as recorder:
        for i in range(100):
            recorder.event(configmap(f"cm-{i}"), "Normal", "Reason", f"m{i}")
        await recorder.flush()
        assert all(size <= 8 for size in recorder.correlator.sizes)
    assert recorder.stats.created == 100


def test_lru_cache_forgets_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    with pytest.raises(ValueError, match="at least one"):
        LRUCache(0)
