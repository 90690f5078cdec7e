"""Monitor state fields and the incidents endpoints (SPEC §7): shapes, pagination,
the status filter, team isolation, and bad input for the new fields."""

from typing import Any

import pytest

from tests.support.api import TIMESTAMP, VALID, Api, add_results, conforms
from tests.support.seeding import team_id
from upwatch.domain import Status

D, U = Status.DOWN, Status.UP


async def with_incidents(api: Api, statuses: list[Status], **body: Any) -> dict[str, Any]:
    monitor = await api.create({**VALID, **body})
    await add_results(api.store, await team_id(api.store), monitor["id"], statuses)
    r = await api.call("GET", f"/v1/tcp-monitors/{monitor['id']}")
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_new_monitors_show_their_state_fields(api: Api) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, "recoveryChecks": 3})
    assert r.status_code == 201
    conforms(r.json(), "create-monitor.response")
    data = r.json()["data"]
    assert (data["confirmationChecks"], data["recoveryChecks"]) == (2, 3)
    assert (data["state"], data["stateChangedAt"], data["openIncidentId"]) == (
        "unknown",
        None,
        None,
    )
    r = await api.call("PUT", f"/v1/tcp-monitors/{data['id']}", json={"confirmationChecks": 10})
    assert r.status_code == 200
    assert r.json()["data"]["confirmationChecks"] == 10


async def test_an_outage_and_its_recovery_show_as_one_incident(api: Api) -> None:
    monitor = await with_incidents(api, [U, D, D, D, U])
    assert monitor["state"] == "up"
    assert monitor["openIncidentId"] is None
    assert TIMESTAMP.match(monitor["stateChangedAt"])
    r = await api.call("GET", f"/v1/tcp-monitors/{monitor['id']}/incidents")
    assert r.status_code == 200
    body = r.json()
    assert body["pagination"] == {"total": 1, "limit": 50, "offset": 0}
    [incident] = body["data"]
    assert incident["id"].startswith("tcpi_")
    assert incident["monitorId"] == monitor["id"]
    assert incident["status"] == "resolved"
    assert incident["endReason"] == "recovered"
    assert incident["cause"] == {"status": "down", "error": "Connection refused"}
    for field in ("startedAt", "confirmedAt", "resolvedAt"):
        assert TIMESTAMP.match(incident[field]), field
    assert incident["startedAt"] < incident["confirmedAt"] < incident["resolvedAt"]
    assert incident["durationSeconds"] == 0.003  # results 1 ms apart: started 1, resolved 4


async def test_the_team_list_filters_by_status(api: Api) -> None:
    still_down = await with_incidents(api, [D, D])
    await with_incidents(api, [D, D, U], name="recovered")
    r = await api.call("GET", "/v1/incidents")
    assert r.json()["pagination"]["total"] == 2
    r = await api.call("GET", "/v1/incidents?status=open&limit=1")
    [only] = r.json()["data"]
    assert (only["monitorId"], only["status"], only["resolvedAt"]) == (
        still_down["id"],
        "open",
        None,
    )
    assert only["id"] == still_down["openIncidentId"]
    r = await api.call("GET", "/v1/incidents?status=resolved")
    assert [i["status"] for i in r.json()["data"]] == ["resolved"]
    other = await api.call("GET", "/v1/incidents", key="other")
    assert other.json() == {"data": [], "pagination": {"total": 0, "limit": 50, "offset": 0}}


@pytest.mark.parametrize(
    "query", ["status=closed", "status=OPEN", "status=", "status=open&status=open", "limit=0"]
)
async def test_bad_incident_queries_are_400(api: Api, query: str) -> None:
    r = await api.call("GET", f"/v1/incidents?{query}")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert r.json()["error"]["details"][0]["field"] in ("status", "limit")


async def test_incident_lists_need_a_read_key_and_the_teams_monitor(api: Api) -> None:
    monitor = await api.create()
    path = f"/v1/tcp-monitors/{monitor['id']}/incidents"
    assert (await api.call("GET", path, key=None)).status_code == 401
    assert (await api.call("GET", path, key="wo")).status_code == 403
    assert (await api.call("GET", "/v1/incidents", key="wo")).status_code == 403
    assert (await api.call("GET", path, key="other")).status_code == 404
    assert (await api.call("GET", path + "?limit=0", key="other")).status_code == 404
    missing = "/v1/tcp-monitors/tcpm_missing/incidents"
    assert (await api.call("GET", missing)).status_code == 404
    assert (await api.call("GET", path, key="ro")).status_code == 200


@pytest.mark.parametrize("field", ["confirmationChecks", "recoveryChecks"])
@pytest.mark.parametrize("value", [0, 11, -1, "2", 2.0, True, None, [2]])
async def test_bad_check_counts_are_400_and_change_nothing(
    api: Api, field: str, value: Any
) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, field: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    monitor = await api.create()
    r = await api.call("PUT", f"/v1/tcp-monitors/{monitor['id']}", json={field: value})
    assert r.status_code == 400, r.text
    after = (await api.call("GET", f"/v1/tcp-monitors/{monitor['id']}")).json()["data"]
    assert after == monitor
    listed = (await api.call("GET", "/v1/tcp-monitors")).json()["data"]
    assert len(listed) == 1


@pytest.mark.parametrize("field", ["state", "stateChangedAt", "openIncidentId"])
async def test_read_only_fields_are_unknown_in_requests(api: Api, field: str) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, field: None})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("value", [1, 4, 10081, -1, "5", None, 5.0])
async def test_bad_reminder_intervals_are_400(api: Api, value: Any) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, "remindEveryMinutes": value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == "remindEveryMinutes"


@pytest.mark.parametrize("value", [0, 5, 10080])
async def test_reminder_intervals_at_the_bounds_are_accepted(api: Api, value: int) -> None:
    made = await api.create({**VALID, "remindEveryMinutes": value})
    assert made["remindEveryMinutes"] == value


async def test_unknown_query_parameters_are_400_where_a_route_takes_some(api: Api) -> None:
    monitor = await api.create()
    for path in (
        "/v1/incidents?limt=5",
        f"/v1/tcp-monitors/{monitor['id']}/incidents?state=open",
        f"/v1/tcp-monitors/{monitor['id']}/results?page=2",
    ):
        r = await api.call("GET", path)
        assert r.status_code == 400, path
        assert r.json()["error"]["details"][0]["message"] == "unknown parameter"
    other = await api.call("GET", "/v1/tcp-monitors/tcpm_missing/results?page=2")
    assert other.status_code == 404  # 404 before 400
    assert (await api.call("GET", "/v1/tcp-monitors?anything=1")).status_code == 200
