"""Events out end to end: a template synthesized with `eventBusName`, the chat function's
PutEvents answered by the sandbox, which records each event in its events file, its log
and its `/events` page (lambda_src/chat/events_out.py, docs/events.md)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat_client import ChatClient
from tests.support.rooms import room_chat_clients
from tests.support.sandbox import Sandbox, running_sandbox, wait_for
from tests.support.synth import synth_template

pytestmark = pytest.mark.sandbox

BUS = "chat-events"
SOURCE = "websocket-chat"


def with_bodies(template: Path) -> Path:
    """The template with EVENTS_INCLUDE_BODIES=true on the chat function, beside it."""
    document = json.loads(template.read_text())
    for resource in document["Resources"].values():
        env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if "EVENT_BUS" in env:
            env["EVENTS_INCLUDE_BODIES"] = "true"
    path = template.with_name("ChatStack.bodies.template.json")
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def bus_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("events") / "cdk.out"
    return synth_template(out, f"eventBusName={BUS}", cached=True)


@pytest.fixture(scope="module", params=["ids only", "with bodies"])
def events_sandbox(
    request: pytest.FixtureRequest, bus_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[bool, Path, Sandbox]]:
    bodies = request.param == "with bodies"
    template = with_bodies(bus_template) if bodies else bus_template
    work = tmp_path_factory.mktemp("events-sandbox")
    events_file = work / "events.jsonl"
    with running_sandbox(
        template, work, "--events-file", str(events_file), stage="production"
    ) as sandbox:
        yield bodies, events_file, sandbox


@pytest.fixture
def connect(
    events_sandbox: tuple[bool, Path, Sandbox],
) -> Iterator[Callable[[], ChatClient]]:
    yield from room_chat_clients(events_sandbox[2])


def recorded(events_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in events_file.read_text().splitlines() if line]


def wait_for_event(events_file: Path, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        return next((e for e in recorded(events_file) if match(e)), None)

    return wait_for(probe, timeout=10, what="the event")


def in_room(kind: str, room: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["detail-type"] == kind and event["detail"].get("room") == room


def test_a_join_and_a_message_produce_the_documented_events(connect, events_sandbox):
    bodies, events_file, sandbox = events_sandbox
    name = "Ana" if not bodies else "Bea"
    ana = connect().join(name)
    ana.send("sendPublic", message="hello bus", id="e1")
    mine = ana.wait_for(lambda f: f.get("from") == name)

    posted = wait_for_event(
        events_file,
        lambda e: e["detail-type"] == "Message Posted" and e["detail"]["name"] == name,
    )
    joined = wait_for_event(
        events_file,
        lambda e: e["detail-type"] == "Member Joined" and e["detail"]["name"] == name,
    )
    opened = wait_for_event(
        events_file,
        lambda e: (
            e["detail-type"] == "Connection Opened"
            and e["detail"]["connectionId"] == joined["detail"]["connectionId"]
        ),
    )
    for event in (posted, joined, opened):
        assert (event["source"], event["bus"]) == (SOURCE, BUS)
    assert joined["detail"] == {
        "room": "lobby",
        "name": name,
        "connectionId": joined["detail"]["connectionId"],
    }
    expected = {"room": "lobby", "name": name, "messageId": mine["messageId"], "seq": mine["seq"]}
    if bodies:
        expected["message"] = "hello bus"
    assert posted["detail"] == expected
    # AND a leave is an event too, with why
    ana.close()
    left = wait_for_event(
        events_file,
        lambda e: e["detail-type"] == "Member Left" and e["detail"]["name"] == name,
    )
    assert left["detail"]["reason"] == "disconnected"
    wait_for_event(
        events_file,
        lambda e: (
            e["detail-type"] == "Connection Closed"
            and e["detail"]["connectionId"] == joined["detail"]["connectionId"]
        ),
    )
    # AND the sandbox printed them, and lists them on its page
    assert sandbox.wait_for_log(f"sandbox: event Message Posted {SOURCE} ")
    with urllib.request.urlopen(f"{sandbox.base_url}/events?format=json", timeout=5) as page:
        listed = json.loads(page.read())
    assert any(e["id"] == posted["id"] for e in listed)
    with urllib.request.urlopen(f"{sandbox.base_url}/events", timeout=5) as page:
        assert "Message Posted" in page.read().decode()


def test_room_events_name_the_room_and_edits_and_deletes_name_the_message(connect, events_sandbox):
    bodies, events_file, _ = events_sandbox
    ana = connect()
    ana.join_v2("Cleo" if not bodies else "Dora")
    assert "error" not in ana.request("joinRoom", room="porch")
    sent = ana.request("sendPublic", room="porch", message="first")
    edit = ana.request(
        "editMessage", room="porch", messageId=sent["messageId"], seq=sent["seq"], message="1st"
    )
    assert "error" not in edit
    gone = ana.request("deleteMessage", room="porch", messageId=sent["messageId"], seq=sent["seq"])
    assert "error" not in gone
    assert "error" not in ana.request("leaveRoom", room="porch")
    kinds = ("Member Joined", "Message Posted", "Message Edited", "Message Deleted", "Member Left")
    found = {
        kind: wait_for_event(
            events_file,
            in_room(kind, "porch"),
        )
        for kind in kinds
    }
    for kind in ("Message Posted", "Message Edited", "Message Deleted"):
        detail = found[kind]["detail"]
        assert (detail["messageId"], detail["seq"]) == (sent["messageId"], sent["seq"])
        assert ("message" in detail) == (bodies and kind != "Message Deleted")
    if bodies:
        assert found["Message Edited"]["detail"]["message"] == "1st"
    assert found["Member Left"]["detail"]["reason"] == "left"
