"""Every page of the web in Chromium, against one live `upwatch serve` (SPEC §10): the
first admin made on /setup; a monitor created, edited and deleted in its forms; a webhook
channel whose "Send test" reaches a loopback receiver; a maintenance window and a status
page made in their forms, the page then opened by a stranger; a viewer (made with
`upwatch users create`) who sees everything and changes nothing, even with a forged
form; another team's monitor, a 404 page. Each page passes axe-core (no serious or
critical violation), logs no console error, and is kept as a screenshot in
test-output/screenshots/ (tests/support/browser.py), at desktop and phone widths."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
from standardwebhooks import Webhook

from tests.support.browser import check_accessibility, console_errors, screenshot
from tests.support.listeners import closed_port, listener
from tests.support.receivers import receiving
from tests.support.servers import Env, Server, stop

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

# Slow: a live server, Chromium, and an incident that needs a real failed check.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery"
ADMIN, VIEWER, TEAM = "ada@example.com", "vic@example.com", "acme"
DOWN, UP = "Mail relay", "Primary database"
WAIT_S = 15  # for a real check to fail and open its incident
PHONE = {"width": 390, "height": 844}
MONITOR_URL = re.compile(r".*/monitors/tcpm_\w+$")


@dataclass
class Site:
    env: Env
    proc: Server
    key: str  # an API key of the admin's team
    up_port: int
    down_id: str  # a monitor on a closed port, with an open incident
    up_id: str
    incident_id: str
    channel_id: str
    window_id: str
    status_page_id: str
    slug: str

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.env.base, headers=headers, timeout=5)


def cli(env: Env, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`upwatch …` against the server's own database, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "upwatch", *args],
        env=env.vars,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def setup_token(proc: Server) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"setup token (\S+)", proc.output())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no setup token in the log: {proc.output()}")


def created(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def open_incident(client: httpx.Client, monitor_id: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = client.get(f"/v1/tcp-monitors/{monitor_id}/incidents").json()["data"]
        if found:
            return str(found[0]["id"])
        time.sleep(0.2)
    raise AssertionError(f"no incident for {monitor_id} after {WAIT_S} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, Server]]:
    env = Env(tmp_path_factory.mktemp("pages"))
    proc = env.start()
    try:
        yield env, proc
    finally:
        stop(proc)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(browser: Browser, served: tuple[Env, Server]) -> dict[str, Any]:
    """The first admin, made on /setup with the token from the server's log: the
    browser's storage state (its session cookie), for new contexts."""
    env, proc = served
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors = console_errors(page)
        await page.goto(env.base + "/setup")
        await check_accessibility(page)
        await screenshot(page, "page-setup")
        await page.fill("#token", setup_token(proc))
        await page.fill("#email", ADMIN)
        await page.fill("#team", TEAM)
        await page.fill("#password", PASSWORD)
        await page.fill("#password_again", PASSWORD)
        await page.click("form[action='/setup'] button")
        await page.wait_for_url(env.base + "/")
        assert errors == []
        state: dict[str, Any] = dict(await context.storage_state())
        return state
    finally:
        await context.close()


@pytest.fixture(scope="module")
def site(served: tuple[Env, Server], admin: dict[str, Any]) -> Iterator[Site]:
    """Something of each kind, made through the API with a key of the admin's team: two
    monitors (one down, with its incident), a webhook channel, a window, a status page."""
    env, proc = served
    key = env.key(team=TEAM)
    with (
        listener() as sock,
        httpx.Client(
            base_url=env.base, headers={"Authorization": f"Bearer {key}"}, timeout=5
        ) as client,
    ):
        up_port = sock.getsockname()[1]
        monitor = {"host": "127.0.0.1", "confirmationChecks": 1}
        down_id = created(
            client.post("/v1/tcp-monitors", json={**monitor, "name": DOWN, "port": closed_port()})
        )
        up_id = created(
            client.post("/v1/tcp-monitors", json={**monitor, "name": UP, "port": up_port})
        )
        channel = {
            "name": "Ops webhook",
            "type": "webhook",
            "config": {"url": f"http://127.0.0.1:{closed_port()}/hook"},
        }
        channel_id = created(client.post("/v1/notification-channels", json=channel))
        window = {
            "name": "Sunday patching",
            "monitorIds": [up_id],
            "schedule": {
                "type": "recurring",
                "rrule": "FREQ=WEEKLY;BYDAY=SU",
                "startTime": "03:00",
                "durationMinutes": 60,
                "timezone": "Europe/Berlin",
                "startsOn": "2026-01-04",
            },
        }
        window_id = created(client.post("/v1/maintenance-windows", json=window))
        status_page = {"name": "Acme status", "slug": "acme", "monitorIds": [down_id, up_id]}
        status_page_id = created(client.post("/v1/status-pages", json=status_page))
        incident_id = open_incident(client, down_id)
        yield Site(
            env,
            proc,
            key,
            up_port,
            down_id,
            up_id,
            incident_id,
            channel_id,
            window_id,
            status_page_id,
            "acme",
        )


