"""Check a running chat stage against what API Gateway and the chat's protocol promise.

    bin/conformance --url wss://<api-id>.execute-api.<region>.amazonaws.com/<stage>
    bin/conformance --url ws://127.0.0.1:8080/production \
        --callback http://127.0.0.1:8080/production \
        --table <table> --dynamodb-endpoint http://127.0.0.1:<port>
    bin/conformance --outputs-file cdk-outputs.json [--connections]
    bin/conformance --list

The same checks run against the local sandbox (`make test` does) and against a deployed
stage, so "the sandbox behaves like AWS" is something anyone can check in their own
account. Every check uses only what a client or an IAM caller can see: WebSocket
handshakes, frames and close codes, and the `@connections` API signed with SigV4 by
boto3. A line per check (pass, FAIL with the reason, or skip with what it needs), a
summary, and the exit status: 0 when no check failed (and one passed), 1 when one did
(or every check was skipped), 2 when the suite could not run (bad arguments, a target
that cannot be reached, a TLS failure).

What a check needs:
- `@connections` checks: `--callback` (the stage's callback URL) and AWS credentials from
  the default chain allowed `execute-api:ManageConnections` on the stage; and, to learn
  its own connection id (API Gateway never tells the client), `--table` (the chat's
  table) with `dynamodb:Query` on it: one strongly consistent Query of the room's member
  items for the check's own name.
- sign-in checks: `--token` (a valid ID token; the name the chat binds it to is read
  from the token's `--name-claim`). The chat checks need three members, so with sign-in
  on give three tokens with different names (`--token` three times).

The checks join the room under names `cf-<random>-a`, `-b`, `-c` (with sign-in, the
tokens' names), send a few public messages that everyone in the room sees, and close
every connection at the end, which releases the names. The rooms checks (protocol v2) run
last, under the same names on new connections, and make two rooms of their own,
`cf-<random>-pub` and `cf-<random>-prv`, which last until the stage expires them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import itertools
import json
import math
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

PROG = "conformance"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
USER_AGENT = "websocket-chat-conformance"
FRAME_LIMIT = 32 * 1024  # API Gateway's frame size limit (docs/aws-facts.md)
POST_LIMIT = 128 * 1024  # and its message size limit, @connections posts included
QUIET_SECONDS = 0.5  # how long "nobody else got it" listens after the acknowledgement
ROOM = "ROOM#lobby"  # the room's member items (docs/architecture.md)
# The chat function's settings, each written once: their defaults and ranges.
SETTINGS_FILE = Path(__file__).resolve().parent.parent / "lambda_src" / "chat" / "settings.json"
SETTINGS: dict[str, dict[str, Any]] = {
    entry["env"]: entry
    for entry in json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))["settings"]
}
MAX_MEMBER_PARTITIONS: int = SETTINGS["MEMBER_PARTITIONS"]["max"]
MESSAGE_BURST: int = SETTINGS["MESSAGE_BURST"]["default"]
MESSAGE_RATE = float(SETTINGS["MESSAGE_RATE_PER_SECOND"]["default"])
FOREIGN_ORIGIN = "https://conformance-check.invalid"
OUTPUT_KEYS = ("WebSocketUrl", "CallbackUrl", "TableName")
Frame = dict[str, Any]


class CheckFailed(Exception):  # noqa: N818 (a failed check, not a fault)
    """The check did not pass; the message says what was expected and what came."""


class Skipped(Exception):  # noqa: N818
    """The check cannot run with the options given; the message says what it needs."""


class UsageError(Exception):
    """The arguments do not describe a target."""


class TargetError(Exception):
    """The target cannot be reached at all (DNS, refused, TLS): no check can run."""


# --------------------------------------------------------------------------- options


@dataclass
class Options:
    url: str
    callback: str | None = None
    table: str | None = None
    dynamodb_endpoint: str | None = None
    region: str | None = None
    ca_bundle: Path | None = None
    origin: str | None = None
    foreign_origin: str = FOREIGN_ORIGIN
    tokens: list[str] = field(default_factory=list)
    token_source: str = "query"
    name_claim: str = "cognito:username"
    message_burst: int = MESSAGE_BURST
    message_rate: float = MESSAGE_RATE
    timeout: float = 10.0


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the server verifies it; we only read the name)."""
    try:
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error):
        raise UsageError("--token is not a JWT (header.payload.signature)") from None
    if not isinstance(claims, dict):
        raise UsageError("--token's payload is not a JSON object")
    return claims


def tampered(token: str) -> str:
    """The token with its signature changed: well-formed, but not signed by the issuer."""
    head, _, signature = token.rpartition(".")
    if not signature:
        return token + "x"
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{flipped}{signature[1:]}"


def region_of(url: str) -> str | None:
    """`eu-west-1` from `…execute-api.eu-west-1.amazonaws.com…`."""
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urlsplit(url).netloc)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- a client


