"""The databases tests run on: SQLite in a temporary directory and, when
UPWATCH_TEST_DATABASE_URL is set, PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from upwatch.store import Store, open_engine, upgrade

PG_ENV = "UPWATCH_TEST_DATABASE_URL"
DEFAULT_LIMIT = 1000
# Every table, emptied between PostgreSQL tests (SQLite gets a new file each time).
TABLES = (
    "incidents",
    "check_results",
    "monitors",
    "api_keys",
    "teams",
    "rollup_pending",
    "login_failures",
    "setup_tokens",
)


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
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return store
