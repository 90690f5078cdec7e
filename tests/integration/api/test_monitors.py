"""/v1/tcp-monitors: create, get, list, update, delete; every bad input of SPEC.md §4
and the operator's target policy. In process, on SQLite and PostgreSQL."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import (
    VALID,
    Api,
    conforms,
)
from tests.support.seeding import make_key
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.store import Store


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


# -- ipFamily (SPEC §9) ----------------------------------------------------------------


async def test_ip_family_defaults_to_auto_and_can_be_set_and_changed(api: Api) -> None:
    m = await api.create()
    assert m["ipFamily"] == "auto"
    m = await api.create({**VALID, "host": "db.example.com", "ipFamily": "ipv6"})
    assert m["ipFamily"] == "ipv6"
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json={"ipFamily": "ipv4"})
    assert (r.status_code, r.json()["data"]["ipFamily"]) == (200, "ipv4")
    conforms(r.json(), "update-monitor.response")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"host": "127.0.0.1", "ipFamily": "ipv6"}, "is ipv6, but host is an IPv4 address"),
        ({"host": "::1", "ipFamily": "ipv4"}, "is ipv4, but host is an IPv6 address"),
        ({"ipFamily": "ipv5"}, None),
        ({"ipFamily": "IPV4"}, None),
        ({"ipFamily": 4}, None),
        ({"ipFamily": None}, "must not be null"),
    ],
)
async def test_a_bad_ip_family_is_400_naming_it_and_creates_nothing(
    api: Api, body: dict[str, Any], message: str | None
) -> None:
    r = await api.call("POST", "/v1/tcp-monitors", json={**VALID, **body})
    assert r.status_code == 400
    [detail] = r.json()["error"]["details"]
    assert detail["field"] == "ipFamily"
    if message:
        assert detail["message"] == message
    assert (await api.call("GET", "/v1/tcp-monitors")).json()["data"] == []


@pytest.mark.parametrize(
    ("stored", "change"),
    [
        ({"host": "127.0.0.1"}, {"ipFamily": "ipv6"}),
        ({"host": "db.example.com", "ipFamily": "ipv6"}, {"host": "10.0.0.1"}),
        ({"host": "db.example.com"}, {"host": "::1", "ipFamily": "ipv4"}),
    ],
)
async def test_an_update_contradicting_host_and_family_is_400_and_changes_nothing(
    api: Api, stored: dict[str, Any], change: dict[str, Any]
) -> None:
    m = await api.create({**VALID, **stored})
    r = await api.call("PUT", f"/v1/tcp-monitors/{m['id']}", json=change)
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["field"] == "ipFamily"
    assert (await api.call("GET", f"/v1/tcp-monitors/{m['id']}")).json()["data"] == m