class Client:
    """One WebSocket connection whose frames a reader thread records as they arrive."""

    def __init__(self, ws: ClientConnection, label: str) -> None:
        self.ws = ws
        self.label = label
        self.name: str | None = None
        self.rooms: set[str] = set()  # the rooms a v2 connection joined (the rooms checks)
        self.raw: list[str | bytes] = []
        self.frames: list[Frame] = []
        self.close_code: int | None = None
        self.closed = threading.Event()
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"conformance-{label}")
        self._thread.daemon = True
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                frame: Frame
                try:
                    parsed = json.loads(message)
                    frame = parsed if isinstance(parsed, dict) else {"_raw": message}
                except ValueError:
                    frame = {"_raw": message}
                with self._lock:
                    self.raw.append(message)
                    self.frames.append(frame)
                    self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code  # the close frame's code; 1006 without one
            self.close_code = code if code is not None else 1006
            self.closed.set()
            with self._lock:
                self._lock.notify_all()

    def send(self, frame: Frame) -> None:
        try:
            self.ws.send(json.dumps(frame))
        except ConnectionClosed as error:
            raise CheckFailed(f"{self.label}: connection closed ({error})") from None

    def mark(self) -> int:
        with self._lock:
            return len(self.frames)

    def since(self, mark: int) -> list[Frame]:
        with self._lock:
            return list(self.frames[mark:])

    def wait(
        self,
        what: str,
        match: Callable[[Frame], bool],
        *,
        since: int = 0,
        timeout: float,
        error_id: str | None = None,
    ) -> tuple[int, Frame]:
        """The index and the first frame after `since` that matches; fails on the deadline,
        on the connection closing, and on an error frame about `error_id`."""
        deadline = time.monotonic() + timeout
        index = since
        with self._lock:
            while True:
                while index < len(self.frames):
                    frame = self.frames[index]
                    error = frame.get("error")
                    if isinstance(error, dict) and error_id and error.get("id") == error_id:
                        raise CheckFailed(
                            f"{self.label} got {error.get('code')} "
                            f"({error.get('message')}) instead of {what}"
                        )
                    if match(frame):
                        return index, frame
                    index += 1
                if self.closed.is_set():
                    raise CheckFailed(
                        f"{self.label}'s connection closed ({self.close_code}) "
                        f"while waiting for {what}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CheckFailed(f"{self.label}: {what} did not come within {timeout:g} s")
                self._lock.wait(remaining)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._thread.join(5)


def member_list(frames: Sequence[Frame], name: str) -> tuple[int, list[str]] | None:
    """Where the first member list with `name` ends and its names: one `members` frame,
    or a complete set of `memberList` parts (a room above memberListThreshold)."""
    parts: dict[int, list[str]] = {}
    for index, frame in enumerate(frames):
        if isinstance(frame.get("members"), list) and name in frame["members"]:
            return index, list(frame["members"])
        if isinstance(frame.get("memberList"), list) and isinstance(frame.get("parts"), int):
            parts[int(frame.get("part", len(parts) + 1))] = frame["memberList"]
            if len(parts) >= frame["parts"]:
                names = [n for _, part in sorted(parts.items()) for n in part]
                if name in names:
                    return index, names
                parts.clear()
    return None


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    run: Callable[[Suite], str]
    needs: str = ""  # "token", "callback", "callback+table", "" (any target)
    members: int = 0  # named members it uses (sign-in: one token each)


CHECKS: list[Check] = []


def check(
    name: str, what: str, *, needs: str = "", members: int = 0
) -> Callable[[Callable[[Suite], str]], Callable[[Suite], str]]:
    def register(run: Callable[[Suite], str]) -> Callable[[Suite], str]:
        CHECKS.append(Check(name, what, run, needs, members))
        return run

    return register


@dataclass
class Result:
    name: str
    status: str  # pass, fail, skip
    detail: str
    seconds: float


@dataclass
class Suite:
    """One run: the options, the connections it opened, and the results."""

    options: Options
    out: TextIO | None = None
    clients: list[Client] = field(default_factory=list)
    members: list[Client] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    gone_id: str | None = None
    join_failed: str | None = None
    # The rooms checks: the connection (and its protocol) speaking for each member name,
    # each name's clientKey, and the public room the run made.
    speakers: dict[int, tuple[Client, int]] = field(default_factory=dict)
    client_keys: dict[int, str] = field(default_factory=dict)
    public_room: str | None = None
    _ssl: ssl.SSLContext | None = None
    _management: Any = None

    # ---- connections

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # the system's CAs
            if self.options.ca_bundle:  # and the private CA
                self._ssl.load_verify_locations(cafile=str(self.options.ca_bundle))
        return self._ssl

    def open(
        self,
        label: str,
        *,
        token: str | None = "",
        origin: str | None = "",
        offer: Sequence[str] = (),
    ) -> ClientConnection:
        """A WebSocket to the stage. `token=""`: the first `--token` (if any); `None`: no
        token. `origin=""`: `--origin` (if any); `None`: no Origin header. `offer`: the
        subprotocols to offer (with `--token-source protocol`, `chat` and the token)."""
        url = self.options.url
        token = (self.options.tokens[0] if self.options.tokens else None) if token == "" else token
        origin = self.options.origin if origin == "" else origin
        offered = list(offer)
        if token is not None and self.options.token_source == "protocol":
            offered = [*dict.fromkeys([*offered, "chat"]), token]
        elif token is not None:
            url += ("&" if "?" in url else "?") + urlencode({"token": token})
        subprotocols = [Subprotocol(p) for p in offered] or None
        secure = urlsplit(url).scheme == "wss"
        host = urlsplit(url).hostname or ""
        try:
            ws = connect(
                url,
                ssl=self.ssl_context if secure else None,
                origin=Origin(origin) if origin else None,
                subprotocols=subprotocols,
                compression=None,  # frames go out as they are: the size checks need that
                open_timeout=self.options.timeout,
                ping_interval=None,
                close_timeout=5,
                max_size=None,
                # Loopback (the sandbox) never goes through a proxy; AWS honours HTTPS_PROXY.
                proxy=None if host in LOOPBACK else True,
                user_agent_header=USER_AGENT,
                legacy=True,  # the connection itself (closed by Client.close or the caller)
            )
        except InvalidStatus:
            raise
        except ssl.SSLCertVerificationError as error:
            raise TargetError(tls_hint(self.options.url, error)) from None
        except (OSError, TimeoutError) as error:
            raise TargetError(f"cannot reach {host}: {error or type(error).__name__}") from None
        except InvalidHandshake as error:
            raise CheckFailed(f"{label}: the handshake failed: {error}") from None
        return ws

    def client(self, label: str, **kwargs: Any) -> Client:
        try:
            ws = self.open(label, **kwargs)
        except InvalidStatus as error:
            status = error.response.status_code
            hints = {401: " (sign-in on? pass --token)", 403: " (Origin refused? see --origin)"}
            raise CheckFailed(
                f"{label}: handshake refused with HTTP {status}{hints.get(status, '')}"
            ) from None
        client = Client(ws, label)
        self.clients.append(client)
        return client

    def status_of(self, **kwargs: Any) -> int:
        """The handshake's HTTP status (101 when it succeeded; the socket is closed)."""
        return self.handshake(**kwargs)[0]

    def handshake(self, **kwargs: Any) -> tuple[int, str | None]:
        """The handshake's HTTP status and its Sec-WebSocket-Protocol (the socket is closed)."""
        try:
            ws = self.open("handshake", **kwargs)
        except InvalidStatus as error:
            return int(error.response.status_code), None
        try:
            assert ws.response is not None
            return int(ws.response.status_code), ws.response.headers.get("Sec-WebSocket-Protocol")
        finally:
            ws.close()

    def member_name(self, index: int) -> str:
        if self.options.tokens:
            return str(jwt_claims(self.options.tokens[index])[self.options.name_claim])
        return f"cf-{self.run_id}-{'abcdefgh'[index]}"

    def join(self, index: int) -> tuple[Client, int, Frame]:
        """Member `index` connects and sends setName with an id; returns it, the index of
        its first frame and the acknowledgement."""
        try:
            return self._join(index)
        except CheckFailed as error:
            self.join_failed = str(error)
            raise

    def _join(self, index: int) -> tuple[Client, int, Frame]:
        name = self.member_name(index)
        token = self.options.tokens[index] if self.options.tokens else None
        member = self.client(f"member {name}", token=token)
        frame_id = f"cf-join-{self.run_id}-{index}"
        member.send({"action": "setName", "name": name, "id": frame_id})
        _, ack = member.wait(
            f"the setName acknowledgement (id {frame_id})",
            lambda f: f.get("ack") == "setName" and f.get("id") == frame_id,
            timeout=self.options.timeout,
            error_id=frame_id,
        )
        member.name = name
        self.members.append(member)
        return member, 0, ack

    def room(self, count: int) -> list[Client]:
        """The first `count` members, joined (in order) if they are not yet. A join that
        failed once fails every later check that needs it at once, with the same reason."""
        while len(self.members) < count:
            if self.join_failed:
                raise CheckFailed(f"(joining failed earlier) {self.join_failed}")
            self.join(len(self.members))
        for member in self.members[:count]:
            if member.closed.is_set():
                raise CheckFailed(f"{member.label}'s connection closed ({member.close_code})")
        return self.members[:count]

    def quiet(self) -> None:
        time.sleep(QUIET_SECONDS)

    def speaker(self, index: int, *, protocol: int = 2, fresh: bool = False) -> Client:
        """Member `index`'s name on a connection of `protocol` (2 with the member's
        clientKey, the same on every connection: one identity), joined under the same name
        as the chat checks' member (with sign-in, the token's): whatever connection held the
        name is closed first. `fresh`: a new connection even if one speaks already."""
        held = self.speakers.get(index)
        if held and not fresh and held[1] == protocol and not held[0].closed.is_set():
            return held[0]
        name = self.member_name(index)
        for old in [held[0] if held else None, *self.members]:
            if old is not None and old.name == name and not old.closed.is_set():
                old.close()
        token = self.options.tokens[index] if self.options.tokens else None
        label = f"v{protocol} member {name}"
        client = self.client(label, token=token)
        frame: Frame = {"action": "setName", "name": name}
        if protocol == 2:
            key = self.client_keys.setdefault(index, f"cf-{self.run_id}-{uuid.uuid4().hex}")
            frame |= {"protocol": 2, "clientKey": key}
        deadline = time.monotonic() + self.options.timeout
        while True:  # the closed connection's name may not be free yet
            frame_id = new_id(self, "name")
            mark = client.mark()
            client.send({**frame, "id": frame_id})
            _, answer = client.wait(
                f"the setName acknowledgement (id {frame_id})",
                partial(_is_answer, frame_id),
                since=mark,
                timeout=self.options.timeout,
            )
            error = answer.get("error")
            if not isinstance(error, dict):
                break
            if error.get("code") != "NAME_TAKEN" or time.monotonic() > deadline:
                raise CheckFailed(f"{label}: setName answered {error}")
            time.sleep(0.5)
        if protocol == 2 and answer.get("protocol") != 2:
            raise CheckFailed(f"{label}: the setName ack does not agree protocol 2: {answer}")
        client.name = name
        self.speakers[index] = (client, protocol)
        return client

    # ---- @connections

    def management(self) -> Any:
        if self._management is None:
            from botocore.config import Config  # noqa: PLC0415 (only @connections needs it)

            verify: bool | str = str(self.options.ca_bundle) if self.options.ca_bundle else True
            self._management = self.session().client(
                "apigatewaymanagementapi",
                endpoint_url=self.options.callback,
                region_name=self.region(),
                verify=verify,
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": 2},
                    connect_timeout=self.options.timeout,
                    read_timeout=self.options.timeout,
                ),
            )
        return self._management

    def session(self) -> Any:
        """The default credential chain; for a local sandbox (a loopback callback) without
        credentials, fixed stand-in keys, since the sandbox accepts any signature."""
        import boto3  # noqa: PLC0415 (only the @connections checks need AWS)

        session = boto3.session.Session()
        host = urlsplit(self.options.callback or "").hostname or ""
        if session.get_credentials() is None and host in LOOPBACK:
            return boto3.session.Session(
                aws_access_key_id="local-sandbox", aws_secret_access_key="local-sandbox"
            )
        return session

    def region(self) -> str:
        if self.options.region:
            return self.options.region
        found = region_of(self.options.url) or region_of(self.options.callback or "")
        if found:
            return found
        import boto3  # noqa: PLC0415

        return boto3.session.Session().region_name or "us-east-1"

    def connection_id(self, member: Client) -> str:
        """The member's connection id, from its item in the chat's table (the room's member
        items, one strongly consistent Query per partition until found)."""
        db = self.session().client(
            "dynamodb",
            region_name=self.region(),
            endpoint_url=self.options.dynamodb_endpoint,
            verify=str(self.options.ca_bundle) if self.options.ca_bundle else True,
        )
        for partition in range(MAX_MEMBER_PARTITIONS):
            key = ROOM if partition == 0 else f"{ROOM}#{partition}"
            pages = db.get_paginator("query").paginate(
                TableName=self.options.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :member)",
                FilterExpression="#name = :name",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues={
                    ":pk": {"S": key},
                    ":member": {"S": "MEMBER#"},
                    ":name": {"S": member.name or ""},
                },
                ConsistentRead=True,
            )
            for page in pages:
                for item in page["Items"]:
                    return str(item["connectionId"]["S"])
        raise CheckFailed(f"no member item for {member.name!r} in table {self.options.table}")

    def aws_call(self, what: str, call: Callable[[], Any], *, expected: bool = False) -> Any:
        """Run a boto3 call; turn transport and permission errors into a clear failure."""
        from botocore.exceptions import (  # noqa: PLC0415
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            SSLError,
        )

        try:
            return call()
        except SSLError as error:
            raise CheckFailed(f"{what}: {tls_hint(self.options.callback or '', error)}") from None
        except EndpointConnectionError as error:
            raise CheckFailed(f"{what}: cannot reach the endpoint: {error}") from None
        except NoCredentialsError:
            raise CheckFailed(f"{what}: no AWS credentials in the default chain") from None
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if expected and status in (400, 410, 413):
                raise  # the answer the check is about
            raise CheckFailed(f"{what}: {error}") from None
        except BotoCoreError as error:
            raise CheckFailed(f"{what}: {error}") from None

    def gone_status(self, what: str, call: Callable[[], Any]) -> int:
        """The HTTP status of a call expected to fail with 410 (200 when it succeeded)."""
        return self.error_status(what, call)[0]

    def error_status(self, what: str, call: Callable[[], Any]) -> tuple[int, str]:
        """(HTTP status, error code) of a call expected to fail; (200, "") if it succeeded."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.aws_call(what, call, expected=True)
        except ClientError as error:
            status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
            return status, str(error.response.get("Error", {}).get("Code", ""))
        return 200, ""

    # ---- running

    def selected_needs(self, item: Check) -> str | None:
        """Why `item` cannot run with these options, or None."""
        if item.needs == "token" and not self.options.tokens:
            return "needs --token (sign-in on)"
        if item.needs == "callback" and not self.options.callback:
            return "needs --callback (the @connections API)"
        if item.needs == "callback+table" and not (self.options.callback and self.options.table):
            return "needs --callback and --table (the @connections API and the chat's table)"
        if self.options.tokens and item.members > len(self.options.tokens):
            return (
                f"needs {item.members} members: with sign-in, give {item.members} --token "
                f"(one name each; got {len(self.options.tokens)})"
            )
        return None

    def run(self, checks: Sequence[Check]) -> list[Result]:
        results: list[Result] = []
        for item in checks:
            started = time.monotonic()
            try:
                why = self.selected_needs(item)
                if why:
                    raise Skipped(why)
                detail, status = item.run(self), "pass"
            except Skipped as skip:
                detail, status = str(skip), "skip"
            except CheckFailed as error:
                detail, status = str(error), "fail"
            except TargetError as error:
                detail, status = str(error), "fail"
            except Exception as error:  # a bug in the check or an unexpected answer
                detail, status = f"{type(error).__name__}: {error}", "fail"
            result = Result(item.name, status, detail, time.monotonic() - started)
            results.append(result)
            self.say(format_result(result))
        return results

    def cleanup(self) -> None:
        for client in self.clients:
            try:
                client.close()
            except Exception as error:  # close everything we can
                self.say(f"  (closing {client.label}: {error})")

    def say(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)


def tls_hint(url: str, error: object) -> str:
    return (
        f"TLS: the certificate of {urlsplit(url).netloc} cannot be verified ({error}); "
        "if the target uses a private CA (the local sandbox's HTTPS does), "
        "pass --ca-bundle PEM"
    )


def format_result(result: Result) -> str:
    label = {"pass": "pass", "fail": "FAIL", "skip": "skip"}[result.status]
    return f"  {label}  {result.name}: {result.detail} ({result.seconds * 1000:.0f} ms)"


def _is_answer(frame_id: str, frame: Frame) -> bool:
    """The frame carries `frame_id` back, or is the error about it."""
    error = frame.get("error")
    return frame.get("id") == frame_id or (isinstance(error, dict) and error.get("id") == frame_id)


def new_id(suite: Suite, kind: str) -> str:
    return f"cf-{kind}-{suite.run_id}-{uuid.uuid4().hex[:6]}"


# ---- handshakes


@check("handshake.connect-101", "a normal connection is accepted: HTTP 101")
def _connect_101(suite: Suite) -> str:
    status = suite.status_of()
    if status != 101:
        raise CheckFailed(f"expected HTTP 101, got {status}")
    return "101"


@check(
    "handshake.plain-get-426",
    "a plain HTTP GET on the stage URL (no Upgrade) gets 426 (conformance item 34)",
)
def _plain_get_426(suite: Suite) -> str:
    parts = urlsplit(suite.options.url)
    scheme = {"ws": "http", "wss": "https"}[parts.scheme]
    url = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=suite.ssl_context)
    ]
    if parts.hostname in LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with opener.open(request, timeout=suite.options.timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except urllib.error.URLError as error:
        raise CheckFailed(f"GET {url}: {error.reason}") from None
    if status != 426:
        raise CheckFailed(f"expected HTTP 426 Upgrade Required, got {status}")
    return "426"


@check(
    "handshake.foreign-origin-403",
    "an Origin the stack does not allow is refused with HTTP 403 (allowedOrigins)",
)
def _foreign_origin_403(suite: Suite) -> str:
    status = suite.status_of(origin=suite.options.foreign_origin)
    if status != 403:
        raise CheckFailed(f"Origin {suite.options.foreign_origin}: expected HTTP 403, got {status}")
    return f"Origin {suite.options.foreign_origin}: 403"


@check(
    "handshake.subprotocol-chosen",
    "offered `chat`, the stage answers with the subprotocol its $connect chose: `chat`",
)
def _subprotocol_chosen(suite: Suite) -> str:
    status, chosen = suite.handshake(offer=["chat"])
    if (status, chosen) != (101, "chat"):
        raise CheckFailed(f"expected 101 with Sec-WebSocket-Protocol: chat, got {status}, {chosen}")
    return "101, Sec-WebSocket-Protocol: chat"


@check(
    "handshake.no-automatic-subprotocol",
    "offered only an unknown subprotocol, the 101 carries none (API Gateway echoes nothing)",
)
def _no_automatic_subprotocol(suite: Suite) -> str:
    if suite.options.tokens and suite.options.token_source == "protocol":
        raise Skipped("needs --token-source query (the token travels as a subprotocol)")
    status, chosen = suite.handshake(offer=["x-conformance"])
    if (status, chosen) != (101, None):
        raise CheckFailed(f"expected 101 without Sec-WebSocket-Protocol, got {status}, {chosen}")
    return "101, no Sec-WebSocket-Protocol"


@check("sign-in.no-token-401", "with sign-in on, no token: HTTP 401", needs="token")
def _no_token_401(suite: Suite) -> str:
    status = suite.status_of(token=None)
    if status != 401:
        raise CheckFailed(f"expected HTTP 401, got {status}")
    return "401"


@check("sign-in.bad-token-403", "with sign-in on, a token with a bad signature: 403", needs="token")
def _bad_token_403(suite: Suite) -> str:
    status = suite.status_of(token=tampered(suite.options.tokens[0]))
    if status != 403:
        raise CheckFailed(f"expected HTTP 403, got {status}")
    return "403"


@check("sign-in.good-token-101", "with sign-in on, a valid token: HTTP 101", needs="token")
def _good_token_101(suite: Suite) -> str:
    status, chosen = suite.handshake(token=suite.options.tokens[0])
    if status != 101:
        raise CheckFailed(f"expected HTTP 101, got {status}")
    if suite.options.token_source == "protocol" and chosen != "chat":
        # A browser drops a handshake that offered subprotocols and got none back.
        raise CheckFailed(f"101 with Sec-WebSocket-Protocol {chosen!r}, expected 'chat'")
    return f"101 (token in the {suite.options.token_source})"


# ---- close codes


def _closed_with(suite: Suite, label: str, payload: str | bytes) -> int:
    client = suite.client(label)
    with contextlib.suppress(ConnectionClosed):
        client.ws.send(payload)
    if not client.closed.wait(suite.options.timeout):
        raise CheckFailed(f"the connection is still open {suite.options.timeout:g} s later")
    assert client.close_code is not None
    return client.close_code


@check("close.binary-frame-1003", "a binary frame closes the connection with 1003")
def _binary_1003(suite: Suite) -> str:
    code = _closed_with(suite, "binary", b"\x00\x01\x02")
    if code != 1003:
        raise CheckFailed(f"expected close code 1003, got {code}")
    return "1003"


@check("close.oversized-frame-1009", "a text frame over 32 KB closes the connection with 1009")
def _oversized_1009(suite: Suite) -> str:
    code = _closed_with(suite, "oversized", "x" * (FRAME_LIMIT + 1))
    if code != 1009:
        raise CheckFailed(f"expected close code 1009, got {code}")
    return f"{FRAME_LIMIT + 1}-byte frame: 1009"


# ---- the chat protocol


@check("chat.ping-ack", "a ping with an id is acknowledged with that id")
def _ping_ack(suite: Suite) -> str:
    client = suite.client("pinger")
    frame_id = new_id(suite, "ping")
    client.send({"action": "ping", "id": frame_id})
    _, ack = client.wait(
        "the ping's ack",
        lambda f: f.get("ack") == "ping",
        timeout=suite.options.timeout,
        error_id=frame_id,
    )
    if ack != {"ack": "ping", "id": frame_id}:
        raise CheckFailed(f"expected {{'ack': 'ping', 'id': {frame_id!r}}}, got {ack}")
    return "ack with the id"


@check(
    "chat.set-name-ack",
    "setName with an id: the member list with the name, then the join notice, then the ack",
    members=1,
)
def _set_name_ack(suite: Suite) -> str:
    if suite.members:
        raise CheckFailed("internal: the first member already joined")
    member, since, ack = suite.join(0)
    name = member.name or ""
    frames = member.since(since)
    if ack.get("name") != name:
        raise CheckFailed(f"the ack names {ack.get('name')!r}, expected {name!r}")
    listed = member_list(frames, name)
    if listed is None:
        raise CheckFailed(f"no member list with {name!r} before the ack")
    notice = next(
        (i for i, f in enumerate(frames) if f.get("event") == "join" and f.get("name") == name),
        None,
    )
    if notice is None:
        raise CheckFailed(f"no join notice for {name!r} before the ack")
    expected_notice = f"{name} has joined the chat"
    if frames[notice].get("systemMessage") != expected_notice:
        raise CheckFailed(f"join notice {frames[notice]}, expected {expected_notice!r}")
    ack_index = frames.index(ack)
    if not listed[0] < notice < ack_index:
        raise CheckFailed(
            f"order: member list at {listed[0]}, join notice at {notice}, ack at {ack_index}"
        )
    return f"{len(listed[1])} member(s), list < notice < ack"


@check(
    "chat.join-notice-and-members",
    "a second member's join reaches the first: the member list with both, then the notice",
    members=2,
)
def _join_notice(suite: Suite) -> str:
    (first,) = suite.room(1)
    mark = first.mark()
    second, _, _ = suite.join(1)
    name = second.name or ""
    index, notice = first.wait(
        f"the join notice of {name!r}",
        lambda f: f.get("event") == "join" and f.get("name") == name,
        since=mark,
        timeout=suite.options.timeout,
    )
    if notice.get("systemMessage") != f"{name} has joined the chat":
        raise CheckFailed(f"unexpected join notice {notice}")
    frames = first.since(mark)
    before = frames[: index - mark]
    lists = [f for f in before if isinstance(f.get("members"), list) and name in f["members"]]
    big_room = any("memberList" in f for f in second.frames)
    if not lists and not big_room:
        raise CheckFailed(f"{first.name!r} got no member list with {name!r} before the notice")
    if lists and first.name not in lists[-1]["members"]:
        raise CheckFailed(f"the member list {lists[-1]['members']} lacks {first.name!r}")
    joiner = member_list(second.frames, name)
    if joiner is None or first.name not in joiner[1]:
        raise CheckFailed(f"the joiner's member list lacks {first.name!r}")
    return "member list, then notice" if lists else "notice (big room: no full list)"


def _send_public(suite: Suite, sender: Client, text: str, frame_id: str) -> Frame:
    """Send a public message with an id; its acknowledgement is the sender's own copy."""
    mark = sender.mark()
    sender.send({"action": "sendPublic", "message": text, "id": frame_id})
    _, copy = sender.wait(
        f"the own copy of {frame_id}",
        lambda f: "publicMessage" in f and f.get("id") == frame_id,
        since=mark,
        timeout=suite.options.timeout,
        error_id=frame_id,
    )
    return copy


