"""The server API through the sandbox: the synthesized stack's HTTP API over HTTPS, IAM
(SigV4) authorization as API Gateway applies it, the admin function, and bin/chat-admin."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sandbox.http_api import OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY
from tests.support.chat_client import ChatClient
from tests.support.sandbox import REGION, ROOT, Sandbox

pytestmark = pytest.mark.sandbox

OPERATOR = Credentials(OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY)


def call(
    sandbox: Sandbox,
    method: str,
    path: str,
    *,
    credentials: Credentials | None = OPERATOR,
    body: Any = None,
    signed_path: str | None = None,
    region: str = REGION,
) -> tuple[int, Any]:
    """One request to the server API over HTTPS (signed with `credentials` unless None)."""
    base = sandbox.server_api_url.rstrip("/")
    data = json.dumps(body).encode() if body is not None else b""
    headers: dict[str, str] = {"Content-Type": "application/json"} if body is not None else {}
    if credentials is not None:
        request = AWSRequest(
            method=method, url=base + (signed_path or path), data=data, headers=headers
        )
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
        headers = dict(request.headers)
    parts = urlsplit(base)
    context = ssl.create_default_context(cafile=sandbox.ca_bundle)
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
    try:
        connection.request(method, path, body=data or None, headers=headers)
        answer = connection.getresponse()
        raw = answer.read()
    finally:
        connection.close()
    return answer.status, json.loads(raw) if raw else None


@pytest.fixture
def member(chat_sandbox: Sandbox) -> Iterator[tuple[ChatClient, str]]:
    """A v2 client in a fresh public room, and the room's name."""
    room = "Ops" + uuid.uuid4().hex[:6]
    client = ChatClient(chat_sandbox.connect().__enter__())
    client.join_v2("Watcher" + uuid.uuid4().hex[:4])
    joined = client.request("joinRoom", room=room)
    assert "error" not in joined, joined
    yield client, room
    client.close()


def test_a_signed_request_lists_the_rooms_with_the_lobby_first(chat_sandbox, member):
    _, room = member
    status, document = call(chat_sandbox, "GET", "/rooms")
    assert status == 200
    names = [entry["room"] for entry in document["rooms"]]
    assert names[0] == "lobby"
    assert room in names
    assert document["complete"] is True


def test_a_rooms_members_are_listed_by_its_name_or_a_look_alike(chat_sandbox, member):
    _, room = member
    status, document = call(chat_sandbox, "GET", f"/rooms/{quote(room.upper())}/members")
    assert status == 200
    assert document["room"] == room
    assert document["kind"] == "public"
    assert document["count"] == 1
    assert document["members"][0]["protocol"] == 2


def test_an_unknown_room_is_404_and_an_invalid_name_400_with_the_chats_codes(chat_sandbox):
    status, document = call(chat_sandbox, "GET", "/rooms/nosuchroom123/members")
    assert (status, document["error"]["code"]) == (404, "ROOM_NOT_FOUND")
    status, document = call(chat_sandbox, "GET", f"/rooms/{quote('a#b')}/members")
    assert (status, document["error"]["code"]) == (400, "INVALID_ROOM")


def test_an_unsigned_request_is_refused_before_the_function_runs(chat_sandbox):
    before = chat_sandbox.log().count("server api request")
    status, document = call(chat_sandbox, "GET", "/rooms", credentials=None)
    assert (status, document) == (403, {"message": "Forbidden"})
    assert chat_sandbox.log().count("server api request") == before


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (Credentials("AKIAUNKNOWNKEY000000", "whatever"), "security token included"),
        (Credentials(OPERATOR_ACCESS_KEY_ID, "not-the-secret"), "signature we calculated"),
    ],
    ids=["unknown-key", "wrong-secret"],
)
def test_a_request_signed_with_other_credentials_is_refused(chat_sandbox, credentials, message):
    status, document = call(chat_sandbox, "GET", "/rooms", credentials=credentials)
    assert status == 403
    assert message in document["message"]


