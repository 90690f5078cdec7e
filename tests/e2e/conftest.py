"""The browser for the end-to-end tests of the web (tests/support/browser.py): one
Chromium per test module. Its objects belong to the module's event loop, so a module
that uses it runs its tests on that loop:

    pytestmark = pytest.mark.asyncio(loop_scope="module")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio

from tests.support.browser import chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b
