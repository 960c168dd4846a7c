"""The load's clients: token-bucket pacing, the records of a run, and a client that
joins, sends under the acknowledgement rule, leaves and rejoins (see bench/load/__init__.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.load.config import FULLWIDTH, POOL, ROOT, Frame, Limits, LoadConfig

# --- client-side pacing -------------------------------------------------------------------


class Bucket:
    """A token bucket like the server's, so that the clients never go over its limits."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    async def take(self) -> None:
        while True:
            self._refill()
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)

    def try_take(self) -> bool:
        """Take a token if one is there now; never wait."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# --- what happened ------------------------------------------------------------------------


@dataclass
class Message:
    index: int
    client: int
    private: bool
    text: str
    cid: str  # the frame id
    conn: int = -1  # serial of the sending connection
    target: int = -1  # private: serial of the recipient's connection
    t_send: float = math.nan
    t_last_send: float = math.nan
    t_ack: float = math.nan
    seq: int | None = None
    message_id: str | None = None
    retries: int = 0
    failed: str | None = None
    other_ids: set[str] = field(default_factory=set)  # messageIds seen that differ

    @property
    def acked(self) -> bool:
        return not math.isnan(self.t_ack)


@dataclass
class Claim:
    """A successful setName: the name, its keys, and when it was certainly held."""

    conn: int
    name: str
    keys: frozenset[str]
    t_sent: float
    t_ack: float
    t_left: float = math.inf


class Conn:
    """One WebSocket connection of a client (a client opens one per session)."""

    def __init__(self, serial: int, client: int, check_names: bool) -> None:
        self.serial = serial
        self.client = client
        self.check_names = check_names
        self.name: str | None = None
        self.t_joined = math.inf
        self.t_left = math.inf
        self.pending: dict[str, asyncio.Future[tuple[float, Frame]]] = {}
        self.recv_index = array("i")
        self.recv_time = array("d")
        self.history: list[int] = []  # message indexes received as history at the join
        self.history_complete: bool | None = None
        self.since: int | None = None
        self.last_public_seq = 0
        self.members_frames = 0


class Run:
    """Shared state of one load run, and the bookkeeping the readers do."""

    def __init__(self, config: LoadConfig, limits: Limits) -> None:
        self.config = config
        self.limits = limits
        self.tag = f"L{os.urandom(4).hex()}"  # tells this run's messages from older ones
        self.messages: list[Message] = []
        self.conns: list[Conn] = []
        self.claims: list[Claim] = []
        self.names_in_room: dict[int, str] = {}  # conn serial -> name, while joined
        self.errors: Counter[str] = Counter()
        self.rate_limited = 0
        self.private_refused = 0  # UNKNOWN_RECIPIENT: the recipient left before the message
        self.timeouts = 0
        self.join_retries = 0
        self.contested_wins = 0
        self.contested_losses = 0
        self.member_list_violations: list[str] = []
        self.foreign_frames = 0
        self.started = time.monotonic()
        self._keys_cache: dict[str, frozenset[str]] = {}

    # -- names ---------------------------------------------------------------------------

    def keys(self, name: str) -> frozenset[str]:
        keys = self._keys_cache.get(name)
        if keys is None:
            from chat.names import claim_keys  # noqa: PLC0415 (lambda_src on the path)

            keys = self._keys_cache[name] = frozenset(claim_keys(name))
        return keys

    def check_member_list(self, names: list[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            for key in self.keys(name):
                other = seen.get(key)
                if other is not None and other != name:
                    self.member_list_violations.append(f"{other!r} and {name!r} share key {key!r}")
                seen[key] = name
        if len(set(names)) != len(names):
            self.member_list_violations.append(f"a name twice in a member list: {names}")

    # -- frames --------------------------------------------------------------------------

    def index_of(self, text: object) -> int | None:
        if not isinstance(text, str) or not text.startswith(self.tag):
            return None
        try:
            return int(text.split(" ", 2)[1])
        except (IndexError, ValueError):
            return None

    def on_frame(self, conn: Conn, raw: str | bytes, now: float) -> None:
        frame = json.loads(raw)
        if "publicMessage" in frame or "privateMessage" in frame:
            self._on_message(conn, frame, now)
        elif "ack" in frame:
            self._resolve(conn, frame.get("id"), frame, now)
        elif "error" in frame:
            error = frame["error"]
            if not self._resolve(conn, error.get("id"), frame, now):
                self.errors[f"{error.get('action')} {error.get('code')} (no id)"] += 1
        elif "message" in frame and "connectionId" in frame:  # API Gateway's own error frames
            self.errors[f"gateway: {frame['message']}"] += 1
        elif "members" in frame:
            conn.members_frames += 1
            if conn.check_names:
                self.check_member_list(frame["members"])
        elif "history" in frame:
            for item in frame["history"]:
                index = self.index_of(item.get("text"))
                if index is not None:
                    conn.history.append(index)
                if isinstance(item.get("seq"), int):
                    conn.last_public_seq = max(conn.last_public_seq, item["seq"])
            if frame.get("final"):
                conn.history_complete = bool(frame.get("complete"))
                self._resolve(conn, frame.get("id"), frame, now)

    def _resolve(self, conn: Conn, frame_id: object, frame: Frame, now: float) -> bool:
        if not isinstance(frame_id, str):
            return False
        future = conn.pending.pop(frame_id, None)
        if future is None or future.done():
            return False
        future.set_result((now, frame))
        return True

    def _on_message(self, conn: Conn, frame: Frame, now: float) -> None:
        if "publicMessage" in frame and isinstance(frame.get("seq"), int):
            conn.last_public_seq = max(conn.last_public_seq, frame["seq"])
        index = self.index_of(frame.get("text"))
        if index is None or index >= len(self.messages):
            self.foreign_frames += 1
            return
        message = self.messages[index]
        if "id" in frame and message.conn == conn.serial and message.cid == frame["id"]:
            self._resolve(conn, frame["id"], frame, now)  # the sender's own copy: its ack
            return
        mid = frame.get("messageId")
        if isinstance(mid, str) and message.message_id is not None and mid != message.message_id:
            message.other_ids.add(mid)
        conn.recv_index.append(index)
        conn.recv_time.append(now)

    # -- progress ------------------------------------------------------------------------

    def progress(self) -> str:
        acked = sum(1 for m in self.messages if m.acked)
        deliveries = sum(len(c.recv_index) for c in self.conns)
        elapsed = time.monotonic() - self.started
        waiting = sum(len(c.pending) for c in self.conns)
        return (
            f"{elapsed:6.1f}s  acked {acked}/{self.config.messages}  waiting {waiting}  "
            f"({acked / elapsed:.0f}/s)  in room {len(self.names_in_room)}  "
            f"connections {len(self.conns)}  deliveries {deliveries}  "
            f"errors {sum(self.errors.values())}"
        )


# --- one client ---------------------------------------------------------------------------


class Client:
    def __init__(self, run: Run, index: int, url: str, quota: int, rng: random.Random) -> None:
        self.run = run
        self.index = index
        self.url = url
        self.quota = quota
        self.rng = rng
        config, limits = run.config, run.limits
        self.bucket = Bucket(limits.message_burst, limits.message_rate_per_second * config.pace)
        self.last_seq: int | None = None
        self.sent = 0
        self.refused_private = False

    async def main(self) -> None:
        config = self.run.config
        await asyncio.sleep(self.rng.uniform(0, config.ramp_s))
        shares = _split(self.quota, config.sessions, self.rng)
        session = 0
        # A session that ends early (its join refused, a message that failed) hands what it
        # did not send to the next one; up to three extra sessions finish the quota.
        while session < len(shares) + 3 and self.sent < self.quota:
            planned = sum(shares[: session + 1]) if session < len(shares) else self.quota
            await self.session(session, max(0, min(planned, self.quota) - self.sent))
            session += 1
            if self.sent < self.quota:
                await asyncio.sleep(self.rng.uniform(*config.pause_s))
        if self.sent < self.quota:
            self.run.errors["client could not send its quota"] += 1

    def source(self) -> dict[str, Any]:
        """Each client from its own loopback address (127.0.x.y), kept across its sessions,
        as each person reaches API Gateway from their own: the limits per address apply
        to a client, not to the whole run."""
        if "://127.0.0.1" not in self.url:
            return {}
        return {"local_addr": (f"127.0.{self.index // 250 + 1}.{self.index % 250 + 1}", 0)}

    async def session(self, session: int, share: int) -> None:
        from websockets.asyncio.client import connect  # noqa: PLC0415
        from websockets.exceptions import InvalidHandshake  # noqa: PLC0415

        run = self.run
        conn = Conn(len(run.conns), self.index, self.index < run.config.sample_connections)
        run.conns.append(conn)
        for attempt in range(5):
            try:
                ws = await connect(
                    self.url, max_size=None, open_timeout=60, proxy=None, **self.source()
                )
                break
            except (OSError, TimeoutError, InvalidHandshake) as error:
                run.errors[f"connect: {type(error).__name__}"] += 1
                await asyncio.sleep(1 + attempt)
        else:
            return
        async with ws:
            reader = asyncio.create_task(self._read(ws, conn))
            try:
                if not await self.join(ws, conn, session):
                    return
                done, refused = 0, 0
                while done < share and refused <= share:
                    think = run.config.think_s
                    if think > 0:
                        await asyncio.sleep(min(3 * think, self.rng.expovariate(1 / think)))
                    if await self.send_one(ws, conn):
                        done += 1
                    elif self.refused_private:
                        refused += 1  # the recipient left meanwhile: write to someone else
                    else:
                        break
                # Leave: from now on nothing more is required of this connection.
                conn.t_left = time.monotonic()
            finally:
                conn.t_left = min(conn.t_left, time.monotonic())
                run.names_in_room.pop(conn.serial, None)
                for claim in run.claims:
                    if claim.conn == conn.serial:
                        claim.t_left = conn.t_left
                self.last_seq = conn.last_public_seq or self.last_seq
                await ws.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader, 30)

    async def _read(self, ws: Any, conn: Conn) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                self.run.on_frame(conn, raw, time.monotonic())

    async def request(
        self, ws: Any, conn: Conn, frame_id: str, frame: Frame
    ) -> tuple[float, Frame]:
        future: asyncio.Future[tuple[float, Frame]] = asyncio.get_running_loop().create_future()
        conn.pending[frame_id] = future
        await ws.send(json.dumps(frame))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.run.config.ack_timeout_s)
        finally:
            if not future.done():
                conn.pending.pop(frame_id, None)

    async def join(self, ws: Any, conn: Conn, session: int) -> bool:
        run = self.run
        own = f"u{self.index:03d}s{session}"
        names = [own]
        if self.rng.random() < run.config.contest:
            names.insert(0, _lookalike(self.rng.choice(POOL), self.rng))
        name_bucket = Bucket(run.limits.name_burst, run.limits.name_rate_per_second)
        for attempt in range(20):
            name = names[0]
            frame: Frame = {"action": "setName", "name": name, "id": f"j{conn.serial}-{attempt}"}
            if self.last_seq is not None:
                frame["since"] = self.last_seq
                conn.since = self.last_seq
            await name_bucket.take()
            t_sent = time.monotonic()
            try:
                t_ack, reply = await self.request(ws, conn, frame["id"], frame)
            except TimeoutError:
                run.timeouts += 1
                continue
            if "ack" in reply:
                conn.name = str(reply.get("name", name))
                # In the room for certain from here (the ack follows the member list).
                conn.t_joined = t_ack
                run.names_in_room[conn.serial] = conn.name
                run.claims.append(Claim(conn.serial, conn.name, run.keys(conn.name), t_sent, t_ack))
                if name != own:
                    run.contested_wins += 1
                return True
            code = reply["error"].get("code")
            run.join_retries += 1
            if code == "NAME_TAKEN" and len(names) > 1:
                run.contested_losses += 1
                names.pop(0)
            elif code == "RATE_LIMITED":
                run.rate_limited += 1
                await asyncio.sleep(reply["error"].get("retryAfterMs", 1000) / 1000)
            elif code in ("NAME_TAKEN", "ROOM_FULL", "INTERNAL"):
                run.errors[f"setName {code}"] += 1
                await asyncio.sleep(0.5)
            else:
                run.errors[f"setName {code}"] += 1
                return False
        return False

    async def send_one(self, ws: Any, conn: Conn) -> bool:
        """Send one message and wait for its acknowledgement; False if it was refused."""
        run = self.run
        self.refused_private = False
        index = len(run.messages)
        private = self.rng.random() < run.config.private_ratio
        target = None
        if private:
            others = [s for s in run.names_in_room if s != conn.serial]
            target = self.rng.choice(others) if others else None
            private = target is not None
        text = f"{run.tag} {index} from {conn.name}"
        message = Message(index, self.index, private, text, cid=f"m{index}", conn=conn.serial)
        run.messages.append(message)
        frame: Frame = {"action": "sendPublic", "message": text, "id": message.cid}
        if private and target is not None:
            message.target = target
            frame = {**frame, "action": "sendPrivate", "to": run.names_in_room[target]}
        while True:
            await self.bucket.take()
            now = time.monotonic()
            if math.isnan(message.t_send):
                message.t_send = now
            message.t_last_send = now
            try:
                t_ack, reply = await self.request(ws, conn, message.cid, frame)
            except TimeoutError:
                run.timeouts += 1
                message.retries += 1
                if message.retries > 3:
                    message.failed = "timeout"
                    return False
                continue  # resend with the same id: the server de-duplicates it
            if "error" in reply:
                code = str(reply["error"].get("code"))
                if code == "RATE_LIMITED":
                    run.rate_limited += 1
                    message.retries += 1
                    await asyncio.sleep(reply["error"].get("retryAfterMs", 500) / 1000)
                    continue
                message.failed = code
                if private and code == "UNKNOWN_RECIPIENT":
                    # The protocol's answer when the recipient is gone (churn): not an error.
                    run.private_refused += 1
                    self.refused_private = True
                else:
                    run.errors[f"{frame['action']} {code}"] += 1
                return False
            message.t_ack = t_ack
            message.seq = reply.get("seq") if isinstance(reply.get("seq"), int) else None
            message.message_id = reply.get("messageId")
            self.sent += 1
            return True


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive-ish shares, at random."""
    parts = max(1, min(parts, total)) if total else 1
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _lookalike(name: str, rng: random.Random) -> str:
    """`name` or a spelling that looks the same to the chat (case, full width)."""
    return rng.choice(
        [name, name.lower(), name.upper(), "".join(FULLWIDTH.get(c, c) for c in name)]
    )


