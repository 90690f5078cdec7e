"""The maintenance windows pages (SPEC §8, §10), in process on both databases: the list
says which windows are active now, upcoming or past; the forms take UTC wall times and
show the API's messages by their field with what was typed kept; viewers only look;
other teams' windows are 404; a form without its CSRF token changes nothing."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.clock import FakeClock
from upwatch.domain import NewMonitor, rfc3339
from upwatch.maintenance import Once, Recurring
from upwatch.store import Store
from upwatch.users import Role
from upwatch.web.windows import as_rfc3339, wall_time

H = 3_600_000
NOW = FakeClock().now_ms()  # 2026-02-14T12:00:00Z
MARCH_1_10H = 1_772_359_200_000  # 2026-03-01T10:00:00Z

ONCE = {
    "name": "Database upgrade",
    "type": "once",
    "startsAt": "2026-03-01T10:00",
    "endsAt": "2026-03-01T12:30",
}
RECURRING = {
    "name": "Sunday backups",
    "type": "recurring",
    "rrule": "FREQ=WEEKLY;BYDAY=SU",
    "startTime": "02:00",
    "durationMinutes": "90",
    "timezone": "Europe/Berlin",
    "startsOn": "2026-02-01",
}


@pytest.fixture
async def app_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store, FakeClock(NOW)) as client:
        yield client


async def monitors(store: Store, team: str, *names: str) -> list[str]:
    made = [
        await store.monitors.create(
            await team_id(store, team), NewMonitor(name=n, host="db.example.com", port=5432), at=0
        )
        for n in names
    ]
    return [m.id for m in made]


def error_of(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]+)<', html)
    assert found is not None, f"no message by {field}"
    return found.group(1)


async def test_windows_are_made_through_the_form_and_listed_by_when_they_are(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    db, web, odd = await monitors(store, "acme", "db", "web", "<script>alert(1)</script>")
    form = await app_client.get("/windows/new")
    assert form.status_code == 200
    assert "UTC" in form.text
    assert 'type="datetime-local"' in form.text
    assert f'value="{db}"' in form.text  # every monitor of the team is offered
    r = await app_client.post("/windows/new", data={**ONCE, "monitorIds": [db, odd], "csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/windows")
    [made] = await store.windows.all(await team_id(store))
    assert (made.name, made.monitor_ids) == ("Database upgrade", (db, odd))
    assert made.schedule == Once(MARCH_1_10H, MARCH_1_10H + 150 * 60_000)  # read as UTC
    r = await app_client.post("/windows/new", data={**RECURRING, "csrf": csrf})
    assert r.status_code == 303
    r = await app_client.post(
        "/windows/new",
        data={
            **ONCE,
            "name": "Now",
            "startsAt": "2026-02-14 11:00",
            "csrf": csrf,
            "endsAt": "2026-02-14T13:00:00",
        },
    )
    assert r.status_code == 303
    r = await app_client.post(
        "/windows/new",
        data={
            **ONCE,
            "name": "Last month",
            "csrf": csrf,
            "monitorIds": [web],
            "startsAt": "2026-01-10T01:00",
            "endsAt": "2026-01-10T02:00",
        },
    )
    assert r.status_code == 303
    page = await app_client.get("/windows")
    assert page.status_code == 200
    names = re.findall(r"<tr>\s*<td>([^<]+)</td>", page.text)
    assert names == ["Now", "Sunday backups", "Database upgrade", "Last month"]
    rows = dict(zip(names, page.text.split("<tr>")[2:], strict=True))
    assert "active now" in rows["Now"]
    assert "upcoming" in rows["Sunday backups"]
    assert "upcoming" in rows["Database upgrade"]
    assert "past" in rows["Last month"]
    assert '<time datetime="2026-03-01T10:00:00.000Z">' in rows["Database upgrade"]
    assert '<time datetime="2026-03-01T12:30:00.000Z">' in rows["Database upgrade"]
    assert f'href="/monitors/{db}">db</a>' in rows["Database upgrade"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows["Database upgrade"]
    assert "<script>alert(1)</script>" not in page.text
    assert "every monitor" in rows["Sunday backups"]
    assert "FREQ=WEEKLY;BYDAY=SU" in rows["Sunday backups"]  # in the title, as typed
    assert "every Sunday at 02:00 (Europe/Berlin) for 90 min" in rows["Sunday backups"]
    # The next Sunday at 02:00 in Berlin (CET, UTC+1) is 01:00 UTC.
    assert '<time datetime="2026-02-15T01:00:00.000Z">' in rows["Sunday backups"]
    assert f'href="/monitors/{web}">web</a>' in rows["Last month"]


async def test_bad_input_is_shown_by_its_field_with_what_was_typed_kept(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    [db] = await monitors(store, "acme", "db")
    await make_key(store, "beta")
    [theirs] = await monitors(store, "beta", "theirs")
    r = await app_client.post(
        "/windows/new",
        data={**ONCE, "name": "", "endsAt": "2026-03-01T09:00", "monitorIds": [db], "csrf": csrf},
    )
    assert r.status_code == 400
    assert "at least 1 character" in error_of(r.text, "name")
    assert error_of(r.text, "endsAt") == "Ends (UTC): must be after startsAt"
    assert 'value="2026-03-01T10:00"' in r.text
    assert 'value="2026-03-01T09:00"' in r.text
    assert f'value="{db}" checked' in r.text
    assert 'aria-invalid="true"' in r.text
    r = await app_client.post(
        "/windows/new", data={**ONCE, "startsAt": "next tuesday", "endsAt": "", "csrf": csrf}
    )
    assert "YYYY-MM-DD HH:MM (UTC)" in error_of(r.text, "startsAt")
    assert "is required" in error_of(r.text, "endsAt")
    assert 'value="next tuesday"' in r.text
    r = await app_client.post(
        "/windows/new", data={**RECURRING, "timezone": "Mars/Olympus", "csrf": csrf}
    )
    assert r.status_code == 400
    assert "is not an IANA time zone" in error_of(r.text, "timezone")
    assert 'value="Mars/Olympus"' in r.text
    assert 'value="FREQ=WEEKLY;BYDAY=SU"' in r.text
    assert 'value="recurring" checked' in r.text
    for field, typed, message in (
        ("durationMinutes", "0", "greater than or equal to 1"),
        ("durationMinutes", "an hour", "whole number"),
        ("rrule", "FREQ=HOURLY", "FREQ must be DAILY, WEEKLY or MONTHLY"),
        ("startTime", "25:00", "HH:MM"),
    ):
        r = await app_client.post("/windows/new", data={**RECURRING, field: typed, "csrf": csrf})
        assert r.status_code == 400, field
        assert message in error_of(r.text, field), field
        assert f'value="{typed}"' in r.text
    r = await app_client.post(
        "/windows/new", data={**ONCE, "monitorIds": [db, theirs], "csrf": csrf}
    )
    assert r.status_code == 400
    assert f"unknown TCP monitor: {theirs}" in error_of(r.text, "monitorIds")
    r = await app_client.post("/windows/new", data={**ONCE, "type": "sometimes", "csrf": csrf})
    assert r.status_code == 400
    assert "does not match" in error_of(r.text, "type")
    assert await store.windows.all(await team_id(store)) == []


async def test_a_window_is_edited_and_deleted_through_the_forms(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    db, web = await monitors(store, "acme", "db", "web")
    acme = await team_id(store)
    made = await store.windows.create(
        acme,
        name="Upgrade",
        monitor_ids=[db],
        schedule=Once(MARCH_1_10H, MARCH_1_10H + H),
        at=0,
    )
    form = await app_client.get(f"/windows/{made.id}/edit")
    assert form.status_code == 200
    assert 'value="Upgrade"' in form.text
    assert 'value="2026-03-01T10:00"' in form.text
    assert 'value="2026-03-01T11:00"' in form.text
    assert f'value="{db}" checked' in form.text
    assert f'value="{web}">' in form.text  # offered, not chosen
    r = await app_client.post(
        f"/windows/{made.id}/edit", data={**RECURRING, "monitorIds": [web], "csrf": csrf}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/windows")
    [after] = await store.windows.all(acme)
    assert (after.id, after.name, after.monitor_ids) == (made.id, "Sunday backups", (web,))
    assert after.schedule == Recurring(
        "FREQ=WEEKLY;BYDAY=SU", "02:00", 90, "Europe/Berlin", "2026-02-01"
    )
    r = await app_client.post(
        f"/windows/{made.id}/edit", data={**RECURRING, "name": "", "csrf": csrf}
    )
    assert r.status_code == 400
    assert "at least 1 character" in error_of(r.text, "name")
    assert f'action="/windows/{made.id}/edit"' in r.text
    assert (await store.windows.all(acme))[0].name == "Sunday backups"
    r = await app_client.post(f"/windows/{made.id}/delete", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/windows")
    assert await store.windows.all(acme) == []
    assert "No maintenance windows" in (await app_client.get("/windows")).text


async def test_a_viewer_looks_but_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    acme = await team_id(store)
    made = await store.windows.create(
        acme, name="Upgrade", monitor_ids=[], schedule=Once(MARCH_1_10H, MARCH_1_10H + H), at=0
    )
    page = await app_client.get("/windows")
    assert page.status_code == 200
    assert "Upgrade" in page.text
    assert "/windows/new" not in page.text
    assert "/edit" not in page.text
    assert "/delete" not in page.text
    for path in ("/windows/new", f"/windows/{made.id}/edit"):
        r = await app_client.get(path)
        assert r.status_code == 403, path
    for path, data in (
        ("/windows/new", ONCE),
        (f"/windows/{made.id}/edit", {**ONCE, "name": "mine now"}),
        (f"/windows/{made.id}/delete", {}),
    ):
        r = await app_client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 403, path
        assert "Viewers only look" in r.text
    assert await store.windows.all(acme) == [made]


async def test_another_teams_window_is_404_and_a_forged_form_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    for path in ("/windows", "/windows/new", "/windows/mw_abc/edit"):
        r = await app_client.get(path)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={path}")
    csrf = await logged_in(app_client, store, "ada@example.com")
    await make_key(store, "beta")
    beta = await team_id(store, "beta")
    theirs = await store.windows.create(
        beta, name="Theirs", monitor_ids=[], schedule=Once(MARCH_1_10H, MARCH_1_10H + H), at=0
    )
    for path in (f"/windows/{theirs.id}/edit", "/windows/mw_nope/edit", "/windows/x%3C/edit"):
        r = await app_client.get(path)
        assert r.status_code == 404, path
        assert "no such maintenance window" in r.text
    for path in (f"/windows/{theirs.id}/edit", f"/windows/{theirs.id}/delete"):
        r = await app_client.post(path, data={**ONCE, "name": "mine now", "csrf": csrf})
        assert r.status_code == 404, path
    assert "Theirs" not in (await app_client.get("/windows")).text
    assert await store.windows.all(beta) == [theirs]
    acme = await team_id(store)
    mine = await store.windows.create(
        acme, name="Mine", monitor_ids=[], schedule=Once(MARCH_1_10H, MARCH_1_10H + H), at=0
    )
    for path in ("/windows/new", f"/windows/{mine.id}/edit", f"/windows/{mine.id}/delete"):
        for forged in ({"csrf": "forged"}, {}):
            r = await app_client.post(path, data={**ONCE, "name": "forged", **forged})
            assert r.status_code == 400, path
            assert "expired" in r.text
    assert await store.windows.all(acme) == [mine]


def test_times_keep_their_seconds_and_milliseconds_through_the_form() -> None:
    for ms, shown in (
        (MARCH_1_10H, "2026-03-01T10:00"),
        (MARCH_1_10H + 5_000, "2026-03-01T10:00:05"),
        (MARCH_1_10H + 5_007, "2026-03-01T10:00:05.007"),
    ):
        assert wall_time(ms) == shown
        assert as_rfc3339(shown) == rfc3339(ms)
    assert as_rfc3339("2026-03-01 10:00") == "2026-03-01T10:00:00.000Z"
    assert as_rfc3339("2026-03-01T10:00:00+02:00") == "2026-03-01T10:00:00+02:00"  # as typed
    for bad in ("tomorrow", "2026-02-30T10:00", "2026-03-01", "10:00"):
        assert as_rfc3339(bad) is None, bad
