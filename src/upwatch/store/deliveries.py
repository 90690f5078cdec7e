"""The deliveries outbox: one row per notification and channel, written in the
transaction of the incident change that causes it; claimed by a sender as checks are
claimed by a worker (the claim moves ``next_attempt_at`` on by a lease, so a process
that dies mid-send leaves the delivery to another after the lease: at least once, with
the same ``webhook-id``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from upwatch.errors import ChannelNotFound
from upwatch.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    Event,
    new_delivery_id,
    webhook_payload,
)
from upwatch.store import channels as channel_rows
from upwatch.store.connector import Connector, Row, Tx
from upwatch.store.tables import deliveries, notification_channels

_D = deliveries.c
_COLUMNS = (
    _D.id,
    _D.channel_id,
    _D.event,
    _D.incident_id,
    _D.monitor_id,
    _D.payload,
    _D.status,
    _D.attempts,
    _D.next_attempt_at,
    _D.last_attempt_at,
    _D.last_error,
    _D.created_at,
    _D.delivered_at,
)
_INSERT = insert(deliveries)
_DUE = (
    select(*_COLUMNS)
    .where(_D.status == DeliveryStatus.PENDING.value, _D.next_attempt_at <= bindparam("b_at"))
    .order_by(_D.next_attempt_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)  # SQLite: nothing (its writers take turns)
)
_LEASE = (
    update(deliveries)
    .where(_D.id == bindparam("b_id"))
    .values(next_attempt_at=bindparam("b_until"))
)
_DONE = (
    update(deliveries)
    .where(_D.id == bindparam("b_id"), _D.status == DeliveryStatus.PENDING.value)
    .values(
        status=bindparam("b_status"),
        attempts=_D.attempts + 1,
        last_attempt_at=bindparam("b_at"),
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
        delivered_at=bindparam("b_delivered_at"),
    )
)
_GET = select(*_COLUMNS).where(_D.id == bindparam("b_id"))
_OF_CHANNEL = (
    select(*_COLUMNS)
    .join(notification_channels, notification_channels.c.id == _D.channel_id)
    .where(
        _D.channel_id == bindparam("b_channel"),
        notification_channels.c.team_id == bindparam("b_team"),
    )
    .order_by(_D.created_at.desc(), _D.id.desc())
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
_COUNT_OF_CHANNEL = select(func.count()).where(_D.channel_id == bindparam("b_channel"))


def delivery(row: Row) -> Delivery:
    return Delivery(
        id=row.id,
        channel_id=row.channel_id,
        event=Event(row.event),
        incident_id=row.incident_id,
        monitor_id=row.monitor_id,
        payload=dict(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell a monitor's channels: the event and the API objects it is about."""

    monitor_id: str
    incident_id: str | None
    event: Event
    data: dict[str, Any]  # {"incident": {...}, "monitor": {...}}


async def enqueue(tx: Tx, team_id: int, notices: Sequence[Notice], *, at: int) -> int:
    """One pending delivery per notice and enabled channel of its monitor, inside ``tx``.
    Returns how many."""
    if not notices:
        return 0
    by_monitor = await channel_rows.enabled_of(tx, sorted({n.monitor_id for n in notices}))
    rows = [
        _row(team_id, c, n.event, n.incident_id, n.monitor_id, n.data, at)
        for n in notices
        for c in by_monitor.get(n.monitor_id, [])
    ]
    await tx.execute_many(_INSERT, rows)
    return len(rows)


def _row(
    team_id: int,
    c: Channel,
    event: Event,
    incident_id: str | None,
    monitor_id: str | None,
    data: dict[str, Any],
    at: int,
) -> dict[str, Any]:
    return {
        "id": new_delivery_id(),
        "team_id": team_id,
        "channel_id": c.id,
        "event": event.value,
        "incident_id": incident_id,
        "monitor_id": monitor_id,
        "payload": webhook_payload(event, at, data),
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": at,
        "last_attempt_at": None,
        "last_error": None,
        "created_at": at,
        "delivered_at": None,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result: delivered, or an error and when to try again (None: never,
    the delivery has failed); ``disable`` says why the channel must be disabled."""

    delivered: bool
    error: str | None = None
    retry_at: int | None = None
    disable: str | None = None


class Deliveries:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def claim(self, *, at: int, limit: int, lease_ms: int) -> list[tuple[Delivery, Channel]]:
        """Up to ``limit`` pending deliveries due at ``at``, each with its channel, leased
        for ``lease_ms``: no other sender sees them until then."""
        async with self._db.write(bulk=True) as tx:
            due = [delivery(r) for r in await tx.rows(_DUE, {"b_at": at, "b_limit": limit})]
            if not due:
                return []
            await tx.execute_many(_LEASE, [{"b_id": d.id, "b_until": at + lease_ms} for d in due])
            found = await channel_rows.by_ids(tx, sorted({d.channel_id for d in due}))
        return [(d, found[d.channel_id]) for d in due if d.channel_id in found]

    async def record(self, d: Delivery, outcome: Outcome, *, at: int) -> Delivery:
        """Write one attempt's outcome; returns the delivery as it now is."""
        if outcome.delivered:
            status, next_at = DeliveryStatus.DELIVERED, d.next_attempt_at
        elif outcome.retry_at is not None:
            status, next_at = DeliveryStatus.PENDING, outcome.retry_at
        else:
            status, next_at = DeliveryStatus.FAILED, d.next_attempt_at
        async with self._db.write() as tx:
            await tx.execute(
                _DONE,
                {
                    "b_id": d.id,
                    "b_status": status.value,
                    "b_at": at,
                    "b_error": outcome.error,
                    "b_next": next_at,
                    "b_delivered_at": at if outcome.delivered else None,
                },
            )
            if outcome.disable is not None:
                await channel_rows.disable(tx, d.channel_id, outcome.disable, at=at)
            row = await tx.first(_GET, {"b_id": d.id})
        assert row is not None
        return delivery(row)

    async def of_channel(
        self, team_id: int, channel_id: str, *, limit: int, offset: int
    ) -> tuple[list[Delivery], int]:
        async with self._db.read() as reads:
            rows = await reads.rows(
                _OF_CHANNEL,
                {"b_channel": channel_id, "b_team": team_id, "b_limit": limit, "b_offset": offset},
            )
            total = await reads.scalar(_COUNT_OF_CHANNEL, {"b_channel": channel_id})
        return [delivery(r) for r in rows], int(total)

    async def create_test(self, c: Channel, *, at: int, lease_ms: int) -> Delivery:
        """A ``test`` delivery for channel ``c``, pending and leased for ``lease_ms`` to
        the caller, who sends it at once (no sender claims it meanwhile)."""
        row = _row(c.team_id, c, Event.TEST, None, None, {"channel": _channel_brief(c)}, at)
        row["next_attempt_at"] = at + lease_ms
        async with self._db.write() as tx:
            if not (await channel_rows.by_ids(tx, [c.id])):
                raise ChannelNotFound
            await tx.execute(_INSERT, row)
            found = await tx.first(_GET, {"b_id": row["id"]})
        assert found is not None
        return delivery(found)


def _channel_brief(c: Channel) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "type": c.type.value}
