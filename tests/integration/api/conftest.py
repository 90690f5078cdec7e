"""The ``api`` fixture: the app in process over a Store, with keys for team acme
(read-write, read-only, write-only) and for team beta."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Api
from tests.support.seeding import make_key
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.domain import SCOPE_READ, SCOPE_WRITE
from upwatch.store import Store


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    keys = {
        "rw": await make_key(store, "acme"),
        "ro": await make_key(store, "acme", (SCOPE_READ,)),
        "wo": await make_key(store, "acme", (SCOPE_WRITE,)),
        "other": await make_key(store, "beta"),
    }
    app = create_app(Settings(), store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        yield Api(client, store, keys)
