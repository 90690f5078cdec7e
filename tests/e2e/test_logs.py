"""Logs an operator can ship: a live `upwatch serve` at DEBUG with UPWATCH_LOG_FORMAT=json
through a whole flow (a key from the CLI, monitors, channels with secrets and tokens, an
incident, notifications sent and failed, a test send, errors), then every line it wrote:
each one JSON object with the required fields, and no secret anywhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.listeners import closed_port, listener
from tests.support.receivers import receiving
from tests.support.servers import KEY_LINE, Env, stop
from upwatch.domain import SCOPES
from upwatch.store import Store

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"debug", "info", "warning", "error", "critical"}
SMTP_PASSWORD = "smtp-Pa55-9c1e"
DB_PASSWORD = "db-Pa55-77f0"
SLACK_TOKEN = "XoxbSlackToken4242"
APPRISE_TOKEN = "AppriseToken1717"
DELIVERIES = 3  # webhook, Slack and Apprise reach the receiver; the e-mail cannot


def with_password(url: str) -> str:
    """A PostgreSQL URL with a password in it (the tests' server trusts any)."""
    parts = urlsplit(url)
    if parts.password or not parts.username:
        return url
    netloc = f"{parts.username}:{DB_PASSWORD}@{parts.netloc.split('@', 1)[1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def json_lines(output: str) -> Iterator[dict[str, Any]]:
    """Every line of ``output`` as a JSON object with the fields every line has."""
    for line in output.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(parsed, dict), line
        assert TIME.match(parsed["time"]), line
        assert parsed["level"] in LEVELS, line
        assert isinstance(parsed["logger"], str), line
        assert parsed["logger"], line
        assert isinstance(parsed["message"], str), line
        yield parsed


@pytest.fixture
def env(tmp_path: Path, store: Store, database_url: str) -> Env:
    """``store``: the database, emptied (its tables, on PostgreSQL)."""
    env = Env(tmp_path)
    env.vars |= {
        "UPWATCH_DATABASE_URL": with_password(database_url),
        "UPWATCH_LOG_FORMAT": "json",
        "UPWATCH_LOG_LEVEL": "debug",
        "UPWATCH_SMTP_URL": f"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{closed_port()}",
    }
    return env


async def test_every_line_is_json_with_its_fields_and_no_secret(env: Env) -> None:
    made = env.upwatch("keys", "create", "--team", "acme", *[f"--scope={s}" for s in SCOPES])
    assert made.returncode == 0, made.stderr
    assert KEY_LINE.match(made.stdout), made.stdout
    key = made.stdout.strip()
    cli_lines = list(json_lines(made.stderr))
    secrets = [key, SMTP_PASSWORD, DB_PASSWORD, SLACK_TOKEN, APPRISE_TOKEN]

    proc = env.start()
    try:
        auth = {"Authorization": f"Bearer {key}"}
        async with (
            receiving() as receiver,
            httpx.AsyncClient(base_url=env.base, headers=auth, timeout=20) as client,
        ):
            channels = [
                {"name": "hook", "type": "webhook", "config": {"url": receiver.url("/hook")}},
                {
                    "name": "slack",
                    "type": "slack",
                    "config": {"url": receiver.url(f"/services/T0/B0/{SLACK_TOKEN}")},
                },
                {
                    "name": "apprise",
                    "type": "apprise",
                    "config": {"url": f"json://127.0.0.1:{receiver.port}/a/{APPRISE_TOKEN}"},
                },
                {"name": "mail", "type": "email", "config": {"to": ["ops@example.com"]}},
            ]
            ids = []
            for body in channels:
                r = await client.post("/v1/notification-channels", json=body)
                assert r.status_code == 201, r.text
                ids.append(r.json()["data"]["id"])
                if body["type"] == "webhook":
                    secrets.append(r.json()["data"]["secret"])
            tested = await client.post(f"/v1/notification-channels/{ids[1]}/test")
            assert tested.json()["data"]["status"] == "delivered", tested.text
            with listener() as up:
                for name, port in (("up", up.getsockname()[1]), ("down", closed_port())):
                    body = {
                        "name": name,
                        "host": "127.0.0.1",
                        "port": port,
                        "intervalSeconds": 10,
                        "confirmationChecks": 1,
                        "notificationChannelIds": ids,
                    }
                    r = await client.post("/v1/tcp-monitors", json=body)
                    assert r.status_code == 201, r.text
                monitor_id = r.json()["data"]["id"]
                await receiver.wait_for(1 + DELIVERIES, timeout_s=20)  # the test, then these
            asked = await client.get(
                f"/v1/tcp-monitors/{monitor_id}?key={key}", headers={"X-Request-Id": "op-1"}
            )
            assert asked.headers["x-request-id"] == "op-1"
            await client.get("/v2/nothing")
            wrong = {"Authorization": "Bearer uptime_" + "Z" * 40}
            assert (await client.get("/v1/tcp-monitors", headers=wrong)).status_code == 401
    finally:
        output = stop(proc)

    lines = list(json_lines(output))
    for secret in secrets:
        assert secret not in output, f"{secret[:10]}… in the server's log"
        assert secret not in made.stderr
    assert "uptime_ZZZZ" not in output

    loggers = {x["logger"] for x in lines}
    assert any(n.startswith("uvicorn") for n in loggers), loggers
    assert any(n.startswith("alembic") for n in [*loggers, *(x["logger"] for x in cli_lines)])
    access = [x for x in lines if x["logger"] == "upwatch.access"]
    mine = [x for x in access if x.get("request_id") == "op-1"]
    assert [(x["method"], x["path"], x["status"]) for x in mine] == [
        ("GET", "/v1/tcp-monitors/{monitor_id}", 200)
    ]
    assert isinstance(mine[0]["duration_ms"], float)
    assert ("/v2/nothing", 404) in [(x["path"], x["status"]) for x in access]
    assert all(x["request_id"] for x in access)
    opened = [x for x in lines if x["logger"] == "upwatch.store.notices"]
    assert [x["monitor_id"] for x in opened] == [monitor_id]
    assert opened[0]["incident_id"].startswith("tcpi_")
    sent = [x for x in lines if x.get("delivery_id") and "delivered" in x["message"]]
    assert len(sent) >= DELIVERIES
    assert all(x["channel_id"] in ids and x["monitor_id"] == monitor_id for x in sent)
    failed = [x for x in lines if x.get("channel_id") == ids[3] and "failed" in x["message"]]
    assert failed, "the e-mail's failed attempt is logged"


def test_a_bad_log_format_stops_the_command_at_start(tmp_path: Path) -> None:
    env = Env(tmp_path)
    done = env.upwatch("serve", "--log-format", "xml")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "upwatch: --log-format: Input should be 'text' or 'json'"
    ]
    done = env.upwatch("migrate", UPWATCH_LOG_FORMAT="yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("upwatch: UPWATCH_LOG_FORMAT: "), done.stderr


def test_a_failed_start_is_a_json_line_too(tmp_path: Path) -> None:
    env = Env(tmp_path)
    with listener() as taken:
        done = env.upwatch(
            "serve", "--port", str(taken.getsockname()[1]), UPWATCH_LOG_FORMAT="json"
        )
    assert done.returncode == 1
    [line] = json_lines(done.stderr)
    assert line["level"] == "error"
    assert line["message"].startswith("cannot listen on 127.0.0.1:")
