"""A client that knows only protocol v1 works unchanged against the stack.

The client under test is our fixture in fixtures/original_client/: it sends exactly the
three actions of the original design and reads only the four original keys
(`members`, `systemMessage`, `publicMessage`, `privateMessage`), as docs/protocol.md
describes them. Everything the server has added since must be invisible to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.browser

ORIGINAL_CLIENT = Path(__file__).parent / "fixtures" / "original_client"


@pytest.fixture(scope="module")
def v1_sandbox(
    chat_template_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The stack in the sandbox, serving the fixture client instead of web/."""
    with running_sandbox(
        chat_template_path,
        tmp_path_factory.mktemp("original-client"),
        "--web-dir",
        str(ORIGINAL_CLIENT),
        stage="production",
    ) as sandbox:
        yield sandbox


@pytest.fixture
def open_v1_client(browser: Browser, v1_sandbox: Sandbox) -> Iterator[Callable[[], Page]]:
    """Open the fixture client in a fresh browser context per call; fail on page errors."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_client() -> Page:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(v1_sandbox.base_url + "/")
        expect(page.locator("body")).to_have_attribute("data-socket", "open", timeout=15_000)
        return page

    yield open_client
    for context in contexts:
        context.close()
    assert problems == []


def set_name(page: Page, name: str) -> None:
    page.fill("#nameInput", name)
    page.click("#setNameBtn")
    expect(page.locator("#membersList li", has_text=name)).to_have_count(1)


def lines(page: Page, text: str):
    return page.locator("#chatBox p", has_text=text)


def test_a_client_that_knows_only_protocol_v1_works_unchanged(open_v1_client):
    # GIVEN two people on the v1-only client
    alice = open_v1_client()
    bob = open_v1_client()
    set_name(alice, "Alice")
    set_name(bob, "Bob")
    # THEN each sees both names and the join notice, from the original keys alone
    for page in (alice, bob):
        expect(page.locator("#membersList li")).to_have_text(["Alice", "Bob"])
    expect(alice.locator("#chatBox")).to_contain_text("[System] Bob has joined the chat")

    # WHEN Alice sends "hello!" to everyone
    alice.fill("#messageInput", "hello!")
    alice.click("#sendBtn")
    # THEN both show "Alice: hello!" with the name in bold
    for page in (alice, bob):
        line = lines(page, "hello!")
        expect(line).to_have_count(1)
        expect(line).to_have_text("Alice: hello!")
        expect(line.locator("strong")).to_have_text("Alice: ")

    # WHEN Alice sends "hi!" privately to Bob
    alice.fill("#toInput", "Bob")
    alice.fill("#messageInput", "hi!")
    alice.click("#sendBtn")
    # THEN Bob sees "[Private] Alice: hi!" and Alice sees only her own copy
    expect(lines(bob, "hi!")).to_have_text("[Private] Alice: hi!")
    expect(lines(alice, "hi!")).to_have_text("[Private to Bob] Alice: hi!")

    # WHEN Bob disconnects, Alice sees him leave
    bob.click("#disconnectBtn")
    expect(alice.locator("#chatBox")).to_contain_text("[System] Bob has left the chat")
    expect(alice.locator("#membersList li")).to_have_text(["Alice"])

    # AND nothing but the original frames went over the wire
    assert alice.evaluate("window.sentFrames") == [
        {"action": "setName", "name": "Alice"},
        {"action": "sendPublic", "message": "hello!"},
        {"action": "sendPrivate", "to": "Bob", "message": "hi!"},
    ]
    assert bob.evaluate("window.sentFrames") == [{"action": "setName", "name": "Bob"}]
