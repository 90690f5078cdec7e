"""A client generated from /openapi.json with openapi-python-client, as a new user would
make one, runs the README's flow: its operations and models are named as SPEC's
"Beyond the seed" asks, and every response, errors included, parses."""

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.api import VALID, add_results
from tests.support.seeding import make_key, team_id
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.domain import Status
from upwatch.store import Store

pytestmark = pytest.mark.slow

PACKAGE = "upwatch_generated_client"


@pytest.fixture
def generated(tmp_path: Path, store: Store) -> Iterator[ModuleType]:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(create_app(Settings(), store).openapi()))
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
        ],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every schema understood
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
            del sys.modules[name]


def part(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


async def test_the_readme_flow_through_a_generated_client(
    generated: ModuleType, store: Store
) -> None:
    key = await make_key(store, "acme")
    app = create_app(Settings(), store)
    transport = httpx.ASGITransport(app=app)
    base = "http://upwatch.test"
    client = generated.AuthenticatedClient(base_url=base, token=key)
    client.set_async_httpx_client(
        httpx.AsyncClient(
            transport=transport, base_url=base, headers={"Authorization": f"Bearer {key}"}
        )
    )
    monitors = "api.tcp_monitors"
    models = part(generated, "models")
    create = part(generated, f"{monitors}.create_tcp_monitor")
    body = models.CreateTcpMonitorRequest(
        name=VALID["name"], host=VALID["host"], port=VALID["port"], interval_seconds=30
    )
    created = await create.asyncio_detailed(client=client, body=body)
    assert created.status_code == 201
    monitor = created.parsed.data
    assert isinstance(monitor, models.TcpMonitor)
    assert (monitor.name, monitor.interval_seconds, monitor.state) == (VALID["name"], 30, "unknown")

    listed = await part(generated, f"{monitors}.list_tcp_monitors").asyncio(client=client)
    assert [m.id for m in listed.data] == [monitor.id]
    got = await part(generated, f"{monitors}.get_tcp_monitor").asyncio(monitor.id, client=client)
    assert got.data.id == monitor.id
    changes = models.UpdateTcpMonitorRequest(name="renamed", confirmation_checks=3)
    updated = await part(generated, f"{monitors}.update_tcp_monitor").asyncio(
        monitor.id, client=client, body=changes
    )
    assert (updated.data.name, updated.data.confirmation_checks) == ("renamed", 3)

    await add_results(store, await team_id(store), monitor.id, [Status.DOWN] * 3)
    results = await part(generated, f"{monitors}.list_tcp_monitor_results").asyncio(
        monitor.id, client=client, limit=2
    )
    assert [r.status for r in results.data] == ["down", "down"]
    assert results.pagination.total == 3
    incidents = await part(generated, "api.incidents.list_incidents").asyncio(
        client=client, status=models.ListIncidentsStatus.OPEN
    )
    [incident] = incidents.data
    assert (incident.monitor_id, incident.cause.status) == (monitor.id, "down")

    deleted = await part(generated, f"{monitors}.delete_tcp_monitor").asyncio_detailed(
        monitor.id, client=client
    )
    assert deleted.status_code == 204
    missing = await part(generated, f"{monitors}.get_tcp_monitor").asyncio_detailed(
        monitor.id, client=client
    )
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    assert missing.parsed.error.code == "NOT_FOUND"
    bad = await create.asyncio_detailed(
        client=client, body=models.CreateTcpMonitorRequest(name="x", host="a b", port=1)
    )
    assert bad.status_code == 400
    assert bad.parsed.error.details[0].field == "host"
