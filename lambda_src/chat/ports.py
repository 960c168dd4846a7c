"""The chat's ports: what the rules need from storage and from the connections, and the
values that cross them: frames, and the errors a store raises. The rules (`chat.service`)
and the adapters (`chat.store`, `chat.notifier`, `chat.fanout`, `chat.sharding`) import this
module; the adapters never import the rules' modules (`frames`, `errors`, `names`, `service`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# One server-to-client frame: a JSON object (its shapes: chat/frames.py, docs/protocol.md).
Frame = dict[str, Any]

# The room every v1 connection is in: its keys are the ones tables had before rooms.
LOBBY = "lobby"
# A room's kinds, as RoomKind (chat.rooms) spells them.
PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"
# History events' kinds: a message, and the events that change one.
MSG, EDIT, DELETE = "msg", "edit", "delete"


def encode(frame: Frame | str) -> bytes:
    """A frame as the UTF-8 JSON text the client receives."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class NameTakenError(Exception):
    """Raised by a store when a live claim held by another connection blocks a name."""

    def __init__(self, holder_connection_id: str, holder_name: str, key: str) -> None:
        super().__init__(holder_name)
        self.holder_connection_id = holder_connection_id
        self.holder_name = holder_name
        self.key = key  # the claim key that is taken


class NameOwnedError(Exception):
    """Raised by a store when another account owns one of the name's keys (sign-in)."""


class RoomFullError(Exception):
    """Raised by a store when a join would take the room past its maximum size."""


class ConcurrentUpdateError(Exception):
    """Raised by a store when the connection changed under a write; the caller retries."""


# --- rooms (protocol v2, docs/rooms-design.md): what a store refuses, for the rules to map ---


class RoomNotFoundError(Exception):
    """The room does not exist (or expired), or it is private or direct and the caller may
    not join it: the caller is told it does not exist (ROOM_NOT_FOUND)."""


class RoomExistsError(Exception):
    """A room already holds the name or one of its look-alikes (ROOM_EXISTS)."""


class TooManyRoomsError(Exception):
    """The connection is already in its maximum number of rooms (TOO_MANY_ROOMS)."""


class RoomLimitError(Exception):
    """The stack already has its maximum number of live rooms (ROOM_LIMIT)."""


class NotInRoomError(Exception):
    """The connection is not a member of the room (NOT_IN_ROOM)."""


class UnknownMessageError(Exception):
    """No message of the room's history has that seq and messageId (UNKNOWN_MESSAGE)."""


class NotYoursError(Exception):
    """The message was sent by another identity (NOT_YOURS)."""


class EditWindowClosedError(Exception):
    """The message is older than the edit window (EDIT_WINDOW_CLOSED)."""


@dataclass(frozen=True)
class Member:
    """A connection that holds a name; `protocol` is 2 for a v2 connection's membership (the
    member item's `v`), which gets v2 frames. Two members are equal whatever their protocol."""

    connection_id: str
    name: str
    protocol: int = field(default=1, compare=False)


@dataclass(frozen=True)
class Connection:
    """A live connection as the store knows it; `name` is None until setName succeeds.

    `name_keys` are the claim keys its name occupies (chat.names.claim_keys), kept so
    that releasing them never depends on recomputing them. `bound_name` is the name
    sign-in fixed for it, if any.
    """

    connection_id: str
    name: str | None
    expires_at: int
    name_keys: tuple[str, ...] = ()
    bound_name: str | None = None
    # Who is behind it: the peer keys its limits are counted under (`ip#<address>`, and
    # with sign-in `sub#<account>`), and the identity its message ids are de-duplicated
    # under, fixed when it joins (chat.service.sender_key).
    peers: tuple[str, ...] = ()
    sender_key: str | None = None
    subject: str | None = None
    connected_at_ms: int = 0
    # Protocol v2: 2 once a `setName` negotiated it (1: today's frames, in the lobby only),
    # and how many rooms the connection is in (v1 connections: 0; their lobby membership
    # is the legacy one claim_name makes).
    protocol: int = 1
    rooms: int = 0
    # With sign-in, the groups the authorizer passed (`groups`): private rooms' `group` check.
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Newcomer:
    """A connection being recorded at $connect: who it is, as the handshake says."""

    connection_id: str
    expires_at: int
    connected_at_ms: int
    bound_name: str | None = None
    subject: str | None = None
    peers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeerConnection:
    """One live connection of a peer (an address or an account): whether it has a name."""

    connection_id: str
    named: bool


