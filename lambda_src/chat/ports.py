"""The chat's ports: what the rules need from storage and from the connections, and the
values that cross them: frames, and the errors a store raises. The rules (`chat.service`)
and the adapters (`chat.store`, `chat.notifier`, `chat.fanout`, `chat.sharding`) import this
module; the adapters never import the rules' modules (`frames`, `errors`, `names`, `service`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# One server-to-client frame: a JSON object (its shapes: chat/frames.py, docs/protocol.md).
Frame = dict[str, Any]


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


@dataclass(frozen=True)
class Member:
    """A connection that holds a name."""

    connection_id: str
    name: str


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


@dataclass(frozen=True)
class Newcomer:
    """A connection being recorded at $connect: who it is, as the handshake says."""

    connection_id: str
    expires_at: int
    connected_at_ms: int
    bound_name: str | None = None
    subject: str | None = None
    peers: tuple[str, ...] = ()


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
    ) -> None:
        """Atomically give `name` (occupying `keys`) to the connection, releasing its old keys.

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

    def list_members(self) -> list[Member]:
        """Every live named member (all pages)."""
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

    def forget_message(self, sender_key: str, client_id: str) -> None:
        """Forget an acknowledgement (the message could not be delivered)."""
        ...

    def history(self, after: int | None, limit: int, max_bytes: int) -> tuple[list[Frame], bool]:
        """Public messages with seq > `after` (or the most recent ones), oldest first: the
        newest ones, at most `limit` of them and at most `max_bytes` of stored frames; and
        whether nothing after `after` (or since the room's first message) is missing from
        the list. Read eventually consistent from the history's own partition."""
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
