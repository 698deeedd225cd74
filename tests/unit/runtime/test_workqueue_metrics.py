"""The `workqueue_*` series as a Prometheus scrape sees them: names, types, help, labels, buckets and values."""

from __future__ import annotations

import asyncio
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from kpack_core.runtime.clock import FakeClock
from kpack_core.runtime.metrics import exposition
from kpack_core.runtime.workqueue import WorkQueue
from kpack_core.runtime.workqueue_metrics import DURATION_BUCKETS, _go_float

FAMILIES = {
    # family name as the parser reports it (counters lose `_total`) -> (type, help)
    "workqueue_depth": ("gauge", "Current depth of workqueue by workqueue and priority"),
    "workqueue_adds": ("counter", "Total number of adds handled by workqueue"),
    "workqueue_queue_duration_seconds": (
        "histogram",
        "How long in seconds an item stays in workqueue before being requested",
    ),
    "workqueue_work_duration_seconds": ("histogram", "How long in seconds processing an item from workqueue takes."),
    "workqueue_unfinished_work_seconds": (
        "gauge",
        "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. "
        "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at "
        "which this increases.",
    ),
    "workqueue_longest_running_processor_seconds": (
        "gauge",
        "How many seconds has the longest running processor for workqueue been running.",
    ),
    "workqueue_retries": ("counter", "Total number of retries handled by workqueue"),
}
GO_LE = [
    "1e-08", "1e-07", "1e-06", "9.999999999999999e-06", "9.999999999999999e-05",
    "0.001", "0.01", "0.1", "1", "10", "100", "1000", "+Inf",
]  # fmt: skip


def scrape(queue_name: str) -> dict[str, list[Sample]]:
    """The workqueue samples of one queue, by family name."""
    text = exposition().decode()
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("workqueue_"):
            found[family.name] = [sample for sample in family.samples if sample.labels.get("name") == queue_name]
    return found


