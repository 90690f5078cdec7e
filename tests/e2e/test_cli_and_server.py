"""The `upwatch` command and a live server, as a user meets them: keys from the CLI, the
README's curl flow against `upwatch serve`, real checks, a restart, and bad start-ups."""

import asyncio
import collections
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.listeners import closed_port, listener
from tests.support.servers import Env, free_port, stop

CHECK_TIMEOUT_S = 10


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.fixture
def server(env: Env) -> Iterator[subprocess.Popen[str]]:
    proc = env.start()
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def curl(*args: str) -> Any:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return json.loads(done.stdout) if done.stdout else None


def wait_for_results(base: str, key: str, monitor_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{base}/v1/tcp-monitors/{monitor_id}/results",
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        if r.json()["data"]:
            return r.json()["data"]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no result for {monitor_id} within {CHECK_TIMEOUT_S} s")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_flow_checks_for_real_and_survives_a_restart(
    env: Env, server: subprocess.Popen[str]
) -> None:
    key = env.key()
    auth = f"Authorization: Bearer {key}"
    api = f"{env.base}/v1/tcp-monitors"
    with listener() as sock:
        up_port = sock.getsockname()[1]
        up = curl(
            api,
            "-H",
            auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(
                {
                    "name": "local",
                    "host": "127.0.0.1",
                    "port": up_port,
                    "timeoutMs": 10000,
                    "intervalSeconds": 60,
                }
            ),
        )["data"]
        down = curl(
            api,
            "-H",
            auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"name": "closed", "host": "localhost", "port": closed_port()}),
        )["data"]
        assert [m["id"] for m in curl(api, "-H", auth)["data"]] == [up["id"], down["id"]]
        assert curl(f"{api}/{up['id']}", "-H", auth)["data"]["name"] == "local"
        up_results = wait_for_results(env.base, key, up["id"])
        down_results = wait_for_results(env.base, key, down["id"])
    assert up_results[0]["status"] == "up"
    assert isinstance(up_results[0]["responseTimeMs"], int)
    assert down_results[0]["status"] == "down"
    assert down_results[0]["error"] == "Connection refused"
    changed = curl(
        f"{api}/{up['id']}",
        "-X",
        "PUT",
        "-H",
        auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"timeoutMs": 15000, "isEnabled": false}',
    )
    assert (changed["data"]["timeoutMs"], changed["data"]["isEnabled"]) == (15000, False)
    page = curl(f"{api}/{up['id']}/results?limit=10&offset=0", "-H", auth)
    assert page["pagination"]["total"] >= 1
    assert curl(f"{api}/{down['id']}", "-X", "DELETE", "-H", auth) is None

    stop(server)
    again = env.start()
    try:
        listing = httpx.get(api, headers={"Authorization": f"Bearer {key}"}, timeout=5).json()
        assert [m["id"] for m in listing["data"]] == [up["id"]]
        assert listing["data"][0]["isEnabled"] is False
        kept = httpx.get(
            f"{api}/{up['id']}/results", headers={"Authorization": f"Bearer {key}"}, timeout=5
        ).json()
        assert kept["data"][-1] == up_results[-1]
    finally:
        stop(again)


