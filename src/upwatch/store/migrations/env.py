"""Alembic environment. upwatch passes its own connection (see upwatch.store.migrate).
Run standalone from a checkout (``alembic check``, ``alembic revision --autogenerate``;
pyproject.toml's ``[tool.alembic]`` is the configuration), it connects to
UPWATCH_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from upwatch.store.engine import open_engine
from upwatch.store.tables import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    engine = open_engine(os.environ.get("UPWATCH_DATABASE_URL", "sqlite:///./upwatch.db"))
    async with engine.begin() as conn:
        await conn.run_sync(run)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    asyncio.run(run_standalone())
