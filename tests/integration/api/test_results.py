"""/v1/tcp-monitors/{id}/results: newest first, paginated, bounds checked."""

from functools import partial

import pytest

from tests.support.api import Api, add_results, conforms
from tests.support.seeding import team_id
from upwatch.domain import Observation, Outcome, Status
from upwatch.scheduler.planning import plan


async def test_results_are_newest_first_with_pagination(api: Api) -> None:
    m = await api.create()
    team = await team_id(api.store, "acme")
    await add_results(api.store, team, m["id"], [Status.UP, Status.DOWN, Status.TIMEOUT])
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results")
    assert r.status_code == 200
    body = r.json()
    conforms(body, "list-results.response")
    assert [x["status"] for x in body["data"]] == ["timeout", "down", "up"]
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}
    up = body["data"][2]
    assert up["responseTimeMs"] == 7
    assert "error" not in up
    assert body["data"][1]["responseTimeMs"] is None
    assert body["data"][1]["error"] == "Connection refused"
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?limit=1&offset=1")
    assert [x["status"] for x in r.json()["data"]] == ["down"]
    assert r.json()["pagination"] == {"total": 3, "limit": 1, "offset": 1}
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?offset=10")
    assert r.json()["data"] == []
    monitor = (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"]
    assert monitor["lastStatus"] == "timeout"
    assert monitor["lastCheckedAt"] == body["data"][0]["checkedAt"]
    conforms({"data": monitor}, "get-monitor.response")


@pytest.mark.parametrize("query", ["limit=1", "limit=200", "offset=0", "limit=50&offset=3"])
async def test_page_bounds_just_inside_are_accepted(api: Api, query: str) -> None:
    m = await api.create()
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?{query}")
    assert r.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "offset=-1",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%201",
        "limit=1&limit=2",
        "offset=99999999999999999999",
        "limit=+5",
    ],
)
async def test_bad_page_parameters_are_400(api: Api, query: str) -> None:
    m = await api.create()
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?{query}")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] in ("limit", "offset")


async def test_results_carry_phase_timings_and_the_address_on_both_databases(api: Api) -> None:
    m = await api.create()
    plans = await api.store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    [check] = [p.check for p in plans if p.check.monitor_id == m["id"]]
    at = 1_771_070_400_000
    await api.store.results.save(
        [
            Observation(
                check,
                Outcome(
                    Status.UP,
                    response_time_ms=12,
                    dns_time_ms=4,
                    connect_time_ms=8,
                    resolved_address="2001:db8::1",
                ),
                at,
            ),
            Observation(
                check,
                Outcome(Status.DOWN, error="Connection refused", resolved_address="192.0.2.7"),
                at + 1,
            ),
            Observation(check, Outcome(Status.DOWN, error="DNS lookup failed: x"), at + 2),
        ]
    )
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results")
    conforms(r.json(), "list-results.response")
    phases = [(x["dnsTimeMs"], x["connectTimeMs"], x["resolvedAddress"]) for x in r.json()["data"]]
    assert phases == [(None, None, None), (None, None, "192.0.2.7"), (4, 8, "2001:db8::1")]
