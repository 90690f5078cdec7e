"""A monitor's response-time chart and the dashboard's sparklines in Chromium, against
a live `upwatch serve` whose database holds a day of results (every 2 minutes, a
20-minute outage 6 hours ago): uPlot draws p50 and p95 on a canvas from chart.json, the
range links fetch another range without a reload, no console error (a script or style
the CSP refuses would be one); without JavaScript the page says the chart needs it and
shows the rest. axe-core on every view; screenshots in test-output/screenshots/."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.browser import check_accessibility, console_errors, screenshot
from tests.support.listeners import listener
from tests.support.servers import Env, stop
from upwatch.domain import NewMonitor, Observation, Outcome, Status
from upwatch.maintenance import Recurring
from upwatch.notifications import ChannelType
from upwatch.scheduler.planning import plan
from upwatch.security import hash_password
from upwatch.store import Store, open_engine
from upwatch.users import Role

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# Slow: starting `serve` and Chromium, and a day of results written first.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery"
EMAIL = "ada@example.com"
M, H, D = 60_000, 3_600_000, 86_400_000
EVERY_MS = 2 * M
OUTAGE_AGO_MS, OUTAGE_MS = 6 * H, 20 * M  # it began 6 hours ago and lasted 20 minutes
DRAWN_TIMEOUT_MS = 10_000


@dataclass
class Site:
    base: str
    monitor_id: str


async def seed(url: str, now: int, port: int) -> str:
    """A team with a user, a monitor with a day of results (rolled up), a channel and a
    maintenance window; returns the monitor's id."""
    store = Store(open_engine(url), default_max_monitors=10)
    try:
        team = next(t.id for t in await store.teams.all() if t.name == "acme")
        await store.users.create(
            team="acme", email=EMAIL, role=Role.ADMIN, password_hash=hash_password(PASSWORD), at=0
        )
        hook = await store.channels.create(
            team,
            name="On-call webhook",
            type=ChannelType.WEBHOOK,
            config={"url": "http://127.0.0.1:9/hook"},
            is_enabled=True,
            at=now - 2 * D,
        )
        made = await store.monitors.create(
            team,
            NewMonitor(
                "Primary database", "127.0.0.1", port, confirmation_checks=1, channel_ids=(hook.id,)
            ),
            at=now - 2 * D,
        )
        weekly = Recurring("FREQ=WEEKLY;BYDAY=SU", "02:00", 60, "Europe/Berlin", "2026-01-04")
        await store.windows.create(
            team, name="Sunday patching", monitor_ids=[], schedule=weekly, at=now - 2 * D
        )
        plans = await store.schedule.claim_due(
            horizon=10**15, limit=10, planner=partial(plan, at=10**15)
        )
        check = next(p.check for p in plans if p.check.monitor_id == made.id)
        rng = random.Random(3)
        batch: list[Observation] = []
        first = now - D
        for at in range(first - first % EVERY_MS, now, EVERY_MS):
            ago = now - at
            if OUTAGE_AGO_MS - OUTAGE_MS < ago <= OUTAGE_AGO_MS:
                outcome = Outcome(Status.TIMEOUT, error="timed out")
            else:
                busy = 1.6 if 9 * H < ago < 11 * H else 1.0  # a slower stretch
                rt = max(1, round(busy * rng.lognormvariate(math.log(14), 0.35)))
                outcome = Outcome(Status.UP, response_time_ms=rt)
            batch.append(Observation(check, outcome, at))
            if len(batch) == 60:
                await store.results.save(batch)
                batch = []
        if batch:
            await store.results.save(batch)
        await store.rollups.compact()
        return made.id
    finally:
        await store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = Env(tmp_path_factory.mktemp("chart"))
    env.key(team="acme")  # the database, migrated, and the team
    with listener() as sock:  # the monitor's target: it stays up while the server checks it
        url = env.vars["UPWATCH_DATABASE_URL"]
        monitor_id = asyncio.run(seed(url, int(time.time() * 1000), sock.getsockname()[1]))
        proc = env.start()
        try:
            yield Site(env.base, monitor_id)
        finally:
            stop(proc)