@check(
    "chat.public-order",
    "one sender's messages (each sent after the previous ack) arrive in order, "
    "seq increasing and each prev the seq before it",
    members=2,
)
def _public_order(suite: Suite) -> str:
    sender, receiver = suite.room(2)
    mark = receiver.mark()
    count = 5
    copies = [
        _send_public(suite, sender, f"order {n} {suite.run_id}", new_id(suite, f"o{n}"))
        for n in range(count)
    ]
    ids = [c.get("messageId") for c in copies]
    receiver.wait(
        "the last message of the burst",
        lambda f: f.get("messageId") == ids[-1],
        since=mark,
        timeout=suite.options.timeout,
    )
    public = [f for f in receiver.since(mark) if "publicMessage" in f]
    ours = [f for f in public if f.get("messageId") in ids]
    if [f.get("messageId") for f in ours] != ids:
        raise CheckFailed(f"arrival order {[f.get('text') for f in ours]}, expected send order")
    for own, theirs in zip(copies, ours, strict=True):
        expected = f"{sender.name}: {own.get('text')}"
        if theirs.get("publicMessage") != expected or theirs.get("from") != sender.name:
            raise CheckFailed(f"received {theirs}, expected publicMessage {expected!r}")
        if theirs.get("seq") != own.get("seq"):
            raise CheckFailed(f"seq {theirs.get('seq')} differs from the sender's {own.get('seq')}")
        if "id" in theirs:
            raise CheckFailed(f"the receiver's copy carries the sender's id: {theirs}")
    seqs = [f.get("seq") for f in ours]
    if not all(isinstance(s, int) for s in seqs) or seqs != sorted(set(seqs)):  # type: ignore[type-var]
        raise CheckFailed(f"seq not strictly increasing: {seqs}")
    gap = _prev_gap(public)
    if gap:  # someone else's message may still be on its way: listen a little longer
        suite.quiet()
        gap = _prev_gap([f for f in receiver.since(mark) if "publicMessage" in f])
    if gap:
        raise CheckFailed(gap)
    return f"{count} messages, seq {seqs[0]}..{seqs[-1]}, prev chain without gaps"


