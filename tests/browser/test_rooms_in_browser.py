"""Rooms of protocol v2 in real browser tabs through the sandbox (docs/rooms-design.md §3).

Each test is one flow of issue 16's "done when": a public room, an invitation into a
private room, a direct conversation, typing, edits and deletes, unread counts after a
reload; and the page's fallback to today's client when the server does not speak v2.
"""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from tests.browser.pages import entries, join_as, members, say
from tests.support.chat_client import ChatClient

pytestmark = pytest.mark.browser


def tag() -> str:
    return uuid.uuid4().hex[:6]


def join_v2(page: Page, name: str) -> None:
    """Join under `name` and wait for the rooms UI (the server agreed protocol 2)."""
    join_as(page, name)
    expect(page.locator("#roomsCard")).to_be_visible(timeout=10_000)
    expect(room_button(page, "lobby")).to_have_attribute("aria-current", "page")


def room_button(page: Page, room: str) -> Locator:
    return page.locator(f'#roomsCard .room-btn[data-room="{room}"]')


def room_messages(page: Page) -> Locator:
    return page.locator("#roomBox > .msg")


def open_room_by_name(page: Page, room: str, *, private: bool = False) -> None:
    """Join (or create) `room` with the room form, and wait until it is shown."""
    page.fill("#roomNameInput", room)
    if private:
        page.check("#roomPrivate")
    page.click("#joinRoomBtn")
    expect(page.locator("#roomTitle")).to_have_text(room)
    expect(room_button(page, room)).to_have_attribute("aria-current", "page")


def test_two_people_create_a_public_room_and_talk_in_it(open_page):
    t = tag()
    room = f"dev{t}"
    alice = open_page(viewport={"width": 1200, "height": 760})
    bob = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")

    # WHEN Alice creates a public room by joining a new name, and Bob joins it by name
    open_room_by_name(alice, room)
    open_room_by_name(bob, room)
    # THEN each sees the other in the room (presence and its member list)
    expect(alice.locator("#roomPresence")).to_have_text("2 here")
    expect(members(alice).filter(has_text=f"Bob{t}")).to_have_count(1)

    # WHEN they talk in it
    say(alice, "hello room")
    say(bob, "hello Alice")
    # THEN both see both messages in the room, in order, and none in the lobby's log
    for page in (alice, bob):
        expect(room_messages(page).locator(".msg__text")).to_have_text(
            ["hello room", "hello Alice"]
        )
        expect(page.locator("#chatBox")).to_be_hidden()
    # AND back in the lobby, the room's messages are not there
    room_button(alice, "lobby").click()
    expect(alice.locator("#chatBox")).to_be_visible()
    expect(entries(alice, "public").filter(has_text="hello room")).to_have_count(0)
    # AND the phone does not scroll sideways with the rooms shown
    width = bob.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page must not scroll sideways on a phone"

    # WHEN Bob leaves the room (his fourth join or leave: the server's name bucket, 3 at
    # once then one per 10 s, refuses it for a while, and the page sends it again)
    bob.click("#leaveRoomBtn")
    # THEN he is back in the lobby, and the room's members no longer count him
    expect(bob.locator("#roomTitle")).to_have_text("lobby")
    room_button(alice, room).click()
    expect(alice.locator("#roomPresence")).to_have_text("1 here", timeout=15_000)
    expect(members(alice).filter(has_text=f"Bob{t}")).to_have_count(0)
    expect(room_button(bob, room).locator(".room-btn__unread")).to_have_count(0)


def test_a_third_person_is_invited_into_a_private_room(open_page):
    t = tag()
    room = f"ops{t}"
    alice, bob, carol = open_page(), open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    join_v2(carol, f"Carol{t}")

    # WHEN Alice creates a private room and invites Carol by name
    open_room_by_name(alice, room, private=True)
    expect(alice.locator("#inviteForm")).to_be_visible()
    alice.fill("#inviteInput", f"Carol{t}")
    alice.click("#inviteBtn")
    expect(alice.locator("#roomNotice")).to_contain_text("Invited")

    # THEN Carol sees the invitation, named for who sent it, and joins with it
    invitation = carol.locator("#invitedList .room-btn").filter(has_text=room)
    expect(invitation).to_have_attribute(
        "aria-label", f"Join private room {room}, invited by Alice{t}"
    )
    invitation.click()
    expect(carol.locator("#roomTitle")).to_have_text(room)
    say(carol, "thanks for the invite")
    expect(room_messages(alice).filter(has_text="thanks for the invite")).to_have_count(1)

    # AND Bob, not invited, cannot get in by its name
    bob.fill("#roomNameInput", room)
    bob.click("#joinRoomBtn")
    expect(bob.locator("#roomFormError")).not_to_have_text("")
    expect(room_button(bob, room)).to_have_count(0)


