"""Load with counts: many clients on real WebSockets through the sandbox, churning, counting.

`make load` (or `python -m bench.load`) starts the sandbox on the synthesized template,
connects --clients clients that join, send their share of --messages public messages
(and --private-ratio of them as private messages), leave, and rejoin (--sessions per
client) under the acknowledgement rule: a client sends its next message only once it has
the acknowledgement of the previous one (v1.1: its own copy carrying its `id`, or the
`ack` frame of a private message). Joins race for a small pool of contested names (and
their look-alikes) as well as taking names of their own. Each client paces itself by
the rate limits of the template (its function's MESSAGE_BURST, MESSAGE_RATE_PER_SECOND,
NAME_BURST, ...), so no frame should be refused.

Definitions (per message m, sent by client c on connection k):

- m's lifetime is [t_send, t_ack]: from its first send until c got its acknowledgement.
- A connection r != k *must* receive m when it was in the room for m's whole lifetime:
  its join was visible (it had received a member list with its name, or its ack) before
  t_send, and it did not start to leave before t_ack. For a private message, r is the
  connection that held the recipient's name then. These are m's required deliveries.
- delivered: distinct connections other than k that received m live (required or not).
- lost: required deliveries that never arrived (the run waits for stragglers at the end).
- duplicated: extra live copies of m on one connection, plus copies of m under a second
  messageId (the server delivering a resend twice).
- out of order: arrivals of one of c's messages at a connection after a later message of
  c had already arrived there (c waited for each acknowledgement, so the protocol promises
  send order); plus c's acknowledged messages whose `seq` does not grow in send order.
- name-uniqueness violations: a member list holding two names whose UTS #39 keys overlap
  (checked on a sample of connections), and two successful claims of look-alike names
  where one claim happened entirely while the other was certainly held; afterwards, the
  table must hold no member and no name claim.
- latency: t_receive - t_send of every live delivery to another member (and, apart,
  t_ack - t_send). All clocks are this process's monotonic clock.

Writes bench/results/load.json (configuration, machine, per-sender counts, totals,
latencies) and prints a summary. The light version runs in `make test`
(tests/bench/test_load_light.py). Latencies are this machine's: the clients, the
sandbox's gateway, its Lambda workers and its moto DynamoDB share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CDK_OUT = ROOT / "cdk.out"
RESULTS = ROOT / "bench" / "results"
REPORT = RESULTS / "load.json"
REGION = "us-east-1"
# Contested names: every join may first try one of these, written as a look-alike.
POOL = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}

Frame = dict[str, Any]


# --- configuration ------------------------------------------------------------------------


# The function's settings, each written once (its environment variable -> its default).
SETTINGS_FILE = ROOT / "lambda_src" / "chat" / "settings.json"
FUNCTION_DEFAULTS: dict[str, Any] = {
    entry["env"]: entry["default"]
    for entry in json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))["settings"]
}


@dataclass(frozen=True)
class Limits:
    """The abuse limits the function enforces (its environment in the template; defaults
    from lambda_src/chat/settings.json)."""

    message_burst: int = FUNCTION_DEFAULTS["MESSAGE_BURST"]
    message_rate_per_second: float = float(FUNCTION_DEFAULTS["MESSAGE_RATE_PER_SECOND"])
    name_burst: int = FUNCTION_DEFAULTS["NAME_BURST"]
    name_rate_per_second: float = float(FUNCTION_DEFAULTS["NAME_RATE_PER_SECOND"])
    max_room_size: int = FUNCTION_DEFAULTS["MAX_ROOM_SIZE"]

    @classmethod
    def from_template(cls, template: Path) -> Limits:
        resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "MESSAGE_BURST" in env:
                return cls.from_environment(env)
        return cls()

    @classmethod
    def from_environment(cls, env: dict[str, Any]) -> Limits:
        defaults = cls()

        def value(key: str, kind: Callable[[Any], Any], default: Any) -> Any:
            raw = env.get(key)
            return kind(raw) if isinstance(raw, (str, int, float)) and raw != "" else default

        return cls(
            message_burst=value("MESSAGE_BURST", int, defaults.message_burst),
            message_rate_per_second=value(
                "MESSAGE_RATE_PER_SECOND", float, defaults.message_rate_per_second
            ),
            name_burst=value("NAME_BURST", int, defaults.name_burst),
            name_rate_per_second=value(
                "NAME_RATE_PER_SECOND", float, defaults.name_rate_per_second
            ),
            max_room_size=value("MAX_ROOM_SIZE", int, defaults.max_room_size),
        )


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 200
    messages: int = 10_000
    sessions: int = 2  # per client: 1 join + (sessions - 1) leave-and-rejoins
    # A public message costs a post per member (200 here), a private one a single post:
    # with 2 cores, a run of 10,000 public messages (2 million posts) takes hours.
    private_ratio: float = 0.9
    # Mean pause between a client's acknowledgement and its next message: 200 clients
    # offer ~10 messages/s, about what the sandbox on 2 cores sustains with this mix.
    think_s: float = 20.0
    contest: float = 0.5  # chance that a join first tries a contested name
    pause_s: tuple[float, float] = (0.2, 2.0)  # between a leave and the rejoin
    ramp_s: float = 30.0  # clients start spread over this time (a join is a broadcast)
    ack_timeout_s: float = 60.0
    pace: float = 0.9  # fraction of the server's rates the clients use
    sample_connections: int = 10  # clients whose member lists are checked for look-alikes
    seed: int = 1


def find_template(cdk_out: Path = CDK_OUT, stack: str | None = None) -> Path:
    """<cdk_out>/<stack>.template.json, or the one stack template with a Lambda chat function."""
    if stack:
        return cdk_out / f"{stack}.template.json"
    default = cdk_out / "ChatStack.template.json"
    if default.exists():
        return default
    for path in sorted(cdk_out.glob("*.template.json")):
        if ".nested." in path.name:
            continue
        if "MESSAGE_BURST" in path.read_text(encoding="utf-8"):
            return path
    raise FileNotFoundError(f"no chat stack template in {cdk_out}: run `make synth`")


# --- client-side pacing -------------------------------------------------------------------


class Bucket:
    """A token bucket like the server's, so that the clients never go over its limits."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.at = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


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


