"""HTML from Jinja2 templates, escaped everywhere: a monitor named ``<script>`` shows as
text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import jinja2

from upwatch.domain import rfc3339
from upwatch.maintenance import Once, Recurring, Window
from upwatch.web.assets import url


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Item = TypeVar("_Item", bound=_HasId)


def chosen_first(items: Sequence[_Item], chosen: Sequence[str]) -> list[_Item]:
    """A form's checkboxes: the chosen items first, in the chosen order (the order a
    form sends them back in, so saving keeps an order the API set), then the others."""
    by_id = {i.id: i for i in items}
    taken = set(chosen)
    first = [by_id[i] for i in dict.fromkeys(chosen) if i in by_id]
    return first + [i for i in items if i.id not in taken]


_DAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}
_NTH = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
_UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month"}


def utc(ms: int) -> str:
    """A time for a page that runs no script (the public status page): "6 Dec 2026
    02:00 UTC", to the minute."""
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{when.day} {when:%b %Y %H:%M} UTC"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _day(token: str) -> str | None:
    """``SU`` is "Sunday", ``1SU`` "the first Sunday", ``-1FR`` "the last Friday"."""
    name = _DAYS.get(token[-2:])
    if name is None:
        return None
    if len(token) == 2:
        return name
    try:
        nth = _NTH.get(int(token[:-2]))
    except ValueError:
        return None
    return None if nth is None else f"the {nth} {name}"


def _until(value: str) -> str:
    day = value[:8]
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}" if day.isdigit() and len(day) == 8 else value


def describe_rule(rrule: str) -> str:
    """A recurrence rule (RFC 5545, the parts upwatch allows) in words: "every Sunday",
    "every 2 weeks on Monday and Friday", "every month on day 1, 6 times". A rule this
    cannot say in words is shown as it is."""
    parts = dict(p.partition("=")[::2] for p in rrule.split(";"))
    unit = _UNITS.get(parts.get("FREQ", ""))
    interval = parts.get("INTERVAL", "1")
    if unit is None or not interval.isdigit():
        return rrule
    days = [_day(d) for d in parts["BYDAY"].split(",")] if "BYDAY" in parts else []
    if None in days:
        return rrule
    named = [d for d in days if d is not None]
    every = f"every {unit}" if interval == "1" else f"every {interval} {unit}s"
    if unit == "week" and named and interval == "1":
        words = f"every {_and(named)}"
    elif named:
        words = f"{every} on {_and(named)}"
    else:
        words = every
    if "BYMONTHDAY" in parts:
        monthdays = parts["BYMONTHDAY"].split(",")
        words += f" on day{'s' if len(monthdays) > 1 else ''} {_and(monthdays)}"
    if "COUNT" in parts:
        words += f", {parts['COUNT']} times"
    if "UNTIL" in parts:
        words += f", until {_until(parts['UNTIL'])}"
    return words


def describe_window(w: Window) -> str:
    """When a window is, in words (a one-off's times are the page's to show)."""
    if isinstance(w.schedule, Once):
        return "once"
    return describe_recurring(w.schedule)


def describe_recurring(r: Recurring) -> str:
    return f"{describe_rule(r.rrule)} at {r.start_time} ({r.timezone}) for {r.duration_minutes} min"


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("upwatch.web", "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["rfc3339"] = rfc3339
ENV.filters["utc"] = utc
ENV.globals["static"] = url
ENV.globals["describe_window"] = describe_window
ENV.globals["describe_recurring"] = describe_recurring


def render(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**context)
