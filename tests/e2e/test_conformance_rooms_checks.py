"""bin/conformance's rooms checks each catch their own fault: a stand-in speaking just
enough of protocol v2 (docs/protocol.md) on a plain WebSocket server passes them all, and
with one fault switched on exactly the check about it fails."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.e2e.test_conformance_suite import StandInChat, outcomes
from tools.conformance import CHECKS
from tools.conformance import main as conformance_main

ROOMS = [check.name for check in CHECKS if check.name.startswith("rooms.")]
Frame = dict[str, Any]


@dataclass
class Room:
    kind: str
    members: set[ServerConnection] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)  # identities (clientKeys)
    parties: set[str] = field(default_factory=set)  # a direct room's two identities
    history: list[Frame] = field(default_factory=list)
    seq: int = 0


class StandInRooms(StandInChat):
    """StandInChat for v1 frames, plus v2 connections and their rooms."""

    def __init__(self, fault: str | None) -> None:
        super().__init__(fault)
        self.v2: dict[ServerConnection, tuple[str, str]] = {}  # ws: (name, identity)
        self.rooms: dict[str, Room] = {"lobby": Room("public")}
        self.ids = itertools.count(1)

    def handle(self, ws: ServerConnection, name: str | None, frame: dict, frame_id: str | None):
        action = frame["action"]
        if action == "setName" and frame.get("protocol") == 2:
            for other, (held, _) in list(self.v2.items()):
                if held == frame["name"] and other is not ws:
                    self.leave_all(other)
            self.v2[ws] = (frame["name"], frame["clientKey"])
            self.send(ws, {"ack": "setName", "id": frame_id, "name": frame["name"], "protocol": 2})
            return None
        if ws not in self.v2:
            if action not in ("setName", "sendPublic", "sendPrivate", "ping", "history"):
                error = {"code": "UNKNOWN_ACTION", "message": "Valid actions: setName, …"}
                self.send(ws, {"error": {**error, "action": None, "id": frame_id}})
                return name
            return super().handle(ws, name, frame, frame_id)
        me, identity = self.v2[ws]
        getattr(self, f"on_{action.lower()}")(ws, me, identity, frame, frame_id)
        return None

    def send(self, ws: ServerConnection, frame: dict) -> None:
        with contextlib.suppress(ConnectionClosed):  # a connection gone: as a 410, skipped
            super().send(ws, frame)

    def leave_all(self, ws: ServerConnection) -> None:
        for room in self.rooms.values():
            room.members.discard(ws)
        self.v2.pop(ws, None)

    def error(self, ws: ServerConnection, code: str, frame: Frame, frame_id: str | None) -> None:
        self.send(
            ws,
            {
                "error": {"code": code, "message": code, "action": frame["action"]}
                | {"id": frame_id}
            },
        )

    def to_room(
        self, room: str, frame: Frame, sender: ServerConnection | None, frame_id: str | None
    ) -> None:
        for member in self.rooms[room].members:
            self.send(member, {**frame, "id": frame_id} if member is sender else frame)
        if room == "lobby":  # the lobby's v1 members get today's frame: no `room`
            v1 = (
                frame
                if self.fault == "room-key-to-v1"
                else {k: v for k, v in frame.items() if k != "room"}
            )
            for member in self.members.values():
                self.send(member, v1)

    def on_joinroom(self, ws, me, identity, frame, frame_id, *, kind="public"):
        name = frame["room"]
        room = self.rooms.get(name)
        if room is None and name.startswith("@"):
            self.error(ws, "ROOM_NOT_FOUND", frame, frame_id)
            return
        if room is None:
            room = self.rooms[name] = Room(kind)
            room.invited.add(identity)
        elif frame["action"] == "createRoom":
            self.error(ws, "ROOM_EXISTS", frame, frame_id)
            return
        allowed = room.kind == "public" or identity in room.invited | room.parties
        if not allowed and self.fault != "open-private":
            self.error(ws, "ROOM_NOT_FOUND", frame, frame_id)
            return
        room.members.add(ws)
        count = len(room.members)
        joined = {"joined": name, "room": name, "kind": room.kind, "count": count}
        self.send(ws, joined | {"seq": room.seq, "lastRead": 0, "id": frame_id})
        names = sorted(self.v2[m][0] for m in room.members)
        notice = {"systemMessage": f"{me} has joined {name}", "event": "join", "name": me}
        if self.fault != "no-room-in-notice":
            notice["room"] = name
        self.to_room(name, {"members": names, "room": name}, ws, None)
        if name == "lobby":
            for member in room.members:
                self.send(member, notice)
            today = {"systemMessage": f"{me} has joined the chat", "event": "join", "name": me}
            for member in self.members.values():
                self.send(member, today)
        else:
            for member in room.members:
                self.send(member, notice)

    def on_createroom(self, ws, me, identity, frame, frame_id):
        self.on_joinroom(ws, me, identity, frame, frame_id, kind="private")

    def on_invite(self, ws, me, identity, frame, frame_id):
        invitee = next(w for w, (n, _) in self.v2.items() if n == frame["to"])
        self.rooms[frame["room"]].invited.add(self.v2[invitee][1])
        self.send(ws, {"ack": "invite", "id": frame_id, "room": frame["room"], "to": frame["to"]})
        self.send(invitee, {"invited": frame["room"], "room": frame["room"], "from": me})

    def stamp(self, room: Room) -> Frame:
        room.seq += 1
        return {"ts": int(time.time() * 1000), "seq": room.seq, "prev": room.seq - 1}

    def on_sendpublic(self, ws, me, identity, frame, frame_id):
        room = self.rooms[frame["room"]]
        if ws not in room.members:
            self.error(ws, "NOT_IN_ROOM", frame, frame_id)
            return
        text = frame["message"]
        message = {
            "publicMessage": f"{me}: {text}",
            "room": frame["room"],
            "from": me,
            "text": text,
        }
        message |= self.stamp(room) | {"messageId": f"m{next(self.ids)}", "by": identity}
        room.history.append(message)
        self.to_room(frame["room"], {k: v for k, v in message.items() if k != "by"}, ws, frame_id)

    def on_sendprivate(self, ws, me, identity, frame, frame_id):
        to = next(w for w, (n, _) in self.v2.items() if n == frame["to"])
        parties = {identity, self.v2[to][1]}
        direct = "@" + hashlib.sha256("|".join(sorted(parties)).encode()).hexdigest()[:32]
        room = self.rooms.setdefault(direct, Room("direct", parties=parties))
        text = frame["message"]
        message = {"directMessage": f"{me}: {text}", "room": direct, "from": me, "to": frame["to"]}
        message |= {"text": text} | self.stamp(room) | {"messageId": f"m{next(self.ids)}"}
        if self.fault != "direct-unstored":
            room.history.append(message)
        self.send(to, message)
        ack = {"ack": "sendPrivate", "id": frame_id, "to": frame["to"], "room": direct}
        self.send(ws, ack | {k: message[k] for k in ("seq", "messageId", "ts")})

    def on_history(self, ws, me, identity, frame, frame_id):
        room = self.rooms[frame["room"]]
        entries = [
            {k: v for k, v in m.items() if k != "by"}
            for m in room.history
            if m["seq"] > frame["since"]
        ]
        reply = {"history": entries, "room": frame["room"], "final": True, "complete": True}
        self.send(ws, reply | {"id": frame_id})

    def on_editmessage(self, ws, me, identity, frame, frame_id):
        room = self.rooms[frame["room"]]
        (original,) = [m for m in room.history if m.get("messageId") == frame["messageId"]]
        if original["by"] != identity:
            self.error(ws, "NOT_YOURS", frame, frame_id)
            return
        deleting = frame["action"] == "deleteMessage"
        key = "messageDeleted" if deleting else "messageEdited"
        event = {key: frame["messageId"], "room": frame["room"], "of": original["seq"], "from": me}
        event |= {} if deleting else {"text": frame["message"]}
        event |= self.stamp(room)
        if self.fault != "edit-unstored":
            if deleting:
                original.clear()
                original.update({"messageDeleted": frame["messageId"], "of": event["of"]})
                original.update({"seq": event["of"], "by": identity})
            else:
                original.update({"text": frame["message"], "edited": True})
            room.history.append(event)
        self.to_room(frame["room"], event, None, None)
        ack = {"ack": frame["action"], "id": frame_id, "room": frame["room"]}
        self.send(ws, ack | {"seq": event["seq"], "messageId": frame["messageId"]})

    on_deletemessage = on_editmessage

    def on_typing(self, ws, me, identity, frame, frame_id):
        typing = {"typing": me, "room": frame["room"], "ts": int(time.time() * 1000)}
        room = self.rooms[frame["room"]]
        if self.fault == "typing-stored":
            room.history.append(typing | {"seq": room.seq})
        for member in room.members - {ws}:
            self.send(member, typing)


@contextmanager
def stand_in_rooms(fault: str | None) -> Iterator[str]:
    chat = StandInRooms(fault)
    with serve(chat.serve, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/dev"
        finally:
            server.shutdown()
            thread.join(5)


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        (None, None),
        ("no-room-in-notice", "rooms.join-create"),
        ("open-private", "rooms.private-invite"),
        ("direct-unstored", "rooms.direct-history"),
        ("edit-unstored", "rooms.edit-since"),
        ("typing-stored", "rooms.typing-not-stored"),
        ("room-key-to-v1", "rooms.v1-unchanged"),
    ],
)
def test_each_rooms_check_fails_on_its_own_fault_and_only_that_one(fault, failing):
    out = io.StringIO()
    with stand_in_rooms(fault) as url:
        status = conformance_main(["--url", url, "--only", ",".join(ROOMS), "--timeout", "3"], out)
    ran = outcomes(out.getvalue())
    assert ran == {name: "FAIL" if name == failing else "pass" for name in ROOMS}, out.getvalue()
    assert status == (1 if failing else 0)
