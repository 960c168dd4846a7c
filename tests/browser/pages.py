"""Helpers for driving the chat page (web/) in the browser tests."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from tests.support.sandbox import Sandbox


def join_as(page: Page, name: str) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=15_000)
    page.fill("#nameInput", name)
    page.click("#setNameBtn")


def members(page: Page) -> Locator:
    return page.locator("#membersList > li")


def entries(page: Page, kind: str) -> Locator:
    return page.locator(f'#chatBox > [data-kind="{kind}"]')


def say(page: Page, text: str) -> None:
    """Type a message and press Enter (to the recipient in #toInput, if any)."""
    page.fill("#messageInput", text)
    page.press("#messageInput", "Enter")


def texts_with(page: Page, tag: str) -> Locator:
    """The text of each public message containing `tag`, top to bottom."""
    return entries(page, "public").filter(has_text=tag).locator(".msg__text")


def connection_of(sandbox: Sandbox, name: str) -> str:
    """The connection id that holds `name` (lower-case ASCII names only)."""
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    claim = db.get_item(
        TableName=table,
        Key={"pk": {"S": f"NAME#{name.lower()}"}, "sk": {"S": "NAME"}},
        ConsistentRead=True,
    )["Item"]
    connection_id: str = claim["connectionId"]["S"]
    return connection_id


def cut(sandbox: Sandbox, name: str) -> None:
    """Close `name`'s connection from the server side, as API Gateway's limits do."""
    sandbox.management().delete_connection(ConnectionId=connection_of(sandbox, name))


# Frames that go to more than one member, which the server stamps with an `eventId`.
EVENT_KEYS = ("systemMessage", "members", "memberList")
_event_ids = itertools.count(1)


def deliver_twice(page: Page) -> None:
    """From now on, every frame the server sends `page` arrives twice, stamped as the server
    stamps frames that go to more than one member: one `eventId` per event (the parts of
    one `memberList` share it and differ by `part`). Call before `goto`."""
    current_list: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def twice(message: str | bytes) -> None:
            frame = json.loads(message)
            if isinstance(frame, dict) and any(key in frame for key in EVENT_KEYS):
                if "memberList" in frame and frame.get("part", 1) > 1 and current_list:
                    frame["eventId"] = current_list[0]
                else:
                    frame["eventId"] = f"e{next(_event_ids)}"
                    if "memberList" in frame:
                        current_list[:] = [frame["eventId"]]
            text = json.dumps(frame)
            ws.send(text)
            ws.send(text)

        server.on_message(twice)

    page.route_web_socket("**/production*", route)


class Relay:
    """A pass-through WebSocket route for one page: it records the frames the page sends
    and can send the page frames as if from the server (`inject`), for what today's server
    would refuse to send (old history, another server). `attach` routes the page's sockets
    and reloads it (Playwright routes a WebSocket by replacing window.WebSocket, which the
    page took at start-up)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.routes: list[WebSocketRoute] = []

    def __call__(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.routes.append(ws)

        def from_page(message: str | bytes) -> None:
            self.sent.append(json.loads(message))
            server.send(message)

        ws.on_message(from_page)

    def attach(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"^wss?://"), self)
        page.reload()

    def inject(self, frame: dict[str, Any]) -> None:
        """Send `frame` to the page on its latest connection."""
        self.routes[-1].send(json.dumps(frame))

    def set_names(self) -> list[dict[str, Any]]:
        return [frame for frame in self.sent if frame.get("action") == "setName"]


# For each character of an element's text: the character and the left edge of its box.
_GLYPH_LEFTS = """(node) => {
  const out = [];
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    for (let i = 0; i < t.data.length; i += 1) {
      const range = document.createRange();
      range.setStart(t, i);
      range.setEnd(t, i + 1);
      out.push([t.data[i], range.getBoundingClientRect().left]);
    }
  }
  return out;
}"""


def glyph_lefts(locator: Locator) -> list[tuple[str, float]]:
    """Each character of the element's text with the left edge where it is laid out."""
    return [(ch, left) for ch, left in locator.evaluate(_GLYPH_LEFTS)]


def reads_left_to_right(locator: Locator, word: str) -> bool:
    """Whether `word`, found in the element's text, is laid out left to right: each of its
    characters starts to the right of the one before (a bidi override would reverse it)."""
    glyphs = glyph_lefts(locator)
    text = "".join(ch for ch, _ in glyphs)
    at = text.index(word)
    lefts = [left for _, left in glyphs[at : at + len(word)]]
    return all(a < b for a, b in itertools.pairwise(lefts))
