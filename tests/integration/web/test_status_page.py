"""The public status page (SPEC §10), on both databases, with an injected clock: the
HTML needs no JavaScript and shows states, 90 daily bars coloured by downtime,
availability, incidents and maintenance; the JSON has the same; private and unknown
pages are 404, but a private page is shown to its own team's logged-in members (never
cached); targets only with showTargets; everything escaped; public pages cached."""

import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.support.api import VALID, Api
from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in
from upwatch import web
from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.domain import DueCheck, Observation, Outcome, Status
from upwatch.maintenance import Once
from upwatch.scheduler.planning import plan
from upwatch.store import Store
from upwatch.users import Role

M, H, D = 60_000, 3_600_000, 86_400_000
T0 = 1_771_027_200_000  # 2026-02-14T00:00:00Z
NOW = T0 + 60 * D + 12 * H  # 2026-04-15T12:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def site(store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    keys = {"rw": await make_key(store, "acme"), "other": await make_key(store, "beta")}
    app = create_app(Settings(), store, clock=clock)
    web.install(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        api = Api(client, store, keys)
        api.app = app  # type: ignore[attr-defined]
        yield api


async def checks_of(store: Store) -> dict[str, DueCheck]:
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    return {p.check.monitor_id: p.check for p in plans}


async def record(store: Store, check: DueCheck, results: list[tuple[int, Status]]) -> None:
    for at, status in results:
        outcome = (
            Outcome(status, response_time_ms=5)
            if status is Status.UP
            else Outcome(status, error="Connection refused")
        )
        await store.results.save([Observation(check, outcome, at)])


async def history(site: Api, clock: FakeClock) -> tuple[dict[str, Any], dict[str, Any]]:
    """Created at T0. "db" was down 10 min on day 3 (1-20: yellow), 30 min on day 5
    (orange), 2 h on day 7 (red), and is down now; "web" was always up."""
    db = await site.create({**VALID, "name": "db", "confirmationChecks": 1})
    www = await site.create({**VALID, "name": "web", "host": "www.example.com", "port": 443})
    events = [(T0, Status.UP)]
    for day, minutes in ((3, 10), (5, 30), (7, 120)):
        start = T0 + day * D + 6 * H
        events += [(start, Status.DOWN), (start + minutes * M, Status.UP)]
    events += [(NOW - 5 * M, Status.DOWN)]
    checks = await checks_of(site.store)
    await record(site.store, checks[db["id"]], events)
    await record(site.store, checks[www["id"]], [(T0, Status.UP), (NOW - M, Status.UP)])
    clock.set(NOW)
    return db, www


async def make_page(site: Api, body: dict[str, Any]) -> None:
    r = await site.call("POST", "/v1/status-pages", json={"name": "Acme status", **body})
    assert r.status_code == 201, r.text


async def test_the_json_has_states_daily_bars_availability_and_incidents(
    site: Api, clock: FakeClock
) -> None:
    db, www = await history(site, clock)
    await make_page(site, {"slug": "acme", "monitorIds": [db["id"], www["id"]]})
    r = await site.client.get("/status/acme.json")
    assert r.status_code == 200
    body = r.json()
    assert body["overall"] == {"state": "partial-outage", "text": "Partial outage"}
    first, second = body["monitors"]
    assert (first["name"], first["state"], second["state"]) == ("db", "down", "up")
    assert "host" not in first
    assert "port" not in first
    days = first["days"]
    assert len(days) == 90
    assert days[-1]["date"] == "2026-04-15"
    by_date = {d["date"]: d for d in days}
    assert by_date["2026-02-17"]["bar"] == "minor"
    assert by_date["2026-02-19"]["bar"] == "major"
    assert by_date["2026-02-21"]["bar"] == "outage"
    assert by_date["2026-02-21"]["downMinutes"] == 120
    assert by_date["2026-02-20"]["bar"] == "up"
    assert by_date["2026-02-13"]["bar"] == "no-data"  # before the monitor existed
    assert second["availabilityPercent"] == 100
    assert 99 < first["availabilityPercent"] < 100
    [incident] = body["incidents"]
    assert (incident["monitor"], incident["cause"]) == ("db", "down")
    assert "error" not in incident


async def test_the_html_works_without_javascript(site: Api, clock: FakeClock) -> None:
    db, www = await history(site, clock)
    await make_page(site, {"slug": "acme", "monitorIds": [db["id"], www["id"]]})
    r = await site.client.get("/status/acme")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<script" not in html  # nothing to run
    assert "Partial outage" in html
    assert len(re.findall(r'class="bar bar-', html)) == 2 * 90 + 5  # two monitors, the legend
    assert 'class="bar bar-outage" title="2026-02-21: 120 min down"' in html
    assert "www.example.com" not in html
    assert "Connection refused" not in html
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    css = re.search(r'href="(/static/upwatch\.[0-9a-f]+\.css)"', html)
    assert css is not None
    asset = await site.client.get(css.group(1))
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]