@pytest_asyncio.fixture(loop_scope="module")
async def as_admin(browser: Browser, site: Site, admin: dict[str, Any]) -> AsyncIterator[Page]:
    context = await browser.new_context(storage_state=admin)  # type: ignore[arg-type]
    try:
        yield await context.new_page()
    finally:
        await context.close()


def unexpected(errors: list[str], *statuses: int) -> list[str]:
    """The console errors but the one Chromium logs for a page answered with one of
    ``statuses`` (a 404 or 403 page is such an answer, on purpose)."""
    return [e for e in errors if not any(f"status of {s}" in e for s in statuses)]


async def checked(page: Page, name: str) -> None:
    """axe-core, then a screenshot."""
    await check_accessibility(page)
    await screenshot(page, name)


async def submit(page: Page, action: str) -> None:
    """Press the submit button of the form posting to ``action``."""
    await page.click(
        f"form[action='{action}'] button[type='submit'], form[action='{action}'] button"
    )


async def test_an_admin_creates_edits_and_deletes_a_monitor(as_admin: Page, site: Site) -> None:
    page, base = as_admin, site.env.base
    errors = console_errors(page)
    with listener() as sock:
        port = sock.getsockname()[1]
        await page.goto(base + "/")
        await page.click("text=Add a monitor")
        await page.wait_for_url(base + "/monitors/new")
        await page.fill("#name", "Billing API")
        await page.fill("#host", "127.0.0.1")
        await page.fill("#port", str(port))
        await page.fill("#intervalSeconds", "30")
        await submit(page, "/monitors/new")
        await page.wait_for_url(MONITOR_URL)
        monitor_url = page.url
        heading = page.get_by_role("heading", level=1)
        assert "Billing API" in await heading.inner_text()
        assert f"127.0.0.1:{port} · every 30 s" in await page.locator("p.target").inner_text()

        await page.click("main >> text=Edit")
        await page.wait_for_url(monitor_url + "/edit")
        assert await page.input_value("#name") == "Billing API"
        assert await page.input_value("#port") == str(port)
        await page.fill("#name", "Billing API (EU)")
        await page.fill("#intervalSeconds", "60")
        await page.fill("#timeoutMs", "2500")
        await submit(page, monitor_url.removeprefix(base) + "/edit")
        await page.wait_for_url(monitor_url)
        assert "Billing API (EU)" in await heading.inner_text()
        target = await page.locator("p.target").inner_text()
        assert f"127.0.0.1:{port} · every 60 s · timeout 2500 ms" in target
        await checked(page, "monitor-edited")

        # Delete is a second step: the button shows once "Delete…" is opened.
        delete = page.locator("main button.danger")
        assert not await delete.is_visible()
        await page.click("main details.confirm summary")
        assert "Billing API (EU)" in await delete.inner_text()
        await checked(page, "monitor-delete-confirm")
        await delete.click()
        await page.wait_for_url(base + "/")
        names = await page.locator("#monitor-list tbody td:first-child").all_inner_texts()
        assert "Billing API (EU)" not in names
        assert DOWN in names
        response = await page.goto(monitor_url)
        assert response is not None
        assert response.status == 404
    assert unexpected(errors, 404) == []


