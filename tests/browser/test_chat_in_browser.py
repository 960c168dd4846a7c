"""Two people chatting in real browser tabs through the sandbox."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, expect

from tests.browser.pages import cut, entries, join_as, members

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
RESULTS = ROOT / "test-results"


def test_two_people_join_talk_in_public_and_private_and_see_each_other_leave(open_page):
    # GIVEN Alice and Bob open the chat in two tabs and set their names
    alice = open_page(viewport={"width": 1200, "height": 760})
    bob = open_page()
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    join_as(bob, "Bob")
    # THEN each sees both in the member list, and the join notice
    for page in (alice, bob):
        expect(members(page)).to_have_count(2)
        expect(members(page).nth(0)).to_contain_text("Alice")
        expect(members(page).nth(1)).to_contain_text("Bob")
    expect(entries(alice, "system").filter(has_text="Bob has joined the chat")).to_have_count(1)

    # WHEN Alice sends a public message with Enter
    alice.fill("#messageInput", "hello everyone")
    alice.press("#messageInput", "Enter")
    # THEN both see it, with Alice's name
    for page in (alice, bob):
        message = entries(page, "public").filter(has_text="hello everyone")
        expect(message).to_have_count(1)
        expect(message).to_contain_text("Alice")

    # WHEN Bob clicks Alice in the member list and sends a private message
    members(bob).filter(has_text="Alice").click()
    expect(bob.locator("#toInput")).to_have_value("Alice")
    bob.fill("#messageInput", "just between us")
    bob.press("#messageInput", "Enter")
    # THEN Alice gets it as private, Bob sees his own copy, and it is not public
    expect(entries(alice, "private").filter(has_text="just between us")).to_have_count(1)
    expect(entries(bob, "private").filter(has_text="just between us")).to_have_count(1)
    expect(entries(alice, "public").filter(has_text="just between us")).to_have_count(0)

    RESULTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(RESULTS / "chat.png"))
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(RESULTS / "chat.png", SCREENSHOT)

    # WHEN a third person tries Alice's name in another case
    carol = open_page()
    join_as(carol, "ALICE")
    # THEN the error is shown inline next to the name field
    expect(carol.locator("#nameError")).to_contain_text(re.compile("taken", re.IGNORECASE))
    expect(members(carol)).to_have_count(0)

    # WHEN Bob disconnects
    bob.click("#disconnectBtn")
    # THEN Alice sees the leave notice and the member list shrink
    expect(entries(alice, "system").filter(has_text="Bob has left the chat")).to_have_count(1)
    expect(members(alice)).to_have_count(1)


def test_markup_in_names_and_messages_is_shown_as_text_and_never_runs(open_page):
    pwned = "window.__pwned=1"
    name = "<img src=x onerror=__pwned=1>"
    alice = open_page()
    bob = open_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for page in (alice, bob):
        page.on("dialog", on_dialog)
    join_as(alice, name)
    join_as(bob, "Bob")
    expect(members(bob)).to_have_count(2)
    alice.fill("#messageInput", f"<script>{pwned}</script><img src=x onerror='{pwned}'>")
    alice.press("#messageInput", "Enter")
    message = entries(bob, "public").filter(has_text="<script>")
    expect(message).to_have_count(1)
    expect(message).to_contain_text(f"<script>{pwned}</script>")
    expect(members(bob).filter(has_text=name)).to_have_count(1)
    for page in (alice, bob):
        assert page.locator("#chatBox img, #chatBox script, #membersList img").count() == 0
        assert page.evaluate("window.__pwned") is None
    assert dialogs == []


def test_a_second_line_cannot_pass_for_a_message_from_someone_else(open_page):
    alice = open_page()
    bob = open_page()
    join_as(alice, "Alice")
    join_as(bob, "Bob")
    expect(members(bob)).to_have_count(2)
    # WHEN Alice sends a message whose second line looks like a line from Bob
    alice.fill("#messageInput", "see you later\nBob: I owe Alice 100 euros")
    alice.press("#messageInput", "Enter")
    # THEN Bob sees one message, from Alice, with her name once and the line inside it
    message = entries(bob, "public").filter(has_text="I owe Alice")
    expect(message).to_have_count(1)
    expect(message.locator(".msg__from")).to_have_text(["Alice"])
    second = message.locator(".msg__line")
    expect(second).to_have_text("Bob: I owe Alice 100 euros")
    expect(entries(bob, "public").locator(".msg__from", has_text="Bob")).to_have_count(0)
    # AND the line is indented: it starts to the right of where a sender's name starts
    name_box = message.locator(".msg__from").bounding_box()
    line_box = second.bounding_box()
    assert name_box is not None
    assert line_box is not None
    assert line_box["x"] >= name_box["x"] + 12


def test_the_page_works_on_a_narrow_phone_screen(open_page):
    phone = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    join_as(phone, "Pocket")
    expect(members(phone)).to_have_count(1)
    phone.fill("#messageInput", "from my phone")
    phone.click("#sendBtn")
    expect(entries(phone, "public").filter(has_text="from my phone")).to_have_count(1)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page must not scroll sideways on a phone"


def test_a_connection_cut_by_the_server_reconnects_and_reclaims_the_name(open_page, chat_sandbox):
    # GIVEN Alice is in the chat, watched by Bob
    alice = open_page()
    bob = open_page()
    join_as(alice, "Alice")
    join_as(bob, "Bob")
    expect(members(bob)).to_have_count(2)
    # WHEN API Gateway cuts Alice's connection (as its idle or 2-hour limit would)
    cut(chat_sandbox, "Alice")
    # THEN her page reconnects by itself and takes her name back
    expect(entries(bob, "system").filter(has_text="Alice has left the chat")).to_have_count(1)
    # (Bob joined after Alice, so this is the first join of hers he sees)
    expect(entries(bob, "system").filter(has_text="Alice has joined the chat")).to_have_count(
        1, timeout=15_000
    )
    expect(alice.locator("#status")).to_have_attribute("data-state", "connected")
    expect(members(alice)).to_have_count(2)
    expect(alice.locator("#nameError")).to_have_text("")
