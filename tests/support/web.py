"""The web in process: an app with its pages, and a logged-in browser-like client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.support.seeding import make_key
from upwatch import web
from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.security import hash_password
from upwatch.store import Store
from upwatch.users import Role

PASSWORD = "correct horse battery"


@asynccontextmanager
async def site(store: Store, clock: FakeClock | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API's app with the web installed (cookies kept, as a browser)."""
    app = create_app(Settings(), store, clock=clock or FakeClock())
    web.install(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def logged_in(
    client: httpx.AsyncClient, store: Store, email: str, role: Role = Role.ADMIN, team: str = "acme"
) -> str:
    """Log in as a new user of ``team`` (made if need be); returns the session's CSRF
    token."""
    await make_key(store, team)
    await store.users.create(
        team=team, email=email, role=role, password_hash=hash_password(PASSWORD), at=0
    )
    token = csrf_of((await client.get("/login")).text)
    r = await client.post("/login", data={"csrf": token, "email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return csrf_of((await client.get("/")).text)