def test_a_direct_conversation_starts_from_the_member_list(open_page):
    t = tag()
    alice, bob = open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")

    # WHEN Alice picks Bob in the member list and writes to him
    members(alice).filter(has_text=f"Bob{t}").click()
    expect(alice.locator("#toInput")).to_have_value(f"Bob{t}")
    say(alice, "just us two")
    # THEN Bob gets it as today's private message, and a direct conversation with Alice
    expect(entries(bob, "private").filter(has_text="just us two")).to_have_count(1)
    conversation = bob.locator("#directList .room-btn").filter(has_text=f"Alice{t}")
    expect(conversation).to_have_count(1)

    # WHEN Bob opens the conversation and answers in it
    conversation.click()
    expect(bob.locator("#roomTitle")).to_have_text(f"Direct · Alice{t}")
    expect(room_messages(bob).filter(has_text="just us two")).to_have_count(1)
    say(bob, "agreed")
    # THEN Alice has the conversation too, with both messages
    mine = alice.locator("#directList .room-btn").filter(has_text=f"Bob{t}")
    expect(mine).to_have_count(1)
    alice.click("#clearToBtn")
    mine.click()
    expect(room_messages(alice).locator(".msg__text")).to_have_text(["just us two", "agreed"])


def test_people_see_each_other_typing(open_page):
    t = tag()
    alice, bob = open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")

    # WHEN Alice types in the lobby without sending
    alice.locator("#messageInput").press_sequentially("hel")
    # THEN Bob's typing line says so (a live region), and Alice's own does not
    expect(bob.locator("#typingLine")).to_have_text(f"\u2068Alice{t}\u2069 is typing…")
    expect(bob.locator("#typingLine")).to_have_attribute("aria-live", "polite")
    expect(alice.locator("#typingLine")).to_have_text("")
    # AND when her message comes, the line goes
    alice.press("#messageInput", "Enter")
    expect(bob.locator("#typingLine")).to_have_text("")


def test_people_edit_and_delete_their_own_messages(open_page):
    t = tag()
    room = f"ed{t}"
    alice, bob = open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    open_room_by_name(alice, room)
    open_room_by_name(bob, room)

    say(alice, "frist draft")
    say(bob, "not yours")
    expect(room_messages(alice)).to_have_count(2)
    # THEN only her own message offers Edit and Delete to Alice
    expect(alice.get_by_role("button", name="Edit your message: frist draft")).to_have_count(1)
    expect(alice.get_by_role("button", name="Edit your message: not yours")).to_have_count(0)

    # WHEN Alice edits it
    alice.get_by_role("button", name="Edit your message: frist draft").click()
    expect(alice.locator("#messageInput")).to_have_value("frist draft")
    alice.fill("#messageInput", "first draft")
    alice.press("#messageInput", "Enter")
    # THEN both see the new text, marked edited
    for page in (alice, bob):
        edited = room_messages(page).filter(has_text="first draft")
        expect(edited).to_have_count(1)
        expect(edited.locator(".msg__edited")).to_have_text(" (edited)")

    # WHEN she deletes it
    alice.get_by_role("button", name="Delete your message: first draft").click()
    # THEN both see a tombstone in its place, and Bob's message stays
    for page in (alice, bob):
        expect(room_messages(page).filter(has_text="first draft")).to_have_count(0)
        expect(page.locator('#roomBox > [data-kind="deleted"]')).to_contain_text(
            "This message was deleted."
        )
        expect(room_messages(page).filter(has_text="not yours")).to_have_count(1)


