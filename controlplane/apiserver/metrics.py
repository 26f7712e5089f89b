"""Prometheus metrics of the apiserver (``GET /metrics``), named as Kubernetes names them
so existing dashboards and alerts apply."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """One registry per server, so several servers (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total",
            "Requests by verb, resource, subresource and HTTP code.",
            ["verb", "resource", "subresource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency (for watches: until the stream started).",
            ["verb", "resource", "subresource"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Requests being served now (watches excluded).",
            registry=self.registry,
        )
        self.watchers = Gauge(
            "apiserver_registered_watchers",
            "Open watch streams by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "apiserver_dropped_requests_total",
            "Requests refused with 429 because too many were in flight.",
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}

    def served(self, verb: str, resource: str, subresource: str, code: str, seconds: float) -> None:
        """Count one request and its latency. The labelled series are kept in a dict of
        our own: prometheus_client's ``labels()`` takes a lock and validates the label
        values on every call, a measurable share of a small request."""
        key = (verb, resource, subresource, code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(verb, resource, subresource, code),
                self.latency.labels(verb, resource, subresource),
            )
        count, histogram = series
        count.inc()
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
