"""Shared fixtures: a migrated Store on SQLite and, when UPWATCH_TEST_DATABASE_URL is
set, on PostgreSQL (under CI=true a missing PostgreSQL fails the run). Helpers live in
tests/support/."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvloop

from tests.support.databases import PG_ENV, fresh_store, pg_url, sqlite_url
from upwatch.clock import FakeClock
from upwatch.store import Store


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true" and not os.environ.get(PG_ENV):
        raise pytest.UsageError(f"CI=true but {PG_ENV} is not set: PostgreSQL tests must run")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Tests run on uvloop, as upwatch does; the probe's also on asyncio's loop."""
    if "test_probe_tcp" in item.nodeid:
        return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


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