# --- counting -----------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000, 1)

    return {
        "count": len(ordered),
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def count(run: Run) -> dict[str, Any]:
    """Per sender: sent, acknowledged, delivered, required, lost, duplicated, out of order."""
    messages = run.messages
    per: dict[int, Counter[str]] = defaultdict(Counter)
    for m in messages:
        row = per[m.client]
        row["sent"] += 1
        row["acknowledged"] += m.acked
        if m.failed:
            row[f"failed {m.failed}"] += 1
        row["duplicated"] += len(m.other_ids)
    # the server's order of one sender's messages
    last_seq: dict[int, int] = {}
    for m in messages:
        if m.acked and m.seq is not None:
            if m.seq <= last_seq.get(m.client, -1):
                per[m.client]["out_of_order"] += 1
            last_seq[m.client] = m.seq
    acked_public = [m for m in messages if m.acked and not m.private]
    acked_public.sort(key=lambda m: m.t_send)
    sends = [m.t_send for m in acked_public]
    latencies: list[float] = []
    for conn in run.conns:
        received: dict[int, int] = {}
        last_from: dict[int, int] = {}
        for index, t in zip(conn.recv_index, conn.recv_time, strict=True):
            m = messages[index]
            received[index] = received.get(index, 0) + 1
            if received[index] > 1:
                per[m.client]["duplicated"] += 1
                continue
            per[m.client]["delivered"] += 1
            latencies.append(t - m.t_send)
            if index < last_from.get(m.client, -1):
                per[m.client]["out_of_order"] += 1
            last_from[m.client] = max(index, last_from.get(m.client, -1))
        # required public deliveries: sent after this connection joined, acknowledged
        # before it began to leave
        start = bisect_left(sends, conn.t_joined)
        for m in acked_public[start:]:
            if m.conn == conn.serial or m.t_ack > conn.t_left:
                continue
            per[m.client]["required"] += 1
            if m.index not in received:
                per[m.client]["lost"] += 1
    conns = run.conns
    received_by: dict[int, set[int]] = {}
    for m in messages:
        if m.private and m.acked:
            target = conns[m.target]
            if target.t_joined <= m.t_send and target.t_left >= m.t_ack:
                per[m.client]["required"] += 1
                got = received_by.setdefault(m.target, set(target.recv_index))
                if m.index not in got:
                    per[m.client]["lost"] += 1
    rows = []
    for client in sorted(per):
        row = per[client]
        rows.append(
            {
                "client": client,
                **{k: row[k] for k in ("sent", "acknowledged", "delivered", "required")},
                **{k: row[k] for k in ("lost", "duplicated", "out_of_order")},
                "failed": {k[7:]: v for k, v in row.items() if k.startswith("failed ")},
            }
        )
    acks = [m.t_ack - m.t_last_send for m in messages if m.acked]
    return {
        "per_sender": rows,
        "delivery_latency": percentiles(latencies),
        "ack_latency": percentiles(acks),
    }


def recoveries(run: Run) -> dict[str, int]:
    """Rejoins with `since`: did history + live deliveries hold every message after it?"""
    by_seq = sorted(
        (m for m in run.messages if m.acked and not m.private and m.seq is not None),
        key=lambda m: m.seq or 0,
    )
    seqs = [m.seq or 0 for m in by_seq]
    out = Counter[str]()
    for conn in run.conns:
        if conn.since is None or conn.name is None:
            continue
        out["rejoins_with_since"] += 1
        if conn.history_complete is False:
            out["incomplete_history"] += 1
            continue
        have = set(conn.history) | set(conn.recv_index)
        start = bisect_left(seqs, conn.since + 1)
        for m in by_seq[start:]:
            if m.t_ack > conn.t_left or m.client == conn.client:  # own messages: acks
                continue
            out["expected_after_since"] += 1
            if m.index not in have:
                out["missing_after_since"] += 1
        out["history_items"] += len(conn.history)
        out["history_and_live"] += len(set(conn.history) & set(conn.recv_index))
    return dict(out)


def claim_violations(run: Run) -> list[str]:
    """Two look-alike names held at once: one claim made entirely within the other's hold."""
    found = []
    claims = sorted(run.claims, key=lambda c: c.t_sent)
    for i, a in enumerate(claims):
        for b in claims[i + 1 :]:
            if b.t_sent > a.t_left:
                break
            if a.conn != b.conn and a.keys & b.keys and a.t_ack <= b.t_sent and b.t_ack <= a.t_left:
                found.append(f"{b.name!r} claimed while {a.name!r} was held")
    return found


# --- the run ------------------------------------------------------------------------------


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
    return run


def summarize(run: Run, counts: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    rows = counts["per_sender"]
    totals = {
        k: sum(r[k] for r in rows)
        for k in (
            "sent",
            "acknowledged",
            "delivered",
            "required",
            "lost",
            "duplicated",
            "out_of_order",
        )
    }
    violations = claim_violations(run)
    acked = [m for m in run.messages if m.acked]
    return {
        "totals": totals,
        "messages": {
            "public_acknowledged": sum(not m.private for m in acked),
            "private_acknowledged": sum(m.private for m in acked),
        },
        "name_uniqueness": {
            "claims": len(run.claims),
            "contested_claims_won": run.contested_wins,
            "contested_claims_refused": run.contested_losses,
            "violations": len(violations) + len(run.member_list_violations),
            "claim_overlaps": violations[:20],
            "member_list_violations": run.member_list_violations[:20],
            "member_lists_checked": sum(c.members_frames for c in run.conns if c.check_names),
        },
        "recovery": recoveries(run),
        "delivery_latency": counts["delivery_latency"],
        "ack_latency": counts["ack_latency"],
        "connections": len(run.conns),
        "rate_limited": run.rate_limited,
        "private_refused_recipient_gone": run.private_refused,
        "timeouts": run.timeouts,
        "errors": dict(run.errors),
        "foreign_frames": run.foreign_frames,
        **extra,
        "per_sender": rows,
    }


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine competes for the same cores: note how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def summary_text(report: dict[str, Any]) -> str:
    t = report["totals"]
    d, a = report["delivery_latency"], report["ack_latency"]
    names = report["name_uniqueness"]
    config = report["config"]
    lines = [
        f"{config['clients']} clients, {t['sent']} messages "
        f"({report['messages']['public_acknowledged']} public acknowledged), "
        f"{report['connections']} connections ("
        f"{config['sessions']} sessions each), {report['duration_s']:.0f} s, "
        f"{report['workers']} Lambda workers; {report['machine']['nproc']} x "
        f"{report['machine']['cpu']}, Python {report['machine']['python']}",
        f"acknowledged {t['acknowledged']}/{t['sent']} (private to a member who had left: "
        f"{report['private_refused_recipient_gone']}); delivered {t['delivered']} "
        f"(required {t['required']}); lost {t['lost']}, duplicated {t['duplicated']}, "
        f"out of order {t['out_of_order']}",
        f"names: {names['claims']} claims, {names['contested_claims_won']} contested won, "
        f"{names['contested_claims_refused']} refused; uniqueness violations "
        f"{names['violations']}; table after: {report.get('table_after', {})}",
        f"delivery latency p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms, p99 {d['p99_ms']} ms "
        f"(n={d['count']}); ack p50 {a['p50_ms']} ms, p95 {a['p95_ms']} ms, p99 {a['p99_ms']} ms",
        f"recovery after rejoin: {report['recovery']}; rate limited {report['rate_limited']}, "
        f"timeouts {report['timeouts']}, errors {report['errors'] or 0}",
    ]
    return "\n".join(lines)


def clean(report: dict[str, Any]) -> bool:
    t, names = report["totals"], report["name_uniqueness"]
    table = report.get("table_after", {})
    return (
        t["acknowledged"] == report["config"]["messages"]
        and t["sent"] == t["acknowledged"] + report["private_refused_recipient_gone"]
        and not report["errors"]
        and t["lost"] == t["duplicated"] == t["out_of_order"] == 0
        and names["violations"] == 0
        and not table.get("members")
        and not table.get("name_claims")
        and report.get("recovery", {}).get("missing_after_since", 0) == 0
    )


def table_after(dynamodb_endpoint: str, timeout_s: float = 30.0) -> dict[str, int]:
    """Members and name claims left in the chat's table once everyone has gone."""
    import boto3  # noqa: PLC0415

    db = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name=REGION,
        aws_access_key_id="load",
        aws_secret_access_key="load",
    )
    tables = [t for t in db.list_tables()["TableNames"] if "onnection" in t] or db.list_tables()[
        "TableNames"
    ]
    table = tables[0]
    # Every partition a member item can be in, whatever memberPartitions the run used.
    if str(ROOT / "lambda_src") not in sys.path:
        sys.path.insert(0, str(ROOT / "lambda_src"))
    from chat.store import MAX_MEMBER_PARTITIONS, member_partition  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    while True:
        members = sum(
            db.query(
                TableName=table,
                KeyConditionExpression="pk = :room AND begins_with(sk, :member)",
                ExpressionAttributeValues={
                    ":room": {"S": member_partition(shard)},
                    ":member": {"S": "MEMBER#"},
                },
                ConsistentRead=True,
            )["Count"]
            for shard in range(MAX_MEMBER_PARTITIONS)
        )
        if members == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    claims = 0
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :name)",
        "ExpressionAttributeValues": {":name": {"S": "NAME#"}},
        "ConsistentRead": True,
    }
    while True:
        page = db.scan(**request)
        claims += page["Count"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {"members": members, "name_claims": claims}


# --- DynamoDB for long runs -----------------------------------------------------------------
#
# The sandbox's embedded moto answers TransactWriteItems by deep-copying every table it
# touches (to roll back), and a Query by sorting the whole table: both O(items in the
# table). v1.1 keeps two items per message (history, de-duplication record) until their
# TTL, which moto never enforces, so after a few thousand messages every sendPublic costs
# seconds. For `make load` the tool runs its own moto server in a separate process
# (`--dynamodb-server`), with the sandbox's one-request-at-a-time lock, and with those two
# operations made proportional to what they touch: a transaction checks every condition
# against the state before it (each item at most once, as DynamoDB requires), then
# applies its writes, undoing them from per-item copies if one fails; a Query on the
# table reads only its partition; results are written with json.dumps rather than moto's
# generic serializer. Answers are the same; only the cost differs.

_partition = threading.local()


def _moto() -> Any:
    """The moto internals the speed-ups use, or None when this moto lacks them."""
    import types  # noqa: PLC0415

    try:
        from moto.dynamodb import exceptions, models, responses  # noqa: PLC0415
        from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
        from moto.dynamodb.models.table import Table  # noqa: PLC0415
    except ImportError:
        return None
    needed = [
        hasattr(models.DynamoDBBackend, "transact_write_items"),
        hasattr(models, "get_filter_expression"),
        hasattr(Table, "query") and hasattr(Table, "all_items"),
        hasattr(getattr(responses, "DynamoResult", None), "execute_result"),
    ]
    if not all(needed):
        return None
    return types.SimpleNamespace(
        backend=models.DynamoDBBackend,
        condition=models.get_filter_expression,  # type: ignore[attr-defined]
        DynamoType=DynamoType,
        DynamoResult=responses.DynamoResult,
        Table=Table,
        errors=exceptions,
    )


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _restore(moto: Any, backend: Any, table_name: str, key: dict[str, Any], old: Any) -> None:
    """Put back the item `key` as it was (`old`, None: absent), bypassing every check."""
    table = backend.get_table(table_name)
    hash_key = moto.DynamoType(key[table.hash_key_attr])
    if table.range_key_attr is None:
        if old is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = old
        return
    range_key = moto.DynamoType(key[table.range_key_attr])
    if old is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = old


def _apply(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    common = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": names,
        "expression_attribute_values": values,
    }
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], **common)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key, **common)
    elif op_type == "Update":
        backend.update_item(
            op["TableName"], key, update_expression=op["UpdateExpression"], **common
        )