def _prev_gap(public: Sequence[Frame]) -> str | None:
    """What is wrong with the public messages' `prev` chain (sorted by seq), if anything."""
    chain = sorted(public, key=lambda f: int(f.get("seq", 0)))
    for before, after in itertools.pairwise(chain):
        if after.get("prev") != before.get("seq"):
            return (
                f"a gap: the message with seq {after.get('seq')} has prev {after.get('prev')}, "
                f"but the public message before it has seq {before.get('seq')}"
            )
    return None


@check(
    "chat.private-one-recipient",
    "a private message reaches its recipient only; the sender gets an ack with its id",
    members=3,
)
def _private(suite: Suite) -> str:
    bystander, sender, recipient = suite.room(3)
    marks = [m.mark() for m in (bystander, sender, recipient)]
    frame_id = new_id(suite, "p")
    text = f"private {suite.run_id}"
    sender.send({"action": "sendPrivate", "to": recipient.name, "message": text, "id": frame_id})
    _, ack = sender.wait(
        "the sendPrivate ack",
        lambda f: f.get("ack") == "sendPrivate" and f.get("id") == frame_id,
        since=marks[1],
        timeout=suite.options.timeout,
        error_id=frame_id,
    )
    _, got = recipient.wait(
        "the private message",
        lambda f: "privateMessage" in f and f.get("text") == text,
        since=marks[2],
        timeout=suite.options.timeout,
    )
    expected = {
        "privateMessage": f"{sender.name}: {text}",
        "from": sender.name,
        "to": recipient.name,
        "text": text,
    }
    if {k: got.get(k) for k in expected} != expected:
        raise CheckFailed(f"the recipient got {got}, expected {expected}")
    if ack.get("to") != recipient.name or ack.get("messageId") != got.get("messageId"):
        raise CheckFailed(f"the ack {ack} does not match the delivered {got}")
    if ack.get("seq") != got.get("seq"):
        raise CheckFailed(f"the ack's seq {ack.get('seq')} differs from {got.get('seq')}")
    suite.quiet()
    for member, mark in ((bystander, marks[0]), (sender, marks[1])):
        leaked = [f for f in member.since(mark) if "privateMessage" in f or text in json.dumps(f)]
        if leaked:
            raise CheckFailed(f"{member.name!r} got the private message too: {leaked[0]}")
    copies = [f for f in recipient.since(marks[2]) if f.get("messageId") == got.get("messageId")]
    if len(copies) != 1:
        raise CheckFailed(f"the recipient got it {len(copies)} times")
    return f"delivered once to {recipient.name}, ack seq {ack.get('seq')}, nobody else"


@check(
    "chat.history",
    "history since a seq returns the public messages sent after it, in order, final and complete",
    members=2,
)
def _history(suite: Suite) -> str:
    _, sender = suite.room(2)
    copies = [
        _send_public(suite, sender, f"history {n} {suite.run_id}", new_id(suite, f"h{n}"))
        for n in range(2)
    ]
    since = int(copies[0]["seq"]) - 1
    frame_id = new_id(suite, "hist")
    mark = sender.mark()
    sender.send({"action": "history", "since": since, "id": frame_id})
    index, last = sender.wait(
        "the final history frame",
        lambda f: "history" in f and f.get("final") is True and f.get("id") == frame_id,
        since=mark,
        timeout=suite.options.timeout,
        error_id=frame_id,
    )
    entries = [
        entry
        for f in sender.since(mark)[: index - mark + 1]
        if isinstance(f.get("history"), list)
        for entry in f["history"]
    ]
    seqs = [int(e.get("seq", -1)) for e in entries]
    if seqs != sorted(seqs) or any(s <= since for s in seqs):
        raise CheckFailed(f"history seqs {seqs}: expected increasing and all > {since}")
    wanted = [c["messageId"] for c in copies]
    got = [e.get("messageId") for e in entries if e.get("messageId") in wanted]
    if got != wanted:
        raise CheckFailed(f"history has {got} of our messages {wanted}")
    for entry in entries:
        if entry.get("messageId") in wanted:
            copy = copies[wanted.index(entry["messageId"])]
            if entry.get("text") != copy.get("text") or entry.get("from") != sender.name:
                raise CheckFailed(f"history entry {entry} differs from what was sent {copy}")
    if last.get("complete") is not True:
        raise CheckFailed(f"the final history frame says complete={last.get('complete')!r}")
    return f"{len(entries)} message(s) after seq {since}, ours in order"


