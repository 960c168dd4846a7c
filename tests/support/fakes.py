"""In-memory stand-ins for the chat's two ports, with the same semantics as the adapters."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chat.errors import ConcurrentUpdateError, NameOwnedError, NameTakenError, RoomFullError
from chat.frames import Frame, encode
from chat.ports import (
    Admission,
    Connection,
    DeliveryReport,
    Member,
    Newcomer,
    PeerConnection,
    Receipt,
    Sent,
    TokenBucket,
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


class InMemoryStore:
    """ChatStore in a dict: claims by key, TTL honoured on every read, token buckets."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.connections: dict[str, _Conn] = {}
        self.claims: dict[str, tuple[str, str, int]] = {}  # key -> (cid, name, expires)
        self.seq = 0
        self.last_public = 0
        self.sent: dict[tuple[str, str], Sent] = {}  # (sender key, client id) -> message
        self.messages: list[tuple[int, int, Frame]] = []  # (seq, prev, public frame)
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
            if conn.name is None and len(self.list_members()) >= max_members:
                raise RoomFullError
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

    def list_members(self) -> list[Member]:
        return [
            Member(cid, conn.name)
            for cid, conn in self.connections.items()
            if conn.name is not None and self._live(conn.expires_at)
        ]

    def next_seq(self, *, public: bool) -> tuple[int, int]:
        with self._lock:
            self.seq += 1
            prev = self.last_public
            if public:
                self.last_public = self.seq
            return self.seq, prev

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
                self.messages.append((receipt.seq, receipt.prev, receipt.public))
            return None

    def forget_message(self, sender_key: str, client_id: str) -> None:
        self.sent.pop((sender_key, client_id), None)

    def history(self, after: int | None, limit: int, max_bytes: int) -> tuple[list[Frame], bool]:
        later = [m for m in self.messages if m[0] > (after or 0)]
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
        return [], self.last_public <= floor

    def remove_connection(self, connection_id: str) -> Member | None:
        with self._lock:
            conn = self.connections.pop(connection_id, None)
            self.unnamed.pop(connection_id, None)
            if conn is None or conn.name is None:
                return None
            for key in conn.keys:
                if self.claims.get(key, ("",))[0] == connection_id:
                    del self.claims[key]
            return Member(connection_id, conn.name) if self._live(conn.expires_at) else None


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
