"""The `workqueue_*` Prometheus metrics of named workqueues, exactly as controller-runtime exports them.

The queue's hot path only bumps plain attributes of a `QueueMetrics` (counters, per-bucket histogram counts); one
collector registered in `metrics.REGISTRY` turns them into metric families at scrape time, when it also derives
depth and in-flight work from the queue's own bookkeeping. Only named queues are exported.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from decimal import Decimal
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kpack_core.runtime.metrics import REGISTRY


def _exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    # Multiplied step by step like Go's prometheus.ExponentialBuckets, so the bounds carry the same float rounding
    # (9.999999999999999e-06, not 1e-05) and the `le` labels match what Go controllers emit.
    bounds = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return tuple(bounds)


DURATION_BUCKETS = _exponential_buckets(10e-9, 10, 12)
"""Bounds of both duration histograms: `ExponentialBuckets(10e-9, 10, 12)`, 1e-08 s .. 1000 s."""

DEPTH_HELP = "Current depth of workqueue by workqueue and priority"
ADDS_HELP = "Total number of adds handled by workqueue"
QUEUE_DURATION_HELP = "How long in seconds an item stays in workqueue before being requested"
WORK_DURATION_HELP = "How long in seconds processing an item from workqueue takes."
UNFINISHED_WORK_HELP = (
    "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. "
    "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at "
    "which this increases."
)
LONGEST_RUNNING_HELP = "How many seconds has the longest running processor for workqueue been running."
# controller-runtime <= v0.23 (and client-go's component-base). v0.24 rewrote it to "... with a non-zero delay ...",
# which describes its priority queue; our classic queue counts every add_after, zero delays included, like
# client-go, and this text is the one that fits that behaviour.
RETRIES_HELP = "Total number of retries handled by workqueue"


def _go_float(value: float) -> str:
    """`value` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` (what Go's exposition writes in `le`): "1", "0.001",
    "1e-08"; prometheus_client would write "1.0"."""
    if value == math.inf:
        return "+Inf"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(digits) + exponent  # position of the decimal point relative to the first digit
    decimal_exponent = point - 1
    prefix = "-" if sign else ""
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if decimal_exponent < 0 else '+'}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


_BUCKET_LABELS = (*(_go_float(bound) for bound in DURATION_BUCKETS), "+Inf")


class DurationHistogram:
    """A classic histogram over `DURATION_BUCKETS` as two plain attributes; `counts[i]` is not cumulative."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last slot is the +Inf bucket
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (`le` is inclusive).
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        buckets = []
        for label, count in zip(_BUCKET_LABELS, self.counts, strict=True):
            running += count
            buckets.append((label, float(running)))
        return buckets


class QueueMetrics:
    """The counters of one named queue. The queue bumps `adds` and `retries` and observes the two histograms itself;
    depth and in-flight work are read from the queue's `dirty` and `processing` maps when scraped."""

    __slots__ = ("_dirty", "_now", "_processing", "adds", "name", "queue_duration", "retries", "work_duration")

    def __init__(self, name: str) -> None:
        self.name = name
        self.adds = 0
        self.retries = 0
        self.queue_duration = DurationHistogram()
        self.work_duration = DurationHistogram()
        self._dirty: Sized = ()
        self._processing: Mapping[Any, float] = {}
        self._now: Callable[[], float] = lambda: 0.0

    def bind(self, dirty: Sized, processing: Mapping[Any, float], now: Callable[[], float]) -> None:
        """Read depth (`len(dirty)`) and in-flight start times (`processing` values, on `now`'s clock) from these
        maps, which the queue mutates in place and never replaces. Only the maps are held, not the queue."""
        self._dirty = dirty
        self._processing = processing
        self._now = now

    @property
    def depth(self) -> int:
        return len(self._dirty)

    def in_flight(self) -> tuple[float, float]:
        """(sum of the ages of the items being processed, age of the oldest), in seconds."""
        starts: tuple[float, ...] = ()
        for _ in range(3):
            try:
                # Copied in one C-level call; a scrape from another thread could race a resize, so retry.
                starts = tuple(self._processing.values())
                break
            except RuntimeError:
                continue
        if not starts:
            return 0.0, 0.0
        now = self._now()
        return math.fsum(now - start for start in starts), now - min(starts)


_QUEUES: dict[str, QueueMetrics] = {}


def queue_metrics(name: str) -> QueueMetrics:
    """The metrics of the queue called `name`, created (and exported from now on) on first use.

    Queue names are controller names and meant to be unique in a process. A later queue with the same name gets the
    same counters (they keep growing, as with Go's shared metric vectors) and takes over the depth and in-flight
    series by binding its own maps. Series stay exported after the queue shuts down, as in Go.
    """
    metrics = _QUEUES.get(name)
    if metrics is None:
        metrics = _QUEUES[name] = QueueMetrics(name)
    return metrics


class WorkQueueCollector(Collector):
    """Yields the seven `workqueue_*` families for every named queue at scrape time."""

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering does not have to collect.
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        depth, adds, queue_duration, work_duration, unfinished, longest, retries = families = self._families()
        for name, metrics in sorted(_QUEUES.items()):
            labels = [name, name]  # `controller` carries the queue name too (controller-runtime PR #2895)
            depth.add_metric([*labels, ""], metrics.depth)  # priority "" = the classic queue
            adds.add_metric(labels, metrics.adds)
            queue_duration.add_metric(labels, metrics.queue_duration.cumulative(), metrics.queue_duration.sum)
            work_duration.add_metric(labels, metrics.work_duration.cumulative(), metrics.work_duration.sum)
            unfinished_seconds, longest_seconds = metrics.in_flight()
            unfinished.add_metric(labels, unfinished_seconds)
            longest.add_metric(labels, longest_seconds)
            retries.add_metric(labels, metrics.retries)
        yield from families

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily,
        CounterMetricFamily,
        HistogramMetricFamily,
        HistogramMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
    ]:
        labels = ["name", "controller"]
        return (
            GaugeMetricFamily("workqueue_depth", DEPTH_HELP, labels=[*labels, "priority"]),
            CounterMetricFamily("workqueue_adds_total", ADDS_HELP, labels=labels),
            HistogramMetricFamily("workqueue_queue_duration_seconds", QUEUE_DURATION_HELP, labels=labels),
            HistogramMetricFamily("workqueue_work_duration_seconds", WORK_DURATION_HELP, labels=labels),
            GaugeMetricFamily("workqueue_unfinished_work_seconds", UNFINISHED_WORK_HELP, labels=labels),
            GaugeMetricFamily("workqueue_longest_running_processor_seconds", LONGEST_RUNNING_HELP, labels=labels),
            CounterMetricFamily("workqueue_retries_total", RETRIES_HELP, labels=labels),
        )


COLLECTOR = WorkQueueCollector()
REGISTRY.register(COLLECTOR)
