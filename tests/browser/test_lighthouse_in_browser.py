"""Lighthouse (npm `lighthouse`, pinned in package.json) scores the page: accessibility 100
and best practices 100, before joining (a navigation run: Lighthouse loads the page) and
after joining a room and writing in it (a snapshot run: the page as it is).

Chromium is started with a remote-debugging port; Playwright drives the page, and
tests/browser/lighthouse_page.mjs connects to the same browser with puppeteer-core and
runs Lighthouse's node API on that page."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.pages import join_as
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

SCRIPT = ROOT / "tests" / "browser" / "lighthouse_page.mjs"
NODE = ROOT / "node_modules" / ".bin" / "node"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1200, "height": 760}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def debug_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def browser(debug_port: int) -> Iterator[Browser]:
    """This module's Chromium, reachable by Lighthouse on `debug_port` too."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: set CHROMIUM=/path/to/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--remote-debugging-port={debug_port}"],
        )
        yield browser
        browser.close()


def lighthouse(port: int, url: str, mode: str) -> dict[str, Any]:
    """Lighthouse's scores and failing audits for the open page at `url`."""
    if not (ROOT / "node_modules" / "lighthouse").is_dir():
        pytest.fail("node_modules/lighthouse is missing: `make setup` installs package.json")
    done = subprocess.run(
        [str(NODE), str(SCRIPT), "--port", str(port), "--url", url, "--mode", mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def perfect(result: dict[str, Any]) -> dict[str, Any]:
    """What falls short of 100, by category (empty when every score is 100)."""
    return {
        category: (score, result["failing"][category], result["errors"])
        for category, score in result["scores"].items()
        if score != 100
    }


def test_lighthouse_scores_the_page_100_before_and_after_joining_a_room(
    open_page, chat_sandbox, debug_port
):
    t = uuid.uuid4().hex[:6]
    url = chat_sandbox.base_url + "/"
    page: Page = open_page(url, **DESKTOP)
    # GIVEN the page before joining, loaded by Lighthouse itself
    expect(page.locator("#nameInput")).to_be_visible()
    before = lighthouse(debug_port, url, "navigation")
    # THEN accessibility and best practices are 100
    assert perfect(before) == {}, before
    # WHEN the person joins, opens a room and writes in it
    join_as(page, f"Lee{t}")
    expect(page.locator("#roomsCard")).to_be_visible(timeout=10_000)
    page.fill("#roomNameInput", f"lh{t}")
    page.click("#joinRoomBtn")
    expect(page.locator("#roomTitle")).to_have_text(f"lh{t}")
    page.fill("#messageInput", "hello")
    page.keyboard.press("Enter")
    expect(page.locator("#roomBox > .msg")).to_have_count(1, timeout=10_000)
    after = lighthouse(debug_port, url, "snapshot")
    # THEN the page as it is now scores 100 as well
    assert perfect(after) == {}, after
    # AND Lighthouse did look at the page: its accessibility audits ran on it
    assert after["scores"]["accessibility"] == 100


def test_the_lighthouse_check_reports_a_page_that_falls_short(open_page, chat_sandbox, debug_port):
    # The check above can fail: an image without alternative text costs accessibility points.
    url = chat_sandbox.base_url + "/"
    page = open_page(url, **DESKTOP)
    expect(page.locator("#nameInput")).to_be_visible()
    page.evaluate(
        "document.body.appendChild(Object.assign(document.createElement('img'),"
        " {src: 'data:image/gif;base64,R0lGODlhAQABAAAAACw='}))"
    )
    result = lighthouse(debug_port, url, "snapshot")
    assert result["scores"]["accessibility"] < 100
    assert "image-alt" in result["failing"]["accessibility"]
