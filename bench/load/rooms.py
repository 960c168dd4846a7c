"""The rooms scenario of `make load` (`python -m bench.load --scenario rooms`): protocol v2
clients in many rooms, joining, leaving, typing and posting through the sandbox.

--rooms rooms (50) are made by joining their names; --clients clients (200) each speak
protocol v2 (`setName` with `"protocol": 2` and a `clientKey`) and join between
--min-rooms and --max-rooms of them (1-5). Room i is created by client i (a `joinRoom` of a
name nobody has), and the others join it only once it exists, so every join is known to be
a creation or a join of an existing room. Each client then posts its share of --messages
`sendPublic` frames, each to one of its rooms, under the acknowledgement rule (the next
only once its own copy, which carries its `id`, is back); before a post it may send
`typing` to that room (--typing-ratio); after a post it may leave one of its rooms and
rejoin it a little later with `since` = the last `seq` it saw there (--rejoin-ratio). At
the end some clients leave their rooms one by one (--leave-at-end), the others just close
their socket (a v2 `$disconnect` leaves every room).

Pacing, so that no frame should be refused: each connection keeps to the function's
buckets (from the template's environment, defaults from lambda_src/chat/settings.json):
the message bucket (MESSAGE_BURST, MESSAGE_RATE_PER_SECOND), the `setName` bucket, the
rooms bucket for `joinRoom` and `leaveRoom` (MAX_ROOMS_PER_CONNECTION + 2 tokens at
NAME_RATE_PER_SECOND) and the typing bucket (one per TYPING_INTERVAL_SECONDS; a typing
frame with no token is not sent, as a client would skip it). All clients together keep to
the stage's route throttles (the template's RouteSettings: `sendPublic` 10/s, `joinRoom`
10/s, `leaveRoom` 5/s, `typing` 10/s, ...), which the sandbox does not enforce but API
Gateway would. Each client comes from its own loopback address (127.0.x.y, as in the lobby
scenario), so the per-address buckets and the per-address room-creation bucket are one
person's; each creator makes one room, within MAX_ROOMS_PER_CREATOR.

Definitions, per room (counted in bench/load/rooms_count.py):

- A stay is one membership of a connection in a room: from its `joined` acknowledgement
  (the membership is committed before it is sent) until the connection began to leave
  (sent `leaveRoom` or started to close). A post m to room r, sent at t_send and
  acknowledged at t_ack, is *required* at every stay of another client in r that began
  before t_send and did not end before t_ack.
- lost: a required post that the client received neither live nor in a history reply of
  that room. duplicated: a second live copy of a post at one client, or a copy under a
  second `messageId`. out of order: a post that arrived at a client after a later post of
  the same sender in the same room (the protocol's order promise is per sender; posts of
  different senders may arrive in either order, and `seq` orders them: those crossings are
  counted apart, not as errors), or a sender's acknowledged posts in a room whose `seq`
  does not grow in send order.
- recovery: a rejoin with `since` must hold, in its history reply or live, every post of
  the room with `seq` > `since` acknowledged before that stay ended (other senders').
- typing: never in any history reply, never sent back to its sender; its latency is from
  the send to the first other member that got it.
- latency per action: `joinRoom` creating and of an existing room (send to `joined`),
  `leaveRoom` (send to `left`), `typing` (send to first receiver), `sendPublic` (send to
  the own copy, and send to each other member's copy). All on this process's monotonic
  clock; the clients, the sandbox's gateway, its Lambda workers and its DynamoDB share
  the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load.client import Bucket, drive
from bench.load.config import FUNCTION_DEFAULTS, RESULTS, ROOT, Frame

ROOMS_REPORT = RESULTS / "load-rooms.json"
# the function's rooms bucket holds maxRoomsPerConnection + this many tokens
ROOMS_BUCKET_SPARE = 2
# routes this scenario uses, and the stage defaults when the template sets none
ROUTES = ("$connect", "setName", "joinRoom", "leaveRoom", "sendPublic", "typing")
ACTIONS = (
    "joinRoom_create",
    "joinRoom_existing",
    "leaveRoom",
    "typing_first_receiver",
    "sendPublic_own_copy",
    "sendPublic_to_members",
)


@dataclass(frozen=True)
class RoomLimits:
    """The limits a v2 client keeps to: the function's buckets and the stage's route
    throttles ((burst, rate) per route; absent routes are not paced)."""

    message_burst: int = FUNCTION_DEFAULTS["MESSAGE_BURST"]
    message_rate_per_second: float = float(FUNCTION_DEFAULTS["MESSAGE_RATE_PER_SECOND"])
    name_burst: int = FUNCTION_DEFAULTS["NAME_BURST"]
    name_rate_per_second: float = float(FUNCTION_DEFAULTS["NAME_RATE_PER_SECOND"])
    max_rooms_per_connection: int = FUNCTION_DEFAULTS["MAX_ROOMS_PER_CONNECTION"]
    max_rooms_per_creator: int = FUNCTION_DEFAULTS["MAX_ROOMS_PER_CREATOR"]
    typing_interval_seconds: float = float(FUNCTION_DEFAULTS["TYPING_INTERVAL_SECONDS"])
    max_room_size: int = FUNCTION_DEFAULTS["MAX_ROOM_SIZE"]
    routes: dict[str, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_template(cls, template: Path) -> RoomLimits:
        resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        env: dict[str, Any] = {}
        routes: dict[str, tuple[int, float]] = {}
        for resource in resources.values():
            props = resource.get("Properties", {})
            variables = props.get("Environment", {}).get("Variables", {})
            if resource.get("Type") == "AWS::Lambda::Function" and "MESSAGE_BURST" in variables:
                env = variables
            if resource.get("Type") == "AWS::ApiGatewayV2::Stage":
                for route, setting in (props.get("RouteSettings") or {}).items():
                    burst = setting.get("ThrottlingBurstLimit")
                    rate = setting.get("ThrottlingRateLimit")
                    if route in ROUTES and isinstance(burst, int) and isinstance(rate, int | float):
                        routes[route] = (burst, float(rate))
        defaults = cls()

        def value(key: str, kind: Callable[[Any], Any], default: Any) -> Any:
            raw = env.get(key)
            return kind(raw) if isinstance(raw, str | int | float) and raw != "" else default

        return cls(
            message_burst=value("MESSAGE_BURST", int, defaults.message_burst),
            message_rate_per_second=value(
                "MESSAGE_RATE_PER_SECOND", float, defaults.message_rate_per_second
            ),
            name_burst=value("NAME_BURST", int, defaults.name_burst),
            name_rate_per_second=value(
                "NAME_RATE_PER_SECOND", float, defaults.name_rate_per_second
            ),
            max_rooms_per_connection=value(
                "MAX_ROOMS_PER_CONNECTION", int, defaults.max_rooms_per_connection
            ),
            max_rooms_per_creator=value(
                "MAX_ROOMS_PER_CREATOR", int, defaults.max_rooms_per_creator
            ),
            typing_interval_seconds=value(
                "TYPING_INTERVAL_SECONDS", float, defaults.typing_interval_seconds
            ),
            max_room_size=value("MAX_ROOM_SIZE", int, defaults.max_room_size),
            routes=routes,
        )


@dataclass(frozen=True)
class RoomsConfig:
    clients: int = 200
    rooms: int = 50
    min_rooms: int = 1  # rooms each client joins: between min_rooms and max_rooms
    max_rooms: int = 5
    messages: int = 3000
    # Mean pause between a client's acknowledgement and its next post: 200 clients offer
    # ~10 posts/s, the stage's sendPublic throttle.
    think_s: float = 20.0
    typing_ratio: float = 0.5  # chance that a post is preceded by `typing`
    rejoin_ratio: float = 0.1  # chance, after a post, of leaving a room to rejoin it later
    pause_s: tuple[float, float] = (0.5, 5.0)  # between a leave and the rejoin
    leave_at_end: float = 0.5  # clients that leave each room before closing
    ramp_s: float = 60.0  # clients start spread over this time
    ack_timeout_s: float = 60.0
    pace: float = 0.9  # fraction of the server's rates the clients use
    seed: int = 1


# --- what happened ------------------------------------------------------------------------


@dataclass
class Post:
    index: int
    client: int
    room: str
    text: str
    cid: str
    t_send: float = math.nan
    t_last_send: float = math.nan
    t_ack: float = math.nan
    seq: int | None = None
    message_id: str | None = None
    retries: int = 0
    failed: str | None = None
    other_ids: set[str] = field(default_factory=set)

    @property
    def acked(self) -> bool:
        return not math.isnan(self.t_ack)


@dataclass
class Stay:
    """One membership of a client's connection in a room."""

    client: int
    room: str
    creating: bool
    since: int | None
    t_join_sent: float
    t_joined: float = math.inf
    t_left: float = math.inf
    ok: bool = False
    count: int | None = None  # the members `joined` reported
    history: set[int] = field(default_factory=set)
    history_complete: bool | None = None


