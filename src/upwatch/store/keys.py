"""API keys: created with a secret shown once, authenticated by hash, revoked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import bindparam, insert, select, update

from upwatch import security
from upwatch.domain import ApiKey, Principal
from upwatch.errors import DatabaseUnavailable, KeyNotFound
from upwatch.store import teams as team_rows
from upwatch.store.connector import Connector, Row
from upwatch.store.tables import api_keys, teams

log = logging.getLogger(__name__)

# A key's last use is written at most this often: a write per request would
# serialise every read on SQLite.
LAST_USED_GRANULARITY_MS = 60_000
TOUCH_WAIT_S = 0.1

_KEYS = (
    select(
        api_keys.c.id,
        teams.c.name.label("team"),
        api_keys.c.name,
        api_keys.c.scopes,
        api_keys.c.prefix,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
        api_keys.c.revoked_at,
    )
    .join(teams, teams.c.id == api_keys.c.team_id)
    .order_by(api_keys.c.created_at, api_keys.c.id)
)
_ALL = _KEYS
_OF_TEAM = _KEYS.where(teams.c.name == bindparam("b_team"))
_BY_ID = _KEYS.where(api_keys.c.id == bindparam("b_id"))
_INSERT = insert(api_keys)
_REVOKE = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("b_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("b_at"))
)
_AUTHENTICATE = select(
    api_keys.c.id, api_keys.c.team_id, api_keys.c.scopes, api_keys.c.last_used_at
).where(api_keys.c.key_hash == bindparam("b_hash"), api_keys.c.revoked_at.is_(None))
_TOUCH = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("b_id"),
        api_keys.c.last_used_at.is_(None) | (api_keys.c.last_used_at <= bindparam("b_stale")),
    )
    .values(last_used_at=bindparam("b_at"))
)


def key(row: Row) -> ApiKey:
    return ApiKey(
        id=row.id,
        team=row.team,
        name=row.name,
        scopes=tuple(row.scopes.split()),
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class Keys:
    def __init__(self, db: Connector) -> None:
        self._db = db
        self._touching: dict[str, asyncio.Task[None]] = {}  # key id -> last-used write

    async def close(self) -> None:
        for task in list(self._touching.values()):
            task.cancel()
        await asyncio.gather(*self._touching.values(), return_exceptions=True)

    async def create(
        self, *, team: str, name: str | None, scopes: Sequence[str], at: int
    ) -> tuple[ApiKey, str]:
        """A new key for ``team`` (created if need be). Returns the key and its secret:
        the secret exists only in this return value; the database keeps its hash."""
        secret = security.new_key()
        created = ApiKey(
            id=security.new_key_id(),
            team=team,
            name=name,
            scopes=tuple(scopes),
            prefix=security.visible_prefix(secret),
            created_at=at,
            last_used_at=None,
            revoked_at=None,
        )
        async with self._db.write() as tx:
            team_id = await team_rows.ensure(tx, team, at=at)
            await tx.execute(
                _INSERT,
                {
                    "id": created.id,
                    "team_id": team_id,
                    "name": name,
                    "key_hash": security.hash_key(secret),
                    "prefix": created.prefix,
                    "scopes": " ".join(scopes),
                    "created_at": at,
                },
            )
        return created, secret

    async def all(self, team: str | None = None) -> list[ApiKey]:
        async with self._db.read() as reads:
            if team is None:
                rows = await reads.rows(_ALL)
            else:
                rows = await reads.rows(_OF_TEAM, {"b_team": team})
        return [key(r) for r in rows]

    async def revoke(self, key_id: str, *, at: int) -> ApiKey:
        async with self._db.write() as tx:
            await tx.execute(_REVOKE, {"b_id": key_id, "b_at": at})
            row = await tx.first(_BY_ID, {"b_id": key_id})
        if row is None:
            raise KeyNotFound(f"no API key with id {key_id!r}")
        return key(row)

    async def authenticate(self, key_hash: str, *, at: int) -> Principal | None:
        """The principal for an unrevoked key with this hash, or None. Read every time
        (no cache), so revocations and new keys take effect at once."""
        async with self._db.read() as reads:
            row = await reads.first(_AUTHENTICATE, {"b_hash": key_hash})
        if row is None:
            return None
        if row.last_used_at is None or at - row.last_used_at >= LAST_USED_GRANULARITY_MS:
            await self._touch(row.id, at)
        return Principal(row.id, row.team_id, frozenset(row.scopes.split()), row.last_used_at)

    async def _touch(self, key_id: str, at: int) -> None:
        """Record the key's use. Bookkeeping only: the request waits for it briefly (it
        takes a millisecond), never for a busy database, which would make every read
        wait for the write lock; the write goes on in the background, one per key."""
        task = self._touching.get(key_id)
        if task is None:
            task = asyncio.create_task(self._write_last_used(key_id, at))
            self._touching[key_id] = task
            task.add_done_callback(lambda _: self._touching.pop(key_id, None))
        await asyncio.wait([task], timeout=TOUCH_WAIT_S)

    async def _write_last_used(self, key_id: str, at: int) -> None:
        try:
            async with self._db.write() as tx:
                await tx.execute(
                    _TOUCH, {"b_id": key_id, "b_at": at, "b_stale": at - LAST_USED_GRANULARITY_MS}
                )
        except DatabaseUnavailable as exc:
            log.warning("could not record the use of key %s: %s", key_id, exc)
