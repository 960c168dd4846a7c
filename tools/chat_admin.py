"""bin/chat-admin: call the chat's server API (IAM-signed) from a terminal.

    bin/chat-admin --outputs-file cdk-outputs.json rooms
    bin/chat-admin --url https://<id>.execute-api.<region>.amazonaws.com/ members lobby
    bin/chat-admin --sandbox members dev          # the local sandbox (make run)

Each request is signed with Signature Version 4 (botocore's signer, service
`execute-api`) using the AWS credentials of the environment (`AWS_PROFILE`, the
`AWS_ACCESS_KEY_ID` pair, SSO, an instance role: boto3's usual chain), and sent over HTTPS
with `http.client`. The caller needs the stack's operator policy (output
`OperatorPolicyArn`). Exit 0 on success, 1 when the API refused the request, 2 when it
could not be made. docs/operations.md, "The server API".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError

PROG = "bin/chat-admin"
SERVICE = "execute-api"
TIMEOUT_S = 35.0  # above the API's 30 s integration timeout
# With --sandbox: the operator key pair the local sandbox accepts (sandbox/http_api.py),
# and where `make run` serves the server API and writes its CA (the Makefile's
# SERVER_API_PORT and SANDBOX_TLS_DIR).
SANDBOX_ACCESS_KEY_ID = "AKIASANDBOXOPERATOR0"
SANDBOX_SECRET_ACCESS_KEY = "sandbox-operator-secret-not-for-aws"
SANDBOX_URL = "https://127.0.0.1:{port}/"
SANDBOX_CA = Path(__file__).resolve().parent.parent / ".sandbox" / "tls" / "ca.pem"


class UsageError(Exception):
    """The command line or the environment cannot make a request (exit 2)."""


@dataclass(frozen=True)
class Target:
    """Where to send requests and how to sign them."""

    url: str
    region: str
    credentials: Any
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class Reply:
    """The API's answer: its status and JSON document (None when the body is not JSON)."""

    status: int
    document: Any
    text: str


def region_of(url: str) -> str | None:
    """`eu-west-1` from `https://<id>.execute-api.eu-west-1.amazonaws.com/`."""
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urlsplit(url).netloc)
    return match.group(1) if match else None


def url_from_outputs(path: Path, stack: str | None) -> str:
    """ServerApiUrl of the one stack (or `stack`) in a `cdk deploy --outputs-file` file."""
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    found = {
        name: values["ServerApiUrl"]
        for name, values in (outputs.items() if isinstance(outputs, dict) else [])
        if isinstance(values, dict) and "ServerApiUrl" in values and stack in (None, name)
    }
    if len(found) != 1:
        where = f"stack {stack}" if stack else "exactly one stack"
        raise UsageError(
            f"{path}: expected a ServerApiUrl output in {where}, found {sorted(found) or 'none'}"
        )
    return str(next(iter(found.values())))


def sign_and_send(target: Target, method: str, path: str, body: Any = None) -> Reply:
    """One signed request to the API. Raises UsageError when it cannot be made."""
    base = urlsplit(target.url)
    url = f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}{path}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=url, data=data, headers=headers)
    SigV4Auth(target.credentials, SERVICE, target.region).add_auth(request)
    try:
        context = ssl.create_default_context(
            cafile=str(target.ca_bundle) if target.ca_bundle else None
        )
    except (ssl.SSLError, OSError) as error:
        raise UsageError(f"cannot use the CA bundle {target.ca_bundle}: {error}") from None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(f"the server API's URL must be https://…, not {target.url!r}")
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, timeout=TIMEOUT_S, context=context
    )
    target_path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target_path, body=data or None, headers=dict(request.headers))
        answer = connection.getresponse()
        raw = answer.read()
    except ssl.SSLError as error:
        hint = " (the sandbox's CA: --ca-bundle, or --sandbox)" if target.ca_bundle is None else ""
        raise UsageError(f"TLS to {parts.netloc} failed: {error}{hint}") from None
    except OSError as error:
        raise UsageError(f"cannot reach {parts.netloc}: {error}") from None
    finally:
        connection.close()
    text = raw.decode("utf-8", "replace")
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    return Reply(answer.status, document, text)


def room_path(room: str) -> str:
    """A room name as one path segment (any character percent-encoded but unreserved)."""
    return quote(room, safe="")


# ---------------------------------------------------------------------------- commands

Command = Callable[[Target, argparse.Namespace], Reply]


def _rooms(target: Target, args: argparse.Namespace) -> Reply:
    return sign_and_send(target, "GET", "/rooms")


def _members(target: Target, args: argparse.Namespace) -> Reply:
    return sign_and_send(target, "GET", f"/rooms/{room_path(args.room)}/members")


