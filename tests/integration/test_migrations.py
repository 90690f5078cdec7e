"""Migrations that change stored data, run over a database an older upwatch wrote."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.support.databases import sqlite_url
from tests.support.seeding import make_key, team_id
from upwatch.domain import NewMonitor
from upwatch.sketch import Sketch
from upwatch.store import Store, open_engine, upgrade

HOUR = 3_600_000


def _sketch(*values: int) -> bytes:
    sketch = Sketch()
    sketch.add_all(values)
    return sketch.encode()


async def test_0010_gives_the_rollups_already_stored_their_median(tmp_path: Path) -> None:
    store = Store(open_engine(sqlite_url(tmp_path)), default_max_monitors=10)
    try:
        await upgrade(store.engine, "0009")  # the schema before rollups kept medians
        await make_key(store, "acme")
        made = await store.monitors.create(
            await team_id(store, "acme"), NewMonitor("db", "db.example.com", 5432), at=0
        )
        stored = [
            # start (hours), up, down, rt_min, rt_max, the up checks' times
            (0, 3, 0, 10, 30, (10, 20, 30)),
            (1, 4, 1, 40, 50, (40, 41, 45, 50)),
            (2, 0, 6, None, None, ()),  # down all hour: no timed check
        ]
        async with store.engine.begin() as conn:
            for hour, up, down, low, high, times in stored:
                await conn.execute(
                    text(
                        "INSERT INTO rollups (monitor_id, span, start, up, down, timeout,"
                        " rt_sum, rt_min, rt_max, sketch) VALUES"
                        " (:m, 3600, :start, :up, :down, 0, :sum, :low, :high, :sketch)"
                    ),
                    {
                        "m": made.id,
                        "start": hour * HOUR,
                        "up": up,
                        "down": down,
                        "sum": sum(times),
                        "low": low,
                        "high": high,
                        "sketch": _sketch(*times),
                    },
                )

        await upgrade(store.engine)

        async with store.engine.connect() as conn:
            got = (
                await conn.execute(text("SELECT rt_median FROM rollups ORDER BY start"))
            ).scalars()
            # Nearest rank: the 2nd of 3 and the 2nd of 4; below 50 ms a bucket is one value.
            assert list(got) == [20.0, 41.0, None]
    finally:
        await store.close()
