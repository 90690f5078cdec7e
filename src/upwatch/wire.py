"""The API's JSON objects, built from domain objects: the responses, and the payloads of
notifications, which carry the same objects (SPEC §7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from upwatch.domain import CheckResult, Monitor, rfc3339
from upwatch.incidents import Incident
from upwatch.maintenance import Once, Window, active, next_window
from upwatch.notifications import Channel, ChannelType, Delivery
from upwatch.stats import Bucket, Summary
from upwatch.statuspages import StatusPage


def monitor_json(m: Monitor) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "host": m.host,
        "port": m.port,
        "timeoutMs": m.timeout_ms,
        "intervalSeconds": m.interval_s,
        "isEnabled": m.is_enabled,
        "lastCheckedAt": None if m.last_checked_at is None else rfc3339(m.last_checked_at),
        "lastStatus": None if m.last_status is None else m.last_status.value,
        "lastResponseTimeMs": m.last_response_time_ms,
        "createdAt": rfc3339(m.created_at),
        "updatedAt": rfc3339(m.updated_at),
        "confirmationChecks": m.confirmation_checks,
        "recoveryChecks": m.recovery_checks,
        "state": m.state.value,
        "stateChangedAt": None if m.state_changed_at is None else rfc3339(m.state_changed_at),
        "openIncidentId": m.open_incident_id,
        "notificationChannelIds": list(m.channel_ids),
        "remindEveryMinutes": m.remind_every_minutes,
        "inMaintenance": m.in_maintenance,
        "ipFamily": m.ip_family.value,
    }


def result_json(r: CheckResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": r.id,
        "status": r.status.value,
        "responseTimeMs": r.response_time_ms,
        "checkedAt": rfc3339(r.checked_at),
        "dnsTimeMs": r.dns_time_ms,
        "connectTimeMs": r.connect_time_ms,
        "resolvedAddress": r.resolved_address,
    }
    if r.error is not None:
        body["error"] = r.error
    return body


def incident_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "monitorId": i.monitor_id,
        "status": "open" if i.is_open else "resolved",
        "startedAt": rfc3339(i.started_at),
        "confirmedAt": rfc3339(i.confirmed_at),
        "resolvedAt": None if i.resolved_at is None else rfc3339(i.resolved_at),
        "durationSeconds": None
        if i.resolved_at is None
        else round((i.resolved_at - i.started_at) / 1000, 3),
        "cause": {"status": i.cause_status.value, "error": i.cause_error},
        "endReason": None if i.end_reason is None else i.end_reason.value,
    }


def channel_json(c: Channel, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "type": c.type.value,
        "config": shown_config(c),
        "isEnabled": c.is_enabled,
        "disabledReason": c.disabled_reason,
        "createdAt": rfc3339(c.created_at),
        "updatedAt": rfc3339(c.updated_at),
    }
    if with_secret and c.secret is not None:
        body["secret"] = c.secret
    return body


def shown_config(c: Channel) -> dict[str, Any]:
    """A channel's config as the API shows it: the URLs of Slack and Apprise channels
    are secrets (whoever has one can post), so only ``scheme://host/…`` is shown."""
    if c.type in (ChannelType.SLACK, ChannelType.APPRISE):
        parts = urlsplit(str(c.config.get("url", "")))
        return {**c.config, "url": f"{parts.scheme}://{parts.hostname or ''}/…"}
    return dict(c.config)


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "channelId": d.channel_id,
        "event": d.event.value,
        "incidentId": d.incident_id,
        "monitorId": d.monitor_id,
        "status": d.status.value,
        "attempts": d.attempts,
        "lastAttemptAt": None if d.last_attempt_at is None else rfc3339(d.last_attempt_at),
        "lastError": d.last_error,
        "createdAt": rfc3339(d.created_at),
        "deliveredAt": None if d.delivered_at is None else rfc3339(d.delivered_at),
    }


def window_json(w: Window, *, at: int) -> dict[str, Any]:
    s = w.schedule
    if isinstance(s, Once):
        schedule: dict[str, Any] = {
            "type": "once",
            "startsAt": rfc3339(s.starts_at),
            "endsAt": rfc3339(s.ends_at),
        }
    else:
        schedule = {
            "type": "recurring",
            "rrule": s.rrule,
            "startTime": s.start_time,
            "durationMinutes": s.duration_minutes,
            "timezone": s.timezone,
            "startsOn": s.starts_on,
        }
    upcoming = next_window(s, at)
    return {
        "id": w.id,
        "name": w.name,
        "monitorIds": list(w.monitor_ids),
        "schedule": schedule,
        "active": active(s, at),
        "nextWindow": None
        if upcoming is None
        else {"startsAt": rfc3339(upcoming[0]), "endsAt": rfc3339(upcoming[1])},
        "createdAt": rfc3339(w.created_at),
        "updatedAt": rfc3339(w.updated_at),
    }


# -- statistics (SPEC §9) ------------------------------------------------------------------

_QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def stats_json(s: Summary) -> dict[str, Any]:
    times = s.checks.response_times(*_QUANTILES)
    return {
        "from": rfc3339(s.start),
        "to": rfc3339(s.end),
        "availabilityPercent": _percent(s.time.availability),
        "downtimeSeconds": s.time.down_ms / 1000,
        "maintenanceSeconds": s.time.maintenance_ms / 1000,
        "incidents": {
            "count": s.incidents.count,
            "longestSeconds": s.incidents.longest_s,
            "meanTimeToRecoverySeconds": s.incidents.mttr_s,
        },
        "checks": {
            "total": s.checks.total,
            "up": s.checks.up,
            "down": s.checks.down,
            "timeout": s.checks.timeout,
        },
        "responseTimeMs": {
            "min": s.checks.rt_min,
            "mean": times["mean"],
            "p50": times["p50"],
            "p95": times["p95"],
            "p99": times["p99"],
            "max": s.checks.rt_max,
        },
    }


def bucket_json(b: Bucket) -> dict[str, Any]:
    return {
        "start": rfc3339(b.start),
        "availabilityPercent": _percent(b.time.availability),
        "checks": b.checks.total,
        "responseTimeMs": {
            "p50": b.checks.percentile(0.50),
            "p95": b.checks.percentile(0.95),
            "max": b.checks.rt_max,
        },
    }


def team_stats_json(s: Summary) -> dict[str, Any]:
    return {
        "monitorId": s.monitor_id,
        "availabilityPercent": _percent(s.time.availability),
        "downtimeSeconds": s.time.down_ms / 1000,
        "incidents": {"count": s.incidents.count},
        "responseTimeMs": {"p95": s.checks.percentile(0.95)},
    }


def status_page_json(p: StatusPage, *, public_url: str = "") -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "slug": p.slug,
        "monitorIds": list(p.monitor_ids),
        "isPublic": p.is_public,
        "showTargets": p.show_targets,
        "url": f"{public_url.rstrip('/')}/status/{p.slug}",
        "createdAt": rfc3339(p.created_at),
        "updatedAt": rfc3339(p.updated_at),
    }
