"""The API in process: an httpx client on the ASGI app, keys for one team and another,
and checks of response bodies against the API document's schemas."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from upwatch.domain import Observation, Outcome, Status
from upwatch.scheduler.planning import plan
from upwatch.store import Store

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SHARED_SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
VALID = {"name": "PostgreSQL Production", "host": "db.example.com", "port": 5432}


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def conforms(body: Any, name: str) -> None:
    jsonschema.validate(body, schema(name), format_checker=jsonschema.FormatChecker())
    for item in body["data"] if isinstance(body["data"], list) else [body["data"]]:
        for field in ("lastCheckedAt", "createdAt", "updatedAt", "checkedAt"):
            if item.get(field) is not None:
                assert TIMESTAMP.match(item[field]), item[field]


class Api:
    def __init__(self, client: httpx.AsyncClient, store: Store, keys: dict[str, str]) -> None:
        self.client = client
        self.store = store
        self.keys = keys

    async def call(
        self, method: str, path: str, key: str | None = "rw", **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {self.keys[key]}")
        return await self.client.request(method, path, headers=headers, **kw)

    async def create(self, body: dict[str, Any] | None = None, key: str = "rw") -> dict[str, Any]:
        r = await self.call("POST", "/v1/tcp-monitors", key, json=body or VALID)
        assert r.status_code == 201, r.text
        return r.json()["data"]  # type: ignore[no-any-return]


async def add_results(store: Store, team: int, monitor_id: str, statuses: list[Status]) -> None:
    at = 1_771_070_400_000
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=1000, planner=partial(plan, at=10**15)
    )
    [check] = [p.check for p in plans if p.check.monitor_id == monitor_id]
    observations = [
        Observation(
            check,
            Outcome(s, response_time_ms=7)
            if s is Status.UP
            else Outcome(s, error="Connection refused"),
            at + i,
        )
        for i, s in enumerate(statuses)
    ]
    await store.results.save(observations)
