"""The sender: a chore of ``serve``'s checker and of every ``worker`` (never of ``api``)
that claims due deliveries and sends each in a task of its own, at most
``UPWATCH_MAX_SENDS_IN_FLIGHT`` at once: a slow or dead receiver holds only its own
slots, and a send never holds up a check (it waits on its socket, not the loop)."""

from __future__ import annotations

import asyncio
import logging

import httpx

from upwatch.clock import Clock
from upwatch.config import Settings
from upwatch.delivery import transports
from upwatch.errors import DatabaseUnavailable
from upwatch.metrics import NotificationMetrics, new_registry
from upwatch.notifications import Channel, ChannelType, Delivery
from upwatch.store import Store

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0


class Sender:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
        metrics: NotificationMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._client = client or transports.new_client()
        self._policy = settings.target_policy
        self._smtp = transports.Smtp.from_settings(settings.smtp_url, settings.smtp_from)
        self._in_flight: set[asyncio.Task[Delivery | None]] = set()
        self.wake = asyncio.Event()  # set: look for due deliveries now
        self._more_due = False  # the last claim filled every free slot
        self.sent = 0  # attempts made
        self._metrics = metrics or NotificationMetrics(new_registry())
        self._metrics.expect(t.value for t in ChannelType)

    async def run_once(self, at: int) -> int:
        """Claim what is due and start sending it; returns how many were started."""
        free = self._settings.max_sends_in_flight - len(self._in_flight)
        if free <= 0:
            return 0
        lease_ms = int(self._settings.delivery_lease_s * 1000)
        claimed = await self._store.deliveries.claim(at=at, limit=free, lease_ms=lease_ms)
        self._more_due = len(claimed) == free
        for d, c in claimed:
            task = asyncio.create_task(self._deliver_logged(d, c), name=f"upwatch-send-{d.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    async def _deliver_logged(self, d: Delivery, c: Channel) -> Delivery | None:
        """``deliver``, in a task of its own: a failure is logged, and the delivery stays
        leased and is tried again when the lease runs out."""
        try:
            return await self.deliver(d, c)
        except DatabaseUnavailable as exc:
            log.warning(
                "could not record delivery %s: %s; retried after its lease",
                d.id,
                exc,
                extra=log_fields(d),
            )
        except Exception:
            log.exception(
                "sending delivery %s failed unexpectedly; retried after its lease",
                d.id,
                extra=log_fields(d),
            )
        finally:
            # A slot is free and the last claim left some due: claim the next now, not at
            # the next poll (a wave of incidents is sent at the receivers' pace, not
            # UPWATCH_MAX_SENDS_IN_FLIGHT a second). Otherwise the poll finds new ones.
            if self._more_due:
                self.wake.set()
        return None

    async def deliver(self, d: Delivery, c: Channel) -> Delivery:
        """One attempt, recorded; returns the delivery as it now is."""
        outcome = await transports.attempt(
            self._client,
            self._policy,
            d,
            c,
            now=self._clock.now_ms(),
            public_url=self._settings.public_url,
            smtp=self._smtp,
        )
        self.sent += 1
        self._metrics.attempted(
            c.type.value, delivered=outcome.delivered, retrying=outcome.retry_at is not None
        )
        if outcome.delivered:
            log.info("%s delivered to channel %s", d.event.value, c.id, extra=log_fields(d))
        else:
            log.info(
                "delivery %s to channel %s failed: %s",
                d.id,
                c.id,
                outcome.error,
                extra=log_fields(d),
            )
        if outcome.disable:
            log.warning(
                "channel %s disabled: %s", c.id, outcome.disable, extra={"channel_id": c.id}
            )
        return await self._store.deliveries.record(d, outcome, at=self._clock.now_ms())

    async def close(self, deadline_s: float) -> None:
        """Let sends in flight finish (or drop them after ``deadline_s``: their lease
        runs out and another process sends them), then close the HTTP client."""
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=deadline_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d notifications still sending at shutdown: left to retry", len(late))
        await self._client.aclose()


def log_fields(d: Delivery) -> dict[str, str]:
    """The ids a delivery's log lines carry (upwatch/logs.py)."""
    fields = {"delivery_id": d.id, "channel_id": d.channel_id}
    if d.incident_id is not None:
        fields["incident_id"] = d.incident_id
    if d.monitor_id is not None:
        fields["monitor_id"] = d.monitor_id
    return fields
