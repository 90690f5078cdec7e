"""/channels: notification channels, "send test", deliveries (SPEC §10).

The list, a channel's page (with its recent deliveries and a "Send test" button), and
the create, edit and delete forms. The forms go through the API's own checks (its request
models, then the config check of its channels route), so a bad value gets the API's
message, next to its field, with what was typed kept. Secrets reach a page only as the
API gives them: a webhook's signing secret once, on the page that made the channel (a
201 page, not a redirect) and on the one that rotated it; Slack and Apprise URLs
(whoever has one can post) are shown as the API shows them, ``scheme://host/…``, and
never sent back into a form; on edit an empty URL keeps the current one. Admins change
things; viewers only look."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from upwatch.api.errors import ApiError
from upwatch.api.models import CreateNotificationChannelRequest, UpdateNotificationChannelRequest
from upwatch.api.parsing import details
from upwatch.api.routes.channels import channel_id_or_404, checked_config
from upwatch.delivery import trial
from upwatch.errors import ChannelNotFound
from upwatch.notifications import Channel, ChannelType, Delivery
from upwatch.web import session
from upwatch.web.handlers import refused_change, services, visitor_or_login
from upwatch.web.pages import not_found, page, viewers_only_look
from upwatch.web.pages import refused as refusal
from upwatch.wire import shown_config

router = APIRouter(include_in_schema=False)

RECENT = 20  # deliveries on a channel's page
TYPES = tuple(t.value for t in ChannelType)
# The form field holding each type's destination; Slack and Apprise URLs are secrets.
TARGET_FIELDS = {
    ChannelType.WEBHOOK: "webhookUrl",
    ChannelType.SLACK: "slackUrl",
    ChannelType.EMAIL: "emailTo",
    ChannelType.APPRISE: "appriseUrl",
}
SECRET_FIELDS = frozenset({"slackUrl", "appriseUrl"})
_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
_DELIVERY_ID = re.compile(r"^ndl_[A-Za-z0-9]{1,27}$")


async def _channel(request: Request, who: session.Visitor, channel_id: str) -> Channel | None:
    try:
        return await services(request).store.channels.get(
            who.user.team_id, channel_id_or_404(channel_id)
        )
    except ChannelNotFound:
        return None


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def summary(c: Channel) -> str:
    """Where a channel sends, as the API shows it (no secret): a URL, or addresses."""
    config = shown_config(c)
    if c.type is ChannelType.EMAIL:
        return ", ".join(str(a) for a in config.get("to", []))
    return str(config.get("url", ""))


def _shown_error(c: Channel, error: str | None) -> str | None:
    """A delivery's error, with a secret URL (should a library quote it) redacted."""
    url = str(c.config.get("url", ""))
    if error and c.type in (ChannelType.SLACK, ChannelType.APPRISE) and url and url in error:
        return error.replace(url, summary(c))
    return error


# -- the form ---------------------------------------------------------------------------


def _config(type_: ChannelType, form: dict[str, str]) -> dict[str, Any] | None:
    """The config the form means for a ``type_`` channel; None when its field is empty."""
    text = form.get(TARGET_FIELDS[type_], "").strip()
    if text == "":
        return None
    if type_ is ChannelType.EMAIL:
        return {"to": [a for a in _ADDRESS_SEPARATORS.split(text) if a]}
    return {"url": text}


def _field_of(api_field: str, type_: ChannelType | None) -> str:
    """The form field an API error names: ``config.url`` is the chosen type's URL,
    ``config.to.3`` the recipients."""
    if api_field.startswith("config") and type_ is not None:
        return TARGET_FIELDS[type_]
    return api_field