async def test_send_test_on_a_webhook_channel_reaches_the_receiver(
    as_admin: Page, site: Site
) -> None:
    page, base = as_admin, site.env.base
    errors = console_errors(page)
    async with receiving() as receiver:
        await page.goto(base + "/channels")
        await page.click("text=New channel")
        await page.wait_for_url(base + "/channels/new")
        await page.fill("#name", "Loopback hook")
        await page.select_option("#type", "webhook")
        await page.fill("#webhookUrl", receiver.url())
        await submit(page, "/channels/new")
        # The channel's page: after a redirect, or (where the signing secret is shown
        # once) as the answer to the form itself.
        heading = page.get_by_role("heading", level=1)
        await page.wait_for_selector("h1:has-text('Loopback hook')")
        assert "Enabled" in await heading.inner_text()
        shown = page.locator("code.secret")
        secret = await shown.inner_text() if await shown.count() else None
        action = await page.locator("form[action$='/test']").get_attribute("action")
        assert action is not None
        assert re.fullmatch(r"/channels/nch_\w+/test", action), action
        channel_url = base + action.removesuffix("/test")
        assert "Nothing sent yet" in await page.locator("main").inner_text()

        await page.click("text=Send test")
        await page.wait_for_url(re.compile(re.escape(channel_url) + r"\?tested=ndl_\w+$"))
        notice = page.get_by_role("status")
        assert "Test delivered." in await notice.inner_text()
        row = page.locator("table.monitors tbody tr")
        assert await row.count() == 1
        cells = await row.locator("td").all_inner_texts()
        assert cells[1:5] == ["test", "\u2013", "Delivered", "1"]  # no monitor: a dash
        assert await row.get_attribute("aria-current") == "true"
        await checked(page, "channel-tested")

        got = (await receiver.wait_for(1))[0]
        assert got.path == "/hook"
        assert got.json()["type"] == "test"
        assert got.headers["webhook-id"] in page.url
        if secret is not None:  # the secret the page showed signs what was sent
            verified = Webhook(secret).verify(got.body, got.headers)
            assert verified["type"] == "test"
        else:
            assert got.headers["webhook-signature"].startswith("v1,")

        await page.goto(base + "/channels")
        listed = page.locator("table.monitors tbody tr", has_text="Loopback hook")
        assert receiver.url() in await listed.inner_text()
    assert errors == []


async def test_a_window_and_a_public_status_page_made_in_their_forms(
    as_admin: Page, browser: Browser, site: Site
) -> None:
    page, base = as_admin, site.env.base
    errors = console_errors(page)
    await page.goto(base + "/windows")
    await page.click("text=Add a window")
    await page.wait_for_url(base + "/windows/new")
    await page.fill("#name", "Database upgrade")
    await page.check(f"input[name='monitorIds'][value='{site.down_id}']")
    await page.check("input[name='type'][value='once']")
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    await page.fill("#startsAt", f"{day}T22:00")
    await page.fill("#endsAt", f"{day + timedelta(days=1)}T01:30")
    await submit(page, "/windows/new")
    await page.wait_for_url(base + "/windows")
    row = page.locator("table.monitors tbody tr", has_text="Database upgrade")
    times = [await t.get_attribute("datetime") for t in await row.locator("time").all()]
    assert times == [f"{day}T22:00:00.000Z", f"{day + timedelta(days=1)}T01:30:00.000Z"]
    text = await row.inner_text()
    assert DOWN in text
    assert "Upcoming" in text
    await checked(page, "windows-made")

    await page.goto(base + "/status-pages")
    await page.click("main >> text=New status page")
    await page.wait_for_url(base + "/status-pages/new")
    await page.fill("#name", "Billing status")
    await page.fill("#slug", "billing")
    await page.check(f"input[name='monitorIds'][value='{site.up_id}']")
    await page.check("input[name='isPublic']")
    await page.check("input[name='showTargets']")
    await submit(page, "/status-pages/new")
    await page.wait_for_url(base + "/status-pages")
    row = page.locator("table.monitors tbody tr", has_text="Billing status")
    assert "/status/billing" in await row.inner_text()
    assert "everyone" in await row.inner_text()
    assert errors == []

    stranger = await browser.new_context()  # no session: as the public sees it
    try:
        public = await stranger.new_page()
        public_errors = console_errors(public)
        response = await public.goto(base + "/status/billing")
        assert response is not None
        assert response.status == 200
        assert await public.title() == "Billing status"
        services = public.locator("article.service")
        assert await services.locator("h3").all_inner_texts() == [f"{UP} 127.0.0.1:{site.up_port}"]
        await checked(public, "status-page-made")
        assert public_errors == []
    finally:
        await stranger.close()


def pages_of(site: Site) -> dict[str, str]:
    """Every page of a logged-in admin, by the name of its screenshot."""
    return {
        "monitors": "/",
        "monitor-new": "/monitors/new",
        "monitor": f"/monitors/{site.down_id}",
        "monitor-edit": f"/monitors/{site.down_id}/edit",
        "incidents": "/incidents",
        "incident": f"/incidents/{site.incident_id}",
        "channels": "/channels",
        "channel-new": "/channels/new",
        "channel": f"/channels/{site.channel_id}",
        "channel-edit": f"/channels/{site.channel_id}/edit",
        "windows": "/windows",
        "window-new": "/windows/new",
        "window-edit": f"/windows/{site.window_id}/edit",
        "status-pages": "/status-pages",
        "status-page-new": "/status-pages/new",
        "status-page-edit": f"/status-pages/{site.status_page_id}/edit",
        "keys": "/keys",
    }


