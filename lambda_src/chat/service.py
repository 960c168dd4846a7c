"""The chat's rules: who may do what, and which member receives which frame.

Pure logic: it talks to storage and to the connections only through the two ports
in `chat.ports`, so it runs the same against DynamoDB + API Gateway, the local sandbox, or
in-memory fakes in tests.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from chat import events, frames, moderating, review, rooms
from chat.errors import (
    ChatError,
    ConcurrentUpdateError,
    ErrorCode,
    NameOwnedError,
    NameTakenError,
    RoomFullError,
)
from chat.frames import Frame, Stamp
from chat.names import NAME_MAX_LENGTH, claim_keys, lookup_key, validate_name
from chat.ports import (
    DIRECT,
    EDIT,
    LOBBY,
    MSG,
    PRIVATE,
    PUBLIC,
    ChatStore,
    Connection,
    EditWindowClosedError,
    EventPublisher,
    EventSeq,
    Joined,
    Member,
    Membership,
    Newcomer,
    NoEvents,
    Notifier,
    NotInRoomError,
    NotYoursError,
    Receipt,
    Rewrite,
    RoomExistsError,
    RoomLimitError,
    RoomLimits,
    RoomMeta,
    RoomNotFoundError,
    RoomRequest,
    Sent,
    TokenBucket,
    TooManyRoomsError,
    UnknownMessageError,
)
from chat.review import ReviewGate
from chat.settings import RESERVED_NAMES, Limits, Moderation, Retention, Rooms

MESSAGE_MAX_LENGTH = 2000
# A message's text in UTF-8: 2,000 characters of most scripts, 1,000 emoji.
MESSAGE_MAX_BYTES = 4000
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): one in a message
# reorders what follows it. The marks (U+200E, U+200F, U+061C) reorder nothing and stay.
BIDI_FORMATTING = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
CLIENT_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLAIM_ATTEMPTS = 5
PRUNE_ROUNDS = 5
NAME_BUCKET = "name"
MESSAGE_BUCKET = "msg"
HISTORY_BUCKET = "history"
TYPING_BUCKET = "typing"
# Buckets of an identity and of an address: rooms created (docs/security.md). An address
# may be an office or a campus behind one NAT, so its bucket holds as many rooms as this
# many creators.
ROOM_BUCKET = "room"
ROOM_CREATORS_PER_ADDRESS = 10
# Joins, leaves and creations of rooms (each a broadcast) take from the connection's rooms
# bucket: room for a reconnect to rejoin every room at once (maxRoomsPerConnection) plus two
# changes, refilled at the name bucket's pace, so a connection's sustained churn is what a
# v1 rename allows (docs/security.md).
ROOMS_BUCKET = "rooms"
ROOMS_BUCKET_ACTIONS = frozenset({"joinRoom", "leaveRoom", "createRoom"})
ROOMS_BUCKET_SPARE = 2
# The unread counts of a rooms list: at most this many rooms are counted.
UNREAD_ROOMS = 50
# The key a lobby message's stored frame keeps its v2 `prev` under, when it differs from its
# v1 `prev` (edits or deletes came between): v1 readers never see it.
PREV_EVENT = "prevEvent"
# Buckets shared by every connection of one peer (an address, or an account).
PEER_CONNECT_BUCKET = "connect"
PEER_FRAME_BUCKET = "frame"
PEER_JOIN_BUCKET = "join"
# How many unnamed connections one $connect closes at most.
UNNAMED_SWEEP = 25
# How long a resent id waits for the first send's posts to finish before its ack repeats.
DUPLICATE_WAIT_SECONDS = 10.0
DUPLICATE_POLL_SECONDS = 0.1

__all__ = [
    "MESSAGE_MAX_LENGTH",
    "NAME_MAX_LENGTH",
    "ChatService",
    "DroppedError",
    "validate_message",
    "validate_protocol",
    "validate_since",
]


class DroppedError(Exception):
    """A frame refused without an answer (a `typing` over its bucket): an error frame would
    itself be a post. The handler sends nothing."""


def validate_since(value: object, what: str = "since") -> int | None:
    """A frame's `since` (or a seq): a whole number of at least 0, None when absent.
    Raises ChatError(INVALID_ID)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ChatError(ErrorCode.INVALID_ID, f"{what} must be a whole number of at least 0.")
    return value


def validate_protocol(raw: object) -> int | None:
    """A setName's `protocol` (None when absent). Raises ChatError(UNSUPPORTED_PROTOCOL)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in frames.SUPPORTED_PROTOCOLS:
        raise ChatError(
            ErrorCode.UNSUPPORTED_PROTOCOL,
            "This server speaks protocol 1 and 2.",
            details=frames.unsupported_protocol_details(),
        )
    return raw


def lasting(identity: str) -> bool:
    """Whether an identity outlives its connection (an account, or a client's own key)."""
    return identity.startswith(("sub#", "key#"))


def validate_message(raw: object) -> str:
    """The trimmed message. Raises ChatError(INVALID_MESSAGE or MESSAGE_TOO_LONG)."""
    if not isinstance(raw, str):
        raise ChatError(ErrorCode.INVALID_MESSAGE, "A message must be a string.")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw):
        raise ChatError(ErrorCode.INVALID_MESSAGE, "A message must be valid Unicode text.")
    text = raw.strip()
    if not text:
        raise ChatError(ErrorCode.INVALID_MESSAGE, "A message must not be empty.")
    if len(text) > MESSAGE_MAX_LENGTH or len(text.encode("utf-8")) > MESSAGE_MAX_BYTES:
        raise ChatError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"A message must be at most {MESSAGE_MAX_LENGTH} characters and "
            f"{MESSAGE_MAX_BYTES} bytes of UTF-8.",
        )
    for char in text:
        if char != "\n" and unicodedata.category(char) == "Cc":
            raise ChatError(
                ErrorCode.INVALID_MESSAGE,
                "A message must not contain control characters (other than a line break).",
            )
        if ord(char) in BIDI_FORMATTING:
            raise ChatError(
                ErrorCode.INVALID_MESSAGE,
                "A message must not contain bidirectional embedding, override or isolate "
                "characters (U+202A-U+202E, U+2066-U+2069).",
            )
    return text


def validate_client_key(raw: object) -> str | None:
    """A setName's `clientKey` (None when absent). Raises ChatError(INVALID_ID)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not CLIENT_KEY.fullmatch(raw):
        raise ChatError(
            ErrorCode.INVALID_ID, "clientKey must be 16-64 characters of A-Z, a-z, 0-9, _ or -."
        )
    return raw


def peers_of(source_ip: str | None, subject: str | None) -> tuple[str, ...]:
    """The peer keys a connection's limits are counted under: its address, its account."""
    peers = []
    if source_ip:
        peers.append(f"ip#{source_ip}")
    if subject:
        peers.append(f"sub#{subject}")
    return tuple(peers)


def sender_key(connection: Connection, client_key: str | None) -> str:
    """Whose message ids these are, for de-duplication: the account with sign-in; else the
    client's own random key, which it keeps across reconnects; else only this connection.
    Never the name, which another person can take after its holder leaves."""
    if connection.subject:
        return f"sub#{connection.subject}"
    if client_key:
        return f"key#{client_key}"
    return f"conn#{connection.connection_id}"


def _for_v1(messages: Iterable[Frame]) -> list[Frame]:
    """Lobby history as v1 readers get it: today's frames (a deleted message as an ordinary
    one whose text says so), without the keys only v2 readers use."""
    out = []
    for stored in messages:
        message = stored
        if PREV_EVENT in stored or "room" in stored:
            message = {k: v for k, v in stored.items() if k not in (PREV_EVENT, "room")}
        out.append(frames.deleted_for_v1(message) if message.get("deleted") else message)
    return out


def _for_v2(message: Frame, room: str) -> Frame:
    """A stored history frame as v2 readers get it: with `room` and the v2 `prev`; a deleted
    message as its messageDeleted frame; an edit or delete event as it is."""
    if "messageEdited" in message or "messageDeleted" in message:
        return message
    frame = dict(message)
    if PREV_EVENT in frame:
        frame["prev"] = frame.pop(PREV_EVENT)
    if frame.get("deleted"):
        return frames.deleted_in_history(frame, room)
    if "room" not in frame:
        first, *rest = frame.items()
        frame = dict([first, ("room", room), *rest])
    return frame


