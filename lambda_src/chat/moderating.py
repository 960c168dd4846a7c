"""Moderation's requests and checks (issue 17), run by `ChatService`: the `moderate` frame's
operations, and the checks joins, names and sends make against mutes, bans and slow mode.

The rules (who may do what, what a frame asks) are `chat.moderation`; this module reads and
writes through the service's store and notifier. Every operation takes an `Actor`: a
connection's member here, the server API's `SYSTEM` later, through the same `run`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chat import events, frames, rooms
from chat.errors import ChatError, ErrorCode
from chat.frames import Frame, Stamp
from chat.moderation import (
    Actor,
    Op,
    Rank,
    Request,
    RoomAuthority,
    Scope,
    Target,
    is_stack_moderator,
    may_moderate,
    may_target,
    mute_wait_ms,
    rank_in,
    read_request,
    role_of,
)
from chat.names import claim_keys, lookup_key
from chat.ports import (
    DELETE,
    LOBBY,
    MODERATION,
    STACK_SCOPE,
    AuditEntry,
    Connection,
    EventSeq,
    Member,
    Membership,
    ModerationEvent,
    ModerationWrite,
    NotInRoomError,
    Rewrite,
    RoomChange,
    RoomMeta,
    Sanction,
)

if TYPE_CHECKING:
    from chat.service import ChatService

log = logging.getLogger("chat.moderation")

__all__ = ["actor_of", "check_join", "check_name", "check_send", "moderate", "run"]


def mute_key(identity: str) -> str:
    return f"MUTE#{identity}"


def ban_key(kind: Target, value: str) -> str:
    """A ban's key: a name by its lookup key (so its look-alikes are banned with it)."""
    return f"BAN#{kind.value}#{lookup_key(value) if kind is Target.NAME else value}"


def actor_of(chat: ChatService, member: Connection) -> Actor:
    """A connection as a moderation actor: stack moderator by its sign-in groups."""
    return Actor(
        identity=chat._sender_key(member),
        name=member.name or "",
        stack_moderator=is_stack_moderator(member.groups, chat._moderation.moderator_group),
    )


def role_in(chat: ChatService, member: Connection, meta: RoomMeta) -> str | None:
    """The member's `role` in a room for its `joined` frame (None: a plain member), from the
    META the join read already: no read of its own."""
    actor = actor_of(chat, member)
    authority = RoomAuthority(meta.creator, meta.moderators)
    return role_of(rank_in(actor.identity, stack_moderator=actor.stack_moderator, room=authority))


# --- the `moderate` frame ------------------------------------------------------------------


def moderate(
    chat: ChatService, sender: Connection | None, body: dict[str, Any], client_id: str | None
) -> None:
    """A `moderate` frame from a connection (v2): read it, then `run` it as that member."""
    named = chat._named(sender)
    settings = chat._moderation
    request = read_request(
        body,
        max_seconds=settings.moderation_max_seconds,
        slow_mode_max_seconds=settings.slow_mode_max_seconds,
    )
    run(
        chat,
        actor_of(chat, named),
        request,
        body.get("room"),
        client_id=client_id,
        actor_connection=named,
    )


@dataclass(frozen=True)
class _Context:
    chat: ChatService
    actor: Actor
    request: Request
    meta: RoomMeta | None  # None: a stack-wide ban
    authority: RoomAuthority
    client_id: str | None
    actor_connection: str | None  # where the acknowledgement goes (None: the server API)

    @property
    def scope(self) -> str:
        return self.meta.key if self.meta is not None else STACK_SCOPE

    @property
    def room_name(self) -> str:
        return self.meta.name if self.meta is not None else STACK_SCOPE


