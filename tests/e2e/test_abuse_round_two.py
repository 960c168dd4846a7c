"""Abuse, round two, end to end: each finding of the attack on the sandbox, as a test.

Every connection reaches the sandbox from its own loopback address (127.0.x.y), as every
connection reaches API Gateway from its own; a test that plays one client with several
connections opens them all from one address of its own (127.1.0.N), which the sandbox
hands to the function as `requestContext.identity.sourceIp`.

Two sandboxes: the session's (the stack's defaults) for what the defaults must stop, and
one synthesized with small limits, so that a few connections reach them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.chat_client import ChatClient
from tests.support.rooms import chat_clients
from tests.support.sandbox import Sandbox, running_sandbox
from tests.support.synth import synth_template

pytestmark = pytest.mark.sandbox

TIGHT: dict[str, int | float] = {
    "maxRoomSize": 6,
    "addressMaxMembers": 2,
    "addressJoinBurst": 4,
    "addressJoinRatePerSecond": 0.01,
    "addressConnectBurst": 12,
    "addressConnectRatePerSecond": 0.01,
    "addressMaxConnections": 12,
    "addressFrameBurst": 20,
    "addressFrameRatePerSecond": 0.01,
    "unnamedTimeoutSeconds": 10,
}
Opener = Callable[..., ChatClient]


@pytest.fixture(scope="module")
def tight_started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, ChatClient, float]]:
    """The tight sandbox, and a connection that never names itself, opened (and answered
    a ping) at the start: when the unnamed-timeout test comes, most of its timeout has
    passed while the tests before it ran, instead of in a sleep of its own."""
    work = tmp_path_factory.mktemp("tight-limits")
    settings = (f"{k}={v}" for k, v in TIGHT.items())
    template = synth_template(work / "cdk.out", *settings, cached=True)
    with (
        running_sandbox(template, work, stage="production") as sandbox,
        sandbox.connect(max_queue=None) as ws,
    ):
        idle = ChatClient(ws)
        assert ping_answers(idle, 1) == ["ack"]
        yield sandbox, idle, time.monotonic()


@pytest.fixture(scope="module")
def tight_sandbox(tight_started: tuple[Sandbox, ChatClient, float]) -> Sandbox:
    return tight_started[0]


@pytest.fixture
def tight(tight_sandbox: Sandbox) -> Iterator[Opener]:
    """Clients of the tight sandbox; `tight(address)` opens one from that address."""
    opened: list[ChatClient] = []

    def open_client(address: str | None = None) -> ChatClient:
        # max_queue=None: see tests.support.rooms.chat_clients (a prompt close)
        if address:
            ws = tight_sandbox.connect(source_address=(address, 0), max_queue=None)
        else:
            ws = tight_sandbox.connect(max_queue=None)
        client = ChatClient(ws.__enter__())
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def ping_answers(client: ChatClient, count: int) -> list[str]:
    """Send `count` pings with ids; what each got: "ack" or the error code."""
    for n in range(count):
        client.send("ping", id=f"p{n}")
    answers = []
    for _ in range(count):
        frame = client.wait_for(lambda f: f.get("ack") == "ping" or "error" in f)
        answers.append("ack" if "ack" in frame else frame["error"]["code"])
    return answers


# ---- limits per address, across connections --------------------------------------------


def test_ten_connections_from_one_address_share_its_frame_bucket(tight):
    # GIVEN one client with ten connections from one address
    clients = [tight("127.1.0.1") for _ in range(10)]
    # WHEN each sends three frames, well within its own connection's bucket of 10
    answers = [answer for client in clients for answer in ping_answers(client, 3)]
    # THEN together they get the address's 20, and no more
    assert answers.count("ack") == TIGHT["addressFrameBurst"]
    assert answers.count("RATE_LIMITED") == 10
    # AND a client at another address is not held back by them
    assert ping_answers(tight(), 3) == ["ack"] * 3


def test_connect_set_name_close_cycles_are_limited_by_the_addresss_joins(tight):
    outcomes = []
    for n in range(6):
        client = tight("127.1.0.2")
        client.send("setName", name=f"Cycler{n}")
        frame = client.wait_for(lambda f: f.get("event") == "join" or "error" in f)
        outcomes.append("joined" if "event" in frame else frame["error"]["code"])
        client.close()
    assert outcomes == ["joined"] * 4 + ["RATE_LIMITED"] * 2


def test_an_address_cannot_hold_more_than_its_connections(tight_sandbox, tight):
    opened = [tight("127.1.0.3") for _ in range(12)]  # addressMaxConnections
    with pytest.raises(InvalidStatus) as refused:
        tight_sandbox.connect(source_address=("127.1.0.3", 0)).__enter__()
    assert refused.value.response.status_code == 429
    # Another address is welcome meanwhile
    assert ping_answers(tight(), 1) == ["ack"]
    assert len(opened) == 12


def test_scripted_members_from_one_address_cannot_fill_the_room(tight):
    # GIVEN a script that opens connections from one address and joins each
    script = [tight("127.1.0.4") for _ in range(3)]
    outcomes = []
    for n, client in enumerate(script):
        client.send("setName", name=f"Bot{n}")
        frame = client.wait_for(lambda f: f.get("event") == "join" or "error" in f)
        outcomes.append("joined" if "event" in frame else frame["error"]["code"])
    # THEN its third member is refused, with the address's share named
    assert outcomes == ["joined", "joined", "ROOM_FULL"]
    assert "network address" in script[2].frames[-1]["error"]["message"]
    # AND four people from their own addresses still fit the room of six
    people = [tight().join(f"Person{n}") for n in range(4)]
    (listed,) = [f["members"] for f in people[-1].frames if "members" in f]
    assert len(listed) == 6


def test_a_connection_that_stays_unnamed_is_closed_after_the_timeout(tight_started, tight):
    # GIVEN a connection that answered a ping and never sent a name (opened with the
    # sandbox; the setting's minimum, 10 s, is the shortest timeout a stack can have)
    _, idle, pinged_at = tight_started
    # WHEN its timeout has passed
    time.sleep(max(0.0, pinged_at + TIGHT["unnamedTimeoutSeconds"] + 1 - time.monotonic()))
    tight()  # any handshake sweeps the unnamed connections that are past their time
    # THEN it is closed
    with pytest.raises(ConnectionClosed):
        for _ in range(50):
            idle.ws.recv(timeout=0.2)


# ---- bounded bytes ------------------------------------------------------------------------

# The attack's messages: a few hundred characters of emoji, accented letters and CJK.
ORDINARY = ("Zoë à Noël 🎉🎉 " * 12 + "中文聊天很好 " * 14)[:330]
HISTORY_MAX_BYTES = 65_536
# What a history frame adds around its messages, at most (docs/protocol.md#history).
FRAME_OVERHEAD = 200


def history_bytes(frames: list[bytes]) -> int:
    return sum(len(f) for f in frames)


def raw_history(client: ChatClient, timeout: float = 10.0) -> list[bytes]:
    """The history frames as received (bytes on the wire), up to the final one."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = client.ws.recv(timeout=deadline - time.monotonic())
        assert isinstance(text, str)
        frame = json.loads(text)
        if "history" in frame:
            got.append(text.encode("utf-8"))
            if frame["final"]:
                return got
        elif "error" in frame:
            got.append(b"")
            return got
    raise AssertionError("no final history frame")


