"""Sharded fan-out end to end: the real template with a shard size of 2, so every broadcast to
the room is split between the chat function and invocations of its fan-out worker through the
sandbox's Lambda Invoke API (chat/sharding.py, docs/performance.md "Beyond one invocation")."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.chat_client import ChatClient, room_items
from tests.support.rooms import add_ghost_member, chat_clients
from tests.support.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.sandbox

SHARD_SIZE = 2
GHOST = "zzzzGhostGhost0="  # sorts after every real id: it lands in a worker's shard


def sharded_template(template: Path) -> Path:
    """The synthesized template with FANOUT_SHARD_SIZE set to 2 in the functions that hand
    shards to the worker (those with FANOUT_WORKER: the chat function, the server API's)."""
    document = json.loads(template.read_text())
    changed = []
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        variables = properties.get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Lambda::Function" and "FANOUT_WORKER" in variables:
            variables["FANOUT_SHARD_SIZE"] = str(SHARD_SIZE)
            changed.append(properties["Handler"])
    assert "handler.lambda_handler" in changed, "the chat function (with FANOUT_WORKER) is missing"
    # Beside the original, so the template's relative asset paths still resolve.
    path = template.with_name("ChatStack.sharded.template.json")
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def sharded_sandbox(
    chat_template_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    with running_sandbox(
        sharded_template(chat_template_path),
        tmp_path_factory.mktemp("sharded-sandbox"),
        "--workers",
        "3",
        stage="production",
    ) as sandbox:
        yield sandbox


@pytest.fixture
def connect(sharded_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    yield from chat_clients(sharded_sandbox)


def worker_shards(sandbox: Sandbox) -> int:
    """How many shards the worker has posted so far (its "shard delivered" log lines)."""
    return sandbox.log().count('"shard delivered"')


def join_room(connect: Callable[[], ChatClient], names: list[str]) -> list[ChatClient]:
    clients = []
    for name in names:
        clients.append(connect().join(name))
    last = names[-1]

    def last_join(frame: dict[str, object]) -> bool:
        return frame.get("event") == "join" and frame.get("name") == last

    for client in clients[:-1]:  # everyone has seen the last one join
        client.wait_for(last_join)
    return clients


def test_a_broadcast_split_among_workers_reaches_every_member_in_order(connect, sharded_sandbox):
    # GIVEN a room of 7: of Ana's 6 listeners, this invocation posts to 2 and two worker
    # invocations to 2 each
    names = ["Ana", "Ben", "Cy", "Di", "Ed", "Flo", "Gus"]
    ana, *others = join_room(connect, names)
    shards_before = worker_shards(sharded_sandbox)
    # WHEN Ana sends three messages, each after the acknowledgement of the one before
    for n in range(3):
        ana.send("sendPublic", message=f"m{n}", id=f"c{n}")
        ack = ana.wait_for(lambda f: f.get("from") == "Ana")
        assert (ack["text"], ack.get("id")) == (f"m{n}", f"c{n}")
    # THEN everyone got all three, once each, in the order sent
    for client in others:
        texts = [client.wait_for(lambda f: f.get("from") == "Ana")["text"] for _ in range(3)]
        assert texts == ["m0", "m1", "m2"]
        assert client.quiet(0.3) == []
    # AND the workers did post them: two shards a broadcast
    wait_for(
        lambda: True if worker_shards(sharded_sandbox) - shards_before >= 6 else None,
        what="the workers' log lines",
    )


def test_a_member_a_worker_finds_gone_is_pruned_and_announced(connect, sharded_sandbox):
    # GIVEN a room whose last member (in a worker's shard) has a socket that is gone
    ana, ben, cy = join_room(connect, ["Ana", "Ben", "Cy"])
    add_ghost_member(sharded_sandbox, GHOST, "Casper")
    # WHEN Ana broadcasts
    ana.send("sendPublic", message="anyone?")
    # THEN the worker's 410 comes back to the chat function, which removes Casper and says so
    for client in (ana, ben, cy):
        client.wait_for(lambda f: f.get("text") == "anyone?")
        leave = client.wait_for(lambda f: f.get("event") == "leave")
        assert leave["name"] == "Casper"
    assert sorted(i["name"]["S"] for i in room_items(sharded_sandbox)) == ["Ana", "Ben", "Cy"]


def test_a_small_room_is_served_without_workers(connect, sharded_sandbox):
    ana, ben = join_room(connect, ["Ana", "Ben"])
    before = worker_shards(sharded_sandbox)
    ana.send("sendPublic", message="just us")
    ben.wait_for(lambda f: f.get("text") == "just us")
    ana.wait_for(lambda f: f.get("text") == "just us")
    time.sleep(0.3)
    assert worker_shards(sharded_sandbox) == before
