"""bin/smoke, the post-deploy smoke test, against the chat sandbox (so it cannot rot) and
against stand-in servers that misbehave (so its failures are clear and bounded in time)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from tests.support.chat_client import room_items
from tests.support.sandbox import ROOT, Sandbox, wait_for
from tools.smoke import main

SMOKE = ROOT / "bin" / "smoke"


def smoke(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SMOKE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def empty_room_after(chat_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox; afterwards, wait until the smoke test's member has left the room."""
    yield chat_sandbox
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")


@pytest.mark.sandbox
def test_the_smoke_test_passes_against_the_chat(empty_room_after):
    result = smoke(empty_room_after.ws_url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"smoke: {empty_room_after.ws_url} (timeout 30 s)"
    assert lines[1].startswith("  ok   connect (")
    assert lines[2].startswith("  ok   setName smoke-")
    assert ": listed in the members (1 member(s), " in lines[2]
    assert lines[3].startswith("  ok   sendPublic: own message echoed back (")
    assert lines[4].startswith("smoke: PASS (3 checks, ")


@pytest.mark.sandbox
def test_it_reads_the_url_from_cdk_deploys_outputs_file(empty_room_after, tmp_path):
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "Chat-dev": {"WebSocketUrl": empty_room_after.ws_url, "TableName": "t"},
                "ChatDeployRole": {"DeployRoleArn": "arn:aws:iam::123456789012:role/x"},
            }
        )
    )
    result = smoke("--outputs-file", str(outputs), "--name", "Smokey")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  ok   setName Smokey: listed in the members" in result.stdout


@pytest.mark.sandbox
def test_a_refused_origin_fails_with_the_status_and_a_hint(chat_sandbox):
    result = smoke(chat_sandbox.ws_url, "--origin", "https://elsewhere.example")
    assert result.returncode == 1
    assert "  FAIL connect: handshake refused with HTTP 403 (Origin refused? see --origin)" in (
        result.stdout
    )
    assert result.stdout.splitlines()[-1].startswith("smoke: FAIL after ")


@pytest.mark.sandbox
def test_an_error_frame_fails_the_check_it_answers(empty_room_after):
    result = smoke(empty_room_after.ws_url, "--name", "no:colons")
    assert result.returncode == 1
    assert "  FAIL setName no:colons: listed in the members: the chat answered with an error" in (
        result.stdout
    )
    assert "INVALID_NAME" in result.stdout


@contextmanager
def stand_in(handler: Callable[[ServerConnection], None]) -> Iterator[str]:
    """A WebSocket server on loopback that runs `handler` per connection; yields its URL."""
    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/dev"
        finally:
            server.shutdown()
            thread.join(5)


def silent(ws: ServerConnection) -> None:
    for _ in ws:  # read everything, answer nothing
        pass


def test_a_server_that_never_answers_fails_within_the_timeout(capsys):
    with stand_in(silent) as url:
        started = time.monotonic()
        assert main([url, "--timeout", "1.5"]) == 1
        elapsed = time.monotonic() - started
    assert elapsed < 5
    out = capsys.readouterr().out
    assert "  ok   connect (" in out
    assert "member list with 'smoke-" in out
    assert "within 1.5 s" in out


def test_a_missing_echo_fails(capsys):
    def lists_but_never_echoes(ws: ServerConnection) -> None:
        for raw in ws:
            frame = json.loads(raw)
            if frame["action"] == "setName":
                ws.send(json.dumps({"members": [frame["name"]]}))

    with stand_in(lists_but_never_echoes) as url:
        assert main([url, "--timeout", "1.5"]) == 1
    out = capsys.readouterr().out
    assert "  ok   setName smoke-" in out
    assert "  FAIL sendPublic: own message echoed back: no echo of our public message" in out


def test_a_big_room_lists_members_in_parts_and_others_talk_meanwhile(capsys):
    # Above memberListThreshold the joiner gets `memberList` parts instead of `members`.
    def big_room(ws: ServerConnection) -> None:
        name = ""
        for raw in ws:
            frame = json.loads(raw)
            if frame["action"] == "setName":
                name = frame["name"]
                ws.send(json.dumps({"memberList": ["Ann", "Bob"], "part": 1, "parts": 2}))
                ws.send(json.dumps({"memberList": [name, "Zed"], "part": 2, "parts": 2}))
            elif frame["action"] == "sendPublic":
                text = frame["message"]
                ws.send(json.dumps({"publicMessage": f"Bob: {text}", "from": "Bob", "text": text}))
                own = {"publicMessage": f"{name}: {text}", "from": name, "text": text}
                ws.send(json.dumps({**own, "id": frame["id"]}))

    with stand_in(big_room) as url:
        assert main([url, "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "listed in the members (4 member(s), " in out
    assert "smoke: PASS (3 checks, " in out


def test_nothing_listening_fails_at_connect(capsys):
    with stand_in(silent) as url:
        pass  # the port is free again
    assert main([url, "--timeout", "2"]) == 1
    assert "  FAIL connect: cannot connect: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of"),
        (["ws://127.0.0.1:1/x", "--outputs-file", "o.json"], "give exactly one of"),
        (["ws://127.0.0.1:1/x", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_bad_arguments_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_an_outputs_file_without_one_websocket_url_exits_2(tmp_path, capsys):
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"ChatDeployRole": {"DeployRoleArn": "arn"}}))
    assert main(["--outputs-file", str(outputs)]) == 2
    assert "expected a WebSocketUrl output in exactly one stack, found none" in (
        capsys.readouterr().err
    )
    outputs.write_text(
        json.dumps({"A": {"WebSocketUrl": "wss://a"}, "B": {"WebSocketUrl": "wss://b"}})
    )
    assert main(["--outputs-file", str(outputs)]) == 2
    assert "found ['A', 'B']" in capsys.readouterr().err


def test_only_websocket_urls(capsys):
    assert main(["https://example.com/dev"]) == 2
    assert "is not a ws:// or wss:// URL" in capsys.readouterr().err


def test_bin_smoke_is_an_executable_script():
    assert SMOKE.stat().st_mode & 0o111
    assert Path(ROOT / "tools" / "smoke.py").exists()
    result = smoke("--help", timeout=30)
    assert result.returncode == 0
    assert "--outputs-file" in result.stdout
