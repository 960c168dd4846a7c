"""The chat's rules: who may do what, and which member receives which frame.

Pure logic: it talks to storage and to the connections only through the two ports
in `chat.ports`, so it runs the same against DynamoDB + API Gateway, the local sandbox, or
in-memory fakes in tests.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from chat import frames
from chat.errors import ChatError, ConcurrentUpdateError, ErrorCode, NameTakenError
from chat.frames import Frame
from chat.ports import ChatStore, Connection, Member, Notifier

NAME_MAX_LENGTH = 32
MESSAGE_MAX_LENGTH = 2000
CLAIM_ATTEMPTS = 5
PRUNE_ROUNDS = 5


def validate_name(raw: object) -> str:
    """The trimmed name. Raises ChatError(INVALID_NAME) with the reason."""
    if not isinstance(raw, str):
        raise ChatError(ErrorCode.INVALID_NAME, "A name must be a string.")
    name = raw.strip()
    if not name:
        raise ChatError(ErrorCode.INVALID_NAME, "A name must not be empty.")
    if len(name) > NAME_MAX_LENGTH:
        raise ChatError(
            ErrorCode.INVALID_NAME, f"A name must be at most {NAME_MAX_LENGTH} characters."
        )
    if ":" in name:
        raise ChatError(ErrorCode.INVALID_NAME, 'A name must not contain ":".')
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise ChatError(ErrorCode.INVALID_NAME, "A name must not contain control characters.")
    return name


def validate_message(raw: object) -> str:
    """The trimmed message. Raises ChatError(INVALID_MESSAGE or MESSAGE_TOO_LONG)."""
    if not isinstance(raw, str):
        raise ChatError(ErrorCode.INVALID_MESSAGE, "A message must be a string.")
    text = raw.strip()
    if not text:
        raise ChatError(ErrorCode.INVALID_MESSAGE, "A message must not be empty.")
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ChatError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"A message must be at most {MESSAGE_MAX_LENGTH} characters (got {len(text)}).",
        )
    return text


class ChatService:
    """One room of named members. Every method is one client request."""

    def __init__(
        self,
        store: ChatStore,
        notifier: Notifier,
        *,
        connection_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._ttl = connection_ttl_seconds
        self._clock = clock

    # --- requests -------------------------------------------------------------------

    def connect(self, connection_id: str, connected_at_ms: int | None = None) -> None:
        """Record a new, unnamed connection. Nobody is told."""
        started = connected_at_ms / 1000 if connected_at_ms else self._clock()
        self._store.add_connection(connection_id, int(started) + self._ttl)

    def disconnect(self, connection_id: str) -> None:
        """Forget the connection; if it was a member, the others get the leave notice."""
        self._remove_and_announce([connection_id])

    def set_name(self, connection_id: str, raw_name: object) -> None:
        """Claim a name (first time: join) or change it (rename).

        Raises ChatError(INVALID_NAME, NAME_TAKEN). Setting one's current name is a no-op.
        """
        name = validate_name(raw_name)
        previous: str | None = None
        for _ in range(CLAIM_ATTEMPTS):
            current = self._store.get_connection(connection_id)
            if current is None:
                # Its $connect was never recorded (or has expired): record it now. If the
                # socket is in fact gone, the join broadcast below gets a 410 and prunes it.
                current = Connection(connection_id, None, int(self._clock()) + self._ttl)
                self._store.add_connection(connection_id, current.expires_at)
            previous = current.name
            if previous == name:
                return
            try:
                self._store.claim_name(connection_id, name, previous, current.expires_at)
                break
            except NameTakenError as taken:
                if taken.holder_connection_id == connection_id or not self._notifier.is_gone(
                    taken.holder_connection_id
                ):
                    raise ChatError(
                        ErrorCode.NAME_TAKEN, f'The name "{taken.holder_name}" is already taken.'
                    ) from None
                # The holder's socket is gone but its $disconnect never came: reclaim.
                self._remove_and_announce([taken.holder_connection_id])
            except ConcurrentUpdateError:
                continue
        else:
            raise ChatError(ErrorCode.INTERNAL, "The name could not be set; please try again.")

        me = Member(connection_id, name)
        roster = [m for m in self._store.list_members() if m.connection_id != connection_id]
        roster.append(me)
        notice = frames.joined(name) if previous is None else frames.renamed(previous, name)
        self._broadcast(roster, [frames.members(m.name for m in roster), notice])

    def send_public(self, connection_id: str, raw_message: object) -> None:
        """Send a message to every member, the sender included.

        Raises ChatError(NAME_REQUIRED, INVALID_MESSAGE, MESSAGE_TOO_LONG).
        """
        text = validate_message(raw_message)
        roster = self._store.list_members()
        sender = next((m for m in roster if m.connection_id == connection_id), None)
        if sender is None:
            raise self._name_required()
        self._broadcast(roster, [frames.public_message(sender.name, text, self._now_ms())])

    def send_private(self, connection_id: str, raw_to: object, raw_message: object) -> None:
        """Send a message to one member, matched by name case-insensitively.

        Raises ChatError(NAME_REQUIRED, UNKNOWN_RECIPIENT, INVALID_MESSAGE, MESSAGE_TOO_LONG).
        """
        me = self._store.get_connection(connection_id)
        if me is None or me.name is None:
            raise self._name_required()
        text = validate_message(raw_message)
        recipient_name = raw_to.strip() if isinstance(raw_to, str) else ""
        if not recipient_name:
            raise ChatError(ErrorCode.UNKNOWN_RECIPIENT, "Say who the message is for (to).")
        recipient = self._store.find_member(recipient_name)
        if recipient is None:
            raise self._unknown_recipient(recipient_name)
        frame = frames.private_message(me.name, recipient.name, text, self._now_ms())
        report = self._notifier.send({recipient.connection_id: [frame]})
        if report.gone:
            self._remove_and_announce(report.gone)
        if recipient.connection_id in report.gone:
            raise self._unknown_recipient(recipient_name)

    def notify(self, connection_id: str, frame: Frame) -> None:
        """Send one frame to one connection (an error reply); a gone connection is ignored."""
        self._notifier.send({connection_id: [frame]})

    # --- delivery and pruning -----------------------------------------------------------

    def _broadcast(self, roster: Iterable[Member], batch: Sequence[Frame]) -> None:
        report = self._notifier.send({m.connection_id: batch for m in roster})
        if report.gone:
            self._remove_and_announce(report.gone)

    def _remove_and_announce(self, connection_ids: Iterable[str]) -> None:
        """Remove connections and tell the remaining members who left, until no post hits a 410."""
        pending = set(connection_ids)
        for _ in range(PRUNE_ROUNDS):
            departed = [m for cid in sorted(pending) if (m := self._store.remove_connection(cid))]
            if not departed:
                return
            roster = self._store.list_members()
            batch = [frames.left(m.name) for m in departed]
            batch.append(frames.members(m.name for m in roster))
            report = self._notifier.send({m.connection_id: batch for m in roster})
            pending = set(report.gone)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @staticmethod
    def _name_required() -> ChatError:
        return ChatError(ErrorCode.NAME_REQUIRED, "Set a name (setName) before sending messages.")

    @staticmethod
    def _unknown_recipient(name: str) -> ChatError:
        return ChatError(ErrorCode.UNKNOWN_RECIPIENT, f'Nobody called "{name}" is in the chat.')
