"""The chat's ports: what the rules need from storage and from the connections, and the
values that cross them. The rules (`chat.service`) and both adapters (`chat.store`,
`chat.notifier`) import this module; the adapters never import the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chat.frames import Frame


@dataclass(frozen=True)
class Member:
    """A connection that holds a name."""

    connection_id: str
    name: str


@dataclass(frozen=True)
class Connection:
    """A live connection as the store knows it; `name` is None until setName succeeds."""

    connection_id: str
    name: str | None
    expires_at: int


@dataclass(frozen=True)
class DeliveryReport:
    """What happened to a batch of posts: ids API Gateway reported gone, and other failures."""

    sent: int
    gone: frozenset[str]
    failed: int


class ChatStore(Protocol):
    """Storage of connections, name claims and room membership. Reads skip expired items."""

    def add_connection(self, connection_id: str, expires_at: int) -> None: ...

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def claim_name(
        self, connection_id: str, name: str, previous: str | None, expires_at: int
    ) -> None:
        """Atomically give `name` to the connection (releasing `previous`).

        Raises NameTakenError if another connection holds a live claim on the name
        (case-insensitively), ConcurrentUpdateError if the connection's name is no
        longer `previous`.
        """
        ...

    def find_member(self, name: str) -> Member | None:
        """The live member holding `name`, matched case-insensitively."""
        ...

    def list_members(self) -> list[Member]:
        """Every live named member (all pages)."""
        ...

    def remove_connection(self, connection_id: str) -> Member | None:
        """Delete everything the connection owns; the Member if this call removed it from the room.

        Safe to call twice or concurrently: exactly one caller gets the Member back.
        """
        ...


class Notifier(Protocol):
    """Posts frames to connections through API Gateway's @connections API."""

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        """Post each connection its frames, in order; connections are served concurrently."""
        ...

    def is_gone(self, connection_id: str) -> bool:
        """True only when API Gateway reports the connection gone (410)."""
        ...