def _errors(
    found: list[dict[str, str]], type_: ChannelType | None, to: list[Any]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for d in found:
        field, message = d["field"], d["message"]
        index = field.removeprefix("config.to.")
        if index != field and index.isdigit() and int(index) < len(to):
            message = f"{to[int(index)]}: {message}"
        errors.setdefault(_field_of(field, type_), message)
    return errors


def _values(c: Channel | None) -> dict[str, str]:
    """A form's starting values; a secret URL is never among them."""
    if c is None:
        return {"name": "", "type": ChannelType.WEBHOOK.value, "isEnabled": "on"}
    values = {"name": c.name, "type": c.type.value, "isEnabled": "on" if c.is_enabled else ""}
    if c.type is ChannelType.WEBHOOK:
        values["webhookUrl"] = str(c.config.get("url", ""))
    elif c.type is ChannelType.EMAIL:
        values["emailTo"] = ", ".join(str(a) for a in c.config.get("to", []))
    return values


def _shown(
    request: Request,
    who: session.Visitor,
    channel: Channel | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status_code: int = 200,
    retype: frozenset[str] = frozenset(),
) -> Response:
    return page(
        request,
        "channel_form.html",
        status_code=status_code,
        visitor=who,
        channel=channel,
        summary=None if channel is None else summary(channel),
        types=TYPES,
        values=values,
        errors=errors,
        retype=retype,
    )


def _again(
    request: Request,
    who: session.Visitor,
    channel: Channel | None,
    form: dict[str, str],
    errors: dict[str, str],
) -> Response:
    """The form once more, with what was typed (but no secret) and a message by each bad
    field; a secret URL that was typed must be typed again."""
    values = {k: v for k, v in form.items() if k not in SECRET_FIELDS and k != "csrf"}
    values["isEnabled"] = "on" if form.get("isEnabled") == "on" else ""
    if channel is not None:
        values["type"] = channel.type.value
    retype = frozenset(f for f in SECRET_FIELDS if form.get(f, "").strip())
    return _shown(request, who, channel, values, errors, status_code=400, retype=retype)


# -- the list ---------------------------------------------------------------------------


@router.get("/channels")
async def channels(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    found = await services(request).store.channels.all(who.user.team_id)
    return page(
        request,
        "channels.html",
        visitor=who,
        channels=[(c, summary(c)) for c in found],
    )


# -- create -----------------------------------------------------------------------------


@router.get("/channels/new")
async def new_form(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return _shown(request, who, None, _values(None), {})


@router.post("/channels/new")
async def create(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    s = services(request)
    type_ = ChannelType(form["type"]) if form.get("type") in TYPES else None
    config = {} if type_ is None else _config(type_, form) or {}
    body = {
        "name": form.get("name", ""),
        "type": form.get("type", ""),
        "config": config,
        "isEnabled": form.get("isEnabled") == "on",
    }
    to = config.get("to", [])
    model, errors = None, {}
    try:
        model = CreateNotificationChannelRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = _errors(details(exc), type_, to)
    checked: dict[str, Any] = {}
    if type_ is not None:  # the config is judged even when the name is wrong
        try:
            checked = checked_config(s, type_, config)
        except ApiError as exc:
            errors = {**_errors(exc.details or [], type_, to), **errors}
    if errors or model is None or type_ is None:
        return _again(request, who, None, form, errors)
    made = await s.store.channels.create(
        who.user.team_id,
        name=model.name,
        type=type_,
        config=checked,
        is_enabled=model.isEnabled,
        at=s.clock.now_ms(),
    )
    if made.secret is not None:  # a webhook's: shown on this page, this once
        return await _channel_shown(request, who, made, status_code=201, secret=made.secret)
    return RedirectResponse(f"/channels/{made.id}", status_code=303)


# -- one channel ------------------------------------------------------------------------


@router.get("/channels/{channel_id}")
async def channel_page(request: Request, channel_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    return await _channel_shown(request, who, c, tested=request.query_params.get("tested", ""))


async def _channel_shown(
    request: Request,
    who: session.Visitor,
    c: Channel,
    *,
    status_code: int = 200,
    tested: str = "",
    secret: str | None = None,
    rotated: bool = False,
) -> Response:
    """A channel's page; ``secret``, a webhook's signing secret just made (``rotated``:
    in place of another), is shown only by the response that made it."""
    found, total = await services(request).store.deliveries.of_channel(
        who.user.team_id, c.id, limit=RECENT, offset=0
    )
    test = _tested(found, tested)
    return page(
        request,
        "channel.html",
        status_code=status_code,
        visitor=who,
        channel=c,
        summary=summary(c),
        deliveries=[(d, _shown_error(c, d.last_error)) for d in found],
        total=total,
        tested=test,
        tested_error=None if test is None else _shown_error(c, test.last_error),
        secret=secret,
        rotated=rotated,
    )


def _tested(found: list[Delivery], tested: str) -> Delivery | None:
    """The test just sent (named by the redirect after "Send test"), if listed."""
    if not _DELIVERY_ID.match(tested):
        return None
    return next((d for d in found if d.id == tested), None)


@router.get("/channels/{channel_id}/edit")
async def edit_form(request: Request, channel_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return _shown(request, who, c, _values(c), {})


@router.post("/channels/{channel_id}/edit")
async def update(request: Request, channel_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    s = services(request)
    # As on the monitor's form, an empty field leaves its value as it is; for a secret
    # URL, which the form never shows, that is how the current one is kept.
    config = _config(c.type, form)
    body: dict[str, Any] = {"isEnabled": form.get("isEnabled") == "on"}
    if form.get("name", "") != "":
        body["name"] = form["name"]
    if config is not None:
        body["config"] = config
    to = [] if config is None else config.get("to", [])
    model, errors = None, {}
    try:
        model = UpdateNotificationChannelRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = _errors(details(exc), c.type, to)
    checked = None
    if config is not None:
        try:
            checked = checked_config(s, c.type, config)
        except ApiError as exc:
            errors = {**_errors(exc.details or [], c.type, to), **errors}
    if errors or model is None:
        return _again(request, who, c, form, errors)
    try:
        await s.store.channels.update(
            who.user.team_id,
            c.id,
            name=model.name,
            config=checked,
            is_enabled=model.isEnabled,
            at=s.clock.now_ms(),
        )
    except ChannelNotFound:
        return not_found(request, who, "channel")
    return RedirectResponse(f"/channels/{c.id}", status_code=303)


@router.post("/channels/{channel_id}/rotate-secret")
async def rotate_secret(request: Request, channel_id: str) -> Response:
    """What the API's rotate-secret does: a new signing secret, shown on this page only;
    the old one stops signing at once."""
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    if c.type is not ChannelType.WEBHOOK:
        return refusal(
            request,
            who,
            status_code=400,
            title="No signing secret",
            message="Only webhook channels have a signing secret: nothing was changed.",
        )
    s = services(request)
    try:
        after = await s.store.channels.update(
            who.user.team_id,
            c.id,
            name=None,
            config=None,
            is_enabled=None,
            at=s.clock.now_ms(),
            rotate_secret=True,
        )
    except ChannelNotFound:
        return not_found(request, who, "channel")
    return await _channel_shown(request, who, after, secret=after.secret, rotated=True)


@router.post("/channels/{channel_id}/test")
async def send_test(request: Request, channel_id: str) -> Response:
    """What the API's test endpoint does: a ``test`` delivery, sent once now (a failed
    one is retried like any other), then the channel's page with its outcome."""
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    s = services(request)
    try:
        done = await trial.send_test(
            s.store, c, clock=s.clock, policy=s.policy, public_url=s.public_url, smtp=s.smtp
        )
    except ChannelNotFound:
        return not_found(request, who, "channel")
    return RedirectResponse(f"/channels/{c.id}?tested={done.id}", status_code=303)


@router.post("/channels/{channel_id}/delete")
async def delete(request: Request, channel_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    c = await _channel(request, who, channel_id)
    if c is None:
        return not_found(request, who, "channel")
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    try:
        await services(request).store.channels.delete(who.user.team_id, c.id)
    except ChannelNotFound:
        return not_found(request, who, "channel")
    return RedirectResponse("/channels", status_code=303)
