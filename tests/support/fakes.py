"""In-memory stand-ins for the chat's two ports, with the same semantics as the adapters."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chat.errors import ConcurrentUpdateError, NameTakenError
from chat.frames import Frame
from chat.service import Connection, DeliveryReport, Member


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


class InMemoryStore:
    """ChatStore in a dict: case-insensitive name claims, TTL honoured on every read."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.connections: dict[str, _Conn] = {}
        self.claims: dict[str, tuple[str, str, int]] = {}  # folded -> (cid, name, expires)

    def _live(self, expires_at: int) -> bool:
        return expires_at > self._clock()

    def add_connection(self, connection_id: str, expires_at: int) -> None:
        with self._lock:
            self.connections[connection_id] = _Conn(None, expires_at)

    def get_connection(self, connection_id: str) -> Connection | None:
        conn = self.connections.get(connection_id)
        if conn is None or not self._live(conn.expires_at):
            return None
        return Connection(connection_id, conn.name, conn.expires_at)

    def claim_name(
        self, connection_id: str, name: str, previous: str | None, expires_at: int
    ) -> None:
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None or conn.name != previous:
                raise ConcurrentUpdateError
            holder = self.claims.get(name.casefold())
            if holder and holder[0] != connection_id and self._live(holder[2]):
                raise NameTakenError(holder[0], holder[1])
            if previous is not None and previous.casefold() != name.casefold():
                self.claims.pop(previous.casefold(), None)
            self.claims[name.casefold()] = (connection_id, name, expires_at)
            conn.name = name

    def find_member(self, name: str) -> Member | None:
        holder = self.claims.get(name.casefold())
        if holder is None or not self._live(holder[2]):
            return None
        return Member(holder[0], holder[1])

    def list_members(self) -> list[Member]:
        return [
            Member(cid, conn.name)
            for cid, conn in self.connections.items()
            if conn.name is not None and self._live(conn.expires_at)
        ]

    def remove_connection(self, connection_id: str) -> Member | None:
        with self._lock:
            conn = self.connections.pop(connection_id, None)
            if conn is None or conn.name is None:
                return None
            holder = self.claims.get(conn.name.casefold())
            if holder and holder[0] == connection_id:
                del self.claims[conn.name.casefold()]
            return Member(connection_id, conn.name) if self._live(conn.expires_at) else None


@dataclass
class RecordingNotifier:
    """Notifier that records every frame per connection; `gone` ids answer 410."""

    gone: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    inbox: dict[str, list[Frame]] = field(default_factory=dict)
    gone_checks: list[str] = field(default_factory=list)

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

    def is_gone(self, connection_id: str) -> bool:
        self.gone_checks.append(connection_id)
        return connection_id in self.gone

    def frames(self, connection_id: str) -> list[Frame]:
        return self.inbox.get(connection_id, [])

    def take(self, connection_id: str) -> list[Frame]:
        """The frames received since the last take."""
        return self.inbox.pop(connection_id, [])

    def clear(self) -> None:
        self.inbox.clear()
