"""Nothing lost, duplicated or reordered: protocol v1.1 delivery in real browser tabs.

The room's history outlives each test (the sandbox is shared by the session), so every
test marks its messages with a tag of its own and looks only at those.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from tests.browser.pages import cut, entries, join_as, members, say, texts_with
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.browser


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


def recorder(sent: list[dict[str, Any]]) -> Callable[[WebSocketRoute], None]:
    """A pass-through WebSocket route that records the frames the page sends."""

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server.send(message)

        ws.on_message(from_page)

    return route


def two_people(
    open_page: Any, alice_socket: Callable[[WebSocketRoute], None] | None = None
) -> tuple[Page, Page]:
    """Alice and Bob in the chat; `alice_socket` handles Alice's WebSockets, if given."""
    alice = open_page()
    if alice_socket is not None:
        # Playwright routes a WebSocket by replacing window.WebSocket, which the page
        # took at start-up: so route, then load the page again.
        alice.route_web_socket(re.compile(r"^wss?://"), alice_socket)
        alice.reload()
    bob = open_page()
    join_as(alice, "Alice")
    join_as(bob, "Bob")
    expect(members(alice)).to_have_count(2)
    expect(members(bob)).to_have_count(2)
    return alice, bob


def test_a_page_cut_off_mid_conversation_shows_every_message_once_in_order(
    open_page: Any, chat_sandbox: Sandbox
) -> None:
    tag = new_tag()
    sent_by_alice: list[dict[str, Any]] = []
    alice, bob = two_people(open_page, alice_socket=recorder(sent_by_alice))
    # GIVEN a conversation under way
    say(bob, f"b1 {tag}")
    expect(texts_with(alice, tag)).to_have_text([f"b1 {tag}"])
    say(alice, f"a1 {tag}")
    # (Bob answers once he has read it: two senders' frames are ordered as they arrive)
    expect(texts_with(bob, tag)).to_have_text([f"b1 {tag}", f"a1 {tag}"])
    say(bob, f"b2 {tag}")
    expect(texts_with(alice, tag)).to_have_text([f"b1 {tag}", f"a1 {tag}", f"b2 {tag}"])

    # WHEN API Gateway cuts Alice's connection, and her page cannot get back at once
    # (its lookup of the endpoint is held until we let it through)
    held: list[Route] = []
    released = False

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    alice.route("**/get-ws-endpoint", hold)
    cut(chat_sandbox, "Alice")
    expect(entries(bob, "system").filter(has_text="Alice has left the chat")).to_have_count(1)
    expect(alice.locator("#status")).not_to_have_attribute("data-state", "connected")
    # AND Bob keeps talking meanwhile
    for n in (3, 4, 5):
        say(bob, f"b{n} {tag}")
    expect(bob.locator(f'#chatBox > [data-delivery="sent"]:has-text("{tag}")')).to_have_count(5)
    # AND Alice types a message while she is away: it waits, shown as sending
    say(alice, f"a2 {tag}")
    waiting = entries(alice, "public").filter(has_text=f"a2 {tag}")
    expect(waiting).to_have_attribute("data-delivery", "sending")
    expect(waiting.locator(".msg__note")).to_have_text("Sending…")
    expect(alice.locator("#composeError")).to_have_text("")
    # (the page is trying to reconnect: its endpoint lookup is held)
    for _ in range(150):
        if held:
            break
        alice.wait_for_timeout(100)
    assert held, "the page never tried to reconnect"
    released = True
    for route in held:
        route.continue_()

    # THEN after the page reconnects it shows every message exactly once, in order
    everything = [f"{m} {tag}" for m in ("b1", "a1", "b2", "b3", "b4", "b5", "a2")]
    expect(texts_with(alice, tag)).to_have_text(everything, timeout=20_000)
    expect(texts_with(bob, tag)).to_have_text(everything)
    expect(alice.locator("#status")).to_have_attribute("data-state", "connected")
    expect(waiting).to_have_attribute("data-delivery", "sent")
    expect(alice.locator("#chatBox")).not_to_contain_text("could not be recovered")
    # AND it asked for what it missed: it re-claimed its name with `since`
    claims = [f for f in sent_by_alice if f.get("action") == "setName"]
    assert [("since" in f, f["name"]) for f in claims] == [(False, "Alice"), (True, "Alice")]
    assert isinstance(claims[1]["since"], int)
    # AND her message typed while away went out once, after the reconnect, with its id
    a2 = [f for f in sent_by_alice if f.get("message") == f"a2 {tag}"]
    assert len({f["id"] for f in a2}) == 1, a2
    # AND stays that way (nothing arrives twice later)
    alice.wait_for_timeout(1500)
    expect(texts_with(alice, tag)).to_have_text(everything)
    expect(texts_with(bob, tag)).to_have_text(everything)


