"""Prometheus metrics. One registry per process, made by ``service`` and passed down
the way Settings is: each part registers what it counts on the registry it is given,
so nothing counts into a global and tests read their own. The API serves it at
/metrics (beside the team's monitors, api/routes/metrics.py), a worker on
``--metrics-port``; SPEC §9 names the metrics."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.process_collector import ProcessCollector

from upwatch.domain import Status

# Lateness of a check: when it started against when it was due.
LATENESS_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Time an API request takes, from its first byte in the app to its last byte out.
REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# What became of one attempt at a notification.
DELIVERED, RETRYING, FAILED = "delivered", "retrying", "failed"  # failed: no retry left
NOTIFICATION_OUTCOMES = (DELIVERED, RETRYING, FAILED)


def new_registry() -> CollectorRegistry:
    """A process's registry, with the usual ``process_*`` metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class CheckerMetrics:
    """What a checker counts (its sender's notifications too)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = NotificationMetrics(registry)
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


class NotificationMetrics:
    """What a sender counts: attempts, by channel type and outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._sent = Counter(
            "upwatch_notification_attempts",
            "Notification attempts, by channel type and outcome "
            "(delivered; failed and retrying; failed for good).",
            ["channel_type", "outcome"],
            registry=registry,
        )

    def expect(self, channel_types: Iterable[str]) -> None:
        """Show these types' series at 0 before their first attempt (so that rate() sees
        the first one)."""
        for channel_type in channel_types:
            for outcome in NOTIFICATION_OUTCOMES:
                self._sent.labels(channel_type=channel_type, outcome=outcome)

    def attempted(self, channel_type: str, *, delivered: bool, retrying: bool) -> None:
        outcome = DELIVERED if delivered else RETRYING if retrying else FAILED
        self._sent.labels(channel_type=channel_type, outcome=outcome).inc()


class HttpMetrics:
    """What the API counts: requests by route template, method and status, and their
    duration (api/httpmetrics.py measures them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "upwatch_http_requests",
            "API requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "upwatch_http_request_duration_seconds",
            "Time to answer an API request, by route template and method.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )
