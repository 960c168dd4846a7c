"""In-memory stand-ins for the chat's two ports, with the same semantics as the adapters."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from chat.errors import ConcurrentUpdateError, NameOwnedError, NameTakenError, RoomFullError
from chat.frames import Frame, encode
from chat.ports import (
    DIRECT,
    LOBBY,
    MSG,
    PRIVATE,
    PUBLIC,
    UNREAD_CAP,
    Admission,
    Connection,
    DeliveryReport,
    EditWindowClosedError,
    EventSeq,
    Invite,
    Joined,
    ListedRoom,
    Member,
    Membership,
    Newcomer,
    NotInRoomError,
    NotYoursError,
    PeerConnection,
    ReadState,
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
from tests.support.frames import plain_all


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now: float = 1_764_118_625.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class _Conn:
    name: str | None
    expires_at: int
    keys: tuple[str, ...] = ()
    bound_name: str | None = None
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at
    strikes: int = 0
    peers: tuple[str, ...] = ()
    sender_key: str | None = None
    subject: str | None = None
    connected_at_ms: int = 0
    protocol: int = 1
    rooms: int = 0
    groups: tuple[str, ...] = ()


@dataclass
class _Entry:
    """A history event: a message (its latest version) or an edit or delete event."""

    frame: Frame
    prev: int  # the previous public message (lastPublic)
    prev_event: int  # the previous event of any kind (lastEvent)
    expires_at: int
    kind: str = MSG
    by: str = ""
    message_id: str | None = None
    ts: int = 0
    deleted: bool = False


@dataclass
class _Membership:
    name: str
    expires_at: int
    shard: int = 0
    joined_at: int = 0
    room_name: str = ""


@dataclass
class _Seq:
    seq: int = 0
    last_public: int = 0
    last_event: int = 0


LOBBY_META = RoomMeta(LOBBY, LOBBY, PUBLIC)


class InMemoryStore:
    """ChatStore in a dict: claims by key, TTL honoured on every read, token buckets."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.connections: dict[str, _Conn] = {}
        self.claims: dict[str, tuple[str, str, int]] = {}  # key -> (cid, name, expires)
        self.seqs: dict[str, _Seq] = {}  # room -> its SEQ (kept when the room expires)
        self.sent: dict[tuple[str, str], Sent] = {}  # (sender key, client id) -> message
        self.histories: dict[str, dict[int, _Entry]] = {}  # room -> seq -> event
        # Rooms (docs/rooms-design.md §2): META, ROOMKEY# claims, the ROOMS registry, the
        # memberships (cid -> room -> membership: both sides of MEMBER and CONN#/ROOM#),
        # grants and read states (identity -> room -> ...).
        self.metas: dict[str, RoomMeta] = {}
        self.room_keys: dict[str, tuple[str, int]] = {}  # claim key -> (room, expires)
        self.registry: dict[str, tuple[ListedRoom, int]] = {}  # room -> (entry, expires)
        self.joined: dict[str, dict[str, _Membership]] = {}
        self.grants: dict[str, dict[str, Invite]] = {}
        self.reads: dict[str, dict[str, ReadState]] = {}
        self.peer_buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self.owners: dict[str, str] = {}  # claim key -> the account that owns it
        self.unnamed: dict[str, int] = {}  # connection id -> connected at (ms)

    def _live(self, expires_at: int) -> bool:
        return expires_at > self._clock()

    def _view(self, connection_id: str, conn: _Conn) -> Connection:
        return Connection(
            connection_id,
            conn.name,
            conn.expires_at,
            conn.keys,
            conn.bound_name,
            peers=conn.peers,
            sender_key=conn.sender_key,
            subject=conn.subject,
            connected_at_ms=conn.connected_at_ms,
            protocol=conn.protocol,
            rooms=conn.rooms,
            groups=conn.groups,
        )

    def add_connection(
        self, connection_id: str, expires_at: int, bound_name: str | None = None
    ) -> None:
        with self._lock:
            self.connections[connection_id] = _Conn(None, expires_at, bound_name=bound_name)

    def open_connection(self, newcomer: Newcomer) -> None:
        with self._lock:
            self.connections[newcomer.connection_id] = _Conn(
                None,
                newcomer.expires_at,
                bound_name=newcomer.bound_name,
                peers=newcomer.peers,
                subject=newcomer.subject,
                connected_at_ms=newcomer.connected_at_ms,
                groups=newcomer.groups,
            )
            self.unnamed[newcomer.connection_id] = newcomer.connected_at_ms

    def peer_connections(self, peer: str) -> list[PeerConnection]:
        return [
            PeerConnection(cid, conn.name is not None)
            for cid, conn in list(self.connections.items())
            if peer in conn.peers and self._live(conn.expires_at)
        ]

    def take(self, peer: str, bucket: str, limit: TokenBucket) -> Admission:
        with self._lock:
            now = self._clock()
            tokens, at = self.peer_buckets.get((peer, bucket), (float(limit.capacity), now))
            tokens = min(limit.capacity, tokens + (now - at) * limit.rate_per_second)
            allowed = tokens >= 1
            self.peer_buckets[(peer, bucket)] = (tokens - 1 if allowed else tokens, now)
            wait = 0 if allowed else math.ceil((1 - tokens) / limit.rate_per_second * 1000)
            return Admission(None, allowed, wait)

    def stale_unnamed(self, connected_before_ms: int, limit: int) -> list[str]:
        with self._lock:
            stale = sorted(
                (at, cid) for cid, at in self.unnamed.items() if at < connected_before_ms
            )[:limit]
            for _, cid in stale:
                del self.unnamed[cid]
            return [cid for _, cid in stale]

    def get_connection(self, connection_id: str) -> Connection | None:
        conn = self.connections.get(connection_id)
        if conn is None or not self._live(conn.expires_at):
            return None
        return self._view(connection_id, conn)

    def admit(self, connection_id: str, bucket: str, limit: TokenBucket) -> Admission:
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None or not self._live(conn.expires_at):
                return Admission(None, allowed=True)
            now = self._clock()
            tokens, at = conn.buckets.get(bucket, (float(limit.capacity), now))
            tokens = min(limit.capacity, tokens + (now - at) * limit.rate_per_second)
            allowed = tokens >= 1
            full = tokens >= limit.capacity
            conn.strikes = 0 if full else conn.strikes + (0 if allowed else 1)
            conn.buckets[bucket] = (tokens - 1 if allowed else tokens, now)
            wait = 0 if allowed else math.ceil((1 - tokens) / limit.rate_per_second * 1000)
            return Admission(self._view(connection_id, conn), allowed, wait, conn.strikes)

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
        cid = connection.connection_id
        with self._lock:
            conn = self.connections.get(cid)
            if conn is None or conn.name != connection.name:
                raise ConcurrentUpdateError
            for key in keys:
                holder = self.claims.get(key)
                if holder and holder[0] != cid and self._live(holder[2]):
                    raise NameTakenError(holder[0], holder[1], key)
            joins_lobby = conn.name is None and protocol == 1
            if joins_lobby and len(self.list_members()) >= max_members:
                raise RoomFullError
            if conn.name is None:
                conn.protocol = protocol
            for membership in self.joined.get(cid, {}).values():  # a v2 rename
                membership.name = name
            if owner is not None:
                if any(self.owners.get(key, owner) != owner for key in keys):
                    raise NameOwnedError
                self.owners.update(dict.fromkeys(keys, owner))
            if conn.name is None:
                conn.sender_key = sender_key
                self.unnamed.pop(cid, None)
            for key in conn.keys:
                if key not in keys and self.claims.get(key, (cid,))[0] == cid:
                    self.claims.pop(key, None)
            for key in keys:
                self.claims[key] = (cid, name, conn.expires_at)
            conn.name, conn.keys = name, tuple(keys)

    def release_claim(self, key: str, holder_connection_id: str) -> None:
        with self._lock:
            if self.claims.get(key, ("",))[0] == holder_connection_id:
                del self.claims[key]

    def find_member(self, key: str) -> Member | None:
        holder = self.claims.get(key)
        if holder is None or not self._live(holder[2]):
            return None
        return Member(holder[0], holder[1])

    def list_members(self, room: str = LOBBY) -> list[Member]:
        legacy = (
            [
                Member(cid, conn.name)
                for cid, conn in list(self.connections.items())
                if conn.name is not None and conn.protocol == 1 and self._live(conn.expires_at)
            ]
            if room == LOBBY
            else []
        )
        joined = [
            Member(cid, rooms[room].name, protocol=2)
            for cid, rooms in list(self.joined.items())
            if room in rooms and self._live(rooms[room].expires_at)
        ]
        return legacy + joined

    def next_seq(self, *, public: bool) -> tuple[int, int]:
        taken = self.next_event(LOBBY, MSG if public else None)
        return taken.seq, taken.prev_public

    def next_event(self, room: str, kind: str | None) -> EventSeq:
        with self._lock:
            state = self.seqs.setdefault(room, _Seq())
            state.seq += 1
            taken = EventSeq(state.seq, state.last_public, state.last_event)
            if kind == MSG:
                state.last_public = state.seq
            if kind is not None:
                state.last_event = state.seq
            return taken

    def sent_before(self, sender_key: str, client_id: str) -> Sent | None:
        return self.sent.get((sender_key, client_id))

    def mark_delivered(self, sender_key: str, client_id: str) -> None:
        with self._lock:
            earlier = self.sent.get((sender_key, client_id))
            if earlier is not None:
                self.sent[(sender_key, client_id)] = Sent(earlier.ack, delivered=True)

    def record_message(self, receipt: Receipt) -> Sent | None:
        with self._lock:
            if receipt.client_id is not None:
                key = (receipt.sender_key, receipt.client_id)
                if key in self.sent:
                    return self.sent[key]
                self.sent[key] = Sent(receipt.ack, delivered=False)
            if receipt.public is not None:
                prev_event = receipt.prev if receipt.prev_event is None else receipt.prev_event
                self.histories.setdefault(receipt.room, {})[receipt.seq] = _Entry(
                    receipt.public,
                    receipt.prev,
                    prev_event,
                    receipt.history_expires_at,
                    by=receipt.sender_key,
                    message_id=receipt.message_id,
                    ts=receipt.sent_at_ms,
                )
            return None

    def withdraw_message(self, receipt: Receipt, tombstone: Frame | None = None) -> None:
        with self._lock:
            if receipt.client_id is not None:
                self.sent.pop((receipt.sender_key, receipt.client_id), None)
            history = self.histories.get(receipt.room, {})
            if receipt.public is None or receipt.seq not in history:
                return
            state = self.seqs.setdefault(receipt.room, _Seq())
            if state.seq == receipt.seq:  # nothing points at it yet: as if never kept
                del history[receipt.seq]
                state.last_public = receipt.prev
                state.last_event = (
                    receipt.prev if receipt.prev_event is None else receipt.prev_event
                )
            elif tombstone is None:
                del history[receipt.seq]
            else:  # a later event points at it: keep the chain, drop the text
                history[receipt.seq].frame = tombstone
                history[receipt.seq].deleted = True

    def history(
        self,
        after: int | None,
        limit: int,
        max_bytes: int,
        *,
        room: str = LOBBY,
        events: bool = False,
    ) -> tuple[list[Frame], bool]:
        entries = self.histories.get(room, {})
        later = [
            (seq, entry.prev_event if events else entry.prev, entry.frame)
            for seq, entry in sorted(entries.items())
            if seq > (after or 0) and self._live(entry.expires_at) and (events or entry.kind == MSG)
        ]
        kept: list[tuple[int, int, Frame]] = []
        used = 0
        for message in reversed(later):
            size = len(encode(message[2]))
            if len(kept) >= limit or used + size > max_bytes:
                break
            kept.insert(0, message)
            used += size
        if len(kept) < len(later):
            return [m[2] for m in kept], False
        floor = after or 0
        if kept:
            return [m[2] for m in kept], kept[0][1] <= floor
        state = self.seqs.get(room, _Seq())
        return [], (state.last_event if events else state.last_public) <= floor

    def remove_connection(self, connection_id: str) -> Member | None:
        with self._lock:
            conn = self.connections.pop(connection_id, None)
            self.unnamed.pop(connection_id, None)
            if conn is None or conn.name is None:
                return None
            for key in conn.keys:
                if self.claims.get(key, ("",))[0] == connection_id:
                    del self.claims[key]
            if conn.protocol != 1:  # its rooms are left one by one (memberships, leave_room)
                return None
            return Member(connection_id, conn.name) if self._live(conn.expires_at) else None

    # --- rooms ------------------------------------------------------------------------------

    def _meta(self, room: str) -> RoomMeta | None:
        meta = self.metas.get(room)
        if meta is not None and (meta.expires_at == 0 or self._live(meta.expires_at)):
            return meta
        return LOBBY_META if room == LOBBY else None

    def room_meta(self, room: str, claim_keys: Sequence[str] = ()) -> RoomMeta | None:
        meta = self._meta(room if LOBBY not in claim_keys else LOBBY)
        if meta is not None:
            return meta
        for key in claim_keys:
            holder = self.room_keys.get(key)
            if holder is not None and self._live(holder[1]):
                return self._meta(holder[0])
        return None

    def _may_join(self, meta: RoomMeta, identity: str, groups: frozenset[str]) -> bool:
        """chat.rooms.may_join, with the grant read from the store."""
        if meta.kind == PUBLIC:
            return True
        if meta.kind == PRIVATE:
            grant = self.grants.get(identity, {}).get(meta.key)
            invited = grant is not None and self._live(grant.expires_at)
            return invited or (meta.group is not None and meta.group in groups)
        return identity in meta.parties

    def _live_rooms(self) -> int:
        return sum(
            1 for room, (_, exp) in self.registry.items() if room != LOBBY and self._live(exp)
        )

    def _taken_by_other(self, request: RoomRequest) -> bool:
        return any(
            (holder := self.room_keys.get(key)) is not None
            and self._live(holder[1])
            and holder[0] != request.key
            for key in request.claim_keys
        )

    def _create(self, request: RoomRequest, identity: str, limits: RoomLimits) -> RoomMeta:
        now = int(self._clock())
        if request.key == LOBBY:  # written lazily, never expires, never counted
            expires = 0
        else:
            if self._live_rooms() >= limits.max_rooms:
                raise RoomLimitError
            expires = now + limits.room_ttl_seconds
        meta = RoomMeta(
            request.key,
            request.name,
            request.kind,
            creator=identity,
            created_at=now,
            group=request.group,
            expires_at=expires,
        )
        self.metas[request.key] = meta
        self.seqs.setdefault(request.key, _Seq())  # a re-made room keeps its seq
        for key in request.claim_keys:
            self.room_keys[key] = (request.key, expires or 2**62)
        self.registry[request.key] = (
            ListedRoom(request.key, request.name, request.kind, now),
            expires or 2**62,
        )
        return meta

    def _refresh(self, meta: RoomMeta, limits: RoomLimits) -> None:
        """A join refreshes a room with less than half its TTL left (META, keys, registry)."""
        now = int(self._clock())
        if meta.expires_at == 0 or meta.expires_at - now >= limits.room_ttl_seconds // 2:
            return
        expires = now + limits.room_ttl_seconds
        self.metas[meta.key] = replace(meta, expires_at=expires)
        for key, (room, _) in list(self.room_keys.items()):
            if room == meta.key:
                self.room_keys[key] = (room, expires)
        if meta.key in self.registry:
            self.registry[meta.key] = (self.registry[meta.key][0], expires)

    def _joinable(self, connection: Connection) -> _Conn:
        conn = self.connections.get(connection.connection_id)
        if conn is None or conn.name is None or not self._live(conn.expires_at):
            raise ConcurrentUpdateError
        return conn

    def join_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        groups: frozenset[str] = frozenset(),
        limits: RoomLimits,
    ) -> Joined:
        with self._lock:
            conn = self._joinable(connection)
            meta = self.room_meta(request.key, request.claim_keys)
            if meta is None and (request.kind != PUBLIC or request.key.startswith("@")):
                raise RoomNotFoundError
            if meta is not None and not self._may_join(meta, identity, groups):
                raise RoomNotFoundError
            grant = self.grants.get(identity, {}).get(request.key if meta is None else meta.key)
            if meta is not None and meta.kind == PRIVATE and meta.group not in groups and grant:
                self._grant(identity, meta, grant.sender, limits)  # a join keeps it longer
            return self._enter(
                connection.connection_id,
                conn,
                meta=meta,
                request=request,
                identity=identity,
                limits=limits,
            )

    def create_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        limits: RoomLimits,
    ) -> Joined:
        with self._lock:
            conn = self._joinable(connection)
            if self._meta(request.key) is not None or self._taken_by_other(request):
                raise RoomExistsError
            return self._enter(
                connection.connection_id,
                conn,
                meta=None,
                request=request,
                identity=identity,
                limits=limits,
            )

    def _enter(
        self,
        cid: str,
        conn: _Conn,
        *,
        meta: RoomMeta | None,
        request: RoomRequest,
        identity: str,
        limits: RoomLimits,
    ) -> Joined:
        """Join `meta`'s room, or make the request's room first (meta None); atomic."""
        key = meta.key if meta is not None else request.key
        mine = self.joined.setdefault(cid, {})
        if key in mine and meta is not None:
            return self._joined(meta, False, True, identity, limits)
        if conn.rooms >= limits.max_rooms_per_connection:
            raise TooManyRoomsError
        if len(self.list_members(key)) >= limits.max_members:
            raise RoomFullError
        created = meta is None or (key == LOBBY and LOBBY not in self.metas)
        if meta is None or created:
            meta = self._create(
                request if meta is None else RoomRequest(LOBBY, LOBBY, (LOBBY,)),
                identity,
                limits,
            )
            if meta.kind == PRIVATE:
                self._grant(identity, meta, "", limits)
        else:
            self._refresh(meta, limits)
            meta = self._meta(key) or meta
        mine[key] = _Membership(
            conn.name or "", conn.expires_at, joined_at=int(self._clock()), room_name=meta.name
        )
        conn.rooms += 1
        return self._joined(meta, created and key != LOBBY, False, identity, limits)

    def _joined(
        self, meta: RoomMeta, created: bool, already: bool, identity: str, limits: RoomLimits
    ) -> Joined:
        state = self.seqs.get(meta.key, _Seq())
        read = self.reads.setdefault(identity, {}).get(meta.key)
        if read is None or not self._live(read.expires_at):
            read = ReadState(
                meta.key,
                state.last_event,
                meta.name,
                meta.kind,
                int(self._clock()) + limits.read_state_ttl_seconds,
            )
            self.reads[identity][meta.key] = read
        count = len(self.list_members(meta.key))
        return Joined(meta, created, already, count, state.last_event, read.seq)

    def open_direct_room(self, request: RoomRequest, *, limits: RoomLimits) -> RoomMeta:
        with self._lock:
            meta = self._meta(request.key)
            if meta is not None:
                return meta
            now = int(self._clock())
            meta = RoomMeta(
                request.key,
                request.name,
                DIRECT,
                created_at=now,
                parties=request.parties,
                names=request.names,
                expires_at=now + limits.room_ttl_seconds,
            )
            self.metas[request.key] = meta
            self.seqs.setdefault(request.key, _Seq())
            return meta

    def leave_room(self, connection_id: str, room: str, *, disconnected: bool = False) -> Member:
        with self._lock:
            membership = self.joined.get(connection_id, {}).pop(room, None)
            if membership is None:
                raise NotInRoomError
            conn = self.connections.get(connection_id)
            if conn is not None and not disconnected:
                conn.rooms -= 1
            return Member(connection_id, membership.name)

    def memberships(self, connection_id: str) -> list[Membership]:
        return [
            Membership(room, m.room_name, m.shard, m.joined_at)
            for room, m in sorted(self.joined.get(connection_id, {}).items())
        ]

    def membership(self, connection_id: str, room: str) -> Membership | None:
        m = self.joined.get(connection_id, {}).get(room)
        if m is None or not self._live(m.expires_at):
            return None
        return Membership(room, m.room_name, m.shard, m.joined_at)

    def rewrite_message(self, change: Rewrite) -> EventSeq:
        entry = self.histories.get(change.room, {}).get(change.of)
        if (
            entry is None
            or not self._live(entry.expires_at)
            or entry.kind != MSG
            or entry.deleted
            or entry.message_id != change.message_id
        ):
            raise UnknownMessageError
        if entry.by != change.by:
            raise NotYoursError
        if entry.ts <= change.window_start_ms:
            raise EditWindowClosedError
        taken = self.next_event(change.room, change.kind)
        latest, event = change.build(taken, entry.frame)
        with self._lock:
            entry.frame = latest
            entry.deleted = change.kind != "edit"
            self.histories[change.room][taken.seq] = _Entry(
                event,
                taken.prev_public,
                taken.prev_event,
                change.event_expires_at,
                kind=change.kind,
                by=change.by,
                message_id=change.message_id,
                ts=int(self._clock() * 1000),
            )
        return taken

    def _grant(self, identity: str, room: RoomMeta, sender: str, limits: RoomLimits) -> Invite:
        now = int(self._clock())
        invite = Invite(room.key, room.name, sender, now, now + limits.invite_ttl_seconds)
        self.grants.setdefault(identity, {})[room.key] = invite
        return invite

    def put_invite(
        self, identity: str, room: RoomMeta, sender: str, *, limits: RoomLimits
    ) -> Invite:
        with self._lock:
            return self._grant(identity, room, sender, limits)

    def invites(self, identity: str, limit: int) -> list[Invite]:
        found = sorted(self.grants.get(identity, {}).items())
        return [invite for _, invite in found if self._live(invite.expires_at)][:limit]

    def mark_read(
        self, identity: str, room: RoomMeta, seq: int, *, limits: RoomLimits
    ) -> ReadState:
        with self._lock:
            mine = self.reads.setdefault(identity, {})
            current = mine.get(room.key)
            if current is not None and self._live(current.expires_at) and current.seq >= seq:
                return current
            expires = int(self._clock()) + limits.read_state_ttl_seconds
            mine[room.key] = ReadState(room.key, seq, room.name, room.kind, expires)
            return mine[room.key]

    def read_states(self, identity: str, limit: int) -> list[ReadState]:
        found = sorted(self.reads.get(identity, {}).items())
        return [state for _, state in found if self._live(state.expires_at)][:limit]

    def unread(self, room: str, after: int, cap: int = UNREAD_CAP) -> int:
        count = sum(
            1
            for seq, entry in self.histories.get(room, {}).items()
            if seq > after
            and entry.kind == MSG
            and not entry.deleted
            and self._live(entry.expires_at)
        )
        return min(count, cap)

    def public_rooms(self, limit: int) -> tuple[list[ListedRoom], bool]:
        live = [
            entry
            for _, (entry, expires) in sorted(self.registry.items())
            if self._live(expires) and entry.kind != DIRECT
        ]
        return live[:limit], len(live) <= limit