def value(samples: list[Sample], suffix: str = "", **labels: str) -> float:
    matching = [
        sample.value
        for sample in samples
        if sample.name.endswith(suffix) and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, (suffix, labels, samples)
    return matching[0]


def buckets(samples: list[Sample]) -> dict[str, float]:
    return {sample.labels["le"]: sample.value for sample in samples if sample.name.endswith("_bucket")}


def test_families_have_the_controller_runtime_names_types_and_help() -> None:
    WorkQueue("metrics-families")
    text = exposition().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, (kind, help_text) in FAMILIES.items():
        assert families[name].type == kind, name
        assert families[name].documentation == help_text, name
    assert "# TYPE workqueue_adds_total counter" in text
    assert "# TYPE workqueue_retries_total counter" in text
    assert "workqueue_adds_created" not in text  # Go exports no _created series


def test_labels_are_name_controller_and_priority_on_depth_only() -> None:
    WorkQueue("metrics-labels")
    samples = scrape("metrics-labels")
    assert set(samples) == set(FAMILIES)
    for family, family_samples in samples.items():
        assert family_samples, family
        for sample in family_samples:
            expected = {"name", "controller"} | ({"priority"} if family == "workqueue_depth" else set())
            if sample.name.endswith("_bucket"):
                expected.add("le")
            assert set(sample.labels) == expected, sample
            assert sample.labels["controller"] == "metrics-labels"
    assert samples["workqueue_depth"][0].labels["priority"] == ""


def test_histograms_use_go_exponential_buckets_spelled_like_go() -> None:
    assert DURATION_BUCKETS[0] == 1e-08
    assert DURATION_BUCKETS[-1] == 1000.0
    assert len(DURATION_BUCKETS) == 12
    WorkQueue("metrics-buckets")
    samples = scrape("metrics-buckets")
    for family in ("workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"):
        assert list(buckets(samples[family])) == GO_LE
        assert [float(le) for le in GO_LE[:-1]] == list(DURATION_BUCKETS)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (0.0, "0"),
        (1000.0, "1000"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (0.25, "0.25"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (math.inf, "+Inf"),
    ],
)
def test_bucket_bounds_are_formatted_like_go_strconv(number: float, text: str) -> None:
    assert _go_float(number) == text


async def test_values_follow_adds_gets_and_dones() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("metrics-values", clock=clock)
    queue.add("a")
    queue.add("b")
    queue.add("a")  # deduplicated: not counted
    samples = scrape("metrics-values")
    assert value(samples["workqueue_adds"]) == 2
    assert value(samples["workqueue_depth"]) == 2

    await clock.advance(0.5)
    assert await queue.get() == "a"  # waited 0.5 s
    await clock.advance(2)
    queue.done("a")  # worked 2 s
    assert await queue.get() == "b"  # waited 2.5 s
    queue.add("b")  # re-added while processing: counted, in the depth, queued at done
    await clock.advance(3)

    samples = scrape("metrics-values")
    assert value(samples["workqueue_adds"]) == 3
    assert value(samples["workqueue_depth"]) == 1
    assert value(samples["workqueue_unfinished_work_seconds"]) == pytest.approx(3)
    assert value(samples["workqueue_longest_running_processor_seconds"]) == pytest.approx(3)
    latency = samples["workqueue_queue_duration_seconds"]
    assert value(latency, "_count") == 2
    assert value(latency, "_sum") == pytest.approx(3.0)
    assert buckets(latency)["0.1"] == 0
    assert buckets(latency)["1"] == 1
    assert buckets(latency)["10"] == 2
    assert buckets(latency)["+Inf"] == 2
    work = samples["workqueue_work_duration_seconds"]
    assert value(work, "_count") == 1
    assert value(work, "_sum") == pytest.approx(2.0)
    assert buckets(work)["1"] == 0
    assert buckets(work)["10"] == 1

    queue.done("b")
    assert await queue.get() == "b"  # it waited since its re-add 3 s ago
    queue.done("b")
    samples = scrape("metrics-values")
    assert value(samples["workqueue_depth"]) == 0
    assert value(samples["workqueue_unfinished_work_seconds"]) == 0
    assert value(samples["workqueue_longest_running_processor_seconds"]) == 0
    assert value(samples["workqueue_queue_duration_seconds"], "_sum") == pytest.approx(6.0)


async def test_in_flight_gauges_sum_and_max_over_processing_keys() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("metrics-in-flight", clock=clock)
    queue.add("a")
    queue.add("b")
    await queue.get()
    await clock.advance(4)
    await queue.get()
    await clock.advance(1)
    samples = scrape("metrics-in-flight")
    assert value(samples["workqueue_unfinished_work_seconds"]) == pytest.approx(5 + 1)
    assert value(samples["workqueue_longest_running_processor_seconds"]) == pytest.approx(5)


async def test_delayed_keys_count_when_ready_and_every_add_after_is_a_retry() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("metrics-delays", clock=clock)
    queue.add_after("a", 10)
    queue.add_after("b", 0)  # zero delays count as retries too, as in client-go
    queue.add_rate_limited("c")
    samples = scrape("metrics-delays")
    assert value(samples["workqueue_retries"]) == 3
    assert value(samples["workqueue_adds"]) == 1
    assert value(samples["workqueue_depth"]) == 1

    await clock.advance(10)
    await clock.advance(2)
    samples = scrape("metrics-delays")
    assert value(samples["workqueue_adds"]) == 3
    assert value(samples["workqueue_depth"]) == 3
    assert await queue.get() == "b"
    assert await queue.get() == "c"  # ready at 0.005 s, so waited ~12 s
    assert await queue.get() == "a"  # ready at 10 s: queue_duration starts then
    samples = scrape("metrics-delays")
    assert value(samples["workqueue_queue_duration_seconds"], "_sum") == pytest.approx(12 + 11.995 + 2)
    queue.shutdown()
    queue.add("d")
    queue.add_after("d", 1)  # ignored while shutting down: no add, no retry
    samples = scrape("metrics-delays")
    assert value(samples["workqueue_retries"]) == 3
    assert value(samples["workqueue_adds"]) == 3


async def test_unnamed_queues_export_nothing() -> None:
    before = exposition()
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await queue.get()
    assert exposition().count(b"workqueue_adds_total{") == before.count(b"workqueue_adds_total{")
    assert b'name=""' not in exposition()


async def test_a_queue_reusing_a_name_continues_its_counters() -> None:
    first: WorkQueue[str] = WorkQueue("metrics-reused")
    first.add("a")
    first.shutdown()
    assert value(scrape("metrics-reused")["workqueue_depth"]) == 1  # series stay after shutdown
    second: WorkQueue[str] = WorkQueue("metrics-reused")
    second.add("b")
    second.add("c")
    samples = scrape("metrics-reused")
    assert value(samples["workqueue_adds"]) == 3
    assert value(samples["workqueue_depth"]) == 2  # read from the newest queue
    assert len(samples["workqueue_depth"]) == 1


async def test_scrape_from_another_thread_while_the_loop_works() -> None:
    queue: WorkQueue[int] = WorkQueue("metrics-threaded")
    for key in range(1000):
        queue.add(key)

    async def work() -> None:
        for _ in range(1000):
            queue.done(await queue.get())
            await asyncio.sleep(0)

    await asyncio.gather(asyncio.to_thread(lambda: [exposition() for _ in range(20)]), work())
    assert value(scrape("metrics-threaded")["workqueue_adds"]) == 1000