async def test_targets_and_errors_show_only_when_asked(site: Api, clock: FakeClock) -> None:
    db, www = await history(site, clock)
    await make_page(
        site, {"slug": "acme", "monitorIds": [db["id"], www["id"]], "showTargets": True}
    )
    body = (await site.client.get("/status/acme.json")).json()
    assert (body["monitors"][1]["host"], body["monitors"][1]["port"]) == ("www.example.com", 443)
    assert body["incidents"][0]["error"] == "Connection refused"
    assert "www.example.com:443" in (await site.client.get("/status/acme")).text


async def test_names_are_escaped(site: Api, clock: FakeClock) -> None:
    m = await site.create({**VALID, "name": "<script>alert(1)</script>"})
    clock.set(NOW)
    await make_page(site, {"name": "<b>bold</b>", "slug": "acme", "monitorIds": [m["id"]]})
    html = (await site.client.get("/status/acme")).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


async def test_private_unknown_and_malformed_pages_are_404(site: Api, clock: FakeClock) -> None:
    m = await site.create()
    await make_page(site, {"slug": "secret", "monitorIds": [m["id"]], "isPublic": False})
    for path in ("/status/secret", "/status/secret.json", "/status/nope", "/status/NOPE%00"):
        r = await site.client.get(path)
        assert r.status_code == 404, path
    assert "text/html" in (await site.client.get("/status/secret")).headers["content-type"]
    assert (await site.client.get("/status/secret.json")).json()["error"]["code"] == "NOT_FOUND"


async def test_maintenance_now_and_soon_is_announced(site: Api, clock: FakeClock) -> None:
    m = await site.create()
    acme = await team_id(site.store)
    for name, start in (("upgrade", NOW - H), ("move", NOW + 2 * D), ("far", NOW + 30 * D)):
        await site.store.windows.create(
            acme, name=name, monitor_ids=[m["id"]], schedule=Once(start, start + 2 * H), at=T0
        )
    clock.set(NOW)
    await make_page(site, {"slug": "acme", "monitorIds": [m["id"]]})
    body = (await site.client.get("/status/acme.json")).json()
    assert [(w["name"], w["active"]) for w in body["maintenance"]] == [
        ("upgrade", True),
        ("move", False),
    ]
    assert body["monitors"][0]["state"] == "maintenance"
    assert body["overall"]["state"] == "maintenance"
    # The page runs no script: its times are written for people, to the minute, in UTC.
    html = (await site.client.get("/status/acme")).text
    assert '<time datetime="2026-04-17T12:00:00.000Z">17 Apr 2026 12:00 UTC</time>' in html
    assert ".000Z</time>" not in html


async def test_a_spike_of_requests_renders_the_page_once(site: Api, clock: FakeClock) -> None:
    m = await site.create()
    clock.set(NOW)
    await make_page(site, {"slug": "acme", "monitorIds": [m["id"]]})
    cache = site.app.state.status_cache  # type: ignore[attr-defined]
    before = cache.renders
    import asyncio

    answers = await asyncio.gather(*(site.client.get("/status/acme") for _ in range(50)))
    assert {a.status_code for a in answers} == {200}
    assert cache.renders - before == 1
    assert answers[0].headers["cache-control"] == "public, max-age=5"


