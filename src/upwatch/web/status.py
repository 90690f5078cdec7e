"""Status pages (SPEC §10): ``/status/<slug>``, HTML that needs no JavaScript, and
``/status/<slug>.json``, the same data. Anyone may load a public page, so each is
rendered at most once per CACHE_TTL_S in each process (web/cache.py) and may be kept as
long by browsers and proxies. A private page is shown only to a logged-in member of its
team (the session cookie), rendered for each request and never kept by anyone (neither
that cache nor a shared one); to everyone else it is the 404 of a page that does not
exist."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import gzip
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from upwatch.api.deps import Services
from upwatch.domain import rfc3339
from upwatch.statuspages import OVERALL_TEXT, SLUG, Bar, Day, MonitorView, PageView
from upwatch.web import session
from upwatch.web.cache import Cache
from upwatch.web.headers import SECURITY_HEADERS
from upwatch.web.pages import PRIVATE
from upwatch.web.render import render

CACHE_TTL_S = 5.0
# Browsers and proxies may keep a page as long as this process does.
CACHE_CONTROL = f"public, max-age={int(CACHE_TTL_S)}"

router = APIRouter(include_in_schema=False)


def install_cache(app: FastAPI) -> None:
    app.state.status_cache = Cache[Found](CACHE_TTL_S)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A page as sent: as it is, and gzipped once (90 bars a monitor compress ~20x)."""

    body: bytes
    gzipped: bytes

    @classmethod
    def of(cls, body: bytes) -> "Rendered":
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0))


@dataclass(frozen=True, slots=True)
class Private:
    """A private page as the cache keeps it: whose it is, never what it shows."""

    team_id: int


Found = Rendered | Private | None  # None: no such page


@router.get("/status/{slug}.json")
async def status_json(slug: str, request: Request) -> Response:
    found = await _shown(request, slug, "json")
    if found is None:
        error = {"error": {"code": "NOT_FOUND", "message": "Status page not found"}}
        return _not_found(orjson.dumps(error), "application/json")
    return _respond(request, *found, "application/json")


@router.get("/status/{slug}")
async def status_html(slug: str, request: Request) -> Response:
    found = await _shown(request, slug, "html")
    if found is None:
        page = render("not_found.html", what="status page").encode()
        return _not_found(page, "text/html; charset=utf-8")
    return _respond(request, *found, "text/html; charset=utf-8")


async def _shown(request: Request, slug: str, form: str) -> tuple[Rendered, str] | None:
    """The page for this visitor and the Cache-Control it goes with; None: a 404."""
    found = await _cached(request, slug, form)
    if isinstance(found, Rendered):
        return found, CACHE_CONTROL
    if isinstance(found, Private):
        mine = await _members_copy(request, slug, found, form)
        return None if mine is None else (mine, PRIVATE)
    return None


async def _members_copy(
    request: Request, slug: str, private: Private, form: str
) -> Rendered | None:
    """A private page rendered for a logged-in member of its team, else None. The page
    is read again, not taken from the cache: it may have moved or gone meanwhile."""
    who = await session.visitor(request)
    if who is None or who.user.team_id != private.team_id:
        return None
    s: Services = request.app.state.services
    page = await s.store.status_pages.by_slug(slug)
    if page is None or page.team_id != who.user.team_id:
        return None
    return _rendered(await s.store.status_views.view(page, now=s.clock.now_ms()), form)


def _respond(request: Request, found: Rendered, cache_control: str, media_type: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=media_type, headers=headers)
    return Response(found.body, media_type=media_type, headers=headers)


def _not_found(body: bytes, media_type: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return Response(body, status_code=404, media_type=media_type, headers=headers)


async def _cached(request: Request, slug: str, form: str) -> Found:
    """What the shared cache knows of ``slug``: a public page's render, whose private
    page it is, or that there is none."""
    if not SLUG.match(slug):
        return None
    cache: Cache[Found] = request.app.state.status_cache
    s: Services = request.app.state.services

    async def make() -> Found:
        page = await s.store.status_pages.by_slug(slug)
        if page is None:
            return None
        if not page.is_public:
            return Private(page.team_id)
        return _rendered(await s.store.status_views.view(page, now=s.clock.now_ms()), form)

    return await cache.get(f"{form}:{slug}", make)


def _rendered(view: PageView, form: str) -> Rendered:
    if form == "json":
        return Rendered.of(orjson.dumps(page_json(view)))
    return Rendered.of(html(view).encode())


def html(view: PageView) -> str:
    """The page, rendered."""
    return render(
        "status.html", view=view, text=OVERALL_TEXT, day=_day, label=_label, summary=_summary
    )


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def _label(d: Day) -> str:
    """A bar's tooltip."""
    if d.bar is Bar.NO_DATA:
        return f"{_day(d.start)}: no data"
    minutes = math.ceil(d.down_ms / 60_000)
    return f"{_day(d.start)}: {minutes} min down" if minutes else f"{_day(d.start)}: no downtime"


def _summary(m: MonitorView) -> str:
    """What the bars say, for a screen reader (the bars themselves are a picture)."""
    down = [d for d in m.days if d.down_ms > 0]
    text = f"Last {len(m.days)} days: "
    if not down:
        return text + "no downtime"
    worst = max(down, key=lambda d: d.down_ms)
    return text + (
        f"{len(down)} with downtime, the most {math.ceil(worst.down_ms / 60_000)} min "
        f"on {_day(worst.start)}"
    )


def page_json(view: PageView) -> dict[str, Any]:
    """What the page shows, as data. Hosts, ports and error texts only when the page's
    ``showTargets`` is true."""
    targets = view.page.show_targets
    monitors = []
    for m in view.monitors:
        shown: dict[str, Any] = {"name": m.name, "state": m.shown.value}
        if targets:
            shown |= {"host": m.host, "port": m.port}
        shown["availabilityPercent"] = None if m.availability is None else round(m.availability, 4)
        shown["days"] = [
            {"date": _day(d.start), "bar": d.bar.value, "downMinutes": round(d.down_ms / 60_000, 1)}
            for d in m.days
        ]
        monitors.append(shown)
    incidents = []
    for i in view.incidents:
        item: dict[str, Any] = {
            "monitor": i.monitor_name,
            "startedAt": rfc3339(i.started_at),
            "cause": i.cause_status,
        }
        if targets and i.cause_error is not None:
            item["error"] = i.cause_error
        incidents.append(item)
    return {
        "name": view.page.name,
        "slug": view.page.slug,
        "overall": {"state": view.overall.value, "text": OVERALL_TEXT[view.overall]},
        "monitors": monitors,
        "incidents": incidents,
        "maintenance": [
            {
                "name": w.name,
                "startsAt": rfc3339(w.starts_at),
                "endsAt": rfc3339(w.ends_at),
                "active": w.active,
            }
            for w in view.maintenance
        ],
        "generatedAt": rfc3339(view.generated_at),
    }