def test_a_signature_for_another_path_or_region_does_not_pass(chat_sandbox):
    status, document = call(chat_sandbox, "GET", "/rooms/lobby/members", signed_path="/rooms")
    assert status == 403
    assert "signature we calculated" in document["message"]
    status, _ = call(chat_sandbox, "GET", "/rooms", region="eu-west-1")
    assert status == 403


def test_a_signature_older_than_five_minutes_has_expired(chat_sandbox):
    past = datetime.now(UTC) - timedelta(minutes=6)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        status, document = call(chat_sandbox, "GET", "/rooms")
    assert status == 403
    assert document["message"].startswith("Signature expired")


def test_an_unknown_route_or_method_is_not_found(chat_sandbox):
    assert call(chat_sandbox, "GET", "/nothing")[0] == 404
    assert call(chat_sandbox, "DELETE", "/rooms") == (404, {"message": "Not Found"})


def test_the_function_sees_the_signer_as_the_caller(chat_sandbox):
    call(chat_sandbox, "GET", "/rooms")
    lines = [
        json.loads(line)
        for line in chat_sandbox.log().splitlines()
        if line.startswith("{") and '"server api request"' in line
    ]
    assert lines[-1]["caller"].endswith(":user/sandbox-operator")
    assert lines[-1]["route"] == "GET /rooms"


# ------------------------------------------------------------------ bin/chat-admin


def chat_admin(sandbox: Sandbox, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [str(ROOT / "bin" / "chat-admin"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHON": sys.executable, **(env or {})},
        check=False,
    )


def sandbox_args(sandbox: Sandbox) -> list[str]:
    return ["--sandbox", "--url", sandbox.server_api_url, "--ca-bundle", sandbox.ca_bundle]


def test_chat_admin_lists_a_rooms_members_for_an_operator(chat_sandbox, member):
    _, room = member
    done = chat_admin(chat_sandbox, *sandbox_args(chat_sandbox), "members", room)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{room} (public): 1 member(s)"
    assert len(lines) == 2


def test_chat_admin_prints_the_json_answer_with_json(chat_sandbox, member):
    _, room = member
    done = chat_admin(chat_sandbox, *sandbox_args(chat_sandbox), "--json", "rooms")
    assert done.returncode == 0, done.stderr
    assert room in [entry["room"] for entry in json.loads(done.stdout)["rooms"]]


def test_chat_admin_says_why_a_request_was_refused_and_exits_1(chat_sandbox):
    done = chat_admin(chat_sandbox, *sandbox_args(chat_sandbox), "members", "nosuchroom456")
    assert done.returncode == 1
    assert "refused (404 ROOM_NOT_FOUND): There is no such room." in done.stderr


def test_chat_admin_with_credentials_the_api_does_not_know_exits_1_with_a_hint(chat_sandbox):
    keys = {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000", "AWS_SECRET_ACCESS_KEY": "x"}
    done = chat_admin(
        chat_sandbox,
        "--url",
        chat_sandbox.server_api_url,
        "--ca-bundle",
        chat_sandbox.ca_bundle,
        "--region",
        REGION,
        "rooms",
        env=keys,
    )
    assert done.returncode == 1
    assert "refused by API Gateway (403)" in done.stderr
    assert "OperatorPolicyArn" in done.stderr


def test_chat_admin_without_the_sandboxs_ca_fails_tls_and_exits_2(chat_sandbox):
    done = chat_admin(
        chat_sandbox,
        "--sandbox",
        "--url",
        chat_sandbox.server_api_url,
        "--ca-bundle",
        str(ROOT / "README.md"),
        "rooms",
    )
    assert done.returncode == 2
    assert "bin/chat-admin: error: cannot use the CA bundle" in done.stderr
    assert "Traceback" not in done.stderr
