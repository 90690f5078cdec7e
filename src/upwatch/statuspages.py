"""Status pages (SPEC §10): what one is, and the pure rules of what it shows.

A status page lists some of a team's monitors under a public slug: each one's state
now, 90 daily bars coloured by how long it was down that day, its 90-day availability,
open incidents and maintenance, and the page's overall state."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from upwatch.domain import MonitorState, random_base62

STATUS_PAGE_ID_PREFIX = "sp_"
SLUG = re.compile(r"^[a-z0-9-]{3,64}$")
NAME_MAX = 255
MONITORS_MAX = 100
DAYS = 90
MINUTE_MS = 60_000


def new_status_page_id() -> str:
    return STATUS_PAGE_ID_PREFIX + random_base62(22)


@dataclass(frozen=True, slots=True)
class StatusPage:
    id: str
    team_id: int
    name: str
    slug: str
    monitor_ids: tuple[str, ...]  # in the order shown
    is_public: bool
    show_targets: bool  # hosts, ports and error texts are shown only when true
    created_at: int
    updated_at: int


class Bar(enum.StrEnum):
    """A day's colour: no downtime green; then by minutes down 1-20 yellow, 20-60
    orange, over 60 red; grey when nothing was monitored that day."""

    NO_DATA = "no-data"
    UP = "up"
    MINOR = "minor"
    MAJOR = "major"
    OUTAGE = "outage"


def bar(down_ms: int, monitored_ms: int) -> Bar:
    if monitored_ms <= 0:
        return Bar.NO_DATA
    if down_ms <= 0:
        return Bar.UP
    if down_ms <= 20 * MINUTE_MS:
        return Bar.MINOR
    if down_ms <= 60 * MINUTE_MS:
        return Bar.MAJOR
    return Bar.OUTAGE


class Shown(enum.StrEnum):
    """A monitor's state as a status page shows it."""

    UP = "up"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"
    PAUSED = "paused"


def shown_state(state: MonitorState, *, in_maintenance: bool, is_enabled: bool) -> Shown:
    if not is_enabled:
        return Shown.PAUSED
    if in_maintenance:
        return Shown.MAINTENANCE
    return {MonitorState.UP: Shown.UP, MonitorState.DOWN: Shown.DOWN}.get(state, Shown.UNKNOWN)


class Overall(enum.StrEnum):
    OPERATIONAL = "operational"
    PARTIAL_OUTAGE = "partial-outage"
    MAJOR_OUTAGE = "major-outage"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


OVERALL_TEXT = {
    Overall.OPERATIONAL: "All systems operational",
    Overall.PARTIAL_OUTAGE: "Partial outage",
    Overall.MAJOR_OUTAGE: "Major outage",
    Overall.MAINTENANCE: "Under maintenance",
    Overall.UNKNOWN: "No data yet",
}


def overall(states: list[Shown]) -> Overall:
    """Every monitor down: a major outage; some: a partial one; else maintenance if any
    is in it; else operational once any has been seen up."""
    watched = [s for s in states if s is not Shown.PAUSED]
    down = sum(s is Shown.DOWN for s in watched)
    if watched and down == len(watched):
        return Overall.MAJOR_OUTAGE
    if down:
        return Overall.PARTIAL_OUTAGE
    if any(s is Shown.MAINTENANCE for s in watched):
        return Overall.MAINTENANCE
    if any(s is Shown.UP for s in watched):
        return Overall.OPERATIONAL
    return Overall.UNKNOWN


# -- what a page shows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Day:
    start: int  # UTC midnight, ms
    bar: Bar
    down_ms: int


@dataclass(frozen=True, slots=True)
class MonitorView:
    id: str
    name: str
    host: str
    port: int
    shown: Shown
    days: tuple[Day, ...]  # oldest first, DAYS of them, today last
    availability: float | None  # over the DAYS days


@dataclass(frozen=True, slots=True)
class IncidentView:
    monitor_name: str
    started_at: int
    cause_status: str
    cause_error: str | None


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    name: str
    starts_at: int
    ends_at: int
    active: bool


@dataclass(frozen=True, slots=True)
class PageView:
    page: StatusPage
    overall: Overall
    monitors: tuple[MonitorView, ...]
    incidents: tuple[IncidentView, ...]  # open ones, newest first
    maintenance: tuple[MaintenanceView, ...]  # now and in the next days, soonest first
    generated_at: int
