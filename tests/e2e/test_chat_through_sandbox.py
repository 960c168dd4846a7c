"""The chat end to end: real WebSocket clients, the sandbox, the real template and handler."""

from __future__ import annotations

import json
import threading

import pytest

from tests.support.chat_client import ChatClient, room_items
from tests.support.rooms import add_ghost_member

pytestmark = pytest.mark.sandbox

GHOST = "GhostGhostGhos0="  # well-formed (16 characters) but no socket has it: 410


def test_seed_trigger_flow_through_the_sandbox(connect):
    # GIVEN Bob is in the chat
    bob = connect().join("Bob")
    alice = connect()
    # WHEN Alice sets her name
    alice.send("setName", name="Alice")
    # THEN both get the member list and the join notice, in that order
    joined = [
        {"members": ["Alice", "Bob"]},
        {"systemMessage": "Alice has joined the chat", "event": "join", "name": "Alice"},
    ]
    assert alice.next_frames(2) == joined
    assert bob.next_frames(2) == joined
    # WHEN Alice says hello, everyone (Alice included) gets it
    alice.send("sendPublic", message="hello!")
    for client in (alice, bob):
        (frame,) = client.next_frames(1)
        assert frame["publicMessage"] == "Alice: hello!"
        assert (frame["from"], frame["text"]) == ("Alice", "hello!")
    # WHEN Alice whispers to Bob, only Bob gets it
    alice.send("sendPrivate", to="Bob", message="hi!")
    (private,) = bob.next_frames(1)
    assert private["privateMessage"] == "Alice: hi!"
    assert private["to"] == "Bob"
    assert alice.quiet() == []


def test_rename_and_leave_reach_the_others(connect):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    bob.send("setName", name="Robert")
    assert alice.members() == ["Alice", "Robert"]
    assert alice.wait_for(lambda f: "systemMessage" in f)["systemMessage"] == (
        "Bob is now known as Robert"
    )
    bob.close()
    leave = alice.wait_for(lambda f: f.get("event") == "leave")
    assert leave["systemMessage"] == "Robert has left the chat"
    assert alice.members() == ["Alice"]


@pytest.mark.parametrize(
    ("frame", "code", "action"),
    [
        ("hello", "INVALID_JSON", None),
        ("[1, 2]", "INVALID_JSON", None),
        ('{"message": "no action"}', "UNKNOWN_ACTION", None),
        ('{"action": "dance"}', "UNKNOWN_ACTION", None),
        ('{"action": "setName", "name": "a:b"}', "INVALID_NAME", "setName"),
        ('{"action": "setName", "name": ""}', "INVALID_NAME", "setName"),
        ('{"action": "sendPublic", "message": "hi"}', "NAME_REQUIRED", "sendPublic"),
        ('{"action": "sendPrivate", "to": "x", "message": "hi"}', "NAME_REQUIRED", "sendPrivate"),
    ],
)
def test_bad_frames_from_an_unnamed_client_get_error_frames(connect, frame, code, action):
    client = connect()
    client.send_raw(frame)
    error = client.error()
    assert (error["code"], error["action"]) == (code, action)
    assert error["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"action": "setName", "name": "ALICE"}, "NAME_TAKEN"),
        ({"action": "sendPublic", "message": "   "}, "INVALID_MESSAGE"),
        ({"action": "sendPublic", "message": "x" * 2001}, "MESSAGE_TOO_LONG"),
        ({"action": "sendPrivate", "to": "nobody", "message": "hi"}, "UNKNOWN_RECIPIENT"),
        ({"action": "sendPrivate", "message": "hi"}, "UNKNOWN_RECIPIENT"),
    ],
)
def test_bad_requests_from_a_member_get_error_frames_and_disturb_nobody(connect, fields, code):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    bob.send_raw(json.dumps(fields))
    assert bob.error()["code"] == code
    assert alice.quiet() == []


def test_ping_keeps_quiet(connect):
    client = connect().join("Pinger")
    client.send("ping")
    assert client.quiet() == []


def test_two_clients_racing_for_one_name_have_exactly_one_winner(connect):
    racers = [connect() for _ in range(2)]
    start = threading.Barrier(len(racers))

    def claim(client: ChatClient) -> None:
        start.wait()
        client.send("setName", name="Highlander")

    threads = [threading.Thread(target=claim, args=(c,)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = []
    for client in racers:
        frame = client.wait_for(lambda f: "error" in f or f.get("event") == "join")
        outcomes.append(frame["error"]["code"] if "error" in frame else "joined")
    assert sorted(outcomes) == ["NAME_TAKEN", "joined"]


def test_vanished_client_is_pruned_by_the_next_broadcast(connect, chat_sandbox):
    # GIVEN the store lists a member whose socket is gone and whose $disconnect never came
    alice = connect().join("Alice")
    add_ghost_member(chat_sandbox, GHOST, "Casper")
    # WHEN Alice broadcasts
    alice.send("sendPublic", message="anyone there?")
    # THEN the post to the ghost gets 410, the ghost is removed, and Alice is told it left
    alice.wait_for(lambda f: f.get("text") == "anyone there?")
    leave = alice.wait_for(lambda f: f.get("event") == "leave")
    assert leave["name"] == "Casper"
    assert alice.members() == ["Alice"]
    assert all(i["name"]["S"] != "Casper" for i in room_items(chat_sandbox))


def test_name_held_by_a_vanished_client_is_reclaimed(connect, chat_sandbox):
    add_ghost_member(chat_sandbox, GHOST, "Phoenix")
    client = connect()
    client.send("setName", name="phoenix")
    assert client.wait_for(lambda f: f.get("event") == "join")["name"] == "phoenix"


def test_unnamed_clients_receive_no_chat_traffic(connect):
    lurker = connect()
    alice = connect().join("Alice")
    alice.send("sendPublic", message="hello")
    alice.wait_for(lambda f: f.get("text") == "hello")
    assert lurker.quiet() == []


def test_state_is_shared_across_worker_processes(connect, chat_sandbox):
    # GIVEN many members joined through a pool of worker processes
    clients = [connect().join(f"user{i}") for i in range(8)]
    # THEN every member sees all of them: the state is in DynamoDB, not in a worker
    assert clients[-1].frames[0] == {"members": [f"user{i}" for i in range(8)]}
    pids = {
        line.split("pid=")[1].split()[0]
        for line in chat_sandbox.log().splitlines()
        if "pid=" in line
    }
    assert len(pids) >= 2, "expected invocations in more than one worker process"
