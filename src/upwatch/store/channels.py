"""Notification channels, and which of them each monitor notifies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from upwatch.errors import ChannelNotFound, UnknownChannels
from upwatch.notifications import Channel, ChannelType, new_channel_id, new_webhook_secret
from upwatch.store.connector import Connector, Reads, Row, Tx
from upwatch.store.tables import monitor_channels, monitors, notification_channels

_C = notification_channels.c
_COLUMNS = (
    _C.id,
    _C.team_id,
    _C.name,
    _C.type,
    _C.config,
    _C.secret,
    _C.is_enabled,
    _C.disabled_reason,
    _C.created_at,
    _C.updated_at,
)
_OWNED = (_C.id == bindparam("b_id")) & (_C.team_id == bindparam("b_team"))
_GET = select(*_COLUMNS).where(_OWNED)
_LOCK = select(*_COLUMNS).where(_OWNED).with_for_update()
_ALL = select(*_COLUMNS).where(_C.team_id == bindparam("b_team")).order_by(_C.created_at, _C.id)
_INSERT = insert(notification_channels)
_CHANGE = (
    update(notification_channels)
    .where(_C.id == bindparam("b_id"))
    .values(
        name=bindparam("b_name"),
        config=bindparam("b_config"),
        is_enabled=bindparam("b_is_enabled"),
        disabled_reason=bindparam("b_disabled_reason"),
        secret=bindparam("b_secret"),
        updated_at=bindparam("b_at"),
    )
)
_DELETE = delete(notification_channels).where(_OWNED)
_DISABLE = (
    update(notification_channels)
    .where(_C.id == bindparam("b_id"))
    .values(is_enabled=False, disabled_reason=bindparam("b_reason"), updated_at=bindparam("b_at"))
)
_TEAMS_OF = select(_C.id).where(
    _C.team_id == bindparam("b_team"), _C.id.in_(bindparam("b_ids", expanding=True))
)
_UNLINK = delete(monitor_channels).where(monitor_channels.c.monitor_id == bindparam("b_monitor"))
_LINK = insert(monitor_channels)
_LINKS_OF = (
    select(monitor_channels.c.monitor_id, monitor_channels.c.channel_id)
    .where(monitor_channels.c.monitor_id.in_(bindparam("b_ids", expanding=True)))
    .order_by(monitor_channels.c.monitor_id, monitor_channels.c.position)
)
_LINKS_OF_TEAM = (
    select(monitor_channels.c.monitor_id, monitor_channels.c.channel_id)
    .join(monitors, monitors.c.id == monitor_channels.c.monitor_id)
    .where(monitors.c.team_id == bindparam("b_team"))
    .order_by(monitor_channels.c.monitor_id, monitor_channels.c.position)
)
_ENABLED_OF = (
    select(monitor_channels.c.monitor_id, *_COLUMNS)
    .join(notification_channels, _C.id == monitor_channels.c.channel_id)
    .where(
        monitor_channels.c.monitor_id.in_(bindparam("b_ids", expanding=True)),
        _C.is_enabled.is_(True),
    )
    .order_by(monitor_channels.c.monitor_id, monitor_channels.c.position)
)
_BY_IDS = select(*_COLUMNS).where(_C.id.in_(bindparam("b_ids", expanding=True)))


def channel(row: Row) -> Channel:
    return Channel(
        id=row.id,
        team_id=row.team_id,
        name=row.name,
        type=ChannelType(row.type),
        config=dict(row.config),
        secret=row.secret,
        is_enabled=row.is_enabled,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def link(tx: Tx, team_id: int, monitor_id: str, channel_ids: Sequence[str]) -> None:
    """Make ``channel_ids`` (of ``team_id``, in this order) the monitor's channels.
    Raises UnknownChannels, naming the ids that are not the team's."""
    if channel_ids:
        known = {r.id for r in await tx.rows(_TEAMS_OF, {"b_team": team_id, "b_ids": channel_ids})}
        unknown = [i for i in channel_ids if i not in known]
        if unknown:
            raise UnknownChannels(unknown)
    await tx.execute(_UNLINK, {"b_monitor": monitor_id})
    await tx.execute_many(
        _LINK,
        [
            {"monitor_id": monitor_id, "channel_id": c, "position": i}
            for i, c in enumerate(channel_ids)
        ],
    )