@dataclass(frozen=True)
class TokenBucket:
    """A rate limit: up to `capacity` frames at once, refilled at `rate_per_second`."""

    capacity: int
    rate_per_second: float


@dataclass(frozen=True)
class Admission:
    """The outcome of taking a token for one frame.

    `connection` is None when the store does not know the connection (never recorded,
    or already removed by $disconnect); then no token is taken. `strikes` counts the
    frames refused in a row.
    """

    connection: Connection | None
    allowed: bool
    retry_after_ms: int = 0
    strikes: int = 0


@dataclass(frozen=True)
class Receipt:
    """A message to keep: its acknowledgement under the sender's id, its history entry.

    `public` is the public message frame (history) or None; `client_id` None means the
    sender gave no id (nothing to de-duplicate).
    """

    seq: int
    prev: int
    sender_key: str
    client_id: str | None
    ack: Frame
    public: Frame | None
    history_expires_at: int
    dedup_expires_at: int
    # The room whose history keeps `public` (the lobby for v1 senders); the previous
    # history event of any kind (`lastEvent`, the v2 `prev`; None: `prev`); the message's
    # id and server time, which an edit or delete checks (history event `mid`, `ts`).
    room: str = LOBBY
    prev_event: int | None = None
    message_id: str | None = None
    sent_at_ms: int = 0


@dataclass(frozen=True)
class RoomMeta:
    """A room as its META item describes it (the lobby's is implicit until a v2 join writes
    it). `key` is the room key (`chat.rooms.room_key`, or a direct room's id); `kind` is
    PUBLIC, PRIVATE or DIRECT; `expires_at` 0 for the lobby, which never expires."""

    key: str
    name: str
    kind: str
    creator: str = ""
    created_at: int = 0
    group: str | None = None
    parties: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()
    expires_at: int = 0
    # Moderation (chat.moderation): the room's topic, its slow mode (seconds between one
    # member's messages; 0: off) and the identities its creator or a stack moderator appointed.
    topic: str | None = None
    slow_mode_seconds: int = 0
    moderators: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoomRequest:
    """A room a `joinRoom` or `createRoom` names, or a direct room to open: its key, its
    name as shown, its claim keys (`chat.rooms.room_claim_keys`; none for a direct room),
    and what a room made by the request is: its kind, its group, a direct room's parties
    and their names."""

    key: str
    name: str
    claim_keys: tuple[str, ...] = ()
    kind: str = PUBLIC
    group: str | None = None
    parties: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoomLimits:
    """The limits of docs/rooms-design.md §4 a store enforces in its transactions."""

    max_members: int = 1000  # maxRoomSize
    max_rooms_per_connection: int = 10  # maxRoomsPerConnection
    max_rooms: int = 1000  # maxRooms (public and private rooms; direct ones not counted)
    room_ttl_seconds: int = 2_592_000  # roomTtlSeconds
    invite_ttl_seconds: int = 604_800  # inviteTtlSeconds
    read_state_ttl_seconds: int = 2_592_000  # readStateTtlSeconds


@dataclass(frozen=True)
class Membership:
    """A connection's membership of a room (`CONN#<cid>` / `ROOM#<room>`)."""

    room: str
    room_name: str
    shard: int = 0
    joined_at: int = 0
    # Moderation, kept on the membership item a send reads anyway (docs/architecture.md):
    # muted until (epoch ms; 0: not), the room's slow mode as copied here, the member's last
    # message in it under slow mode (epoch ms).
    muted_until_ms: int = 0
    slow_mode_seconds: int = 0
    last_sent_ms: int = 0


@dataclass(frozen=True)
class Joined:
    """A join's outcome: the room, whether this join made it, whether the connection was
    already a member (then nothing was written), the members after the join, the room's
    last history event (`lastEvent`) and the joiner's last-read seq (its read state; a
    first join records the room's `lastEvent` there)."""

    room: RoomMeta
    created: bool
    already_member: bool
    count: int
    last_event: int
    last_read: int


@dataclass(frozen=True)
class EventSeq:
    """A sequence number taken in a room: the new seq, the previous public message's seq
    (`lastPublic`, v1 frames' `prev`) and the previous history event's (`lastEvent`, v2)."""

    seq: int
    prev_public: int
    prev_event: int


