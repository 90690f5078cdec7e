"""/v1/status-pages (SPEC §10): create, list, get, update, delete, on both databases;
every bad input is a 400 naming its field and changes nothing."""

from typing import Any

import pytest

from tests.support.api import VALID, Api

PAGES = "/v1/status-pages"


async def create_page(api: Api, body: dict[str, Any], key: str = "rw") -> dict[str, Any]:
    r = await api.call("POST", PAGES, key, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_a_page_is_created_listed_changed_and_deleted(api: Api) -> None:
    a = await api.create()
    b = await api.create({**VALID, "name": "b"})
    page = await create_page(
        api, {"name": "Acme", "slug": "acme", "monitorIds": [b["id"], a["id"]]}
    )
    assert page["id"].startswith("sp_")
    assert (page["isPublic"], page["showTargets"], page["url"]) == (True, False, "/status/acme")
    assert page["monitorIds"] == [b["id"], a["id"]]  # the order given
    assert (await api.call("GET", PAGES)).json()["data"] == [page]
    assert (await api.call("GET", f"{PAGES}/{page['id']}")).json()["data"] == page
    r = await api.call(
        "PUT", f"{PAGES}/{page['id']}", json={"slug": "acme-status", "isPublic": False}
    )
    assert r.status_code == 200
    after = r.json()["data"]
    assert (after["slug"], after["isPublic"], after["name"]) == ("acme-status", False, "Acme")
    assert (await api.call("DELETE", f"{PAGES}/{page['id']}")).status_code == 204
    assert (await api.call("GET", f"{PAGES}/{page['id']}")).status_code == 404


async def test_a_slug_is_unique_across_teams(api: Api) -> None:
    await create_page(api, {"name": "Acme", "slug": "shared"})
    r = await api.call("POST", PAGES, "other", json={"name": "Beta", "slug": "shared"})
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [{"field": "slug", "message": "is already taken"}]
    other = await create_page(api, {"name": "Beta", "slug": "beta"}, key="other")
    r = await api.call("PUT", f"{PAGES}/{other['id']}", "other", json={"slug": "shared"})
    assert r.status_code == 400
    r = await api.call("PUT", f"{PAGES}/{other['id']}", "other", json={"slug": "beta"})
    assert r.status_code == 200  # its own slug again is no conflict


async def test_another_teams_page_is_404(api: Api) -> None:
    page = await create_page(api, {"name": "Acme", "slug": "acme"})
    for method in ("GET", "DELETE"):
        assert (await api.call(method, f"{PAGES}/{page['id']}", "other")).status_code == 404
    r = await api.call("PUT", f"{PAGES}/{page['id']}", "other", json={"name": "x"})
    assert r.status_code == 404
    assert (await api.call("GET", PAGES, "other")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "slug": "abc"}, "name"),
        ({"name": "x", "slug": "ab"}, "slug"),
        ({"name": "x", "slug": "Has-Caps"}, "slug"),
        ({"name": "x", "slug": "a" * 65}, "slug"),
        ({"name": "x", "slug": "with space"}, "slug"),
        ({"name": "x", "slug": "ok-slug", "monitorIds": ["tcpm_nope"]}, "monitorIds"),
        ({"name": "x", "slug": "ok-slug", "isPublic": "yes"}, "isPublic"),
        ({"name": "x", "slug": "ok-slug", "showTargets": None}, "showTargets"),
        ({"name": "x", "slug": "ok-slug", "extra": 1}, "extra"),
        ({"slug": "ok-slug"}, "name"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_creates_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = await api.call("POST", PAGES, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    assert (await api.call("GET", PAGES)).json()["data"] == []


async def test_repeated_or_foreign_monitors_are_refused(api: Api) -> None:
    mine = await api.create()
    theirs = await api.create({**VALID, "name": "theirs"}, key="other")
    for ids in ([mine["id"], mine["id"]], [theirs["id"]]):
        r = await api.call("POST", PAGES, json={"name": "x", "slug": "page", "monitorIds": ids})
        assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (400, "monitorIds")


async def test_a_read_only_key_cannot_change_pages(api: Api) -> None:
    r = await api.call("POST", PAGES, "ro", json={"name": "x", "slug": "page"})
    assert r.status_code == 403
    assert (await api.call("GET", PAGES, "ro")).status_code == 200
