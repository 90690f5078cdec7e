"""GET /metrics (SPEC §9): the team's monitors from the database, the process's own
metrics, the metrics:read scope, and an exposition promtool accepts."""

import shutil
import subprocess
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.api import VALID, Api, add_results
from tests.support.seeding import make_key, team_id
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.domain import Status
from upwatch.metrics import CheckerMetrics, new_registry
from upwatch.store import Store

D, U = Status.DOWN, Status.UP
AT_S = 1_771_070_400  # add_results' first result, in seconds
MONITOR_FAMILIES = (
    "upwatch_monitor_up",
    "upwatch_monitor_state",
    "upwatch_monitor_response_time_seconds",
    "upwatch_monitor_last_check_timestamp_seconds",
    "upwatch_monitor_incident_open",
)
ALWAYS_NOW = {
    "name": "now",
    "schedule": {
        "type": "once",
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
    },
}


async def scrape(api: Api, key: str = "rw") -> dict[str, list[Sample]]:
    r = await api.call("GET", "/metrics", key=key)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def per_monitor(samples: list[Sample]) -> dict[str, float]:
    return {s.labels["monitor_id"]: s.value for s in samples}


async def monitor(api: Api, statuses: list[Status], **body: Any) -> str:
    """A monitor of acme's with these results (one at a time: add_results claims every
    monitor due)."""
    made = await api.create({**VALID, **body})
    if statuses:
        await add_results(api.store, await team_id(api.store), made["id"], statuses)
    return str(made["id"])


async def test_each_monitor_of_the_team_shows_its_last_check_and_state(api: Api) -> None:
    up = await monitor(api, [D, U], name="up", host="db.example.com", port=5432)
    down = await monitor(api, [U, D, D], name="down")
    never = await monitor(api, [], name="never checked")
    resting = await monitor(api, [D, D], name="in maintenance")
    r = await api.call(
        "POST", "/v1/maintenance-windows", json={**ALWAYS_NOW, "monitorIds": [resting]}
    )
    assert r.status_code == 201, r.text

    families = await scrape(api)

    assert per_monitor(families["upwatch_monitor_up"]) == {up: 1, down: 0, resting: 0}
    assert per_monitor(families["upwatch_monitor_state"]) == {
        up: 1,
        down: 2,
        never: 0,
        resting: 3,
    }
    assert per_monitor(families["upwatch_monitor_response_time_seconds"]) == {up: 0.007}
    assert per_monitor(families["upwatch_monitor_last_check_timestamp_seconds"]) == {
        up: AT_S + 0.001,
        down: AT_S + 0.002,
        resting: AT_S + 0.001,
    }
    assert per_monitor(families["upwatch_monitor_incident_open"]) == {
        up: 0,
        down: 1,
        never: 0,
        resting: 1,
    }
    [labelled] = [s for s in families["upwatch_monitor_state"] if s.labels["monitor_id"] == up]
    assert labelled.labels == {
        "monitor_id": up,
        "monitor_name": "up",
        "host": "db.example.com",
        "port": "5432",
    }


async def test_a_never_checked_monitor_has_no_up_sample(api: Api) -> None:
    never = await monitor(api, [])
    families = await scrape(api)
    assert families["upwatch_monitor_up"] == []
    assert families["upwatch_monitor_last_check_timestamp_seconds"] == []
    assert per_monitor(families["upwatch_monitor_state"]) == {never: 0}


async def test_another_teams_monitors_never_appear(api: Api) -> None:
    mine = await monitor(api, [D, D])
    await api.create({**VALID, "name": "beta's"}, key="other")
    families = await scrape(api)
    for name in MONITOR_FAMILIES:
        assert {s.labels["monitor_id"] for s in families[name]} <= {mine}, name
    theirs = await scrape(api, key="other")
    assert mine not in per_monitor(theirs["upwatch_monitor_state"])
    assert len(theirs["upwatch_monitor_state"]) == 1


async def test_a_key_without_metrics_read_is_403(api: Api) -> None:
    for key in ("ro", "wo"):
        r = await api.call("GET", "/metrics", key=key)
        assert r.status_code == 403
        assert r.json() == {
            "error": {"code": "FORBIDDEN", "message": "API key missing metrics:read scope"}
        }


@pytest.mark.parametrize("header", [None, "Bearer uptime_nope", "Basic abc"])
async def test_no_or_a_bad_key_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = await api.call("GET", "/metrics", key=None, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_metrics_is_not_in_the_api_document(api: Api) -> None:
    doc = (await api.call("GET", "/openapi.json", key=None)).json()
    assert "/metrics" not in doc["paths"]


async def test_the_process_metrics_come_with_the_monitors(store: Store) -> None:
    registry = new_registry()
    CheckerMetrics(registry)  # as `serve`'s checker thread registers them
    app = create_app(Settings(), store, registry=registry)
    key = await make_key(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/tcp-monitors/tcpm_unknown", headers=auth)).status_code == 404
        assert (await client.get("/nowhere", headers=auth)).status_code == 404
        r = await client.get("/metrics", headers=auth)
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in (
        "upwatch_checks",
        "upwatch_check_lateness_seconds",
        "upwatch_results_dropped",
        "upwatch_notification_attempts",
        "upwatch_http_requests",
        "upwatch_http_request_duration_seconds",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        *MONITOR_FAMILIES,
    ):
        assert name in families, name
    requests = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["upwatch_http_requests"].samples
        if s.name == "upwatch_http_requests_total"
    }
    assert requests == {
        ("/v1/tcp-monitors/{monitor_id}", "GET", "404"): 1,
        ("unmatched", "GET", "404"): 1,
    }


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install prometheus)",
)
async def test_the_exposition_passes_promtool(api: Api) -> None:
    await monitor(api, [D, U], name='quoted "name" with \\ and ünïcode')
    await monitor(api, [D, D], host="2001:db8::1")
    await monitor(api, [])
    await api.call("GET", "/v1/tcp-monitors")  # some HTTP metrics too
    r = await api.call("GET", "/metrics")
    assert r.status_code == 200
    done = subprocess.run(
        ["promtool", "check", "metrics"],
        input=r.content,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