@dataclass(frozen=True)
class Rewrite:
    """An edit or a delete of message `of` (its seq) in `room`: allowed only to `by` (the
    sender key that sent it), for a message with that `message_id` and of kind MSG, sent
    after `window_start_ms`. `build` makes, from the event's seq and the original's stored
    frame, the original's new frame (latest text or tombstone) and the event's frame."""

    room: str
    of: int
    message_id: str
    by: str
    kind: str  # EDIT or DELETE
    window_start_ms: int
    build: Callable[[EventSeq, Frame], tuple[Frame, Frame]]
    event_expires_at: int
    # A moderator's delete: any author's message, at any age (`by` is the moderator's).
    any_author: bool = False


@dataclass(frozen=True)
class Invite:
    """A grant of a private room to an identity (`INVITE#<identity>` / `ROOM#<room>`)."""

    room: str
    room_name: str
    sender: str  # the inviter's name
    at: int
    expires_at: int


@dataclass(frozen=True)
class ReadState:
    """The last seq an identity has read in a room (`READ#<identity>` / `ROOM#<room>`)."""

    room: str
    seq: int
    room_name: str
    kind: str
    expires_at: int


@dataclass(frozen=True)
class ListedRoom:
    """An entry of the room registry (`ROOMS` / `<room>`): public and private rooms."""

    room: str
    name: str
    kind: str
    created_at: int
    topic: str | None = None  # a moderator's `topic`, kept beside META's


# --- moderation (issue 17, chat.moderation; docs/architecture.md "Moderation items") ---

# The scope of stack-wide sanctions and audit entries (a room's is its key).
STACK_SCOPE = "*"
# History events' kind for a moderation announcement (never a message: not unread).
MODERATION = "mod"


@dataclass(frozen=True)
class AuditEntry:
    """One moderation action as the audit log keeps it (`AUDIT#<scope>` / `<at>#<id>`)."""

    scope: str  # a room key, or STACK_SCOPE
    at_ms: int
    entry_id: str
    actor: str  # the actor's identity (a sender key, or `system`)
    actor_name: str
    op: str
    target: str
    reason: str
    expires_at: int


@dataclass(frozen=True)
class Sanction:
    """A mute or ban (`MOD#<scope>` / `<key>`: `MUTE#<identity>`, `BAN#name#<lookup key>`,
    `BAN#sub#<sub>`, `BAN#address#<address>`) until `until_ms`; `until_ms` 0 lifts it."""

    scope: str
    key: str
    until_ms: int


@dataclass(frozen=True)
class RoomChange:
    """A change to a room's META: its topic (when `set_topic`), its slow mode (None: kept),
    an identity appointed or dismissed."""

    room: str
    set_topic: bool = False
    topic: str | None = None
    slow_mode_seconds: int | None = None
    appoint: str | None = None
    dismiss: str | None = None


@dataclass(frozen=True)
class ModerationEvent:
    """An announcement kept in the room's history under its own seq (kind MODERATION)."""

    room: str
    taken: EventSeq
    frame: Frame
    expires_at: int


@dataclass(frozen=True)
class ModerationWrite:
    """What one moderation action writes, in one transaction: its audit entry, and a
    sanction, a room change and its announcement when it has them."""

    audit: AuditEntry
    sanction: Sanction | None = None
    room_change: RoomChange | None = None
    event: ModerationEvent | None = None


# Unread counts stop here: `unread` 100 means "100 or more".
UNREAD_CAP = 100


@dataclass(frozen=True)
class Sent:
    """A message a sender sent with an id: its acknowledgement, and whether its posts are done."""

    ack: Frame
    delivered: bool


@dataclass(frozen=True)
class DeliveryReport:
    """What happened to a batch of posts: ids API Gateway reported gone, and other failures."""

    sent: int
    gone: frozenset[str]
    failed: int


