"""Reading request bodies and query strings strictly, after auth and lookup.

Bodies are parsed here rather than by FastAPI's body parameters, so that the order of
checks SPEC.md fixes holds: 401, then 403, then 404, and only then 400.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from upwatch.api.errors import ApiError, validation_error

MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0  # a client trickling its body cannot hold a request slot for long
MAX_QUERY_BYTES = 1024  # `limit` and `offset` fit in 50; anything longer is abuse
MAX_OFFSET = 2**63 - 1  # a 64-bit integer in both databases

Model = TypeVar("Model", bound=BaseModel)


def payload_too_large() -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY_BYTES} bytes")


async def read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise payload_too_large()
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408, "REQUEST_TIMEOUT", f"Request body not received within {BODY_TIMEOUT_S:g} s"
        ) from None
    return b"".join(chunks)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json(request: Request, model: type[Model]) -> Model:
    if not _is_json(request.headers.get("content-type", "")):
        raise validation_error("Content-Type must be application/json")
    body = await read_body(request)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise validation_error("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise validation_error("Request body must be a JSON object")
    nulls = [{"field": str(k), "message": "must not be null"} for k, v in data.items() if v is None]
    if nulls:
        raise validation_error("Invalid request body", nulls)
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise validation_error("Invalid request body", details(exc)) from None


# Fields holding a union told apart by its "type" (a window's schedule): pydantic puts the
# member's tag in an error's location (schedule.recurring.rrule); clients know the field
# by its path in the body (schedule.rrule).
TAGGED_UNIONS = frozenset({"schedule"})
# An optional field of an update (``X | None``, null kept out of the API document) is a
# union to pydantic: a bad value fails both members, so it reports the value's error under
# the member's label (name.constrained-str, schedule.tagged-union[…]) and "Input should be
# None" under ``none``. A body's nulls are refused before validation (read_json), so the
# second says nothing: it is dropped, and the label with it.
_NONE_MEMBER = "none"


def _optional_unions(errors: list[ErrorDetails]) -> set[tuple[int | str, ...]]:
    """Where an optional field's union failed: the locations whose ``none`` member
    failed along with another member."""
    nones = {
        e["loc"][:-1]
        for e in errors
        if e["type"] == "none_required" and e["loc"][-1:] == (_NONE_MEMBER,)
    }
    return {
        at
        for at in nones
        if any(
            e["loc"][: len(at)] == at and e["loc"][len(at) : len(at) + 1] != (_NONE_MEMBER,)
            for e in errors
            if len(e["loc"]) > len(at)
        )
    }


def _located(loc: tuple[int | str, ...], unions: set[tuple[int | str, ...]]) -> list[int | str]:
    """``loc`` as the body spells it: without an optional union's member label, and
    without a tagged union's tag."""
    parts: list[int | str] = []
    tag_next = False
    for i, part in enumerate(loc):
        if loc[:i] in unions:  # the member label of an optional field's union
            continue
        if tag_next:
            tag_next = False
            continue
        parts.append(part)
        tag_next = part in TAGGED_UNIONS
    return parts


def details(exc: ValidationError) -> list[dict[str, str]]:
    errors = exc.errors(include_url=False)
    unions = _optional_unions(errors)
    details = []
    for err in errors:
        if err["loc"][:-1] in unions and err["loc"][-1:] == (_NONE_MEMBER,):
            continue
        # A check across fields names the field it blames in its context.
        named = (err.get("ctx") or {}).get("field")
        field = named or ".".join(str(part) for part in _located(err["loc"], unions)) or "body"
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "is required"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        details.append({"field": field, "message": message})
    return details


def query_int(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high]: digits only, given at most once, in a
    query string of at most MAX_QUERY_BYTES."""
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        raise validation_error(f"Query string exceeds {MAX_QUERY_BYTES} bytes")
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise validation_error(
            "Invalid query parameters", [{"field": name, "message": "must be given at most once"}]
        )
    raw = values[0]
    message = f"must be an integer from {low} to {high}"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise validation_error("Invalid query parameters", [{"field": name, "message": message}])
    value = int(raw)
    if not low <= value <= high:
        raise validation_error("Invalid query parameters", [{"field": name, "message": message}])
    return value


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    """An optional query parameter that must be one of ``choices``, given at most once."""
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        raise validation_error(f"Query string exceeds {MAX_QUERY_BYTES} bytes")
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1 or values[0] not in choices:
        message = f"must be one of: {', '.join(choices)} (at most once)"
        raise validation_error("Invalid query parameters", [{"field": name, "message": message}])
    return values[0]


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def query_time(request: Request, name: str) -> int | None:
    """An optional RFC 3339 time with its offset (``2026-02-14T12:00:00Z``), in ms."""
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        raise validation_error(f"Query string exceeds {MAX_QUERY_BYTES} bytes")
    values = request.query_params.getlist(name)
    if not values:
        return None
    problem = "must be an RFC 3339 time with an offset, e.g. 2026-02-14T12:00:00Z (at most once)"
    if len(values) > 1 or not _RFC3339.match(values[0]):
        raise validation_error("Invalid query parameters", [{"field": name, "message": problem}])
    text = values[0].upper().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat takes at most microseconds: keep the milliseconds
        digits = rest[: len(rest) - 6]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(rest) - 6 :]}"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise validation_error(
            "Invalid query parameters", [{"field": name, "message": problem}]
        ) from None
    return (at - _EPOCH) // timedelta(milliseconds=1)


def only_query(request: Request, *names: str) -> None:
    """400 for a query parameter the route does not take (most likely a typo: ``limt``)."""
    unknown = sorted({k for k in request.query_params if k not in names})
    if unknown:
        raise validation_error(
            "Invalid query parameters", [{"field": unknown[0], "message": "unknown parameter"}]
        )


LIMIT_DEFAULT, LIMIT_MAX = 50, 200  # every paginated list


def page(request: Request) -> tuple[int, int]:
    """``limit`` (1-200, default 50) and ``offset`` (default 0) of a paginated list."""
    limit = query_int(request, "limit", default=LIMIT_DEFAULT, low=1, high=LIMIT_MAX)
    offset = query_int(request, "offset", default=0, low=0, high=MAX_OFFSET)
    return limit, offset
