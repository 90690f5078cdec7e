"""Statistics (SPEC §9): one monitor's summary and series, and the team's summary."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader, Services
from upwatch.api.errors import ApiError, validation_error
from upwatch.api.models import MonitorStatsEnvelope, StatsSeries, TeamStats
from upwatch.api.parsing import only_query, query_choice, query_time
from upwatch.api.responses import JSON
from upwatch.api.routes.monitors import PREFIX, monitor_id_or_404
from upwatch.domain import rfc3339
from upwatch.stats import BUCKETS_MS, DAY_MS, MAX_BUCKETS, bucket_starts
from upwatch.wire import bucket_json, stats_json, team_stats_json

router = APIRouter(tags=["Statistics"])

DEFAULT_RANGE_MS = DAY_MS
# A client's clock a little ahead of ours is not an error: `to` up to this far in the
# future is read as now.
CLOCK_SKEW_MS = 60_000
_RANGE_RULE = (
    "`from` and `to` are RFC 3339 times with an offset; the default range is the last "
    "24 hours (`to` defaults to now, `from` to 24 hours before `to`). `from` must be "
    "before `to`, `to` not in the future, and `from` within the statistics retention "
    "(UPWATCH_ROLLUP_RETENTION_DAYS, 400 days by default)."
)


@dataclass(frozen=True, slots=True)
class Range:
    start: int
    end: int
    now: int


def _bad(field: str, message: str) -> ApiError:
    return validation_error("Invalid query parameters", [{"field": field, "message": message}])


def read_range(request: Request, s: Services) -> Range:
    now = s.clock.now_ms()
    given_to = query_time(request, "to")
    end = now if given_to is None else given_to
    if end > now + CLOCK_SKEW_MS:
        raise _bad("to", "must not be in the future")
    end = min(end, now)
    given_from = query_time(request, "from")
    start = end - DEFAULT_RANGE_MS if given_from is None else given_from
    if start >= end:
        raise _bad("from", "must be before to (and before now)")
    oldest = now - s.rollup_retention_days * DAY_MS
    if start < oldest:
        raise _bad(
            "from",
            f"must be within the statistics retention: the last {s.rollup_retention_days} days",
        )
    return Range(start, end, now)


def _time_parameters() -> list[dict[str, object]]:
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string", "format": "date-time"},
        }
        for name, text in (
            ("from", "Start of the range (RFC 3339; default: 24 hours before `to`)"),
            ("to", "End of the range (RFC 3339; default: now)"),
        )
    ]


@router.get(
    PREFIX + "/{monitor_id}/stats",
    operation_id="getTcpMonitorStats",
    summary="Get a TCP monitor's statistics",
    description="Availability (time-based, maintenance excluded), downtime, incidents, "
    "check counts and response times over a range. Scope: `tcp-monitors:read`. " + _RANGE_RULE,
    responses={
        200: {"model": MonitorStatsEnvelope},
        **openapi.errors(400, 401, 403, 404, not_found="TCP monitor"),
    },
    openapi_extra={"parameters": _time_parameters()},
)
async def monitor_stats(request: Request, monitor_id: str, who: Reader, s: Deps) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        only_query(request, "from", "to")
        r = read_range(request, s)
    except ApiError:
        await s.store.monitors.require(who.team_id, monitor_id)  # 404 before 400
        raise
    summary = await s.store.statistics.summary(
        who.team_id,
        monitor_id,
        r.start,
        r.end,
        now=r.now,
        raw_since=r.now - s.result_retention_days * DAY_MS,
    )
    return JSON({"data": stats_json(summary)})


@router.get(
    PREFIX + "/{monitor_id}/stats/series",
    operation_id="getTcpMonitorStatsSeries",
    summary="Get a TCP monitor's statistics over time",
    description="Availability, check count and response times per bucket of `5m`, `1h` "
    "(default) or `1d`, aligned to UTC, oldest first, every bucket present (at most "
    f"{MAX_BUCKETS}). `5m` buckets need raw results (UPWATCH_RESULT_RETENTION_DAYS). "
    "Scope: `tcp-monitors:read`. " + _RANGE_RULE,
    responses={
        200: {"model": StatsSeries},
        **openapi.errors(400, 401, 403, 404, not_found="TCP monitor"),
    },
    openapi_extra={
        "parameters": [
            *_time_parameters(),
            {
                "name": "bucket",
                "in": "query",
                "required": False,
                "description": "Bucket size (default: 1h)",
                "schema": {"type": "string", "enum": list(BUCKETS_MS), "default": "1h"},
            },
        ]
    },
)
async def monitor_series(request: Request, monitor_id: str, who: Reader, s: Deps) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        only_query(request, "from", "to", "bucket")
        r = read_range(request, s)
        bucket = query_choice(request, "bucket", tuple(BUCKETS_MS)) or "1h"
        size = BUCKETS_MS[bucket]
        count = len(bucket_starts(r.start, r.end, size))
        if count > MAX_BUCKETS:
            raise _bad(
                "bucket", f"the range holds {count} buckets of {bucket}: at most {MAX_BUCKETS}"
            )
        raw_since = r.now - s.result_retention_days * DAY_MS
        if bucket == "5m" and r.start - r.start % size < raw_since:
            raise _bad(
                "from",
                "5m buckets are built from raw results: it must be within the last "
                f"{s.result_retention_days} days",
            )
    except ApiError:
        await s.store.monitors.require(who.team_id, monitor_id)
        raise
    buckets = await s.store.statistics.series(
        who.team_id, monitor_id, r.start, r.end, size, now=r.now
    )
    return JSON({"data": [bucket_json(b) for b in buckets]})


@router.get(
    "/v1/stats/tcp-monitors",
    operation_id="listTcpMonitorStats",
    summary="Get every TCP monitor's statistics",
    description="For each monitor of your team: availability, downtime, incident count "
    "and p95 response time over a range (from hourly and daily rollups: the first and "
    "last hours count whole). Scope: `tcp-monitors:read`. " + _RANGE_RULE,
    responses={200: {"model": TeamStats}, **openapi.errors(400, 401, 403)},
    openapi_extra={"parameters": _time_parameters()},
)
async def team_stats(request: Request, who: Reader, s: Deps) -> Response:
    only_query(request, "from", "to")
    r = read_range(request, s)
    summaries = await s.store.statistics.team(who.team_id, r.start, r.end, now=r.now)
    return JSON(
        {
            "data": [team_stats_json(x) for x in summaries],
            "range": {"from": rfc3339(r.start), "to": rfc3339(r.end)},
        }
    )
