"""Our own messages on protocol v2, in the browser through the sandbox: edit and delete in
the lobby as in any room; a room message's "sending" state, its acknowledgement and its
resend with the same `id` after a reconnect; and the line that says when private messages
are kept."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.pages import entries, join_as, say

pytestmark = pytest.mark.browser


def tag() -> str:
    return uuid.uuid4().hex[:6]


def join_v2(page: Page, name: str) -> None:
    join_as(page, name)
    expect(page.locator("#roomsCard")).to_be_visible(timeout=10_000)
    expect(page.locator('#roomsCard .room-btn[data-room="lobby"]')).to_have_attribute(
        "aria-current", "page"
    )


def lobby_entry(page: Page, text: str) -> Locator:
    return page.locator("#chatBox > [data-message-id]").filter(has_text=text)


def test_people_edit_and_delete_their_own_messages_in_the_lobby(open_page):
    t = tag()
    alice, bob = open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")

    say(alice, f"lobby frist {t}")
    say(bob, f"lobby bob {t}")
    expect(lobby_entry(alice, f"lobby bob {t}")).to_have_count(1)
    # THEN only her own lobby message offers Edit and Delete to Alice
    edit = alice.get_by_role("button", name=f"Edit your message: lobby frist {t}")
    expect(edit).to_have_count(1)
    expect(alice.get_by_role("button", name=f"Edit your message: lobby bob {t}")).to_have_count(0)
    expect(bob.get_by_role("button", name=f"Edit your message: lobby frist {t}")).to_have_count(0)

    # WHEN Alice edits it
    edit.click()
    expect(alice.locator("#messageInput")).to_have_value(f"lobby frist {t}")
    alice.fill("#messageInput", f"lobby first {t}")
    alice.press("#messageInput", "Enter")
    # THEN both see the new text in the lobby's log, marked edited, in the same place
    for page in (alice, bob):
        edited = lobby_entry(page, f"lobby first {t}")
        expect(edited).to_have_count(1)
        expect(edited.locator(".msg__edited")).to_have_text(" (edited)")
        expect(entries(page, "public").filter(has_text=f"lobby frist {t}")).to_have_count(0)
        texts = page.locator("#chatBox > [data-message-id]").filter(has_text=t)
        expect(texts.first).to_contain_text(f"lobby first {t}")

    # WHEN she deletes it
    alice.get_by_role("button", name=f"Delete your message: lobby first {t}").click()
    # THEN both see a tombstone in its place, and Bob's message stays
    for page in (alice, bob):
        expect(entries(page, "public").filter(has_text=f"lobby first {t}")).to_have_count(0)
        expect(
            page.locator('#chatBox > [data-kind="deleted"]').filter(has_text=f"Alice{t}")
        ).to_contain_text("This message was deleted.")
        expect(lobby_entry(page, f"lobby bob {t}")).to_have_count(1)