def test_messages_typed_quickly_arrive_in_the_order_typed(open_page: Any) -> None:
    tag = new_tag()
    alice, bob = two_people(open_page)
    typed = [f"quick {n} {tag}" for n in range(1, 6)]
    # WHEN Alice sends five messages in a row, without waiting
    for text in typed:
        say(alice, text)
    # THEN Bob sees them in the order typed, each once
    expect(texts_with(bob, tag)).to_have_text(typed)
    # AND Alice's own copies are all acknowledged, in the same order
    expect(texts_with(alice, tag)).to_have_text(typed)
    mine = entries(alice, "public").filter(has_text=tag)
    expect(mine.and_(alice.locator('[data-delivery="sent"]'))).to_have_count(5)
    bob.wait_for_timeout(500)
    expect(texts_with(bob, tag)).to_have_text(typed)


def test_messages_sent_faster_than_the_rate_limit_all_arrive_in_order(open_page: Any) -> None:
    tag = new_tag()
    # (see what the server tells Alice: her socket goes through a pass-through route)
    errors: list[dict[str, Any]] = []

    def watch(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if "error" in frame:
                errors.append(frame["error"])
            ws.send(message)

        server.on_message(from_server)

    alice, bob = two_people(open_page, alice_socket=watch)
    # (record every note shown on Alice's messages, however briefly)
    alice.evaluate(
        """() => {
            window.notesSeen = [];
            new MutationObserver(() => {
                for (const n of document.querySelectorAll("#chatBox .msg__note")) {
                    if (n.textContent && !window.notesSeen.includes(n.textContent)) {
                        window.notesSeen.push(n.textContent);
                    }
                }
            }).observe(document.getElementById("chatBox"), {
                subtree: true, childList: true, characterData: true,
            });
        }"""
    )

    # WHEN Alice sends 24 messages at once: more than her token bucket holds (10, +2/s),
    # by enough that it is still exceeded when a busy machine takes 0.25 s a frame
    typed = [f"burst {n:02d} {tag}" for n in range(1, 25)]
    alice.evaluate(
        """(texts) => {
            const input = document.getElementById("messageInput");
            const form = document.getElementById("composer");
            for (const t of texts) {
                input.value = t;
                form.requestSubmit();
            }
        }""",
        typed,
    )
    # THEN every one reaches Bob once, in order, after the server's pauses
    expect(texts_with(bob, tag)).to_have_text(typed, timeout=30_000)
    expect(texts_with(alice, tag)).to_have_text(typed)
    mine = entries(alice, "public").filter(has_text=tag)
    expect(mine.and_(alice.locator('[data-delivery="sent"]'))).to_have_count(24)
    # AND the server did refuse some for a while (none was lost or failed for it)
    assert any(e.get("code") == "RATE_LIMITED" for e in errors), errors
    assert all(e.get("code") == "RATE_LIMITED" for e in errors), errors
    expect(entries(alice, "error")).to_have_count(0)
    # AND Alice was shown why her messages were waiting
    notes = alice.evaluate("window.notesSeen")
    assert any(re.fullmatch(r"Sending too fast; retrying in \d+ s…", n) for n in notes), notes


def test_a_message_lost_on_the_way_is_fetched_from_the_history(open_page: Any) -> None:
    tag = new_tag()
    sent_by_alice: list[dict[str, Any]] = []

    # GIVEN Alice's socket drops one of Bob's messages on the way to her page
    def lossy(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            sent_by_alice.append(json.loads(message))
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if json.loads(message).get("text") == f"lost {tag}":
                return  # the live frame only: not the history that holds it
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    alice, bob = two_people(open_page, alice_socket=lossy)
    say(bob, f"before {tag}")
    expect(texts_with(alice, tag)).to_have_text([f"before {tag}"])
    # WHEN Bob sends a message that never reaches her, then another
    say(bob, f"lost {tag}")
    expect(texts_with(bob, tag)).to_have_count(2)
    say(bob, f"after {tag}")
    # THEN the next message reveals the gap, and her page fills it from the history
    expect(texts_with(alice, tag)).to_have_text([f"before {tag}", f"lost {tag}", f"after {tag}"])
    asked = [f for f in sent_by_alice if f.get("action") == "history"]
    assert len(asked) == 1, sent_by_alice
    assert isinstance(asked[0].get("since"), int)
    assert isinstance(asked[0].get("id"), str)
