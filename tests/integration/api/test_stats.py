"""Statistics (SPEC §9) through the API, on both databases, on histories built with an
injected clock: availability, downtime, maintenance, incidents, counts and percentiles,
from raw results and from rollups; every bad range is a 400 naming its parameter."""

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.support.api import VALID, Api
from tests.support.seeding import make_key, team_id
from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.domain import DueCheck, Observation, Outcome, Status, rfc3339
from upwatch.maintenance import Once
from upwatch.scheduler.planning import plan
from upwatch.sketch import exact_quantile
from upwatch.store import Store

T0 = 1_771_027_200_000  # 2026-02-14T00:00:00Z
M, H, D = 60_000, 3_600_000, 86_400_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def api(store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    keys = {"rw": await make_key(store, "acme"), "other": await make_key(store, "beta")}
    settings = Settings(result_retention_days=2, rollup_retention_days=30)
    app = create_app(settings, store, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        yield Api(client, store, keys)


async def check_of(store: Store, monitor_id: str) -> DueCheck:
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    return next(p.check for p in plans if p.check.monitor_id == monitor_id)


async def record(store: Store, check: DueCheck, results: list[tuple[int, Status, int]]) -> None:
    """(checked_at, status, response time) each, written in checkedAt order, as a
    checker would; the state machine opens and resolves incidents from them."""
    for at, status, rt in sorted(results):
        outcome = (
            Outcome(status, response_time_ms=rt)
            if status is Status.UP
            else Outcome(status, error="Connection refused")
        )
        await store.results.save([Observation(check, outcome, at)])


def q(**times: int) -> dict[str, str]:
    return {k.rstrip("_"): rfc3339(v) for k, v in times.items()}


async def stats(api: Api, monitor_id: str, **params: Any) -> dict[str, Any]:
    r = await api.call("GET", f"/v1/tcp-monitors/{monitor_id}/stats", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def six_hours(api: Api, clock: FakeClock) -> tuple[str, list[int]]:
    """A monitor created at T0, checked every 10 minutes for 6 hours; down from 2:00
    to 2:30 (one failure confirms: an incident 2:00-2:30); now is 6:00."""
    m = await api.create({**VALID, "confirmationChecks": 1})
    check = await check_of(api.store, m["id"])
    times = [10 + i for i in range(36)]
    results = [
        (T0 + i * 10 * M, Status.DOWN if 12 <= i < 15 else Status.UP, times[i]) for i in range(36)
    ]
    await record(api.store, check, results)
    clock.set(T0 + 6 * H)
    return m["id"], [t for i, t in enumerate(times) if not 12 <= i < 15]


async def test_stats_from_raw_results_are_exact(api: Api, clock: FakeClock) -> None:
    monitor_id, up_times = await six_hours(api, clock)
    s = await stats(api, monitor_id, **q(from_=T0 - 6 * H, to=T0 + 6 * H))
    assert (s["from"], s["to"]) == (rfc3339(T0 - 6 * H), rfc3339(T0 + 6 * H))
    # 6 h before the monitor existed are not counted: 30 min down of 6 h.
    assert s["downtimeSeconds"] == 1800
    assert s["availabilityPercent"] == pytest.approx(100 * (1 - 0.5 / 6), abs=1e-4)
    assert s["maintenanceSeconds"] == 0
    assert s["incidents"] == {
        "count": 1,
        "longestSeconds": 1800,
        "meanTimeToRecoverySeconds": 1800,
    }
    assert s["checks"] == {"total": 36, "up": 33, "down": 3, "timeout": 0}
    ordered = sorted(up_times)
    rt = s["responseTimeMs"]
    assert (rt["min"], rt["max"]) == (ordered[0], ordered[-1])
    assert rt["mean"] == pytest.approx(sum(ordered) / len(ordered), abs=1e-3)
    for name, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert rt[name] == exact_quantile(ordered, quantile)


async def test_the_default_range_is_the_last_24_hours(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    s = await stats(api, monitor_id)
    assert (s["from"], s["to"]) == (rfc3339(T0 - 18 * H), rfc3339(T0 + 6 * H))
    assert s["checks"]["total"] == 36


async def test_maintenance_during_an_incident_is_not_downtime(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    acme = await team_id(api.store)
    await api.store.windows.create(
        acme,
        name="upgrade",
        monitor_ids=[monitor_id],
        schedule=Once(T0 + 2 * H + 15 * M, T0 + 3 * H),
        at=T0,
    )
    s = await stats(api, monitor_id, **q(from_=T0, to=T0 + 6 * H))
    assert (s["downtimeSeconds"], s["maintenanceSeconds"]) == (900, 2700)
    assert s["availabilityPercent"] == pytest.approx(100 * (1 - 15 / (360 - 45)), abs=1e-4)


async def test_a_disabled_stretch_is_not_counted(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    clock.set(T0 + 6 * H)
    r = await api.call("PUT", f"/v1/tcp-monitors/{monitor_id}", json={"isEnabled": False})
    assert r.status_code == 200
    clock.set(T0 + 9 * H)
    r = await api.call("PUT", f"/v1/tcp-monitors/{monitor_id}", json={"isEnabled": True})
    assert r.status_code == 200
    clock.set(T0 + 12 * H)
    s = await stats(api, monitor_id, **q(from_=T0, to=T0 + 12 * H))
    # 12 h, 3 of them paused: 30 min down of 9 h.
    assert s["availabilityPercent"] == pytest.approx(100 * (1 - 0.5 / 9), abs=1e-4)


async def test_rollups_answer_beyond_raw_results_with_exact_counts(
    api: Api, clock: FakeClock
) -> None:
    monitor_id, up_times = await six_hours(api, clock)
    assert await api.store.rollups.compact() == 36
    clock.set(T0 + 5 * D)  # results are kept 2 days here: purge them
    assert await api.store.results.purge(before=clock.now_ms() - 2 * D) == 36
    s = await stats(api, monitor_id, **q(from_=T0 - 2 * H, to=T0 + 4 * D))
    assert s["checks"] == {"total": 36, "up": 33, "down": 3, "timeout": 0}
    assert s["downtimeSeconds"] == 1800  # time figures come from the incident, not results
    ordered = sorted(up_times)
    rt = s["responseTimeMs"]
    assert (rt["min"], rt["max"]) == (ordered[0], ordered[-1])
    for name, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = exact_quantile(ordered, quantile)
        assert exact is not None
        assert abs(rt[name] - exact) <= 0.01 * exact


async def test_compacting_twice_counts_once(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    assert await api.store.rollups.compact() == 36
    assert await api.store.rollups.compact() == 0
    clock.set(T0 + 10 * D)
    s = await stats(api, monitor_id, **q(from_=T0 - 2 * D, to=T0 + 5 * D))
    assert s["checks"]["total"] == 36


async def test_a_series_has_every_bucket_oldest_first(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    await api.store.rollups.compact()
    r = await api.call(
        "GET",
        f"/v1/tcp-monitors/{monitor_id}/stats/series",
        params={**q(from_=T0 - 2 * H, to=T0 + 6 * H), "bucket": "1h"},
    )
    assert r.status_code == 200, r.text
    buckets = r.json()["data"]
    assert [b["start"] for b in buckets] == [rfc3339(T0 + i * H) for i in range(-2, 6)]
    assert [b["checks"] for b in buckets] == [0, 0, 6, 6, 6, 6, 6, 6]
    assert buckets[0]["availabilityPercent"] is None  # before the monitor existed
    assert buckets[0]["responseTimeMs"] == {"p50": None, "p95": None, "max": None}
    assert buckets[2]["availabilityPercent"] == 100
    assert buckets[4]["availabilityPercent"] == pytest.approx(50)  # down 2:00-2:30
    assert buckets[4]["responseTimeMs"]["max"] == 10 + 17


async def test_five_minute_and_daily_buckets(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    await api.store.rollups.compact()
    path = f"/v1/tcp-monitors/{monitor_id}/stats/series"
    r = await api.call("GET", path, params={**q(from_=T0, to=T0 + H), "bucket": "5m"})
    assert [b["checks"] for b in r.json()["data"]] == [1, 0] * 6
    clock.set(T0 + 2 * D + 6 * H)
    r = await api.call(
        "GET", path, params={**q(from_=T0 - D, to=T0 + 2 * D + 6 * H), "bucket": "1d"}
    )
    assert [b["checks"] for b in r.json()["data"]] == [0, 36, 0, 0]


async def test_the_team_summary_lists_every_monitor_of_the_team_only(
    api: Api, clock: FakeClock
) -> None:
    monitor_id, _ = await six_hours(api, clock)
    idle = await api.create({**VALID, "name": "idle"})
    other = await api.create({**VALID, "name": "theirs"}, key="other")
    await api.store.rollups.compact()
    r = await api.call("GET", "/v1/stats/tcp-monitors", params=q(from_=T0, to=T0 + 6 * H))
    assert r.status_code == 200, r.text
    rows = {x["monitorId"]: x for x in r.json()["data"]}
    assert set(rows) == {monitor_id, idle["id"]}
    assert other["id"] not in rows
    assert rows[monitor_id]["downtimeSeconds"] == 1800
    assert rows[monitor_id]["incidents"] == {"count": 1}
    assert rows[monitor_id]["responseTimeMs"]["p95"] is not None
    assert rows[idle["id"]]["responseTimeMs"] == {"p95": None}
    assert rows[idle["id"]]["availabilityPercent"] is None  # created at the end of the range


async def test_another_teams_monitor_is_404(api: Api, clock: FakeClock) -> None:
    monitor_id, _ = await six_hours(api, clock)
    for path in ("stats", "stats/series"):
        r = await api.call("GET", f"/v1/tcp-monitors/{monitor_id}/{path}", "other")
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-14T12:00:00"}, "to"),  # no offset
        ({"from": "2026-02-30T00:00:00Z"}, "from"),
        ({"from": "2026-02-14T00:00:00Z", "from ": "x"}, "from "),  # unknown parameter
        ({"to": "2026-02-14T07:00:00Z"}, "to"),  # in the future
        ({"from": "2026-02-14T05:00:00Z", "to": "2026-02-14T04:00:00Z"}, "from"),  # reversed
        ({"from": "2026-02-14T05:00:00Z", "to": "2026-02-14T05:00:00Z"}, "from"),  # empty
        ({"from": "2026-01-01T00:00:00Z"}, "from"),  # before the 30-day retention
        ({"bucket": "2h"}, "bucket"),
        ({"bucket": "5m", "from": "2026-02-01T00:00:00Z"}, "bucket"),  # too many buckets
        ({"bucket": "5m", "from": "2026-02-11T00:00:00Z"}, "from"),  # 936 buckets; raw gone
    ],
)
async def test_a_bad_range_is_400_naming_the_parameter(
    api: Api, clock: FakeClock, params: dict[str, str], field: str
) -> None:
    monitor_id, _ = await six_hours(api, clock)
    r = await api.call("GET", f"/v1/tcp-monitors/{monitor_id}/stats/series", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    unknown = "tcpm_" + "x" * 22
    r = await api.call("GET", f"/v1/tcp-monitors/{unknown}/stats/series", params=params)
    assert r.status_code == 404  # 404 before 400
