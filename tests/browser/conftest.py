"""Browser tests: Debian's chromium, driven by Playwright, on the session's embedded cluster.

The async API, on pytest-asyncio's session loop: the sync API marks its own loop as the
thread's running loop between calls, so while a session-scoped browser lived every later
asyncio test in the worker would fail ("cannot be called from a running event loop").
Each test gets a fresh context (its own tabs and sessionStorage) at 1280x800, and saves a
screenshot of every tab it visits into one folder, printed at the end of the run (and in a
failing test's report) and kept by pytest's tmp retention; a failing test adds one of each
open tab as it was when it failed. `--screenshots-to DIR` also writes what the window shows
(1280x800, JPEG) as `DIR/<tab>.jpg`: how the README's pictures of the console are made.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.chromium import chromium_or_skip, sandbox

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember a failed call, so that the context fixture's teardown can picture the tabs."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            chromium_sandbox=sandbox(),
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Screenshots:
    """`await shoot(page, "tab")`: the tab as the test saw it, in the run's screenshots folder."""

    folder: Path
    test: str
    taken: list[Path] = field(default_factory=list)
    docs: Path | None = None  # --screenshots-to

    async def __call__(self, page: Page, tab: str) -> Path:
        path = self.folder / f"{self.test}-{len(self.taken) + 1:02d}-{tab}.png"
        await page.screenshot(path=path, full_page=True, animations="disabled")  # transitions at their end
        self.taken.append(path)
        if self.docs is not None:
            self.docs.mkdir(parents=True, exist_ok=True)
            window = self.docs / f"{tab}.jpg"
            await page.screenshot(path=window, type="jpeg", quality=70, animations="disabled")
        return path


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots", numbered=False)


@pytest.fixture
def shoot(screenshot_dir: Path, request: pytest.FixtureRequest) -> Iterator[Screenshots]:
    docs: Path | None = request.config.getoption("--screenshots-to", default=None)
    shots = Screenshots(screenshot_dir, re.sub(r"[^\w.-]+", "_", request.node.name), docs=docs)
    request.node.user_properties.append(("screenshots", str(screenshot_dir)))
    yield shots
    if shots.taken:
        listed = "\n".join(str(p) for p in shots.taken)
        request.node.add_report_section("teardown", "screenshots", listed)


@pytest_asyncio.fixture(loop_scope="session")
async def context(
    browser: Browser, shoot: Screenshots, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield context
        if request.node.stash.get(FAILED, False):
            for n, page in enumerate(context.pages):
                await shoot(page, f"at-failure-{n + 1}")
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> Page:
    """The first tab; a test opens more with `context.new_page()`."""
    return await context.new_page()
