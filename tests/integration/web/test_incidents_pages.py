"""The incidents pages (SPEC §10), in process on both databases: open incidents first,
then resolved ones newest first, a page at a time with plain links; one incident's
timeline; another team's incident is 404; names are escaped; viewers see them too."""

import re
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest

from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.clock import FakeClock
from upwatch.domain import NewMonitor, Observation, Outcome, Status
from upwatch.scheduler.planning import plan
from upwatch.store import Store
from upwatch.users import Role

S, M, H = 1000, 60_000, 3_600_000
NOW = FakeClock().now_ms()  # 2026-02-14T12:00:00Z
T0 = NOW - 24 * H
D, U = Status.DOWN, Status.UP
INCIDENT_LINK = re.compile(r'href="/incidents/(tcpi_[A-Za-z0-9]+)"')


@pytest.fixture
async def app_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store, FakeClock(NOW)) as client:
        yield client


async def monitors(store: Store, team: str, *names: str) -> list[str]:
    """New monitors of ``team`` that open an incident on their first failed check."""
    made = [
        await store.monitors.create(
            await team_id(store, team),
            NewMonitor(name=n, host="db.example.com", port=5432, confirmation_checks=1),
            at=T0 - H,
        )
        for n in names
    ]
    return [m.id for m in made]


async def record(store: Store, results: dict[str, list[tuple[int, Status]]]) -> None:
    """Results of each monitor at the times given (every monitor's claimed once)."""
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    checks = {p.check.monitor_id: p.check for p in plans}
    for monitor_id, events in results.items():
        await store.results.save(
            [
                Observation(
                    checks[monitor_id],
                    Outcome(s, response_time_ms=5)
                    if s is U
                    else Outcome(s, error="Connection refused"),
                    at,
                )
                for at, s in events
            ]
        )


async def incident_ids(store: Store, team: str = "acme") -> list[str]:
    """The team's incidents, newest first, as the API lists them."""
    found, _ = await store.incidents.of_team(
        await team_id(store, team), is_open=None, limit=200, offset=0
    )
    return [i.id for i in found]


async def test_open_incidents_come_first_then_resolved_newest_first(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    await logged_in(app_client, store, "ada@example.com")
    db, web, odd = await monitors(store, "acme", "db", "web", "<script>alert(1)</script>")
    await record(
        store,
        {
            db: [(T0 + H, D), (T0 + H + 10 * M, U), (T0 + 5 * H, D)],  # resolved, then open
            web: [(T0 + 2 * H, D), (T0 + 3 * H, U)],
            odd: [(T0 + 4 * H, D), (T0 + 4 * H + 30 * S, U)],
        },
    )
    newest_first = await incident_ids(store)  # db's open, odd's, web's, db's first
    r = await app_client.get("/incidents")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-store"
    assert INCIDENT_LINK.findall(r.text) == newest_first  # the open one heads the page
    opened, resolved = r.text.split("<h2>Resolved")
    assert newest_first[0] in opened
    assert "<strong>open</strong>" in opened
    assert "Connection refused" in opened
    assert f'href="/monitors/{db}">db</a>' in opened
    assert "<strong>open</strong>" not in resolved
    for duration in ("10 min", "1 h", "30 s"):
        assert f'<td class="num">{duration}</td>' in resolved
    assert '<time datetime="2026-02-13T13:00:00.000Z">' in resolved  # db's first, started
    assert '<time datetime="2026-02-13T13:10:00.000Z">' in resolved  # and recovered
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "Older" not in r.text


async def test_resolved_incidents_come_a_page_at_a_time_with_plain_links(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    await logged_in(app_client, store, "ada@example.com")
    [db] = await monitors(store, "acme", "db")
    events = [(T0 + n * 10 * M + k * M, s) for n in range(60) for k, s in ((0, D), (1, U))]
    await record(store, {db: [*events, (NOW - M, D)]})
    newest_first = await incident_ids(store)
    first = await app_client.get("/incidents")
    assert INCIDENT_LINK.findall(first.text) == newest_first[:51]  # the open one, 50 more
    assert 'href="/incidents?offset=50"' in first.text
    assert "Newer" not in first.text
    assert "1-50 of 60" in first.text
    second = await app_client.get("/incidents?offset=50")
    assert second.status_code == 200
    assert INCIDENT_LINK.findall(second.text) == newest_first[51:]  # no open ones here
    assert "<h2>Open" not in second.text
    assert 'href="/incidents"' in second.text  # back to the newest
    assert "offset=100" not in second.text
    for odd in ("abc", "-1", "99999999999999999999"):
        r = await app_client.get(f"/incidents?offset={odd}")
        assert (r.status_code, INCIDENT_LINK.findall(r.text)) == (200, newest_first[:51]), odd
    past_the_end = await app_client.get("/incidents?offset=500")
    assert (past_the_end.status_code, INCIDENT_LINK.findall(past_the_end.text)) == (200, [])


async def test_an_incident_shows_its_timeline(app_client: httpx.AsyncClient, store: Store) -> None:
    await logged_in(app_client, store, "ada@example.com")
    db, odd = await monitors(store, "acme", "db", "<script>alert(1)</script>")
    await record(
        store,
        {
            db: [(T0 + H, D), (T0 + H + 10 * M, U)],
            odd: [(NOW - 90 * M, Status.TIMEOUT)],
        },
    )
    still_open, resolved = await incident_ids(store)
    r = await app_client.get(f"/incidents/{resolved}")
    assert r.status_code == 200
    assert f'href="/monitors/{db}">db</a>' in r.text
    assert "db.example.com:5432" in r.text
    assert "down: Connection refused" in r.text
    assert '<time datetime="2026-02-13T13:00:00.000Z">' in r.text
    assert '<time datetime="2026-02-13T13:10:00.000Z">' in r.text
    assert "Recovered" in r.text
    assert "10 min" in r.text
    r = await app_client.get(f"/incidents/{still_open}")
    assert r.status_code == 200
    assert "Still open" in r.text
    assert "1 h 30 min so far" in r.text
    assert "timeout" in r.text
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


async def test_another_teams_incident_is_not_there(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    await logged_in(app_client, store, "ada@example.com")
    await make_key(store, "beta")
    [theirs] = await monitors(store, "beta", "their secret db")
    await record(store, {theirs: [(T0 + H, D)]})
    [incident] = await incident_ids(store, "beta")
    for path in (f"/incidents/{incident}", "/incidents/tcpi_nope", "/incidents/%3Cscript%3E"):
        r = await app_client.get(path)
        assert r.status_code == 404, path
        assert "no such incident" in r.text
    listing = await app_client.get("/incidents")
    assert incident not in listing.text
    assert "their secret db" not in listing.text
    assert "No open incidents" in listing.text


async def test_viewers_see_incidents_and_strangers_are_sent_to_log_in(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    r = await app_client.get("/incidents")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/incidents")
    r = await app_client.get("/incidents/tcpi_abc")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/incidents/tcpi_abc")
    await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    [db] = await monitors(store, "acme", "db")
    await record(store, {db: [(T0 + H, D)]})
    [incident] = await incident_ids(store)
    assert (await app_client.get("/incidents")).status_code == 200
    assert (await app_client.get(f"/incidents/{incident}")).status_code == 200
