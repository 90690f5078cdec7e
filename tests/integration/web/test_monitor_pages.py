"""A monitor's pages and forms (SPEC §10), in process on both databases: the API's
validation messages next to the field with what was typed kept; viewers only look;
other teams' monitors are 404; a form without its CSRF token changes nothing."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.notifications import Channel, ChannelType
from upwatch.store import Store
from upwatch.users import Role


@pytest.fixture
async def app_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store) as client:
        yield client


FORM = {
    "name": "Primary database",
    "host": "db.example.com",
    "port": "5432",
    "timeoutMs": "5000",
    "intervalSeconds": "60",
    "ipFamily": "auto",
    "isEnabled": "on",
}


async def test_a_bad_port_is_shown_by_its_field_and_what_was_typed_is_kept(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    for port, message in (("70000", "less than or equal to 65535"), ("abc", "whole number")):
        r = await app_client.post("/monitors/new", data={**FORM, "port": port, "csrf": csrf})
        assert r.status_code == 400
        error = re.search(r'id="port-error">([^<]+)<', r.text)
        assert error is not None
        assert message in error.group(1)
        assert 'aria-invalid="true"' in r.text
        assert 'value="Primary database"' in r.text
        assert f'value="{port}"' in r.text
        # Numbers get a numeric keyboard: the attribute itself, not escaped text.
        assert re.search(r'name="port" [^>]*\binputmode="numeric"', r.text)
        assert "&#34;" not in r.text
    assert await store.monitors.list_for(1) == []


async def test_create_edit_and_delete_through_the_forms(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post("/monitors/new", data={**FORM, "csrf": csrf})
    assert r.status_code == 303
    path = r.headers["location"]
    monitor_id = path.rsplit("/", 1)[1]
    page = await app_client.get(path)
    assert page.status_code == 200
    assert "Primary database" in page.text
    assert "db.example.com:5432" in page.text
    assert page.text.count("<tr>") >= 4  # the availability periods
    r = await app_client.post(
        f"{path}/edit", data={**FORM, "name": "Replica", "port": "5433", "csrf": csrf}
    )
    assert r.status_code == 303
    [m] = await store.monitors.list_for(1)
    assert (m.id, m.name, m.port) == (monitor_id, "Replica", 5433)
    r = await app_client.post(
        f"{path}/edit", data={**FORM, "host": "127.0.0.1", "ipFamily": "ipv6", "csrf": csrf}
    )
    assert r.status_code == 400
    assert 'id="ipFamily-error"' in r.text
    r = await app_client.post(f"{path}/delete", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert await store.monitors.list_for(1) == []


async def test_a_viewer_looks_but_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "acme")
    made = await app_client.post(
        "/v1/tcp-monitors",
        json={"name": "db", "host": "db.example.com", "port": 5432},
        headers={"Authorization": f"Bearer {key}"},
    )
    monitor_id = made.json()["data"]["id"]
    csrf = await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    assert (await app_client.get(f"/monitors/{monitor_id}")).status_code == 200
    assert "/edit" not in (await app_client.get(f"/monitors/{monitor_id}")).text
    for path, data in (
        ("/monitors/new", FORM),
        (f"/monitors/{monitor_id}/edit", {**FORM, "name": "mine now"}),
        (f"/monitors/{monitor_id}/delete", {}),
    ):
        r = await app_client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 403, path
        assert "Viewers only look" in r.text
    [m] = await store.monitors.list_for(1)
    assert m.name == "db"


async def test_another_teams_monitor_is_404_and_a_forged_form_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "beta")
    made = await app_client.post(
        "/v1/tcp-monitors",
        json={"name": "theirs", "host": "db.example.com", "port": 5432},
        headers={"Authorization": f"Bearer {key}"},
    )
    theirs = made.json()["data"]["id"]
    csrf = await logged_in(app_client, store, "ada@example.com")
    for path in (f"/monitors/{theirs}", f"/monitors/{theirs}/edit", "/monitors/tcpm_nope"):
        assert (await app_client.get(path)).status_code == 404, path
    r = await app_client.post(f"/monitors/{theirs}/delete", data={"csrf": csrf})
    assert r.status_code == 404
    r = await app_client.post("/monitors/new", data={**FORM, "csrf": "forged"})
    assert r.status_code == 400
    assert "expired" in r.text
    assert len(await store.monitors.list_for(await _team(store, "acme"))) == 0


async def _team(store: Store, name: str) -> int:
    return next(t.id for t in await store.teams.all() if t.name == name)


async def _channel(store: Store, name: str, team: str = "acme", *, at: int = 0) -> Channel:
    await make_key(store, team)
    return await store.channels.create(
        await team_id(store, team),
        name=name,
        type=ChannelType.WEBHOOK,
        config={"url": "https://hooks.example.invalid/x"},
        is_enabled=True,
        at=at,  # the team's channels are listed oldest first
    )


def _ticked(html: str) -> list[str]:
    """The channels ticked in the form, in its order."""
    return re.findall(r'name="notificationChannelIds" value="(nch_\w+)" checked', html)


def _error(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]+)<', html)
    assert found is not None, html
    return found.group(1)


async def test_channels_and_confirmation_checks_are_chosen_in_the_form(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    ops, pager = await _channel(store, "ops"), await _channel(store, "pager", at=1)
    new = await app_client.get("/monitors/new")
    assert re.findall(r'name="notificationChannelIds" value="(nch_\w+)"', new.text) == [
        ops.id,
        pager.id,
    ]
    assert _ticked(new.text) == []
    assert re.search(r'name="confirmationChecks" [^>]*value="2"', new.text)
    chosen = {"notificationChannelIds": [pager.id, ops.id], "confirmationChecks": "3"}
    r = await app_client.post("/monitors/new", data={**FORM, **chosen, "csrf": csrf})
    assert r.status_code == 303, r.text
    path = r.headers["location"]
    [m] = await store.monitors.list_for(await team_id(store))
    assert (m.channel_ids, m.confirmation_checks) == ((pager.id, ops.id), 3)
    assert 'href="/channels/' + pager.id in (await app_client.get(path)).text

    edit = await app_client.get(f"{path}/edit")
    assert _ticked(edit.text) == [pager.id, ops.id]  # the monitor's order, kept on saving
    assert re.search(r'name="confirmationChecks" [^>]*value="3"', edit.text)
    assert f'href="{path}">Cancel</a>' in edit.text
    changed = {"notificationChannelIds": [ops.id], "confirmationChecks": "1"}
    r = await app_client.post(f"{path}/edit", data={**FORM, **changed, "csrf": csrf})
    assert r.status_code == 303, r.text
    [m] = await store.monitors.list_for(await team_id(store))
    assert (m.channel_ids, m.confirmation_checks) == ((ops.id,), 1)
    r = await app_client.post(f"{path}/edit", data={**FORM, "csrf": csrf})  # none ticked
    assert r.status_code == 303, r.text
    [m] = await store.monitors.list_for(await team_id(store))
    assert (m.channel_ids, m.confirmation_checks) == ((), 1)  # left empty: kept

    bad = {"notificationChannelIds": [pager.id], "confirmationChecks": "11"}
    r = await app_client.post("/monitors/new", data={**FORM, **bad, "csrf": csrf})
    assert r.status_code == 400
    assert "less than or equal to 10" in _error(r.text, "confirmationChecks")
    assert re.search(r'name="confirmationChecks" [^>]*value="11"', r.text)
    assert _ticked(r.text) == [pager.id]  # what was ticked is kept
    assert len(await store.monitors.list_for(await team_id(store))) == 1


async def test_another_teams_channel_forged_in_the_form_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    ours, theirs = await _channel(store, "ops"), await _channel(store, "their pager", "beta")
    key = await make_key(store, "acme")
    api = await app_client.post(
        "/v1/tcp-monitors",
        json={
            "name": "db",
            "host": "db.example.com",
            "port": 5432,
            "notificationChannelIds": [theirs.id],
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert api.status_code == 400
    [detail] = api.json()["error"]["details"]
    assert detail["field"] == "notificationChannelIds"

    forged = {"notificationChannelIds": [ours.id, theirs.id]}
    r = await app_client.post("/monitors/new", data={**FORM, **forged, "csrf": csrf})
    assert r.status_code == 400
    assert _error(r.text, "notificationChannelIds") == (
        f"Notification channels: {detail['message']}"
    )
    assert "their pager" not in r.text
    assert _ticked(r.text) == [ours.id]
    assert await store.monitors.list_for(await team_id(store)) == []

    made = await app_client.post(
        "/monitors/new", data={**FORM, "notificationChannelIds": [ours.id], "csrf": csrf}
    )
    path = made.headers["location"]
    r = await app_client.post(
        f"{path}/edit", data={**FORM, **forged, "name": "renamed", "csrf": csrf}
    )
    assert r.status_code == 400
    assert theirs.id in _error(r.text, "notificationChannelIds")
    [m] = await store.monitors.list_for(await team_id(store))
    assert (m.name, m.channel_ids) == ("Primary database", (ours.id,))
