"""Sign-in in the browser: the hosted page signs in with OpenID Connect (code + PKCE) at a
local provider (tests/support/oidc_provider.py), then connects with the ID token to a
sandbox whose $connect authorizer verifies it (the template synthesized with signIn=true).

The page is served as CloudFront serves it (tests/support/web_host.py): hosting.py's
endpoint document and Content-Security-Policy, so the policy must let the page reach the
issuer. Both token sources run: `?token=` and the `Sec-WebSocket-Protocol` beside `chat`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from infra.config import SignInConfig
from tests.browser.pages import entries, join_as, members, say
from tests.support.oidc_provider import OpenIdProvider, openid_provider
from tests.support.sandbox import Sandbox, running_sandbox
from tests.support.sign_in import AUDIENCE, fake_layer
from tests.support.synth import synth_template
from tests.support.web_host import HostedPage, hosted_page

pytestmark = [pytest.mark.browser, pytest.mark.synth, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with openid_provider() as running:
        yield running


@pytest.fixture(scope="module", params=["query", "protocol"])
def signed_in_stack(
    request: pytest.FixtureRequest,
    provider: OpenIdProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, HostedPage]]:
    """The sandbox running the stack with sign-in on, and the page hosted for it."""
    source = request.param
    work = tmp_path_factory.mktemp(f"sign-in-{source}")
    layer = fake_layer(work / "layer")
    template = synth_template(
        work / "cdk.out",
        "signIn=true",
        f"signInIssuer={provider.issuer}",
        f"signInAudience={AUDIENCE}",
        f"signInTokenSource={source}",
        f"signInLayerDir={layer}",
    )
    sign_in = SignInConfig(
        issuer=provider.issuer,
        audience=AUDIENCE,
        jwks_url=f"{provider.issuer}/.well-known/jwks.json",
        name_claim="cognito:username",
        token_source=source,
        layer_dir=layer,
        domain=provider.issuer,
    )
    with (
        running_sandbox(template, work, "--workers", "1", stage="production") as sandbox,
        hosted_page(sandbox.ws_url, sign_in) as page,
    ):
        yield sandbox, page


@pytest.fixture
def open_signed_in_page(
    browser: Browser, signed_in_stack: tuple[Sandbox, HostedPage]
) -> Iterator[Any]:
    _, hosted = signed_in_stack
    contexts: list[Any] = []
    problems: list[str] = []

    def open_page() -> Page:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        # A fetch the page's policy blocks is reported on the console.
        page.on(
            "console",
            lambda msg: problems.append(msg.text) if "Content Security" in msg.text else None,
        )
        page.goto(hosted.url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def sign_in(page: Page) -> None:
    expect(page.locator("#signInBtn")).to_be_visible(timeout=15_000)
    expect(page.locator("#statusText")).to_have_text("Sign in to chat")
    page.click("#signInBtn")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=15_000)


def test_the_page_signs_in_with_pkce_and_chats_under_the_tokens_name(
    open_signed_in_page, provider, signed_in_stack
):
    sandbox, hosted = signed_in_stack
    before = len(provider.exchanges)
    # GIVEN a stack that requires sign-in: the page does not connect until signed in
    provider.user = "Alice"
    alice = open_signed_in_page()
    # WHEN Alice signs in at the issuer and comes back
    sign_in(alice)
    # THEN the code was exchanged with the PKCE verifier, the address is clean again,
    # the name comes from the token, and she chats
    assert provider.exchanges[before:] == [
        {"grant_type": "authorization_code", "outcome": "ok", "user": "Alice"}
    ]
    request = provider.authorizations[-1]
    assert request["code_challenge_method"] == "S256"
    assert request["redirect_uri"] == hosted.url
    assert alice.url == hosted.url
    expect(alice.locator("#signOutBtn")).to_be_visible()
    expect(alice.locator("#signInBtn")).to_be_hidden()
    expect(alice.locator("#nameInput")).to_have_value("Alice")
    alice.click("#setNameBtn")
    expect(members(alice)).to_have_text(["Alice(you)"])

    provider.user = "Bob"
    bob = open_signed_in_page()
    sign_in(bob)
    join_as(bob, "Bob")
    expect(members(alice)).to_have_text(["Alice(you)", "Bob"])
    say(bob, "signed in and talking")
    expect(entries(alice, "public").filter(has_text="signed in and talking")).to_contain_text("Bob")
    # the token is in neither the sandbox's log nor the page's address
    assert "token=" not in bob.url
    assert "sign-in allowed" in sandbox.log()

    # WHEN Alice reloads: she signs in again through the issuer, and is back under her name
    authorized = len(provider.authorizations)
    provider.user = "Alice"
    alice.reload()
    expect(alice.locator("#membersList .you-badge")).to_have_count(1, timeout=15_000)
    expect(members(alice)).to_have_text(["Alice(you)", "Bob"])
    assert len(provider.authorizations) == authorized + 1

    # WHEN Bob signs out: disconnected, and the sign-in button is back
    bob.click("#signOutBtn")
    expect(bob.locator("#status")).to_have_attribute("data-state", "disconnected")
    expect(bob.locator("#signInBtn")).to_be_visible()
    expect(members(alice)).to_have_text(["Alice(you)"])
    # and a reload no longer signs him in by itself
    bob.reload()
    expect(bob.locator("#statusText")).to_have_text("Sign in to chat", timeout=15_000)


def test_without_signing_in_there_is_no_connection_and_the_server_refuses_one(
    open_signed_in_page, signed_in_stack
):
    sandbox, _ = signed_in_stack
    page = open_signed_in_page()
    expect(page.locator("#statusText")).to_have_text("Sign in to chat", timeout=15_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
    # the stack really requires it: a connection without a token is refused
    status = page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onclose = () => resolve("closed");
        })""",
        sandbox.ws_url,
    )
    assert status == "closed"


