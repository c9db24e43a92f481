"""Prometheus metrics: request counts and latency per route, consolidation runs, edits committed and
rejected, and the drift guard's verdicts.

Request metrics are counted by a middleware under the route's template (`/v1/memories/{memory_id}`),
never the raw path, so ids do not explode the label space. Consolidation totals are read from the run
log at scrape time, so they survive restarts; drift verdicts are counted since start-up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.runtime import Runtime
from consolidation.drift.gate import DriftGate

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _MemoryCollector(Collector):
    """Reads the deployment's state when scraped."""

    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        rt = self._runtime()
        if rt is None:
            return
        if rt.consolidation is not None:
            totals = rt.consolidation.runs.totals()
            runs = CounterMetricFamily(
                "imprint_consolidation_runs", "Consolidation runs by status.", labels=["status"]
            )
            for status, n in sorted(totals["runs"].items()):
                runs.add_metric([status], n)
            yield runs
            edits = CounterMetricFamily(
                "imprint_edits", "Preferences committed to or rejected from the weights.", labels=["outcome"]
            )
            for outcome, n in totals["edits"].items():
                edits.add_metric([outcome], n)
            yield edits
        gate = rt.weights.gate if rt.weights is not None else None
        if isinstance(gate, DriftGate):
            checks = CounterMetricFamily(
                "imprint_drift_checks", "Drift-guard reviews since start-up.", labels=["result"]
            )
            checks.add_metric(["passed"], gate.passed)
            checks.add_metric(["failed"], gate.failed)
            yield checks
            if gate.last is not None:
                change = GaugeMetricFamily(
                    "imprint_drift_last_change", "Each check's change in the latest review.", labels=["check"]
                )
                for check in gate.last.checks:
                    if check.change is not None:
                        change.add_metric([check.name], float(check.change))
                yield change


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "imprint_http_requests", "HTTP requests.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "imprint_http_request_duration_seconds",
            "HTTP request latency (streamed responses: until the headers are sent).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_MemoryCollector(runtime))

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.latency.labels(request.method, template).observe(time.perf_counter() - start)
            self.requests.labels(request.method, template, str(status)).inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)
