"""Teams: who owns monitors and keys, and how many monitors each may have."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ClauseElement

from upwatch.domain import Team
from upwatch.errors import TeamExists, TeamNotFound
from upwatch.store.connector import Connector, Row, Tx
from upwatch.store.tables import teams


def _insert_unless_named(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (name) DO NOTHING, in each dialect's own construct."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(teams)
        .values(
            name=bindparam("b_name"),
            max_monitors=bindparam("b_max"),
            monitor_count=0,
            created_at=bindparam("b_at"),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )


_DIALECTS = ("sqlite", "postgresql")
_CREATE: dict[str, ClauseElement] = {
    d: _insert_unless_named(d).returning(*teams.c) for d in _DIALECTS
}
_ENSURE: dict[str, ClauseElement] = {d: _insert_unless_named(d) for d in _DIALECTS}
_ID_BY_NAME = select(teams.c.id).where(teams.c.name == bindparam("b_name"))
_SET_MAX = (
    update(teams)
    .where(teams.c.name == bindparam("b_name"))
    .values(max_monitors=bindparam("b_max"))
    .returning(*teams.c)
)
_ALL = select(teams).order_by(teams.c.name)


def team(row: Row) -> Team:
    return Team(row.id, row.name, row.max_monitors, row.monitor_count, row.created_at)


async def ensure(tx: Tx, name: str, *, at: int) -> int:
    """The id of team ``name``, creating the team if need be, inside ``tx``."""
    await tx.execute(_ENSURE[tx.dialect], {"b_name": name, "b_max": None, "b_at": at})
    team_id = await tx.scalar(_ID_BY_NAME, {"b_name": name})
    assert team_id is not None
    return int(team_id)


class Teams:
    def __init__(self, db: Connector, *, default_max_monitors: int) -> None:
        self._db = db
        self._default_max = default_max_monitors

    async def create(self, name: str, max_monitors: int | None, *, at: int) -> Team:
        async with self._db.write() as tx:
            row = await tx.first(
                _CREATE[tx.dialect],
                {"b_name": name, "b_max": max_monitors, "b_at": at},
            )
        if row is None:
            raise TeamExists(f"team {name!r} already exists")
        return team(row)

    async def update(self, name: str, max_monitors: int | None) -> Team:
        async with self._db.write() as tx:
            row = await tx.first(_SET_MAX, {"b_name": name, "b_max": max_monitors})
        if row is None:
            raise TeamNotFound(f"no team named {name!r}")
        return team(row)

    async def all(self) -> list[Team]:
        async with self._db.read() as reads:
            return [team(r) for r in await reads.rows(_ALL)]

    def effective_limit(self, found: Team) -> int:
        return self._default_max if found.max_monitors is None else found.max_monitors