def test_the_csp_lets_the_page_reach_the_issuer_and_nothing_else(signed_in_stack, provider):
    # The discovery document (the issuer's path and below) and the token endpoint's origin
    # (signInDomain, here the issuer's own origin); the page above ran under this policy.
    sandbox, hosted = signed_in_stack
    connect = next(d for d in hosted.csp.split("; ") if d.startswith("connect-src "))
    assert connect == f"connect-src 'self' {sandbox.ws_url} {provider.issuer}/ {provider.issuer}"


@pytest.mark.parametrize("signed_in_stack", ["protocol"], indirect=True)
def test_a_private_room_for_a_sign_in_group_admits_its_members_only(
    open_signed_in_page, provider, signed_in_stack
):
    room = f"ops{uuid.uuid4().hex[:6]}"
    provider.groups = {"Hal": ["sre", "dba"]}
    # GIVEN Gail, signed in
    provider.user = "Gail"
    gail = open_signed_in_page()
    sign_in(gail)
    join_as(gail, "Gail")
    expect(gail.locator("#roomsCard")).to_be_visible(timeout=10_000)
    # THEN the group field shows only for a private room
    expect(gail.locator("#roomGroupInput")).to_be_hidden()
    gail.check("#roomPrivate")
    expect(gail.locator("#roomGroupInput")).to_be_visible()
    # WHEN she makes a private room for the sign-in group "sre"
    gail.fill("#roomNameInput", room)
    gail.fill("#roomGroupInput", "sre")
    gail.click("#joinRoomBtn")
    expect(gail.locator("#roomTitle")).to_have_text(room)
    # THEN the room list shows it as a private room for that group
    button = gail.locator(f'#roomList .room-btn[data-room="{room}"]')
    expect(button).to_have_attribute("aria-label", f"private room {room}, for sign-in group sre")
    expect(button).to_contain_text("group sre")
    expect(gail.locator("#roomGroupInput")).to_be_hidden()

    # WHEN Hal, whose sign-in lists "sre", joins it by its name, with no invitation
    provider.user = "Hal"
    hal = open_signed_in_page()
    sign_in(hal)
    join_as(hal, "Hal")
    expect(hal.locator("#roomsCard")).to_be_visible(timeout=10_000)
    hal.fill("#roomNameInput", room)
    hal.click("#joinRoomBtn")
    # THEN he is in, and his room list names the group too (from the server's `joined`)
    expect(hal.locator("#roomTitle")).to_have_text(room)
    expect(gail.locator("#roomPresence")).to_have_text("2 here", timeout=10_000)
    his_button = hal.locator(f'#roomList .room-btn[data-room="{room}"]')
    label = f"private room {room}, for sign-in group sre"
    expect(his_button).to_have_attribute("aria-label", label)

    # WHEN Ivy, signed in without the group, tries the same name
    provider.user = "Ivy"
    ivy = open_signed_in_page()
    sign_in(ivy)
    join_as(ivy, "Ivy")
    expect(ivy.locator("#roomsCard")).to_be_visible(timeout=10_000)
    ivy.fill("#roomNameInput", room)
    ivy.click("#joinRoomBtn")
    # THEN the room is not there for her
    expect(ivy.locator("#roomFormError")).not_to_be_empty()
    expect(ivy.locator("#roomTitle")).to_have_text("lobby")


@pytest.mark.parametrize("signed_in_stack", ["protocol"], indirect=True)
def test_the_group_field_refuses_a_group_the_server_would_refuse(
    open_signed_in_page, provider, signed_in_stack
):
    provider.user = "Jo"
    jo = open_signed_in_page()
    sign_in(jo)
    join_as(jo, "Jo")
    expect(jo.locator("#roomsCard")).to_be_visible(timeout=10_000)
    jo.check("#roomPrivate")
    jo.fill("#roomNameInput", "commas")
    jo.fill("#roomGroupInput", "sre,dba")
    jo.click("#joinRoomBtn")
    expect(jo.locator("#roomFormError")).to_contain_text("without a comma")
    expect(jo.locator("#roomTitle")).to_have_text("lobby")


@pytest.mark.parametrize("signed_in_stack", ["protocol"], indirect=True)
def test_a_stack_moderator_by_sign_in_group_deletes_a_lobby_message(
    open_signed_in_page, provider, signed_in_stack
):
    t = uuid.uuid4().hex[:6]
    provider.groups = {"Mona": ["moderators"]}
    # GIVEN Mona, whose sign-in lists the moderators' group, and Nick, who is a member
    pages = {}
    for name in ("Mona", "Nick"):
        provider.user = name
        pages[name] = open_signed_in_page()
        sign_in(pages[name])
        join_as(pages[name], name)
        expect(pages[name].locator("#roomsCard")).to_be_visible(timeout=10_000)
    mona, nick = pages["Mona"], pages["Nick"]
    say(nick, f"spam {t}")
    # THEN in the lobby, which no creator moderates, Mona has the controls and Nick none
    expect(mona.get_by_role("button", name="Moderate Nick", exact=True)).to_be_visible()
    expect(nick.locator("#membersList .member__mod")).to_have_count(0)
    delete = mona.get_by_role("button", name=f"Delete Nick's message: spam {t}")
    # WHEN she deletes Nick's message, confirming
    delete.click()
    mona.get_by_role("dialog").get_by_role("button", name="Delete message").click()
    # THEN both lobby logs show the tombstone naming her
    for page in (mona, nick):
        expect(page.locator("#chatBox > .msg").filter(has_text="removed by Mona")).to_have_count(1)
        expect(page.locator("#chatBox > .msg").filter(has_text=f"spam {t}")).to_have_count(0)
