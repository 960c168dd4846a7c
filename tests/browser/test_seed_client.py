"""The user's original browser client (from the seed design), unchanged, against our stack."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "websocket-chat-seed.md"

# The seed ships only the script; this is the smallest page with the elements it looks up.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Seed client</title></head>
<body>
<input id="nameInput"><button id="setNameBtn">Set name</button>
<ul id="membersList"></ul>
<div id="chatBox"></div>
<input id="toInput"><input id="messageInput"><button id="sendBtn">Send</button>
<button id="disconnectBtn">Disconnect</button>
<script src="seed.js"></script>
</body></html>
"""


def seed_script() -> str:
    """The seed's "Frontend Script" code block, byte for byte."""
    if not SEED.exists():
        pytest.fail(f"{SEED} not found: the seed design lives in shared/ beside the checkout")
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("# Frontend Script:") :]
    match = re.search(r"```javascript\n(.*?)```", section, re.DOTALL)
    assert match, "no javascript block after '# Frontend Script:'"
    return match.group(1)


@pytest.fixture(scope="module")
def seed_sandbox(
    chat_template_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    web = tmp_path_factory.mktemp("seed-web")
    (web / "index.html").write_text(PAGE, encoding="utf-8")
    (web / "seed.js").write_text(seed_script(), encoding="utf-8")
    with running_sandbox(
        chat_template_path,
        tmp_path_factory.mktemp("seed"),
        "--web-dir",
        str(web),
        stage="production",
    ) as sandbox:
        yield sandbox


def open_seed(browser: Browser, sandbox: Sandbox) -> Page:
    page = browser.new_context().new_page()
    page.goto(sandbox.base_url + "/")
    return page


def set_name(page: Page, name: str) -> None:
    # The seed sends setName only once its socket is open; until then the click does nothing.
    def named() -> bool:
        page.fill("#nameInput", name)
        page.click("#setNameBtn")
        return page.locator("#membersList li", has_text=name).count() > 0

    for _ in range(50):
        if named():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{name} never appeared in the member list")


def test_seed_client_works_unchanged_against_the_stack(browser, seed_sandbox):
    # GIVEN two people on the seed's own client
    alice = open_seed(browser, seed_sandbox)
    bob = open_seed(browser, seed_sandbox)
    set_name(alice, "Alice")
    set_name(bob, "Bob")
    # THEN each sees both names and the join notices, as the seed renders them
    for page in (alice, bob):
        expect(page.locator("#membersList li")).to_have_text(["Alice", "Bob"])
    expect(alice.locator("#chatBox")).to_contain_text("[System] Bob has joined the chat")

    # WHEN Alice sends "hello!" to everyone
    alice.fill("#messageInput", "hello!")
    alice.click("#sendBtn")
    # THEN both render "Alice: hello!" with the name in bold
    for page in (alice, bob):
        line = page.locator("#chatBox p", has_text="hello!")
        expect(line).to_have_count(1)
        expect(line.locator("strong")).to_have_text("Alice: ")

    # WHEN Alice sends "hi!" privately to Bob
    alice.fill("#toInput", "Bob")
    alice.fill("#messageInput", "hi!")
    alice.click("#sendBtn")
    # THEN Bob sees "[Private] Alice: hi!" and Alice sees her own copy only
    expect(bob.locator("#chatBox p", has_text="hi!")).to_have_text("[Private] Alice: hi!")
    expect(alice.locator("#chatBox p", has_text="hi!")).to_have_count(1)

    # WHEN Bob disconnects, Alice sees him leave
    bob.click("#disconnectBtn")
    expect(alice.locator("#chatBox")).to_contain_text("[System] Bob has left the chat")
    expect(alice.locator("#membersList li")).to_have_text(["Alice"])
    alice.context.close()
    bob.context.close()
