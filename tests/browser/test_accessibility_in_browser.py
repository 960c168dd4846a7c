"""axe-core (through axe-playwright-python) finds no accessibility violation on the page:
before joining, in the lobby, and in a room with its list, typing line, and one's own
message with its edit and delete buttons, with the line on keeping private messages, and
one's own lobby message with its buttons; and a room's creator with the moderator's
controls, a member's menu open and the confirmation dialog open; at desktop and phone
widths."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.pages import join_as

pytestmark = pytest.mark.browser

WIDTHS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1200, "height": 760}},
    "phone": {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True},
}


def violations(page: Page) -> list[str]:
    """Each violation as `rule: the elements` (empty when the page passes)."""
    results: Any = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_page_has_no_accessibility_violations_in_any_state(open_page, width):
    t = uuid.uuid4().hex[:6]
    page = open_page(**WIDTHS[width])
    # GIVEN the page before joining
    expect(page.locator("#nameInput")).to_be_visible()
    assert violations(page) == []
    # WHEN the person joins (protocol v2: the rooms UI shows)
    join_as(page, f"Ada{t}")
    expect(page.locator("#roomsCard")).to_be_visible(timeout=10_000)
    assert violations(page) == []
    # AND opens a room of their own and writes in it
    page.fill("#roomNameInput", f"a11y{t}")
    page.click("#joinRoomBtn")
    expect(page.locator("#roomTitle")).to_have_text(f"a11y{t}")
    page.fill("#messageInput", "hello")
    page.keyboard.press("Enter")
    expect(page.locator("#roomBox > .msg")).to_have_count(1, timeout=10_000)
    # THEN there is still nothing to fix
    assert violations(page) == []
    # AND with the line on keeping private messages shown (writing to someone)
    page.fill("#toInput", f"Bob{t}")
    expect(page.locator("#privateNote")).to_be_visible()
    assert violations(page) == []
    # AND in the lobby, with one's own message's Edit and Delete buttons
    page.fill("#toInput", "")
    page.click('#roomsCard .room-btn[data-room="lobby"]')
    page.fill("#messageInput", f"lobby hello {t}")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=f"Edit your message: lobby hello {t}")).to_be_visible(
        timeout=10_000
    )
    assert violations(page) == []


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_moderators_controls_menu_and_dialog_have_no_accessibility_violations(open_page, width):
    t = uuid.uuid4().hex[:6]
    ada, bob = open_page(**WIDTHS[width]), open_page(**WIDTHS["desktop"])
    for page, name in ((ada, f"Ada{t}"), (bob, f"Bob{t}")):
        join_as(page, name)
        expect(page.locator("#roomsCard")).to_be_visible(timeout=10_000)
        # GIVEN Ada makes a room (she moderates it) and Bob joins it and writes
        page.fill("#roomNameInput", f"mods{t}")
        page.click("#joinRoomBtn")
        expect(page.locator("#roomTitle")).to_have_text(f"mods{t}")
    bob.fill("#messageInput", "hello")
    bob.keyboard.press("Enter")
    delete = ada.get_by_role("button", name=f"Delete Bob{t}'s message: hello")
    expect(delete).to_be_visible(timeout=10_000)
    # THEN Ada's page, with Delete on Bob's message and the menu button on Bob, passes
    trigger = ada.get_by_role("button", name=f"Moderate Bob{t}")
    expect(trigger).to_be_visible()
    assert violations(ada) == []
    # AND with Bob's menu open
    trigger.click()
    expect(ada.get_by_role("menu")).to_be_visible()
    assert violations(ada) == []
    # AND with the confirmation dialog open (a mute: its duration and reason fields)
    ada.get_by_role("menuitem", name=f"Mute Bob{t}…").click()
    expect(ada.get_by_role("dialog", name=f"Mute Bob{t}?")).to_be_visible()
    assert violations(ada) == []
    ada.keyboard.press("Escape")
    # AND with a moderation notice and a tombstone in the room's log
    delete.click()
    ada.get_by_role("dialog").get_by_role("button", name="Delete message").click()
    tombstone = ada.locator("#roomBox > .msg").filter(has_text="removed by")
    expect(tombstone).to_have_count(1, timeout=10_000)
    assert violations(ada) == []


def test_the_check_finds_a_violation_when_there_is_one(open_page):
    # The check above can fail: an image without alternative text is reported.
    page = open_page()
    page.evaluate(
        "document.body.appendChild(Object.assign(document.createElement('img'),"
        " {src: 'data:image/gif;base64,R0lGODlhAQABAAAAACw='}))"
    )
    assert any(v.startswith("image-alt") for v in violations(page))
