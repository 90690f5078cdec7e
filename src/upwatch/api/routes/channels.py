"""Notification channels (SPEC §7): CRUD, rotate-secret, test, and their deliveries."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import apprise
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Services, require
from upwatch.api.errors import ApiError, validation_error
from upwatch.api.models import (
    CreateNotificationChannelRequest,
    DeliveryEnvelope,
    DeliveryList,
    NotificationChannelEnvelope,
    NotificationChannelList,
    UpdateNotificationChannelRequest,
)
from upwatch.api.parsing import only_query, page, read_json
from upwatch.api.responses import JSON
from upwatch.delivery.trial import send_test
from upwatch.domain import SCOPE_CHANNELS_READ, SCOPE_CHANNELS_WRITE, Principal
from upwatch.errors import ChannelNotFound
from upwatch.notifications import ChannelType
from upwatch.wire import channel_json, delivery_json

PREFIX = "/v1/notification-channels"
URL_MAX = 2048
_CHANNEL_ID = re.compile(r"^nch_[A-Za-z0-9]{1,27}$")

Reader = Annotated[Principal, Depends(require(SCOPE_CHANNELS_READ))]
Writer = Annotated[Principal, Depends(require(SCOPE_CHANNELS_WRITE))]

router = APIRouter(prefix=PREFIX, tags=["Notification channels"])


def channel_id_or_404(channel_id: str) -> str:
    if not _CHANNEL_ID.match(channel_id):
        raise ChannelNotFound
    return channel_id


def _bad(field: str, message: str) -> ApiError:
    return validation_error("Invalid request body", [{"field": field, "message": message}])


def checked_config(s: Services, type_: ChannelType, config: dict[str, Any]) -> dict[str, Any]:
    """The config of a ``type_`` channel, or 400 naming the field."""
    if type_ is ChannelType.EMAIL:
        return _checked_email(s, config)
    if type_ is ChannelType.APPRISE:
        return _checked_apprise(s, config)
    unknown = sorted(set(config) - {"url"})
    if unknown:
        raise _bad(f"config.{unknown[0]}", "unknown field")
    url = config.get("url")
    if not isinstance(url, str):
        raise _bad("config.url", "is required" if url is None else "must be a string")
    parts = urlsplit(url)
    if (
        len(url) > URL_MAX
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in url)
    ):
        raise _bad("config.url", f"must be an http or https URL of at most {URL_MAX} characters")
    if not s.policy.permits(parts.hostname):
        raise _bad("config.url", "address not allowed")
    return {"url": url}


# Addresses are checked by hand, not with email-validator: it refuses internal domains
# (corp.local, .internal…) on purpose, and a self-hosted monitor mails exactly those.
_EMAIL = re.compile(
    r"^[^@\s<>(),;:\"\[\]\\]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
EMAIL_TO_MAX = 20


def _checked_email(s: Services, config: dict[str, Any]) -> dict[str, Any]:
    if s.smtp is None:
        raise _bad("type", "email channels need UPWATCH_SMTP_URL, which is not set")
    unknown = sorted(set(config) - {"to"})
    if unknown:
        raise _bad(f"config.{unknown[0]}", "unknown field")
    to = config.get("to")
    if not isinstance(to, list) or not 1 <= len(to) <= EMAIL_TO_MAX:
        raise _bad("config.to", f"must be a list of 1 to {EMAIL_TO_MAX} e-mail addresses")
    for i, address in enumerate(to):
        if not isinstance(address, str) or not _EMAIL.match(address):
            raise _bad(f"config.to.{i}", "must be an e-mail address")
    if len({a.lower() for a in to}) != len(to):
        raise _bad("config.to", "must not repeat an address")
    return {"to": list(to)}


def _checked_apprise(s: Services, config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - {"url"})
    if unknown:
        raise _bad(f"config.{unknown[0]}", "unknown field")
    url = config.get("url")
    if not isinstance(url, str) or not 1 <= len(url) <= URL_MAX:
        raise _bad("config.url", f"must be an Apprise URL of at most {URL_MAX} characters")
    if not apprise.Apprise().add(url):  # parses only: nothing is sent
        raise _bad("config.url", "is not a URL Apprise supports")
    host = urlsplit(url).hostname
    if host and not s.policy.permits(host):
        raise _bad("config.url", "address not allowed")
    return {"url": url}


@router.get(
    "",
    operation_id="listNotificationChannels",
    summary="List notification channels",
    description="The team's channels. Scope: `notification-channels:read`.",
    responses={200: {"model": NotificationChannelList}, **openapi.errors(401, 403)},
)
async def list_channels(who: Reader, s: Deps) -> Response:
    return JSON({"data": [channel_json(c) for c in await s.store.channels.all(who.team_id)]})


@router.post(
    "",
    status_code=201,
    operation_id="createNotificationChannel",
    summary="Create a notification channel",
    description="A webhook channel's signing secret (`whsec_…`) is in this response only "
    "(and in rotate-secret's). Scope: `notification-channels:write`.",
    responses={
        201: {"model": NotificationChannelEnvelope},
        **openapi.errors(400, 401, 403, 413),
    },
    openapi_extra=openapi.json_body(CreateNotificationChannelRequest),
)
async def create_channel(request: Request, who: Writer, s: Deps) -> Response:
    body = await read_json(request, CreateNotificationChannelRequest)
    type_ = ChannelType(body.type)
    config = checked_config(s, type_, body.config)
    created = await s.store.channels.create(
        who.team_id,
        name=body.name,
        type=type_,
        config=config,
        is_enabled=body.isEnabled,
        at=s.clock.now_ms(),
    )
    return JSON({"data": channel_json(created, with_secret=True)}, status_code=201)


@router.get(
    "/{channel_id}",
    operation_id="getNotificationChannel",
    summary="Get a notification channel",
    description="Scope: `notification-channels:read`.",
    responses={
        200: {"model": NotificationChannelEnvelope},
        **openapi.errors(401, 403, 404, not_found="Notification channel"),
    },
)
async def get_channel(channel_id: str, who: Reader, s: Deps) -> Response:
    found = await s.store.channels.get(who.team_id, channel_id_or_404(channel_id))
    return JSON({"data": channel_json(found)})


@router.put(
    "/{channel_id}",
    operation_id="updateNotificationChannel",
    summary="Update a notification channel",
    description="Only the fields given change; `type` cannot. Enabling a channel that "
    "upwatch disabled (HTTP 410) clears `disabledReason`. "
    "Scope: `notification-channels:write`.",
    responses={
        200: {"model": NotificationChannelEnvelope},
        **openapi.errors(400, 401, 403, 404, 413, not_found="Notification channel"),
    },
    openapi_extra=openapi.json_body(UpdateNotificationChannelRequest),
)
async def update_channel(request: Request, channel_id: str, who: Writer, s: Deps) -> Response:
    channel_id = channel_id_or_404(channel_id)
    before = await s.store.channels.get(who.team_id, channel_id)  # 404 before 400
    body = await read_json(request, UpdateNotificationChannelRequest)
    if body.type is not None and body.type != before.type.value:
        raise _bad("type", "cannot change; create a new channel")
    config = None if body.config is None else checked_config(s, before.type, body.config)
    after = await s.store.channels.update(
        who.team_id,
        channel_id,
        name=body.name,
        config=config,
        is_enabled=body.isEnabled,
        at=s.clock.now_ms(),
    )
    return JSON({"data": channel_json(after)})


@router.delete(
    "/{channel_id}",
    status_code=204,
    operation_id="deleteNotificationChannel",
    summary="Delete a notification channel",
    description="It leaves every monitor's `notificationChannelIds`; its pending "
    "deliveries are dropped. Scope: `notification-channels:write`.",
    responses={
        204: {"description": "Deleted"},
        **openapi.errors(401, 403, 404, not_found="Notification channel"),
    },
)
async def delete_channel(channel_id: str, who: Writer, s: Deps) -> Response:
    await s.store.channels.delete(who.team_id, channel_id_or_404(channel_id))
    return Response(status_code=204)


@router.post(
    "/{channel_id}/rotate-secret",
    operation_id="rotateNotificationChannelSecret",
    summary="Rotate a webhook channel's signing secret",
    description="A new `whsec_…` secret, in this response only; the old one stops "
    "signing at once. Scope: `notification-channels:write`.",
    responses={
        200: {"model": NotificationChannelEnvelope},
        **openapi.errors(400, 401, 403, 404, not_found="Notification channel"),
    },
)
async def rotate_secret(channel_id: str, who: Writer, s: Deps) -> Response:
    channel_id = channel_id_or_404(channel_id)
    before = await s.store.channels.get(who.team_id, channel_id)
    if before.type is not ChannelType.WEBHOOK:
        raise _bad("type", "only webhook channels have a signing secret")
    after = await s.store.channels.update(
        who.team_id,
        channel_id,
        name=None,
        config=None,
        is_enabled=None,
        at=s.clock.now_ms(),
        rotate_secret=True,
    )
    return JSON({"data": channel_json(after, with_secret=True)})


@router.post(
    "/{channel_id}/test",
    operation_id="testNotificationChannel",
    summary="Send a test notification",
    description="Sends a `test` now and answers with the delivery after its first attempt "
    "(failed attempts are retried like any other). Scope: `notification-channels:write`.",
    responses={
        200: {"model": DeliveryEnvelope},
        **openapi.errors(401, 403, 404, not_found="Notification channel"),
    },
)
async def test_channel(channel_id: str, who: Writer, s: Deps) -> Response:
    found = await s.store.channels.get(who.team_id, channel_id_or_404(channel_id))
    done = await send_test(
        s.store, found, clock=s.clock, policy=s.policy, public_url=s.public_url, smtp=s.smtp
    )
    return JSON({"data": delivery_json(done)})


@router.get(
    "/{channel_id}/deliveries",
    operation_id="listNotificationChannelDeliveries",
    summary="List a channel's deliveries",
    description="Newest first. Scope: `notification-channels:read`.",
    responses={
        200: {"model": DeliveryList},
        **openapi.errors(400, 401, 403, 404, not_found="Notification channel"),
    },
    openapi_extra={"parameters": openapi.page_parameters("deliveries")},
)
async def list_deliveries(request: Request, channel_id: str, who: Reader, s: Deps) -> Response:
    channel_id = channel_id_or_404(channel_id)
    await s.store.channels.get(who.team_id, channel_id)  # 404 before 400
    only_query(request, "limit", "offset")
    limit, offset = page(request)
    found, total = await s.store.deliveries.of_channel(
        who.team_id, channel_id, limit=limit, offset=offset
    )
    return JSON(
        {
            "data": [delivery_json(d) for d in found],
            "pagination": {"total": total, "limit": limit, "offset": offset},
        }
    )