def run(
    chat: ChatService,
    actor: Actor,
    request: Request,
    raw_room: object,
    *,
    client_id: str | None = None,
    actor_connection: Connection | None = None,
) -> None:
    """Do a moderation request as `actor`. Raises ChatError(NOT_MODERATOR when the actor may
    not; INVALID_ROOM, ROOM_NOT_FOUND, UNKNOWN_RECIPIENT, UNKNOWN_MESSAGE, ...)."""
    meta: RoomMeta | None = None
    authority = RoomAuthority()
    if request.scope is Scope.ROOM:
        ref = rooms.read_room(raw_room, reserved=chat._reserved)
        if actor.stack_moderator or actor_connection is None:
            claim = () if ref.direct else rooms.room_claim_keys(ref.name)
            meta = chat._store.room_meta(ref.key, claim)
            if meta is None:
                raise chat._room_not_found()
        else:
            meta = chat._visible_room(actor_connection, ref)
        authority = RoomAuthority(meta.creator, meta.moderators)
    if not may_moderate(actor, request.op, authority, scope=request.scope):
        raise ChatError(
            ErrorCode.NOT_MODERATOR,
            "Only this room's moderators may do that."
            if request.op not in (Op.DISCONNECT,) and request.scope is Scope.ROOM
            else "Only the chat's moderators may do that.",
        )
    context = _Context(
        chat,
        actor,
        request,
        meta,
        authority,
        client_id,
        actor_connection.connection_id if actor_connection is not None else None,
    )
    _OPERATIONS[request.op](context)


# --- the operations -----------------------------------------------------------------------


def _delete(ctx: _Context) -> None:
    """Any message of the room: the tombstone event a `deleteMessage` makes, with `by`."""
    chat, meta, request = ctx.chat, _room(ctx), ctx.request
    assert request.seq is not None and request.message_id is not None
    message_id, of = request.message_id, request.seq
    now_ms = chat._now_ms()
    built: list[Frame] = []

    def build(taken: EventSeq, original: Frame) -> tuple[Frame, Frame]:
        from chat.service import _tombstone  # noqa: PLC0415 - the one tombstone, kept there

        stamp = Stamp(taken.seq, message_id, now_ms, taken.prev_event)
        author = str(original.get("from", ""))
        event = frames.message_deleted(author, of=of, stamp=stamp, room=meta.name)
        event["by"] = ctx.actor.name
        built.append(event)
        return _tombstone(original), event

    change = Rewrite(
        room=meta.key,
        of=of,
        message_id=message_id,
        by=ctx.actor.identity,
        kind=DELETE,
        window_start_ms=0,
        build=build,
        event_expires_at=int(chat._clock()) + chat._retention.history_max_age_seconds,
        any_author=True,
    )
    with chat._room_errors():
        taken = chat._store.rewrite_message(change)
    event = built[-1]
    chat._store.moderate(ModerationWrite(_audit(ctx, f"message {of}")))
    _log(ctx, f"message {of}", taken.seq)
    _tell_room(ctx, event, taken.seq)


def _kick(ctx: _Context) -> None:
    """Out of the room: the room is told, the member gets the announcement and `left`, then
    the room gets the usual leave notice. A v1 member's only room is the lobby: its
    connection is closed instead (its $disconnect tells the lobby)."""
    chat, meta = ctx.chat, _room(ctx)
    member, connection = _online(ctx)
    _check_rank(ctx, connection)
    if connection.protocol != 2 and meta.key == LOBBY:
        frame, seq = _announce(ctx, target=member.name)
        chat._notifier.close(connection.connection_id)
        _tell_room(ctx, frame, seq)
        return
    try:
        chat._store.leave_room(connection.connection_id, meta.key)
    except NotInRoomError:
        raise _not_here() from None
    frame, seq = _announce(ctx, target=member.name)
    chat._notifier.send({connection.connection_id: [frame, frames.room_left(meta.name)]})
    _tell_room(ctx, frame, seq)
    gone = chat._announce_leaves(meta.key, meta.name, [member])
    if gone:
        chat._remove_and_announce(gone)


