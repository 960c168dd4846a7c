"""The moderator's flows in real browser tabs through the sandbox (issue 17, item 6).

Without sign-in a room's creator moderates it (the `role` of its `joined` frame): Alice
makes a room, Bob joins it. Alice deletes Bob's message after confirming, cancels a kick,
mutes, kicks and bans him, by keyboard; Bob, a member, sees no moderator control, and
sees each notice, the MUTED message when he sends and BANNED when he comes back.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.pages import members, say
from tests.browser.test_rooms_in_browser import join_v2, open_room_by_name, room_messages

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1200, "height": 760}}


def tag() -> str:
    return uuid.uuid4().hex[:6]


def moderate_button(page: Page, name: str) -> Locator:
    return page.get_by_role("button", name=f"Moderate {name}", exact=True)


def in_one_room(open_page, t: str) -> tuple[Page, Page, str, str, str]:
    """Alice makes room `mod<t>` (she is its creator), Bob joins it; both show it."""
    room, alice_name, bob_name = f"mod{t}", f"Alice{t}", f"Bob{t}"
    alice, bob = open_page(**DESKTOP), open_page(**DESKTOP)
    join_v2(alice, alice_name)
    join_v2(bob, bob_name)
    open_room_by_name(alice, room)
    open_room_by_name(bob, room)
    expect(members(alice).filter(has_text=bob_name)).to_have_count(1)
    return alice, bob, room, alice_name, bob_name


def test_a_creator_deletes_a_members_message_after_confirming_and_both_see_the_tombstone(
    open_page,
):
    t = tag()
    alice, bob, _room, alice_name, bob_name = in_one_room(open_page, t)
    say(bob, f"buy cheap {t}")
    expect(room_messages(alice).filter(has_text=f"buy cheap {t}")).to_have_count(1)

    # THEN Bob, a plain member, sees no moderator control: none on Alice, none on messages
    expect(moderate_button(bob, alice_name)).to_have_count(0)
    expect(bob.locator('#roomBox [data-action="modDelete"]')).to_have_count(0)
    expect(bob.locator("#membersList .member__mod")).to_have_count(0)

    # WHEN Alice picks Delete on Bob's message, the dialog asks first
    delete = alice.get_by_role("button", name=f"Delete {bob_name}'s message: buy cheap {t}")
    delete.click()
    dialog = alice.get_by_role("dialog", name="Delete this message?")
    expect(dialog).to_be_visible()
    expect(alice.locator("#modReason")).to_be_focused()
    alice.fill("#modReason", "advertising")
    dialog.get_by_role("button", name="Delete message").click()
    expect(dialog).to_be_hidden()

    # THEN both pages show the tombstone, naming who removed it, and not the text
    for page in (alice, bob):
        tomb = room_messages(page).filter(has_text=f"removed by {alice_name}")
        expect(tomb).to_have_count(1)
        expect(tomb).to_contain_text(bob_name)
        expect(room_messages(page).filter(has_text=f"buy cheap {t}")).to_have_count(0)


def test_a_creator_cancels_a_kick_then_mutes_the_member_by_keyboard(open_page):
    t = tag()
    alice, bob, room, _alice_name, bob_name = in_one_room(open_page, t)
    trigger = moderate_button(alice, bob_name)
    expect(trigger).to_have_attribute("aria-haspopup", "menu")

    # WHEN Alice reaches Bob's menu with the keyboard (Tab from his entry) and opens it
    members(alice).filter(has_text=bob_name).focus()
    alice.keyboard.press("Tab")
    expect(trigger).to_be_focused()
    alice.keyboard.press("Enter")
    menu = alice.get_by_role("menu")
    expect(menu).to_be_visible()
    expect(trigger).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_role("menuitem")).to_have_text(
        [
            f"Kick {bob_name}",
            f"Mute {bob_name}…",
            f"Ban {bob_name}…",
            f"Appoint {bob_name} moderator",
        ]
    )
    expect(menu.get_by_role("menuitem", name=f"Kick {bob_name}")).to_be_focused()
    # AND picks Kick, then cancels the confirmation with Escape
    alice.keyboard.press("Enter")
    dialog = alice.get_by_role("dialog", name=f"Kick {bob_name}?")
    expect(dialog).to_be_visible()
    expect(alice.locator("#modReason")).to_be_focused()
    alice.keyboard.press("Escape")
    # THEN nothing happens: the dialog is gone, focus is back on the trigger, Bob stays
    expect(dialog).to_be_hidden()
    expect(trigger).to_be_focused()
    expect(alice.locator("#roomNotice")).to_have_text("Cancelled: nothing was done.")
    expect(bob.locator("#roomTitle")).to_have_text(room)
    expect(alice.locator("#roomPresence")).to_have_text("2 here")

    # WHEN she mutes him for the first duration offered, with a reason
    alice.keyboard.press("Enter")
    alice.keyboard.press("ArrowDown")
    expect(alice.get_by_role("menuitem", name=f"Mute {bob_name}…")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("dialog", name=f"Mute {bob_name}?")).to_be_visible()
    expect(alice.get_by_label("For how long")).to_be_focused()
    expect(alice.get_by_label("For how long")).to_have_value("300")
    alice.keyboard.press("Tab")
    alice.keyboard.type("flooding")
    alice.keyboard.press("Enter")
    # THEN both see the notice with its reason, and focus is back on the trigger
    for page in (alice, bob):
        notice = room_messages(page).filter(has_text=f"{bob_name} was muted")
        expect(notice).to_have_count(1)
        expect(notice).to_contain_text("reason: flooding")
    expect(trigger).to_be_focused()
    # AND Bob's next message is refused with the MUTED message and its wait
    say(bob, f"let me talk {t}")
    expect(bob.locator("#roomNotice")).to_have_text(
        "A moderator muted you in this room: you can send again in 5 min."
    )
    expect(room_messages(bob).filter(has_text=f"let me talk {t}")).to_contain_text("Not delivered")
    expect(room_messages(alice).filter(has_text=f"let me talk {t}")).to_have_count(0)


def test_a_creator_kicks_then_bans_a_member_by_keyboard(open_page):
    t = tag()
    alice, bob, room, _alice_name, bob_name = in_one_room(open_page, t)
    # WHEN Alice kicks Bob from his menu (Enter in the empty reason confirms)
    moderate_button(alice, bob_name).focus()
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("menuitem", name=f"Kick {bob_name}")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("dialog", name=f"Kick {bob_name}?")).to_be_visible()
    alice.keyboard.press("Enter")
    # THEN Bob's page leaves the room cleanly, saying why, and Alice sees him go
    expect(bob.locator("#roomTitle")).to_have_text("lobby")
    expect(bob.locator("#roomNotice")).to_contain_text(f"{bob_name} was removed from {room}")
    expect(bob.locator("#leaveRoomBtn")).to_be_hidden()
    expect(alice.locator("#roomPresence")).to_have_text("1 here")
    expect(moderate_button(alice, bob_name)).to_have_count(0)

    # WHEN he joins again and she bans him
    open_room_by_name(bob, room)
    expect(moderate_button(alice, bob_name)).to_have_count(1)
    moderate_button(alice, bob_name).focus()
    alice.keyboard.press("Enter")
    alice.keyboard.press("End")
    alice.keyboard.press("ArrowUp")
    expect(alice.get_by_role("menuitem", name=f"Ban {bob_name}…")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("dialog", name=f"Ban {bob_name}?")).to_be_visible()
    alice.keyboard.press("Tab")
    alice.keyboard.press("Enter")
    # THEN he is out again, and his next join is refused with BANNED and its wait
    expect(bob.locator("#roomTitle")).to_have_text("lobby")
    bob.fill("#roomNameInput", room)
    bob.click("#joinRoomBtn")
    expect(bob.locator("#roomFormError")).to_have_text(
        "You are banned from this room for another 5 min."
    )
    expect(bob.locator("#roomTitle")).to_have_text("lobby")


def test_an_appointed_member_gets_the_controls_and_loses_them_when_dismissed(open_page):
    t = tag()
    alice, bob, room, alice_name, bob_name = in_one_room(open_page, t)
    carol_name = f"Carol{t}"
    carol = open_page(**DESKTOP)
    join_v2(carol, carol_name)
    open_room_by_name(carol, room)
    expect(moderate_button(bob, carol_name)).to_have_count(0)

    # WHEN Alice appoints Bob
    moderate_button(alice, bob_name).click()
    alice.get_by_role("menuitem", name=f"Appoint {bob_name} moderator").click()
    alice.get_by_role("dialog").get_by_role("button", name=f"Appoint {bob_name}").click()
    # THEN Bob is told, and may moderate Carol, never Alice, and appoints nobody
    expect(bob.locator("#roomNotice")).to_have_text(f"You now moderate \u2068{room}\u2069.")
    expect(moderate_button(bob, alice_name)).to_have_count(0)
    moderate_button(bob, carol_name).click()
    expect(bob.get_by_role("menuitem")).to_have_text(
        [f"Kick {carol_name}", f"Mute {carol_name}…", f"Ban {carol_name}…"]
    )
    bob.keyboard.press("Escape")
    expect(moderate_button(bob, carol_name)).to_be_focused()
    # AND Alice's menu for him now offers to dismiss him
    moderate_button(alice, bob_name).click()
    alice.get_by_role("menuitem", name=f"Dismiss {bob_name} as moderator").click()
    alice.get_by_role("dialog").get_by_role("button", name=f"Dismiss {bob_name}").click()
    expect(bob.locator("#roomNotice")).to_have_text(f"You no longer moderate \u2068{room}\u2069.")
    expect(moderate_button(bob, carol_name)).to_have_count(0)


def test_a_creator_sets_the_topic_and_slow_mode_from_the_room_menu(open_page):
    t = tag()
    alice, bob, room, _alice_name, _bob_name = in_one_room(open_page, t)
    # THEN only the moderator has the room's menu
    expect(bob.locator("#roomModBtn")).to_be_hidden()
    button = alice.get_by_role("button", name="Moderate room")
    # WHEN Alice sets a topic from it
    button.click()
    alice.get_by_role("menuitem", name=f"Set the topic of {room}…").click()
    expect(alice.get_by_label("Topic", exact=True)).to_be_focused()
    alice.keyboard.type("Release day")
    alice.keyboard.press("Enter")
    # THEN both see it under the room's name, and the notice
    for page in (alice, bob):
        expect(page.locator("#roomTopic")).to_have_text("Topic: Release day")
        expect(room_messages(page).filter(has_text="set the topic")).to_have_count(1)
    expect(button).to_be_focused()
    # WHEN she puts the room in slow mode, 10 seconds
    button.click()
    alice.get_by_role("menuitem", name=f"Slow mode in {room}…").click()
    alice.get_by_label("One message per member every").select_option("10")
    alice.get_by_role("dialog").get_by_role("button", name="Set slow mode").click()
    expect(room_messages(bob).filter(has_text="Slow mode")).to_have_count(1)
    # THEN Bob's second message within 10 s is refused with SLOW_MODE and its wait
    say(bob, f"one {t}")
    expect(room_messages(alice).filter(has_text=f"one {t}")).to_have_count(1)
    say(bob, f"two {t}")
    expect(bob.locator("#roomNotice")).to_contain_text("This room is in slow mode: you can send")
    expect(room_messages(alice).filter(has_text=f"two {t}")).to_have_count(0)