@dataclass
class Typing:
    client: int
    name: str
    room: str
    t_send: float
    t_first: float = math.inf
    receivers: int = 0


class Receipts:
    """A client's live copies of other clients' posts in one room."""

    def __init__(self) -> None:
        self.index = array("i")
        self.time = array("d")


class RoomsRun:
    """Shared state of one rooms run, and the bookkeeping the readers do."""

    def __init__(self, config: RoomsConfig, limits: RoomLimits, tag: str) -> None:
        self.config = config
        self.limits = limits
        self.tag = tag
        self.room_names = [f"{tag}-r{i:02d}" for i in range(config.rooms)]
        self.posts: list[Post] = []
        self.stays: list[Stay] = []
        self.typings: list[Typing] = []
        self.latest_typing: dict[tuple[str, str], list[int]] = {}
        self.latency: dict[str, list[float]] = {action: [] for action in ACTIONS}
        self.receipts: dict[tuple[int, str], Receipts] = {}
        self.created: dict[str, asyncio.Event] = {}
        self.errors: Counter[str] = Counter()
        self.rate_limited = 0
        self.timeouts = 0
        self.typing_in_history = 0
        self.typing_to_sender = 0
        self.typing_unmatched = 0
        self.foreign_frames = 0
        self.started = time.monotonic()
        pace = config.pace
        self.routes = {
            route: Bucket(burst, rate * pace) for route, (burst, rate) in limits.routes.items()
        }

    async def route(self, route: str) -> None:
        bucket = self.routes.get(route)
        if bucket is not None:
            await bucket.take()

    def route_free(self, route: str) -> bool:
        bucket = self.routes.get(route)
        return bucket is None or bucket.try_take()

    def index_of(self, text: object) -> int | None:
        if not isinstance(text, str) or not text.startswith(self.tag + " "):
            return None
        try:
            return int(text.split(" ", 2)[1])
        except (IndexError, ValueError):
            return None

    def on_typing(self, client: RoomsClient, name: object, room: object, now: float) -> None:
        candidates = self.latest_typing.get((str(name), str(room)), [])
        for i in reversed(candidates):
            typing = self.typings[i]
            if typing.t_send <= now:
                if typing.client == client.index:
                    self.typing_to_sender += 1
                    return
                typing.receivers += 1
                typing.t_first = min(typing.t_first, now)
                return
        self.typing_unmatched += 1

    def progress(self) -> str:
        acked = sum(1 for p in self.posts if p.acked)
        elapsed = time.monotonic() - self.started
        deliveries = sum(len(r.index) for r in self.receipts.values())
        in_rooms = sum(1 for s in self.stays if s.ok and math.isinf(s.t_left))
        return (
            f"{elapsed:6.1f}s  acked {acked}/{self.config.messages} ({acked / elapsed:.1f}/s)  "
            f"stays {in_rooms} open of {len(self.stays)}  typing {len(self.typings)}  "
            f"deliveries {deliveries}  errors {sum(self.errors.values())}"
        )


