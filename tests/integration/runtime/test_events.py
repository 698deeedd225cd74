"""EventRecorder against a real apiserver: Events as `kubectl describe` reads them, a burst of identical events as
one counted Event written once, aggregation of similar events, and close() flushing the queue."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from kpack_core.runtime.client import Client
from kpack_core.runtime.events import COMBINED_PREFIX, EventRecorder
from kpack_core.runtime.metrics import exposition
from kpack_core.runtime.resource import CONFIGMAPS, EVENTS, NAMESPACES

pytestmark = pytest.mark.integration

JSON = dict[str, Any]
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest_asyncio.fixture(loop_scope="session")
async def recorder(client: Client) -> AsyncIterator[EventRecorder]:
    async with EventRecorder(client, "kpack-test", instance="pytest-0") as started:
        yield started


async def make_configmap(client: Client, namespace: str, name: str = "settings") -> JSON:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}
    created: JSON = await client.create(CONFIGMAPS, body)
    return created


async def events_about(client: Client, namespace: str, name: str) -> list[JSON]:
    listed = await client.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}")
    return sorted(listed.items, key=lambda e: e["metadata"]["name"])


def event_writes(host: str) -> float:
    """POSTs and PATCHes this client has made, from rest_client_requests_total (no other test writes meanwhile)."""
    total = 0.0
    for family in text_string_to_metric_families(exposition().decode()):
        if family.name != "rest_client_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels["host"] == host and labels["method"] in ("POST", "PATCH"):
                total += sample.value
    return total


async def test_event_appears_with_its_involved_object(client: Client, namespace: str, recorder: EventRecorder) -> None:
    configmap = await make_configmap(client, namespace)
    recorder.event(configmap, "Normal", "Synced", "settings are in sync")
    await recorder.flush()

    [event] = await events_about(client, namespace, "settings")
    metadata = configmap["metadata"]
    assert event["involvedObject"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "namespace": namespace,
        "name": "settings",
        "uid": metadata["uid"],
        "resourceVersion": metadata["resourceVersion"],
    }
    assert event["metadata"]["namespace"] == namespace
    assert re.match(r"^settings\.[0-9a-f]{16}$", event["metadata"]["name"])
    assert (event["type"], event["reason"], event["message"], event["count"]) == (
        "Normal",
        "Synced",
        "settings are in sync",
        1,
    )
    assert event["source"] == {"component": "kpack-test", "host": "pytest-0"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("kpack-test", "pytest-0")
    assert RFC3339_SECONDS.match(event["firstTimestamp"])
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert recorder.stats.failed == 0


async def test_event_about_a_cluster_scoped_object_is_in_default(
    client: Client, namespace: str, recorder: EventRecorder
) -> None:
    ns = await client.get(NAMESPACES, namespace)
    recorder.event(ns, "Normal", "Seen", "namespace seen")
    await recorder.flush()

    [event] = await events_about(client, "default", namespace)
    assert event["involvedObject"]["kind"] == "Namespace"
    assert "namespace" not in event["involvedObject"]
    assert recorder.stats.failed == 0


async def test_500_identical_events_are_one_event_written_once(
    client: Client, namespace: str, recorder: EventRecorder
) -> None:
    configmap = await make_configmap(client, namespace)
    writes_before = event_writes(client.host)

    for _ in range(500):  # a hot loop: no await, so every occurrence lands in the one queued write
        recorder.event(configmap, "Warning", "SyncFailed", "could not sync settings")
    await recorder.flush()

    [event] = await events_about(client, namespace, "settings")
    assert event["count"] == 500
    assert event["message"] == "could not sync settings"
    assert recorder.stats.requests == 1
    assert (recorder.stats.coalesced, recorder.stats.spam_filtered, recorder.stats.dropped) == (499, 0, 0)
    assert event_writes(client.host) - writes_before == 1

    # Later occurrences patch the same Event rather than creating more.
    for _ in range(3):
        recorder.event(configmap, "Warning", "SyncFailed", "could not sync settings")
        await recorder.flush()
    [event] = await events_about(client, namespace, "settings")
    assert event["count"] == 503
    assert recorder.stats.patched == 3


async def test_30_differing_messages_aggregate_into_a_combined_event(
    client: Client, namespace: str, recorder: EventRecorder
) -> None:
    configmap = await make_configmap(client, namespace)
    for i in range(30):
        recorder.event(configmap, "Warning", "BuildFailed", f"build {i} failed")
    await recorder.flush()

    events = await events_about(client, namespace, "settings")
    # client-go's aggregator: the first 9 distinct messages stand alone; the 10th and later ones are combined.
    individual = [e for e in events if not e["message"].startswith(COMBINED_PREFIX)]
    combined = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert sorted(e["message"] for e in individual) == sorted(f"build {i} failed" for i in range(9))
    assert all(e["count"] == 1 for e in individual)
    assert len(combined) == 1
    assert combined[0]["message"] == COMBINED_PREFIX + "build 29 failed"
    assert combined[0]["count"] == 21
    assert combined[0]["reason"] == "BuildFailed"
    assert recorder.stats.requests == 10


async def test_a_deleted_event_is_created_again(client: Client, namespace: str, recorder: EventRecorder) -> None:
    configmap = await make_configmap(client, namespace)
    recorder.event(configmap, "Warning", "SyncFailed", "boom")
    await recorder.flush()
    [event] = await events_about(client, namespace, "settings")
    await client.delete(EVENTS, event["metadata"]["name"], namespace)

    recorder.event(configmap, "Warning", "SyncFailed", "boom")
    await recorder.flush()

    [again] = await events_about(client, namespace, "settings")
    assert again["metadata"]["name"] == event["metadata"]["name"]
    assert again["count"] == 2
    assert recorder.stats.failed == 0


async def test_close_flushes_the_queue(client: Client, namespace: str) -> None:
    configmap = await make_configmap(client, namespace)
    recorder = EventRecorder(client, "kpack-test", instance="pytest-0")
    recorder.start()
    for reason in ("Created", "Resolved", "Ready"):
        recorder.event(configmap, "Normal", reason, f"{reason.lower()} settings")

    await recorder.close()

    events = await events_about(client, namespace, "settings")
    assert sorted(e["reason"] for e in events) == ["Created", "Ready", "Resolved"]
    assert recorder.stats.created == 3
