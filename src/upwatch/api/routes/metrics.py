"""/metrics (SPEC §9): Prometheus' text exposition of the key's team's monitors, read
from the database at each scrape, and of this process's own metrics (checks, lateness,
notifications, HTTP requests, ``process_*``: upwatch.metrics). Scope ``metrics:read``.

Left out of /openapi.json: Prometheus reads it, not API clients, and its body is the
exposition format, not JSON."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from upwatch.api.deps import Deps, require
from upwatch.domain import SCOPE_METRICS_READ, MonitorState, Principal, Status
from upwatch.store.gauges import MonitorGauge

MetricsReader = Annotated[Principal, Depends(require(SCOPE_METRICS_READ))]

LABELS = ["monitor_id", "monitor_name", "host", "port"]
# upwatch_monitor_state's values; maintenance wins over the state it hides.
STATE_VALUES = {MonitorState.UNKNOWN: 0, MonitorState.UP: 1, MonitorState.DOWN: 2}
MAINTENANCE_VALUE = 3

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(who: MetricsReader, s: Deps) -> Response:
    gauges = await s.store.gauges.of_team(who.team_id, at=s.clock.now_ms())
    # A team of 1,000 monitors takes ~35 ms of CPU to render: on a thread, the loop
    # keeps answering other requests in between (at each GIL switch) instead of after.
    body = await asyncio.to_thread(render, gauges, s.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def render(gauges: Sequence[MonitorGauge], registry: CollectorRegistry) -> bytes:
    """The exposition: the monitors' families, then the process's."""
    return generate_latest(Exposition([*monitor_families(gauges), *registry.collect()]))


class Exposition(Collector):
    """Metric families already collected, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def monitor_families(gauges: Sequence[MonitorGauge]) -> list[Metric]:
    """One family per figure, one sample per monitor (where it has the figure)."""
    up = _family("upwatch_monitor_up", "1 when the monitor's last check was up, else 0.")
    state = _family(
        "upwatch_monitor_state", "The monitor's state: 0 unknown, 1 up, 2 down, 3 maintenance."
    )
    response = _family(
        "upwatch_monitor_response_time_seconds", "Response time of the monitor's last check."
    )
    checked = _family(
        "upwatch_monitor_last_check_timestamp_seconds", "When the monitor was last checked."
    )
    incident = _family(
        "upwatch_monitor_incident_open", "1 while the monitor has an open incident, else 0."
    )
    for g in gauges:
        labels = [g.id, g.name, g.host, str(g.port)]
        state.add_metric(labels, MAINTENANCE_VALUE if g.in_maintenance else STATE_VALUES[g.state])
        incident.add_metric(labels, int(g.incident_open))
        if g.last_status is not None:
            up.add_metric(labels, int(g.last_status is Status.UP))
        if g.last_checked_at is not None:
            checked.add_metric(labels, g.last_checked_at / 1000)
        if g.last_response_time_ms is not None:
            response.add_metric(labels, g.last_response_time_ms / 1000)
    return [up, state, response, checked, incident]


def _family(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=LABELS)