# --- one client ---------------------------------------------------------------------------


class RoomsClient:
    def __init__(
        self,
        run: RoomsRun,
        index: int,
        url: str,
        *,
        quota: int,
        rooms: list[str],
        creates: list[str],
        rng: random.Random,
    ) -> None:
        self.run = run
        self.index = index
        self.url = url
        self.quota = quota
        self.rooms = rooms
        self.creates = creates
        self.rng = rng
        self.name = f"u{index:03d}"
        self.key = f"{run.tag}-key-{index:04d}"
        config, limits = run.config, run.limits
        pace = config.pace
        self.bucket = Bucket(limits.message_burst, limits.message_rate_per_second * pace)
        self.rooms_bucket = Bucket(
            limits.max_rooms_per_connection + ROOMS_BUCKET_SPARE, limits.name_rate_per_second * pace
        )
        self.typing_bucket = Bucket(1, pace / limits.typing_interval_seconds)
        self.pending: dict[str, asyncio.Future[tuple[float, Frame]]] = {}
        self.current: dict[str, Stay] = {}  # room -> the stay open now
        self.last_seq: dict[str, int] = {}
        self.away: dict[str, float] = {}  # room -> when to rejoin it
        self.sent = 0
        self.frames = 0
        self.ws: Any = None

    def source(self) -> dict[str, Any]:
        """Each client from its own loopback address, as in the lobby scenario."""
        if "://127.0.0.1" not in self.url:
            return {}
        return {"local_addr": (f"127.0.{self.index // 250 + 1}.{self.index % 250 + 1}", 0)}

    # -- frames --------------------------------------------------------------------------

    def on_frame(self, raw: str | bytes, now: float) -> None:
        run = self.run
        frame = json.loads(raw)
        room = frame.get("room")
        if "publicMessage" in frame:
            self._on_post(frame, now)
        elif "joined" in frame or "left" in frame or "ack" in frame:
            self._resolve(frame.get("id"), frame, now)
        elif "history" in frame:
            stay = self.current.get(str(room))
            for item in frame["history"]:
                if "typing" in item:
                    run.typing_in_history += 1
                if isinstance(item.get("seq"), int):
                    self._saw(str(room), item["seq"])
                index = run.index_of(item.get("text"))
                if index is not None and stay is not None:
                    stay.history.add(index)
            if frame.get("final") and stay is not None:
                stay.history_complete = bool(frame.get("complete"))
        elif "typing" in frame:
            run.on_typing(self, frame["typing"], room, now)
        elif "error" in frame:
            error = frame["error"]
            if not self._resolve(error.get("id"), frame, now):
                run.errors[f"{error.get('action')} {error.get('code')} (no id)"] += 1
        elif "message" in frame and "connectionId" in frame:  # API Gateway's own errors
            run.errors[f"gateway: {frame['message']}"] += 1

    def _saw(self, room: str, seq: int) -> None:
        self.last_seq[room] = max(self.last_seq.get(room, 0), seq)

    def _on_post(self, frame: Frame, now: float) -> None:
        run = self.run
        room = str(frame.get("room"))
        if isinstance(frame.get("seq"), int):
            self._saw(room, frame["seq"])
        index = run.index_of(frame.get("text"))
        if index is None or index >= len(run.posts):
            run.foreign_frames += 1
            return
        post = run.posts[index]
        if "id" in frame and post.client == self.index and post.cid == frame["id"]:
            self._resolve(frame["id"], frame, now)  # the sender's own copy: its ack
            return
        mid = frame.get("messageId")
        if isinstance(mid, str) and post.message_id is not None and mid != post.message_id:
            post.other_ids.add(mid)
        receipts = run.receipts.get((self.index, room))
        if receipts is None:
            receipts = run.receipts[(self.index, room)] = Receipts()
        receipts.index.append(index)
        receipts.time.append(now)

    def _resolve(self, frame_id: object, frame: Frame, now: float) -> bool:
        if not isinstance(frame_id, str):
            return False
        future = self.pending.pop(frame_id, None)
        if future is None or future.done():
            return False
        future.set_result((now, frame))
        return True

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.on_frame(raw, time.monotonic())

    async def request(self, frame: Frame) -> tuple[float, Frame]:
        frame_id = str(frame["id"])
        future: asyncio.Future[tuple[float, Frame]] = asyncio.get_running_loop().create_future()
        self.pending[frame_id] = future
        await self.ws.send(json.dumps(frame))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.run.config.ack_timeout_s)
        finally:
            if not future.done():
                self.pending.pop(frame_id, None)

    def _next_id(self, prefix: str) -> str:
        self.frames += 1
        return f"{prefix}{self.index}-{self.frames}"

    # -- the client's life ---------------------------------------------------------------

    async def main(self) -> None:
        from websockets.asyncio.client import connect  # noqa: PLC0415
        from websockets.exceptions import InvalidHandshake  # noqa: PLC0415

        run, config = self.run, self.run.config
        try:
            await asyncio.sleep(self.rng.uniform(0, config.ramp_s))
            for attempt in range(5):
                await run.route("$connect")
                try:
                    self.ws = await connect(
                        self.url, max_size=None, open_timeout=60, proxy=None, **self.source()
                    )
                    break
                except (OSError, TimeoutError, InvalidHandshake) as error:
                    run.errors[f"connect: {type(error).__name__}"] += 1
                    await asyncio.sleep(1 + attempt)
            else:
                return
            async with self.ws:
                reader = asyncio.create_task(self._read())
                try:
                    await self.life()
                finally:
                    self._close_stays()
                    await self.ws.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(reader, 30)
        finally:
            for room in self.creates:  # nobody waits forever for a room that failed
                run.created[room].set()

    async def life(self) -> None:
        run, config = self.run, self.run.config
        if not await self.set_name():
            return
        for room in self.creates:
            await self.join(room, creating=True)
            run.created[room].set()
        for room in self.rooms:
            if room not in self.creates:
                await run.created[room].wait()
                await self.join(room, creating=False)
        refused = 0
        while self.sent < self.quota and refused <= self.quota:
            await self.rejoin_due()
            if not self.current:
                if not self.away:
                    run.errors["client in no room"] += 1
                    return
                await asyncio.sleep(max(0.0, min(self.away.values()) - time.monotonic()))
                continue
            if config.think_s > 0:
                think = min(3 * config.think_s, self.rng.expovariate(1 / config.think_s))
                await asyncio.sleep(think)
            await self.rejoin_due()
            room = self.rng.choice(sorted(self.current))
            if await self.post(room):
                self.sent += 1
            else:
                refused += 1
            if self.current and self.rng.random() < config.rejoin_ratio:
                leaving = self.rng.choice(sorted(self.current))
                if await self.leave(leaving):
                    self.away[leaving] = time.monotonic() + self.rng.uniform(*config.pause_s)
        if self.sent < self.quota:
            run.errors["client could not send its quota"] += 1
        if self.rng.random() < config.leave_at_end:
            for room in sorted(self.current):
                await self.leave(room)

    def _close_stays(self) -> None:
        now = time.monotonic()
        for stay in self.current.values():
            stay.t_left = min(stay.t_left, now)
        self.current.clear()

    async def set_name(self) -> bool:
        run = self.run
        bucket = Bucket(run.limits.name_burst, run.limits.name_rate_per_second)
        for _ in range(10):
            await bucket.take()
            await run.route("setName")
            frame: Frame = {
                "action": "setName",
                "name": self.name,
                "protocol": 2,
                "clientKey": self.key,
                "id": self._next_id("n"),
            }
            try:
                _, reply = await self.request(frame)
            except TimeoutError:
                run.timeouts += 1
                continue
            if reply.get("ack") == "setName" and reply.get("protocol") == 2:
                return True
            if await self._wait_if_rate_limited("setName", reply):
                continue
            return False
        return False

    async def rejoin_due(self) -> None:
        now = time.monotonic()
        for room, at in sorted(self.away.items()):
            if at <= now:
                del self.away[room]
                await self.join(room, creating=False)

    async def join(self, room: str, *, creating: bool) -> bool:
        run = self.run
        since = self.last_seq.get(room)
        for _ in range(10):
            await self.rooms_bucket.take()
            await run.route("joinRoom")
            frame: Frame = {"action": "joinRoom", "room": room, "id": self._next_id("j")}
            if since is not None:
                frame["since"] = since
            stay = Stay(self.index, room, creating, since, time.monotonic())
            self.current[room] = stay  # its history frames come after `joined`
            try:
                t_ack, reply = await self.request(frame)
            except TimeoutError:
                run.timeouts += 1
                run.errors["joinRoom timeout"] += 1
                self.current.pop(room, None)
                return False
            if "joined" in reply:
                stay.ok = True
                stay.t_joined = t_ack
                stay.count = reply.get("count") if isinstance(reply.get("count"), int) else None
                if isinstance(reply.get("seq"), int):
                    self._saw(room, reply["seq"])
                run.stays.append(stay)
                action = "joinRoom_create" if creating else "joinRoom_existing"
                run.latency[action].append(t_ack - stay.t_join_sent)
                return True
            self.current.pop(room, None)
            if await self._wait_if_rate_limited("joinRoom", reply):
                continue
            return False
        run.errors["joinRoom rate limited 10 times"] += 1
        return False

    async def _wait_if_rate_limited(self, action: str, reply: Frame) -> bool:
        """An error answer to `action`: RATE_LIMITED is waited out as it says (True: try
        again); any other is counted in the run's errors (False)."""
        code = reply.get("error", {}).get("code")
        if code == "RATE_LIMITED":
            self.run.rate_limited += 1
            await asyncio.sleep(reply["error"].get("retryAfterMs", 1000) / 1000)
            return True
        self.run.errors[f"{action} {code or reply}"] += 1
        return False

    async def leave(self, room: str) -> bool:
        run = self.run
        stay = self.current.pop(room)
        for _ in range(10):
            await self.rooms_bucket.take()
            await run.route("leaveRoom")
            t_sent = time.monotonic()
            stay.t_left = min(stay.t_left, t_sent)  # nothing is required of it from here
            try:
                t_ack, reply = await self.request(
                    {"action": "leaveRoom", "room": room, "id": self._next_id("l")}
                )
            except TimeoutError:
                run.timeouts += 1
                run.errors["leaveRoom timeout"] += 1
                return False
            if "left" in reply:
                run.latency["leaveRoom"].append(t_ack - t_sent)
                return True
            if await self._wait_if_rate_limited("leaveRoom", reply):
                continue
            return False
        run.errors["leaveRoom rate limited 10 times"] += 1
        return False

    async def typing(self, room: str) -> None:
        """Send `typing` when the connection's typing bucket and the route allow it now."""
        run = self.run
        if not self.typing_bucket.try_take() or not run.route_free("typing"):
            return
        index = len(run.typings)
        run.typings.append(Typing(self.index, self.name, room, time.monotonic()))
        run.latest_typing.setdefault((self.name, room), []).append(index)
        await self.ws.send(json.dumps({"action": "typing", "room": room}))
        await asyncio.sleep(self.rng.uniform(0.2, 1.0))  # writing the message

    async def post(self, room: str) -> bool:
        """Post one message to `room` and wait for its own copy; False if it was refused."""
        run = self.run
        if self.rng.random() < run.config.typing_ratio:
            await self.typing(room)
        index = len(run.posts)
        text = f"{run.tag} {index} from {self.name} in {room}"
        post = Post(index, self.index, room, text, cid=f"m{index}")
        run.posts.append(post)
        frame: Frame = {"action": "sendPublic", "room": room, "message": text, "id": post.cid}
        while True:
            await self.bucket.take()
            await run.route("sendPublic")
            now = time.monotonic()
            if math.isnan(post.t_send):
                post.t_send = now
            post.t_last_send = now
            try:
                t_ack, reply = await self.request(frame)
            except TimeoutError:
                run.timeouts += 1
                post.retries += 1
                if post.retries > 3:
                    post.failed = "timeout"
                    run.errors["sendPublic timeout"] += 1
                    return False
                continue  # the same id again: the server de-duplicates it
            if "error" in reply:
                code = str(reply["error"].get("code"))
                if code == "RATE_LIMITED":
                    run.rate_limited += 1
                    post.retries += 1
                    await asyncio.sleep(reply["error"].get("retryAfterMs", 500) / 1000)
                    continue
                post.failed = code
                run.errors[f"sendPublic {code}"] += 1
                return False
            post.t_ack = t_ack
            post.seq = reply.get("seq") if isinstance(reply.get("seq"), int) else None
            post.message_id = reply.get("messageId")
            self._saw(room, post.seq or 0)
            run.latency["sendPublic_own_copy"].append(t_ack - post.t_last_send)
            return True


