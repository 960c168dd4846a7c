"""The chat's events out: their detail-types and details (docs/events.md has the schemas).

Pure: the service builds them, the EventPublisher port (chat/events_out.py) sends them.
"""

from __future__ import annotations

from chat.ports import Member

POSTED = "Message Posted"
EDITED = "Message Edited"
DELETED = "Message Deleted"
JOINED = "Member Joined"
LEFT = "Member Left"
CONNECTED = "Connection Opened"
DISCONNECTED = "Connection Closed"
# Reserved for the moderation actions (issue 17 item 2): their detail names the action.
MODERATION = "Moderation Action"
DETAIL_TYPES = (POSTED, EDITED, DELETED, JOINED, LEFT, CONNECTED, DISCONNECTED, MODERATION)


def message_detail(room: str, name: str, message_id: str, seq: int) -> dict[str, object]:
    """A message event's detail: the room, its sender, the message's id and `seq`."""
    return {"room": room, "name": name, "messageId": message_id, "seq": seq}


def moderation_detail(
    op: str, room: str, by: str, *, target: str | None, seq: int | None, reason: str | None
) -> dict[str, object]:
    """A moderation action's detail: the op, the room (`*`: across the stack), who acted (as
    the room was told), on what (never an announcement's text), the announcement's seq."""
    detail: dict[str, object] = {"op": op, "room": room, "by": by}
    if target:
        detail["target"] = target
    if seq is not None:
        detail["seq"] = seq
    if reason:
        detail["reason"] = reason
    return detail


def member_detail(room: str, member: Member, reason: str | None = None) -> dict[str, object]:
    """A membership event's detail: the room, the member's name and connection."""
    detail: dict[str, object] = {
        "room": room,
        "name": member.name,
        "connectionId": member.connection_id,
    }
    if reason is not None:
        detail["reason"] = reason
    return detail