async def visit(page: Page, errors: list[str], url: str, name: str, *, axe: bool) -> None:
    response = await page.goto(url)
    assert response is not None
    assert response.status == 200, url
    if "/monitors/tcpm_" in url and not url.endswith("/edit"):
        await page.wait_for_load_state("networkidle")  # the chart's data, fetched
    assert errors == [], url
    if axe:
        await check_accessibility(page)
    await screenshot(page, name)


async def test_every_page_passes_axe_without_console_errors(
    browser: Browser, site: Site, admin: dict[str, Any]
) -> None:
    base = site.env.base
    for width, view in ((None, ""), (PHONE, "-phone")):
        options: dict[str, Any] = {"storage_state": admin}
        if width is not None:
            options["viewport"] = width
        context = await browser.new_context(**options)
        try:
            page = await context.new_page()
            errors = console_errors(page)
            for name, path in pages_of(site).items():
                # axe once per page: the phone view has the same markup.
                await visit(page, errors, base + path, f"page-{name}{view}", axe=not view)
            assert await page.get_by_role("heading", level=1).inner_text() == "API keys"
        finally:
            await context.close()
        stranger = await browser.new_context(
            **{k: v for k, v in options.items() if k != "storage_state"}
        )
        try:
            page = await stranger.new_page()
            errors = console_errors(page)
            await visit(
                page, errors, f"{base}/status/{site.slug}", f"page-status{view}", axe=not view
            )
            await visit(page, errors, base + "/login", f"page-login{view}", axe=not view)
        finally:
            await stranger.close()


