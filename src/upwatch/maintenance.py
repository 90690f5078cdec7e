"""Maintenance windows (SPEC §8): when they are, as pure rules.

A window is once (``startsAt`` to ``endsAt``) or recurring: an RFC 5545 rule
(python-dateutil's ``rrule``) over the local dates from ``startsOn``, each occurrence
starting at ``startTime`` local wall time in ``timezone`` (zoneinfo, with ``tzdata``)
and lasting ``durationMinutes``. Wall time holds across daylight-saving changes: an
occurrence at 02:00 is at 02:00 in winter and in summer. A start that falls in the
hour skipped in spring moves to the first valid minute after it; one in the hour that
repeats in autumn takes the first of the two.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrulestr

from upwatch.domain import random_base62

WINDOW_ID_PREFIX = "mw_"
DURATION_MINUTES_MIN, DURATION_MINUTES_MAX = 1, 10_080
RRULE_PARTS = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"}
FREQUENCIES = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY}
_START_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# An occurrence is looked for at most this far ahead (a rule may never match again).
HORIZON_DAYS = 3 * 366
_GAP_SEARCH_MINUTES = 180  # daylight-saving gaps are at most a few hours


class ScheduleError(ValueError):
    """A schedule that cannot be: says which field and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def new_window_id() -> str:
    return WINDOW_ID_PREFIX + random_base62(22)


@dataclass(frozen=True, slots=True)
class Once:
    starts_at: int  # ms
    ends_at: int


@dataclass(frozen=True, slots=True)
class Recurring:
    rrule: str
    start_time: str  # "HH:MM", local wall time
    duration_minutes: int
    timezone: str  # IANA
    starts_on: str  # "YYYY-MM-DD", local date


Schedule = Once | Recurring


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    team_id: int
    name: str
    monitor_ids: tuple[str, ...]  # empty: every monitor of the team, present and future
    schedule: Schedule
    created_at: int
    updated_at: int

    def covers(self, monitor_id: str) -> bool:
        return not self.monitor_ids or monitor_id in self.monitor_ids


def check_recurring(r: Recurring) -> None:
    """Raise ScheduleError naming the field, or return."""
    try:
        ZoneInfo(r.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("schedule.timezone", "is not an IANA time zone") from None
    if not _START_TIME.match(r.start_time):
        raise ScheduleError("schedule.startTime", "must be HH:MM, 00:00 to 23:59")
    try:
        date.fromisoformat(r.starts_on)
    except ValueError:
        raise ScheduleError("schedule.startsOn", "must be a date, YYYY-MM-DD") from None
    if not DURATION_MINUTES_MIN <= r.duration_minutes <= DURATION_MINUTES_MAX:
        raise ScheduleError(
            "schedule.durationMinutes",
            f"must be from {DURATION_MINUTES_MIN} to {DURATION_MINUTES_MAX}",
        )
    parts = {}
    for item in r.rrule.split(";"):
        key, sep, value = item.partition("=")
        if not sep or not value or key not in RRULE_PARTS or key in parts:
            raise ScheduleError(
                "schedule.rrule", f"allowed parts are {', '.join(sorted(RRULE_PARTS))}, once each"
            )
        parts[key] = value
    if parts.get("FREQ") not in FREQUENCIES:
        raise ScheduleError("schedule.rrule", "FREQ must be DAILY, WEEKLY or MONTHLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ScheduleError("schedule.rrule", "COUNT and UNTIL cannot both be given")
    try:
        _rule(r)
    except (ValueError, TypeError) as exc:
        raise ScheduleError("schedule.rrule", f"is not a valid rule: {exc}") from None


def _rule(r: Recurring) -> Iterator[datetime]:
    """The rule's local dates (naive, at the start time), from ``startsOn``."""
    hours, minutes = (int(p) for p in r.start_time.split(":"))
    first = datetime.combine(date.fromisoformat(r.starts_on), time(hours, minutes))
    # UNTIL is a local date or date-time here (a trailing Z would need an aware start);
    # a date bounds inclusively, so its whole day counts.
    text = re.sub(r"(UNTIL=[0-9T]+)Z", r"\1", r.rrule)
    text = re.sub(r"UNTIL=(\d{8})(?![T\d])", r"UNTIL=\1T235959", text)
    return iter(rrulestr(text, dtstart=first, cache=False))


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time in ``zone`` as UTC: the first of a repeated one; for a skipped
    one, the first valid minute after it."""
    for step in range(_GAP_SEARCH_MINUTES + 1):
        candidate = local + timedelta(minutes=step)
        aware = candidate.replace(tzinfo=zone, fold=0)
        utc = aware.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == candidate:
            return utc
    return local.replace(tzinfo=zone).astimezone(UTC)  # unreachable for real zones


def occurrences(schedule: Schedule, *, until_ms: int) -> Iterator[tuple[int, int]]:
    """(start, end) in ms of each occurrence starting before ``until_ms``, in order."""
    if isinstance(schedule, Once):
        if schedule.starts_at < until_ms:
            yield schedule.starts_at, schedule.ends_at
        return
    zone = ZoneInfo(schedule.timezone)
    length = schedule.duration_minutes * 60_000
    for local in _rule(schedule):
        start = int(_to_utc(local, zone).timestamp() * 1000)
        if start >= until_ms:
            return
        yield start, start + length


DAY_MS = 86_400_000


@functools.lru_cache(maxsize=4096)
def _on_day(schedule: Schedule, day: int) -> tuple[tuple[int, int], ...]:
    """The occurrences overlapping UTC day ``day`` (days since the epoch). Cached: the
    checker asks for every failing result, the API for every monitor it shows."""
    start, end = day * DAY_MS, (day + 1) * DAY_MS
    return tuple(o for o in occurrences(schedule, until_ms=end) if o[1] > start)


def intervals(schedule: Schedule, *, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """The occurrences that overlap [start_ms, end_ms) (a span of days at most)."""
    found: set[tuple[int, int]] = set()
    for day in range(start_ms // DAY_MS, (end_ms - 1) // DAY_MS + 1):
        found.update(_on_day(schedule, day))
    return sorted(o for o in found if o[1] > start_ms and o[0] < end_ms)


def active(schedule: Schedule, at: int) -> bool:
    return bool(intervals(schedule, start_ms=at, end_ms=at + 1))


def next_window(schedule: Schedule, at: int) -> tuple[int, int] | None:
    """The occurrence in progress at ``at``, else the next one; None if there is none
    (within HORIZON_DAYS for a recurring window; a one-off window is known however far
    ahead it is)."""
    if isinstance(schedule, Once):
        return (schedule.starts_at, schedule.ends_at) if schedule.ends_at > at else None
    horizon = at + HORIZON_DAYS * 86_400_000
    for begin, finish in occurrences(schedule, until_ms=horizon):
        if finish > at:
            return begin, finish
    return None
