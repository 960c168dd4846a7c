"""A chat client for the end-to-end tests: a real WebSocket speaking protocol v1."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection

from tests.support.frames import plain

Frame = dict[str, Any]


class ChatClient:
    """Wraps a websockets connection; `frames` keeps everything received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self._read = 0

    def send(self, action: str, **fields: Any) -> None:
        self.ws.send(json.dumps({"action": action, **fields}))

    def send_raw(self, text: str) -> None:
        self.ws.send(text)

    def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The first unread frame that matches (earlier unread frames are consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._read < len(self.frames):
                frame = self.frames[self._read]
                self._read += 1
                if match(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout} s; got {self.frames}")
            try:
                self.frames.append(plain(json.loads(self.ws.recv(timeout=remaining))))
            except TimeoutError:
                continue

    def next_frames(self, count: int, timeout: float = 10.0) -> list[Frame]:
        """The next `count` frames, skipping history (what earlier tests left in the room)."""
        return [self.wait_for(lambda f: "history" not in f, timeout) for _ in range(count)]

    def error(self, timeout: float = 10.0) -> Frame:
        frame = self.wait_for(lambda f: "error" in f, timeout)
        return dict(frame["error"])

    def members(self, timeout: float = 10.0) -> list[str]:
        return list(self.wait_for(lambda f: "members" in f, timeout)["members"])

    def quiet(self, seconds: float = 0.5) -> list[Frame]:
        """Frames that arrive within `seconds` (expected: none)."""
        got: list[Frame] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got.append(plain(json.loads(self.ws.recv(timeout=remaining))))
            except TimeoutError:
                break
        self.frames.extend(got)
        self._read = len(self.frames)
        return got

    def join(self, name: str) -> ChatClient:
        self.send("setName", name=name)
        self.wait_for(lambda f: f.get("event") in ("join", "rename") and f.get("name") == name)
        return self

    def join_v2(self, name: str, client_key: str | None = None) -> Frame:
        """setName with `"protocol": 2` (and a clientKey): the acknowledgement."""
        fields: dict[str, Any] = {"name": name, "protocol": 2}
        if client_key is not None:
            fields["clientKey"] = client_key
        return self.request("setName", **fields)

    def request(self, action: str, **fields: Any) -> Frame:
        """Send a frame with a fresh `id`; the first frame that carries the id back (an
        acknowledgement, a `joined`, the own copy of a message, a history reply's last
        frame) or the error about it, whose `error` a caller can check. Ids are unique
        across connections: a sender's ids are de-duplicated per identity (clientKey),
        so one reused by the same key would get the earlier acknowledgement again."""
        frame_id = f"{action}-{uuid.uuid4().hex[:12]}"
        self.send(action, id=frame_id, **fields)
        return self.wait_for(
            lambda f: f.get("id") == frame_id or (f.get("error") or {}).get("id") == frame_id
        )

    def close(self) -> None:
        self.ws.close()


def room_items(sandbox: Any) -> list[dict[str, Any]]:
    """The chat's member items in the sandbox's DynamoDB (its one table), of every member
    partition (ROOM#lobby and ROOM#lobby#<i>, whatever memberPartitions is): one Scan,
    the sandbox's table being small."""
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    items: list[dict[str, Any]] = []
    for page in db.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="begins_with(pk, :room) AND begins_with(sk, :member)",
        ExpressionAttributeValues={":room": {"S": "ROOM#lobby"}, ":member": {"S": "MEMBER#"}},
        ConsistentRead=True,
    ):
        items.extend(page["Items"])
    return items