def _duration(seconds: int) -> str:
    """A window as people say it: "15 minutes", "1 hour", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _tombstone(message: Frame) -> Frame:
    """A stored message once deleted: its text gone, `deleted` set (chat.frames reads it)."""
    key = next(k for k in ("publicMessage", "directMessage", "privateMessage") if k in message)
    frame = {k: v for k, v in message.items() if k != "edited"}
    frame.update({key: f"{frame['from']}: {frames.DELETED_TEXT}", "text": frames.DELETED_TEXT})
    frame["deleted"] = True
    return frame


@dataclass(frozen=True)
class _Private:
    """A private message's copies: the recipient's frame, the stamp its acknowledgement
    carries, the stamp and frame the direct room keeps (kept None: not kept)."""

    frame: Frame
    ack_stamp: Stamp
    receipt_stamp: Stamp
    kept: Frame | None
    room: str
    prev_event: int | None


class ChatService:
    """One room of named members. Every method is one client request."""

    def __init__(
        self,
        store: ChatStore,
        notifier: Notifier,
        *,
        connection_ttl_seconds: int,
        limits: Limits | None = None,
        retention: Retention | None = None,
        rooms: Rooms | None = None,
        moderation: Moderation | None = None,
        reserved_names: Sequence[str] = RESERVED_NAMES,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._ttl = connection_ttl_seconds
        self._limits = limits or Limits()
        self._retention = retention or Retention()
        self._rooms = rooms or Rooms()
        self._room_limits = RoomLimits(
            max_members=self._limits.max_room_size,
            max_rooms_per_connection=self._rooms.max_rooms_per_connection,
            max_rooms=self._rooms.max_rooms,
            room_ttl_seconds=self._rooms.room_ttl_seconds,
            invite_ttl_seconds=self._rooms.invite_ttl_seconds,
            read_state_ttl_seconds=self._rooms.read_state_ttl_seconds,
        )
        self._moderation = moderation or Moderation()
        self._reserved = tuple(reserved_names)
        self._clock = clock
        self._sleep = sleep

    # --- requests -------------------------------------------------------------------

    def connect(
        self,
        connection_id: str,
        connected_at_ms: int | None = None,
        bound_name: str | None = None,
        *,
        source_ip: str | None = None,
        subject: str | None = None,
        groups: Sequence[str] = (),
    ) -> None:
        """Record a new, unnamed connection (with the name sign-in bound it to, and the groups
        its token carries). Nobody is told.

        Its address (and with sign-in its account) may open only so many connections a
        second and hold only so many at once. Raises ChatError(RATE_LIMITED) otherwise:
        the handshake is refused with 429.
        """
        limits = self._limits
        peers = peers_of(source_ip, subject)
        for peer in peers:
            bucket = TokenBucket(
                limits.address_connect_burst, limits.address_connect_rate_per_second
            )
            self._take(peer, PEER_CONNECT_BUCKET, bucket, "Too many new connections")
        for peer in peers:
            cap = (
                limits.account_max_connections
                if peer.startswith("sub#")
                else limits.address_max_connections
            )
            if len(self._store.peer_connections(peer)) >= cap:
                raise ChatError(
                    ErrorCode.RATE_LIMITED,
                    f"Too many open connections from one {self._peer_kind(peer)} (at most {cap}).",
                )
        started_ms = connected_at_ms or self._now_ms()
        self._store.open_connection(
            Newcomer(
                connection_id,
                started_ms // 1000 + self._ttl,
                started_ms,
                bound_name=bound_name,
                subject=subject,
                peers=peers,
                groups=tuple(groups),
            )
        )
        self._events.publish(events.CONNECTED, {"connectionId": connection_id})

    def close_unnamed(self) -> list[str]:
        """Close connections that have stayed without a name for too long (the oldest few).

        Run on every $connect: API Gateway has no timer of its own per connection.
        """
        before = self._now_ms() - 1000 * self._limits.unnamed_timeout_seconds
        stale = self._store.stale_unnamed(before, UNNAMED_SWEEP)
        for connection_id in stale:
            self._notifier.close(connection_id)
        return stale

    def disconnect(self, connection_id: str) -> None:
        """Forget the connection; if it was a member, the others get the leave notice."""
        self._remove_and_announce([connection_id])
        self._events.publish(events.DISCONNECTED, {"connectionId": connection_id})

    def admit(self, connection_id: str, action: object) -> Connection | None:
        """Take a token for one frame; the sender as the store knows it (None: unknown).

        setName draws on its own, stricter bucket because a rename is a broadcast, history
        on another because a reply is big; every other frame on the message bucket. Then
        the frame takes a token from its address's (and account's) shared bucket, and a
        join one from their join bucket. Raises ChatError(RATE_LIMITED) for a frame over a
        limit; a connection that keeps sending over its own limit is closed.
        """
        limits = self._limits
        if action == "setName":
            bucket = NAME_BUCKET
            limit = TokenBucket(limits.name_burst, limits.name_rate_per_second)
        elif isinstance(action, str) and action in ROOMS_BUCKET_ACTIONS:
            bucket = ROOMS_BUCKET
            capacity = self._rooms.max_rooms_per_connection + ROOMS_BUCKET_SPARE
            limit = TokenBucket(capacity, limits.name_rate_per_second)
        elif action == "typing":  # one a typing interval, dropped silently over it
            bucket = TYPING_BUCKET
            limit = TokenBucket(1, 1 / self._rooms.typing_interval_seconds)
        elif action == "history":
            bucket = HISTORY_BUCKET
            limit = TokenBucket(limits.history_burst, limits.history_rate_per_second)
        else:
            bucket = MESSAGE_BUCKET
            limit = TokenBucket(limits.message_burst, limits.message_rate_per_second)
        admission = self._store.admit(connection_id, bucket, limit)
        if not admission.allowed:
            if admission.strikes >= limits.rate_limit_strikes:
                self._notifier.close(connection_id)
            refused = admission.connection
            if bucket == TYPING_BUCKET and refused is not None and refused.protocol == 2:
                raise DroppedError(action)  # an error frame would itself be a post
            raise self._rate_limited("Too many messages", admission.retry_after_ms)
        sender = admission.connection
        if sender is None:
            return None
        frames_limit = TokenBucket(limits.address_frame_burst, limits.address_frame_rate_per_second)
        for peer in sender.peers:
            self._take(peer, PEER_FRAME_BUCKET, frames_limit, "Too many messages")
        if action == "setName" and sender.name is None:
            joins = TokenBucket(limits.address_join_burst, limits.address_join_rate_per_second)
            for peer in sender.peers:
                self._take(peer, PEER_JOIN_BUCKET, joins, "Too many people joining")
        return sender

    def _take(self, peer: str, bucket: str, limit: TokenBucket, what: str) -> None:
        admission = self._store.take(peer, bucket, limit)
        if not admission.allowed:
            raise self._rate_limited(
                f"{what} from your {self._peer_kind(peer)}", admission.retry_after_ms
            )

    @staticmethod
    def _peer_kind(peer: str) -> str:
        return "account" if peer.startswith("sub#") else "network address"

    @staticmethod
    def _rate_limited(what: str, retry_after_ms: int) -> ChatError:
        return ChatError(
            ErrorCode.RATE_LIMITED,
            f"{what}: wait {retry_after_ms} ms before sending again.",
            retry_after_ms=retry_after_ms,
        )

    def set_name(
        self,
        sender: Connection | None,
        raw_name: object,
        client_id: str | None = None,
        since: int | None = None,
        client_key: str | None = None,
        *,
        protocol: int | None = None,
    ) -> None:
        """Claim a name (first time: join) or change it (rename).

        A first name with `protocol` 2 makes a v2 connection, which joins no room (it
        sends joinRoom); without it, or with 1, the connection is v1 and joins the lobby.
        A rename keeps the protocol and is told to every room the connection is in.

        A joiner gets the room's history after the member list (the messages after
        `since`, when it says what it saw before a reconnect); with a `client_id` it is
        acknowledged once everyone else has been told. A joiner's `client_key` (or its
        account, with sign-in) is whose message ids it sends. Raises ChatError(INVALID_NAME,
        NAME_TAKEN, ROOM_FULL, NOT_CONNECTED). Setting one's current name changes
        nothing. A connection bound to a name by sign-in may only take that name, and a
        name, once an account took it, is that account's.
        """
        if sender is None:
            raise self._not_connected()
        name = validate_name(raw_name, reserved=self._reserved)
        if sender.bound_name is not None and name != sender.bound_name:
            raise ChatError(ErrorCode.INVALID_NAME, f'You are signed in as "{sender.bound_name}".')
        wanted = (protocol or 1) if sender.name is None else sender.protocol
        if sender.name != name:
            moderating.check_name(self, sender, name, wanted)
        current = self._claim(sender, name, client_key, wanted)

        def acknowledgement() -> list[Frame]:
            if client_id is None:
                return []
            if protocol is None:
                return [frames.ack("setName", client_id, name=name)]
            return [frames.protocol_ack(client_id, name, wanted)]

        if current is None:  # it holds that name already
            for frame in acknowledgement():
                self.notify(sender.connection_id, frame)
            return
        if wanted == 2:
            self._set_name_v2(current, name, acknowledgement())
            return

        me = Member(current.connection_id, name)
        roster = self._store.list_members()
        if all(m.connection_id != me.connection_id for m in roster):
            # Its $disconnect ran since the claim: nobody is told about a gone member.
            raise self._not_connected()
        if current.name is None:
            notice = frames.joined(name)
            notice_v2 = frames.room_notice_joined(name, LOBBY, notice["eventId"])
        else:
            notice = frames.renamed(current.name, name)
            notice_v2 = frames.room_notice_renamed(current.name, name, LOBBY, notice["eventId"])
        names = [m.name for m in roster]
        if self._small(roster):
            member_list = [frames.members(names)]
            theirs = [*member_list, notice]
            theirs_v2 = [frames.room_members(names, LOBBY, member_list[0]["eventId"]), notice_v2]
        else:  # a big room: the others apply the notice to the list they have
            member_list = frames.member_pages(names)
            theirs = [notice]
            joined, left = ([name], []) if current.name is None else ([name], [current.name])
            theirs_v2 = [frames.presence(LOBBY, len(roster), joined, left), notice_v2]
        mine = list(member_list)
        if current.name is None:  # a join: the history (after `since`, on a reconnect)
            mine += self._history_frames(since, None)
        mine.append(notice)
        mine += acknowledgement()
        self._publish_lobby_join(current, name)
        self._deliver(roster, me.connection_id, theirs, mine, theirs_v2=theirs_v2)

    def _set_name_v2(self, before: Connection, name: str, acknowledgement: list[Frame]) -> None:
        """A v2 connection's name is set: a join is only acknowledged (it is in no room yet);
        a rename is told in every room it is in, the sender's own copies last."""
        cid = before.connection_id
        if before.name is None:
            if self._store.get_connection(cid) is None:
                raise self._not_connected()
            if acknowledgement:
                self._notifier.send({cid: acknowledgement})
            return
        memberships = self._store.memberships(cid)
        for index, membership in enumerate(memberships):
            roster = self._store.list_members(membership.room)
            room = membership.room_name or membership.room
            notice = frames.renamed(before.name, name)
            notice_v2 = frames.room_notice_renamed(before.name, name, room, notice["eventId"])
            if self._small(roster):
                names = [m.name for m in roster]
                listed = frames.room_members(names, room)
                v1_list = frames.members(names, listed["eventId"])
                theirs_v2, theirs = [listed, notice_v2], [v1_list, notice]
            else:
                presence = frames.presence(room, len(roster), [name], [before.name])
                theirs_v2, theirs = [presence, notice_v2], [notice]
            mine = list(theirs_v2)
            if index == len(memberships) - 1:
                mine += acknowledgement
            self._deliver(roster, cid, theirs, mine, theirs_v2=theirs_v2)
        if not memberships and acknowledgement:
            self._notifier.send({cid: acknowledgement})

    def _claim(
        self, sender: Connection, name: str, client_key: str | None, protocol: int = 1
    ) -> Connection | None:
        """Give the sender the name; the connection as it was before (None: it had that name).

        Raises ChatError(NAME_TAKEN, ROOM_FULL, NOT_CONNECTED, INTERNAL).
        """
        keys = claim_keys(name)
        current: Connection | None = sender
        for _ in range(CLAIM_ATTEMPTS):
            if current is None:  # removed by $disconnect meanwhile: never bring it back
                raise self._not_connected()
            if current.name == name:
                return None
            if current.name is None:
                self._check_address_members(current)
            try:
                self._store.claim_name(
                    current,
                    name,
                    keys,
                    max_members=self._limits.max_room_size,
                    sender_key=sender_key(current, client_key) if current.name is None else None,
                    owner=current.subject,
                    protocol=protocol,
                )
                return current
            except NameTakenError as taken:
                if taken.holder_connection_id == current.connection_id or not (
                    self._notifier.is_gone(taken.holder_connection_id)
                ):
                    # The holder's name passed validate_name; the client's own text is never echoed.
                    raise ChatError(
                        ErrorCode.NAME_TAKEN, f'The name "{taken.holder_name}" is already taken.'
                    ) from None
                # The holder's socket is gone but its $disconnect never came: reclaim.
                self._remove_and_announce([taken.holder_connection_id])
                self._store.release_claim(taken.key, taken.holder_connection_id)
            except NameOwnedError:
                raise ChatError(
                    ErrorCode.NAME_TAKEN,
                    "That name, or one that looks like it, is another account's.",
                ) from None
            except RoomFullError:
                raise ChatError(
                    ErrorCode.ROOM_FULL,
                    f"The chat is full ({self._limits.max_room_size} people); try again later.",
                ) from None
            except ConcurrentUpdateError:
                pass
            current = self._store.get_connection(current.connection_id)
        raise ChatError(ErrorCode.INTERNAL, "The name could not be set; please try again.")

    def _check_address_members(self, joiner: Connection) -> None:
        """Refuse a join when the joiner's address already has its share of the room."""
        cap = self._limits.address_max_members
        for peer in joiner.peers:
            if not peer.startswith("ip#"):
                continue
            named = sum(
                1
                for held in self._store.peer_connections(peer)
                if held.named and held.connection_id != joiner.connection_id
            )
            if named >= cap:
                raise ChatError(
                    ErrorCode.ROOM_FULL,
                    f"{cap} people from your network address are in the chat already; "
                    "try again later.",
                )

    def send_public(
        self,
        sender: Connection | None,
        raw_message: object,
        client_id: str | None = None,
        raw_room: object = None,
    ) -> None:
        """Send a message to every member, the sender's own copy last (its acknowledgement).

        The sender's name is checked before the room is read. A `client_id` this sender
        already used within the de-duplication window is not delivered again: the sender
        gets its acknowledgement again. Raises ChatError(NAME_REQUIRED, INVALID_MESSAGE,
        MESSAGE_TOO_LONG). A v2 sender names the room (`room`): INVALID_ROOM,
        ROOM_NOT_FOUND, NOT_IN_ROOM too.
        """
        if sender is not None and sender.protocol == 2:
            self._send_in_room(sender, raw_room, raw_message, client_id)
            return
        if sender is None or sender.name is None:
            raise self._name_required()
        text = validate_message(raw_message)
        if self._repeat_ack_if_sent_before(sender, client_id):
            return
        text = self._reviewed(sender, LOBBY, text, client_id)
        taken = self._store.next_event(LOBBY, MSG)
        stamp = self._stamp(sender, client_id, taken.seq, taken.prev_public)
        frame = frames.public_message(sender.name, text, stamp)
        mine = frames.with_id(frame, client_id)
        stored = self._lobby_stored(frame, taken)
        receipt = self._receipt(sender, client_id, stamp, mine, stored, prev_event=taken.prev_event)
        earlier = self._store.record_message(receipt)
        if earlier is not None and client_id is not None:  # the same id, racing
            self._repeat_ack(sender, client_id, earlier)
            return
        roster = self._store.list_members()
        done = self._mark_delivered_later(sender, client_id)
        v2_stamp = Stamp(stamp.seq, stamp.message_id, stamp.ts, taken.prev_event)
        theirs_v2 = [frames.room_message(sender.name, text, v2_stamp, LOBBY)]
        self._publish_posted(sender, LOBBY, LOBBY, stamp, text)
        self._deliver(
            roster, sender.connection_id, [frame], [mine], after=done, theirs_v2=theirs_v2
        )

    @staticmethod
    def _lobby_stored(frame: Frame, taken: EventSeq) -> Frame:
        """A lobby message as its history keeps it: the v1 frame, and its v2 `prev` when
        that differs (decision 9: two chains in the lobby)."""
        if taken.prev_event == taken.prev_public:
            return frame
        return {**frame, PREV_EVENT: taken.prev_event}

    def send_private(
        self,
        sender: Connection | None,
        raw_to: object,
        raw_message: object,
        client_id: str | None = None,
    ) -> None:
        """Send a message to one member, matched by the same key that makes names unique.

        With a `client_id`, the sender is acknowledged after the post, and a resent id is
        not delivered again. Raises ChatError(NAME_REQUIRED, UNKNOWN_RECIPIENT,
        INVALID_MESSAGE, MESSAGE_TOO_LONG).
        """
        if sender is None or sender.name is None:
            raise self._name_required()
        text = validate_message(raw_message)
        if not isinstance(raw_to, str) or not raw_to.strip():
            raise ChatError(ErrorCode.UNKNOWN_RECIPIENT, "Say who the message is for (to).")
        recipient_name = raw_to.strip()
        if len(recipient_name) > NAME_MAX_LENGTH or any(
            0xD800 <= ord(ch) <= 0xDFFF for ch in recipient_name
        ):
            raise self._unknown_recipient()
        if self._repeat_ack_if_sent_before(sender, client_id):
            return
        recipient = self._store.find_member(lookup_key(recipient_name))
        if recipient is None:
            raise self._unknown_recipient()
        private = self._private_copies(sender, recipient, text, client_id)
        stamp = private.ack_stamp
        acknowledgement = None
        if client_id is not None:
            room_id = {"room": private.room} if private.kept and sender.protocol == 2 else {}
            acknowledgement = frames.ack(
                "sendPrivate",
                client_id,
                seq=stamp.seq,
                messageId=stamp.message_id,
                to=recipient.name,
                ts=stamp.ts,
                **room_id,
            )
        receipt = None
        if client_id is not None or private.kept is not None:
            receipt = self._receipt(
                sender,
                client_id,
                private.receipt_stamp,
                acknowledgement or {},
                private.kept,
                room=private.room,
                prev_event=private.prev_event,
            )
            earlier = self._store.record_message(receipt)
            if earlier is not None and client_id is not None:
                self._repeat_ack(sender, client_id, earlier)
                return
        report = self._notifier.send({recipient.connection_id: [private.frame]})
        if recipient.connection_id in report.gone and receipt is not None:
            # Refused, so nothing of it stays: a resend with this id is a first send again.
            tombstone = None if private.kept is None else _tombstone(private.kept)
            self._store.withdraw_message(receipt, tombstone)
        if report.gone:
            self._remove_and_announce(report.gone)
        if recipient.connection_id in report.gone:
            raise self._unknown_recipient()
        if client_id is not None:
            self._store.mark_delivered(self._sender_key(sender), client_id)
        if acknowledgement is not None:
            self.notify(sender.connection_id, acknowledgement)

    def _private_copies(
        self, sender: Connection, recipient: Member, text: str, client_id: str | None
    ) -> _Private:
        """A private message's frames: kept in the two identities' direct room when both
        last (a v2 recipient gets it as a directMessage, with the room's seq); else, and for
        v1 frames, today's privateMessage with a lobby seq."""
        assert sender.name is not None
        direct = self._direct_room(sender, recipient)
        if direct is None:
            seq, _ = self._store.next_seq(public=False)
            stamp = self._stamp(sender, client_id, seq, 0)
            frame = frames.private_message(sender.name, recipient.name, text, stamp)
            return _Private(frame, stamp, stamp, None, LOBBY, None)
        room, recipient_protocol = direct
        taken = self._store.next_event(room.key, MSG)
        stamp = self._stamp(sender, client_id, taken.seq, taken.prev_event)
        kept = frames.direct_message(sender.name, recipient.name, text, stamp, room.key)
        receipt_stamp = Stamp(stamp.seq, stamp.message_id, stamp.ts, taken.prev_public)
        frame, ack_stamp = kept, stamp
        if recipient_protocol != 2 or sender.protocol != 2:  # a lobby seq for v1 frames
            lobby_seq, _ = self._store.next_seq(public=False)
            lobby = Stamp(lobby_seq, stamp.message_id, stamp.ts)
            if recipient_protocol != 2:
                frame = frames.private_message(sender.name, recipient.name, text, lobby)
            if sender.protocol != 2:
                ack_stamp = lobby
        return _Private(frame, ack_stamp, receipt_stamp, kept, room.key, taken.prev_event)

    def history(
        self,
        sender: Connection | None,
        since: object,
        client_id: str | None = None,
        raw_room: object = None,
    ) -> None:
        """Send the public messages after `since` (or the recent ones) to the sender; a v2
        sender names the room, and gets its edit and delete events too.

        Raises ChatError(NAME_REQUIRED, INVALID_ID; v2: INVALID_ROOM, ROOM_NOT_FOUND,
        NOT_IN_ROOM).
        """
        if sender is not None and sender.protocol == 2:
            ref = rooms.read_room(raw_room, reserved=self._reserved)
            named = self._named(sender)
            membership = self._member_of(named, ref)
            after = validate_since(since)
            room_name = membership.room_name or membership.room
            self._notifier.send(
                {
                    named.connection_id: self._room_history(
                        membership.room, room_name, after, client_id
                    )
                }
            )
            return
        after = validate_since(since)
        if sender is None or sender.name is None:
            raise self._name_required()
        limit = self._retention.history_count
        messages, complete = (
            self._store.history(after, limit, self._retention.history_max_bytes)
            if limit
            else ([], False)
        )
        answer = frames.history(_for_v1(messages), complete=complete, client_id=client_id)
        self._notifier.send({sender.connection_id: answer})

    def acknowledge(self, connection_id: str, action: str, client_id: str | None) -> None:
        """Acknowledge a frame that needs nothing else (a keep-alive ping with an id)."""
        if client_id is not None:
            self.notify(connection_id, frames.ack(action, client_id))

    def notify(self, connection_id: str, frame: Frame) -> None:
        """Send one frame to one connection (an error reply); a gone connection is ignored."""
        self._notifier.send({connection_id: [frame]})

    def moderate(
        self, sender: Connection | None, body: Mapping[str, object], client_id: str | None = None
    ) -> None:
        """A `moderate` frame (protocol v2; chat.moderating, chat.moderation). Raises
        ChatError(NAME_REQUIRED, INVALID_MODERATION, NOT_MODERATOR, INVALID_ROOM,
        ROOM_NOT_FOUND, UNKNOWN_RECIPIENT, UNKNOWN_MESSAGE, INVALID_ID)."""
        moderating.moderate(self, sender, dict(body), client_id)

    # --- rooms (protocol v2, docs/rooms-design.md §3) -------------------------------------

    def join_room(
        self,
        sender: Connection | None,
        raw_room: object,
        client_id: str | None = None,
        raw_since: object = None,
    ) -> None:
        """Join a room, making a public one when no room has the name: `joined` first, then
        the member list, the history after `since` (else after the last-read seq), the join
        notice. Raises ChatError(INVALID_ROOM, NAME_REQUIRED, ROOM_NOT_FOUND, ROOM_FULL,
        TOO_MANY_ROOMS, ROOM_LIMIT, INVALID_ID)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        since = validate_since(raw_since)
        kind = DIRECT if ref.direct else PUBLIC
        request = RoomRequest(
            ref.key, ref.name, () if ref.direct else rooms.room_claim_keys(ref.name), kind
        )
        found = None if ref.direct else self._store.room_meta(ref.key, request.claim_keys)
        if not ref.direct and found is None:
            self._take_room_token(named)
        muted = moderating.check_join(self, named, found.key if found else ref.key)
        with self._room_errors():
            joined = self._store.join_room(
                named,
                request,
                identity=self._sender_key(named),
                groups=frozenset(named.groups),
                limits=self._room_limits,
            )
        moderating.after_join(self, named, joined.room, muted)
        self._welcome(named, joined, since, client_id)

    def create_room(
        self,
        sender: Connection | None,
        raw_room: object,
        raw_kind: object = None,
        raw_group: object = None,
        client_id: str | None = None,
    ) -> None:
        """Make a room (private unless `kind` says public; a private one may name the sign-in
        `group` that admits) and join it. Raises ChatError(INVALID_ROOM, NAME_REQUIRED,
        ROOM_EXISTS, ROOM_LIMIT, TOO_MANY_ROOMS)."""
        if rooms.is_direct_id(raw_room):
            raise ChatError(
                ErrorCode.INVALID_ROOM, "A direct room is opened by a message, not created."
            )
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        kind = rooms.creatable_kind(raw_kind)
        group = rooms.validate_group(raw_group)
        named = self._named(sender)
        if group is not None and (named.subject is None or kind is not rooms.RoomKind.PRIVATE):
            raise ChatError(
                ErrorCode.INVALID_ROOM, "Only a private room, with sign-in, names a group."
            )
        if rooms.is_lobby(ref.name):
            raise self._room_exists()
        request = RoomRequest(
            ref.key, ref.name, rooms.room_claim_keys(ref.name), kind.value, group=group
        )
        if self._store.room_meta(ref.key, request.claim_keys) is not None:
            raise self._room_exists()
        self._take_room_token(named)
        with self._room_errors():
            joined = self._store.create_room(
                named, request, identity=self._sender_key(named), limits=self._room_limits
            )
        self._welcome(named, joined, None, client_id)

    def _welcome(
        self, member: Connection, joined: Joined, since: int | None, client_id: str | None
    ) -> None:
        """A join's frames: `joined` to the joiner, the list, its history and the notice to
        all (nothing to the others when it was a member already)."""
        meta = joined.room
        room = meta.name
        roster = self._store.list_members(meta.key)
        names = [m.name for m in roster]
        assert member.name is not None
        ack = frames.room_joined(
            room,
            meta.kind,
            count=len(roster),
            seq=joined.last_event,
            last_read=joined.last_read,
            client_id=client_id,
            topic=meta.topic,
            role=moderating.role_in(self, member, meta),
            group=meta.group,
        )
        notice_v2 = frames.room_notice_joined(member.name, room)
        notice = frames.joined(member.name, notice_v2["eventId"])
        if self._small(roster):
            listed = frames.room_members(names, room)
            member_list = [listed]
            theirs = [frames.members(names, listed["eventId"]), notice]
            theirs_v2 = [listed, notice_v2]
        else:
            member_list = frames.room_member_pages(names, room)
            theirs = [notice]
            theirs_v2 = [frames.presence(room, len(roster), [member.name]), notice_v2]
        after = since
        if since is None and joined.last_read < joined.last_event:
            after = joined.last_read  # the unread ones; with none unread, the recent ones
        mine = [ack, *member_list, *self._room_history(meta.key, room, after, None)]
        if joined.already_member:
            self._notifier.send({member.connection_id: mine})
            return
        mine.append(notice_v2)
        self._publish_member(events.JOINED, member, meta.key, room)
        self._deliver(roster, member.connection_id, theirs, mine, theirs_v2=theirs_v2)

    def leave_room(
        self, sender: Connection | None, raw_room: object, client_id: str | None = None
    ) -> None:
        """Leave a room; its other members get the leave notice. Raises ChatError(INVALID_ROOM,
        NAME_REQUIRED, ROOM_NOT_FOUND, NOT_IN_ROOM)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        membership = self._member_of(named, ref)
        with self._room_errors():
            self._store.leave_room(named.connection_id, membership.room)
        room = membership.room_name or membership.room
        self._publish_member(events.LEFT, named, membership.room, room)
        self._notifier.send({named.connection_id: [frames.room_left(room, client_id)]})
        gone = self._announce_leaves(
            membership.room, room, [Member(named.connection_id, named.name or "")]
        )
        if gone:
            self._remove_and_announce(gone)

    def _send_in_room(
        self,
        sender: Connection,
        raw_room: object,
        raw_message: object,
        client_id: str | None,
    ) -> None:
        """A v2 sendPublic: to the room's members (v1 ones of the lobby get today's frame)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        membership = self._member_of(named, ref)
        text = validate_message(raw_message)
        if self._repeat_ack_if_sent_before(named, client_id):
            return
        assert named.name is not None
        key, room = membership.room, membership.room_name or membership.room
        moderating.check_send(self, named, membership, slow=True)
        text = text if rooms.is_direct_id(key) else self._reviewed(named, room, text, client_id)
        other = None
        if rooms.is_direct_id(key):  # a direct room's messages are directMessage frames
            meta = self._store.room_meta(key)
            other = self._other_party(meta, self._sender_key(named)) if meta else None
        taken = self._store.next_event(key, MSG)
        stamp = self._stamp(named, client_id, taken.seq, taken.prev_event)
        if other is not None:
            frame = frames.direct_message(named.name, other, text, stamp, room)
        else:
            frame = frames.room_message(named.name, text, stamp, room)
        v1_stamp = Stamp(stamp.seq, stamp.message_id, stamp.ts, taken.prev_public)
        v1_frame = frames.public_message(named.name, text, v1_stamp)
        stored = self._lobby_stored(v1_frame, taken) if key == LOBBY else frame
        mine = frames.with_id(frame, client_id)
        receipt = self._receipt(
            named,
            client_id,
            v1_stamp,
            mine,
            stored,
            room=key,
            prev_event=taken.prev_event,
            editable=True,
        )
        earlier = self._store.record_message(receipt)
        if earlier is not None and client_id is not None:
            self._repeat_ack(named, client_id, earlier)
            return
        roster = self._store.list_members(key)
        done = self._mark_delivered_later(named, client_id)
        self._publish_posted(named, key, room, stamp, text)
        self._deliver(
            roster, named.connection_id, [v1_frame], [mine], after=done, theirs_v2=[frame]
        )

    def typing(self, sender: Connection | None, raw_room: object) -> None:
        """Tell the room's other v2 members the sender is typing (never stored nor
        acknowledged; the admission dropped one over the typing bucket)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        membership = self._member_of(named, ref)
        moderating.check_send(self, named, membership, slow=False)
        assert named.name is not None
        frame = frames.typing(named.name, membership.room_name or membership.room, self._now_ms())
        roster = self._store.list_members(membership.room)
        self._deliver(roster, named.connection_id, [], [], theirs_v2=[frame])

    def change_message(
        self,
        sender: Connection | None,
        *,
        action: str,
        raw_room: object,
        raw_message_id: object,
        raw_seq: object,
        raw_text: object = None,
        client_id: str | None = None,
    ) -> None:
        """editMessage (`action` EDIT) or deleteMessage (DELETE) of one's own message within
        the edit window: an event with its own seq to the room's v2 members, the message
        rewritten in the history. Raises ChatError(INVALID_ROOM, NAME_REQUIRED,
        ROOM_NOT_FOUND, NOT_IN_ROOM, INVALID_ID, INVALID_MESSAGE, MESSAGE_TOO_LONG,
        UNKNOWN_MESSAGE, NOT_YOURS, EDIT_WINDOW_CLOSED)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        membership = self._member_of(named, ref)
        seq = validate_since(raw_seq, "seq")
        if seq is None:
            raise ChatError(ErrorCode.INVALID_ID, "seq must be a whole number of at least 0.")
        if not isinstance(raw_message_id, str) or not 1 <= len(raw_message_id) <= 64:
            raise self._unknown_message()
        text = validate_message(raw_text) if action == EDIT else ""
        if action == EDIT:
            moderating.check_send(self, named, membership, slow=False)
        assert named.name is not None
        author = named.name
        room = membership.room_name or membership.room
        now_ms = self._now_ms()
        # The event stored in the history is the one sent live (its eventId included), so a
        # client recovering with `since` recognises it; the store builds it under its seq.
        built: list[Frame] = []

        def build(taken: EventSeq, original: Frame) -> tuple[Frame, Frame]:
            stamp = Stamp(taken.seq, raw_message_id, now_ms, taken.prev_event)
            if action == EDIT:
                event = frames.message_edited(author, text, of=seq, stamp=stamp, room=room)
                version = frames.edited_version(original, text)
            else:
                event = frames.message_deleted(author, of=seq, stamp=stamp, room=room)
                version = _tombstone(original)
            built.append(event)
            return version, event

        change = Rewrite(
            room=membership.room,
            of=seq,
            message_id=raw_message_id,
            by=self._sender_key(named),
            kind=action,
            window_start_ms=now_ms - self._rooms.edit_window_seconds * 1000,
            build=build,
            event_expires_at=int(self._clock()) + self._retention.history_max_age_seconds,
        )
        with self._room_errors():
            taken = self._store.rewrite_message(change)
        event = built[-1]  # the store built it once per attempt; the last one was written
        self._publish_changed(
            action, named, membership.room, room, (raw_message_id, seq), text=text
        )
        reply = frames.edit_ack if action == EDIT else frames.delete_ack
        mine = [event]
        if client_id is not None:
            mine.append(reply(client_id, room, taken.seq, raw_message_id))
        roster = self._store.list_members(membership.room)
        self._deliver(roster, named.connection_id, [], mine, theirs_v2=[event])

    def mark_read(
        self,
        sender: Connection | None,
        raw_room: object,
        raw_seq: object,
        client_id: str | None = None,
    ) -> None:
        """Record the last seq the sender's identity has read in a room (never moves back).
        Raises ChatError(INVALID_ROOM, NAME_REQUIRED, ROOM_NOT_FOUND, INVALID_ID)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        meta = self._visible_room(named, ref)
        seq = validate_since(raw_seq, "seq")
        if seq is None:
            raise ChatError(ErrorCode.INVALID_ID, "seq must be a whole number of at least 0.")
        state = self._store.mark_read(self._sender_key(named), meta, seq, limits=self._room_limits)
        if client_id is not None:
            self.notify(named.connection_id, frames.mark_read_ack(client_id, meta.name, state.seq))

    def list_rooms(self, sender: Connection | None, client_id: str | None = None) -> None:
        """The public rooms, the sender's rooms with unread counts, its invitations.
        Raises ChatError(NAME_REQUIRED)."""
        named = self._named(sender)
        identity = self._sender_key(named)
        limit = self._rooms.rooms_list_limit
        registry, complete = self._store.public_rooms(limit)
        public = [frames.ListedRoom(r.name, r.kind, r.topic) for r in registry if r.kind == PUBLIC]
        if all(r.room != LOBBY for r in registry):
            public.insert(0, frames.ListedRoom(LOBBY, PUBLIC))
        states = self._store.read_states(identity, limit)
        complete = complete and len(states) < limit
        mine = []
        for index, state in enumerate(states):
            unread = self._store.unread(state.room, state.seq) if index < UNREAD_ROOMS else 0
            with_name = None
            if state.kind == DIRECT:
                meta = self._store.room_meta(state.room)
                with_name = self._other_party(meta, identity) if meta is not None else None
            mine.append(
                frames.MyRoom(
                    state.room_name or state.room, state.kind, state.seq, unread, with_name
                )
            )
        grants = self._store.invites(identity, limit)
        complete = complete and len(grants) < limit
        invitations = [frames.Invitation(g.room_name, g.sender) for g in grants if g.sender]
        answer = frames.rooms_list(
            public, mine, invitations, complete=complete, client_id=client_id
        )
        self._notifier.send({named.connection_id: answer})

    def invite(
        self,
        sender: Connection | None,
        raw_room: object,
        raw_to: object,
        client_id: str | None = None,
    ) -> None:
        """Grant a room to someone online on a v2 connection with a lasting identity; they
        get `invited`. Raises ChatError(INVALID_ROOM, NAME_REQUIRED, ROOM_NOT_FOUND,
        NOT_IN_ROOM, UNKNOWN_RECIPIENT)."""
        ref = rooms.read_room(raw_room, reserved=self._reserved)
        named = self._named(sender)
        membership = self._member_of(named, ref)
        if ref.direct:
            raise ChatError(ErrorCode.INVALID_ROOM, "A direct room is for its two people only.")
        if not isinstance(raw_to, str) or not raw_to.strip() or len(raw_to) > 4 * NAME_MAX_LENGTH:
            raise self._unknown_recipient()
        to = raw_to.strip()
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in to):
            raise self._unknown_recipient()
        recipient = self._store.find_member(lookup_key(to))
        invitee = (
            self._store.get_connection(recipient.connection_id) if recipient is not None else None
        )
        if (
            recipient is None
            or invitee is None
            or invitee.protocol != 2
            or not lasting(self._sender_key(invitee))
        ):
            raise self._unknown_recipient()
        meta = self._store.room_meta(membership.room)
        if meta is None:
            raise self._room_not_found()
        assert named.name is not None
        self._store.put_invite(
            self._sender_key(invitee), meta, named.name, limits=self._room_limits
        )
        report = self._notifier.send(
            {recipient.connection_id: [frames.invited(meta.name, named.name)]}
        )
        if report.gone:
            self._remove_and_announce(report.gone)
        if client_id is not None:
            self.notify(
                named.connection_id, frames.invite_ack(client_id, meta.name, recipient.name)
            )

    # --- rooms: what the requests share ------------------------------------------------------

    def _named(self, sender: Connection | None) -> Connection:
        if sender is None or sender.name is None:
            raise self._name_required()
        return sender

    def _member_of(self, sender: Connection, ref: rooms.RoomRef) -> Membership:
        """The sender's membership of the room `ref` names (or of its look-alike's). Raises
        ChatError(NOT_IN_ROOM; ROOM_NOT_FOUND for a room it may not see or that is not)."""
        membership = self._store.membership(sender.connection_id, ref.key)
        if membership is not None:
            return membership
        meta = self._visible_room(sender, ref)
        if meta.key != ref.key:
            membership = self._store.membership(sender.connection_id, meta.key)
            if membership is not None:
                return membership
        raise ChatError(ErrorCode.NOT_IN_ROOM, "Join the room before sending to it.")

    def _visible_room(self, sender: Connection, ref: rooms.RoomRef) -> RoomMeta:
        """The room `ref` names, when the sender may see it. Raises ChatError(ROOM_NOT_FOUND)."""
        claim = () if ref.direct else rooms.room_claim_keys(ref.name)
        meta = self._store.room_meta(ref.key, claim)
        if meta is None:
            raise self._room_not_found()
        identity = self._sender_key(sender)
        if meta.kind == PRIVATE:
            grants = {g.room for g in self._store.invites(identity, self._rooms.rooms_list_limit)}
            visitor = rooms.Visitor(identity, frozenset(sender.groups), frozenset(grants))
        else:
            visitor = rooms.Visitor(identity)
        room = rooms.Room(meta.key, meta.name, rooms.RoomKind(meta.kind), meta.group, meta.parties)
        if not rooms.may_see(room, visitor):
            raise self._room_not_found()
        return meta

    def _take_room_token(self, creator: Connection) -> None:
        """A room creation's token, from the creator's identity and its address. Raises
        ChatError(ROOM_LIMIT) with the wait."""
        ttl = self._rooms.room_ttl_seconds
        per_creator = self._rooms.max_rooms_per_creator
        per_address = per_creator * ROOM_CREATORS_PER_ADDRESS
        owners = [(self._sender_key(creator), per_creator)]
        owners += [(p, per_address) for p in creator.peers if p.startswith("ip#")]
        for owner, per_ttl in owners:
            bucket = TokenBucket(per_ttl, per_ttl / ttl)
            admission = self._store.take(owner, ROOM_BUCKET, bucket)
            if not admission.allowed:
                raise ChatError(
                    ErrorCode.ROOM_LIMIT,
                    "You have created too many rooms recently.",
                    retry_after_ms=admission.retry_after_ms,
                )

    def _direct_room(self, sender: Connection, recipient: Member) -> tuple[RoomMeta, int] | None:
        """The direct room a private message is kept in, and the recipient's protocol; None
        when direct rooms are off or either identity lasts only one connection."""
        if not self._rooms.direct_rooms:
            return None
        mine = self._sender_key(sender)
        theirs_connection = self._store.get_connection(recipient.connection_id)
        if theirs_connection is None:
            return None
        theirs = self._sender_key(theirs_connection)
        if not (lasting(mine) and lasting(theirs)):
            return None
        room = rooms.direct_room(mine, theirs)
        by_identity = {mine: sender.name or "", theirs: recipient.name}
        request = RoomRequest(
            room.key,
            room.key,
            kind=DIRECT,
            parties=room.parties,
            names=tuple(by_identity[p] for p in sorted(room.parties)),
        )
        meta = self._store.open_direct_room(request, limits=self._room_limits)
        return meta, theirs_connection.protocol

    @staticmethod
    def _other_party(meta: RoomMeta, identity: str) -> str | None:
        """The other person's name in a direct room (as it was when the room was made)."""
        parties = sorted(meta.parties)
        for party, name in zip(parties, meta.names, strict=False):
            if party != identity:
                return name
        return meta.names[0] if meta.names else None

    @contextmanager
    def _room_errors(self) -> Iterator[None]:
        """The store's room refusals as the errors the client sees."""
        try:
            yield
        except RoomNotFoundError:
            raise self._room_not_found() from None
        except RoomExistsError:
            raise self._room_exists() from None
        except RoomFullError:
            raise ChatError(
                ErrorCode.ROOM_FULL,
                f"The room is full ({self._limits.max_room_size} people); try again later.",
            ) from None
        except TooManyRoomsError:
            raise ChatError(
                ErrorCode.TOO_MANY_ROOMS,
                f"You are in {self._rooms.max_rooms_per_connection} rooms; leave one first.",
            ) from None
        except RoomLimitError:
            raise ChatError(
                ErrorCode.ROOM_LIMIT, "The chat has as many rooms as it can hold; try later."
            ) from None
        except NotInRoomError:
            raise ChatError(ErrorCode.NOT_IN_ROOM, "Join the room before sending to it.") from None
        except UnknownMessageError:
            raise self._unknown_message() from None
        except NotYoursError:
            raise ChatError(ErrorCode.NOT_YOURS, "Only its author can change a message.") from None
        except EditWindowClosedError:
            raise ChatError(
                ErrorCode.EDIT_WINDOW_CLOSED,
                f"Messages can be changed for {_duration(self._rooms.edit_window_seconds)}.",
            ) from None
        except ConcurrentUpdateError:
            raise self._not_connected() from None

    @staticmethod
    def _room_not_found() -> ChatError:
        return ChatError(ErrorCode.ROOM_NOT_FOUND, "There is no room by that name (room).")

    @staticmethod
    def _room_exists() -> ChatError:
        return ChatError(ErrorCode.ROOM_EXISTS, "A room with that name, or one like it, exists.")

    @staticmethod
    def _unknown_message() -> ChatError:
        return ChatError(ErrorCode.UNKNOWN_MESSAGE, "No such message in this room's history.")

    # --- integrations: the review hook (chat/review.py) and events out -------------------

    _review: ReviewGate | None = None

    def use_review(self, gate: ReviewGate | None) -> None:
        """Show every public message to the review hook before it is recorded (None: none)."""
        self._review = gate

    def _reviewed(self, sender: Connection, room: str, text: str, client_id: str | None) -> str:
        """The text to record and post, as the review hook decides (unchanged without one).
        Raises ChatError(REJECTED) when it is denied."""
        if self._review is None:
            return text
        verdict = self._review.check(
            room=room,
            name=sender.name or "",
            subject=sender.subject,
            text=text,
            message_id=self._known_message_id(sender, client_id),
        )
        if verdict.decision == review.DENY:
            if verdict.failure is not None:
                raise ChatError(
                    ErrorCode.REJECTED,
                    "Your message could not be reviewed, so it was not sent; try again later.",
                )
            shown = f": {verdict.reason}" if verdict.reason else "."
            raise ChatError(
                ErrorCode.REJECTED,
                f"Your message was not sent{shown}",
                details={"reason": verdict.reason} if verdict.reason else None,
            )
        return verdict.text

    def _known_message_id(self, sender: Connection, client_id: str | None) -> str | None:
        """The messageId the message will carry, when it follows from the sender's own id
        (as _stamp derives it); None otherwise (a random one is drawn later)."""
        if client_id is None:
            return None
        digest = hashlib.sha256(f"{self._sender_key(sender)}\n{client_id}".encode())
        return digest.hexdigest()[:16]

    _events: EventPublisher = NoEvents()
    _event_bodies = False

    def use_events(self, publisher: EventPublisher, *, include_bodies: bool = False) -> None:
        """Tell `publisher` about messages, members and connections (docs/events.md);
        `include_bodies`: with the messages' text."""
        self._events = publisher
        self._event_bodies = include_bodies

    @property
    def event_publisher(self) -> EventPublisher:
        """Where the chat's events go: moderation actions publish theirs here too."""
        return self._events

    def flush_events(self) -> None:
        """Send the invocation's events (the handler calls it last; never raises)."""
        self._events.flush()

    def _publish_posted(
        self, sender: Connection, key: str, room: str, stamp: Stamp, text: str
    ) -> None:
        if rooms.is_direct_id(key):  # a direct conversation is nobody else's business
            return
        detail = events.message_detail(room, sender.name or "", stamp.message_id, stamp.seq)
        self._events.publish(events.POSTED, self._with_body(detail, text))

    def _publish_changed(
        self,
        action: str,
        sender: Connection,
        key: str,
        room: str,
        message: tuple[str, int],
        *,
        text: str,
    ) -> None:
        """An edit or a delete, naming the message by its id and `seq`."""
        if rooms.is_direct_id(key):
            return
        detail = events.message_detail(room, sender.name or "", *message)
        if action == EDIT:
            self._events.publish(events.EDITED, self._with_body(detail, text))
        else:
            self._events.publish(events.DELETED, detail)

    def _with_body(self, detail: dict[str, object], text: str) -> dict[str, object]:
        if self._event_bodies:
            detail["message"] = text
        return detail

    def _publish_lobby_join(self, before: Connection, name: str) -> None:
        if before.name is None:  # a first name: a join (a rename is no membership change)
            joiner = Member(before.connection_id, name)
            self._events.publish(events.JOINED, events.member_detail(LOBBY, joiner))

    def _publish_member(self, detail_type: str, member: Connection, key: str, room: str) -> None:
        if not rooms.is_direct_id(key):
            who = Member(member.connection_id, member.name or "")
            reason = "left" if detail_type == events.LEFT else None
            self._events.publish(detail_type, events.member_detail(room, who, reason))

    def _publish_departed(self, key: str, room: str, members: Sequence[Member]) -> None:
        if rooms.is_direct_id(key):
            return
        for departed in members:
            self._events.publish(
                events.LEFT, events.member_detail(room, departed, reason="disconnected")
            )

    # --- delivery and pruning -----------------------------------------------------------

    def _deliver(
        self,
        roster: Iterable[Member],
        sender_id: str,
        theirs: Sequence[Frame],
        mine: Sequence[Frame],
        *,
        after: Callable[[], None] | None = None,
        theirs_v2: Sequence[Frame] | None = None,
    ) -> None:
        """Post `theirs` to every member but the sender (`theirs_v2` to its v2 members, when
        given); only then `mine` to the sender.

        The sender's frames end with its acknowledgement, which therefore never arrives
        before the others' posts have completed: a client that waits for it before
        sending again cannot have its next message overtake this one anywhere.
        """
        others: Mapping[str, Sequence[Frame]] = {
            m.connection_id: (theirs_v2 if theirs_v2 is not None and m.protocol == 2 else theirs)
            for m in roster
            if m.connection_id != sender_id
        }
        if theirs_v2 is not None:  # frames for one protocol only (typing, edits: v2)
            others = {cid: batch for cid, batch in others.items() if batch}
        report = self._notifier.send(others)
        if after is not None:
            after()
        own = (
            self._notifier.send({sender_id: mine}) if mine else report.__class__(0, frozenset(), 0)
        )
        gone = report.gone | own.gone
        if gone:
            self._remove_and_announce(gone)

    def _history_frames(self, since: int | None, client_id: str | None) -> list[Frame]:
        if self._retention.history_count == 0:
            return (
                [] if client_id is None else frames.history([], complete=False, client_id=client_id)
            )
        messages, complete = self._store.history(
            since, self._retention.history_count, self._retention.history_max_bytes
        )
        if not messages and since is None and client_id is None:
            return []
        return frames.history(_for_v1(messages), complete=complete, client_id=client_id)

    def _room_history(
        self, room: str, room_name: str, after: int | None, client_id: str | None
    ) -> list[Frame]:
        """A room's history as v2 readers get it: messages at their latest version and the
        edit and delete events, after `after`."""
        limit = self._retention.history_count
        if limit == 0:
            return frames.room_history([], room_name, complete=False, client_id=client_id)
        messages, complete = self._store.history(
            after, limit, self._retention.history_max_bytes, room=room, events=True
        )
        return frames.room_history(
            [_for_v2(m, room_name) for m in messages],
            room_name,
            complete=complete,
            client_id=client_id,
        )

    def _repeat_ack_if_sent_before(self, sender: Connection, client_id: str | None) -> bool:
        """Whether this sender already sent this id; if so, send its acknowledgement again
        (the caller then stops: the message is not sent twice)."""
        if client_id is None:
            return False
        earlier = self._store.sent_before(self._sender_key(sender), client_id)
        if earlier is None:
            return False
        self._repeat_ack(sender, client_id, earlier)
        return True

    def _repeat_ack(self, sender: Connection, client_id: str, earlier: Sent) -> None:
        """Acknowledge a resent id again, but only once the first send's posts are done.

        Otherwise the sender, taking the repeat as leave to go on, could have its next
        message overtake this one at a slow member. A first send that never finishes
        (its invocation died) is acknowledged after the wait: the message is in the
        history, and members that missed it see the gap at the next message.
        """
        key = self._sender_key(sender)
        waited = 0.0
        while not earlier.delivered and waited < DUPLICATE_WAIT_SECONDS:
            self._sleep(DUPLICATE_POLL_SECONDS)
            waited += DUPLICATE_POLL_SECONDS
            earlier = self._store.sent_before(key, client_id) or Sent(earlier.ack, True)
        self.notify(sender.connection_id, earlier.ack)

    def _mark_delivered_later(
        self, sender: Connection, client_id: str | None
    ) -> Callable[[], None]:
        """A callback that records the message as delivered, to run once its posts to the
        others have completed (nothing to record without a client id)."""
        if client_id is None:
            return lambda: None
        return lambda: self._store.mark_delivered(self._sender_key(sender), client_id)

    def _stamp(self, sender: Connection, client_id: str | None, seq: int, prev: int) -> Stamp:
        """The message's stamp; its id is derived from the sender's own id when it gave one,
        so that even a message delivered twice (a crash between delivery and the record)
        carries one messageId that clients can drop."""
        if client_id is None:
            message_id = uuid.uuid4().hex[:16]
        else:
            digest = hashlib.sha256(f"{self._sender_key(sender)}\n{client_id}".encode())
            message_id = digest.hexdigest()[:16]
        return Stamp(seq=seq, message_id=message_id, ts=self._now_ms(), prev=prev)

    def _receipt(
        self,
        sender: Connection,
        client_id: str | None,
        stamp: Stamp,
        acknowledgement: Frame,
        public: Frame | None,
        *,
        room: str = LOBBY,
        prev_event: int | None = None,
        editable: bool = False,
    ) -> Receipt:
        """`editable`: recorded with the message id and time an edit or delete checks (v2
        senders' messages; direct messages)."""
        now = int(self._clock())
        return Receipt(
            seq=stamp.seq,
            prev=stamp.prev,
            sender_key=self._sender_key(sender),
            client_id=client_id,
            ack=acknowledgement,
            public=public if self._retention.history_count else None,
            history_expires_at=now + self._retention.history_max_age_seconds,
            dedup_expires_at=now + self._retention.dedup_window_seconds,
            room=room,
            prev_event=prev_event,
            message_id=stamp.message_id if editable or room != LOBBY else None,
            sent_at_ms=stamp.ts,
        )

    @staticmethod
    def _sender_key(sender: Connection) -> str:
        """Whose ids these are: recorded when the sender joined (chat.service.sender_key)."""
        return sender.sender_key or sender_key(sender, None)

    def _remove_and_announce(self, connection_ids: Iterable[str]) -> None:
        """Remove connections and tell the remaining members of each room they were in who
        left, until no post hits a 410. A v2 connection leaves its rooms one by one after
        its removal; whoever's leave finds the member announces it."""
        pending = set(connection_ids)
        for _ in range(PRUNE_ROUNDS):
            departed: dict[str, list[Member]] = {}
            room_names: dict[str, str] = {LOBBY: LOBBY}
            for cid in sorted(pending):
                member = self._store.remove_connection(cid)
                if member is not None:
                    departed.setdefault(LOBBY, []).append(member)
                    continue
                for membership in self._store.memberships(cid):
                    try:
                        left = self._store.leave_room(cid, membership.room, disconnected=True)
                    except NotInRoomError:
                        continue  # another leave announced it
                    departed.setdefault(membership.room, []).append(left)
                    room_names[membership.room] = membership.room_name or membership.room
            if not departed:
                return
            gone: set[str] = set()
            for room, members in departed.items():
                self._publish_departed(room, room_names[room], members)
                gone |= self._announce_leaves(room, room_names[room], members)
            pending = gone

    def _announce_leaves(self, room: str, room_name: str, departed: Sequence[Member]) -> set[str]:
        """Tell a room's members who left it; the ids of members found gone."""
        roster = self._store.list_members(room)
        event_ids = [frames.new_event_id() for _ in departed]
        batch = [frames.left(m.name, e) for m, e in zip(departed, event_ids, strict=True)]
        batch_v2 = [
            frames.room_notice_left(m.name, room_name, e)
            for m, e in zip(departed, event_ids, strict=True)
        ]
        if self._small(roster):
            listed = frames.members(m.name for m in roster)
            batch.append(listed)
            batch_v2.append(
                frames.room_members((m.name for m in roster), room_name, listed["eventId"])
            )
        else:
            left = [m.name for m in departed]
            batch_v2.insert(0, frames.presence(room_name, len(roster), (), left))
        report = self._notifier.send(
            {m.connection_id: batch_v2 if m.protocol == 2 else batch for m in roster}
        )
        return set(report.gone)

    def _small(self, roster: Sequence[Member]) -> bool:
        """Whether the room is small enough for full `members` frames (protocol v1)."""
        return len(roster) <= self._limits.member_list_threshold

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @staticmethod
    def _name_required() -> ChatError:
        return ChatError(ErrorCode.NAME_REQUIRED, "Set a name (setName) before sending messages.")

    @staticmethod
    def _not_connected() -> ChatError:
        return ChatError(
            ErrorCode.NOT_CONNECTED, "This connection has closed; reconnect to keep chatting."
        )

    @staticmethod
    def _unknown_recipient() -> ChatError:
        return ChatError(ErrorCode.UNKNOWN_RECIPIENT, "Nobody with that name (to) is in the chat.")