@check(
    "chat.dedup-by-id",
    "a resent id gets its ack again (same seq and messageId); nobody gets the message twice",
    members=3,
)
def _dedup(suite: Suite) -> str:
    first, second, sender = suite.room(3)
    marks = [m.mark() for m in (first, second)]
    frame_id = new_id(suite, "d")
    text = f"dedup {suite.run_id}"
    original = _send_public(suite, sender, text, frame_id)
    again = _send_public(suite, sender, text, frame_id)
    for key in ("seq", "messageId"):
        if again.get(key) != original.get(key):
            raise CheckFailed(
                f"the resend's ack has {key} {again.get(key)}, the first send's "
                f"{original.get(key)}: a resent id must get the same acknowledgement"
            )
    suite.quiet()
    message_id = original.get("messageId")
    for member, mark in zip((first, second), marks, strict=True):
        got = [f for f in member.since(mark) if f.get("messageId") == message_id]
        if len(got) != 1:
            raise CheckFailed(f"{member.name!r} got the message {len(got)} times, expected once")
    return f"resend acked with seq {original.get('seq')}, delivered once"


def _answers(suite: Suite, client: Client, ids: Sequence[str]) -> list[Frame]:
    """The answer to each frame id, in the order of `ids`: an ack or an error naming it."""
    answers = []
    for frame_id in ids:

        def about(frame: Frame, frame_id: str = frame_id) -> bool:
            error = frame.get("error")
            return frame.get("id") == frame_id or (
                isinstance(error, dict) and error.get("id") == frame_id
            )

        answers.append(
            client.wait(f"an answer to {frame_id}", about, timeout=suite.options.timeout)[1]
        )
    return answers


@check(
    "chat.rate-limit",
    "a burst's worth of frames is accepted; a burst above the limit gets RATE_LIMITED with "
    "retryAfterMs; after that wait a frame is accepted again",
)
def _rate_limit(suite: Suite) -> str:
    burst, rate = suite.options.message_burst, suite.options.message_rate
    client = suite.client("flooder")
    started = time.monotonic()
    # 1. `burst` pings one at a time: a fresh connection's bucket holds them all.
    for n in range(burst):
        frame_id = new_id(suite, f"r{n}")
        client.send({"action": "ping", "id": frame_id})
        (answer,) = _answers(suite, client, [frame_id])
        if answer.get("ack") != "ping":
            raise CheckFailed(
                f"ping {n + 1} of the first {burst} (--message-burst), sent one at a time, "
                f"was answered {answer}"
            )
    # 2. More at once than the bucket can have refilled meanwhile: some must be refused.
    extra = max(5, burst // 2) + math.ceil(rate * (time.monotonic() - started)) + 1
    ids = [new_id(suite, f"r{burst + n}") for n in range(extra)]
    for frame_id in ids:
        client.send({"action": "ping", "id": frame_id})
    answers = _answers(suite, client, ids)
    elapsed = time.monotonic() - started
    acked = sum(f.get("ack") == "ping" for f in answers)
    refused = [f["error"] for f in answers if isinstance(f.get("error"), dict)]
    if acked + len(refused) != extra:
        raise CheckFailed(f"unexpected answers: {answers}")
    accepted = burst + acked
    if not refused:
        raise CheckFailed(f"all {burst + extra} frames accepted: no RATE_LIMITED")
    codes = {e.get("code") for e in refused}
    if codes != {"RATE_LIMITED"}:
        raise CheckFailed(f"refusals with codes {sorted(map(str, codes))}, expected RATE_LIMITED")
    waits = [e.get("retryAfterMs") for e in refused]
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in waits):
        raise CheckFailed(f"retryAfterMs must be a positive integer: {waits}")
    ceiling = burst + math.ceil(rate * elapsed) + 1
    if accepted > ceiling:
        raise CheckFailed(
            f"{accepted} of {burst + extra} accepted, more than --message-burst {burst} "
            f"plus --message-rate {rate:g}/s over {elapsed:.1f} s"
        )
    # 3. The server said how long to wait: after that, a frame is accepted again. Frames of
    # one connection can be handled side by side, so a frame answered after a refusal may
    # have taken the token that refusal promised; a client that keeps following
    # retryAfterMs must still get through, within three waits.
    wait_ms = max(int(w) for w in waits)
    for attempt in range(1, 4):
        if wait_ms > suite.options.timeout * 1000:
            raise CheckFailed(f"retryAfterMs {wait_ms} is longer than --timeout")
        time.sleep(wait_ms / 1000 + 0.05)
        probe = new_id(suite, f"r-after-{attempt}")
        client.send({"action": "ping", "id": probe})
        (answer,) = _answers(suite, client, [probe])
        error = answer.get("error")
        if answer.get("ack") == "ping":
            break
        if not isinstance(error, dict) or error.get("code") != "RATE_LIMITED":
            raise CheckFailed(f"after waiting retryAfterMs, a ping was answered {answer}")
        retry = error.get("retryAfterMs")
        if not isinstance(retry, int) or isinstance(retry, bool) or retry <= 0:
            raise CheckFailed(f"retryAfterMs must be a positive integer: {retry!r}")
        wait_ms = retry
    else:
        raise CheckFailed("a ping sent after each of three retryAfterMs waits was still refused")
    return (
        f"{burst} one at a time accepted; of {extra} at once {acked} accepted, "
        f"{len(refused)} RATE_LIMITED; accepted again after waiting retryAfterMs "
        f"({attempt} wait{'s' if attempt > 1 else ''})"
    )


# ---- @connections


@check(
    "connections.get-200",
    "GetConnection on a live connection: 200 with connectedAt, lastActiveAt and identity",
    needs="callback+table",
    members=1,
)
def _get_200(suite: Suite) -> str:
    (member,) = suite.room(1)
    connection_id = suite.connection_id(member)
    answer = suite.aws_call(
        "GetConnection", lambda: suite.management().get_connection(ConnectionId=connection_id)
    )
    status = answer["ResponseMetadata"]["HTTPStatusCode"]
    if status != 200:
        raise CheckFailed(f"expected 200, got {status}")
    connected, active = answer.get("ConnectedAt"), answer.get("LastActiveAt")
    if not isinstance(connected, datetime) or not isinstance(active, datetime):
        raise CheckFailed(f"ConnectedAt/LastActiveAt missing or not times: {answer}")
    now = datetime.now(UTC)
    skew = timedelta(minutes=5)
    if not connected <= active + timedelta(seconds=1) or active > now + skew:
        raise CheckFailed(f"times out of order: connectedAt {connected}, lastActiveAt {active}")
    identity = answer.get("Identity") or {}
    if not identity.get("SourceIp"):
        raise CheckFailed(f"no Identity.SourceIp: {answer}")
    agent = identity.get("UserAgent")
    return f"connectedAt {connected:%H:%M:%S}, sourceIp {identity['SourceIp']}, userAgent {agent}"


@check(
    "connections.post-200",
    "PostToConnection to a live connection: 200 and the client receives the data",
    needs="callback+table",
    members=1,
)
def _post_200(suite: Suite) -> str:
    (member,) = suite.room(1)
    connection_id = suite.connection_id(member)
    data = json.dumps({"conformance": new_id(suite, "post")})
    mark = member.mark()
    answer = suite.aws_call(
        "PostToConnection",
        lambda: suite.management().post_to_connection(
            ConnectionId=connection_id, Data=data.encode()
        ),
    )
    status = answer["ResponseMetadata"]["HTTPStatusCode"]
    if status != 200:
        raise CheckFailed(f"expected 200, got {status}")
    member.wait(
        "the posted data",
        lambda f: f == json.loads(data),
        since=mark,
        timeout=suite.options.timeout,
    )
    if data not in member.raw:
        raise CheckFailed("the data arrived changed")
    return f"200, {len(data)} bytes arrived unchanged"


@check(
    "connections.post-128kb",
    "a post of exactly 128 KB arrives whole; one byte more is 413 PayloadTooLargeException",
    needs="callback+table",
    members=1,
)
def _post_128kb(suite: Suite) -> str:
    (member,) = suite.room(1)
    connection_id = suite.connection_id(member)
    management = suite.management()
    data = "x" * POST_LIMIT
    mark = member.mark()
    suite.aws_call(
        "PostToConnection",
        lambda: management.post_to_connection(ConnectionId=connection_id, Data=data.encode()),
    )
    member.wait(
        f"the {POST_LIMIT}-byte post",
        lambda f: f.get("_raw") == data,
        since=mark,
        timeout=suite.options.timeout,
    )
    status = suite.error_status(
        "PostToConnection",
        lambda: management.post_to_connection(
            ConnectionId=connection_id, Data=b"x" * (POST_LIMIT + 1)
        ),
    )
    if status != (413, "PayloadTooLargeException"):
        raise CheckFailed(
            f"{POST_LIMIT + 1} bytes: expected 413 PayloadTooLargeException, got {status}"
        )
    return f"{POST_LIMIT} bytes arrived as one message; {POST_LIMIT + 1}: 413"


@check(
    "connections.unknown-and-malformed-ids",
    "GetConnection on a well-formed id that never existed: 410; on a malformed id: 400",
    needs="callback",
)
def _unknown_ids(suite: Suite) -> str:
    management = suite.management()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    unknown = "".join(secrets.choice(alphabet) for _ in range(15)) + "="
    found = suite.error_status(
        "GetConnection", lambda: management.get_connection(ConnectionId=unknown)
    )
    if found[0] != 410:
        raise CheckFailed(f"never-existed id {unknown}: expected 410, got {found}")
    bad = suite.error_status(
        "GetConnection", lambda: management.get_connection(ConnectionId="not-an-id")
    )
    if bad != (400, "BadRequestException"):
        raise CheckFailed(f"malformed id: expected 400 BadRequestException, got {bad}")
    return "410 GoneException, 400 BadRequestException"