def test_unread_counts_survive_a_reload(open_page):
    t = tag()
    room = f"news{t}"
    alice, bob = open_page(), open_page()
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    open_room_by_name(alice, room)
    open_room_by_name(bob, room)

    # WHEN Bob looks at the lobby while Alice writes twice in the room
    room_button(bob, "lobby").click()
    say(alice, "news one")
    say(alice, "news two")
    # THEN Bob's room shows 2 unread
    expect(room_button(bob, room).locator(".room-btn__unread")).to_have_text("2")
    expect(room_button(bob, room)).to_have_attribute("aria-label", f"room {room}, 2 unread")

    # WHEN Bob reloads the page
    bob.reload()
    expect(bob.locator("#roomsCard")).to_be_visible(timeout=15_000)
    # THEN the count is still there (the server's read state), and opening the room reads it
    expect(room_button(bob, room).locator(".room-btn__unread")).to_have_text("2")
    room_button(bob, room).click()
    expect(room_messages(bob).locator(".msg__text")).to_have_text(["news one", "news two"])
    expect(room_button(bob, room).locator(".room-btn__unread")).to_have_count(0)


def test_the_page_is_todays_client_when_the_server_does_not_agree_to_v2(open_page):
    t = tag()
    alice = open_page()

    # GIVEN a server that never hears the page ask for v2 (its setName loses `protocol`)
    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if isinstance(frame, dict) and frame.get("action") == "setName":
                frame.pop("protocol", None)
            server.send(json.dumps(frame))

        ws.on_message(to_server)

    alice.route_web_socket("**/production*", route)
    alice.reload()
    bob = open_page()
    join_as(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")

    # THEN Alice's page has no rooms UI, and she chats in the lobby as today
    expect(members(alice)).to_have_count(2)
    expect(alice.locator("#roomsCard")).to_be_hidden()
    say(alice, "plain old chat")
    expect(entries(bob, "public").filter(has_text="plain old chat")).to_have_count(1)
    expect(entries(alice, "public").filter(has_text="plain old chat")).to_have_count(1)


def test_the_room_list_works_from_the_keyboard(open_page):
    t = tag()
    room = f"keys{t}"
    alice = open_page()
    join_v2(alice, f"Alice{t}")
    open_room_by_name(alice, room)
    room_button(alice, "lobby").click()

    # WHEN Alice moves down the room list with the arrow keys and presses Enter
    room_button(alice, "lobby").focus()
    alice.keyboard.press("ArrowDown")
    expect(room_button(alice, room)).to_be_focused()
    alice.keyboard.press("Enter")
    # THEN that room is shown, marked current for screen readers, with the focus kept on it
    expect(alice.locator("#roomTitle")).to_have_text(room)
    expect(room_button(alice, room)).to_have_attribute("aria-current", "page")
    expect(room_button(alice, "lobby")).not_to_have_attribute("aria-current", "page")
    expect(room_button(alice, room)).to_be_focused()
    # AND Home goes back to the first room
    alice.keyboard.press("Home")
    expect(room_button(alice, "lobby")).to_be_focused()


def test_many_public_rooms_leave_the_member_list_within_reach(open_page, chat_sandbox):
    t = tag()
    # GIVEN fifteen public rooms that three others made, five each (a person's limit)
    for m in range(3):
        maker = ChatClient(chat_sandbox.connect(max_queue=None).__enter__())
        try:
            maker.join_v2(f"Maker{t}{m}", client_key=f"maker-key-{t}-{m}-{'x' * 8}")
            for n in range(5):
                joined = maker.request("joinRoom", room=f"busy{t}x{m}x{n}")
                assert "error" not in joined, joined
                maker.request("leaveRoom", room=f"busy{t}x{m}x{n}")
        finally:
            maker.close()
    alice, bob = (open_page(viewport={"width": 1200, "height": 760}) for _ in range(2))
    join_v2(alice, f"Alice{t}")
    join_v2(bob, f"Bob{t}")
    last = alice.locator(f'#publicList .room-btn[data-room="busy{t}x2x4"]')
    expect(last).to_have_count(1, timeout=10_000)
    assert alice.locator("#publicList .room-btn").count() >= 15
    # WHEN Alice picks Bob in the member list
    members(alice).filter(has_text=f"Bob{t}").click(timeout=5_000)
    # THEN she is writing to him: the long room list scrolls in its card instead
    expect(alice.locator("#toInput")).to_have_value(f"Bob{t}")
