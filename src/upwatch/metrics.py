"""Prometheus metrics. One registry per process, made by ``service`` and passed down
the way Settings is: each part registers what it counts on the registry it is given,
so nothing counts into a global and tests read their own. (Exposed at /metrics by
issue 9; SPEC §9 names the metrics.)"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

from upwatch.domain import Status

# Lateness of a check: when it started against when it was due.
LATENESS_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def new_registry() -> CollectorRegistry:
    """A process's registry, with the usual ``process_*`` metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class CheckerMetrics:
    """What a checker counts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        checks = Counter("upwatch_checks", "Checks run, by outcome.", ["status"], registry=registry)
        self.checks = {s: checks.labels(status=s.value) for s in Status}  # bound once
        self.lateness = Histogram(
            "upwatch_check_lateness_seconds",
            "How late each check started, against its due time.",
            buckets=LATENESS_BUCKETS_S,
            registry=registry,
        )
        self.results_dropped = Counter(
            "upwatch_results_dropped",
            "Check results dropped because the buffer was full during a database outage.",
            registry=registry,
        )
