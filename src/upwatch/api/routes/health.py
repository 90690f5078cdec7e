"""/healthz: does the database answer? No key needed."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from fastapi import APIRouter
from starlette.responses import Response

from upwatch.api.deps import Deps
from upwatch.api.models import Health
from upwatch.api.responses import JSON

router = APIRouter(tags=["Operations"])


@router.get(
    "/healthz",
    operation_id="getHealth",
    summary="Health",
    description="200 when the database answers, 503 otherwise. No key needed.",
    responses={200: {"model": Health}, 503: {"model": Health}},
)
async def healthz(s: Deps) -> Response:
    if await s.store.ping():
        return JSON({"status": "ok"})
    return JSON({"status": "unavailable"}, status_code=503)