def show(command: str, document: Any) -> list[str]:
    """Lines for a person (--json prints the document instead)."""
    if command == "rooms":
        lines = [f"{room['room']}\t{room['kind']}" for room in document.get("rooms", [])]
        if not document.get("complete", True):
            lines.append("(more rooms than one answer lists)")
        return lines
    if command == "members":
        names = [member["name"] for member in document.get("members", [])]
        return [f"{document.get('room')} ({document.get('kind')}): {len(names)} member(s)", *names]
    return [json.dumps(document, ensure_ascii=False)]


COMMANDS: dict[str, Command] = {"rooms": _rooms, "members": _members}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Call the chat's server API (IAM-signed with your AWS credentials). "
        "Exit 0: done; 1: the API refused the request; 2: it could not be made.",
    )
    where = parser.add_argument_group("where")
    where.add_argument("--url", help="the server API's URL (output ServerApiUrl)")
    where.add_argument("--outputs-file", type=Path, help="cdk deploy --outputs-file JSON")
    where.add_argument("--stack", help="with --outputs-file: the stack to read")
    where.add_argument(
        "--sandbox",
        action="store_true",
        help="the local sandbox of `make run`: https://127.0.0.1:$SERVER_API_PORT/ (8081) "
        "unless --url says otherwise, its operator key, and its CA (.sandbox/tls/ca.pem "
        "unless --ca-bundle)",
    )
    where.add_argument("--region", help="AWS Region (default: from the URL, then AWS config)")
    where.add_argument("--profile", help="AWS profile for the credentials")
    where.add_argument("--ca-bundle", type=Path, help="PEM of the CA to trust (the sandbox's)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("rooms", help="list the rooms (public and private; never direct)")
    members = commands.add_parser("members", help="list a room's members")
    members.add_argument("room", help="the room's name (or a direct room's @id)")
    return parser.parse_args(argv)


def resolve_target(args: argparse.Namespace) -> Target:
    """The URL, Region and credentials the arguments name. Raises UsageError."""
    url = args.url or os.environ.get("CHAT_ADMIN_URL")
    if args.sandbox and not url:
        url = SANDBOX_URL.format(port=os.environ.get("SERVER_API_PORT", "8081"))
    if args.outputs_file is not None:
        if args.url:
            raise UsageError("give one of --url and --outputs-file")
        url = url_from_outputs(args.outputs_file, args.stack)
    if not url:
        raise UsageError("say where the API is: --url URL, --outputs-file FILE or $CHAT_ADMIN_URL")
    ca_bundle = args.ca_bundle
    if args.sandbox:
        credentials = Credentials(SANDBOX_ACCESS_KEY_ID, SANDBOX_SECRET_ACCESS_KEY)
        ca_bundle = ca_bundle or SANDBOX_CA
        if not ca_bundle.is_file():
            raise UsageError(f"no CA bundle at {ca_bundle}: is `make run` running?")
        region = args.region or "us-east-1"
    else:
        try:
            session = boto3.session.Session(profile_name=args.profile)
            credentials = session.get_credentials()
        except BotoCoreError as error:
            raise UsageError(f"AWS credentials: {error}") from None
        if credentials is None:
            raise UsageError(
                "no AWS credentials found: set AWS_PROFILE (or --profile), or the "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables"
            )
        region = args.region or region_of(url) or session.region_name
        if not region:
            raise UsageError("no AWS Region: give --region")
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UsageError(f"no CA bundle at {ca_bundle}")
    return Target(url=url, region=region, credentials=credentials, ca_bundle=ca_bundle)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = resolve_target(args)
        reply = COMMANDS[args.command](target, args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if not 200 <= reply.status < 300:
        print(f"{PROG}: {describe_refusal(reply)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply.document, ensure_ascii=False, indent=2))
    else:
        for line in show(args.command, reply.document):
            print(line)
    return 0


def describe_refusal(reply: Reply) -> str:
    """One line for a refused request: the status, the chat's code and message, or API
    Gateway's own message (403 for a missing or wrong signature or permission)."""
    document = reply.document if isinstance(reply.document, dict) else {}
    error = document.get("error")
    if isinstance(error, dict):
        return f"refused ({reply.status} {error.get('code')}): {error.get('message')}"
    message = document.get("message") or reply.text.strip()[:200] or "no body"
    hint = ""
    if reply.status == 403:
        hint = (
            " (is the request signed with credentials that have the stack's operator "
            "policy, output OperatorPolicyArn?)"
        )
    return f"refused by API Gateway ({reply.status}): {message}{hint}"


if __name__ == "__main__":
    sys.exit(main())