def _check(moto: Any, backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> Any:
    """The transaction's cancellation reason for one action, checked on the state before it."""
    original = None
    try:
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if not moto.condition(condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original = current.to_json()["Attributes"]
                raise moto.errors.ConditionalCheckFailed(item=original)
    except moto.errors.MockValidationException:
        raise
    except moto.errors.ConditionalCheckFailed as error:
        return ("ConditionalCheckFailed", str(error.message), original)
    except Exception as error:
        return (type(error).__name__, str(error), original)
    return (None, None, None)


def _transact_write_items(moto: Any, backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, copying only the items it writes (see above)."""
    errors = moto.errors
    if len(transact_items) > 100:
        raise errors.TooManyTransactionsException()
    ops: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    targets: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) > 1:
            raise errors.TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        key = _key_of(backend, op_type, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise errors.MultipleTransactionsException()
        targets.add(target)
        ops.append((op_type, op, key))
    reasons = [_check(moto, backend, op_type, op, key) for op_type, op, key in ops]
    if any(code is not None for code, _, _ in reasons):
        raise errors.TransactionCanceledException(reasons)
    undo: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for index, (op_type, op, key) in enumerate(ops):
            current = backend.get_item(op["TableName"], key)
            undo.append((op["TableName"], key, copy.deepcopy(current)))
            try:
                _apply(backend, op_type, op, key)
            except errors.MockValidationException:
                raise
            except Exception as error:
                failed: list[Any] = [(None, None, None)] * len(ops)
                failed[index] = (type(error).__name__, str(error), None)
                raise errors.TransactionCanceledException(failed) from error
    except Exception:
        for table_name, key, old in reversed(undo):
            _restore(moto, backend, table_name, key, old)
        raise


def _speed_up_moto() -> bool:
    """Patch moto's DynamoDB in this process as described above; False if moto changed."""
    moto = _moto()
    if moto is None:
        return False
    original_query = moto.Table.query
    original_all_items = moto.Table.all_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _transact_write_items(moto, self, transact_items)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is None and hash_key is not None and self.range_key_attr:
            _partition.current = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.current = None

    def all_items(self: Any) -> Any:
        current = getattr(_partition, "current", None)
        if current is not None and current[0] is self:
            part = self.items.get(current[1], {})
            return sorted(part.values(), key=lambda item: item.range_key)
        return original_all_items(self)

    moto.backend.transact_write_items = transact_write_items
    moto.Table.query = query
    moto.Table.all_items = all_items
    _serialize_results_as_json(moto)
    return True


def _serialize_results_as_json(moto: Any) -> None:
    """Answer item operations with json.dumps of moto's result (as DynamoDB's JSON protocol
    is) instead of moto's generic shape-walking serializer, which takes ~50 ms for 200 items.
    Anything json cannot write (dates of DescribeTable, binary values) takes moto's way."""
    result_class = moto.DynamoResult
    original = result_class.execute_result
    headers = {"Content-Type": "application/x-amz-json-1.0"}

    def without_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_none(v) for v in value]
        return value

    def execute_result(self: Any, context: Any) -> Any:
        try:
            body = json.dumps(without_none(self.result), separators=(",", ":"))
        except (TypeError, ValueError):
            return original(self, context)
        return 200, dict(headers), body

    result_class.execute_result = execute_result


def serve_dynamodb() -> int:
    """`--dynamodb-server`: sped-up moto on a free port; print the endpoint, serve until killed."""
    from sandbox.dynamodb import EmbeddedDynamoDB  # noqa: PLC0415

    fast = _speed_up_moto()
    server = EmbeddedDynamoDB(host="127.0.0.1")
    endpoint = server.start()
    print(json.dumps({"endpoint": endpoint, "fast": fast}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the load run died without stopping us
            break
    server.stop()
    return 0


@contextlib.contextmanager
def dynamodb_process() -> Iterator[tuple[str, bool]]:
    """(endpoint, sped up?) of a `--dynamodb-server` child process, stopped afterwards."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--dynamodb-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline() or "{}")
        if "endpoint" not in first:
            raise RuntimeError("the DynamoDB server did not start")
        yield str(first["endpoint"]), bool(first["fast"])
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def sandbox(
    template: Path, workers: int, dynamodb: str | None = None, integration_timeout: float = 29.0
) -> Iterator[tuple[str, str, Path]]:
    """(WebSocket URL, DynamoDB endpoint, log) of a sandbox running `template`."""
    from sandbox.launcher import SandboxProcess, start_sandbox  # noqa: PLC0415

    log_dir = Path(tempfile.mkdtemp(prefix="load-sandbox-"))
    args = ["--workers", str(workers), "--warm-workers", str(workers)]
    args += ["--integration-timeout", f"{integration_timeout:g}"]
    if dynamodb:
        args += ["--dynamodb-endpoint", dynamodb]
    with start_sandbox(template, log_dir, *args, stage="", kind=SandboxProcess) as process:
        yield (
            process.banner_value("WebSocket URL"),
            dynamodb or process.banner_value("DynamoDB"),
            process.log_path,
        )


def main(argv: list[str] | None = None) -> int:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--messages", type=int, default=defaults.messages)
    parser.add_argument(
        "--sessions",
        type=int,
        default=defaults.sessions,
        help="sessions per client: one join plus sessions-1 leave-and-rejoins",
    )
    parser.add_argument(
        "--private-ratio",
        type=float,
        default=defaults.private_ratio,
        help="the share of messages sent privately (default %(default)s)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=defaults.think_s,
        help="mean seconds a client waits between messages (default %(default)s)",
    )
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=29.0,
        help="the sandbox's integration timeout (AWS: 29 s)",
    )
    parser.add_argument("--contest", type=float, default=defaults.contest)
    parser.add_argument("--ramp", type=float, default=defaults.ramp_s)
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="the sandbox's Lambda workers (execution environments)",
    )
    parser.add_argument("--template", type=Path, help="default: the chat stack in cdk.out")
    parser.add_argument("--stack", help="the stack whose template to run (cdk.out/<stack>...)")
    parser.add_argument("--url", help="an already running stage (ws://...); no sandbox started")
    parser.add_argument("--dynamodb", help="with --url: its DynamoDB endpoint, for the end check")
    parser.add_argument(
        "--embedded-dynamodb",
        action="store_true",
        help="use the sandbox's own moto (O(table) transactions: short runs)",
    )
    parser.add_argument("--dynamodb-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    if args.dynamodb_server:
        return serve_dynamodb()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    config = LoadConfig(
        clients=args.clients,
        messages=args.messages,
        sessions=args.sessions,
        private_ratio=args.private_ratio,
        contest=args.contest,
        think_s=args.think,
        ramp_s=args.ramp,
        seed=args.seed,
    )
    template = args.template or find_template(stack=args.stack)
    limits = Limits.from_template(template)
    if config.clients > limits.max_room_size:
        parser.error(f"--clients {config.clients}: the room holds {limits.max_room_size}")
    print(f"==> load: {config.clients} clients, {config.messages} messages, limits {limits}")
    with contextlib.ExitStack() as stack:
        if args.url:
            url, dynamodb, workers = args.url, args.dynamodb, None
        else:
            external = None
            if not args.embedded_dynamodb:
                external, fast = stack.enter_context(dynamodb_process())
                print(f"    DynamoDB {external} (moto, own process, sped up: {fast})")
            url, dynamodb, log = stack.enter_context(
                sandbox(template, args.workers, external, args.integration_timeout)
            )
            workers = args.workers
            print(f"    sandbox {url} ({workers} workers), log {log}", flush=True)
        report = measure(config, url, limits, dynamodb=dynamodb, workers=workers)
        report["template"] = str(template)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report["summary"])
    print(f"Report: {args.report} ({'clean' if report['clean'] else 'NOT CLEAN'})")
    return 0 if report["clean"] else 1


def measure(
    config: LoadConfig,
    url: str,
    limits: Limits,
    *,
    dynamodb: str | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the load against `url` and count: the report (`clean` says all is well)."""
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    run = asyncio.run(run_load(config, url, limits, progress=progress))
    duration = time.monotonic() - run.started
    counts = count(run)
    report = summarize(
        run,
        counts,
        {
            "config": asdict(config),
            "limits": asdict(limits),
            "workers": workers,
            "machine": {**machine(), "load_average_before": load_before},
            "duration_s": round(duration, 1),
            "table_after": table_after(dynamodb) if dynamodb else {},
            "wall_s": round(time.monotonic() - started, 1),
        },
    )
    report["summary"] = summary_text(report)
    report["clean"] = clean(report)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
