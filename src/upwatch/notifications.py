"""What a notification says, and when a failed one is tried again (SPEC §7). Pure: the
outbox (store/deliveries.py) and the sender (upwatch/delivery/) do the I/O."""

from __future__ import annotations

import base64
import enum
import html
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from upwatch.domain import random_base62, rfc3339

CHANNEL_ID_PREFIX = "nch_"
DELIVERY_ID_PREFIX = "ndl_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
GIVE_UP_AFTER_MS = 24 * 3_600_000
# About 30 s, 2 min, 10 min, 30 min, 1 h, then hourly (SPEC §7), each ±20 % (jitter,
# so that receivers coming back are not hit by every retry at once).
RETRY_DELAYS_S = (30, 120, 600, 1800, 3600)
JITTER = 0.2


class ChannelType(enum.StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"
    APPRISE = "apprise"


class Event(enum.StrEnum):
    OPENED = "incident.opened"
    REMINDER = "incident.reminder"
    RESOLVED = "incident.resolved"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    team_id: int
    name: str
    type: ChannelType
    config: dict[str, Any]  # the destination, secrets included: never returned as is
    secret: str | None  # a webhook's signing secret
    is_enabled: bool
    disabled_reason: str | None  # why upwatch disabled it (a receiver's HTTP 410)
    created_at: int
    updated_at: int


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    channel_id: str
    event: Event
    incident_id: str | None
    monitor_id: str | None
    payload: dict[str, Any]  # the webhook body; other types render from its data
    status: DeliveryStatus
    attempts: int
    next_attempt_at: int
    last_attempt_at: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None


def new_channel_id() -> str:
    return CHANNEL_ID_PREFIX + random_base62(22)


def new_delivery_id() -> str:
    return DELIVERY_ID_PREFIX + random_base62(22)


def new_webhook_secret() -> str:
    """Standard Webhooks' form: ``whsec_`` and base64 of 24 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def retry_at(
    attempts: int, failed_at: int, created_at: int, *, retry_after_s: int | None
) -> int | None:
    """When to try again after the ``attempts``-th failure at ``failed_at`` (ms), or None
    once 24 h have passed since ``created_at`` (the delivery has failed). A receiver's
    ``Retry-After`` is honoured when it asks for longer."""
    base = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S)) - 1]
    delay_s = base * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s is not None:
        delay_s = max(delay_s, retry_after_s)
    at = failed_at + int(delay_s * 1000)
    return None if at - created_at > GIVE_UP_AFTER_MS else at


def duration_text(seconds: float) -> str:
    """``12 min 30 s``, ``2 h 5 min``, ``45 s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def webhook_payload(event: Event, at: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Standard Webhooks' shape: ``{"type", "timestamp", "data"}``."""
    return {"type": event.value, "timestamp": rfc3339(at), "data": dict(data)}


def headline(event: Event, data: Mapping[str, Any]) -> str:
    """One line a phone's lock screen shows: which monitor, what happened, since when."""
    if event is Event.TEST:
        channel = data.get("channel", {})
        return f"Test notification from upwatch for channel {channel.get('name', '')!r}"
    monitor, incident = data["monitor"], data["incident"]
    where = f"{monitor['name']} ({monitor['host']}:{monitor['port']})"
    if event is Event.RESOLVED:
        if incident.get("endReason") == "recovered":
            took = duration_text(incident["durationSeconds"] or 0)
            return f"RECOVERED after {took}: {where}"
        return f"ENDED ({incident.get('endReason')}): {where}, no longer checked as it was"
    cause = incident["cause"]
    what = "DOWN" if cause["status"] == "down" else "TIMEOUT"
    detail = f": {cause['error']}" if cause.get("error") else ""
    prefix = "STILL " if event is Event.REMINDER else ""
    return f"{prefix}{what}{detail} - {where}, since {incident['startedAt']}"


def message_text(event: Event, data: Mapping[str, Any], link: str | None) -> str:
    lines = [headline(event, data)]
    if link:
        lines.append(link)
    return "\n".join(lines)


def email_subject(event: Event, data: Mapping[str, Any]) -> str:
    return headline(event, data)


def email_html(event: Event, data: Mapping[str, Any], link: str | None) -> str:
    """The HTML part: the headline, and the link as a link."""
    text = html.escape(headline(event, data))
    more = f'<p><a href="{html.escape(link)}">Open in upwatch</a></p>' if link else ""
    return f"<html><body><p><strong>{text}</strong></p>{more}</body></html>"


def slack_payload(event: Event, data: Mapping[str, Any], link: str | None) -> dict[str, Any]:
    """Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): ``text`` for
    notifications and clients without blocks, and a section block with the link."""
    text = headline(event, data)
    block_text = f"*{text}*" + (f"\n<{link}|Open in upwatch>" if link else "")
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": block_text}}],
    }