async def log_in(page: Page, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#email", EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("form[action='/login'] button")
    await page.wait_for_url(base + "/")


async def drawn(page: Page, buckets: int, r: str) -> dict[str, Any]:
    """Wait for uPlot to draw range ``r``: ``buckets`` buckets, one more when now is not
    on a bucket's edge (the first one holds the range's start). What its canvas holds."""
    await page.wait_for_selector(
        f"#chart[data-range='{r}'][data-points]:not([aria-busy])", timeout=DRAWN_TIMEOUT_MS
    )
    points = int(await page.get_attribute("#chart", "data-points") or 0)
    assert points in (buckets, buckets + 1), (r, points)
    canvas: dict[str, Any] = await page.eval_on_selector(
        "#chart .uplot canvas",
        """c => {
            const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
            return {width: c.width, height: c.height, painted: painted};
        }""",
    )
    return canvas


async def test_the_chart_is_drawn_and_its_ranges_switch_without_a_reload(
    browser: Browser, site: Site
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors = console_errors(page)
    await log_in(page, site.base)

    spark = page.locator(f"tr:has(a[href='/monitors/{site.monitor_id}']) svg.spark")
    label = await spark.get_attribute("aria-label")
    assert label is not None
    assert label.startswith("Response time over the last 24 hours: hourly medians ")
    box = await spark.bounding_box()
    assert box is not None
    assert box["width"] > 50
    assert box["height"] > 10
    await check_accessibility(page)
    await screenshot(page, "dashboard-sparklines")

    await page.click("text=Primary database")
    canvas = await drawn(page, 288, "24h")
    assert canvas["width"] > 600
    assert canvas["height"] > 200
    assert canvas["painted"] > 1000  # axes, grid, two lines and the outage's band
    summary = await page.inner_text("#chart .chart-summary")
    assert "checks, 10 failed; p50 from " in summary  # 20 minutes down, checked every 2
    assert "On-call webhook" in await page.inner_text("main")
    assert "Sunday patching" in await page.inner_text("main")
    assert await page.locator("#chart .chart-note").count() == 0  # <noscript> is text
    await page.hover("#chart .u-over", position={"x": 400, "y": 100})
    assert "p50" in await page.inner_text("#chart .chart-readout")
    await check_accessibility(page)
    await screenshot(page, "monitor-chart")

    await page.evaluate("window.sameDocument = true")  # a reload would lose it
    await page.click(".ranges a[data-range='7d']")
    await drawn(page, 168, "7d")
    assert await page.evaluate("window.sameDocument === true")  # fetched in place
    assert page.url.endswith("?range=7d")
    assert await page.get_attribute(".ranges a[data-range='7d']", "aria-current") == "true"
    assert errors == []
    await context.close()


async def test_dark_and_narrow_views(browser: Browser, site: Site) -> None:
    for view, options in (
        ("dark", {"color_scheme": "dark", "viewport": {"width": 1280, "height": 900}}),
        ("narrow", {"viewport": {"width": 390, "height": 844}}),
    ):
        context = await browser.new_context(**options)
        page = await context.new_page()
        errors = console_errors(page)
        await log_in(page, site.base)
        await page.goto(f"{site.base}/monitors/{site.monitor_id}")
        canvas = await drawn(page, 288, "24h")
        assert canvas["painted"] > 1000, view
        chart_width = await page.eval_on_selector("#chart", "f => f.scrollWidth <= f.clientWidth")
        assert chart_width, f"{view}: the chart is wider than its box"
        await check_accessibility(page)
        await screenshot(page, f"monitor-chart-{view}")
        assert errors == [], view
        await context.close()


async def test_without_javascript_the_page_says_the_chart_needs_it(
    browser: Browser, site: Site
) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await log_in(page, site.base)
    await page.goto(f"{site.base}/monitors/{site.monitor_id}?range=30d")
    # (Playwright's text selectors skip <noscript>: its paragraph by class.)
    assert await page.is_visible("#chart .chart-note")
    assert "The chart needs JavaScript" in await page.inner_text("#chart .chart-note")
    assert await page.locator("#chart canvas").count() == 0
    assert await page.locator(".ranges a[aria-current='true']").inner_text() == "30 d"
    text = await page.inner_text("main")
    for shown in ("Availability", "Incidents", "Recent checks", "On-call webhook"):
        assert shown in text
    await screenshot(page, "monitor-chart-no-javascript")
    await context.close()
