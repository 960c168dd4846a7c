"""Our own messages on protocol v2, in the browser through the sandbox: edit and delete in
the lobby as in any room; a room message's "sending" state, its acknowledgement and its
resend with the same `id` after a reconnect; and the line that says when private messages
are kept."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from chat.names import skeleton
from tests.browser.pages import cut, entries, join_as, say
from tests.support.chat_client import ChatClient

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


class HoldAcks:
    """A pass-through WebSocket route that records what the page sends and, while `hold`
    is set, keeps from the page the server's copies of its own room messages (the
    acknowledgements: a `publicMessage` with the page's `id`), as if they were lost."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.hold = False

    def __call__(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            self.sent.append(json.loads(message))
            server.send(message)

        def from_server(message: str | bytes) -> None:
            frame = json.loads(message)
            own = isinstance(frame, dict) and "publicMessage" in frame and "id" in frame
            if self.hold and own and frame.get("room") != "lobby":
                self.held.append(frame)
                return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


def test_a_room_message_shows_as_sending_until_acknowledged_and_is_resent_once_after_a_reconnect(
    open_page, chat_sandbox
):
    t = tag()
    room = f"ob{t}"
    alice, bob = open_page(), open_page()
    route = HoldAcks()
    alice.route_web_socket(re.compile(r"^wss?://"), route)
    alice.reload()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    for page in (alice, bob):
        page.fill("#roomNameInput", room)
        page.click("#joinRoomBtn")
        expect(page.locator("#roomTitle")).to_have_text(room)

    # WHEN Alice writes while her acknowledgements are lost on the way
    route.hold = True
    say(alice, f"kept {t}")
    # THEN her message shows at once as sending, and Bob already has it
    mine = alice.locator("#roomBox > .msg").filter(has_text=f"kept {t}")
    expect(mine).to_have_attribute("data-delivery", "sending")
    expect(mine.locator(".msg__note")).to_have_text("Sending…")
    expect(bob.locator("#roomBox > .msg").filter(has_text=f"kept {t}")).to_have_count(1)
    for _ in range(100):  # the route's callbacks run while Playwright waits
        if route.held:
            break
        alice.wait_for_timeout(100)
    assert route.held, "the acknowledgement was not held"
    alice.wait_for_timeout(300)
    expect(mine).to_have_attribute("data-delivery", "sending")

    # WHEN the connection is cut and the page reconnects (the room joined again)
    route.hold = False
    cut(chat_sandbox, skeleton(f"alice{t}"))  # the name's key: its look-alike skeleton
    # THEN the message is sent again with the same id, acknowledged, and shown once as sent
    # (the room's history after the rejoin may show the server's copy a moment before the
    # repeated acknowledgement settles the pending one, as in the lobby)
    sent = alice.locator('#roomBox > .msg[data-delivery="sent"]').filter(has_text=f"kept {t}")
    expect(sent).to_have_count(1, timeout=30_000)
    expect(mine).to_have_count(1)
    sends = [f for f in route.sent if f.get("action") == "sendPublic" and f.get("room") == room]
    assert len(sends) >= 2
    assert {f["id"] for f in sends} == {sends[0]["id"]}
    assert sends[0]["id"].startswith("room-")
    # AND Bob got it exactly once
    expect(bob.locator("#roomBox > .msg").filter(has_text=f"kept {t}")).to_have_count(1)
    bob.wait_for_timeout(500)
    expect(bob.locator("#roomBox > .msg").filter(has_text=f"kept {t}")).to_have_count(1)


def test_the_page_says_when_private_messages_are_kept(open_page, chat_sandbox):
    t = tag()
    alice, bob = open_page(), open_page()
    note = alice.locator("#privateNote")
    # GIVEN the page writing to nobody in particular: no line
    expect(note).to_be_hidden()
    # WHEN a recipient is typed before anything is known: the line states both cases
    alice.fill("#toInput", f"Bob{t}")
    expect(note).to_be_visible()
    expect(note).to_contain_text("are kept in a direct conversation")
    expect(note).to_contain_text("otherwise they are not stored")
    alice.fill("#toInput", "")
    expect(note).to_be_hidden()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    # AND a v1 client without a lasting identity (no clientKey), whose messages are not kept
    carol = ChatClient(chat_sandbox.connect().__enter__())
    try:
        carol.join(f"Carol{t}")
        # WHEN Alice writes privately to Bob (two web pages: each has a client key)
        alice.fill("#toInput", f"Bob{t}")
        say(alice, f"psst {t}")
        # THEN the line says their private messages are kept, and for how long
        expect(note).to_contain_text(f"Private messages with \u2068Bob{t}\u2069 are kept")
        expect(note).to_contain_text("history time (one hour unless its operator changed it)")
        # AND the recipient field is described by the line
        expect(alice.locator("#toInput")).to_have_attribute(
            "aria-describedby", "toHint privateNote"
        )
        # AND Bob's page, writing back to Alice, knows it too (her message came as a direct one)
        bob.fill("#toInput", f"Alice{t}")
        bob.locator("#toInput").dispatch_event("input")
        expect(bob.locator("#privateNote")).to_contain_text(
            f"Private messages with \u2068Alice{t}\u2069 are kept"
        )

        # WHEN Alice writes privately to Carol
        alice.fill("#toInput", f"Carol{t}")
        say(alice, f"hello Carol {t}")
        carol.wait_for(lambda f: f.get("text") == f"hello Carol {t}")
        # THEN the line says these are not stored
        expect(note).to_have_text(
            f"Private messages with \u2068Carol{t}\u2069 are not stored: "
            "only the two of you receive them."
        )
        # AND back to Bob, the line is about Bob again
        alice.fill("#toInput", f"Bob{t}")
        alice.locator("#toInput").dispatch_event("input")
        expect(note).to_contain_text(f"Private messages with \u2068Bob{t}\u2069 are kept")
    finally:
        carol.close()
