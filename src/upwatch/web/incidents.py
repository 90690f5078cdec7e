"""/incidents: the team's incidents, open first (SPEC §10)."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