async def login(context: BrowserContext, base: str, email: str) -> Page:
    page = await context.new_page()
    await page.goto(base + "/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await submit(page, "/login")
    await page.wait_for_url(base + "/")
    return page


async def test_a_viewer_sees_everything_and_changes_nothing(browser: Browser, site: Site) -> None:
    base = site.env.base
    made = cli(
        site.env,
        "users",
        "create",
        VIEWER,
        "--team",
        TEAM,
        "--role",
        "viewer",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert made.returncode == 0, made.stderr
    context = await browser.new_context()
    try:
        page = await login(context, base, VIEWER)
        errors = console_errors(page)
        names = await page.locator("#monitor-list tbody td:first-child").all_inner_texts()
        assert DOWN in names
        assert UP in names
        assert "viewer" in await page.locator(".whoami").inner_text()
        await checked(page, "viewer-monitors")
        # No control that changes anything, on any page.
        for path in (
            "/",
            f"/monitors/{site.down_id}",
            "/channels",
            f"/channels/{site.channel_id}",
            "/windows",
            "/status-pages",
            "/keys",
        ):
            await page.goto(base + path)
            main = page.locator("main")
            assert await main.locator("form[method='post']").count() == 0, path
            for label in ("Add a monitor", "New channel", "Add a window", "New status page"):
                assert await main.get_by_text(label).count() == 0, (path, label)
            for label in ("Edit", "Delete", "Send test", "Revoke", "Create the key"):
                assert await main.get_by_role("button", name=label).count() == 0, (path, label)
                assert await main.get_by_role("link", name=label).count() == 0, (path, label)
        await screenshot(page, "viewer-keys")

        # A forged delete form, with the viewer's own CSRF token: refused, nothing changed.
        await page.goto(f"{base}/monitors/{site.up_id}")
        csrf = await page.locator("form[action='/logout'] input[name='csrf']").input_value()
        async with page.expect_navigation() as navigation:
            await page.evaluate(
                """([action, csrf]) => {
                    const form = document.createElement("form");
                    form.method = "post";
                    form.action = action;
                    const token = document.createElement("input");
                    token.type = "hidden";
                    token.name = "csrf";
                    token.value = csrf;
                    form.append(token);
                    document.body.append(form);
                    form.submit();
                }""",
                [f"/monitors/{site.up_id}/delete", csrf],
            )
        response = await navigation.value
        assert response is not None
        assert response.status == 403
        assert await page.title() == "Viewers only look · upwatch"
        assert "nothing was changed" in await page.locator("main").inner_text()
        await checked(page, "viewer-refused")
        # The same by fetch, on other forms: each refused.
        for action in (
            f"/channels/{site.channel_id}/test",
            f"/windows/{site.window_id}/delete",
            f"/status-pages/{site.status_page_id}/delete",
        ):
            status = await page.evaluate(
                """([action, csrf]) => fetch(action, {method: "POST",
                    body: new URLSearchParams({csrf})}).then(r => r.status)""",
                [action, csrf],
            )
            assert status == 403, action
        new_form = await page.goto(base + "/monitors/new")
        assert new_form is not None
        assert new_form.status == 403
        assert unexpected(errors, 403) == []
    finally:
        await context.close()
    with site.api() as client:
        assert client.get(f"/v1/tcp-monitors/{site.up_id}").status_code == 200
        assert client.get(f"/v1/maintenance-windows/{site.window_id}").status_code == 200
        assert client.get(f"/v1/status-pages/{site.status_page_id}").status_code == 200
        deliveries = client.get(f"/v1/notification-channels/{site.channel_id}/deliveries")
        assert deliveries.json()["data"] == []


async def test_another_teams_monitor_is_a_404_page(as_admin: Page, site: Site) -> None:
    other = site.env.key(team="globex")
    with httpx.Client(
        base_url=site.env.base, headers={"Authorization": f"Bearer {other}"}, timeout=5
    ) as client:
        body = {"name": "Globex secret", "host": "127.0.0.1", "port": site.up_port}
        theirs = created(client.post("/v1/tcp-monitors", json=body))
    page = as_admin
    errors = console_errors(page)
    for path in (f"/monitors/{theirs}", f"/monitors/{theirs}/edit"):
        response = await page.goto(site.env.base + path)
        assert response is not None
        assert response.status == 404, path
        assert await page.title() == "Not found · upwatch"
        text = await page.locator("main").inner_text()
        assert "There is no such monitor in your team." in text
        assert "Globex" not in await page.content()
    await checked(page, "monitor-of-another-team")
    await page.goto(site.env.base + "/")
    names = await page.locator("#monitor-list tbody td:first-child").all_inner_texts()
    assert "Globex secret" not in names
    assert unexpected(errors, 404) == []


async def test_send_test_reaches_a_slow_receiver_once(as_admin: Page, site: Site) -> None:
    page, base = as_admin, site.env.base
    async with receiving() as receiver:
        receiver.delay_s = 2.5  # longer than the sender's poll (1 s)
        await page.goto(base + "/channels/new")
        await page.fill("#name", "Slow hook")
        await page.fill("#webhookUrl", receiver.url())
        await submit(page, "/channels/new")
        await page.wait_for_selector("h1:has-text('Slow hook')")
        await page.click("text=Send test")
        await page.wait_for_url(re.compile(r".*\?tested=ndl_\w+$"))
        assert "Test delivered." in await page.get_by_role("status").inner_text()
        # Anything the sender sent meanwhile has arrived by now: it started within a poll.
        sent = [r.headers["webhook-id"] for r in receiver.requests]
        assert len(sent) == 1, sent


async def test_a_one_off_window_years_ahead_is_upcoming(as_admin: Page, site: Site) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4 * 366)
    schedule = {
        "type": "once",
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": (starts + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
    }
    with site.api() as client:
        body = {"name": "Data centre move", "schedule": schedule}
        created(client.post("/v1/maintenance-windows", json=body))
    page = as_admin
    await page.goto(site.env.base + "/windows")
    row = page.locator("table.monitors tbody tr", has_text="Data centre move")
    assert "Upcoming" in await row.locator(".state").inner_text()


async def test_the_live_refresh_keeps_times_localized(as_admin: Page, site: Site) -> None:
    page = as_admin
    await page.goto(site.env.base + "/")
    last_check = page.locator("#monitor-list tbody tr", has_text=UP).locator("time")
    assert await last_check.get_attribute("data-localized") == "1"
    # What the list's `every 10s` trigger does, at once: the list fetched and swapped.
    await page.evaluate(
        """() => htmx.ajax("GET", "/", {target: "#monitor-list", select: "#monitor-list",
                                        swap: "outerHTML"})"""
    )
    # Settled: htmx's load event (where new content is set up) has fired.
    from playwright.async_api import expect

    # (A locator, not wait_for_function: polling a string predicate is an eval, which
    # the page's Content-Security-Policy refuses.)
    await expect(page.locator(".htmx-added, .htmx-settling")).to_have_count(0)
    text = await last_check.inner_text()
    assert not re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", text), text
