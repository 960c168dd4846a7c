"""The page keeps its name across a reload, and drops frames the server delivers twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import deliver_twice, entries, join_as, members, say
from tests.support.chat_client import room_items
from tests.support.sandbox import Sandbox, wait_for

pytestmark = pytest.mark.browser


def test_the_name_survives_a_reload_and_is_set_again_after_reconnecting(open_page):
    # GIVEN Alice and Bob chatting
    alice = open_page()
    bob = open_page()
    join_as(alice, "Alice")
    join_as(bob, "Bob")
    expect(members(bob)).to_have_count(2)
    # WHEN Alice reloads the page
    alice.reload()
    # THEN she is back under her name without typing it, and can chat
    expect(alice.locator("#status")).to_have_attribute("data-state", "connected")
    expect(alice.locator("#membersList .you-badge")).to_have_count(1, timeout=15_000)
    expect(members(alice).filter(has_text="Alice")).to_have_count(1)
    expect(alice.locator("#nameInput")).to_have_value("Alice")
    say(alice, "back after a reload")
    expect(entries(bob, "public").filter(has_text="back after a reload")).to_contain_text("Alice")
    expect(members(bob)).to_have_count(2)
    # AND a new tab starts without a name (the name is this tab's, not the browser's)
    carol = open_page()
    expect(carol.locator("#status")).to_have_attribute("data-state", "connected")
    expect(carol.locator("#nameInput")).to_have_value("")
    expect(members(carol)).to_have_count(0)


@pytest.fixture
def doubled_pages(browser: Browser, chat_sandbox: Sandbox) -> Iterator[Any]:
    """Pages whose every frame from the server arrives twice, as a server that delivers a
    frame twice would send it: notices and member lists with one `eventId` per event."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_doubled() -> Page:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        deliver_twice(page)
        page.goto(chat_sandbox.base_url + "/")
        return page

    yield open_doubled
    for context in contexts:
        context.close()
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")
    assert problems == []


def test_frames_delivered_twice_are_shown_and_applied_once(doubled_pages):
    # GIVEN three people whose pages get every server frame twice
    alice, bob, carol = doubled_pages(), doubled_pages(), doubled_pages()
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    join_as(bob, "Bob")
    expect(members(alice)).to_have_count(2)
    join_as(carol, "Carol")
    # (everyone named, and Carol's page in the chat, before anyone writes: a v2 page joins
    # the lobby after its name is taken, one round trip later)
    expect(members(alice)).to_have_count(3)
    expect(members(carol)).to_have_count(3)
    # WHEN they talk in public and in private, rename and leave
    say(bob, "public once")
    carol.fill("#toInput", "Alice")
    say(carol, "private once")
    bob.fill("#nameInput", "Bobby")
    bob.click("#setNameBtn")
    expect(members(alice).filter(has_text="Bobby")).to_have_count(1)
    carol.close()
    # THEN every message and notice is shown once, and the member lists are right
    expect(members(alice)).to_have_count(2)
    expect(members(alice)).to_have_text(["Alice(you)", "Bobby"])
    expect(members(bob)).to_have_text(["Alice", "Bobby(you)"])
    for text in (
        "Bob has joined the chat",
        "Carol has joined the chat",
        "Bob is now known as Bobby",
        "Carol has left the chat",
    ):
        expect(entries(alice, "system").filter(has_text=text)).to_have_count(1)
    expect(entries(alice, "public").filter(has_text="public once")).to_have_count(1)
    expect(entries(bob, "public").filter(has_text="public once")).to_have_count(1)
    expect(entries(alice, "private").filter(has_text="private once")).to_have_count(1)
