"""bin/conformance, the suite a user runs against their own stage, run here against the
sandbox and the real template (so the sandbox passes what AWS is held to), against the
echo fixture and a wrong callback (so a failure is named), with sign-in on, and against
stand-ins for the ways a target cannot be reached (bad URL, nothing listening, TLS)."""

from __future__ import annotations

import io
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Subprotocol

from tests.e2e.test_sign_in_through_sandbox import synth_with_sign_in
from tests.support.chat_client import room_items
from tests.support.sandbox import ECHO_TEMPLATE, ROOT, Sandbox, running_sandbox, wait_for
from tests.support.sign_in import JwksServer, claims_for, fake_layer, jwks_server, mint
from tools.conformance import CHECKS
from tools.conformance import main as conformance_main

CONFORMANCE = ROOT / "bin" / "conformance"
ALL = [check.name for check in CHECKS]
SIGN_IN = [name for name in ALL if name.startswith("sign-in.")]
# Waits that pass in milliseconds get room for a loaded machine (the suite's default is 10 s).
SLACK = 30
SLOW_MACHINE = ["--timeout", str(SLACK)]
LINE = re.compile(r"^  (pass|FAIL|skip)  ([a-z0-9.-]+): (.*) \((\d+) ms\)$")


def conformance(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONFORMANCE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def outcomes(stdout: str) -> dict[str, str]:
    """{check: pass|FAIL|skip} from the suite's lines (each also has its reason and time)."""
    found = [LINE.match(line) for line in stdout.splitlines()]
    return {m.group(2): m.group(1) for m in found if m}


def target_args(sandbox: Sandbox) -> list[str]:
    """The suite's target options for a running sandbox, read from its banner: the
    WebSocket and callback URLs, the chat's table on the embedded DynamoDB, and the CA
    bundle when the banner names one (the callback then is https)."""
    log = sandbox.log()
    table = re.search(r"^DynamoDB:\s+\S+ \(embedded moto\); tables: (\S+)$", log, re.MULTILINE)
    assert table, log
    args = [
        "--url",
        sandbox.banner_value("WebSocket URL"),
        "--callback",
        sandbox.banner_value("Callback URL"),
        "--table",
        table.group(1),
        "--dynamodb-endpoint",
        sandbox.banner_value("DynamoDB"),
    ]
    if re.search(r"^CA bundle:\s+\S", log, re.MULTILINE):
        args += ["--ca-bundle", sandbox.banner_value("CA bundle")]
    return args


def empty_room(sandbox: Sandbox) -> None:
    """Every name the suite claimed is released: no member items left."""
    wait_for(lambda: None if room_items(sandbox) else True, what="an empty room")


@pytest.mark.sandbox
def test_every_check_passes_against_the_sandbox_running_the_stack(chat_sandbox, tmp_path):
    report = tmp_path / "report.json"
    result = conformance(*target_args(chat_sandbox), "--json", str(report), *SLOW_MACHINE)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"conformance: {chat_sandbox.ws_url}, callback ")
    assert lines[0].endswith(f"({len(ALL)} checks)")
    ran = outcomes(result.stdout)
    assert list(ran) == ALL  # one line per check, in order
    assert {name for name, status in ran.items() if status != "pass"} == set(SIGN_IN)
    assert {ran[name] for name in SIGN_IN} == {"skip"}  # sign-in is off: the test below
    assert re.fullmatch(
        rf"conformance: PASS \({len(ALL) - 3} passed, 0 failed, 3 skipped, [\d.]+ s\)", lines[-1]
    )
    written = json.loads(report.read_text())
    assert written["ok"] is True
    assert [c["name"] for c in written["checks"]] == ALL
    assert all(c["status"] == "pass" for c in written["checks"] if c["name"] not in SIGN_IN)
    empty_room(chat_sandbox)


