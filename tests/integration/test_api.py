"""The HTTP API in process, on SQLite and PostgreSQL: every status and error code of the
API document, every bad input of SPEC.md §4, and every 2xx body against its schema."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from tests.conftest import make_key, team_id
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.domain import SCOPE_READ, SCOPE_WRITE, Observation, Outcome, Status
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


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    keys = {
        "rw": await make_key(store, "acme"),
        "ro": await make_key(store, "acme", (SCOPE_READ,)),
        "wo": await make_key(store, "acme", (SCOPE_WRITE,)),
        "other": await make_key(store, "beta"),
    }
    app = create_app(Settings(), store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as client:
        yield Api(client, store, keys)


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


# -- the five endpoints -------------------------------------------------------------------


async def test_create_returns_201_with_defaults(api: Api) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json=VALID)
    assert r.status_code == 201
    body = r.json()
    conforms(body, "create-monitor.response")
    m = body["data"]
    assert (m["timeoutMs"], m["intervalSeconds"], m["isEnabled"]) == (5000, 60, True)
    assert (m["lastCheckedAt"], m["lastStatus"], m["lastResponseTimeMs"]) == (None, None, None)
    assert m["createdAt"] == m["updatedAt"]


async def test_get_and_list_return_the_monitor(api: Api) -> None:
    m = await api.create({**VALID, "timeoutMs": 10000, "intervalSeconds": 60})
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}")
    assert r.status_code == 200
    conforms(r.json(), "get-monitor.response")
    assert r.json()["data"] == m
    r = await api.call("GET", "/v1/tcp-monitors")
    assert r.status_code == 200
    conforms(r.json(), "list-monitors.response")
    assert r.json()["data"] == [m]


async def test_update_changes_only_given_fields(api: Api) -> None:
    m = await api.create()
    await asyncio.sleep(0.005)
    r = await api.call(
        "PUT", f"/v1/tcp-monitors/{m['id']}", json={"timeoutMs": 15000, "isEnabled": False}
    )
    assert r.status_code == 200
    conforms(r.json(), "update-monitor.response")
    after = r.json()["data"]
    assert (after["timeoutMs"], after["isEnabled"]) == (15000, False)
    assert {k: v for k, v in after.items() if k not in ("timeoutMs", "isEnabled", "updatedAt")} == {
        k: v for k, v in m.items() if k not in ("timeoutMs", "isEnabled", "updatedAt")
    }
    assert after["updatedAt"] > m["updatedAt"]
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"] == after


async def test_an_empty_update_changes_nothing_but_updated_at(api: Api) -> None:
    m = await api.create()
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json={})
    assert r.status_code == 200
    assert r.json()["data"]["name"] == m["name"]


async def test_delete_returns_204_and_the_monitor_is_gone(api: Api) -> None:
    m = await api.create()
    r = await api.call("DELETE", f"/v1/tcp-monitors/{m['id']}")
    assert r.status_code == 204
    assert r.content == b""
    for method, path in (
        ("GET", f"/v1/tcp-monitors/{m['id']}"),
        ("GET", f"/v1/tcp-monitors/{m['id']}/results"),
        ("DELETE", f"/v1/tcp-monitors/{m['id']}"),
    ):
        r = await api.call(method, path)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "NOT_FOUND"


async def test_results_are_newest_first_with_pagination(api: Api) -> None:
    m = await api.create()
    team = await team_id(api.store, "acme")
    await add_results(api.store, team, m["id"], [Status.UP, Status.DOWN, Status.TIMEOUT])
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results")
    assert r.status_code == 200
    body = r.json()
    conforms(body, "list-results.response")
    assert [x["status"] for x in body["data"]] == ["timeout", "down", "up"]
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}
    up = body["data"][2]
    assert up["responseTimeMs"] == 7
    assert "error" not in up
    assert body["data"][1]["responseTimeMs"] is None
    assert body["data"][1]["error"] == "Connection refused"
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?limit=1&offset=1")
    assert [x["status"] for x in r.json()["data"]] == ["down"]
    assert r.json()["pagination"] == {"total": 3, "limit": 1, "offset": 1}
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?offset=10")
    assert r.json()["data"] == []
    monitor = (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"]
    assert monitor["lastStatus"] == "timeout"
    assert monitor["lastCheckedAt"] == body["data"][0]["checkedAt"]
    conforms({"data": monitor}, "get-monitor.response")


@pytest.mark.parametrize("query", ["limit=1", "limit=200", "offset=0", "limit=50&offset=3"])
async def test_page_bounds_just_inside_are_accepted(api: Api, query: str) -> None:
    m = await api.create()
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?{query}")
    assert r.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "offset=-1",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%201",
        "limit=1&limit=2",
        "offset=99999999999999999999",
        "limit=+5",
    ],
)
async def test_bad_page_parameters_are_400(api: Api, query: str) -> None:
    m = await api.create()
    r = await api.call("GET", f"/v1/tcp-monitors/{m['id']}/results?{query}")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] in ("limit", "offset")


# -- keys, scopes, teams -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token {key}",
        "Bearer uptime_short",
        "Bearer uptime_" + "x" * 40,
        "Bearer {key}x",
        "{key}",
    ],
)
async def test_missing_or_invalid_keys_are_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(key=api.keys["rw"])}
    r = await api.call("GET", "/v1/tcp-monitors", key=None, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"] == "Bearer"
    assert api.keys["rw"] not in r.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_scheme_word_is_case_insensitive(api: Api, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {api.keys['rw']}"}
    r = await api.call("GET", "/v1/tcp-monitors", key=None, headers=headers)
    assert r.status_code == 200


async def test_a_revoked_key_is_401_at_once(api: Api) -> None:
    assert (await api.call("GET", "/v1/tcp-monitors")).status_code == 200
    [key] = [k for k in await api.store.keys.all("acme") if api.keys["rw"].startswith(k.prefix)]
    await api.store.keys.revoke(key.id, at=1)
    r = await api.call("GET", "/v1/tcp-monitors")
    assert r.status_code == 401


async def test_a_read_only_key_cannot_write(api: Api) -> None:
    m = await api.create()
    for method, path, body in (
        ("POST", "/v1/tcp-monitors", VALID),
        ("PUT", f"/v1/tcp-monitors/{m['id']}", {"name": "x"}),
        ("DELETE", f"/v1/tcp-monitors/{m['id']}", None),
    ):
        r = await api.call(method, path, "ro", json=body)
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "FORBIDDEN"
        assert "tcp-monitors:write" in r.json()["error"]["message"]
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}", "ro")).json()["data"] == m


async def test_a_write_only_key_cannot_read(api: Api) -> None:
    m = await api.create(key="wo")
    for path in (
        "/v1/tcp-monitors",
        f"/v1/tcp-monitors/{m['id']}",
        f"/v1/tcp-monitors/{m['id']}/results",
    ):
        r = await api.call("GET", path, "wo")
        assert r.status_code == 403, path
        assert "tcp-monitors:read" in r.json()["error"]["message"]


async def test_another_teams_monitor_is_404_everywhere(api: Api) -> None:
    m = await api.create()
    for method, path, body in (
        ("GET", f"/v1/tcp-monitors/{m['id']}", None),
        ("PUT", f"/v1/tcp-monitors/{m['id']}", {"name": "stolen"}),
        ("DELETE", f"/v1/tcp-monitors/{m['id']}", None),
        ("GET", f"/v1/tcp-monitors/{m['id']}/results", None),
    ):
        r = await api.call(method, path, "other", json=body)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "NOT_FOUND"
    assert (await api.call("GET", "/v1/tcp-monitors", "other")).json()["data"] == []
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"] == m


@pytest.mark.parametrize("monitor_id", ["tcpm_nope", "nope", "tcpm_" + "a" * 300, "tcpm_a%20b"])
async def test_unknown_monitor_ids_are_404(api: Api, monitor_id: str) -> None:
    r = await api.call("GET", f"/v1/tcp-monitors/{monitor_id}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"


async def test_errors_come_in_order_401_403_404_400(api: Api) -> None:
    bad_body = {"port": "nope"}
    unknown = "/v1/tcp-monitors/tcpm_unknown"
    r = await api.call("PUT", unknown, key=None, json=bad_body)
    assert r.status_code == 401
    r = await api.call("PUT", unknown, "ro", json=bad_body)
    assert r.status_code == 403
    r = await api.call("PUT", unknown, "rw", json=bad_body)
    assert r.status_code == 404
    r = await api.call("GET", unknown + "/results?limit=abc", "rw")
    assert r.status_code == 404
    r = await api.call(
        "POST", "/v1/tcp-monitors", "ro", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 403


async def test_the_monitor_limit_holds_under_parallel_creates(api: Api) -> None:
    await api.store.teams.update("acme", 3)
    responses = await asyncio.gather(
        *(api.call("POST", "/v1/tcp-monitors", json=VALID) for _ in range(12))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [400] * 9
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 400} == {
        "LIMIT_EXCEEDED"
    }
    assert len((await api.call("GET", "/v1/tcp-monitors")).json()["data"]) == 3


# -- bad input ----------------------------------------------------------------------------


BAD_CREATES = [
    ({**VALID, "port": "5432"}, "port"),
    ({**VALID, "port": True}, "port"),
    ({**VALID, "port": 5432.0}, "port"),
    ({**VALID, "port": 0}, "port"),
    ({**VALID, "port": 65536}, "port"),
    ({**VALID, "timeoutMs": 99}, "timeoutMs"),
    ({**VALID, "timeoutMs": 60001}, "timeoutMs"),
    ({**VALID, "intervalSeconds": 9}, "intervalSeconds"),
    ({**VALID, "intervalSeconds": 86401}, "intervalSeconds"),
    ({**VALID, "isEnabled": "yes"}, "isEnabled"),
    ({**VALID, "isEnabled": 1}, "isEnabled"),
    ({**VALID, "name": ""}, "name"),
    ({**VALID, "name": "n" * 256}, "name"),
    ({**VALID, "name": 5}, "name"),
    ({**VALID, "host": ""}, "host"),
    ({**VALID, "host": "h" * 256}, "host"),
    ({**VALID, "host": "https://db.example.com"}, "host"),
    ({**VALID, "host": "db.example.com/x"}, "host"),
    ({**VALID, "host": "db.example.com:5432"}, "host"),
    ({**VALID, "host": "db example.com"}, "host"),
    ({**VALID, "extra": 1}, "extra"),
    ({**VALID, "name": None}, "name"),
    ({**VALID, "timeoutMs": None}, "timeoutMs"),
    ({**VALID, "isEnabled": None}, "isEnabled"),
    ({"host": "db.example.com", "port": 5432}, "name"),
    ({"name": "x", "port": 5432}, "host"),
    ({"name": "x", "host": "db.example.com"}, "port"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATES)
async def test_bad_creates_are_400_and_change_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in error["details"]]
    assert (await api.call("GET", "/v1/tcp-monitors")).json()["data"] == []


BAD_UPDATES = [
    {"port": "5432"},
    {"port": 0},
    {"port": 65536},
    {"timeoutMs": 99},
    {"timeoutMs": 60001},
    {"intervalSeconds": 9},
    {"intervalSeconds": 86401},
    {"isEnabled": "no"},
    {"name": ""},
    {"name": "n" * 256},
    {"host": "tcp://x"},
    {"host": ""},
    {"name": None},
    {"port": None},
    {"id": "tcpm_other"},
    {"lastStatus": "up"},
]


@pytest.mark.parametrize("body", BAD_UPDATES)
async def test_bad_updates_are_400_and_change_nothing(api: Api, body: dict[str, Any]) -> None:
    m = await api.create()
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"] == m


GOOD_EDGES = [
    {"port": 1},
    {"port": 65535},
    {"timeoutMs": 100},
    {"timeoutMs": 60000},
    {"intervalSeconds": 10},
    {"intervalSeconds": 86400},
    {"name": "n"},
    {"name": "n" * 255},
    {"host": "h"},
    {"host": "h" * 63 + "." + "h" * 63 + "." + "h" * 63 + "." + "h" * 61},
    {"host": "::1"},
    {"host": "192.0.2.1"},
    {"isEnabled": False},
]


@pytest.mark.parametrize("edge", GOOD_EDGES)
async def test_bounds_just_inside_are_accepted(api: Api, edge: dict[str, Any]) -> None:
    m = await api.create({**VALID, **edge})
    assert all(m[k] == v for k, v in edge.items())
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json=edge)
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "x", ', "application/json"),
        (b"", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b"null", "application/json"),
        (json.dumps(VALID).encode(), "text/plain"),
        (json.dumps(VALID).encode(), "application/x-www-form-urlencoded"),
        (json.dumps(VALID).encode(), None),
        (b"\xff\xfe", "application/json"),
    ],
)
async def test_malformed_bodies_are_400(api: Api, content: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = await api.call("POST", "/v1/tcp-monitors", content=content, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_json_with_a_charset_is_accepted(api: Api) -> None:
    r = await api.call(
        "POST",
        "/v1/tcp-monitors",
        content=json.dumps(VALID).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201


async def test_bodies_over_64_kib_are_413(api: Api) -> None:
    big = json.dumps({**VALID, "name": "n" * 70_000}).encode()
    r = await api.call(
        "POST", "/v1/tcp-monitors", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b" " * 1024

    r = await api.call(
        "POST", "/v1/tcp-monitors", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert (await api.call("GET", "/v1/tcp-monitors")).json()["data"] == []


# -- everything else ----------------------------------------------------------------------


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
    documented = create["requestBody"]["content"]["application/json"]["schema"]
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
    update_schema = update["application/json"]["schema"]
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


@pytest.mark.parametrize("host", ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"])
async def test_a_literal_address_in_a_denied_range_is_400(api: Api, host: str) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, "host": host})
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [{"field": "host", "message": "address not allowed"}]
    m = await api.create()
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json={"host": host})
    assert r.status_code == 400
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"] == m
    r = await api.call("PUT", "/v1/tcp-monitors/tcpm_unknown", json={"host": host})
    assert r.status_code == 404


async def test_the_operator_can_allow_a_denied_range(store: Store) -> None:
    key = await make_key(store)
    settings = Settings(target_allow="169.254.169.254/32")
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post(
            "/v1/tcp-monitors",
            json={**VALID, "host": "169.254.169.254"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 201


async def test_a_key_over_its_rate_limit_gets_429_with_headers(store: Store) -> None:
    key, other = await make_key(store), await make_key(store, "beta")
    app = create_app(Settings(rate_limit_per_minute=3), store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def get(k: str, path: str = "/v1/tcp-monitors") -> httpx.Response:
            return await client.get(path, headers={"Authorization": f"Bearer {k}"})

        answers = [await get(key) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
        assert {r.headers["ratelimit-limit"] for r in answers} == {"3"}
        limited = await get(key)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        assert "ratelimit-reset" in limited.headers
        assert (await get(key, "/v1/tcp-monitors/tcpm_unknown")).status_code == 429
        assert (await get(other)).status_code == 200
        unauthenticated = await client.get("/v1/tcp-monitors")
        assert unauthenticated.status_code == 401
        assert "ratelimit-limit" not in unauthenticated.headers


async def test_a_limit_of_zero_turns_rate_limiting_off(store: Store) -> None:
    key = await make_key(store)
    transport = httpx.ASGITransport(app=create_app(Settings(rate_limit_per_minute=0), store))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(5):
            r = await client.get("/v1/tcp-monitors", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200
            assert "ratelimit-limit" not in r.headers