def test_a_joiners_history_and_history_replies_stay_within_their_byte_bounds(connect, chat_sandbox):
    # GIVEN ten members who each post ten ordinary messages
    for n in range(10):
        poster = connect().join(f"Poster{n}")
        for m in range(10):
            poster.send("sendPublic", message=f"{m} {ORDINARY}")
            poster.wait_for(lambda f, n=n: "publicMessage" in f and f["from"] == f"Poster{n}")
    # WHEN someone joins
    with chat_sandbox.connect() as ws:
        joiner = ChatClient(ws)
        joiner.send("setName", name="Joiner")
        joined = raw_history(joiner)
        # THEN the history is within the bound, and says older messages exist
        assert len(joined) <= 3
        assert history_bytes(joined) <= HISTORY_MAX_BYTES + FRAME_OVERHEAD * len(joined)
        assert json.loads(joined[-1])["complete"] is False
        assert b"\\u" not in b"".join(joined)  # UTF-8 as is, never \u escapes
        # WHEN it asks for the history ten times at once
        for n in range(10):
            joiner.send("history", id=f"h{n}")
        replies = [raw_history(joiner) for _ in range(10)]
        # THEN three are answered (the history bucket), within the bound each
        answered = [r for r in replies if r[-1]]
        assert len(answered) == 3
        total = sum(history_bytes(r) for r in answered)
        assert total <= 3 * (HISTORY_MAX_BYTES + FRAME_OVERHEAD * 3)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("tab\there", "INVALID_MESSAGE"),
        ("bell\u0007", "INVALID_MESSAGE"),
        ("left \u202eright", "INVALID_MESSAGE"),
        ("isolate \u2067x\u2069", "INVALID_MESSAGE"),
        ("🎉" * 1001, "MESSAGE_TOO_LONG"),
    ],
)
def test_control_bidi_and_too_many_bytes_are_refused(connect, message, code):
    sender = connect().join("Careful")
    listener = connect().join("Hearer")
    sender.send("sendPublic", message=message)
    assert sender.error()["code"] == code
    assert not [f for f in listener.quiet(0.5) if "publicMessage" in f]


