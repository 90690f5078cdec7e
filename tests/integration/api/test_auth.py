"""Keys, scopes, teams and rate limits: 401, 403, 404 across teams, 429, and the order
in which they apply."""

import httpx
import pytest

from tests.support.api import VALID, Api
from tests.support.seeding import make_key
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.store import Store


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