class ChatStore(Protocol):
    """Storage of connections, name claims and room membership. Reads skip expired items."""

    def add_connection(
        self, connection_id: str, expires_at: int, bound_name: str | None = None
    ) -> None:
        """Record a connection with nothing known about its peer (tests and old callers)."""
        ...

    def open_connection(self, newcomer: Newcomer) -> None:
        """Record a new connection, under each of its peers and among the unnamed ones."""
        ...

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def peer_connections(self, peer: str) -> list[PeerConnection]:
        """The live connections recorded under one peer key (one small partition)."""
        ...

    def take(self, peer: str, bucket: str, limit: TokenBucket) -> Admission:
        """Take one token from a bucket shared by every connection of a peer (an address or
        an account), in one conditional write. `connection` in the answer is always None."""
        ...

    def stale_unnamed(self, connected_before_ms: int, limit: int) -> list[str]:
        """Connections still unnamed that connected before the time given, oldest first;
        each is returned to one caller only (it is taken off the unnamed list)."""
        ...

    def admit(self, connection_id: str, bucket: str, limit: TokenBucket) -> Admission:
        """Take one token from the connection's bucket named `bucket`, in one conditional write.

        A refused frame still updates the bucket (its strikes). Never reads the room.
        """
        ...

    def claim_name(
        self,
        connection: Connection,
        name: str,
        keys: Sequence[str],
        *,
        max_members: int,
        sender_key: str | None = None,
        owner: str | None = None,
        protocol: int = 1,
    ) -> None:
        """Atomically give `name` (occupying `keys`) to the connection, releasing its old keys.

        Protocol 2 (a v2 `setName`): a first name records `proto` on the connection and joins
        no room (no MEMBER item, no COUNT); a rename also renames the MEMBER item of every
        room it is in, in the same transaction. Protocol 1 is today's join of the lobby.

        A first name is a join, refused when the room already has `max_members`; it
        records `sender_key` on the connection and marks it named under its peers. With an
        `owner` (the account, with sign-in) every key is also bound to that account for
        good. Raises NameTakenError if another connection holds a live claim on one of the
        keys, NameOwnedError if another account owns one, RoomFullError, or
        ConcurrentUpdateError if the connection changed (renamed or removed) since
        `connection` was read.
        """
        ...

    def release_claim(self, key: str, holder_connection_id: str) -> None:
        """Delete the claim on `key` if, and only if, it still belongs to that connection."""
        ...

    def find_member(self, key: str) -> Member | None:
        """The live member whose name occupies the lookup `key`."""
        ...

    def list_members(self, room: str = LOBBY) -> list[Member]:
        """Every live member of the room (all pages of each member partition): in the lobby
        the v1 members and the v2 ones that joined it."""
        ...

    def remove_connection(self, connection_id: str) -> Member | None:
        """Delete everything the connection owns, atomically; the Member if it was in the room.

        Safe to call twice or concurrently: exactly one caller gets the Member back.
        """
        ...

    def next_seq(self, *, public: bool) -> tuple[int, int]:
        """The room's next sequence number, from one atomic counter, and for a public
        message the sequence number of the previous public message (0 if none)."""
        ...

    def sent_before(self, sender_key: str, client_id: str) -> Sent | None:
        """The message this sender sent with this id, if it is still remembered (within
        the de-duplication window)."""
        ...

    def record_message(self, receipt: Receipt) -> Sent | None:
        """Keep a message: its acknowledgement under the sender's id (not yet delivered),
        and a public one in the room's history, in one write. Returns the earlier message
        instead (writing nothing) when the sender already used the id."""
        ...

    def mark_delivered(self, sender_key: str, client_id: str) -> None:
        """Record that every post of the message has completed (its ack may be repeated)."""
        ...

    def withdraw_message(self, receipt: Receipt, tombstone: Frame | None = None) -> None:
        """Undo `record_message` for a message nobody received (its recipient was found
        gone): forget its acknowledgement and take its copy out of the room's history, in
        one write. When no later event has taken a seq in that room, the copy is deleted
        and the room's chain (`lastPublic`, `lastEvent`) goes back to the copy's `prev`s, so
        the next message's `prev` skips it; otherwise (a later event already points at it)
        the copy is replaced by `tombstone`, its text gone, and the chain stays whole."""
        ...

    def history(
        self,
        after: int | None,
        limit: int,
        max_bytes: int,
        *,
        room: str = LOBBY,
        events: bool = False,
    ) -> tuple[list[Frame], bool]:
        """Public messages with seq > `after` (or the most recent ones), oldest first: the
        newest ones, at most `limit` of them and at most `max_bytes` of stored frames; and
        whether nothing after `after` (or since the room's first message) is missing from
        the list. Read eventually consistent from the history's own partition (`HIST#<room>`).
        With `events` (v2 readers) the edit and delete events too, chained by `lastEvent`;
        without (v1 readers), messages only, chained by `lastPublic`."""
        ...

    # --- rooms (protocol v2; docs/rooms-design.md §2 names each item) --------------------

    def room_meta(self, room: str, claim_keys: Sequence[str] = ()) -> RoomMeta | None:
        """The live room whose key is `room` (GetItem `ROOM#<room>`/`META`), or else the one
        holding one of `claim_keys` (GetItem `ROOMKEY#<k>`): a look-alike's room. The lobby
        always exists, and is the room of its look-alikes (whose keys include `lobby`)."""
        ...

    def join_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        groups: frozenset[str] = frozenset(),
        limits: RoomLimits,
    ) -> Joined:
        """Join the room the request names (or its look-alike's), creating a public one when
        no room holds the name. Reads META (and `ROOMKEY#`), the identity's `INVITE#` for a
        private room, `READ#`; one transaction writes MEMBER, `CONN#<cid>`/`ROOM#<room>`,
        CONN `rooms + 1` (< max per connection), COUNT + 1 (< max members), META live; a
        creation adds META, SEQ, `ROOMKEY#`s and the registry (`ROOMS`, < max rooms); a join
        past half the room's life refreshes its items' TTLs, a join by invitation the
        invitation's. Then reads SEQ and COUNT, and a first join records `READ#`.
        Joining a room one is in changes nothing (`already_member`).
        Raises RoomNotFoundError (a private or direct room it may not join, or a direct room
        nobody opened), RoomFullError, TooManyRoomsError, RoomLimitError, or
        ConcurrentUpdateError (the connection is gone or unnamed)."""
        ...

    def create_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        limits: RoomLimits,
    ) -> Joined:
        """Make a room of `request.kind` (`createRoom`: private or public) and join it; a
        private room also grants its creator (`INVITE#<identity>`). Raises RoomExistsError
        when a room holds the name or a look-alike, and what join_room raises."""
        ...

    def open_direct_room(self, request: RoomRequest, *, limits: RoomLimits) -> RoomMeta:
        """The direct room of `request.parties`, made (META, SEQ, COUNT: never registered nor
        counted against max rooms) when no live one exists; idempotent."""
        ...

    def leave_room(self, connection_id: str, room: str, *, disconnected: bool = False) -> Member:
        """Leave: GetItem `CONN#<cid>`/`ROOM#<room>` and the MEMBER item (its name), then one
        transaction deletes MEMBER (condition: it exists) and `CONN#<cid>`/`ROOM#<room>`,
        counts COUNT and, unless `disconnected` ($disconnect removed the CONN item first),
        CONN `rooms` down (a CONN item found gone is skipped too, after one more try).
        Returns who left; raises NotInRoomError when it was not (or no longer) a member, so
        that of two concurrent leaves only one announces it."""
        ...

    def memberships(self, connection_id: str) -> list[Membership]:
        """The rooms a v2 connection is in (Query `CONN#<cid>` `begins_with ROOM#`), expired
        ones too: they outlive the CONN item, so $disconnect finds what to leave. A v1
        connection has none (its lobby membership is the legacy one)."""
        ...

    def membership(self, connection_id: str, room: str) -> Membership | None:
        """The connection's live membership of one room (GetItem `CONN#<cid>`/`ROOM#<room>`)."""
        ...

    def next_event(self, room: str, kind: str | None) -> EventSeq:
        """Take the room's next seq (UpdateItem `ROOM#<room>`/`SEQ`): `kind` MSG advances
        `lastPublic` and `lastEvent`, EDIT and DELETE `lastEvent` only, None neither (a
        lobby seq for a v1 private message). `next_seq` is the lobby's, for v1."""
        ...

    def rewrite_message(self, change: Rewrite) -> EventSeq:
        """Edit or delete a message: GetItem `HIST#<room>`/`MSG#<of>` (strongly consistent)
        and refuse (UnknownMessageError, NotYoursError, EditWindowClosedError) with nothing
        written; else take the event's seq, then one transaction rewrites the original
        (conditions: `by`, `mid`, `kind` msg, `ts` in the window) and puts the event item.
        Returns the event's seq."""
        ...

    def put_invite(
        self, identity: str, room: RoomMeta, sender: str, *, limits: RoomLimits
    ) -> Invite:
        """Grant `identity` the room (PutItem `INVITE#<identity>`/`ROOM#<room>`), for
        `invite_ttl_seconds`; a later invitation refreshes it."""
        ...

    def invites(self, identity: str, limit: int) -> list[Invite]:
        """The identity's live grants (Query `INVITE#<identity>`), at most `limit`."""
        ...

    def mark_read(
        self, identity: str, room: RoomMeta, seq: int, *, limits: RoomLimits
    ) -> ReadState:
        """Record that the identity has read the room up to `seq` (UpdateItem
        `READ#<identity>`/`ROOM#<room>`, condition: the stored seq is lower). Never moves
        back: returns the state as it is after the call."""
        ...

    def read_states(self, identity: str, limit: int) -> list[ReadState]:
        """The identity's live read states (Query `READ#<identity>`), at most `limit`: its
        rooms across reconnects and tabs."""
        ...

    def unread(self, room: str, after: int, cap: int = UNREAD_CAP) -> int:
        """How many messages (not edit or delete events) the room's history holds after seq
        `after`, counted up to `cap` (Query `HIST#<room>`, eventually consistent)."""
        ...

    def public_rooms(self, limit: int) -> tuple[list[ListedRoom], bool]:
        """The live rooms of the registry (Query `ROOMS`): public and private, never
        direct; at most `limit`, in key order, and whether that is all of them."""
        ...

    # --- moderation (issue 17; docs/architecture.md "Moderation items") -------------------

    def moderate(self, write: ModerationWrite) -> None:
        """Write a moderation action in one transaction: the audit entry (PutItem
        `AUDIT#<scope>`), the sanction (PutItem, or DeleteItem when lifted, `MOD#<scope>`),
        the room change (UpdateItem META; the lobby's META is made if missing) and the
        announcement (PutItem `HIST#<room>`/`MSG#<seq>`, kind MODERATION)."""
        ...

    def sanctions(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The live sanctions among `(scope, key)` pairs (one BatchGetItem, strongly
        consistent): each found one's `until_ms`."""
        ...

    def set_membership(
        self,
        connection_id: str,
        room: str,
        *,
        muted_until_ms: int | None = None,
        slow_mode_seconds: int | None = None,
    ) -> None:
        """Set moderation fields on a live membership (UpdateItem `CONN#<cid>`/`ROOM#<room>`,
        condition: it exists); a membership gone meanwhile is skipped."""
        ...

    def take_slow_turn(
        self, connection_id: str, room: str, now_ms: int, interval_seconds: int
    ) -> int:
        """Under slow mode, record a message now unless the member's last one in the room was
        less than the interval ago (one conditional UpdateItem of the membership item).
        Returns 0 when recorded, else how many ms the member still waits."""
        ...

    def audit_entries(self, scope: str, limit: int) -> list[AuditEntry]:
        """The scope's live audit entries, newest first, at most `limit` (Query)."""
        ...


class Notifier(Protocol):
    """Posts frames to connections through API Gateway's @connections API."""

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        """Post each connection its frames, in order; connections are served concurrently."""
        ...

    def is_gone(self, connection_id: str) -> bool:
        """True only when API Gateway reports the connection gone (410)."""
        ...

    def close(self, connection_id: str) -> None:
        """Close the connection (DeleteConnection); its $disconnect follows. Gone is fine."""
        ...


class ReviewUnavailableError(Exception):
    """The review hook gave no answer: it timed out, failed, or could not be invoked. The
    message says which (for the log); the caller's fallback decides."""


class Reviewer(Protocol):
    """The review hook (chat/review.py has the contract, chat/review_hook.py the adapter)."""

    def review(self, request: Mapping[str, Any], timeout: float) -> object:
        """The hook's answer to `request`, as the JSON it returned, within `timeout` seconds.
        Raises ReviewUnavailableError when there is none."""
        ...


class EventPublisher(Protocol):
    """Events out (chat/events_out.py): what the chat tells other systems."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Queue one event (EventBridge's `detail-type` and `detail`); never raises."""
        ...

    def flush(self) -> None:
        """Send the queued events (at the end of the invocation); never raises."""
        ...


class NoEvents:
    """The EventPublisher of a stack without an event bus: it drops every event."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        return None

    def flush(self) -> None:
        return None