@check(
    "connections.delete-closes",
    "DeleteConnection on a live connection: 204 and the client's socket closes",
    needs="callback+table",
    members=1,
)
def _delete(suite: Suite) -> str:
    (member,) = suite.room(1)
    connection_id = suite.connection_id(member)
    answer = suite.aws_call(
        "DeleteConnection",
        lambda: suite.management().delete_connection(ConnectionId=connection_id),
    )
    suite.gone_id = connection_id
    status = answer["ResponseMetadata"]["HTTPStatusCode"]
    if status not in (200, 204):
        raise CheckFailed(f"expected 204, got {status}")
    if not member.closed.wait(suite.options.timeout):
        raise CheckFailed(f"the client's socket is still open {suite.options.timeout:g} s later")
    return f"{status}, the client saw close code {member.close_code}"


@check(
    "connections.gone-410",
    "GetConnection and PostToConnection on a connection that has closed: 410 GoneException",
    needs="callback+table",
    members=1,
)
def _gone_410(suite: Suite) -> str:
    gone = suite.gone_id
    if gone is None:  # the delete check did not run: close the member's socket ourselves
        (member,) = suite.room(1)
        gone = suite.connection_id(member)
        member.close()
    management = suite.management()
    deadline = time.monotonic() + suite.options.timeout
    while (
        get := suite.gone_status(
            "GetConnection", lambda: management.get_connection(ConnectionId=gone)
        )
    ) != 410 and time.monotonic() < deadline:
        time.sleep(0.2)
    if get != 410:
        raise CheckFailed(f"GetConnection on a closed connection: expected 410, got {get}")
    post = suite.gone_status(
        "PostToConnection",
        lambda: management.post_to_connection(ConnectionId=gone, Data=b"{}"),
    )
    if post != 410:
        raise CheckFailed(f"PostToConnection on a closed connection: expected 410, got {post}")
    return "GET 410, POST 410"


# ---- rooms (protocol v2, docs/protocol.md)
#
# They run last: a v2 connection takes the same names as the chat checks' members (with
# sign-in, a token's name is its own), so each closes the connection that held its name.
# Rooms last on a deployed stage (roomTtlSeconds), so each run makes its own: `cf-<run>-…`.


def _room_name(suite: Suite, kind: str) -> str:
    return f"cf-{suite.run_id}-{kind}"


def _answer(suite: Suite, client: Client, frame: Frame, what: str) -> Frame:
    """Send `frame` with a fresh id; the first frame carrying that id (an ack, `joined`, the
    own copy, a reply's last frame) or the error about it."""
    frame_id = new_id(suite, str(frame.get("action", "x"))[:8])
    mark = client.mark()
    client.send({**frame, "id": frame_id})
    answer = partial(_is_answer, frame_id)
    return client.wait(what, answer, since=mark, timeout=suite.options.timeout)[1]


def _expect(answer: Frame, what: str, ok: Callable[[Frame], bool]) -> Frame:
    if "error" in answer or not ok(answer):
        raise CheckFailed(f"{what}: got {answer}")
    return answer


def _refused(answer: Frame, code: str, what: str) -> None:
    error = answer.get("error")
    if not isinstance(error, dict) or error.get("code") != code:
        raise CheckFailed(f"{what}: expected {code}, got {answer}")


def _joined(suite: Suite, client: Client, room: str, *, kind: str, creating: bool) -> Frame:
    """joinRoom (or createRoom, for a private room) and its `joined` answer; a stage that
    refuses to make more rooms for this address (ROOM_LIMIT) skips the check."""
    action = "createRoom" if creating and kind == "private" else "joinRoom"
    answer = _answer(suite, client, {"action": action, "room": room}, f"{action} {room}")
    error = answer.get("error")
    if creating and isinstance(error, dict) and error.get("code") == "ROOM_LIMIT":
        hours = int(error.get("retryAfterMs") or 0) / 3_600_000
        raise Skipped(
            f"the stage makes no more rooms for this address or identity (ROOM_LIMIT, "
            f"maxRoomsPerCreator) for {hours:.1f} h: run it from elsewhere, or later"
        )
    joined = _expect(answer, f"{action} {room}", lambda f: f.get("joined") == room)
    if joined.get("kind") != kind or joined.get("room") != room:
        raise CheckFailed(f"{action} {room}: expected a {kind} room, got {joined}")
    for key in ("count", "seq", "lastRead"):
        if not isinstance(joined.get(key), int):
            raise CheckFailed(f"{action} {room}: `{key}` is not a whole number in {joined}")
    client.rooms.add(room)
    return joined


def _public_room(suite: Suite, member: Client) -> str:
    """The run's public room (rooms.join-create made it; else the first check to need it),
    with `member` in it. A connection joins a room once: joins draw on its setName bucket
    (nameBurst 3, then one each 10 s)."""
    room = _room_name(suite, "pub")
    if room not in member.rooms:
        _joined(suite, member, room, kind="public", creating=suite.public_room is None)
        suite.public_room = room
    return room


def _said(suite: Suite, member: Client, room: str, text: str) -> Frame:
    return _expect(
        _answer(suite, member, {"action": "sendPublic", "room": room, "message": text}, text),
        f"sendPublic in {room}",
        lambda f: f.get("text") == text and f.get("room") == room,
    )


def _room_history(suite: Suite, member: Client, room: str, since: int) -> list[Frame]:
    """The room's history after `since`, every frame of the reply."""
    frame_id = new_id(suite, "hist")
    mark = member.mark()
    member.send({"action": "history", "room": room, "since": since, "id": frame_id})
    index, _ = member.wait(
        f"the history of {room}",
        lambda f: "history" in f and f.get("final") is True and f.get("id") == frame_id,
        since=mark,
        timeout=suite.options.timeout,
        error_id=frame_id,
    )
    entries: list[Frame] = []
    for f in member.since(mark)[: index - mark + 1]:
        if not isinstance(f.get("history"), list) or f.get("room", room) != room:
            continue
        entries += f["history"]
        if f.get("final") is True and f.get("id") != frame_id:
            entries = []  # the end of another reply (a join's history): not this one's
    return entries


@check(
    "rooms.join-create",
    "v2: joinRoom of a new name makes a public room; a second member's join and a message "
    "reach the room's members, each frame naming the room",
    members=2,
)
def _rooms_join_create(suite: Suite) -> str:
    first, second = suite.speaker(0), suite.speaker(1)
    room = _room_name(suite, "pub")
    joined = _joined(suite, first, room, kind="public", creating=True)
    suite.public_room = room
    if joined["count"] != 1:
        raise CheckFailed(f"a new room with {joined['count']} members: {joined}")
    mark = first.mark()
    _joined(suite, second, room, kind="public", creating=False)
    _, notice = first.wait(
        f"{second.name!r}'s join notice in {room}",
        lambda f: f.get("event") == "join" and f.get("name") == second.name,
        since=mark,
        timeout=suite.options.timeout,
    )
    if (
        notice.get("room") != room
        or notice.get("systemMessage") != f"{second.name} has joined {room}"
    ):
        raise CheckFailed(f"the join notice {notice}")
    lists = [f for f in first.since(mark) if isinstance(f.get("members"), list)]
    if not lists or lists[-1].get("room") != room or second.name not in lists[-1]["members"]:
        raise CheckFailed(f"no member list of {room} with {second.name!r}: {lists}")
    mark = first.mark()
    copy = _said(suite, second, room, f"in {room}")
    _, got = first.wait(
        "the message in the room",
        lambda f: f.get("messageId") == copy.get("messageId"),
        since=mark,
        timeout=suite.options.timeout,
    )
    wanted = {k: v for k, v in copy.items() if k != "id"}
    if {k: got.get(k) for k in wanted} != wanted or "id" in got:
        raise CheckFailed(f"the member got {got}, the sender's copy is {copy}")
    return f"made {room}, 2 members, message seq {copy.get('seq')} reached both"


@check(
    "rooms.private-invite",
    "v2: createRoom makes a private room that others cannot find (ROOM_NOT_FOUND); "
    "an invitation lets the invitee join; the outsider still cannot",
    members=3,
)
def _rooms_private_invite(suite: Suite) -> str:
    owner, invitee, outsider = suite.speaker(0), suite.speaker(1), suite.speaker(2)
    room = _room_name(suite, "prv")
    _joined(suite, owner, room, kind="private", creating=True)
    refused = _answer(suite, outsider, {"action": "joinRoom", "room": room}, "joinRoom (outsider)")
    _refused(refused, "ROOM_NOT_FOUND", f"an outsider's joinRoom of private {room}")
    mark = invitee.mark()
    invite = {"action": "invite", "room": room, "to": invitee.name}
    ack = _expect(
        _answer(suite, owner, invite, "invite"), "invite", lambda f: f.get("ack") == "invite"
    )
    if (ack.get("room"), ack.get("to")) != (room, invitee.name):
        raise CheckFailed(f"the invite's ack {ack}")
    _, invited = invitee.wait(
        "the invitation",
        lambda f: f.get("invited") == room,
        since=mark,
        timeout=suite.options.timeout,
    )
    if (invited.get("room"), invited.get("from")) != (room, owner.name):
        raise CheckFailed(f"the invitation {invited}")
    joined = _joined(suite, invitee, room, kind="private", creating=False)
    if joined["count"] != 2:
        raise CheckFailed(f"the invitee joined a room of {joined['count']}: {joined}")
    mark = outsider.mark()
    text = f"private {suite.run_id}"
    _said(suite, invitee, room, text)
    again = _answer(suite, outsider, {"action": "joinRoom", "room": room}, "joinRoom (outsider)")
    _refused(again, "ROOM_NOT_FOUND", f"an outsider's second joinRoom of private {room}")
    suite.quiet()
    leaked = [f for f in outsider.since(mark) if text in json.dumps(f)]
    if leaked:
        raise CheckFailed(f"the outsider got the room's message: {leaked[0]}")
    return "outsider ROOM_NOT_FOUND before and after; invitee invited and joined"