def test_the_server_refuses_endless_headers(env: Env, server: subprocess.Popen[str]) -> None:
    """`serve` runs the guarded protocol (tests/integration/test_http_limits.py)."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(100):  # 100 KiB of headers, never finished
                conn.sendall(b"X-Filler: " + b"f" * 1024 + b"\r\n")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_keys_revoked_on_the_cli_stop_working_at_once(
    env: Env, server: subprocess.Popen[str]
) -> None:
    key = env.key("tcp-monitors:read")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{env.base}/v1/tcp-monitors", headers=headers).status_code == 200
    listed = json.loads(env.upwatch("keys", "list", "--json").stdout)
    [entry] = listed
    assert set(entry) == {
        "id",
        "team",
        "name",
        "scopes",
        "prefix",
        "createdAt",
        "lastUsedAt",
        "revokedAt",
    }
    assert entry["scopes"] == ["tcp-monitors:read"]
    assert key.startswith(entry["prefix"])
    assert key not in env.upwatch("keys", "list").stdout
    assert env.upwatch("keys", "revoke", entry["id"]).returncode == 0
    assert httpx.get(f"{env.base}/v1/tcp-monitors", headers=headers).status_code == 401


def test_team_limits_changed_on_the_cli_apply_at_once(
    env: Env, server: subprocess.Popen[str]
) -> None:
    key = env.key()
    headers = {"Authorization": f"Bearer {key}"}
    assert env.upwatch("teams", "update", "acme", "--max-monitors", "1").returncode == 0
    body = {"name": "x", "host": "127.0.0.1", "port": closed_port(), "isEnabled": False}
    assert httpx.post(f"{env.base}/v1/tcp-monitors", json=body, headers=headers).status_code == 201
    r = httpx.post(f"{env.base}/v1/tcp-monitors", json=body, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "LIMIT_EXCEEDED")
    teams = json.loads(env.upwatch("teams", "list", "--json").stdout)
    assert [(t["name"], t["maxMonitors"], t["monitorCount"]) for t in teams] == [("acme", 1, 1)]


BURST = 200


async def _burst(base: str, requests: list[tuple[str, str, Any]], key: str) -> list[httpx.Response]:
    """Every request at once, each on a connection of its own."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(client.request(m, path, json=body, headers=headers) for m, path, body in requests)
        )


async def test_an_idle_server_answers_a_burst_of_parallel_requests_in_full(
    env: Env, server: subprocess.Popen[str]
) -> None:
    """Terraform, CI scripts and bulk imports send many requests at once: a burst the
    server can absorb is answered, not refused as an overload (SPEC §11)."""
    limit = BURST * 3 // 4
    assert env.upwatch("teams", "create", "acme", "--max-monitors", str(limit)).returncode == 0
    port = closed_port()
    creates = [
        ("POST", "/v1/tcp-monitors", {"name": f"m{i}", "host": "127.0.0.1", "port": port})
        for i in range(BURST)
    ]
    created = await _burst(env.base, creates, env.key())
    statuses = collections.Counter(r.status_code for r in created)
    assert statuses == {201: limit, 400: BURST - limit}, statuses
    assert {r.json()["error"]["code"] for r in created if r.status_code == 400} == {
        "LIMIT_EXCEEDED"
    }
    ids = [r.json()["data"]["id"] for r in created if r.status_code == 201]
    reads = [("GET", f"/v1/tcp-monitors/{ids[i % len(ids)]}", None) for i in range(BURST)]
    read = await _burst(env.base, reads, env.key())
    assert collections.Counter(r.status_code for r in read) == {200: BURST}


def test_team_commands(env: Env) -> None:
    assert env.upwatch("teams", "create", "ops", "--max-monitors", "5").returncode == 0
    again = env.upwatch("teams", "create", "ops")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    missing = env.upwatch("teams", "update", "nobody", "--max-monitors", "1")
    assert missing.returncode == 1
    assert "nobody" in missing.stderr
    assert "ops" in env.upwatch("teams", "list").stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("UPWATCH_PORT", "eighty"),
        ("UPWATCH_DATABASE_URL", "mysql://x/y"),
        ("UPWATCH_LOG_LEVEL", "chatty"),
        ("UPWATCH_MAX_MONITORS_PER_TEAM", "many"),
    ],
)
def test_a_bad_variable_stops_the_command_with_one_line(
    env: Env, variable: str, value: str
) -> None:
    done = env.upwatch("serve", **{variable: value})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert variable in lines[0]


def test_an_unreachable_database_is_one_line_not_a_traceback(env: Env) -> None:
    done = env.upwatch(
        "serve",
        "--port",
        str(free_port()),
        UPWATCH_DATABASE_URL=f"postgresql://upwatch@127.0.0.1:{closed_port()}/nothing",
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot open database" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_taken_port_is_one_line(env: Env) -> None:
    with listener() as sock:
        done = env.upwatch("serve", "--port", str(sock.getsockname()[1]))
    assert done.returncode == 1
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_cli_arguments_are_usage_errors(env: Env) -> None:
    done = env.upwatch("keys", "create", "--team", "acme", "--scope", "tcp-monitors:admin")
    assert done.returncode == 2
    assert "unknown scope" in done.stderr
    assert done.stdout == ""
