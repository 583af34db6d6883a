"""A real Chromium, offline: the `browser` fixture (pytest plugin, see conftest) and a tab
that lets only file:// requests through and keeps what the page logged."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing

# Debian's Chromium (.ci/run installs it), or the Chrome GitHub's runners ship; Playwright's
# own browser download is not reachable here
BROWSERS = ("/usr/bin/chromium", "/usr/bin/google-chrome")
CHROMIUM = next((b for b in BROWSERS if Path(b).is_file()), BROWSERS[0])
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("needs playwright (pip)")
    if not Path(CHROMIUM).is_file():
        missing(f"needs {CHROMIUM} (apt: chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
        yield chromium
        chromium.close()


@dataclass
class Log:
    """What a page did: the non-file:// requests it tried (each aborted), its errors
    (console and uncaught) and its console warnings."""

    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@contextmanager
def offline_tab(chromium: Any, page_file: Path) -> Iterator[tuple[Any, Log]]:
    """A tab that opened `page_file` with every non-file:// request aborted, and its log."""
    tab = chromium.new_page(viewport={"width": 1200, "height": 900})
    log = Log()

    def only_files(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            log.requested.append(route.request.url)
            route.abort()

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            (log.errors if message.type == "error" else log.warnings).append(message.text)

    tab.route("**/*", only_files)
    tab.on("console", console)
    tab.on("pageerror", lambda e: log.errors.append(str(e)))
    tab.goto(page_file.as_uri(), wait_until="load")  # the inline scripts ran: all loads asked
    try:
        yield tab, log
    finally:
        tab.close()
