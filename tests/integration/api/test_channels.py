"""/v1/notification-channels (SPEC §7): CRUD, secrets shown once, redacted URLs, strict
input, monitors' notificationChannelIds, deliveries, and a test sent for real."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.api import VALID, Api
from tests.support.receivers import receiving
from tests.support.seeding import make_key
from upwatch.api import create_app
from upwatch.config import Settings
from upwatch.store import Store

PATH = "/v1/notification-channels"
HOOK = {"name": "ops", "type": "webhook", "config": {"url": "https://hooks.example.invalid/x"}}
SLACK = {
    "name": "chat",
    "type": "slack",
    "config": {"url": "https://hooks.slack.example.invalid/services/T0/B0/secret"},
}


async def create(api: Api, body: dict[str, Any] = HOOK) -> dict[str, Any]:
    r = await api.call("POST", PATH, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_a_webhook_channel_shows_its_secret_only_when_made(api: Api) -> None:
    made = await create(api)
    assert made["id"].startswith("nch_")
    assert made["secret"].startswith("whsec_")
    assert (made["type"], made["isEnabled"], made["disabledReason"]) == ("webhook", True, None)
    got = (await api.call("GET", f"{PATH}/{made['id']}")).json()["data"]
    assert "secret" not in got
    assert got["config"] == HOOK["config"]
    listed = (await api.call("GET", PATH)).json()["data"]
    assert [c["id"] for c in listed] == [made["id"]]
    assert all("secret" not in c for c in listed)
    rotated = await api.call("POST", f"{PATH}/{made['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["data"]["secret"] not in (None, made["secret"])


async def test_slack_urls_are_never_shown_whole(api: Api) -> None:
    made = await create(api, SLACK)
    assert made["config"] == {"url": "https://hooks.slack.example.invalid/…"}
    assert "secret" not in made
    r = await api.call("POST", f"{PATH}/{made['id']}/rotate-secret")
    assert r.status_code == 400


async def test_update_changes_what_is_given_but_never_the_type(api: Api) -> None:
    made = await create(api)
    r = await api.call("PUT", f"{PATH}/{made['id']}", json={"name": "pager", "isEnabled": False})
    assert r.status_code == 200
    assert (r.json()["data"]["name"], r.json()["data"]["isEnabled"]) == ("pager", False)
    r = await api.call("PUT", f"{PATH}/{made['id']}", json={"type": "slack"})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["field"] == "type"
    r = await api.call("PUT", f"{PATH}/{made['id']}", json={"type": "webhook"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HOOK, "config": {"url": "ftp://x.example.invalid/"}}, "config.url"),
        ({**HOOK, "config": {"url": "https://"}}, "config.url"),
        ({**HOOK, "config": {"url": "https://a b.example.invalid/"}}, "config.url"),
        ({**HOOK, "config": {"url": 5}}, "config.url"),
        ({**HOOK, "config": {}}, "config.url"),
        ({**HOOK, "config": {"url": "https://x.example.invalid/", "extra": 1}}, "config.extra"),
        ({**HOOK, "config": {"url": "http://169.254.169.254/latest"}}, "config.url"),
        ({**HOOK, "type": "pager"}, "type"),
        ({**HOOK, "type": "email", "config": {"to": ["a@example.invalid"]}}, "type"),
        ({**HOOK, "type": "apprise", "config": {"url": "nope://x.example.invalid"}}, "config.url"),
        ({**HOOK, "type": "apprise", "config": {"url": "json://169.254.169.254/"}}, "config.url"),
        ({**HOOK, "type": "apprise", "config": {"url": 7}}, "config.url"),
        ({**HOOK, "name": ""}, "name"),
        ({**HOOK, "name": None}, "name"),
        ({**HOOK, "isEnabled": "yes"}, "isEnabled"),
        ({**HOOK, "secret": "whsec_x"}, "secret"),
        ({"name": "x", "config": {"url": "https://x.example.invalid/"}}, "type"),
    ],
)
async def test_bad_channels_are_400_and_change_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = await api.call("POST", PATH, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    assert (await api.call("GET", PATH)).json()["data"] == []


async def test_monitors_name_their_channels_of_the_same_team(api: Api) -> None:
    first, second = await create(api), await create(api, SLACK)
    foreign = (await api.call("POST", PATH, json=HOOK, key="other")).json()["data"]
    monitor = await api.create({**VALID, "notificationChannelIds": [second["id"], first["id"]]})
    assert monitor["notificationChannelIds"] == [second["id"], first["id"]]
    for ids in ([foreign["id"]], ["nch_missing"], [first["id"], first["id"]]):
        r = await api.call(
            "PUT", f"/v1/tcp-monitors/{monitor['id']}", json={"notificationChannelIds": ids}
        )
        assert r.status_code == 400, ids
        assert r.json()["error"]["details"][0]["field"] == "notificationChannelIds"
    r = await api.call(
        "POST", "/v1/tcp-monitors", json={**VALID, "notificationChannelIds": [foreign["id"]]}
    )
    assert r.status_code == 400
    listed = (await api.call("GET", "/v1/tcp-monitors")).json()["data"]
    assert [m["notificationChannelIds"] for m in listed] == [[second["id"], first["id"]]]
    await api.call("DELETE", f"{PATH}/{second['id']}")
    got = (await api.call("GET", f"/v1/tcp-monitors/{monitor['id']}")).json()["data"]
    assert got["notificationChannelIds"] == [first["id"]]
    r = await api.call(
        "PUT", f"/v1/tcp-monitors/{monitor['id']}", json={"notificationChannelIds": []}
    )
    assert r.json()["data"]["notificationChannelIds"] == []


async def test_a_test_notification_is_sent_now_and_listed(api: Api) -> None:
    async with receiving() as rx:
        made = await create(api, {**HOOK, "config": {"url": rx.url()}})
        r = await api.call("POST", f"{PATH}/{made['id']}/test")
        assert r.status_code == 200
        delivery = r.json()["data"]
        [received] = await rx.wait_for(1)
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == ("test", "delivered", 1)
    assert received.headers["webhook-id"] == delivery["id"]
    assert received.json()["data"]["channel"]["id"] == made["id"]
    listed = (await api.call("GET", f"{PATH}/{made['id']}/deliveries")).json()
    assert listed["pagination"]["total"] == 1
    assert listed["data"][0]["id"] == delivery["id"]


async def test_channels_need_their_own_scopes_and_team(api: Api) -> None:
    made = await create(api)
    assert (await api.call("GET", PATH, key="ro")).status_code == 403  # tcp-monitors:read only
    assert (await api.call("GET", f"{PATH}/{made['id']}", key="other")).status_code == 404
    assert (await api.call("DELETE", f"{PATH}/{made['id']}", key="other")).status_code == 404
    assert (await api.call("GET", f"{PATH}/nch_missing")).status_code == 404
    assert (await api.call("GET", f"{PATH}/{made['id']}/deliveries?limit=0")).status_code == 400
    assert (await api.call("DELETE", f"{PATH}/{made['id']}")).status_code == 204
    assert (await api.call("GET", f"{PATH}/{made['id']}")).status_code == 404


async def test_apprise_urls_are_checked_and_shown_redacted(api: Api) -> None:
    made = await create(
        api,
        {"name": "ntfy", "type": "apprise", "config": {"url": "json://hooks.example.invalid/x"}},
    )
    assert made["config"] == {"url": "json://hooks.example.invalid/…"}


@pytest.mark.parametrize(
    ("to", "field"),
    [
        ([], "config.to"),
        (["ops@example.invalid"] * 2, "config.to"),
        ([f"a{i}@example.invalid" for i in range(21)], "config.to"),
        (["not an address"], "config.to.0"),
        (["ops@example.invalid", "x@"], "config.to.1"),
        (["ops@-bad-.invalid"], "config.to.0"),
        ("ops@example.invalid", "config.to"),
    ],
)
async def test_email_channels_need_smtp_and_good_addresses(
    store: Store, to: Any, field: str
) -> None:
    body = {"name": "mail", "type": "email", "config": {"to": to}}
    async with client_for(store, Settings()) as (http, key):
        r = await http.post(PATH, json={**body, "config": {"to": ["ops@corp.local"]}}, headers=key)
        assert r.status_code == 400
        assert r.json()["error"]["details"][0] == {
            "field": "type",
            "message": "email channels need UPWATCH_SMTP_URL, which is not set",
        }
    async with client_for(store, Settings(smtp_url="smtp://127.0.0.1:2525")) as (http, key):
        r = await http.post(PATH, json=body, headers=key)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["details"][0]["field"] == field
        r = await http.post(PATH, json={**body, "config": {"to": ["ops@corp.local"]}}, headers=key)
        assert r.status_code == 201
        assert r.json()["data"]["config"] == {"to": ["ops@corp.local"]}


@contextlib.asynccontextmanager
async def client_for(
    store: Store, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    key = await make_key(store, "mailers")
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://upwatch.test") as http:
        yield http, {"Authorization": f"Bearer {key}"}
