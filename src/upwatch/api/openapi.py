"""What the routes add to /openapi.json beyond their signatures: documented error
responses, request bodies read by hand (parsing.read_json), query parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from upwatch.api.models import Error
from upwatch.api.parsing import BODY_TIMEOUT_S, LIMIT_DEFAULT, LIMIT_MAX, MAX_OFFSET

_ERRORS = {
    400: "Invalid request (VALIDATION_ERROR), or LIMIT_EXCEEDED on create",
    401: "Missing or invalid API key (UNAUTHORIZED)",
    403: "API key missing the required scope (FORBIDDEN)",
    404: "Not found (NOT_FOUND)",
    408: f"Request body not received within {BODY_TIMEOUT_S:g} s (REQUEST_TIMEOUT)",
    413: "Request body over 64 KiB (PAYLOAD_TOO_LARGE)",
    429: "Rate limit of the API key exceeded (RATE_LIMITED); see Retry-After",
    503: "Database unavailable or server overloaded (SERVICE_UNAVAILABLE); retry",
}


def errors(*statuses: int, not_found: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The error responses of an authenticated route: those given, plus 408 where a body
    is read, and 429 and 503 everywhere. ``not_found`` names what a 404 means."""
    every = (*statuses, *((408,) if 413 in statuses else ()), 429, 503)
    text = dict(_ERRORS)
    if not_found is not None:
        text[404] = f"{not_found} not found (NOT_FOUND)"
    return {s: {"model": Error, "description": text[s]} for s in sorted(every)}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A request body read by hand, documented as ``model``: a named schema (added to
    the document by ``finish``), so generated clients get a class of that name."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def finish(doc: dict[str, Any], bodies: Sequence[type[BaseModel]]) -> dict[str, Any]:
    """FastAPI's document, finished: the request bodies' schemas under their names, and
    no 422 (the API answers a bad request with 400, never 422) nor its schemas."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in bodies:
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def query_integer(
    name: str, description: str, *, low: int, high: int, default: int
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": low, "maximum": high, "default": default},
    }


def page_parameters(noun: str) -> list[dict[str, Any]]:
    """``limit`` and ``offset`` of a list of ``noun`` (parsing.page reads them)."""
    return [
        query_integer(
            "limit",
            f"Number of {noun} to return (1-{LIMIT_MAX}, default: {LIMIT_DEFAULT})",
            low=1,
            high=LIMIT_MAX,
            default=LIMIT_DEFAULT,
        ),
        query_integer(
            "offset", f"Number of {noun} to skip (default: 0)", low=0, high=MAX_OFFSET, default=0
        ),
    ]
