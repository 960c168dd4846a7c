"""Names and texts cannot pass for something else on the page (issue 14): a notice's name is
an element of its own, a bidi control cannot reorder what follows it, each tab has one client
key on every `setName`, and frames the page does not know are reported once per kind.

Frames today's server would refuse to send (bidi controls) come through a relay that
injects them, as old history or another server could send them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.pages import Relay, cut, entries, join_as, members, reads_left_to_right, say
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.browser

SPOOF = "Bob has left the chat. Eve"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


def until(page: Page, probe: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll `probe` while Playwright runs the page's routes, until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def style(locator: Locator, prop: str) -> str:
    value: str = locator.evaluate(f"(e) => getComputedStyle(e)[{prop!r}]")
    return value


def direct_text(locator: Locator) -> list[str]:
    """The text nodes directly inside the element: the wording, without the names."""
    texts: list[str] = locator.evaluate(
        "(e) => [...e.childNodes].filter((n) => n.nodeType === 3).map((n) => n.data)"
    )
    return texts


def notices_about(page: Page, name: str) -> Locator:
    """The system entries whose name element is exactly `name`."""
    exact = re.compile(rf"^{re.escape(name)}$")
    return entries(page, "system").filter(has=page.locator(".notice-name", has_text=exact))


def test_a_name_that_reads_like_a_notice_shows_as_one_name_on_a_phone(open_page):
    # GIVEN Alice on a phone-sized screen
    alice = open_page(viewport={"width": 360, "height": 740})
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    # WHEN someone joins as "Bob has left the chat. Eve", then leaves
    eve = open_page()
    join_as(eve, SPOOF)
    expect(members(alice)).to_have_count(2)
    notices = notices_about(alice, SPOOF)
    expect(notices).to_have_count(1)
    eve.close()
    expect(members(alice)).to_have_count(1)
    expect(notices).to_have_count(2)

    # THEN each notice holds that name as one element, the wording around it as text
    for index, wording in ((0, " has joined the chat"), (1, " has left the chat")):
        notice = notices.nth(index)
        expect(notice.locator(".notice-name")).to_have_count(1)
        expect(notice.locator(".notice-name")).to_have_text(SPOOF)
        expect(notice.locator(".notice-name")).to_have_attribute("dir", "auto")
        assert direct_text(notice.locator(".msg__text")) == [wording]
    # AND no notice is about a "Bob"
    expect(notices_about(alice, "Bob")).to_have_count(0)
    # AND the name looks unlike the wording: upright in an italic notice, in a box
    chip = notices.first.locator(".notice-name")
    assert style(notices.first, "fontStyle") == "italic"
    assert style(chip, "fontStyle") == "normal"
    assert style(chip, "borderTopStyle") == "solid"
    assert style(chip, "unicodeBidi") == "isolate"
    # AND nothing is wider than the phone's screen
    box = alice.locator("#chatBox")
    assert box.evaluate("(b) => b.scrollWidth <= b.clientWidth")


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two opaque computed colours, "rgb(r, g, b)"."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_notice_name_is_readable_in_light_and_dark(open_page, scheme):
    page = open_page(color_scheme=scheme)
    join_as(page, "Alice")
    chip = notices_about(page, "Alice").locator(".notice-name")
    expect(chip).to_have_count(1)
    ratio = contrast(style(chip, "color"), style(chip, "backgroundColor"))
    assert ratio >= 4.5, f"{ratio:.2f}:1"


def test_in_the_member_list_the_name_is_one_isolated_element(open_page):
    alice = open_page()
    eve = open_page()
    join_as(alice, "Alice")
    join_as(eve, SPOOF)
    expect(members(alice)).to_have_count(2)
    spoof = members(alice).filter(has_text=SPOOF)
    expect(spoof.locator(".member__name")).to_have_text(SPOOF)
    expect(spoof.locator(".member__name")).to_have_attribute("dir", "auto")
    assert style(spoof.locator(".member__name"), "unicodeBidi") == "isolate"
    expect(members(alice)).to_have_text(["Alice(you)", SPOOF])


def test_a_bidi_override_cannot_reorder_what_follows_it(open_page):
    # GIVEN Alice in the chat, on a connection that can be sent what the server never sends
    alice = open_page()
    relay = Relay()
    relay.attach(alice)
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    # WHEN a notice, then a message, then another message arrive with U+202E in them
    relay.inject(
        {
            "systemMessage": f"Eve{RLO} has joined the chat",
            "event": "join",
            "name": f"Eve{RLO}",
        }
    )
    text = f"abc {RLO}def\nghi jkl"
    relay.inject({"publicMessage": f"Mallory{RLO}: {text}", "from": f"Mallory{RLO}", "text": text})
    relay.inject({"publicMessage": "Mallory: next line", "from": "Mallory", "text": "next line"})
    reversed_message = entries(alice, "public").filter(has_text="ghi jkl")
    next_message = entries(alice, "public").filter(has_text="next line")
    expect(next_message).to_have_count(1)

    # THEN the override reverses what follows it inside its own line (the check sees it) …
    first_line = reversed_message.locator(".msg__text > bdi")
    expect(first_line).to_have_text(f"abc {RLO}def")
    expect(first_line).to_have_attribute("dir", "auto")
    assert style(first_line, "unicodeBidi") == "isolate"
    assert not reads_left_to_right(first_line, "def")
    # … and nothing after it: the notice's wording, the message's next line, the next message
    notice = notices_about(alice, f"Eve{RLO}")
    expect(notice).to_have_count(1)
    assert reads_left_to_right(notice.locator(".msg__text"), "has joined the chat")
    assert reads_left_to_right(reversed_message.locator(".msg__line"), "ghi jkl")
    assert reads_left_to_right(next_message.locator(".msg__text"), "next line")
    # AND the sender's name, an isolate too, cannot reverse the text after it
    expect(reversed_message.locator(".msg__from")).to_have_attribute("dir", "auto")
    assert reads_left_to_right(reversed_message.locator(".msg__body"), "abc")
    # AND in the member list the name is isolated from the "(you)" and other names
    eve = members(alice).filter(has_text="Eve")
    assert style(eve.locator(".member__name"), "unicodeBidi") == "isolate"
    # (Eve never joined for real: the page drops her when the connection goes.)


def test_frames_the_page_does_not_know_are_reported_once_per_kind(open_page):
    alice = open_page()
    warnings: list[str] = []
    alice.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    relay = Relay()
    relay.attach(alice)
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    # (the join's own notice comes in a frame of its own, after the member list or before)
    expect(entries(alice, "system").filter(has_text="Alice has joined the chat")).to_have_count(1)
    shown = entries(alice, "system").count()
    # WHEN the server sends frames of two kinds the page does not know, several of each
    for frame in (
        {"typing": "Bob"},
        {"typing": "Eve"},
        {"poll": {"question": "?"}},
        {"typing": "Bob", "ts": 1},
        {"poll": {"question": "!"}},
    ):
        relay.inject(frame)
    relay.inject({"systemMessage": "a notice the page knows"})
    expect(entries(alice, "system").filter(has_text="a notice the page knows")).to_have_count(1)
    # THEN one warning for each kind, and nothing in the log for them
    unknown = [w for w in warnings if "does not know" in w]
    assert len(unknown) == 2, unknown
    assert "keys: typing" in unknown[0]
    assert "keys: poll" in unknown[1]
    expect(entries(alice, "system")).to_have_count(shown + 1)


def test_every_set_name_carries_one_client_key_per_tab(open_page, chat_sandbox: Sandbox):
    # GIVEN Alice's tab
    alice = open_page()
    relay = Relay()
    relay.attach(alice)
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    # WHEN she renames, her connection is cut (she re-claims her name), and she reloads
    alice.fill("#nameInput", "Alicia")
    alice.click("#setNameBtn")
    expect(members(alice)).to_have_text(["Alicia(you)"])
    cut(chat_sandbox, "alicia")
    until(alice, lambda: len(relay.set_names()) >= 3, "the re-claim after the reconnect")
    expect(members(alice)).to_have_text(["Alicia(you)"], timeout=15_000)
    alice.reload()
    until(alice, lambda: len(relay.set_names()) >= 4, "the re-claim after the reload")
    expect(members(alice)).to_have_text(["Alicia(you)"], timeout=15_000)

    # THEN every setName carried the same client key, of 22+ random characters
    frames = relay.set_names()
    assert [f["name"] for f in frames[:4]] == ["Alice", "Alicia", "Alicia", "Alicia"]
    keys = {str(f.get("clientKey")) for f in frames}
    assert len(keys) == 1, frames
    (key,) = keys
    assert re.fullmatch(r"[0-9a-z]{22,64}", key)
    assert len(relay.routes) == 3, "three connections: the first, after the cut, after the reload"

    # AND a new tab gets a key of its own
    bob = open_page()
    bob_relay = Relay()
    bob_relay.attach(bob)
    join_as(bob, "Bob")
    expect(members(bob)).to_have_count(2)
    (bob_set_name,) = bob_relay.set_names()
    assert re.fullmatch(r"[0-9a-z]{22,64}", bob_set_name["clientKey"])
    assert bob_set_name["clientKey"] != key


def test_the_composer_refuses_bidi_overrides_and_tabs_before_sending(open_page):
    alice = open_page()
    relay = Relay()
    relay.attach(alice)
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    for text, says in ((f"abc {RLO}def", "reorder text"), ("a\tb", "tab characters")):
        say(alice, text)
        expect(alice.locator("#composeError")).to_contain_text(says)
        expect(alice.locator("#messageInput")).to_have_value(text)
    assert [f for f in relay.sent if f.get("action") == "sendPublic"] == []


def test_a_connection_closed_while_unnamed_waits_for_a_name_to_connect_again(open_page):
    # GIVEN a page that has not chosen a name yet
    page = open_page()
    relay = Relay()
    relay.attach(page)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "connected")
    # WHEN the server closes its connection (as it closes connections that stay unnamed)
    relay.routes[-1].close(code=1000)
    # THEN the page says so and does not reconnect by itself (it would only be closed again)
    expect(status).to_have_attribute("data-state", "disconnected")
    expect(entries(page, "system").filter(has_text="Set a name to connect again")).to_have_count(1)
    page.wait_for_timeout(2_500)  # past the first automatic retry (at most 1 s)
    assert len(relay.routes) == 1
    expect(status).to_have_attribute("data-state", "disconnected")
    # AND setting a name connects and joins
    page.fill("#nameInput", "Alice")
    page.click("#setNameBtn")
    expect(members(page)).to_have_text(["Alice(you)"], timeout=15_000)
    assert len(relay.routes) == 2
    expect(status).to_have_attribute("data-state", "connected")
