"""The API keys page (SPEC §10), in process on both databases: a new key is shown
once and works; revoking stops it; viewers and other teams change nothing."""

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


async def test_a_new_key_is_shown_once_works_and_can_be_revoked(
    app_client: httpx.AsyncClient,
    store: Store,
) -> None:
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post(
        "/keys", data={"csrf": csrf, "name": "ci", "scopes": ["tcp-monitors:read"]}
    )
    assert r.status_code == 201
    secret = re.search(r'<code class="secret">([^<]+)</code>', r.text)
    assert secret is not None
    key = secret.group(1)
    assert (r.headers["cache-control"], r.headers.get("x-frame-options")) == (
        "private, no-store",
        "DENY",
    )
    listing = await app_client.get("/keys")
    assert key not in listing.text  # never shown again
    assert ">ci<" in listing.text
    api = {"Authorization": f"Bearer {key}"}
    assert (await app_client.get("/v1/tcp-monitors", headers=api)).status_code == 200
    assert (
        await app_client.post("/v1/tcp-monitors", json={}, headers=api)
    ).status_code == 403  # read scope only
    made = next(k for k in await store.keys.all("acme") if k.name == "ci")
    assert f'action="/keys/{made.id}/revoke"' in listing.text
    r = await app_client.post(f"/keys/{made.id}/revoke", data={"csrf": csrf})
    assert r.status_code == 303
    assert (await app_client.get("/v1/tcp-monitors", headers=api)).status_code == 401


async def test_bad_key_forms_viewers_and_other_teams_change_nothing(
    app_client: httpx.AsyncClient,
    store: Store,
) -> None:
    theirs = await make_key(store, "beta")
    beta_key = next(k for k in await store.keys.all("beta"))
    csrf = await logged_in(app_client, store, "ada@example.com")
    r = await app_client.post("/keys", data={"csrf": csrf, "name": "x", "scopes": ["root"]})
    assert r.status_code == 400
    assert 'id="scopes-error"' in r.text
    r = await app_client.post(f"/keys/{beta_key.id}/revoke", data={"csrf": csrf})
    assert r.status_code == 404
    headers = {"Authorization": f"Bearer {theirs}"}
    assert (await app_client.get("/v1/tcp-monitors", headers=headers)).status_code == 200
    before = len(await store.keys.all("acme"))
    r = await app_client.post("/keys", data={"csrf": "forged", "scopes": ["tcp-monitors:read"]})
    assert r.status_code == 400
    assert len(await store.keys.all("acme")) == before


async def test_a_viewer_sees_keys_but_cannot_make_or_revoke_them(
    app_client: httpx.AsyncClient,
    store: Store,
) -> None:
    csrf = await logged_in(app_client, store, "vic@example.com", Role.VIEWER)
    mine = next(k for k in await store.keys.all("acme"))
    page = await app_client.get("/keys")
    assert page.status_code == 200
    assert "Create the key" not in page.text
    assert "Revoke" not in page.text
    r = await app_client.post("/keys", data={"csrf": csrf, "scopes": ["tcp-monitors:read"]})
    assert r.status_code == 403
    r = await app_client.post(f"/keys/{mine.id}/revoke", data={"csrf": csrf})
    assert r.status_code == 403
    assert (await store.keys.all("acme"))[0].revoked_at is None
