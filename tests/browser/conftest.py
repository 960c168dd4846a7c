"""Playwright driving Debian's Chromium, headless, against the sandbox."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.chat_client import room_items
from tests.support.sandbox import Sandbox, wait_for

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# The machine has no network: without these, Chromium keeps dialling Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# What a page must show after a round trip through the sandbox: a loaded machine (the test
# run's other worker, a sandbox's functions, Chromium) can stretch one past Playwright's
# default 5 s. A check that something does NOT show still passes as soon as it holds.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium "
            "(`apt-get install chromium`; .ci/run installs it), or set CHROMIUM=/path/to/it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, chat_sandbox: Sandbox) -> Iterator[Callable[..., Page]]:
    """Open the chat in a fresh browser context (its own tab and storage) per call."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_chat(url: str | None = None, **context_args: Any) -> Page:
        context = browser.new_context(**context_args)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        page.goto(url or chat_sandbox.base_url + "/")
        return page

    yield open_chat
    for context in contexts:
        context.close()
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")
    assert problems == []
