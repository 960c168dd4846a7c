"""Smoke-test a running chat: connect, claim a unique name, see it listed, get one's own message.

    bin/smoke wss://<api-id>.execute-api.<region>.amazonaws.com/<stage>
    bin/smoke --outputs-file cdk-outputs.json        # what `cdk deploy --outputs-file` wrote
    bin/smoke --stack Chat-dev [--region eu-west-1]  # the stack's WebSocketUrl output (boto3)

Speaks the chat's protocol (docs/protocol.md) over one connection, with two frames
(`setName`, `sendPublic`), well inside the per-connection rate limits, and disconnects.
It understands both member-list forms (`members`, and v1.1's `memberList` parts in a big
room). The message is public: everyone in the room sees `smoke-…: smoke test …`.
Exit status: 0 when every check passed, 1 when one failed or the deadline (`--timeout`)
passed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

OUTPUT_KEY = "WebSocketUrl"  # ChatStack's output (infra/stack.py)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Frame = dict[str, Any]


class CheckFailed(Exception):  # noqa: N818 (a failed check, not a fault)
    """A check that did not pass; the message says what was expected and what came."""


class UsageError(Exception):
    """The target could not be worked out from the arguments."""


@dataclass
class Smoke:
    """One run against one URL, printing a line per check to `out`."""

    url: str
    timeout: float = 30.0
    name: str | None = None
    origin: str | None = None
    token: str | None = None
    out: TextIO | None = None  # None: sys.stdout at the time of printing

    def run(self) -> int:
        started = time.monotonic()
        self.deadline = started + self.timeout
        name = self.name or f"smoke-{uuid.uuid4().hex[:8]}"
        self._say(f"smoke: {self.url} (timeout {self.timeout:g} s)")
        checks = 0
        try:
            with self._step("connect"):
                ws = self._connect()
            checks += 1
            with ws:  # closes the connection, whatever happens below
                with self._step(f"setName {name}: listed in the members") as note:
                    ws.send(json.dumps({"action": "setName", "name": name}))
                    members = self._members(ws, name)
                    note(f"{len(members)} member(s)")
                checks += 1
                token = uuid.uuid4().hex[:12]
                text = f"smoke test {token}"
                with self._step("sendPublic: own message echoed back"):
                    # `id` (protocol v1.1) makes our own copy the acknowledgement; a fresh one
                    # is never taken for a resend. Servers that predate it ignore the key.
                    message = {"action": "sendPublic", "message": text, "id": f"smoke-{token}"}
                    ws.send(json.dumps(message))
                    echo = self._wait(
                        ws,
                        "echo of our public message",
                        lambda f: f.get("from") == name and f.get("text") == text,
                    )
                    expected = f"{name}: {text}"
                    if echo.get("publicMessage") != expected:
                        raise CheckFailed(f"expected publicMessage {expected!r}, got {echo}")
                checks += 1
        except CheckFailed:
            self._say(f"smoke: FAIL after {time.monotonic() - started:.1f} s")
            return 1
        self._say(f"smoke: PASS ({checks} checks, {time.monotonic() - started:.1f} s)")
        return 0

    def _connect(self) -> ClientConnection:
        url = self.url
        if self.token:
            url += ("&" if "?" in url else "?") + urlencode({"token": self.token})
        host = urlsplit(url).hostname or ""
        try:
            ws: ClientConnection = connect(
                url,
                origin=Origin(self.origin) if self.origin else None,
                open_timeout=self._remaining(),
                # Loopback (the sandbox) never goes through a proxy; AWS honours HTTPS_PROXY.
                proxy=None if host in LOOPBACK else True,
                user_agent_header="websocket-chat-smoke",
            )
        except InvalidStatus as error:
            status = error.response.status_code
            hints = {401: " (sign-in on? pass --token)", 403: " (Origin refused? see --origin)"}
            raise CheckFailed(
                f"handshake refused with HTTP {status}{hints.get(status, '')}"
            ) from None
        except (OSError, TimeoutError, WebSocketException) as error:
            raise CheckFailed(f"cannot connect: {error or type(error).__name__}") from None
        return ws

    def _members(self, ws: ClientConnection, name: str) -> list[str]:
        """The member list after our join: one `members` frame or, in a room above
        `memberListThreshold`, all the `memberList` parts (docs/protocol.md)."""
        parts: dict[int, list[str]] = {}
        found: list[str] = []

        def listed(frame: Frame) -> bool:
            if isinstance(frame.get("members"), list):
                found[:] = frame["members"]
                return name in found  # an older broadcast without us: keep waiting
            if isinstance(frame.get("memberList"), list) and isinstance(frame.get("parts"), int):
                parts[int(frame.get("part", len(parts) + 1))] = frame["memberList"]
                if len(parts) >= frame["parts"]:
                    found[:] = [member for _, part in sorted(parts.items()) for member in part]
                    return True
            return False

        self._wait(ws, f"member list with {name!r}", listed)
        if name not in found:
            raise CheckFailed(f"{name!r} is not in the member list ({len(found)} members)")
        return found

    def _wait(self, ws: ClientConnection, what: str, match: Callable[[Frame], bool]) -> Frame:
        """The first frame that matches; an error frame or the deadline fails the check."""
        while True:
            remaining = self._remaining()
            if remaining <= 0:
                raise CheckFailed(f"no {what} before the deadline")
            try:
                raw = ws.recv(timeout=remaining)
            except TimeoutError:
                raise CheckFailed(f"no {what} within {self.timeout:g} s") from None
            except WebSocketException as error:
                raise CheckFailed(f"connection closed while waiting for {what}: {error}") from None
            try:
                frame = json.loads(raw)
            except ValueError:
                raise CheckFailed(f"not JSON: {raw!r}") from None
            if not isinstance(frame, dict):
                raise CheckFailed(f"not a JSON object: {raw!r}")
            if "error" in frame:
                raise CheckFailed(f"the chat answered with an error: {frame['error']}")
            if frame.get("message") in ("Internal server error", "Forbidden"):
                raise CheckFailed(f"API Gateway answered {frame['message']!r}: {frame}")
            if match(frame):
                return frame

    def _remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @contextmanager
    def _step(self, label: str) -> Iterator[Callable[[str], None]]:
        """Prints `  ok   <label> (<notes>, <ms> ms)` or `  FAIL <label>: <why>`."""
        notes: list[str] = []
        started = time.monotonic()
        try:
            yield notes.append
        except CheckFailed as error:
            self._say(f"  FAIL {label}: {error}")
            raise
        notes.append(f"{(time.monotonic() - started) * 1000:.0f} ms")
        self._say(f"  ok   {label} ({', '.join(notes)})")

    def _say(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)


def url_from_outputs(path: Path, stack: str | None) -> str:
    """The WebSocketUrl output in a `cdk deploy --outputs-file` file."""
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    found = {
        name: values[OUTPUT_KEY]
        for name, values in outputs.items()
        if isinstance(values, dict) and OUTPUT_KEY in values and (stack in (None, name))
    }
    if len(found) != 1:
        where = f"stack {stack}" if stack else "exactly one stack"
        raise UsageError(
            f"{path}: expected a {OUTPUT_KEY} output in {where}, found {sorted(found) or 'none'}"
        )
    return str(next(iter(found.values())))


def url_from_stack(stack: str, region: str | None) -> str:
    """The stack's WebSocketUrl output, read with CloudFormation (your AWS credentials)."""
    import boto3  # noqa: PLC0415 (only this path needs AWS)
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        client = boto3.client("cloudformation", region_name=region)
        (described,) = client.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"cannot describe stack {stack}: {error}") from None
    for output in described.get("Outputs", []):
        if output["OutputKey"] == OUTPUT_KEY:
            return str(output["OutputValue"])
    raise UsageError(f"stack {stack} has no {OUTPUT_KEY} output")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/smoke",
        description="Smoke-test a deployed (or local) chat over its WebSocket URL.",
    )
    parser.add_argument("url", nargs="?", help="wss://… (or ws:// for the local sandbox)")
    parser.add_argument("--outputs-file", type=Path, help="cdk deploy --outputs-file JSON")
    parser.add_argument("--stack", help="stack whose WebSocketUrl output to use")
    parser.add_argument("--region", help="with --stack alone: the stack's region")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds in all (30)")
    parser.add_argument("--name", help="the chat name to claim (default: smoke-<random>)")
    parser.add_argument("--origin", help="send this Origin (when allowMissingOrigin=false)")
    parser.add_argument("--token", help="sign-in token, sent as ?token= (signIn=true)")
    args = parser.parse_args(argv)
    sources = [args.url, args.outputs_file, None if args.outputs_file else args.stack]
    if sum(source is not None for source in sources) != 1:
        parser.error("give exactly one of: URL, --outputs-file FILE, --stack NAME")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.outputs_file:
            url = url_from_outputs(args.outputs_file, args.stack)
        elif args.stack:
            url = url_from_stack(args.stack, args.region)
        else:
            url = args.url
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise UsageError(f"{url!r} is not a ws:// or wss:// URL")
    except UsageError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 2
    smoke = Smoke(
        url, timeout=args.timeout, name=args.name, origin=args.origin, token=args.token, out=out
    )
    return smoke.run()


if __name__ == "__main__":
    sys.exit(main())