async def ids_of(reads: Reads, monitor_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = defaultdict(list)
    for r in await reads.rows(_LINKS_OF, {"b_ids": list(monitor_ids)}):
        found[r.monitor_id].append(r.channel_id)
    return {m: tuple(c) for m, c in found.items()}


async def ids_of_team(reads: Reads, team_id: int) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = defaultdict(list)
    for r in await reads.rows(_LINKS_OF_TEAM, {"b_team": team_id}):
        found[r.monitor_id].append(r.channel_id)
    return {m: tuple(c) for m, c in found.items()}


async def enabled_of(tx: Tx, monitor_ids: Sequence[str]) -> dict[str, list[Channel]]:
    found: dict[str, list[Channel]] = defaultdict(list)
    for r in await tx.rows(_ENABLED_OF, {"b_ids": list(monitor_ids)}):
        found[r.monitor_id].append(channel(r))
    return found


async def by_ids(reads: Reads, ids: Sequence[str]) -> dict[str, Channel]:
    return {r.id: channel(r) for r in await reads.rows(_BY_IDS, {"b_ids": list(ids)})}


async def disable(tx: Tx, channel_id: str, reason: str, *, at: int) -> None:
    await tx.execute(_DISABLE, {"b_id": channel_id, "b_reason": reason, "b_at": at})


class Channels:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(
        self,
        team_id: int,
        *,
        name: str,
        type: ChannelType,
        config: dict[str, Any],
        is_enabled: bool,
        at: int,
    ) -> Channel:
        created = Channel(
            id=new_channel_id(),
            team_id=team_id,
            name=name,
            type=type,
            config=config,
            secret=new_webhook_secret() if type is ChannelType.WEBHOOK else None,
            is_enabled=is_enabled,
            disabled_reason=None,
            created_at=at,
            updated_at=at,
        )
        async with self._db.write() as tx:
            await tx.execute(
                _INSERT,
                {
                    "id": created.id,
                    "team_id": team_id,
                    "name": name,
                    "type": type.value,
                    "config": config,
                    "secret": created.secret,
                    "is_enabled": is_enabled,
                    "disabled_reason": None,
                    "created_at": at,
                    "updated_at": at,
                },
            )
        return created

    async def all(self, team_id: int) -> list[Channel]:
        async with self._db.read() as reads:
            return [channel(r) for r in await reads.rows(_ALL, {"b_team": team_id})]

    async def get(self, team_id: int, channel_id: str) -> Channel:
        async with self._db.read() as reads:
            row = await reads.first(_GET, {"b_id": channel_id, "b_team": team_id})
        if row is None:
            raise ChannelNotFound
        return channel(row)

    async def update(
        self,
        team_id: int,
        channel_id: str,
        *,
        name: str | None,
        config: dict[str, Any] | None,
        is_enabled: bool | None,
        at: int,
        rotate_secret: bool = False,
    ) -> Channel:
        """Change what is given. Enabling a channel clears why upwatch had disabled it."""
        async with self._db.write() as tx:
            row = await tx.first(_LOCK, {"b_id": channel_id, "b_team": team_id})
            if row is None:
                raise ChannelNotFound
            before = channel(row)
            after = Channel(
                id=before.id,
                team_id=team_id,
                name=before.name if name is None else name,
                type=before.type,
                config=before.config if config is None else config,
                secret=new_webhook_secret()
                if rotate_secret and before.type is ChannelType.WEBHOOK
                else before.secret,
                is_enabled=before.is_enabled if is_enabled is None else is_enabled,
                disabled_reason=None if is_enabled else before.disabled_reason,
                created_at=before.created_at,
                updated_at=at,
            )
            await tx.execute(
                _CHANGE,
                {
                    "b_id": channel_id,
                    "b_name": after.name,
                    "b_config": after.config,
                    "b_is_enabled": after.is_enabled,
                    "b_disabled_reason": after.disabled_reason,
                    "b_secret": after.secret,
                    "b_at": at,
                },
            )
        return after

    async def delete(self, team_id: int, channel_id: str) -> None:
        """The channel goes, with its links to monitors and its deliveries (pending ones
        are dropped). Off the loop on SQLite: its links and deliveries are unbounded."""
        async with self._db.write(bulk=True) as tx:
            if await tx.execute(_DELETE, {"b_id": channel_id, "b_team": team_id}) != 1:
                raise ChannelNotFound
