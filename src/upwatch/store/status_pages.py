"""Status pages: a team's, by id; anyone's, by slug (the public page)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import bindparam, delete, insert, select, update

from upwatch.errors import SlugTaken, StatusPageNotFound
from upwatch.statuspages import StatusPage, new_status_page_id
from upwatch.store.connector import Connector, Row
from upwatch.store.tables import status_pages
from upwatch.store.windows import check_monitors

_P = status_pages.c
_COLUMNS = (
    _P.id,
    _P.team_id,
    _P.name,
    _P.slug,
    _P.monitor_ids,
    _P.is_public,
    _P.show_targets,
    _P.created_at,
    _P.updated_at,
)
_OWNED = (_P.id == bindparam("b_id")) & (_P.team_id == bindparam("b_team"))
_GET = select(*_COLUMNS).where(_OWNED)
_BY_SLUG = select(*_COLUMNS).where(_P.slug == bindparam("b_slug"))
_ALL = select(*_COLUMNS).where(_P.team_id == bindparam("b_team")).order_by(_P.created_at, _P.id)
_INSERT = insert(status_pages)
_CHANGE = (
    update(status_pages)
    .where(_OWNED)
    .values(
        name=bindparam("b_name"),
        slug=bindparam("b_slug"),
        monitor_ids=bindparam("b_monitor_ids"),
        is_public=bindparam("b_is_public"),
        show_targets=bindparam("b_show_targets"),
        updated_at=bindparam("b_at"),
    )
)
_SLUG_OWNER = select(_P.id).where(_P.slug == bindparam("b_slug"))
_DELETE = delete(status_pages).where(_OWNED)


def status_page(row: Row) -> StatusPage:
    return StatusPage(
        id=row.id,
        team_id=row.team_id,
        name=row.name,
        slug=row.slug,
        monitor_ids=tuple(row.monitor_ids),
        is_public=row.is_public,
        show_targets=row.show_targets,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@contextlib.asynccontextmanager
async def _unique_slug() -> AsyncIterator[None]:
    """Two writers taking the same slug at once: the database's unique index decides."""
    try:
        yield
    except (sqlite3.IntegrityError, asyncpg.UniqueViolationError) as exc:
        raise SlugTaken from exc


class StatusPages:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(
        self,
        team_id: int,
        *,
        name: str,
        slug: str,
        monitor_ids: Sequence[str],
        is_public: bool,
        show_targets: bool,
        at: int,
    ) -> StatusPage:
        made = StatusPage(
            new_status_page_id(),
            team_id,
            name,
            slug,
            tuple(monitor_ids),
            is_public,
            show_targets,
            at,
            at,
        )
        async with _unique_slug(), self._db.write() as tx:
            await check_monitors(tx, team_id, monitor_ids)
            if await tx.first(_SLUG_OWNER, {"b_slug": slug}) is not None:
                raise SlugTaken
            await tx.execute(
                _INSERT,
                {
                    "id": made.id,
                    "team_id": team_id,
                    "name": name,
                    "slug": slug,
                    "monitor_ids": list(monitor_ids),
                    "is_public": is_public,
                    "show_targets": show_targets,
                    "created_at": at,
                    "updated_at": at,
                },
            )
        return made

    async def all(self, team_id: int) -> list[StatusPage]:
        async with self._db.read() as reads:
            return [status_page(r) for r in await reads.rows(_ALL, {"b_team": team_id})]

    async def get(self, team_id: int, page_id: str) -> StatusPage:
        async with self._db.read() as reads:
            row = await reads.first(_GET, {"b_id": page_id, "b_team": team_id})
        if row is None:
            raise StatusPageNotFound
        return status_page(row)

    async def by_slug(self, slug: str) -> StatusPage | None:
        async with self._db.read() as reads:
            row = await reads.first(_BY_SLUG, {"b_slug": slug})
        return None if row is None else status_page(row)

    async def update(
        self,
        team_id: int,
        page_id: str,
        *,
        name: str | None = None,
        slug: str | None = None,
        monitor_ids: Sequence[str] | None = None,
        is_public: bool | None = None,
        show_targets: bool | None = None,
        at: int,
    ) -> StatusPage:
        async with _unique_slug(), self._db.write() as tx:
            row = await tx.first(_GET, {"b_id": page_id, "b_team": team_id})
            if row is None:
                raise StatusPageNotFound
            before = status_page(row)
            if monitor_ids is not None:
                await check_monitors(tx, team_id, monitor_ids)
            moved = slug is not None and slug != before.slug
            if moved and await tx.first(_SLUG_OWNER, {"b_slug": slug}) is not None:
                raise SlugTaken
            after = StatusPage(
                before.id,
                team_id,
                before.name if name is None else name,
                before.slug if slug is None else slug,
                before.monitor_ids if monitor_ids is None else tuple(monitor_ids),
                before.is_public if is_public is None else is_public,
                before.show_targets if show_targets is None else show_targets,
                before.created_at,
                at,
            )
            await tx.execute(
                _CHANGE,
                {
                    "b_id": page_id,
                    "b_team": team_id,
                    "b_name": after.name,
                    "b_slug": after.slug,
                    "b_monitor_ids": list(after.monitor_ids),
                    "b_is_public": after.is_public,
                    "b_show_targets": after.show_targets,
                    "b_at": at,
                },
            )
        return after

    async def delete(self, team_id: int, page_id: str) -> None:
        async with self._db.write() as tx:
            if await tx.execute(_DELETE, {"b_id": page_id, "b_team": team_id}) != 1:
                raise StatusPageNotFound
