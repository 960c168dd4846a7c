"""Helpers for driving the chat page (web/) in the browser tests."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

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
