"""Helpers for driving the chat page (web/) in the browser tests."""

from __future__ import annotations

import itertools
import json

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
