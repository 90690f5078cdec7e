"""Notifications end to end on SQLite and PostgreSQL, to a real HTTP receiver on
loopback: the outbox written with the incident, the sender's signed webhook (verified
here with the standard library, independently of the signing package), retries with
the same webhook-id, Retry-After, 410, 24 h, Slack's message, and what deleting does."""

import asyncio
import contextlib
import email.policy
import socket
import struct
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser
from functools import partial
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.listeners import closed_port, listener
from tests.support.receivers import receiving, verified
from tests.support.servers import free_port
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.delivery.sender import Sender
from upwatch.domain import DueCheck, MonitorChanges, NewMonitor, Observation, Outcome, Status
from upwatch.maintenance import Once
from upwatch.metrics import NotificationMetrics, new_registry
from upwatch.notifications import Channel, ChannelType, DeliveryStatus
from upwatch.scheduler.planning import plan
from upwatch.store import Store

T0 = 1_771_070_400_000
S = 1000


async def setup(
    store: Store, url: str, type_: ChannelType = ChannelType.WEBHOOK
) -> tuple[int, str, DueCheck, Channel]:
    team = (await store.teams.create("acme", None, at=T0)).id
    channel = await store.channels.create(
        team, name="ops", type=type_, config={"url": url}, is_enabled=True, at=T0
    )
    new = NewMonitor("db", "127.0.0.1", 5432, confirmation_checks=1, channel_ids=(channel.id,))
    m = await store.monitors.create(team, new, at=T0)
    [p] = await store.schedule.claim_due(horizon=T0, limit=10, planner=partial(plan, at=T0))
    return team, m.id, p.check, channel


def seen(check: DueCheck, at: int, status: Status) -> Observation:
    if status is Status.UP:
        return Observation(check, Outcome(status, response_time_ms=3), at)
    return Observation(check, Outcome(status, error="Connection refused"), at)