@check(
    "rooms.direct-history",
    "v2 with a clientKey: sendPrivate is kept in the two's direct room (`@…`); the recipient, "
    "back on a new connection, joins it and finds the message in its history",
    members=2,
)
def _rooms_direct_history(suite: Suite) -> str:
    sender, recipient = suite.speaker(0), suite.speaker(1)
    text = f"direct {suite.run_id}"
    mark = recipient.mark()
    frame = {"action": "sendPrivate", "to": recipient.name, "message": text}
    ack = _expect(
        _answer(suite, sender, frame, "the sendPrivate ack"),
        "sendPrivate",
        lambda f: f.get("ack") == "sendPrivate",
    )
    room = ack.get("room")
    if not isinstance(room, str) or not re.fullmatch(r"@[0-9a-f]{32}", room):
        raise CheckFailed(f"the ack names no direct room (`@` + 32 hex digits): {ack}")
    _, got = recipient.wait(
        "the direct message",
        lambda f: f.get("directMessage") is not None and f.get("text") == text,
        since=mark,
        timeout=suite.options.timeout,
    )
    expected = {"room": room, "from": sender.name, "to": recipient.name, "seq": ack.get("seq")}
    if {k: got.get(k) for k in expected} != expected:
        raise CheckFailed(f"the recipient got {got}, expected {expected}")
    again = suite.speaker(1, fresh=True)  # a reload: the same identity on a new connection
    _joined(suite, again, room, kind="direct", creating=False)
    kept = [
        e
        for e in _room_history(suite, again, room, 0)
        if e.get("messageId") == ack.get("messageId")
    ]
    if len(kept) != 1 or kept[0].get("text") != text:
        raise CheckFailed(
            f"the direct room's history has {kept} for message {ack.get('messageId')}"
        )
    return f"{room[:9]}…: seq {ack.get('seq')}, recovered after reconnecting"


@check(
    "rooms.edit-since",
    "v2: an author's edit and delete reach the room as events with their own seq; history "
    "since before them has the latest text, the tombstone and both events",
    members=2,
)
def _rooms_edit_since(suite: Suite) -> str:
    author, reader = suite.speaker(0), suite.speaker(1)
    room = _public_room(suite, author)
    _public_room(suite, reader)
    typo = _said(suite, author, room, f"teh {suite.run_id}")
    start = int(typo["seq"]) - 1
    oops = _said(suite, author, room, f"oops {suite.run_id}")
    fixed = f"the {suite.run_id}"
    mark = reader.mark()
    edit = {
        "action": "editMessage",
        "room": room,
        "messageId": typo.get("messageId"),
        "seq": typo.get("seq"),
        "message": fixed,
    }
    edited = _expect(
        _answer(suite, author, edit, "editMessage"),
        "editMessage",
        lambda f: f.get("ack") == "editMessage",
    )
    delete = {
        "action": "deleteMessage",
        "room": room,
        "messageId": oops.get("messageId"),
        "seq": oops.get("seq"),
    }
    deleted = _expect(
        _answer(suite, author, delete, "deleteMessage"),
        "deleteMessage",
        lambda f: f.get("ack") == "deleteMessage",
    )
    _, event = reader.wait(
        "the messageEdited event",
        lambda f: f.get("messageEdited") == typo.get("messageId"),
        since=mark,
        timeout=suite.options.timeout,
    )
    if (event.get("of"), event.get("text"), event.get("seq")) != (
        typo.get("seq"),
        fixed,
        edited.get("seq"),
    ):
        raise CheckFailed(f"the edit event {event}, the ack {edited}")
    _, gone = reader.wait(
        "the messageDeleted event",
        lambda f: f.get("messageDeleted") == oops.get("messageId"),
        since=mark,
        timeout=suite.options.timeout,
    )
    if (gone.get("of"), gone.get("seq")) != (oops.get("seq"), deleted.get("seq")):
        raise CheckFailed(f"the delete event {gone}, the ack {deleted}")
    history = _room_history(suite, reader, room, start)
    latest = [
        h for h in history if h.get("messageId") == typo.get("messageId") and "publicMessage" in h
    ]
    if [(h.get("text"), h.get("edited")) for h in latest] != [(fixed, True)]:
        raise CheckFailed(f"history holds {latest} for the edited message")
    if any(h.get("text") == oops.get("text") for h in history):
        raise CheckFailed("history still has the deleted message's text")
    seqs = [h.get("seq") for h in history]
    for want, what in ((edited.get("seq"), "the edit"), (deleted.get("seq"), "the delete")):
        if want not in seqs:
            raise CheckFailed(f"history since {start} lacks {what} (seq {want}): {seqs}")
    return (
        f"edit seq {edited.get('seq')}, delete seq {deleted.get('seq')}, "
        f"both in the history since {start}"
    )


@check(
    "rooms.typing-not-stored",
    "v2: typing reaches the room's other members (never the typer, never acknowledged) and "
    "is not in the room's history",
    members=2,
)
def _rooms_typing(suite: Suite) -> str:
    typer, watcher = suite.speaker(1), suite.speaker(0)
    room = _public_room(suite, watcher)
    _public_room(suite, typer)
    marks = typer.mark(), watcher.mark()
    typer.send({"action": "typing", "room": room})
    _, typing = watcher.wait(
        "the typing frame",
        lambda f: "typing" in f,
        since=marks[1],
        timeout=suite.options.timeout,
    )
    if (typing.get("typing"), typing.get("room")) != (typer.name, room) or not isinstance(
        typing.get("ts"), int
    ):
        raise CheckFailed(f"the typing frame {typing}")
    suite.quiet()
    echoed = [f for f in typer.since(marks[0]) if "typing" in f or f.get("ack") == "typing"]
    if echoed:
        raise CheckFailed(f"the typer got {echoed[0]}")
    stored = [h for h in _room_history(suite, watcher, room, 0) if "typing" in h]
    if stored:
        raise CheckFailed(f"the room's history holds {stored[0]}")
    return "one typing frame to the other member; none to the typer; none in history"


V1_KEYS = {"publicMessage", "from", "text", "ts", "seq", "messageId", "prev"}


@check(
    "rooms.v1-unchanged",
    "a v1 client in the lobby gets today's frames from a v2 member (no `room`), never its "
    "typing nor another room's messages, and UNKNOWN_ACTION for a v2 action",
    members=3,
)
def _rooms_v1_unchanged(suite: Suite) -> str:
    old = suite.speaker(0, protocol=1)
    # new connections: the earlier checks spent their join tokens
    talker, typer = suite.speaker(1, fresh=True), suite.speaker(2, fresh=True)
    mark = old.mark()
    _joined(suite, talker, "lobby", kind="public", creating=False)
    _, notice = old.wait(
        f"{talker.name!r}'s join notice",
        lambda f: f.get("event") == "join" and f.get("name") == talker.name,
        since=mark,
        timeout=suite.options.timeout,
    )
    today = {
        "systemMessage": f"{talker.name} has joined the chat",
        "event": "join",
        "name": talker.name,
    }
    if {k: v for k, v in notice.items() if k != "eventId"} != today:
        raise CheckFailed(f"the v1 client got the join notice {notice}, expected {today}")
    copy = _said(suite, talker, "lobby", f"to the lobby {suite.run_id}")
    _, got = old.wait(
        "the v2 member's lobby message",
        lambda f: f.get("messageId") == copy.get("messageId"),
        since=mark,
        timeout=suite.options.timeout,
    )
    if set(got) != V1_KEYS or got.get("publicMessage") != f"{talker.name}: {copy.get('text')}":
        raise CheckFailed(f"the v1 client got {got}; expected exactly the keys {sorted(V1_KEYS)}")
    _joined(suite, typer, "lobby", kind="public", creating=False)
    room = _public_room(suite, typer)
    mark = old.mark()
    typer.send({"action": "typing", "room": "lobby"})
    elsewhere = _said(suite, typer, room, f"elsewhere {suite.run_id}")
    unknown = _answer(suite, old, {"action": "joinRoom", "room": room}, "a v1 joinRoom")
    _refused(unknown, "UNKNOWN_ACTION", "a v1 client's joinRoom")
    if "joinRoom" in str(unknown["error"].get("message")):
        raise CheckFailed(f"the v1 client is told of v2 actions: {unknown}")
    suite.quiet()
    seen = [
        f
        for f in old.since(mark)
        if "typing" in f or f.get("messageId") == elsewhere.get("messageId") or "room" in f
    ]
    if seen:
        raise CheckFailed(f"the v1 client got {seen[0]}")
    return "today's join notice and message, no typing, no other room, UNKNOWN_ACTION"


# --------------------------------------------------------------------------- command line


