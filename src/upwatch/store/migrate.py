"""Apply Alembic migrations over an engine of ours."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from upwatch.store.engine import WRITE_OPTION

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "upwatch.store:migrations"
# Several `upwatch api` processes may start together: one migrates, the others wait.
PG_MIGRATION_LOCK_ID = 0x7570_7761_7463  # "upwatc"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_MIGRATION_LOCK_ID}
                )
            await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(alembic_config(connection), revision)
    after = MigrationContext.configure(connection).get_current_revision()
    if after != before:
        log.info("database schema migrated from %s to %s", before or "empty", after)


async def is_current(engine: AsyncEngine) -> bool:
    """Whether the database is at the newest revision (for --no-migrate)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as conn:
        current = await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )
    return current == head