def _disconnect(ctx: _Context) -> None:
    """Close the member's connection (DeleteConnection); its $disconnect tells its rooms."""
    chat = ctx.chat
    member, connection = _online(ctx)
    _check_rank(ctx, connection)
    frame, seq = _announce(ctx, target=member.name)
    _tell_room(ctx, frame, seq)
    chat._notifier.close(connection.connection_id)


def _mute(ctx: _Context) -> None:
    chat, meta, request = ctx.chat, _room(ctx), ctx.request
    member, connection = _online(ctx)
    _check_rank(ctx, connection)
    if chat._store.membership(connection.connection_id, meta.key) is None:
        raise _not_here()
    muting = request.op is Op.MUTE
    until = chat._now_ms() + request.seconds * 1000 if muting else 0
    sanction = Sanction(meta.key, mute_key(chat._sender_key(connection)), until)
    frame, seq = _announce(
        ctx,
        target=member.name,
        seconds=request.seconds if muting else None,
        sanction=sanction,
    )
    chat._store.set_membership(connection.connection_id, meta.key, muted_until_ms=until)
    _tell_room(ctx, frame, seq)


def _ban(ctx: _Context) -> None:
    """A name, an account or an address, from the room (its members matching it are kicked)
    or the stack (their connections are closed)."""
    chat, request = ctx.chat, ctx.request
    assert request.target is not None
    banning = request.op is Op.BAN
    present = _matching(ctx) if banning else []
    for connection in present:
        _check_rank(ctx, connection)
    until = chat._now_ms() + request.seconds * 1000 if banning else 0
    sanction = Sanction(ctx.scope, ban_key(request.target_kind, request.target), until)
    named = request.target_kind is Target.NAME
    shown_target = request.target if named else None
    audit_target = f"{request.target_kind.value}:{request.target}"
    if ctx.meta is None:  # the stack: no room to tell
        chat._store.moderate(ModerationWrite(_audit(ctx, audit_target), sanction=sanction))
        _log(ctx, audit_target, None)
        _acknowledge(ctx, None)
        for connection in present:
            chat._notifier.close(connection.connection_id)
        return
    frame, seq = _announce(
        ctx,
        target=shown_target,
        target_kind=None if named else request.target_kind.value,
        seconds=request.seconds if banning else None,
        sanction=sanction,
        audit_target=audit_target,
    )
    meta = ctx.meta
    removed: list[Member] = []
    for connection in present:
        if connection.protocol != 2 and meta.key == LOBBY:
            chat._notifier.close(connection.connection_id)
            continue
        try:
            removed.append(chat._store.leave_room(connection.connection_id, meta.key))
        except NotInRoomError:
            continue
        left = [frame, frames.room_left(meta.name)]
        chat._notifier.send({connection.connection_id: left})
    _tell_room(ctx, frame, seq)
    if removed:
        gone = chat._announce_leaves(meta.key, meta.name, removed)
        if gone:
            chat._remove_and_announce(gone)


def _slow_mode(ctx: _Context) -> None:
    """The room's slow mode, copied onto each present member's membership item (what a send
    reads); a member joining later gets it from META at the join."""
    chat, meta, seconds = ctx.chat, _room(ctx), ctx.request.seconds
    change = RoomChange(meta.key, slow_mode_seconds=seconds)
    frame, seq = _announce(ctx, seconds=seconds, room_change=change)
    for member in chat._store.list_members(meta.key):
        if member.protocol == 2:
            chat._store.set_membership(member.connection_id, meta.key, slow_mode_seconds=seconds)
    _tell_room(ctx, frame, seq)


def _topic(ctx: _Context) -> None:
    meta, topic = _room(ctx), ctx.request.topic
    change = RoomChange(meta.key, set_topic=True, topic=topic)
    frame, seq = _announce(ctx, topic=topic, room_change=change)
    _tell_room(ctx, frame, seq)


