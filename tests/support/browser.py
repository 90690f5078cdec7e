"""The web in a real browser: Debian's Chromium driven by Playwright's async API (no
browser download: `executable_path`), an accessibility audit with the vendored axe-core,
and full-page screenshots kept for review.

Chromium is found as `chromium` on PATH (or UPWATCH_TEST_CHROMIUM). Without it the
browser tests are skipped with a reason; under CI=true they fail instead, as a missing
PostgreSQL does (tests/conftest.py). Playwright is imported only when a browser is
launched, so the other tests run in an environment without it.

Playwright's async API runs on uvloop, the loop the tests use (tests/conftest.py). Its
objects belong to the loop that made them: tests sharing a browser share its loop
(tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM_ENV = "UPWATCH_TEST_CHROMIUM"
SCREENSHOTS_ENV = "UPWATCH_SCREENSHOTS_DIR"
BLOCKING_IMPACTS = ("serious", "critical")
AXE_TIMEOUT_S = 30
# Nothing leaves the machine: every host but the loopback ones fails to resolve (the
# rules apply to IP literals too), and Chromium's own background traffic is off
# (Playwright's default flags).
LOOPBACK_ONLY = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"
)


def chromium_path() -> str | None:
    return os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}: the browser tests must run", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    """Chromium's path; skips the test without it (fails under CI=true)."""
    path = chromium_path()
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on exit."""
    path = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=path,
            headless=True,
            # `--no-sandbox`: Chromium refuses to start as root with its sandbox, and
            # containers often lack the user namespaces it needs; the pages are ours.
            chromium_sandbox=False,
            args=[LOOPBACK_ONLY],
        )
        try:
            yield browser
        finally:
            await browser.close()


def console_errors(page: Page) -> list[str]:
    """The errors the page reports from now on, filled in as they come: a stylesheet or
    script the Content-Security-Policy blocks, a missing asset, an uncaught exception."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def check_accessibility(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is; fail on any serious or critical violation,
    naming the rule, its help and the offending nodes. Returns all violations (the
    minor and moderate ones pass).

    axe is evaluated through the DevTools protocol rather than added as a <script> tag:
    the pages' Content-Security-Policy forbids inline scripts, and bypassing it would
    also let through inline styles that users' browsers block. axe needs JavaScript's
    timers, so the page's context must have JavaScript enabled: pages without scripts
    render the same either way."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE_JS.read_text())
    try:
        violations: list[dict[str, Any]] = await asyncio.wait_for(
            page.evaluate(
                "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
            ),
            AXE_TIMEOUT_S,
        )
    except TimeoutError:
        pytest.fail(
            f"axe did not finish in {AXE_TIMEOUT_S} s on {page.url}: "
            "is JavaScript disabled in this page's context?"
        )
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        pytest.fail(f"accessibility violations on {page.url}:\n{_describe(blocking)}")
    return violations


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            lines.append(f"    {target}: {node['html'][:200]}")
            summary = node.get("failureSummary")
            if summary:
                lines.extend(f"      {line}" for line in summary.splitlines())
    return "\n".join(lines)


def screenshots_dir() -> Path:
    return Path(os.environ.get(SCREENSHOTS_ENV) or REPO / "test-output" / "screenshots")


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG of the page, saved as <screenshots dir>/<name>.png for review."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    path = screenshots_dir() / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True, animations="disabled")
    return path