async def test_a_change_through_the_api_shows_on_the_public_page_at_once(
    site: Api, clock: FakeClock
) -> None:
    m = await site.create()
    clock.set(NOW)
    assert (await site.client.get("/status/acme")).status_code == 404  # cached as a 404
    await make_page(site, {"slug": "acme", "monitorIds": [m["id"]]})
    assert "Acme status" in (await site.client.get("/status/acme")).text  # cached now
    page_id = (await site.call("GET", "/v1/status-pages")).json()["data"][0]["id"]
    r = await site.call("PUT", f"/v1/status-pages/{page_id}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert "Renamed" in (await site.client.get("/status/acme")).text
    r = await site.call("PUT", f"/v1/status-pages/{page_id}", json={"isPublic": False})
    assert r.status_code == 200, r.text
    assert (await site.client.get("/status/acme")).status_code == 404
    assert (await site.call("DELETE", f"/v1/status-pages/{page_id}")).status_code == 204
    assert (await site.client.get("/status/acme.json")).status_code == 404


async def test_a_private_page_is_shown_to_its_team_and_to_nobody_else(
    site: Api, clock: FakeClock
) -> None:
    m = await site.create({**VALID, "name": "db"})
    clock.set(NOW)
    await make_page(site, {"slug": "secret", "monitorIds": [m["id"]], "isPublic": False})
    paths = ("/status/secret", "/status/secret.json")
    for path in paths:  # a stranger
        r = await site.client.get(path)
        assert (r.status_code, r.headers["cache-control"]) == (404, "no-store"), path
    await logged_in(site.client, site.store, "eve@example.com", team="beta")
    for path in paths:  # another team's member: the same 404 as a page that is not there
        r = await site.client.get(path)
        assert (r.status_code, r.headers["cache-control"]) == (404, "no-store"), path
    assert (await site.client.get("/status/secret")).text == (
        await site.client.get("/status/nope")
    ).text
    site.client.cookies.clear()
    await logged_in(site.client, site.store, "vic@example.com", Role.VIEWER)
    html = await site.client.get("/status/secret")
    body = await site.client.get("/status/secret.json", headers={"accept-encoding": "gzip"})
    for r in (html, body):
        assert r.status_code == 200
        assert r.headers["cache-control"] == "private, no-store"
    assert "Acme status" in html.text
    assert "<script" not in html.text
    assert (body.headers["content-encoding"], body.json()["name"]) == ("gzip", "Acme status")
    assert [x["name"] for x in body.json()["monitors"]] == ["db"]
    # Rendered for each request: a change shows at once, and a stranger still gets 404.
    pages = (await site.call("GET", "/v1/status-pages")).json()["data"]
    r = await site.call("PUT", f"/v1/status-pages/{pages[0]['id']}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert (await site.client.get("/status/secret.json")).json()["name"] == "Renamed"
    site.client.cookies.clear()
    for path in paths:
        r = await site.client.get(path)
        assert (r.status_code, r.headers["cache-control"]) == (404, "no-store"), path
        assert "Renamed" not in r.text


async def test_a_member_gets_a_public_page_from_the_shared_cache(
    site: Api, clock: FakeClock
) -> None:
    m = await site.create()
    clock.set(NOW)
    await make_page(site, {"slug": "acme", "monitorIds": [m["id"]]})
    await logged_in(site.client, site.store, "ada@example.com")
    cache = site.app.state.status_cache  # type: ignore[attr-defined]
    before = cache.renders
    for _ in range(3):
        r = await site.client.get("/status/acme")
        assert (r.status_code, r.headers["cache-control"]) == (200, "public, max-age=5")
    assert cache.renders - before == 1