def _appoint(ctx: _Context) -> None:
    chat, meta = ctx.chat, _room(ctx)
    member, connection = _online(ctx)
    _check_rank(ctx, connection)
    identity = chat._sender_key(connection)
    if ctx.request.op is Op.APPOINT:
        change = RoomChange(meta.key, appoint=identity)
    else:
        change = RoomChange(meta.key, dismiss=identity)
    frame, seq = _announce(ctx, target=member.name, room_change=change)
    _tell_room(ctx, frame, seq)


def _announcement(ctx: _Context) -> None:
    """The system's (or a moderator's) message in the room: the announcement, kept in the
    room's history; v1 clients of the lobby get it as a plain system message too."""
    chat, meta, text = ctx.chat, _room(ctx), ctx.request.text or ""
    frame, seq = _announce(ctx, message=text, audit_target=text[:80])
    if meta.key != LOBBY:
        _tell_room(ctx, frame, seq)
        return
    roster = chat._store.list_members(meta.key)
    sender = ctx.actor_connection or ""
    mine: list[Frame] = [frame]
    if ctx.client_id is not None:
        mine.append(frames.moderate_ack(ctx.client_id, ctx.request.op.value, meta.name, seq))
    v1: list[Frame] = [{"systemMessage": text}]
    chat._deliver(roster, sender, v1, mine if sender else [], theirs_v2=[frame])


_OPERATIONS = {
    Op.DELETE: _delete,
    Op.KICK: _kick,
    Op.DISCONNECT: _disconnect,
    Op.MUTE: _mute,
    Op.UNMUTE: _mute,
    Op.BAN: _ban,
    Op.UNBAN: _ban,
    Op.SLOW_MODE: _slow_mode,
    Op.TOPIC: _topic,
    Op.APPOINT: _appoint,
    Op.DISMISS: _appoint,
    Op.ANNOUNCE: _announcement,
}


# --- what the operations share ------------------------------------------------------------


def _room(ctx: _Context) -> RoomMeta:
    assert ctx.meta is not None
    return ctx.meta


def _not_here() -> ChatError:
    return ChatError(ErrorCode.UNKNOWN_RECIPIENT, "Nobody with that name (target) is in the room.")


def _online(ctx: _Context) -> tuple[Member, Connection]:
    """The member `target` names, online. Raises ChatError(UNKNOWN_RECIPIENT)."""
    chat, target = ctx.chat, ctx.request.target
    assert target is not None
    member = chat._store.find_member(lookup_key(target))
    connection = chat._store.get_connection(member.connection_id) if member else None
    if member is None or connection is None:
        raise chat._unknown_recipient()
    return member, connection


def _rank(ctx: _Context, connection: Connection) -> Rank:
    chat = ctx.chat
    return rank_in(
        chat._sender_key(connection),
        stack_moderator=is_stack_moderator(connection.groups, chat._moderation.moderator_group),
        room=ctx.authority,
    )


def _check_rank(ctx: _Context, target: Connection) -> None:
    """The actor must outrank the target (nobody acts on themselves, nor on their equals)."""
    actor = ctx.actor
    mine = rank_in(
        actor.identity,
        stack_moderator=actor.stack_moderator,
        room=ctx.authority,
        system=actor.system,
    )
    if not may_target(mine, _rank(ctx, target)):
        raise ChatError(ErrorCode.NOT_MODERATOR, "You may not do that to this member.")


def _matching(ctx: _Context) -> list[Connection]:
    """The live connections a ban names: the member holding the name (or a look-alike),
    or an account's or an address's connections (their peer partition)."""
    chat, request = ctx.chat, ctx.request
    assert request.target is not None
    if request.target_kind is Target.NAME:
        member = chat._store.find_member(lookup_key(request.target))
        ids = [member.connection_id] if member is not None else []
    else:
        peer = ("sub#" if request.target_kind is Target.SUB else "ip#") + request.target
        ids = [held.connection_id for held in chat._store.peer_connections(peer) if held.named]
    found = [c for cid in ids if (c := chat._store.get_connection(cid)) is not None]
    if ctx.meta is None:
        return found
    key = ctx.meta.key
    return [
        c
        for c in found
        if (c.protocol != 2 and key == LOBBY) or chat._store.membership(c.connection_id, key)
    ]


