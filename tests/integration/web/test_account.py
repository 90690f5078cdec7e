"""First run, login and logout, and the dashboard's front page (SPEC §10), in process
on both databases: the setup token works once, forms carry CSRF tokens, failed logins
are slowed, a session never authenticates /v1/, other teams' monitors never show."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import VALID
from tests.support.seeding import make_key
from upwatch import web
from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.security import hash_password
from upwatch.store import Store
from upwatch.users import Role

PASSWORD = "correct horse battery"


@pytest.fixture
async def browser(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), store, clock=FakeClock())
    web.install(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def form(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


async def add_user(store: Store, email: str, team: str = "acme", role: Role = Role.ADMIN) -> None:
    await make_key(store, team)  # makes the team if need be
    await store.users.create(
        team=team, email=email, role=role, password_hash=hash_password(PASSWORD), at=0
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await form(client, "/login")
    return await client.post(
        "/login", data={"csrf": token, "email": email, "password": password, "next": "/"}
    )


async def test_the_first_run_goes_to_setup_and_the_token_works_once(
    browser: httpx.AsyncClient, store: Store
) -> None:
    assert (await browser.get("/")).headers["location"] == "/setup"
    assert (await browser.get("/login")).headers["location"] == "/setup"
    token = await store.setup.issue(at=FakeClock().now_ms())
    assert token is not None
    csrf = await form(browser, "/setup")
    body = {
        "csrf": csrf,
        "token": "not-the-token",
        "email": "ada@example.com",
        "team": "acme",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    r = await browser.post("/setup", data=body)
    assert r.status_code == 400
    assert "Setup token is not valid" in r.text
    assert 'value="ada@example.com"' in r.text  # what was typed is kept
    assert PASSWORD not in r.text  # but never a password
    r = await browser.post("/setup", data={**body, "token": token, "password_again": "other"})
    assert r.status_code == 400
    assert 'id="password_again-error"' in r.text
    r = await browser.post("/setup", data={**body, "token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/")
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.lower() or "samesite=lax" in cookie.lower()
    assert (await browser.get("/")).status_code == 200
    r = await browser.post("/setup", data={**body, "token": token, "email": "eve@example.com"})
    assert r.headers["location"] == "/login"  # set up already
    assert await store.users.count() == 1


async def test_login_shows_only_the_teams_monitors_escaped(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    api = {"Authorization": f"Bearer {await make_key(store, 'acme')}"}
    other = {"Authorization": f"Bearer {await make_key(store, 'beta')}"}
    body = {**VALID, "name": "<script>alert(1)</script>"}
    assert (await browser.post("/v1/tcp-monitors", json=body, headers=api)).status_code == 201
    theirs = {**VALID, "name": "beta's secret"}
    assert (await browser.post("/v1/tcp-monitors", json=theirs, headers=other)).status_code == 201
    r = await login(browser, "ada@example.com")
    assert (r.status_code, r.headers["location"]) == (303, "/")
    page = await browser.get("/")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    assert "beta&#39;s secret" not in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    filtered = await browser.get("/", params={"state": "down", "q": "script"})
    assert "&lt;script&gt;" not in filtered.text  # unknown state so far: filtered out
    assert "No monitor matches." in filtered.text


async def test_a_session_never_authenticates_the_api(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    await login(browser, "ada@example.com")
    assert (await browser.get("/")).status_code == 200
    r = await browser.get("/v1/tcp-monitors")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"


async def test_a_wrong_password_then_too_many_are_slowed(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    for _ in range(5):
        r = await login(browser, "ada@example.com", "wrong password!")
        assert r.status_code == 400
        assert "Wrong email or password." in r.text
    r = await login(browser, "ada@example.com", "wrong password!")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    r = await login(browser, "ada@example.com")  # right, but inside the wait
    assert r.status_code == 429


async def test_forms_without_their_csrf_token_change_nothing(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    r = await browser.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 400
    assert "expired" in r.text
    assert "set-cookie" not in r.headers or "upwatch_session" not in r.headers["set-cookie"]
    await login(browser, "ada@example.com")
    r = await browser.post("/logout", data={"csrf": "forged"})
    assert r.status_code == 400
    assert (await browser.get("/")).status_code == 200  # still logged in
    csrf = csrf_of((await browser.get("/")).text)
    r = await browser.post("/logout", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert (await browser.get("/")).headers["location"] == "/login"


async def test_login_goes_only_to_paths_on_this_site(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    token = await form(browser, "/login")
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/", "/")):
        r = await browser.post(
            "/login",
            data={"csrf": token, "email": "ada@example.com", "password": PASSWORD, "next": target},
        )
        assert r.headers["location"] == expected


async def test_unknown_pages_are_html_and_unknown_api_paths_json(
    browser: httpx.AsyncClient,
) -> None:
    r = await browser.get("/no/such/page")
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (404, "text/html")
    r = await browser.get("/v1/no-such-thing")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")


async def test_pages_and_assets_are_sent_gzipped_to_browsers_that_take_it(
    browser: httpx.AsyncClient, store: Store
) -> None:
    await add_user(store, "ada@example.com")
    await login(browser, "ada@example.com")
    r = await browser.get("/", headers={"Accept-Encoding": "gzip"})
    assert len(r.content) > 1024, len(r.content)
    assert (r.headers["content-encoding"], r.headers["vary"]) == ("gzip", "Accept-Encoding")
    assert "<h1>Monitors</h1>" in r.text  # httpx decompresses
    plain = await browser.get("/", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    css = re.search(r'href="(/static/upwatch\.[0-9a-f]+\.css)"', plain.text)
    assert css is not None
    asset = await browser.get(css.group(1), headers={"Accept-Encoding": "gzip"})
    assert asset.headers["content-encoding"] == "gzip"
    assert ".monitors" in asset.text