def plan(config: RoomsConfig, rng: random.Random) -> list[tuple[list[int], list[int]]]:
    """Per client: (the rooms it joins, the rooms it creates), as room numbers. Room i is
    created by client i; every room has its creator in it."""
    if config.rooms > config.clients:
        raise ValueError("each room needs a creator of its own: rooms <= clients")
    low = max(1, min(config.min_rooms, config.rooms))
    high = max(low, min(config.max_rooms, config.rooms))
    out = []
    for client in range(config.clients):
        rooms = rng.sample(range(config.rooms), rng.randint(low, high))
        creates = [client] if client < config.rooms else []
        if creates and client not in rooms:
            rooms[0] = client
        out.append((sorted(rooms), creates))
    return out


async def run_rooms(
    config: RoomsConfig,
    url: str,
    limits: RoomLimits,
    *,
    progress: Callable[[str], None] | None = print,
    every_s: float = 5.0,
) -> RoomsRun:
    """Run the rooms scenario against `url`; returns its records (count them with
    bench.load.rooms_count.count_rooms)."""
    import os  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "lambda_src"))
    run = RoomsRun(config, limits, f"R{os.urandom(4).hex()}")
    rng = random.Random(config.seed)
    share, extra = divmod(config.messages, config.clients)
    plans = plan(config, rng)
    for name in run.room_names:
        run.created[name] = asyncio.Event()
    clients = [
        RoomsClient(
            run,
            i,
            url,
            quota=share + (1 if i < extra else 0),
            rooms=[run.room_names[r] for r in rooms],
            creates=[run.room_names[r] for r in creates],
            rng=random.Random(rng.random()),
        )
        for i, (rooms, creates) in enumerate(plans)
    ]
    await drive(clients, run, progress=progress, every_s=every_s)
    return run
