"""/v1/maintenance-windows (SPEC §8): CRUD, active and nextWindow, strict input, and the
monitors' inMaintenance."""

from typing import Any

import pytest

from tests.support.api import VALID, Api

PATH = "/v1/maintenance-windows"
ONCE = {
    "name": "db upgrade",
    "schedule": {
        "type": "once",
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
    },
}
SUNDAYS = {
    "name": "sundays",
    "schedule": {
        "type": "recurring",
        "rrule": "FREQ=WEEKLY;BYDAY=SU",
        "startTime": "02:00",
        "durationMinutes": 60,
        "timezone": "Europe/Berlin",
        "startsOn": "2026-12-01",
    },
}


async def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.call("POST", PATH, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_a_window_now_puts_its_monitors_in_maintenance(api: Api) -> None:
    inside, outside = await api.create(), await api.create({**VALID, "name": "other"})
    assert inside["inMaintenance"] is False
    made = await create(api, {**ONCE, "monitorIds": [inside["id"]]})
    assert made["id"].startswith("mw_")
    assert made["active"] is True
    assert made["nextWindow"] == {
        "startsAt": "2020-01-01T00:00:00.000Z",
        "endsAt": "2099-01-01T00:00:00.000Z",
    }
    got = (await api.call("GET", f"/v1/tcp-monitors/{inside['id']}")).json()["data"]
    assert got["inMaintenance"] is True
    listed = {
        m["id"]: m["inMaintenance"]
        for m in (await api.call("GET", "/v1/tcp-monitors")).json()["data"]
    }
    assert listed == {inside["id"]: True, outside["id"]: False}
    everyone = await create(api, {**ONCE, "name": "all"})
    assert everyone["monitorIds"] == []
    listed = {
        m["id"]: m["inMaintenance"]
        for m in (await api.call("GET", "/v1/tcp-monitors")).json()["data"]
    }
    assert listed == {inside["id"]: True, outside["id"]: True}


async def test_a_recurring_window_shows_its_next_occurrence(api: Api) -> None:
    made = await create(api, SUNDAYS)
    assert made["schedule"] == SUNDAYS["schedule"]
    assert made["nextWindow"] is not None
    starts = made["nextWindow"]["startsAt"]
    assert starts.endswith(("T01:00:00.000Z", "T00:00:00.000Z"))  # 02:00 CET or CEST
    r = await api.call("PUT", f"{PATH}/{made['id']}", json={"name": "weekly"})
    assert r.json()["data"]["name"] == "weekly"
    assert r.json()["data"]["schedule"] == SUNDAYS["schedule"]
    assert [w["id"] for w in (await api.call("GET", PATH)).json()["data"]] == [made["id"]]
    assert (await api.call("DELETE", f"{PATH}/{made['id']}")).status_code == 204
    assert (await api.call("GET", f"{PATH}/{made['id']}")).status_code == 404


def recurring(**kw: Any) -> dict[str, Any]:
    return {**SUNDAYS, "schedule": {**SUNDAYS["schedule"], **kw}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (recurring(rrule="FREQ=HOURLY"), "schedule.rrule"),
        (recurring(rrule="FREQ=DAILY;BYSETPOS=1"), "schedule.rrule"),
        (recurring(rrule="garbage"), "schedule.rrule"),
        (recurring(timezone="Mars/Olympus"), "schedule.timezone"),
        (recurring(startTime="25:00"), "schedule.startTime"),
        (recurring(startsOn="2026-13-01"), "schedule.startsOn"),
        (recurring(durationMinutes=0), "schedule.durationMinutes"),
        (recurring(durationMinutes=10081), "schedule.durationMinutes"),
        (recurring(durationMinutes="60"), "schedule.durationMinutes"),
        (recurring(extra=1), "schedule.extra"),
        (
            {**ONCE, "schedule": {**ONCE["schedule"], "endsAt": "2019-01-01T00:00:00Z"}},
            "schedule.endsAt",
        ),
        (
            {**ONCE, "schedule": {**ONCE["schedule"], "startsAt": "2020-01-01 00:00"}},
            "schedule.startsAt",
        ),
        (
            {**ONCE, "schedule": {**ONCE["schedule"], "startsAt": "2020-01-01T00:00:00"}},
            "schedule.startsAt",
        ),
        ({**ONCE, "schedule": {"type": "sometimes"}}, "schedule"),
        ({**ONCE, "monitorIds": ["tcpm_missing"]}, "monitorIds"),
        ({**ONCE, "monitorIds": "all"}, "monitorIds"),
        ({**ONCE, "name": ""}, "name"),
        ({"name": "x"}, "schedule"),
    ],
)
async def test_bad_windows_are_400_and_change_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = await api.call("POST", PATH, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    assert (await api.call("GET", PATH)).json()["data"] == []


BAD_SCHEDULES = [
    {"type": "once", "startsAt": "2020-01-01T00:00:00Z"},
    {"type": "once", "startsAt": "2020-01-01T00:00:00Z", "endsAt": 5},
    {**ONCE["schedule"], "endsAt": "2019-01-01T00:00:00Z"},
    {"type": "sometimes"},
    {"startsAt": "2020-01-01T00:00:00Z"},
    "every sunday",
    {**SUNDAYS["schedule"], "durationMinutes": "60", "rrule": 7},
    {**SUNDAYS["schedule"], "extra": 1},
    {"type": "recurring"},
    {**SUNDAYS["schedule"], "timezone": "Mars/Olympus"},
]


@pytest.mark.parametrize("schedule", BAD_SCHEDULES)
async def test_an_update_reports_a_bad_schedule_as_a_create_does(
    api: Api, schedule: object
) -> None:
    made = await create(api, ONCE)
    created = await api.call("POST", PATH, json={"name": "x", "schedule": schedule})
    updated = await api.call("PUT", f"{PATH}/{made['id']}", json={"schedule": schedule})
    assert (created.status_code, updated.status_code) == (400, 400)
    details = created.json()["error"]["details"]
    assert details
    assert all(d["field"].startswith("schedule") for d in details), details
    assert updated.json()["error"]["details"] == details
    assert (await api.call("GET", PATH)).json()["data"] == [made]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"name": ""}, "name"), ({"name": 5}, "name"), ({"monitorIds": "all"}, "monitorIds")],
)
async def test_an_update_names_a_bad_field_as_a_create_does(
    api: Api, change: dict[str, Any], field: str
) -> None:
    made = await create(api, ONCE)
    created = await api.call("POST", PATH, json={**ONCE, **change})
    updated = await api.call("PUT", f"{PATH}/{made['id']}", json=change)
    assert [d["field"] for d in created.json()["error"]["details"]] == [field]
    assert updated.json()["error"]["details"] == created.json()["error"]["details"]


async def test_windows_belong_to_their_team(api: Api) -> None:
    theirs = (await api.call("POST", "/v1/tcp-monitors", json=VALID, key="other")).json()["data"]
    r = await api.call("POST", PATH, json={**ONCE, "monitorIds": [theirs["id"]]})
    assert r.status_code == 400
    made = await create(api, ONCE)
    assert (await api.call("GET", f"{PATH}/{made['id']}", key="other")).status_code == 404
    assert (await api.call("DELETE", f"{PATH}/{made['id']}", key="other")).status_code == 404
    assert (await api.call("POST", PATH, json=ONCE, key="ro")).status_code == 403
    assert (await api.call("GET", f"{PATH}/mw_missing")).status_code == 404
    other_list = (await api.call("GET", "/v1/tcp-monitors", key="other")).json()["data"]
    assert [m["inMaintenance"] for m in other_list] == [False]


async def test_creates_and_updates_answer_with_in_maintenance_too(api: Api) -> None:
    await create(api, {**ONCE, "name": "all"})  # every monitor, now
    made = await api.create()
    assert made["inMaintenance"] is True
    r = await api.call("PUT", f"/v1/tcp-monitors/{made['id']}", json={"name": "renamed"})
    assert r.json()["data"]["inMaintenance"] is True
