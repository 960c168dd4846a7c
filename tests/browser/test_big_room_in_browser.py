"""A big room in the browser: above memberListThreshold the server sends the list once, in
`memberList` parts, then only notices; every page's member list stays right."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import deliver_twice, entries, join_as, members
from tests.support.chat_client import room_items
from tests.support.sandbox import ROOT, Sandbox, running_sandbox, wait_for
from tests.support.synth import synth_template

pytestmark = [pytest.mark.browser, pytest.mark.synth]

THRESHOLD = 2


@pytest.fixture(scope="module")
def big_room_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("big-room")
    template = synth_template(work / "cdk.out", f"memberListThreshold={THRESHOLD}", cached=True)
    args = ("--web-dir", str(ROOT / "web"), "--workers", "2")
    with running_sandbox(template, work, *args, stage="production") as sandbox:
        yield sandbox


@pytest.fixture
def open_big_room(
    browser: Browser, big_room_sandbox: Sandbox
) -> Iterator[Callable[[], tuple[Page, list[dict[str, Any]]]]]:
    """A page on the big-room sandbox, and the list of frames it has received."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_page(twice: bool = False) -> tuple[Page, list[dict[str, Any]]]:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        if twice:
            deliver_twice(page)
        frames: list[dict[str, Any]] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: frames.append(json.loads(payload)),
            ),
        )
        page.goto(big_room_sandbox.base_url + "/")
        return page, frames

    yield open_page
    for context in contexts:
        context.close()
    wait_for(lambda: None if room_items(big_room_sandbox) else True, what="an empty room")
    assert problems == []


def test_parts_build_the_list_and_notices_keep_it_right(open_big_room):
    # GIVEN two people, a room still at the threshold (full `members` lists)
    (alice, alice_frames), (bob, _) = open_big_room(), open_big_room()
    join_as(alice, "Alice")
    expect(members(alice)).to_have_count(1)
    join_as(bob, "Bob")
    expect(members(alice)).to_have_count(2)
    # WHEN Carol and Dave join, above the threshold
    seen_before = len(alice_frames)
    (carol, carol_frames), (dave, dave_frames) = open_big_room(), open_big_room()
    join_as(carol, "Carol")
    expect(members(carol)).to_have_count(3)
    join_as(dave, "Dave")
    # THEN each joiner's list came in memberList parts, and the others got notices only
    expect(members(dave)).to_have_text(["Alice", "Bob", "Carol", "Dave(you)"])
    assert any("memberList" in f for f in carol_frames)
    assert any("memberList" in f for f in dave_frames)
    assert not any("members" in f for f in alice_frames[seen_before:])
    for page in (alice, bob, carol):
        expect(members(page)).to_have_count(4)
    expect(members(alice)).to_have_text(["Alice(you)", "Bob", "Carol", "Dave"])

    # WHEN Bob renames himself and Carol leaves
    bob.fill("#nameInput", "Abe")
    bob.click("#setNameBtn")
    expect(members(bob)).to_have_text(["Abe(you)", "Alice", "Carol", "Dave"])
    carol.close()
    # THEN every remaining page applies the notices to the list it has
    expect(members(alice)).to_have_text(["Abe", "Alice(you)", "Dave"])
    expect(members(bob)).to_have_text(["Abe(you)", "Alice", "Dave"])
    expect(members(dave)).to_have_text(["Abe", "Alice", "Dave(you)"])
    assert not any("members" in f for f in alice_frames[seen_before:])


def test_repeated_parts_and_notices_change_nothing_in_a_big_room(open_big_room):
    # GIVEN a big room whose pages get every frame twice (parts and notices alike)
    pages = [open_big_room(twice=True)[0] for _ in range(3)]
    for page, name in zip(pages, ("Ann", "Ben", "Cat"), strict=True):
        join_as(page, name)
        expect(page.locator("#membersList .you-badge")).to_have_count(1)
    # WHEN a fourth joins (the list in parts, twice) and one renames (a notice, twice)
    dan, _ = open_big_room(twice=True)
    join_as(dan, "Dan")
    expect(members(dan)).to_have_text(["Ann", "Ben", "Cat", "Dan(you)"])
    pages[1].fill("#nameInput", "Bea")
    pages[1].click("#setNameBtn")
    # THEN every list is right, and every notice shown once
    for page in (pages[0], pages[2], dan):
        expect(members(page).filter(has_text="Bea")).to_have_count(1)
        expect(members(page)).to_have_count(4)
        renamed = entries(page, "system").filter(has_text="Ben is now known as Bea")
        expect(renamed).to_have_count(1)
    expect(entries(pages[0], "system").filter(has_text="Dan has joined the chat")).to_have_count(1)