def outputs_of(path: Path, stack: str | None) -> dict[str, str]:
    """WebSocketUrl (and CallbackUrl, TableName) of the one stack in a cdk outputs file."""
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    found = {
        name: values
        for name, values in outputs.items()
        if isinstance(values, dict) and "WebSocketUrl" in values and stack in (None, name)
    }
    if len(found) != 1:
        where = f"stack {stack}" if stack else "exactly one stack"
        raise UsageError(
            f"{path}: expected a WebSocketUrl output in {where}, found {sorted(found) or 'none'}"
        )
    values = next(iter(found.values()))
    return {key: str(values[key]) for key in OUTPUT_KEYS if key in values}


def names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/conformance",
        description="Check a chat stage (deployed or the local sandbox) against API Gateway's "
        "documented behaviour and the chat protocol. Exit 0: no check failed; 1: a check "
        "failed, or all were skipped; 2: the suite could not run.",
    )
    target = parser.add_argument_group("target")
    target.add_argument("--url", help="the stage's WebSocket URL: wss://… (ws:// for loopback)")
    target.add_argument(
        "--sandbox",
        type=Path,
        metavar="TEMPLATE",
        help="start the local sandbox on this synthesized template (e.g. "
        "cdk.out/ChatStack.template.json), check it with every target option taken from its "
        "banner, then stop it (make conformance)",
    )
    target.add_argument("--outputs-file", type=Path, help="cdk deploy --outputs-file JSON")
    target.add_argument("--stack", help="with --outputs-file: the stack to read")
    target.add_argument(
        "--connections",
        action="store_true",
        help="with --outputs-file: also take CallbackUrl and TableName from it",
    )
    target.add_argument("--callback", help="the @connections URL (https://…/<stage>)")
    target.add_argument("--table", help="the chat's DynamoDB table (to learn connection ids)")
    target.add_argument("--dynamodb-endpoint", help="DynamoDB endpoint (the local sandbox's)")
    target.add_argument("--region", help="AWS Region (default: from the URL, then AWS config)")
    target.add_argument("--ca-bundle", type=Path, help="PEM of the CA to trust for TLS")
    client = parser.add_argument_group("client")
    client.add_argument("--origin", help="the Origin every connection sends (default: none)")
    client.add_argument(
        "--foreign-origin", default=FOREIGN_ORIGIN, help=f"an origin to refuse ({FOREIGN_ORIGIN})"
    )
    client.add_argument(
        "--token",
        action="append",
        default=[],
        help="sign-in token (JWT); repeat it: the chat checks need 3 names",
    )
    client.add_argument("--token-source", choices=("query", "protocol"), default="query")
    client.add_argument("--name-claim", default="cognito:username", help="the token's name claim")
    limits = parser.add_argument_group("the stack's limits (docs/configuration.md)")
    limits.add_argument(
        "--message-burst",
        type=int,
        default=MESSAGE_BURST,
        help=f"messageBurst ({MESSAGE_BURST})",
    )
    limits.add_argument(
        "--message-rate",
        type=float,
        default=MESSAGE_RATE,
        help=f"messageRatePerSecond ({MESSAGE_RATE:g})",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--only", type=names, help="run only these checks (comma-separated)")
    run.add_argument("--skip", type=names, default=[], help="leave these checks out")
    run.add_argument("--list", action="store_true", help="list the checks and exit")
    run.add_argument("--json", type=Path, help="also write the results to this JSON file")
    run.add_argument("--timeout", type=float, default=10.0, help="seconds per wait (10)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.message_burst < 1 or args.message_rate <= 0:
        parser.error("--message-burst and --message-rate must be positive")
    return args


def selected(args: argparse.Namespace) -> list[Check]:
    known = {c.name for c in CHECKS}
    unknown = sorted({*(args.only or []), *args.skip} - known)
    if unknown:
        raise UsageError(f"unknown check(s): {', '.join(unknown)} (see --list)")
    chosen = [c for c in CHECKS if (args.only is None or c.name in args.only)]
    return [c for c in chosen if c.name not in args.skip]


def options_from(args: argparse.Namespace) -> Options:
    url, callback, table = args.url, args.callback, args.table
    if (url is None) == (args.outputs_file is None):
        raise UsageError("give exactly one of --url URL and --outputs-file FILE")
    if args.connections and not args.outputs_file:
        raise UsageError("--connections goes with --outputs-file")
    if args.outputs_file:
        outputs = outputs_of(args.outputs_file, args.stack)
        url = outputs["WebSocketUrl"]
        if args.connections:
            callback = callback or outputs.get("CallbackUrl")
            table = table or outputs.get("TableName")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"{url!r} is not a ws:// or wss:// URL")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as error:
        raise UsageError(f"{url!r}: {error}") from None
    if callback is not None:
        cb = urlsplit(callback)
        if cb.scheme not in ("http", "https") or not cb.hostname:
            raise UsageError(f"--callback {callback!r} is not an http:// or https:// URL")
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    for token in args.token:
        claims = jwt_claims(token)
        if not isinstance(claims.get(args.name_claim), str):
            raise UsageError(f"a --token has no {args.name_claim!r} claim (see --name-claim)")
    return Options(
        url=url,
        callback=callback,
        table=table,
        dynamodb_endpoint=args.dynamodb_endpoint,
        region=args.region,
        ca_bundle=args.ca_bundle,
        origin=args.origin,
        foreign_origin=args.foreign_origin,
        tokens=list(args.token),
        token_source=args.token_source,
        name_claim=args.name_claim,
        message_burst=args.message_burst,
        message_rate=args.message_rate,
        timeout=args.timeout,
    )


def list_checks(checks: Sequence[Check], out: TextIO) -> None:
    for item in checks:
        needs = {
            "token": " [needs --token]",
            "callback": " [needs --callback]",
            "callback+table": " [needs --callback, --table]",
        }
        print(f"{item.name:<30} {item.what}{needs.get(item.needs, '')}", file=out)


def preflight(suite: Suite) -> None:
    """Reach the target once: an unreachable host or a TLS failure stops the run here."""
    try:
        suite.status_of()
    except InvalidStatus:
        pass  # reachable; the handshake checks say what is wrong
    except CheckFailed:
        pass
    except InvalidURI as error:
        raise UsageError(str(error)) from None
    except WebSocketException as error:
        raise TargetError(f"cannot open a WebSocket to {suite.options.url}: {error}") from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    if args.sandbox is not None:
        return _against_the_sandbox(args, out)
    return _run(args, out)


def _run(args: argparse.Namespace, out: TextIO | None) -> int:
    stream = out or sys.stdout
    try:
        checks = selected(args)
        if args.list:
            list_checks(checks, stream)
            return 0
        options = options_from(args)
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    suite = Suite(options, out=stream)
    where = f", callback {options.callback}" if options.callback else ""
    suite.say(f"{PROG}: {options.url}{where} ({len(checks)} checks)")
    started = time.monotonic()
    try:
        preflight(suite)
    except (TargetError, UsageError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        suite.say(f"{PROG}: could not run ({error})")
        return 2
    try:
        results = suite.run(checks)
    finally:
        suite.cleanup()
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    seconds = time.monotonic() - started
    ok = counts["fail"] == 0 and counts["pass"] > 0  # all skipped proves nothing
    verdict = "PASS" if ok else "FAIL" if counts["fail"] else "NOTHING CHECKED"
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    suite.say(f"{PROG}: {verdict} ({summary}, {seconds:.1f} s)")
    if args.json:
        report = {
            "url": options.url,
            "callback": options.callback,
            "ok": ok,
            "passed": counts["pass"],
            "failed": counts["fail"],
            "skipped": counts["skip"],
            "seconds": round(seconds, 3),
            "checks": [
                {
                    "name": r.name,
                    "status": r.status,
                    "detail": r.detail,
                    "seconds": round(r.seconds, 3),
                }
                for r in results
            ],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


_BANNER_TABLES = re.compile(r"^DynamoDB:\s+(\S+) \(embedded moto\); tables: (\S+)$", re.MULTILINE)


def _against_the_sandbox(args: argparse.Namespace, out: TextIO | None) -> int:
    """`--sandbox TEMPLATE`: start the sandbox on it, run the suite with the URLs, the table
    and the CA its banner prints, stop it. Other options pass through."""
    import tempfile  # noqa: PLC0415

    from sandbox.launcher import SandboxProcess, start_sandbox  # noqa: PLC0415

    if args.url or args.outputs_file or args.callback:
        print(
            f"{PROG}: --sandbox sets the target; drop --url/--callback/--outputs-file",
            file=sys.stderr,
        )
        return 2
    template = args.sandbox
    if not template.is_file():
        print(f"{PROG}: no template at {template}: run `make synth` first", file=sys.stderr)
        return 2
    stream = out or sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="conformance-") as work,
        contextlib.ExitStack() as stack,
    ):
        print(f"{PROG}: starting the sandbox on {template}", file=stream, flush=True)
        try:
            sandbox = stack.enter_context(
                start_sandbox(template, Path(work), stage="", kind=SandboxProcess)
            )
        except AssertionError as error:
            print(f"{PROG}: the sandbox did not start: {error}", file=sys.stderr)
            return 2
        args.url = sandbox.banner_value("WebSocket URL")
        args.callback = sandbox.banner_value("Callback URL")
        args.ca_bundle = Path(sandbox.banner_value("CA bundle"))
        tables = _BANNER_TABLES.search(sandbox.log())
        if tables:
            args.dynamodb_endpoint, args.table = tables.groups()
        return _run(args, out)


if __name__ == "__main__":
    sys.exit(main())