def test_a_line_break_and_right_to_left_marks_are_fine(connect):
    sender = connect().join("Lines")
    sender.send("sendPublic", message="שלום\u200f\nsecond line")
    assert sender.wait_for(lambda f: "publicMessage" in f)["text"] == "שלום\u200f\nsecond line"


# ---- strict frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        '{"action":"ping","action":"sendPublic","message":"dup"}',
        '{"action":"sendPublic","action":"ping","message":"dup"}',
        '{"action":"sendPublic","message":"nan","n":NaN}',
        '{"action":"sendPublic","message":"inf","n":-Infinity}',
        '{"action":"sendPublic","message":"nested","x":{"a":1,"a":2}}',
    ],
)
def test_frames_that_are_not_strict_json_are_refused_and_never_broadcast(connect, frame):
    sender = connect().join("Strict")
    listener = connect().join("Listens")
    sender.send_raw(frame)
    assert sender.error()["code"] == "INVALID_JSON"
    assert not [f for f in listener.quiet(0.5) if "publicMessage" in f]


# ---- names and echoes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Administrator", "Server", "Moderator", "[system]", "ADMlN", "S\u0443stem"],
)
def test_reserved_names_and_their_look_alikes_are_refused(connect, name):
    client = connect()
    client.send("setName", name=name)
    assert client.error()["code"] == "INVALID_NAME"


def test_an_all_cyrillic_look_alike_is_refused_while_the_latin_name_is_online(connect):
    connect().join("alice")
    impostor = connect()
    impostor.send("setName", name="\u0430\u04cf\u0456\u0441\u0435")  # all Cyrillic
    assert impostor.error()["code"] == "NAME_TAKEN"


def test_errors_name_the_field_and_never_repeat_what_was_sent(connect):
    sender = connect().join("Echoless")
    sender.send("sendPrivate", to="\u202eevil\u0007", message="hi")
    error = sender.error()
    assert error["code"] == "UNKNOWN_RECIPIENT"
    assert "evil" not in error["message"] and "(to)" in error["message"]
    sender.send_raw('{"action":"<script>x</script>"}')
    unknown = sender.error()
    assert unknown["action"] is None and "script" not in unknown["message"]


# ---- de-duplication by sender identity ------------------------------------------------------


def test_a_newcomer_with_a_departed_members_name_and_id_is_delivered(connect):
    listener = connect().join("Witness")
    first = connect()
    first.send("setName", name="Dana", clientKey="first-person-key-000001")
    first.wait_for(lambda f: f.get("event") == "join")
    first.send("sendPublic", message="from the first Dana", id="m1")
    first.wait_for(lambda f: f.get("id") == "m1")
    first.close()
    listener.wait_for(lambda f: f.get("event") == "leave")
    second = connect()
    second.send("setName", name="Dana", clientKey="second-person-key-00002")
    second.wait_for(lambda f: f.get("event") == "join" and f.get("name") == "Dana")
    second.send("sendPublic", message="from the second Dana", id="m1")
    ack = second.wait_for(lambda f: f.get("id") == "m1")
    assert ack["text"] == "from the second Dana"
    heard = listener.wait_for(lambda f: f.get("text") == "from the second Dana")
    assert heard["messageId"] == ack["messageId"]


def test_a_resend_after_a_reconnect_with_the_same_client_key_is_delivered_once(connect):
    listener = connect().join("Counter")
    key = "one-tab-key-00000000000001"
    sender = connect()
    sender.send("setName", name="Resender", clientKey=key)
    sender.wait_for(lambda f: f.get("event") == "join")
    sender.send("sendPublic", message="only once", id="r1")
    ack = sender.wait_for(lambda f: f.get("id") == "r1")
    listener.wait_for(lambda f: f.get("text") == "only once")
    sender.close()
    listener.wait_for(lambda f: f.get("event") == "leave")
    again = connect()
    again.send("setName", name="Resender", clientKey=key)
    again.wait_for(lambda f: f.get("event") == "join" and f.get("name") == "Resender")
    again.send("sendPublic", message="only once", id="r1")
    assert again.wait_for(lambda f: f.get("id") == "r1") == ack
    assert not [f for f in listener.quiet(1.0) if f.get("text") == "only once"]


@pytest.fixture
def connect(chat_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    yield from chat_clients(chat_sandbox)