async def test_an_outage_is_sent_signed_and_recorded_as_delivered(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    async with receiving() as rx:
        team, monitor_id, check, channel = await setup(store, rx.url())
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        sender = Sender(Settings(public_url="https://upwatch.example.invalid"), store, clock)
        assert await sender.run_once(clock.now_ms()) == 1
        [r] = await rx.wait_for(1)
        await sender.close(5)
    assert r.path == "/hook"
    assert r.headers["content-type"] == "application/json"
    assert channel.secret is not None
    payload = verified(r, channel.secret)
    assert payload["type"] == "incident.opened"
    incident, monitor = payload["data"]["incident"], payload["data"]["monitor"]
    assert (incident["status"], incident["cause"]["error"]) == ("open", "Connection refused")
    assert (monitor["id"], monitor["state"], monitor["notificationChannelIds"]) == (
        monitor_id,
        "down",
        [channel.id],
    )
    [d], total = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert total == 1
    assert r.headers["webhook-id"] == d.id
    assert (d.status, d.attempts, d.event.value, d.incident_id) == (
        DeliveryStatus.DELIVERED,
        1,
        "incident.opened",
        incident["id"],
    )
    assert d.delivered_at == clock.now_ms()


async def test_failures_are_retried_with_the_same_webhook_id(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    async with receiving() as rx:
        rx.responses = [(503, {}), (429, {"Retry-After": "300"})]
        team, _, check, channel = await setup(store, rx.url())
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        sender = Sender(Settings(), store, clock)
        await sender.run_once(clock.now_ms())
        await rx.wait_for(1)
        await sender.close(5)
        [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
        assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.PENDING, 1, "HTTP 503")
        assert 24 * S <= d.next_attempt_at - clock.now_ms() <= 36 * S  # about 30 s
        sender = Sender(Settings(), store, clock)
        assert await sender.run_once(clock.now_ms()) == 0  # not due yet
        clock.advance(40)
        await sender.run_once(clock.now_ms())
        await rx.wait_for(2)
        await sender.close(5)
        [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
        assert (d.attempts, d.last_error) == (2, "HTTP 429")
        assert d.next_attempt_at - clock.now_ms() >= 300 * S  # Retry-After honoured
        clock.advance(301)
        sender = Sender(Settings(), store, clock)
        await sender.run_once(clock.now_ms())
        received = await rx.wait_for(3)
        await sender.close(5)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert (d.status, d.attempts) == (DeliveryStatus.DELIVERED, 3)


async def test_attempts_are_counted_by_channel_type_and_outcome(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    registry = new_registry()
    metrics = NotificationMetrics(registry)
    async with receiving() as rx:
        rx.responses = [(503, {})]
        _, _, check, _ = await setup(store, rx.url())
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        for _ in range(2):  # a 503, retried in about 30 s; then delivered
            sender = Sender(Settings(), store, clock, metrics=metrics)
            await sender.run_once(clock.now_ms())
            await sender.close(5)  # the attempt recorded
            clock.advance(40)
        assert len(rx.requests) == 2

    def attempts(channel_type: str, outcome: str) -> float | None:
        labels = {"channel_type": channel_type, "outcome": outcome}
        return registry.get_sample_value("upwatch_notification_attempts_total", labels)

    assert [attempts("webhook", o) for o in ("retrying", "delivered", "failed")] == [1, 1, 0]
    assert attempts("slack", "delivered") == 0  # every type shows, before its first attempt


async def test_a_410_disables_the_channel(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    async with receiving() as rx:
        rx.responses = [(410, {})]
        team, _, check, channel = await setup(store, rx.url())
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        sender = Sender(Settings(), store, clock)
        await sender.run_once(clock.now_ms())
        await rx.wait_for(1)
        await sender.close(5)
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert (d.status, d.last_error) == (DeliveryStatus.FAILED, "HTTP 410")
    after = await store.channels.get(team, channel.id)
    assert not after.is_enabled
    assert after.disabled_reason == "The receiver answered HTTP 410 Gone"


async def test_a_day_of_failures_ends_failed(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    team, _, check, channel = await setup(store, f"http://127.0.0.1:{closed_port()}/hook")
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    sender = Sender(Settings(), store, clock)
    for _ in range(40):  # bounded: about 25 attempts fit in 24 h
        [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
        if d.status is not DeliveryStatus.PENDING:
            break
        clock.set(d.next_attempt_at)
        for pending, c in await store.deliveries.claim(at=clock.now_ms(), limit=10, lease_ms=1):
            await sender.deliver(pending, c)
    await sender.close(5)
    assert d.status is DeliveryStatus.FAILED
    assert d.last_error == "Connection refused"
    assert 20 <= d.attempts <= 30
    assert d.last_attempt_at is not None
    assert d.last_attempt_at - d.created_at <= 24 * 3600 * S


async def test_slack_gets_a_readable_line_and_the_recovery_says_how_long(store: Store) -> None:
    clock = FakeClock(T0 + 770 * S)
    async with receiving() as rx:
        _, _, check, _ = await setup(store, rx.url("/slack"), ChannelType.SLACK)
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        await store.results.save([seen(check, T0 + 760 * S, Status.UP)])
        sender = Sender(Settings(public_url="https://up.example.invalid"), store, clock)
        await sender.run_once(clock.now_ms())
        opened, resolved = sorted(await rx.wait_for(2), key=lambda r: r.json()["text"])
        await sender.close(5)
    down, up = opened.json(), resolved.json()
    assert down["text"].startswith("DOWN: Connection refused - db (127.0.0.1:5432), since ")
    assert up["text"] == "RECOVERED after 12 min 30 s: db (127.0.0.1:5432)"
    assert "https://up.example.invalid/monitors/tcpm_" in down["blocks"][0]["text"]["text"]


async def test_pausing_or_deleting_a_monitor_tells_its_channels(store: Store) -> None:
    team, monitor_id, check, channel = await setup(store, "http://127.0.0.1:9/hook")
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    await store.monitors.update(team, monitor_id, MonitorChanges(is_enabled=False), at=T0 + 20 * S)
    found, _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert [d.event.value for d in found] == ["incident.resolved", "incident.opened"]
    assert found[0].payload["data"]["incident"]["endReason"] == "paused"
    await store.monitors.update(team, monitor_id, MonitorChanges(is_enabled=True), at=T0 + 30 * S)
    [again] = await store.schedule.claim_due(
        horizon=T0 + 30 * S, limit=10, planner=partial(plan, at=T0 + 30 * S)
    )
    await store.results.save([seen(again.check, T0 + 40 * S, Status.DOWN)])
    await store.monitors.delete(team, monitor_id, at=T0 + 50 * S)
    found, total = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert total == 4
    assert found[0].payload["data"]["incident"]["endReason"] == "deleted"
    assert found[0].monitor_id == monitor_id  # kept: the monitor is gone, its notice is not


async def test_deleting_a_channel_drops_its_deliveries_and_links(store: Store) -> None:
    team, monitor_id, check, channel = await setup(store, "http://127.0.0.1:9/hook")
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    await store.channels.delete(team, channel.id)
    assert await store.deliveries.claim(at=T0 + 60 * S, limit=10, lease_ms=1) == []
    assert (await store.monitors.get(team, monitor_id)).channel_ids == ()


async def test_open_incidents_are_reminded_every_so_often_until_resolved(store: Store) -> None:
    team = (await store.teams.create("acme", None, at=T0)).id
    channel = await store.channels.create(
        team,
        name="ops",
        type=ChannelType.WEBHOOK,
        config={"url": "http://127.0.0.1:9/hook"},
        is_enabled=True,
        at=T0,
    )
    new = NewMonitor(
        "db",
        "127.0.0.1",
        5432,
        confirmation_checks=1,
        channel_ids=(channel.id,),
        remind_every_minutes=5,
    )
    await store.monitors.create(team, new, at=T0)
    [p] = await store.schedule.claim_due(horizon=T0, limit=10, planner=partial(plan, at=T0))
    confirmed = T0 + 10 * S
    await store.results.save([seen(p.check, confirmed, Status.DOWN)])
    minute = 60 * S
    assert await store.reminders.send_due(at=confirmed + 5 * minute - 1) == 0
    assert await store.reminders.send_due(at=confirmed + 5 * minute) == 1
    assert await store.reminders.send_due(at=confirmed + 5 * minute + 1) == 0  # once
    assert await store.reminders.send_due(at=confirmed + 10 * minute) == 1
    found, _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert [d.event.value for d in found] == [
        "incident.reminder",
        "incident.reminder",
        "incident.opened",
    ]
    await store.results.save([seen(p.check, confirmed + 11 * minute, Status.UP)])
    assert await store.reminders.send_due(at=confirmed + 60 * minute) == 0


class Mailbox:
    """aiosmtpd's handler: keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


async def test_an_email_channel_sends_text_and_html_through_the_smtp_server(
    store: Store,
) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        team = (await store.teams.create("acme", None, at=T0)).id
        channel = await store.channels.create(
            team,
            name="mail",
            type=ChannelType.EMAIL,
            config={"to": ["ops@corp.example.invalid", "oncall@example.invalid"]},
            is_enabled=True,
            at=T0,
        )
        new = NewMonitor("db", "127.0.0.1", 5432, confirmation_checks=1, channel_ids=(channel.id,))
        await store.monitors.create(team, new, at=T0)
        [p] = await store.schedule.claim_due(horizon=T0, limit=10, planner=partial(plan, at=T0))
        await store.results.save([seen(p.check, T0 + 10 * S, Status.DOWN)])
        clock = FakeClock(T0 + 20 * S)
        settings = Settings(
            smtp_url=f"smtp://127.0.0.1:{port}",
            smtp_from="upwatch@example.invalid",
            public_url="https://up.example.invalid",
        )
        sender = Sender(settings, store, clock)
        await sender.run_once(clock.now_ms())
        await sender.close(10)
    finally:
        controller.stop()
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert (d.status, d.last_error) == (DeliveryStatus.DELIVERED, None)
    [message] = mailbox.messages
    assert message["To"] == "ops@corp.example.invalid, oncall@example.invalid"
    assert message["From"] == "upwatch@example.invalid"
    assert message["Subject"].startswith("DOWN: Connection refused - db (127.0.0.1:5432)")
    assert message["Message-ID"] == f"<{d.id}@upwatch>"
    text = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert text is not None
    assert html_part is not None
    assert "https://up.example.invalid/monitors/" in text.get_content()
    assert '<a href="https://up.example.invalid/monitors/' in html_part.get_content()


async def test_an_email_is_retried_when_the_server_is_away(store: Store) -> None:
    team, _, check, _ = await setup(store, "http://127.0.0.1:9/unused")
    channel = await store.channels.create(
        team,
        name="mail",
        type=ChannelType.EMAIL,
        config={"to": ["ops@example.invalid"]},
        is_enabled=True,
        at=T0,
    )
    [m] = await store.monitors.list_for(team)
    await store.monitors.update(team, m.id, MonitorChanges(channel_ids=(channel.id,)), at=T0)
    await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
    clock = FakeClock(T0 + 20 * S)
    sender = Sender(Settings(smtp_url=f"smtp://127.0.0.1:{closed_port()}"), store, clock)
    await sender.run_once(clock.now_ms())
    await sender.close(10)
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 1)
    assert d.last_error is not None


async def test_an_apprise_channel_reaches_its_service(store: Store) -> None:
    clock = FakeClock(T0 + 20 * S)
    async with receiving() as rx:
        team, _, check, channel = await setup(
            store, f"json://127.0.0.1:{rx.port}/apprise", ChannelType.APPRISE
        )
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        sender = Sender(Settings(), store, clock)
        await sender.run_once(clock.now_ms())
        [r] = await rx.wait_for(1, timeout_s=15)
        await sender.close(15)
    assert r.path == "/apprise"
    body = r.json()
    assert body["title"].startswith("DOWN: Connection refused - db (127.0.0.1:5432)")
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert d.status is DeliveryStatus.DELIVERED


async def test_no_reminder_is_sent_in_a_maintenance_window(store: Store) -> None:
    team, monitor_id, check, channel = await setup(store, "http://127.0.0.1:9/hook")
    [m] = await store.monitors.list_for(team)
    await store.monitors.update(team, m.id, MonitorChanges(remind_every_minutes=5), at=T0)
    confirmed = T0 + 10 * S
    await store.results.save([seen(check, confirmed, Status.DOWN)])
    minute = 60 * S
    window = Once(confirmed + 4 * minute, confirmed + 7 * minute)
    await store.windows.create(team, name="w", monitor_ids=[monitor_id], schedule=window, at=T0)
    assert await store.reminders.send_due(at=confirmed + 5 * minute) == 0  # in the window
    assert await store.reminders.send_due(at=confirmed + 7 * minute) == 1  # once it ends
    found, _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert [d.event.value for d in found] == ["incident.reminder", "incident.opened"]


@contextlib.asynccontextmanager
async def resetting() -> AsyncIterator[int]:
    """A port that accepts each connection and resets it (RST) at once."""

    def reset(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


@pytest.mark.parametrize("failure", ["reset", "timeout"])
async def test_a_reset_or_a_silent_receiver_is_retried_then_delivered_once(
    store: Store, failure: str
) -> None:
    clock = FakeClock(T0 + 20 * S)
    async with contextlib.AsyncExitStack() as stack:
        if failure == "reset":
            bad = await stack.enter_async_context(resetting())
            expected = "Connection reset"
        else:
            bad = int(stack.enter_context(listener()).getsockname()[1])  # never answers
            expected = "Timed out after 0.5 s"
        team, _, check, channel = await setup(store, f"http://127.0.0.1:{bad}/hook")
        await store.results.save([seen(check, T0 + 10 * S, Status.DOWN)])
        sender = Sender(Settings(), store, clock, client=httpx.AsyncClient(timeout=0.5))
        await sender.run_once(clock.now_ms())
        await sender.close(5)
        [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
        assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.PENDING, 1, expected)
        rx = await stack.enter_async_context(receiving())
        await store.channels.update(
            team, channel.id, name=None, config={"url": rx.url()}, is_enabled=None, at=T0
        )
        clock.set(d.next_attempt_at)
        sender = Sender(Settings(), store, clock)
        await sender.run_once(clock.now_ms())
        [r] = await rx.wait_for(1)
        await sender.close(5)
    assert r.headers["webhook-id"] == d.id
    [d], _ = await store.deliveries.of_channel(team, channel.id, limit=10, offset=0)
    assert (d.status, d.attempts) == (DeliveryStatus.DELIVERED, 2)


async def test_a_test_being_sent_is_not_claimed_by_a_sender_until_its_lease_ends(
    store: Store,
) -> None:
    # "Send test" sends its delivery itself: a sender polling meanwhile must not send
    # it too (a slow receiver got the same test twice). Only if the process that sends
    # it dies does a sender take it, after the lease.
    _, _, _, channel = await setup(store, "http://127.0.0.1:9/hook")
    made = await store.deliveries.create_test(channel, at=T0, lease_ms=60 * S)
    assert made.status is DeliveryStatus.PENDING
    assert await store.deliveries.claim(at=T0 + 59 * S, limit=10, lease_ms=60 * S) == []
    [(claimed, _)] = await store.deliveries.claim(at=T0 + 60 * S, limit=10, lease_ms=60 * S)
    assert claimed.id == made.id
