"""Protocol v1.1 end to end: acknowledgements, order, de-duplication and recovery."""

from __future__ import annotations

import pytest

from tests.support.chat_client import ChatClient

pytestmark = pytest.mark.sandbox


def acked(client: ChatClient, message_id: str) -> dict:
    return client.wait_for(lambda f: f.get("id") == message_id or "error" in f)


def test_a_sender_that_waits_for_each_ack_has_its_messages_delivered_in_order(connect):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    for n in range(8):
        alice.send("sendPublic", message=f"m{n}", id=f"a{n}")
        assert "error" not in acked(alice, f"a{n}")
    got = [bob.wait_for(lambda f: "publicMessage" in f)["text"] for _ in range(8)]
    assert got == [f"m{n}" for n in range(8)]


def test_a_resent_message_is_delivered_once_with_the_same_seq(connect):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    alice.send("sendPublic", message="only once", id="dup")
    first = acked(alice, "dup")
    alice.send("sendPublic", message="only once", id="dup")
    second = acked(alice, "dup")
    assert first["seq"] == second["seq"]
    assert first["messageId"] == second["messageId"]
    assert [f["text"] for f in bob.quiet(1.0) if "publicMessage" in f] == ["only once"]


def test_a_reconnecting_client_gets_exactly_the_messages_it_missed(connect):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    alice.send("sendPublic", message="before", id="b0")
    last_seen = bob.wait_for(lambda f: f.get("text") == "before")["seq"]
    bob.close()
    alice.wait_for(lambda f: f.get("event") == "leave")
    for n in range(3):
        alice.send("sendPublic", message=f"while away {n}", id=f"w{n}")
        acked(alice, f"w{n}")
    bob_again = connect()
    bob_again.send("setName", name="Bob", since=last_seen, id="n1")
    history = bob_again.wait_for(lambda f: "history" in f)
    assert [m["text"] for m in history["history"]] == [f"while away {n}" for n in range(3)]
    assert history["complete"] is True
    assert bob_again.wait_for(lambda f: f.get("ack") == "setName")["name"] == "Bob"


def test_private_messages_are_acknowledged_and_never_in_the_history(connect):
    alice = connect().join("Alice")
    bob = connect().join("Bob")
    alice.wait_for(lambda f: f.get("name") == "Bob")
    alice.send("sendPrivate", to="Bob", message="secret", id="p1")
    ack = alice.wait_for(lambda f: f.get("ack") == "sendPrivate")
    assert (ack["id"], ack["to"]) == ("p1", "Bob")
    assert bob.wait_for(lambda f: "privateMessage" in f)["seq"] == ack["seq"]
    carol = connect()
    carol.send("setName", name="Carol", since=0)
    history = carol.wait_for(lambda f: "history" in f)
    assert "secret" not in str(history)