# --- the run ------------------------------------------------------------------------------


class Progressing(Protocol):
    """A run's records as `drive` needs them: its error counts and its progress line."""

    errors: Counter[str]

    def progress(self) -> str: ...


class Driven(Protocol):
    """One simulated client: its whole life is `main`."""

    async def main(self) -> None: ...


async def drive(
    clients: Sequence[Driven],
    run: Progressing,
    *,
    progress: Callable[[str], None] | None,
    every_s: float,
) -> None:
    """Run every client to its end, printing the run's progress every `every_s` seconds
    and at the end; a client that crashes is counted in the run's errors, not raised."""

    async def report() -> None:
        while True:
            await asyncio.sleep(every_s)
            if progress is not None:
                progress(run.progress())

    ticker = asyncio.create_task(report())
    try:
        results = await asyncio.gather(*(c.main() for c in clients), return_exceptions=True)
    finally:
        ticker.cancel()
    for result in results:
        if isinstance(result, BaseException):
            run.errors[f"client crashed: {type(result).__name__}: {result}"[:200]] += 1
    if progress is not None:
        progress(run.progress())


async def run_load(
    config: LoadConfig,
    url: str,
    limits: Limits,
    *,
    progress: Callable[[str], None] | None = print,
    every_s: float = 5.0,
) -> Run:
    """Run the clients against `url`; returns the run's records (count them with `count`)."""
    sys.path.insert(0, str(ROOT / "lambda_src"))
    run = Run(config, limits)
    rng = random.Random(config.seed)
    share, extra = divmod(config.messages, config.clients)
    clients = [
        Client(run, i, url, share + (1 if i < extra else 0), random.Random(rng.random()))
        for i in range(config.clients)
    ]
    await drive(clients, run, progress=progress, every_s=every_s)
    return run
