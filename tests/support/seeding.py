"""Seeding a Store directly: teams and keys."""

from __future__ import annotations

from upwatch.domain import SCOPES
from upwatch.store import Store


async def make_key(
    store: Store, team: str = "acme", scopes: tuple[str, ...] = SCOPES, *, at: int = 0
) -> str:
    _, secret = await store.keys.create(team=team, name=None, scopes=scopes, at=at)
    return secret


async def team_id(store: Store, name: str = "acme") -> int:
    return next(t.id for t in await store.teams.all() if t.name == name)