def _audit(ctx: _Context, target: str) -> AuditEntry:
    chat = ctx.chat
    return AuditEntry(
        scope=ctx.scope,
        at_ms=chat._now_ms(),
        entry_id=uuid.uuid4().hex[:16],
        actor=ctx.actor.identity,
        actor_name=ctx.actor.name,
        op=ctx.request.op.value,
        target=target,
        reason=ctx.request.reason or "",
        expires_at=int(chat._clock()) + chat._moderation.audit_ttl_seconds,
    )


def _announce(
    ctx: _Context,
    *,
    target: str | None = None,
    target_kind: str | None = None,
    seconds: int | None = None,
    topic: str | None = None,
    sanction: Sanction | None = None,
    room_change: RoomChange | None = None,
    audit_target: str | None = None,
    message: str | None = None,
) -> tuple[Frame, int]:
    """Take the room's next seq and write the action (audit, sanction, room change, the
    announcement) in one transaction; the announcement and its seq."""
    chat, meta = ctx.chat, _room(ctx)
    taken = chat._store.next_event(meta.key, MODERATION)
    stamp = Stamp(taken.seq, "", chat._now_ms(), taken.prev_event)
    frame = frames.moderation(
        ctx.request.op.value,
        meta.name,
        ctx.actor.name,
        stamp,
        target=target,
        target_kind=target_kind,
        seconds=seconds,
        topic=topic,
        reason=ctx.request.reason,
        message=message,
    )
    label = audit_target or target or (topic or "") or str(seconds if seconds is not None else "")
    expires = int(chat._clock()) + chat._retention.history_max_age_seconds
    chat._store.moderate(
        ModerationWrite(
            _audit(ctx, label),
            sanction=sanction,
            room_change=room_change,
            event=ModerationEvent(meta.key, taken, frame, expires),
        )
    )
    _log(ctx, label, taken.seq)
    return frame, taken.seq


def _log(ctx: _Context, target: str, seq: int | None) -> None:
    """One structured line per action: who, what, on whom, where, why; and the same as a
    `Moderation Action` event out (docs/events.md), without an announcement's text."""
    op = ctx.request.op
    ctx.chat.event_publisher.publish(
        events.MODERATION,
        events.moderation_detail(
            op.value,
            ctx.room_name,
            ctx.actor.name,
            target=None if op is Op.ANNOUNCE else target,
            seq=seq,
            reason=ctx.request.reason,
        ),
    )
    log.info(
        "moderation",
        extra={
            "event": "moderation",
            "actor": ctx.actor.identity,
            "actorName": ctx.actor.name,
            "op": ctx.request.op.value,
            "target": target,
            "room": ctx.room_name,
            "reason": ctx.request.reason or "",
            "seq": seq,
        },
    )


def _tell_room(ctx: _Context, frame: Frame, seq: int) -> None:
    """The announcement to the room's v2 members (v1 clients get nothing new), the actor's
    acknowledgement last."""
    chat, meta = ctx.chat, _room(ctx)
    roster = chat._store.list_members(meta.key)
    sender = ctx.actor_connection or ""
    mine: list[Frame] = [frame]  # in the room or not, the moderator sees what it did
    if ctx.client_id is not None:
        mine.append(frames.moderate_ack(ctx.client_id, ctx.request.op.value, meta.name, seq))
    chat._deliver(roster, sender, [], mine if sender else [], theirs_v2=[frame])


def _acknowledge(ctx: _Context, seq: int | None) -> None:
    if ctx.actor_connection and ctx.client_id is not None:
        ack = frames.moderate_ack(ctx.client_id, ctx.request.op.value, None, seq)
        ctx.chat.notify(ctx.actor_connection, ack)


