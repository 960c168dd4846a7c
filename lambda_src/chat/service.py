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
from collections.abc import Callable, Iterable, Mapping, Sequence

from chat import frames
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
    ChatStore,
    Connection,
    Member,
    Newcomer,
    Notifier,
    Receipt,
    Sent,
    TokenBucket,
)
from chat.settings import RESERVED_NAMES, Limits, Retention

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
    "validate_message",
]


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
        reserved_names: Sequence[str] = RESERVED_NAMES,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._ttl = connection_ttl_seconds
        self._limits = limits or Limits()
        self._retention = retention or Retention()
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
    ) -> None:
        """Record a new, unnamed connection (with the name sign-in bound it to). Nobody is told.

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
            )
        )

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
    ) -> None:
        """Claim a name (first time: join) or change it (rename).

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
        current = self._claim(sender, name, client_key)
        if current is None:  # it holds that name already
            if client_id is not None:
                self.notify(sender.connection_id, frames.ack("setName", client_id, name=name))
            return

        me = Member(current.connection_id, name)
        roster = self._store.list_members()
        if all(m.connection_id != me.connection_id for m in roster):
            # Its $disconnect ran since the claim: nobody is told about a gone member.
            raise self._not_connected()
        notice = frames.joined(name) if current.name is None else frames.renamed(current.name, name)
        names = [m.name for m in roster]
        if self._small(roster):
            member_list = [frames.members(names)]
            theirs = [*member_list, notice]
        else:  # a big room: the others apply the notice to the list they have
            member_list = frames.member_pages(names)
            theirs = [notice]
        mine = list(member_list)
        if current.name is None:  # a join: the history (after `since`, on a reconnect)
            mine += self._history_frames(since, None)
        mine.append(notice)
        if client_id is not None:
            mine.append(frames.ack("setName", client_id, name=name))
        self._deliver(roster, me.connection_id, theirs, mine)

    def _claim(self, sender: Connection, name: str, client_key: str | None) -> Connection | None:
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
        self, sender: Connection | None, raw_message: object, client_id: str | None = None
    ) -> None:
        """Send a message to every member, the sender's own copy last (its acknowledgement).

        The sender's name is checked before the room is read. A `client_id` this sender
        already used within the de-duplication window is not delivered again: the sender
        gets its acknowledgement again. Raises ChatError(NAME_REQUIRED, INVALID_MESSAGE,
        MESSAGE_TOO_LONG).
        """
        if sender is None or sender.name is None:
            raise self._name_required()
        text = validate_message(raw_message)
        if self._repeat_ack_if_sent_before(sender, client_id):
            return
        seq, prev = self._store.next_seq(public=True)
        stamp = self._stamp(sender, client_id, seq, prev)
        frame = frames.public_message(sender.name, text, stamp)
        mine = frames.with_id(frame, client_id)
        earlier = self._store.record_message(self._receipt(sender, client_id, stamp, mine, frame))
        if earlier is not None and client_id is not None:  # the same id, racing
            self._repeat_ack(sender, client_id, earlier)
            return
        roster = self._store.list_members()
        done = self._mark_delivered_later(sender, client_id)
        self._deliver(roster, sender.connection_id, [frame], [mine], after=done)

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
        seq, _ = self._store.next_seq(public=False)
        stamp = self._stamp(sender, client_id, seq, 0)
        frame = frames.private_message(sender.name, recipient.name, text, stamp)
        acknowledgement = None
        if client_id is not None:
            acknowledgement = frames.ack(
                "sendPrivate",
                client_id,
                seq=stamp.seq,
                messageId=stamp.message_id,
                to=recipient.name,
                ts=stamp.ts,
            )
            receipt = self._receipt(sender, client_id, stamp, acknowledgement, None)
            earlier = self._store.record_message(receipt)
            if earlier is not None:
                self._repeat_ack(sender, client_id, earlier)
                return
        report = self._notifier.send({recipient.connection_id: [frame]})
        if report.gone:
            self._remove_and_announce(report.gone)
        if recipient.connection_id in report.gone:
            if client_id is not None:
                self._store.forget_message(self._sender_key(sender), client_id)
            raise self._unknown_recipient()
        if client_id is not None:
            self._store.mark_delivered(self._sender_key(sender), client_id)
        if acknowledgement is not None:
            self.notify(sender.connection_id, acknowledgement)

    def history(
        self, sender: Connection | None, since: int | None, client_id: str | None = None
    ) -> None:
        """Send the public messages after `since` (or the recent ones) to the sender.

        Raises ChatError(NAME_REQUIRED).
        """
        if sender is None or sender.name is None:
            raise self._name_required()
        limit = self._retention.history_count
        messages, complete = (
            self._store.history(since, limit, self._retention.history_max_bytes)
            if limit
            else ([], False)
        )
        answer = frames.history(messages, complete=complete, client_id=client_id)
        self._notifier.send({sender.connection_id: answer})

    def acknowledge(self, connection_id: str, action: str, client_id: str | None) -> None:
        """Acknowledge a frame that needs nothing else (a keep-alive ping with an id)."""
        if client_id is not None:
            self.notify(connection_id, frames.ack(action, client_id))

    def notify(self, connection_id: str, frame: Frame) -> None:
        """Send one frame to one connection (an error reply); a gone connection is ignored."""
        self._notifier.send({connection_id: [frame]})

    # --- delivery and pruning -----------------------------------------------------------

    def _deliver(
        self,
        roster: Iterable[Member],
        sender_id: str,
        theirs: Sequence[Frame],
        mine: Sequence[Frame],
        *,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Post `theirs` to every member but the sender; only then `mine` to the sender.

        The sender's frames end with its acknowledgement, which therefore never arrives
        before the others' posts have completed: a client that waits for it before
        sending again cannot have its next message overtake this one anywhere.
        """
        others: Mapping[str, Sequence[Frame]] = {
            m.connection_id: theirs for m in roster if m.connection_id != sender_id
        }
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
        return frames.history(messages, complete=complete, client_id=client_id)

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
    ) -> Receipt:
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
        )

    @staticmethod
    def _sender_key(sender: Connection) -> str:
        """Whose ids these are: recorded when the sender joined (chat.service.sender_key)."""
        return sender.sender_key or sender_key(sender, None)

    def _remove_and_announce(self, connection_ids: Iterable[str]) -> None:
        """Remove connections and tell the remaining members who left, until no post hits a 410."""
        pending = set(connection_ids)
        for _ in range(PRUNE_ROUNDS):
            departed = [m for cid in sorted(pending) if (m := self._store.remove_connection(cid))]
            if not departed:
                return
            roster = self._store.list_members()
            batch = [frames.left(m.name) for m in departed]
            if self._small(roster):
                batch.append(frames.members(m.name for m in roster))
            report = self._notifier.send({m.connection_id: batch for m in roster})
            pending = set(report.gone)

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
