"""A monitor's pages and forms (SPEC §10), in process on both databases: the API's
validation messages next to the field with what was typed kept; viewers only look;
other teams' monitors are 404; a form without its CSRF token changes nothing."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.seeding import make_key
from tests.support.web import logged_in, site
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