@dataclass
class RecordingNotifier:
    """Notifier that records every frame per connection; `gone` ids answer 410."""

    gone: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    inbox: dict[str, list[Frame]] = field(default_factory=dict)
    gone_checks: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        gone = frozenset(cid for cid in deliveries if cid in self.gone)
        failed = 0
        for cid, batch in deliveries.items():
            if cid in self.gone:
                continue
            if cid in self.failing:
                failed += 1
                continue
            self.inbox.setdefault(cid, []).extend(batch)
        return DeliveryReport(sent=len(deliveries) - len(gone) - failed, gone=gone, failed=failed)

    def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)

    def is_gone(self, connection_id: str) -> bool:
        self.gone_checks.append(connection_id)
        return connection_id in self.gone

    def frames(self, connection_id: str) -> list[Frame]:
        """The frames received, each `eventId` checked and left out (tests.support.frames)."""
        return plain_all(self.inbox.get(connection_id, []))

    def raw_frames(self, connection_id: str) -> list[Frame]:
        return self.inbox.get(connection_id, [])

    def take(self, connection_id: str) -> list[Frame]:
        """The frames received since the last take (as `frames` gives them)."""
        return plain_all(self.inbox.pop(connection_id, []))

    def clear(self) -> None:
        self.inbox.clear()
