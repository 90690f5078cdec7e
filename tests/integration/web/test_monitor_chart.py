"""A monitor's chart and the dashboard's sparklines (SPEC §10), in process on both
databases: chart.json's buckets from known results for each range, authenticated by
the session cookie and by nothing else (401 without it, 404 for another team's monitor,
and the cookie still opens nothing under /v1/); the monitor page's chart, range links,
channels and windows; the sparklines' SVG and words; and the store's one-read figures
(team_hours, summaries) equal to the figures they replace."""

import itertools
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.clock import FakeClock
from upwatch.domain import (
    DueCheck,
    MonitorChanges,
    NewMonitor,
    Observation,
    Outcome,
    Status,
    rfc3339,
)
from upwatch.maintenance import Once, Recurring
from upwatch.notifications import ChannelType
from upwatch.scheduler.planning import plan
from upwatch.sketch import exact_quantile
from upwatch.store import Store

T0 = 1_771_027_200_000  # 2026-02-14T00:00:00Z
M, H, D = 60_000, 3_600_000, 86_400_000
NOW = T0 + 6 * H
# Every 10 minutes for 6 hours from T0, down from 2:00 to 2:30; the up ones take 10 + i ms.
DOWN = range(12, 15)
TIMES = [10 + i for i in range(36)]
UP_TIMES = sorted(t for i, t in enumerate(TIMES) if i not in DOWN)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def app_client(store: Store, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store, clock) as client:
        yield client


async def check_of(store: Store, monitor_id: str) -> DueCheck:
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    return next(p.check for p in plans if p.check.monitor_id == monitor_id)


async def six_hours(store: Store, clock: FakeClock, team: str = "acme", name: str = "db") -> str:
    """A monitor made at T0 and checked as DOWN and TIMES say, rolled up; now is 6:00."""
    await make_key(store, team)
    made = await store.monitors.create(
        await team_id(store, team),
        NewMonitor(name, "db.example.com", 5432, confirmation_checks=1),
        at=T0,
    )
    check = await check_of(store, made.id)
    for i, rt in enumerate(TIMES):
        outcome = (
            Outcome(Status.DOWN, error="Connection refused")
            if i in DOWN
            else Outcome(Status.UP, response_time_ms=rt)
        )
        await store.results.save([Observation(check, outcome, T0 + i * 10 * M)])
    await store.rollups.compact()
    clock.set(NOW)
    return made.id


async def chart(client: httpx.AsyncClient, monitor_id: str, r: str) -> dict[str, Any]:
    got = await client.get(f"/monitors/{monitor_id}/chart.json", params={"range": r})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/json")
    assert got.headers["cache-control"] == "private, no-store"
    body: dict[str, Any] = got.json()
    return body


# -- chart.json -----------------------------------------------------------------------------