# --- the checks other requests make ---------------------------------------------------------


def _banned(until_ms: int, now_ms: int, where: str) -> ChatError:
    wait = max(1, until_ms - now_ms)
    return ChatError(ErrorCode.BANNED, f"You are banned from {where}.", retry_after_ms=wait)


def check_name(chat: ChatService, sender: Connection, name: str, protocol: int) -> None:
    """setName: a stack ban on the name (or a look-alike), the account or the address; a
    v1 connection's first name is its join of the lobby, so the lobby's bans too. One
    BatchGetItem. Raises ChatError(BANNED)."""
    scopes = [STACK_SCOPE]
    if protocol == 1 and sender.name is None:
        scopes.append(LOBBY)
    keys = _ban_keys(sender, name)
    found = chat._store.sanctions([(scope, key) for scope in scopes for key in keys])
    if found:
        (scope, _), until = max(found.items(), key=lambda item: item[1])
        raise _banned(until, chat._now_ms(), "this chat" if scope == STACK_SCOPE else LOBBY)


def _ban_keys(connection: Connection, name: str) -> list[str]:
    keys = [f"BAN#name#{key}" for key in claim_keys(name)]
    for peer in connection.peers:
        kind, _, value = peer.partition("#")
        keys.append(f"BAN#{'sub' if kind == 'sub' else 'address'}#{value}")
    return keys


def check_join(chat: ChatService, joiner: Connection, room: str) -> int:
    """joinRoom: the room's bans on the joiner (name, account, address), and its mute. One
    BatchGetItem. Raises ChatError(BANNED); returns the mute's end (0: none)."""
    assert joiner.name is not None
    mute = mute_key(chat._sender_key(joiner))
    keys = [(room, key) for key in [*_ban_keys(joiner, joiner.name), mute]]
    found = chat._store.sanctions(keys)
    muted = found.pop((room, mute), 0)
    if found:
        raise _banned(max(found.values()), chat._now_ms(), "this room")
    return muted


def after_join(chat: ChatService, joiner: Connection, meta: RoomMeta, muted_until: int) -> None:
    """Copy the room's slow mode and the joiner's mute onto its new membership item."""
    if muted_until or meta.slow_mode_seconds:
        chat._store.set_membership(
            joiner.connection_id,
            meta.key,
            muted_until_ms=muted_until or None,
            slow_mode_seconds=meta.slow_mode_seconds or None,
        )


def check_send(
    chat: ChatService, sender: Connection, membership: Membership, *, slow: bool
) -> None:
    """A message, edit or typing in a room: refused while muted (MUTED); a message under
    slow mode (SLOW_MODE) unless the sender moderates the room. Reads nothing but the
    membership item the request read already; under slow mode one conditional write."""
    room = membership.room
    now = chat._now_ms()
    wait = mute_wait_ms(membership.muted_until_ms, now)
    if wait:
        raise ChatError(ErrorCode.MUTED, "A moderator muted you in this room.", retry_after_ms=wait)
    seconds = membership.slow_mode_seconds
    if not slow or seconds <= 0:
        return
    actor = actor_of(chat, sender)
    if actor.stack_moderator:
        return
    try:
        wait = chat._store.take_slow_turn(sender.connection_id, room, now, seconds)
    except NotInRoomError:
        return
    if not wait:
        return
    meta = chat._store.room_meta(room)
    authority = RoomAuthority(meta.creator, meta.moderators) if meta else RoomAuthority()
    if rank_in(actor.identity, stack_moderator=False, room=authority) >= Rank.ROOM_MODERATOR:
        return  # moderators are exempt (read only when a turn is refused)
    raise ChatError(
        ErrorCode.SLOW_MODE,
        f"This room is in slow mode: one message every {seconds} seconds.",
        retry_after_ms=wait,
    )
