"""One attempt at one delivery: over HTTP, a webhook signed as Standard Webhooks says
(the ``standardwebhooks`` package signs) or a Slack-compatible incoming webhook; an
e-mail through the operator's SMTP server (aiosmtplib); or any Apprise URL (the Apprise
library, which blocks: run on a thread).

The destination is judged as monitor targets are (UPWATCH_TARGET_DENY / ALLOW) on the
addresses its name resolves to, at every attempt; the request then goes to that name,
so a name that resolves differently between the two (DNS rebinding) is the gap left:
README "Alerting" says so.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import apprise
import httpx
from standardwebhooks import Webhook

from upwatch.domain import TARGET_NOT_ALLOWED, TargetPolicy
from upwatch.notifications import (
    Channel,
    ChannelType,
    Delivery,
    Event,
    email_html,
    email_subject,
    headline,
    message_text,
    retry_at,
    slack_payload,
)
from upwatch.store.deliveries import Outcome

ATTEMPT_TIMEOUT_S = 10.0
APPRISE_TIMEOUT_S = 25.0  # Apprise may try several endpoints, each with its own timeout
USER_AGENT = "upwatch-notifications"


def new_client() -> httpx.AsyncClient:
    """No redirects (a 3xx is a failed attempt: the channel's URL is what was asked for),
    no cookies, no proxy from the environment."""
    return httpx.AsyncClient(
        timeout=ATTEMPT_TIMEOUT_S,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def attempt(
    client: httpx.AsyncClient,
    policy: TargetPolicy,
    d: Delivery,
    c: Channel,
    *,
    now: int,
    public_url: str,
    smtp: Smtp | None = None,
) -> Outcome:
    """Send ``d`` to ``c`` once; says what happened and, on failure, when to retry."""
    if not c.is_enabled:
        return Outcome(False, error="Channel disabled")
    link = _link(public_url, d.monitor_id)
    if c.type is ChannelType.EMAIL:
        return await _email(d, c, now=now, link=link, smtp=smtp)
    if c.type is ChannelType.APPRISE:
        return await _apprise(d, c, now=now, link=link)
    url = str(c.config["url"])
    refused = await _refused(policy, url)
    if refused is not None:
        return _failed(d, refused, now, None)
    body, headers = _request(d, c, now=now, link=link)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        waited = client.timeout.read or ATTEMPT_TIMEOUT_S
        return _failed(d, f"Timed out after {waited:g} s", now, None)
    except httpx.HTTPError as exc:
        return _failed(d, _describe(exc), now, None)
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True)
    if status == 410:
        return Outcome(False, error="HTTP 410", disable="The receiver answered HTTP 410 Gone")
    return _failed(d, f"HTTP {status}", now, _retry_after_s(response))


@dataclass(frozen=True, slots=True)
class Smtp:
    """The operator's mail server, from UPWATCH_SMTP_URL and UPWATCH_SMTP_FROM."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool  # smtps://: TLS from the start; smtp://: STARTTLS if offered
    sender: str

    @classmethod
    def from_settings(cls, url: str, sender: str) -> Smtp | None:
        if not url:
            return None
        parts = urlsplit(url)
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if tls else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=tls,
            sender=sender,
        )


async def _email(
    d: Delivery, c: Channel, *, now: int, link: str | None, smtp: Smtp | None
) -> Outcome:
    if smtp is None:
        return _failed(d, "UPWATCH_SMTP_URL is not set", now, None)
    event, data = Event(d.payload["type"]), d.payload["data"]
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(c.config["to"])
    message["Subject"] = email_subject(event, data)
    message["Message-ID"] = f"<{d.id}@upwatch>"  # the same on every retry
    message.set_content(message_text(event, data, link))
    message.add_alternative(email_html(event, data, link), subtype="html")
    try:
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.implicit_tls,
            start_tls=None if not smtp.implicit_tls else False,
            timeout=ATTEMPT_TIMEOUT_S,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return _failed(d, f"SMTP {exc.code}: {exc.message}", now, None)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return _failed(d, _describe(exc), now, None)
    return Outcome(True)


async def _apprise(d: Delivery, c: Channel, *, now: int, link: str | None) -> Outcome:
    event, data = Event(d.payload["type"]), d.payload["data"]
    body = message_text(event, data, link)

    def send() -> bool:
        notifier = apprise.Apprise()
        if not notifier.add(str(c.config["url"])):
            return False
        return bool(notifier.notify(title=headline(event, data), body=body))

    try:
        async with asyncio.timeout(APPRISE_TIMEOUT_S):
            sent = await asyncio.to_thread(send)
    except TimeoutError:
        return _failed(d, f"Timed out after {APPRISE_TIMEOUT_S:g} s", now, None)
    if not sent:
        return _failed(d, "Apprise could not deliver it", now, None)
    return Outcome(True)


def _request(
    d: Delivery, c: Channel, *, now: int, link: str | None
) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if c.type is ChannelType.SLACK:
        event = Event(d.payload["type"])
        return json.dumps(slack_payload(event, d.payload["data"], link)).encode(), headers
    text = json.dumps(d.payload, separators=(",", ":"), ensure_ascii=False)
    assert c.secret is not None
    sent_at = datetime.fromtimestamp(now // 1000, tz=UTC)
    headers |= {
        "webhook-id": d.id,  # the same on every retry: receivers deduplicate on it
        "webhook-timestamp": str(now // 1000),
        "webhook-signature": Webhook(c.secret).sign(d.id, sent_at, text),
    }
    return text.encode(), headers


def _link(public_url: str, monitor_id: str | None) -> str | None:
    if not public_url or monitor_id is None:
        return None
    return f"{public_url.rstrip('/')}/monitors/{monitor_id}"


async def _refused(policy: TargetPolicy, url: str) -> str | None:
    """Why the destination may not be sent to, or None."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "URL has no host"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"DNS lookup failed: {exc.strerror or exc}"
    addresses = {str(info[4][0]) for info in infos}
    if not all(policy.permits(a) for a in addresses):
        return TARGET_NOT_ALLOWED
    return None


def _failed(d: Delivery, error: str, now: int, retry_after_s: int | None) -> Outcome:
    return Outcome(
        False,
        error=error[:255],
        retry_at=retry_at(d.attempts + 1, now, d.created_at, retry_after_s=retry_after_s),
    )


def _retry_after_s(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() and len(value) < 8 else None


def _describe(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "Connection refused"
        if isinstance(cause, ConnectionResetError):
            return "Connection reset"
        cause = cause.__cause__ or cause.__context__
    return str(exc).strip() or type(exc).__name__