async def test_a_day_is_five_minute_buckets_of_p50_p95_and_checks(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    monitor_id = await six_hours(store, clock)
    await logged_in(app_client, store, "ada@example.com")
    body = await chart(app_client, monitor_id, "24h")
    assert (body["range"], body["bucket"], body["bucketSeconds"]) == ("24h", "5m", 300)
    assert (body["from"], body["to"]) == (rfc3339(NOW - D), rfc3339(NOW))
    starts = body["start"]
    assert len(starts) == 288
    assert starts[0] == (NOW - D) // 1000
    assert all(b - a == 300 for a, b in itertools.pairwise(starts))
    first = starts.index(T0 // 1000)
    for i, rt in enumerate(TIMES):  # one check in every other bucket from T0
        k = first + 2 * i
        assert (body["up"][k], body["down"][k]) == ((0, 1) if i in DOWN else (1, 0))
        expected = None if i in DOWN else rt
        assert (body["p50"][k], body["p95"][k]) == (expected, expected)
        assert (body["up"][k + 1], body["p50"][k + 1]) == (0, None)
    assert sum(body["up"]) == 33
    assert sum(body["down"]) == 3
    assert body["p50"][0] is None  # before the monitor existed


async def test_longer_ranges_are_hours_and_days_of_rollups(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    monitor_id = await six_hours(store, clock)
    await logged_in(app_client, store, "ada@example.com")
    for r, bucket, count in (("7d", "1h", 168), ("30d", "1h", 720), ("90d", "1d", 91)):
        body = await chart(app_client, monitor_id, r)
        assert (body["bucket"], len(body["start"])) == (bucket, count), r
        assert (sum(body["up"]), sum(body["down"])) == (33, 3), r
    hours = await chart(app_client, monitor_id, "7d")
    k = hours["start"].index((T0 + 2 * H) // 1000)
    # 2:00-3:00: down at 2:00, 2:10 and 2:20; up in 25, 26 and 27 ms.
    assert (hours["up"][k], hours["down"][k]) == (3, 3)
    assert (hours["p50"][k], hours["p95"][k]) == (26, 27)
    days = await chart(app_client, monitor_id, "90d")
    assert days["start"][-1] == T0 // 1000
    assert days["p50"][-1] == exact_quantile(UP_TIMES, 0.5)
    assert days["p95"][-1] == exact_quantile(UP_TIMES, 0.95)
    bad = await app_client.get(f"/monitors/{monitor_id}/chart.json", params={"range": "1y"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_without_a_session_it_is_401_and_another_teams_monitor_is_404(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    theirs = await six_hours(store, clock, team="beta")
    r = await app_client.get(f"/monitors/{theirs}/chart.json")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    await logged_in(app_client, store, "ada@example.com")
    for monitor_id in (theirs, "tcpm_nope", "not-an-id"):
        r = await app_client.get(f"/monitors/{monitor_id}/chart.json")
        assert r.status_code == 404, monitor_id
        assert r.json()["error"]["code"] == "NOT_FOUND"


async def test_the_session_cookie_opens_nothing_under_v1(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    await logged_in(app_client, store, "ada@example.com")
    mine = await six_hours(store, clock, name="mine")
    assert (await app_client.get(f"/monitors/{mine}/chart.json")).status_code == 200
    for path in (
        "/v1/tcp-monitors",
        f"/v1/tcp-monitors/{mine}/stats/series",
        f"/v1/tcp-monitors/{mine}/stats",
    ):
        r = await app_client.get(path)
        assert r.status_code == 401, path


async def test_it_is_gzipped_for_a_browser_that_takes_it(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    monitor_id = await six_hours(store, clock)
    await logged_in(app_client, store, "ada@example.com")
    r = await app_client.get(
        f"/monitors/{monitor_id}/chart.json", headers={"Accept-Encoding": "gzip"}
    )
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.json()["start"]) == 288  # httpx has decoded it


# -- the monitor page -----------------------------------------------------------------------


async def test_the_page_has_the_chart_its_ranges_channels_and_windows(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    await make_key(store, "acme")
    team = await team_id(store, "acme")
    hook = await store.channels.create(
        team,
        name="<b>ops</b> hook",
        type=ChannelType.WEBHOOK,
        config={"url": "http://127.0.0.1:9/hook"},
        is_enabled=True,
        at=T0,
    )
    unused = await store.channels.create(
        team,
        name="unused",
        type=ChannelType.WEBHOOK,
        config={"url": "http://x"},
        is_enabled=True,
        at=T0,
    )
    made = await store.monitors.create(
        team, NewMonitor("db", "db.example.com", 5432, channel_ids=(hook.id,)), at=T0
    )
    other = await store.monitors.create(team, NewMonitor("web", "web.example.com", 443), at=T0)
    weekly = Recurring("FREQ=WEEKLY;BYDAY=SU", "02:00", 60, "Europe/Berlin", "2026-01-04")
    everyone = await store.windows.create(
        team, name="Sunday <patch>", monitor_ids=[], schedule=weekly, at=T0
    )
    later = Once(T0 + 2 * D, T0 + 2 * D + H)
    mine = await store.windows.create(
        team, name="move", monitor_ids=[made.id], schedule=later, at=T0
    )
    theirs = await store.windows.create(
        team, name="not this one", monitor_ids=[other.id], schedule=later, at=T0
    )
    await logged_in(app_client, store, "ada@example.com")
    page = await app_client.get(f"/monitors/{made.id}", params={"range": "7d"})
    assert page.status_code == 200
    html = page.text
    assert f'data-src="/monitors/{made.id}/chart.json"' in html
    assert 'data-range="7d"' in html
    assert 'href="?range=7d" data-range="7d" aria-current="true"' in html
    for r in ("24h", "30d", "90d"):
        assert f'href="?range={r}" data-range="{r}">' in html
    assert "<noscript>" in html
    assert "The chart needs JavaScript" in html
    assert "/static/chart." in html
    assert "/static/uPlot-1.6.32.iife.min." in html
    assert "<script>" not in html  # nothing inline (the CSP would refuse it)
    assert f'<a href="/channels/{hook.id}">&lt;b&gt;ops&lt;/b&gt; hook</a>' in html
    assert unused.id not in html
    assert f'<a href="/windows/{everyone.id}/edit">Sunday &lt;patch&gt;</a>' in html
    assert f'<a href="/windows/{mine.id}/edit">move</a>' in html
    assert theirs.id not in html
    # An unknown range is the default one; the chart's scripts are on this page only.
    page = await app_client.get(f"/monitors/{made.id}", params={"range": "<x>"})
    assert 'data-range="24h"' in page.text
    assert "/static/chart." not in (await app_client.get("/")).text


# -- the dashboard's sparklines -------------------------------------------------------------


async def test_each_monitor_row_has_a_sparkline_of_its_hours(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    checked = await six_hours(store, clock, name="<script>alert(1)</script>")
    never = await store.monitors.create(
        await team_id(store), NewMonitor("quiet", "q.example.com", 1), at=T0
    )
    await logged_in(app_client, store, "ada@example.com")
    html = (await app_client.get("/")).text
    rows = html.split("<tr>")[2:]  # after the head's
    row = next(r for r in rows if f'href="/monitors/{checked}"' in r)
    label = 'role="img" aria-label="Response time over the last 24 hours: hourly medians '
    assert label in row
    assert 'viewBox="0 0 230 40"' in row  # 24 hours, 10 units apart
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert "<script>alert" not in html
    # The six hours from T0 are the last six of the 24: one stretch, from x = 180.
    path = row.split('<path d="', 1)[1].split('"', 1)[0]
    assert path.startswith("M180 ")
    assert (path.count("M"), path.count("L")) == (1, 5)
    quiet = next(r for r in rows if f'href="/monitors/{never.id}"' in r)
    assert "<svg" not in quiet


async def test_the_day_figures_are_shared_for_a_while_and_the_states_are_always_fresh(
    app_client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    checked = await six_hours(store, clock)
    await logged_in(app_client, store, "ada@example.com")
    first = (await app_client.get("/")).text
    assert "hourly medians" in first
    # Paused between two looks within the figures' lifetime: the row says so at once,
    # with the day's figures as they were.
    await store.monitors.update(
        await team_id(store), checked, MonitorChanges(is_enabled=False), at=clock.now_ms()
    )
    row = next(r for r in (await app_client.get("/")).text.split("<tr>") if checked in r)
    assert "state-paused" in row
    assert "hourly medians" in row


# -- the store's one-read figures -----------------------------------------------------------


async def test_team_hours_has_the_teams_figures_and_each_hours_median(
    store: Store, clock: FakeClock
) -> None:
    monitor_id = await six_hours(store, clock)
    team = await team_id(store)
    await store.monitors.create(team, NewMonitor("quiet", "q.example.com", 1), at=T0)
    for start, end in ((NOW - D, NOW), (T0 + 30 * M, T0 + 5 * H + 30 * M), (T0, NOW)):
        plain = await store.statistics.team(team, start, end, now=NOW)
        times, hours = await store.statistics.team_hours(team, start, end, now=NOW)
        assert list(times) == [s.monitor_id for s in plain]
        for a in plain:
            assert times[a.monitor_id] == a.time
        assert list(hours) == [monitor_id]  # the quiet one has no hours
        h = hours[monitor_id]
        assert h.start == start - start % H
        assert len(h.medians) == -(-(end - h.start) // H)
        for i, value in enumerate(h.medians):
            at = h.start + i * H
            inside = [
                t for k, t in enumerate(TIMES) if k not in DOWN and at <= T0 + k * 10 * M < at + H
            ]
            assert value == exact_quantile(sorted(inside), 0.5), (i, value, inside)
    with pytest.raises(ValueError, match="a range of"):
        await store.statistics.team_hours(team, NOW - 8 * D, NOW, now=NOW)


async def test_summaries_in_one_read_equal_one_summary_at_a_time(
    store: Store, clock: FakeClock
) -> None:
    monitor_id = await six_hours(store, clock)
    team = await team_id(store)
    ranges = [(NOW - days * D, NOW) for days in (1, 7, 30, 90)] + [(T0 + H, T0 + 3 * H)]
    together = await store.statistics.summaries(
        team, monitor_id, ranges, now=NOW, raw_since=NOW - 30 * D
    )
    for (start, end), got in zip(ranges, together, strict=True):
        one = await store.statistics.summary(
            team, monitor_id, start, end, now=NOW, raw_since=NOW - 30 * D
        )
        assert (got.start, got.end, got.time, got.incidents) == (
            one.start,
            one.end,
            one.time,
            one.incidents,
        )
        a, b = got.checks, one.checks
        figures = ("up", "down", "timeout", "rt_sum", "timed", "rt_min", "rt_max", "values")
        assert [getattr(a, f) for f in figures] == [getattr(b, f) for f in figures]
        quantiles = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        assert a.response_times(*quantiles) == b.response_times(*quantiles)
    assert await store.statistics.summaries(team, monitor_id, [], now=NOW, raw_since=0) == []
