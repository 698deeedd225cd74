"""The webhook server's Prometheus metrics, named and labelled like controller-runtime's webhook metrics.

Registered into the runtime's `REGISTRY`, so they are scraped with everything else. `webhook` is the URL path
(`/convert`, `/default`, `/validate`); `code` the HTTP status answered. Latency buckets are the Prometheus defaults,
as in controller-runtime up to v0.22 (the generation whose workqueue rate limiter the runtime also imitates).

The per-request series (requests by code, latency, in flight) are kept as plain attributes of one `EndpointStats`
per path and turned into metric families at scrape time, like the runtime's workqueue metrics: on a request that
takes tens of microseconds, prometheus_client's locked children would be a noticeable share.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kpack_core.runtime.metrics import REGISTRY

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The `le` labels as Go's exposition writes them ("1", not prometheus_client's "1.0").
_BUCKET_LABELS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")

PREINITIALISED_CODES = (200, 500)
"""controller-runtime creates these series at zero for every webhook path, so `rate()` works from the start."""

REQUESTS_HELP = "Total number of admission requests by HTTP status code."
LATENCY_HELP = "Histogram of the latency of processing admission requests"
IN_FLIGHT_HELP = "Current number of admission requests being served."


class EndpointStats:
    """The counts of one webhook path. `requests` maps an HTTP status to a count; `latency_counts[i]` counts the
    observations in bucket i (not cumulative; the last one is +Inf)."""

    __slots__ = ("in_flight", "latency_counts", "latency_sum", "path", "requests")

    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: dict[int, int] = dict.fromkeys(PREINITIALISED_CODES, 0)
        self.in_flight = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe(self, status: int, seconds: float) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


class _WebhookCollector(Collector):
    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointStats] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("controller_runtime_webhook_requests", REQUESTS_HELP, labels=["webhook", "code"])
        latency = HistogramMetricFamily("controller_runtime_webhook_latency_seconds", LATENCY_HELP, labels=["webhook"])
        in_flight = GaugeMetricFamily(
            "controller_runtime_webhook_requests_in_flight", IN_FLIGHT_HELP, labels=["webhook"]
        )
        for path, stats in list(self.endpoints.items()):
            for code, count in sorted(stats.requests.items()):
                requests.add_metric([path, str(code)], count)
            cumulative, buckets = 0, []
            for label, count in zip(_BUCKET_LABELS, stats.latency_counts, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([path], buckets, stats.latency_sum)
            in_flight.add_metric([path], stats.in_flight)
        yield requests
        yield latency
        yield in_flight


_COLLECTOR = _WebhookCollector()
REGISTRY.register(_COLLECTOR)


def endpoint_stats(path: str) -> EndpointStats:
    """The stats of a webhook path, created (and exported, at zero) on first use; the same object after that."""
    stats = _COLLECTOR.endpoints.get(path)
    if stats is None:
        stats = _COLLECTOR.endpoints[path] = EndpointStats(path)
    return stats


WEBHOOK_PANICS = Counter(
    "controller_runtime_webhook_panics_total",
    "Total number of webhook panics",
    registry=REGISTRY,
)
CONVERSION_PANICS = Counter(
    "controller_runtime_conversion_webhook_panics_total",
    "Total number of conversion webhook panics",
    registry=REGISTRY,
)
CERTIFICATE_READS = Counter(
    "certwatcher_read_certificate_total",
    "Total number of certificate reads",
    registry=REGISTRY,
)
CERTIFICATE_READ_ERRORS = Counter(
    "certwatcher_read_certificate_errors_total",
    "Total number of certificate read errors",
    registry=REGISTRY,
)
