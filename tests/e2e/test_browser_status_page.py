"""A status page in Chromium, against a live `upwatch serve` that really checked two
monitors (one on a closed port, one on a listening one): without JavaScript it shows the
overall state, each service's state and 90 daily bars; axe-core finds no serious or
critical violation in light, dark or narrow views; an unknown page is a 404 page.
Screenshots of every view land in test-output/screenshots/ (tests/support/browser.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.browser import check_accessibility, console_errors, screenshot
from tests.support.listeners import closed_port, listener
from tests.support.servers import Env, stop

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# Slow: about 10 s, 4 of them starting `serve` and Chromium and waiting for checks.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

STATE_TIMEOUT_S = 10
DOWN, UP = "Mail relay", "Primary database"
# JavaScript on (axe needs it; the pages have none, so they render the same).
VIEWS: dict[str, dict[str, Any]] = {
    "light": {"color_scheme": "light"},
    "dark": {"color_scheme": "dark"},
    # WCAG's reflow width: the content fits without scrolling sideways.
    "narrow": {"color_scheme": "light", "viewport": {"width": 320, "height": 740}},
}


@dataclass
class Site:
    base: str
    slug: str


def wait_for_state(client: httpx.Client, monitor_id: str, state: str) -> None:
    deadline = time.monotonic() + STATE_TIMEOUT_S
    seen = None
    while time.monotonic() < deadline:
        seen = client.get(f"/v1/tcp-monitors/{monitor_id}").json()["data"]["state"]
        if seen == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{monitor_id} is {seen}, not {state}, after {STATE_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = Env(tmp_path_factory.mktemp("browser"))
    key = env.key(team="acme")
    proc = env.start()
    try:
        with (
            listener() as up_sock,
            httpx.Client(
                base_url=env.base, headers={"Authorization": f"Bearer {key}"}, timeout=5
            ) as client,
        ):
            ids = []
            for name, port in ((DOWN, closed_port()), (UP, up_sock.getsockname()[1])):
                body = {"name": name, "host": "127.0.0.1", "port": port, "confirmationChecks": 1}
                r = client.post("/v1/tcp-monitors", json=body)
                assert r.status_code == 201, r.text
                ids.append(r.json()["data"]["id"])
            wait_for_state(client, ids[0], "down")
            wait_for_state(client, ids[1], "up")
            page = {"name": "Acme status", "slug": "acme", "monitorIds": ids}
            r = client.post("/v1/status-pages", json=page)
            assert r.status_code == 201, r.text
            yield Site(env.base, "acme")
    finally:
        stop(proc)


async def visit(browser: Browser, url: str, status: int, name: str) -> None:
    """Open the page in each view: no console error (a stylesheet blocked by the CSP, a
    missing asset), no sideways scrolling, no serious or critical axe violation, a
    screenshot."""
    for view, options in VIEWS.items():
        context = await browser.new_context(**options)
        try:
            page = await context.new_page()
            errors = console_errors(page)
            response = await page.goto(url)
            assert response is not None
            assert response.status == status
            if status != 200:  # Chromium reports the document's own status
                errors = [e for e in errors if f"status of {status}" not in e]
            assert errors == [], view
            await stylesheet_applies(page)
            width = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert width[0] <= width[1], f"{view}: scrolls sideways ({width[0]} > {width[1]} px)"
            await check_accessibility(page)
            await screenshot(page, f"{name}-{view}")
        finally:
            await context.close()


async def stylesheet_applies(page: Page) -> None:
    margin = await page.locator("body").evaluate("b => getComputedStyle(b).marginTop")
    assert margin == "0px", "upwatch.css did not apply"


async def test_a_status_page_shows_states_and_bars_without_javascript(
    browser: Browser, site: Site
) -> None:
    url = f"{site.base}/status/{site.slug}"
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        response = await page.goto(url)
        assert response is not None
        assert response.status == 200
        await stylesheet_applies(page)
        assert await page.title() == "Acme status"
        assert (await page.get_by_role("status").inner_text()).strip() == "Partial outage"
        services = page.locator("article.service")
        assert await services.locator("h3").all_inner_texts() == [DOWN, UP]
        for name, state in ((DOWN, "down"), (UP, "up")):
            service = services.filter(has=page.get_by_role("heading", name=name, exact=True))
            assert await service.locator("div.bars > span.bar").count() == 90
            shown = service.locator(".state")
            assert (await shown.text_content() or "").strip() == state
            assert await shown.get_attribute("class") == f"state state-{state}"
            assert (await shown.inner_text()).strip() == state.capitalize()
        await screenshot(page, "status-page-nojs")
    finally:
        await context.close()
    await visit(browser, url, 200, "status-page")


async def test_an_unknown_status_page_is_a_404_page(browser: Browser, site: Site) -> None:
    url = f"{site.base}/status/nope"
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        response = await page.goto(url)
        assert response is not None
        assert response.status == 404
        assert await page.title() == "Not found · upwatch"
        heading = page.get_by_role("heading", level=1)
        assert (await heading.inner_text()).strip() == "Not found"
        assert "no status page here" in await page.locator("main").inner_text()
    finally:
        await context.close()
    await visit(browser, url, 404, "not-found")
