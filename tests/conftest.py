"""Shared fixtures: a migrated Store on SQLite and, when UPWATCH_TEST_DATABASE_URL is
set, on PostgreSQL (under CI=true a missing PostgreSQL fails the run)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvloop
from sqlalchemy import text

from upwatch.clock import FakeClock
from upwatch.domain import SCOPES
from upwatch.store import Store, open_engine, upgrade

PG_ENV = "UPWATCH_TEST_DATABASE_URL"
DEFAULT_LIMIT = 1000


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true" and not os.environ.get(PG_ENV):
        raise pytest.UsageError(f"CI=true but {PG_ENV} is not set: PostgreSQL tests must run")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Tests run on uvloop, as upwatch does; the probe's also on asyncio's loop."""
    if "test_probe_tcp" in item.nodeid:
        return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL tests skipped")
    return url


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'upwatch.db'}"


async def fresh_store(url: str, *, default_limit: int = DEFAULT_LIMIT) -> Store:
    store = Store(open_engine(url), default_max_monitors=default_limit)
    await upgrade(store.engine)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.execute(
                text("TRUNCATE check_results, monitors, api_keys, teams RESTART IDENTITY CASCADE")
            )
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_url(tmp_path) if request.param == "sqlite" else pg_url()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await fresh_store(database_url)
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def make_key(
    store: Store, team: str = "acme", scopes: tuple[str, ...] = SCOPES, *, at: int = 0
) -> str:
    _, secret = await store.keys.create(team=team, name=None, scopes=scopes, at=at)
    return secret


async def team_id(store: Store, name: str = "acme") -> int:
    return next(t.id for t in await store.teams.all() if t.name == name)