@pytest.mark.sandbox
def test_a_wrong_callback_fails_the_connections_checks_by_name(chat_sandbox):
    args = target_args(chat_sandbox)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    option = dict(zip(args[::2], args[1::2], strict=True))
    option["--callback"] = f"http://127.0.0.1:{free}/production"
    args = [part for pair in option.items() for part in pair]
    only = "connections.get-200,connections.post-200,chat.ping-ack"
    result = conformance(*args, "--only", only, "--timeout", "3")
    assert result.returncode == 1, result.stdout + result.stderr
    ran = outcomes(result.stdout)
    assert ran == {"chat.ping-ack": "pass", "connections.get-200": "FAIL", **ran}
    assert ran["connections.post-200"] == "FAIL"
    assert "  FAIL  connections.get-200: GetConnection: cannot reach the endpoint" in result.stdout
    assert "conformance: FAIL (1 passed, 2 failed, 0 skipped, " in result.stdout
    empty_room(chat_sandbox)


@pytest.fixture(scope="module")
def echo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(ECHO_TEMPLATE, tmp_path_factory.mktemp("conformance-echo")) as sandbox:
        yield sandbox


@pytest.mark.sandbox
def test_a_stack_that_is_not_the_chat_fails_and_each_failure_is_named(echo_sandbox):
    # The echo fixture is a faithful API Gateway stage (101, 1003, 1009) running another
    # function: it admits any Origin and answers a ping with its own event, not an ack.
    only = [
        "handshake.connect-101",
        "handshake.foreign-origin-403",
        "close.binary-frame-1003",
        "close.oversized-frame-1009",
        "chat.ping-ack",
    ]
    result = conformance("--url", echo_sandbox.ws_url, "--only", ",".join(only), "--timeout", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes(result.stdout) == {
        "handshake.connect-101": "pass",
        "handshake.foreign-origin-403": "FAIL",
        "close.binary-frame-1003": "pass",
        "close.oversized-frame-1009": "pass",
        "chat.ping-ack": "FAIL",
    }
    assert (
        "  FAIL  handshake.foreign-origin-403: Origin https://conformance-check.invalid: "
        "expected HTTP 403, got 101 (" in result.stdout
    )
    assert (
        "  FAIL  chat.ping-ack: pinger: the ping's ack did not come within 2 s (" in result.stdout
    )
    assert result.stdout.splitlines()[-1].startswith("conformance: FAIL (3 passed, 2 failed, ")


ROOMS = [name for name in ALL if name.startswith("rooms.")]


@pytest.mark.sandbox
def test_a_stage_without_protocol_2_fails_every_rooms_check_by_name(echo_sandbox):
    # The echo fixture answers a v2 setName with its own event, never an acknowledgement.
    result = conformance(
        "--url", echo_sandbox.ws_url, "--only", ",".join(ROOMS), "--timeout", "1", timeout=120
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes(result.stdout) == dict.fromkeys(ROOMS, "FAIL")
    assert "  FAIL  rooms.join-create: v2 member cf-" in result.stdout
    assert "the setName acknowledgement (id cf-name-" in result.stdout
    assert ALL[-6:] == ROOMS  # last: they close the chat checks' members to take their names


# ---- sign-in on


@pytest.fixture(scope="module")
def issuer() -> Iterator[JwksServer]:
    with jwks_server() as server:
        yield server


@pytest.fixture(scope="module")
def signed_in_sandbox(
    issuer: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("conformance-sign-in")
    template = synth_with_sign_in(work / "cdk.out", issuer.issuer, fake_layer(work / "layer"))
    with running_sandbox(template, work, "--workers", "2", stage="production") as sandbox:
        yield sandbox


@pytest.mark.sandbox
@pytest.mark.synth
def test_with_sign_in_every_check_passes_given_three_tokens(signed_in_sandbox, issuer):
    tokens = [mint(claims_for(issuer.issuer, name=name)) for name in ("Ann", "Ben", "Cat")]
    token_args = [arg for token in tokens for arg in ("--token", token)]
    result = conformance(*target_args(signed_in_sandbox), *token_args, *SLOW_MACHINE)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = outcomes(result.stdout)
    assert list(ran) == ALL
    assert set(ran.values()) == {"pass"}
    assert "  pass  sign-in.no-token-401: 401 (" in result.stdout
    assert "  pass  sign-in.bad-token-403: 403 (" in result.stdout
    assert "delivered once to Cat" in result.stdout  # the names are the tokens'
    empty_room(signed_in_sandbox)


@pytest.mark.sandbox
@pytest.mark.synth
def test_with_one_token_the_checks_needing_three_names_are_skipped_and_say_why(
    signed_in_sandbox, issuer
):
    token = mint(claims_for(issuer.issuer, name="Dee"))
    result = conformance(
        *target_args(signed_in_sandbox),
        "--token",
        token,
        "--only",
        "sign-in.good-token-101,chat.set-name-ack,chat.private-one-recipient",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result.stdout) == {
        "sign-in.good-token-101": "pass",
        "chat.set-name-ack": "pass",
        "chat.private-one-recipient": "skip",
    }
    assert "with sign-in, give 3 --token (one name each; got 1)" in result.stdout
    empty_room(signed_in_sandbox)


@pytest.mark.sandbox
def test_without_a_token_a_signed_in_stage_fails_the_handshake_with_a_hint(signed_in_sandbox):
    result = conformance(
        "--url", signed_in_sandbox.ws_url, "--only", "handshake.connect-101,chat.ping-ack"
    )
    assert result.returncode == 1
    assert "  FAIL  handshake.connect-101: expected HTTP 101, got 401 (" in result.stdout
    assert "pinger: handshake refused with HTTP 401 (sign-in on? pass --token)" in result.stdout


# ---- targets the suite cannot run against


@contextmanager
def tls_stand_in(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A wss:// server on loopback with a certificate from a CA of its own (trustme):
    yields its URL and the CA's PEM."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_pem))

    def answer(ws: ServerConnection) -> None:
        for _ in ws:
            pass

    with serve(answer, "127.0.0.1", 0, ssl=server_context) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"wss://127.0.0.1:{server.socket.getsockname()[1]}/dev", ca_pem
        finally:
            server.shutdown()
            thread.join(5)


def test_a_tls_failure_stops_the_run_and_names_ca_bundle(tmp_path):
    with tls_stand_in(tmp_path) as (url, ca_pem):
        only = ["--only", "handshake.connect-101", "--timeout", str(SLACK)]
        refused = conformance("--url", url, *only, timeout=120)
        trusted = conformance("--url", url, *only, "--ca-bundle", str(ca_pem), timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "TLS: the certificate of 127.0.0.1:" in refused.stderr
    assert "pass --ca-bundle PEM" in refused.stderr
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "  pass  handshake.connect-101: 101 (" in trusted.stdout


def test_nothing_listening_stops_the_run_with_cannot_reach():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = conformance("--url", f"ws://127.0.0.1:{port}/dev", timeout=60)
    assert result.returncode == 2
    assert "conformance: cannot reach 127.0.0.1: " in result.stderr
    assert "pass" not in result.stdout.replace("passed", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "https://example.com/dev"], "is not a ws:// or wss:// URL"),
        (["--url", "wss:///dev"], "is not a ws:// or wss:// URL"),
        (["--url", "ws://127.0.0.1:1/x", "--callback", "ftp://x"], "is not an http:// or https://"),
        (["--url", "ws://127.0.0.1:1/x", "--only", "chat.nope"], "unknown check(s): chat.nope"),
        (["--url", "ws://127.0.0.1:1/x", "--token", "not-a-jwt"], "--token is not a JWT"),
        ([], "give exactly one of --url URL and --outputs-file FILE"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args, message):
    result = conformance(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_the_outputs_file_gives_the_url_and_with_connections_the_callback_and_table(tmp_path):
    from tools.conformance import options_from, parse_args  # noqa: PLC0415

    outputs = tmp_path / "cdk-outputs.json"
    stack = {
        "WebSocketUrl": "wss://abc.execute-api.eu-west-1.amazonaws.com/dev",
        "CallbackUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/dev",
        "TableName": "Chat-dev-Table",
    }
    outputs.write_text(json.dumps({"Chat-dev": stack, "ChatDeployRole": {"Arn": "x"}}))
    plain = options_from(parse_args(["--outputs-file", str(outputs)]))
    assert (plain.url, plain.callback, plain.table) == (stack["WebSocketUrl"], None, None)
    full = options_from(parse_args(["--outputs-file", str(outputs), "--connections"]))
    assert (full.url, full.callback, full.table) == tuple(stack.values())


def test_the_conformance_list_names_only_real_checks_and_every_api_gateway_one():
    text = (ROOT / "docs" / "sandbox.md").read_text()
    covering = re.findall(r"^ +`bin/conformance`: (.*(?:\n +[^ 0-9].*)?)", text, re.MULTILINE)
    named = {name for line in covering for name in re.findall(r"`([a-z-]+\.[a-z0-9.-]+)`", line)}
    assert named <= set(ALL)
    gateway = {name for name in ALL if not name.startswith(("chat.", "rooms."))}
    assert gateway <= named  # the chat protocol's checks are not API Gateway items
    items = re.findall(r"^(\d+)\. \*\*", text, re.MULTILINE)
    lines = re.findall(r"^ +`bin/conformance`: ", text, re.MULTILINE)
    assert len(lines) == len([n for n in items if int(n) <= 51])  # 52-57: one sentence


def test_list_names_every_check_and_what_it_needs():
    result = conformance("--list", timeout=60)
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == ALL
    assert "[needs --callback, --table]" in result.stdout
    assert "[needs --token]" in result.stdout


# ---- the chat checks each catch their own fault


class StandInChat:
    """Just enough of the chat (docs/protocol.md) for the `chat.*` checks, on a plain
    WebSocket server, with one fault that a test can switch on; without one, every chat
    check passes against it, so a failure is the fault's and not the stand-in's."""

    def __init__(self, fault: str | None) -> None:
        self.fault = fault
        self.lock = threading.RLock()
        self.members: dict[str, ServerConnection] = {}
        self.seq = 0
        self.last_public = 0
        self.history: list[dict] = []
        self.sent: dict[tuple[str | None, str | None], dict] = {}

    def send(self, ws: ServerConnection, frame: dict) -> None:
        ws.send(json.dumps(frame))

    def serve(self, ws: ServerConnection) -> None:
        name: str | None = None
        tokens, refilled = 10.0, time.monotonic()
        try:
            for raw in ws:
                frame = json.loads(raw)
                frame_id = frame.get("id")
                now = time.monotonic()
                tokens, refilled = min(10.0, tokens + (now - refilled) * 2), now
                if tokens < 1 and self.fault != "no-rate-limit":
                    wait = int((1 - tokens) / 2 * 1000) + 1
                    error = {"code": "RATE_LIMITED", "message": "slow down", "retryAfterMs": wait}
                    self.send(ws, {"error": {**error, "action": frame["action"], "id": frame_id}})
                    continue
                tokens -= 1
                with self.lock:
                    name = self.handle(ws, name, frame, frame_id)
        finally:
            with self.lock:
                if name:
                    del self.members[name]

    def handle(self, ws: ServerConnection, name: str | None, frame: dict, frame_id: str | None):
        action = frame["action"]
        if action == "ping":
            self.send(ws, {"ack": "ping", "id": frame_id})
        elif action == "setName":
            name = frame["name"]
            self.members[name] = ws
            listed = {"members": sorted(self.members, key=str.lower)}
            notice = {"systemMessage": f"{name} has joined the chat", "event": "join", "name": name}
            for other in self.members.values():
                for sent in (listed, notice):
                    self.send(other, sent)
            if self.fault != "no-set-name-ack":
                self.send(ws, {"ack": "setName", "id": frame_id, "name": name})
        elif action == "sendPublic":
            copy = self.sent.get((name, frame_id))
            if copy is None or self.fault == "no-dedup":
                self.seq += 1
                prev = self.last_public + (1 if self.fault == "gap" else 0)
                text = frame["message"]
                copy = {"publicMessage": f"{name}: {text}", "from": name, "text": text}
                copy |= {"seq": self.seq, "messageId": f"m{self.seq}", "prev": prev}
                self.last_public = self.seq
                self.history.append(copy)
                self.sent[(name, frame_id)] = copy
                for other_name, other in self.members.items():
                    if other_name != name:
                        self.send(other, copy)
            self.send(ws, {**copy, "id": frame_id})
        elif action == "sendPrivate":
            self.seq += 1
            text, to = frame["message"], frame["to"]
            message = {"privateMessage": f"{name}: {text}", "from": name, "to": to, "text": text}
            message |= {"seq": self.seq, "messageId": f"m{self.seq}"}
            leak = self.fault == "leak-private"
            for other_name, other in self.members.items():
                if other_name == to or (leak and other_name != name):
                    self.send(other, message)
            ack = {"ack": "sendPrivate", "id": frame_id, "to": to}
            self.send(ws, ack | {"seq": self.seq, "messageId": f"m{self.seq}"})
        elif action == "history":
            entries = [m for m in self.history if m["seq"] > frame["since"]]
            self.send(ws, {"history": entries, "final": True, "complete": True, "id": frame_id})
        return name


@contextmanager
def stand_in_chat(fault: str | None) -> Iterator[str]:
    chat = StandInChat(fault)
    with serve(chat.serve, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/dev"
        finally:
            server.shutdown()
            thread.join(5)


CHAT = [name for name in ALL if name.startswith("chat.")]
NO_MEMBERS = {check.name for check in CHECKS if check.name in CHAT and not check.members}


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        (None, None),
        ("leak-private", "chat.private-one-recipient"),
        ("no-dedup", "chat.dedup-by-id"),
        ("no-rate-limit", "chat.rate-limit"),
        ("gap", "chat.public-order"),
    ],
)
def test_each_chat_check_fails_on_its_own_fault_and_only_that_one(fault, failing):
    out = io.StringIO()
    with stand_in_chat(fault) as url:
        status = conformance_main(["--url", url, "--only", ",".join(CHAT), "--timeout", "3"], out)
    ran = outcomes(out.getvalue())
    assert list(ran) == CHAT
    expected = {name: "FAIL" if name == failing else "pass" for name in CHAT}
    assert ran == expected, out.getvalue()
    assert status == (1 if failing else 0)


@pytest.mark.sandbox
def test_it_takes_the_stage_from_cdk_deploys_outputs_file(chat_sandbox, tmp_path):
    args = target_args(chat_sandbox)
    option = dict(zip(args[::2], args[1::2], strict=True))
    outputs = tmp_path / "cdk-outputs.json"
    stack = {
        "WebSocketUrl": option["--url"],
        "CallbackUrl": option["--callback"],
        "TableName": option["--table"],
    }
    outputs.write_text(json.dumps({"Chat-dev": stack, "ChatDeployRole": {"Arn": "x"}}))
    extra = ["--ca-bundle", option["--ca-bundle"]] if "--ca-bundle" in option else []
    only = ["--only", "chat.ping-ack,connections.get-200"]
    plain = conformance("--outputs-file", str(outputs), *only, *extra)
    full = conformance(
        "--outputs-file",
        str(outputs),
        "--connections",
        "--dynamodb-endpoint",
        option["--dynamodb-endpoint"],
        *only,
        *extra,
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert outcomes(plain.stdout) == {"chat.ping-ack": "pass", "connections.get-200": "skip"}
    assert "needs --callback and --table" in plain.stdout
    assert full.returncode == 0, full.stdout + full.stderr
    assert outcomes(full.stdout) == {"chat.ping-ack": "pass", "connections.get-200": "pass"}
    empty_room(chat_sandbox)


@contextmanager
def https_connections_stand_in(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https @connections stand-in with its own CA (trustme) that knows no connection:
    410 GoneException for any id, 400 BadRequestException for `not-an-id`."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_pem = tmp_path / "callback-ca.pem"
    authority.cert_pem.write_to_path(str(ca_pem))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            bad = self.path.endswith("/not-an-id")
            self.send_response(400 if bad else 410)
            self.send_header("x-amzn-ErrorType", "BadRequestException" if bad else "GoneException")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/dev", ca_pem
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_https_callback_is_verified_with_the_ca_bundle(tmp_path):
    with (
        tls_stand_in(tmp_path) as (url, ca_pem),
        https_connections_stand_in(tmp_path) as (
            callback,
            callback_ca,
        ),
    ):
        bundle = tmp_path / "bundle.pem"
        bundle.write_text(ca_pem.read_text() + callback_ca.read_text())
        only = ["--only", "connections.unknown-and-malformed-ids", "--timeout", str(SLACK)]
        untrusted = conformance(
            "--url", url, "--callback", callback, *only, "--ca-bundle", str(ca_pem)
        )
        trusted = conformance(
            "--url", url, "--callback", callback, *only, "--ca-bundle", str(bundle)
        )
    assert untrusted.returncode == 1, untrusted.stdout + untrusted.stderr
    assert "  FAIL  connections.unknown-and-malformed-ids: GetConnection: TLS: " in untrusted.stdout
    assert "pass --ca-bundle PEM" in untrusted.stdout
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "410 GoneException, 400 BadRequestException" in trusted.stdout


def test_a_run_where_every_check_was_skipped_does_not_pass():
    out = io.StringIO()
    with stand_in_chat(None) as url:
        status = conformance_main(["--url", url, "--only", "connections.get-200"], out)
    assert status == 1
    assert "  skip  connections.get-200: needs --callback and --table" in out.getvalue()
    assert "conformance: NOTHING CHECKED (0 passed, 0 failed, 1 skipped, " in out.getvalue()


def test_a_join_that_fails_fails_the_checks_needing_members_once_not_each_after_a_wait():
    out = io.StringIO()
    started = time.monotonic()
    with stand_in_chat("no-set-name-ack") as url:
        status = conformance_main(["--url", url, "--only", ",".join(CHAT), "--timeout", "2"], out)
    elapsed = time.monotonic() - started
    assert status == 1
    ran = outcomes(out.getvalue())
    assert ran == {name: "pass" if name in NO_MEMBERS else "FAIL" for name in CHAT}
    assert "the setName acknowledgement (id cf-join-" in out.getvalue()
    assert out.getvalue().count("(joining failed earlier)") == len(CHAT) - len(NO_MEMBERS) - 1
    assert elapsed < 2 * 2 + 3  # one wait for the join, not one per check


def test_with_token_source_protocol_the_token_is_offered_beside_chat_and_chat_must_come_back():
    offered: list[str | None] = []

    def record(ws: ServerConnection) -> None:
        assert ws.request is not None
        offered.append(ws.request.headers.get("Sec-WebSocket-Protocol"))
        for _ in ws:
            pass

    token = mint(claims_for("https://issuer.example", name="Eve"))
    only = ["--only", "sign-in.good-token-101", "--token", token, "--token-source", "protocol"]
    outputs: dict[str, tuple[int, str]] = {}
    for case, chosen in (("picks chat", [Subprotocol("chat")]), ("picks none", None)):
        out = io.StringIO()
        with serve(record, "127.0.0.1", 0, subprotocols=chosen) as server:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/dev"
            outputs[case] = conformance_main(["--url", url, *only], out), out.getvalue()
            server.shutdown()
            thread.join(5)
    assert set(offered) == {f"chat, {token}"}
    status, text = outputs["picks chat"]
    assert status == 0, text
    assert "  pass  sign-in.good-token-101: 101 (token in the protocol) (" in text
    status, text = outputs["picks none"]
    assert status == 1, text
    assert "  FAIL  sign-in.good-token-101: 101 with Sec-WebSocket-Protocol None, expected" in text


@pytest.mark.sandbox
def test_sandbox_mode_starts_checks_and_stops_a_sandbox_of_the_template(
    chat_template_path, monkeypatch
):
    # `make conformance`: one command, no banner values to copy, no AWS credentials needed
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    result = conformance("--sandbox", str(chat_template_path), *SLOW_MACHINE)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = outcomes(result.stdout)
    assert list(ran) == ALL
    assert {name for name, status in ran.items() if status != "pass"} == set(SIGN_IN)
    assert result.stdout.startswith("conformance: starting the sandbox on ")


def test_sandbox_mode_without_a_template_says_to_synthesize_first(tmp_path):
    result = conformance("--sandbox", str(tmp_path / "missing.template.json"))
    assert result.returncode == 2
    assert "make synth" in result.stderr


def test_sandbox_mode_refuses_a_second_target(tmp_path):
    result = conformance("--sandbox", str(tmp_path / "t.json"), "--url", "ws://127.0.0.1:1/x")
    assert result.returncode == 2
    assert "--sandbox sets the target" in result.stderr
