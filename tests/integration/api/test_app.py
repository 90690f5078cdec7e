"""The app as a whole: unknown routes, wrong methods, unexpected failures, /healthz,
/openapi.json, and the vendored schemas."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import SCHEMAS, SHARED_SCHEMAS, Api, schema
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.store import Store


async def test_unknown_routes_are_404_in_the_error_format(api: Api) -> None:
    r = await api.call("GET", "/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "NOT_FOUND", "message": "Not found"}}


async def test_wrong_methods_are_405(api: Api) -> None:
    r = await api.call("PATCH", "/v1/tcp-monitors")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in r.headers["allow"]


async def test_unexpected_failures_are_500_without_a_trace(store: Store) -> None:
    app: FastAPI = create_app(Settings(), store)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}}


async def test_healthz_answers_without_a_key(api: Api) -> None:
    r = await api.call("GET", "/healthz", key=None)
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    from upwatch.store import open_engine

    store = Store(open_engine(f"sqlite:///{tmp_path}/missing/dir/x.db"), default_max_monitors=1)
    transport = httpx.ASGITransport(app=create_app(Settings(), store))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/healthz")
    await store.close()
    assert (r.status_code, r.json()) == (503, {"status": "unavailable"})


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``{"$ref": "#/components/schemas/X"}`` -> X's schema."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


async def test_openapi_names_read_well_in_generated_clients(api: Api) -> None:
    """SPEC "Beyond the seed": camelCase operationIds, plain schema names, no 422."""
    doc = (await api.call("GET", "/openapi.json", key=None)).json()
    operations = [op for path in doc["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in ids), ids
    assert {"listTcpMonitors", "createTcpMonitor", "getTcpMonitor", "updateTcpMonitor"} <= set(ids)
    assert all("422" not in op["responses"] for op in operations)
    names = set(doc["components"]["schemas"])
    assert {"TcpMonitor", "CreateTcpMonitorRequest", "UpdateTcpMonitorRequest", "Error"} <= names
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", n) for n in names), names
    assert not names & {"HTTPValidationError", "ValidationError"}


async def test_openapi_describes_the_api(api: Api) -> None:
    r = await api.call("GET", "/openapi.json", key=None)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    assert set(paths["/v1/tcp-monitors"]) == {"get", "post"}
    assert set(paths["/v1/tcp-monitors/{monitor_id}"]) == {"get", "put", "delete"}
    assert set(paths["/v1/tcp-monitors/{monitor_id}/results"]) == {"get"}
    create = paths["/v1/tcp-monitors"]["post"]
    assert {"201", "400", "401", "403"} <= set(create["responses"])
    documented = resolve(doc, create["requestBody"]["content"]["application/json"]["schema"])
    seed = schema("create-monitor.request")
    assert documented["required"] == seed["required"]
    assert documented["additionalProperties"] is False
    for field, spec in seed["properties"].items():
        for word in (
            "type",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "default",
            "description",
        ):
            if word in spec:
                assert documented["properties"][field][word] == spec[word], (field, word)
    update = paths["/v1/tcp-monitors/{monitor_id}"]["put"]["requestBody"]["content"]
    update_schema = resolve(doc, update["application/json"]["schema"])
    for field, spec in schema("update-monitor.request")["properties"].items():
        assert update_schema["properties"][field] == spec, field
    params = {
        p["name"]: p for p in paths["/v1/tcp-monitors/{monitor_id}/results"]["get"]["parameters"]
    }
    assert params["limit"]["schema"]["maximum"] == 200
    assert "bearer" in json.dumps(doc["components"]["securitySchemes"]).lower()


def test_vendored_schemas_equal_the_shared_ones() -> None:
    if not SHARED_SCHEMAS.is_dir():
        pytest.skip("no ../shared/schemas beside this clone")
    for original in SHARED_SCHEMAS.glob("*.json"):
        assert json.loads(original.read_text()) == json.loads((SCHEMAS / original.name).read_text())
