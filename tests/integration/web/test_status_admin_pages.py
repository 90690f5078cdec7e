"""The team's status pages, managed in the browser (SPEC §10), in process on both
databases: the API's validation messages next to the field with what was typed kept;
a slug is the installation's, a monitor must be the team's; the public page follows a
change at once; viewers only look; other teams' pages are 404; a forged form changes
nothing; names are escaped."""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.seeding import make_key, team_id
from tests.support.web import logged_in, site
from upwatch.store import Store
from upwatch.users import Role


@pytest.fixture
async def app_client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with site(store) as client:
        yield client


FORM = {"name": "Acme status", "slug": "acme", "isPublic": "on"}


async def monitor(client: httpx.AsyncClient, key: str, name: str, port: int = 5432) -> str:
    body = {"name": name, "host": "db.example.com", "port": port}
    r = await client.post("/v1/tcp-monitors", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    made: str = r.json()["data"]["id"]
    return made


async def api_page(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> str:
    r = await client.post("/v1/status-pages", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    made: str = r.json()["data"]["id"]
    return made


def error_of(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]+)<', html)
    assert found is not None, html
    return found.group(1)


def checked(html: str) -> list[str]:
    """The monitors ticked on a form, in the order shown."""
    return re.findall(r'name="monitorIds" value="([^"]+)" checked', html)


async def test_create_edit_and_delete_through_the_forms(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "acme")
    db, www = await monitor(app_client, key, "db"), await monitor(app_client, key, "www", 443)
    csrf = await logged_in(app_client, store, "ada@example.com")
    assert "No status pages yet" in (await app_client.get("/status-pages")).text
    form = await app_client.get("/status-pages/new")
    assert form.status_code == 200
    assert f'value="{db}"' in form.text
    assert f'value="{www}"' in form.text
    assert 'name="isPublic" checked' in form.text  # public unless unticked
    assert 'autocapitalize="none"' in form.text  # attributes are markup, not escaped text
    r = await app_client.post(
        "/status-pages/new", data={**FORM, "monitorIds": [www, db], "csrf": csrf}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/status-pages")
    team = await team_id(store, "acme")
    [made] = await store.status_pages.all(team)
    assert (made.name, made.slug, made.monitor_ids) == ("Acme status", "acme", (www, db))
    assert (made.is_public, made.show_targets) == (True, False)
    listing = await app_client.get("/status-pages")
    assert '<a href="/status/acme">/status/acme</a>' in listing.text
    assert f'href="/status-pages/{made.id}/edit"' in listing.text
    assert '<td class="num">2</td>' in listing.text
    assert "Acme status" in (await app_client.get("/status/acme")).text

    edit = await app_client.get(f"/status-pages/{made.id}/edit")
    assert checked(edit.text) == [www, db]  # the page's order, kept by saving as it is
    assert 'value="Acme status"' in edit.text
    r = await app_client.post(
        f"/status-pages/{made.id}/edit",
        data={"name": "Acme", "slug": "acme-2", "monitorIds": [db], "showTargets": "on"},
    )
    assert r.status_code == 400  # no CSRF token
    r = await app_client.post(
        f"/status-pages/{made.id}/edit",
        data={
            "name": "Acme",
            "slug": "acme-2",
            "monitorIds": [db],
            "showTargets": "on",
            "csrf": csrf,
        },
    )
    assert (r.status_code, r.headers["location"]) == (303, "/status-pages")
    [after] = await store.status_pages.all(team)
    assert (after.name, after.slug, after.monitor_ids) == ("Acme", "acme-2", (db,))
    assert (after.is_public, after.show_targets) == (False, True)  # unticked, ticked
    listing = await app_client.get("/status-pages")
    assert "your team only (private)" in listing.text
    assert 'href="/status/acme-2"' in listing.text  # a private page is there for the team
    assert (await app_client.get("/status/acme-2")).status_code == 200

    r = await app_client.post(f"/status-pages/{made.id}/delete", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/status-pages")
    assert await store.status_pages.all(team) == []
    assert (await app_client.get(f"/status-pages/{made.id}/edit")).status_code == 404


async def _as_stranger(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """``path`` without the session cookie, which is kept for the next request."""
    kept = httpx.Cookies(client.cookies)
    client.cookies.clear()
    try:
        return await client.get(path)
    finally:
        client.cookies = kept


async def test_the_public_page_follows_a_change_at_once(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post("/status-pages/new", data={**FORM, "slug": "soon", "csrf": csrf})
    assert r.status_code == 303
    [made] = await store.status_pages.all(await team_id(store, "acme"))
    edit = f"/status-pages/{made.id}/edit"
    assert "Acme status" in (await app_client.get("/status/soon")).text  # cached now
    assert (await app_client.get("/status/later")).status_code == 404  # cached as a 404
    changed = {**FORM, "name": "Renamed", "slug": "soon", "csrf": csrf}
    assert (await app_client.post(edit, data=changed)).status_code == 303
    assert "Renamed" in (await app_client.get("/status/soon")).text
    assert (await app_client.get("/status/soon.json")).json()["name"] == "Renamed"
    moved = {**changed, "slug": "later"}
    assert (await app_client.post(edit, data=moved)).status_code == 303
    assert (await app_client.get("/status/soon")).status_code == 404
    assert "Renamed" in (await app_client.get("/status/later")).text
    hidden = {k: v for k, v in moved.items() if k != "isPublic"}
    assert (await app_client.post(edit, data=hidden)).status_code == 303
    assert (await _as_stranger(app_client, "/status/later")).status_code == 404
    mine = await app_client.get("/status/later")  # still there for the team, uncached
    assert (mine.status_code, mine.headers["cache-control"]) == (200, "private, no-store")
    assert (await app_client.post(edit, data=moved)).status_code == 303
    assert (await app_client.get("/status/later")).status_code == 200
    r = await app_client.post(f"/status-pages/{made.id}/delete", data={"csrf": csrf})
    assert r.status_code == 303
    assert (await app_client.get("/status/later.json")).status_code == 404


async def test_bad_input_is_shown_by_its_field_and_what_was_typed_is_kept(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "acme")
    db = await monitor(app_client, key, "db")
    beta = await make_key(store, "beta")
    theirs = await monitor(app_client, beta, "their db")
    await api_page(app_client, beta, {"name": "Beta", "slug": "taken"})
    csrf = await logged_in(app_client, store, "ada@example.com")
    form = (await app_client.get("/status-pages/new")).text
    assert theirs not in form
    assert "their db" not in form

    typed = {**FORM, "name": "Kept name", "monitorIds": [db], "csrf": csrf}
    for slug, message in (
        ("Bad Slug!", "should match pattern"),
        ("ab", "should match pattern"),
        ("taken", "is already taken"),  # by another team: slugs are the installation's
    ):
        r = await app_client.post("/status-pages/new", data={**typed, "slug": slug})
        assert r.status_code == 400, slug
        assert message in error_of(r.text, "slug"), slug
        assert 'aria-invalid="true" aria-describedby="slug-error slug-hint"' in r.text
        assert 'value="Kept name"' in r.text
        assert f'value="{slug}"' in r.text
        assert checked(r.text) == [db]
    r = await app_client.post("/status-pages/new", data={**typed, "name": ""})
    assert r.status_code == 400
    assert "at least 1 character" in error_of(r.text, "name")
    assert 'value="acme"' in r.text
    # A forged form cannot put another team's monitor on a page.
    r = await app_client.post("/status-pages/new", data={**typed, "monitorIds": [db, theirs]})
    assert r.status_code == 400
    assert error_of(r.text, "monitorIds") == f"Monitors: unknown TCP monitor: {theirs}"
    assert checked(r.text) == [db]
    r = await app_client.post("/status-pages/new", data={**typed, "monitorIds": [db, db]})
    assert error_of(r.text, "monitorIds") == "Monitors: must not repeat an id"
    assert await store.status_pages.all(await team_id(store, "acme")) == []

    r = await app_client.post("/status-pages/new", data=typed)
    assert r.status_code == 303
    [made] = await store.status_pages.all(await team_id(store, "acme"))
    edit = f"/status-pages/{made.id}/edit"
    r = await app_client.post(edit, data={**typed, "slug": "taken"})
    assert r.status_code == 400
    assert error_of(r.text, "slug") == "Slug: is already taken"
    r = await app_client.post(edit, data={**typed, "monitorIds": [theirs]})
    assert r.status_code == 400
    assert "unknown TCP monitor" in error_of(r.text, "monitorIds")
    assert (await store.status_pages.all(await team_id(store, "acme"))) == [made]


async def test_a_viewer_looks_but_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "acme")
    page_id = await api_page(app_client, key, {"name": "Ours", "slug": "ours"})
    csrf = await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    listing = await app_client.get("/status-pages")
    assert listing.status_code == 200
    assert "Ours" in listing.text
    assert 'href="/status/ours"' in listing.text
    assert "New status page" not in listing.text
    assert "/edit" not in listing.text
    for path in ("/status-pages/new", f"/status-pages/{page_id}/edit"):
        assert (await app_client.get(path)).status_code == 403, path
    for path, data in (
        ("/status-pages/new", {**FORM, "slug": "mine"}),
        (f"/status-pages/{page_id}/edit", {**FORM, "name": "mine now"}),
        (f"/status-pages/{page_id}/delete", {}),
    ):
        r = await app_client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 403, path
        assert "Viewers only look" in r.text
    [p] = await store.status_pages.all(await team_id(store, "acme"))
    assert (p.id, p.name, p.slug) == (page_id, "Ours", "ours")


async def test_another_teams_page_is_404_and_a_forged_form_changes_nothing(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    beta = await make_key(store, "beta")
    theirs = await api_page(app_client, beta, {"name": "Theirs", "slug": "theirs"})
    csrf = await logged_in(app_client, store, "ada@example.com")
    assert "Theirs" not in (await app_client.get("/status-pages")).text
    for path in (f"/status-pages/{theirs}/edit", "/status-pages/sp_nope/edit", "/status-pages/x"):
        assert (await app_client.get(path)).status_code == 404, path
    for path, data in (
        (f"/status-pages/{theirs}/edit", {**FORM, "name": "ours now"}),
        (f"/status-pages/{theirs}/delete", {}),
    ):
        r = await app_client.post(path, data={**data, "csrf": csrf})
        assert r.status_code == 404, path
        assert "There is no such status page in your team." in r.text
    for forged in ({}, {"csrf": "forged"}):
        r = await app_client.post("/status-pages/new", data={**FORM, **forged})
        assert r.status_code == 400
        assert "This form has expired" in r.text
    [p] = await store.status_pages.all(await team_id(store, "beta"))
    assert (p.id, p.name) == (theirs, "Theirs")
    assert await store.status_pages.all(await team_id(store, "acme")) == []


async def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    for method, path in (
        ("GET", "/status-pages"),
        ("GET", "/status-pages/new"),
        ("POST", "/status-pages/new"),
        ("GET", "/status-pages/sp_x/edit"),
        ("POST", "/status-pages/sp_x/delete"),
    ):
        r = await app_client.request(method, path)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={path}"), path


async def test_a_page_named_like_markup_is_shown_as_text(
    app_client: httpx.AsyncClient, store: Store
) -> None:
    key = await make_key(store, "acme")
    await monitor(app_client, key, '<img src=x onerror="alert(1)">')
    page_id = await api_page(app_client, key, {"name": "<script>alert(1)</script>", "slug": "x-1"})
    await logged_in(app_client, store, "ada@example.com")
    for path in ("/status-pages", f"/status-pages/{page_id}/edit"):
        html = (await app_client.get(path)).text
        assert "<script>alert(1)" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    form = (await app_client.get("/status-pages/new")).text
    assert "<img src=x" not in form
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in form
