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

The package, by job: `config` (limits and settings), `client` (pacing, records, the
clients), `count`, `summary` (report, verdict, the table afterwards), `processes` (its
DynamoDB and the sandbox), `run` (the command line), `rooms` and `rooms_count` (the
rooms scenario, `--scenario rooms`: protocol v2 clients in many rooms, counted per room;
its definitions are in bench/load/rooms.py); the moto speed-ups are in
sandbox/moto_patch.py.

Writes bench/results/load.json (configuration, machine, per-sender counts, totals,
latencies) and prints a summary. The light version runs in `make test`
(tests/bench/test_load_light.py). Latencies are this machine's: the clients, the
sandbox's gateway, its Lambda workers and its moto DynamoDB share the same cores.
"""

from __future__ import annotations

from bench.load.client import Bucket, Claim, Client, Conn, Message, Run, run_load
from bench.load.config import REPORT, Limits, LoadConfig
from bench.load.count import claim_violations, count, percentiles, recoveries
from bench.load.processes import dynamodb_process, sandbox, serve_dynamodb
from bench.load.rooms import RoomLimits, RoomsConfig, RoomsRun, run_rooms
from bench.load.rooms_count import count_rooms
from bench.load.run import main, measure, measure_rooms
from bench.load.summary import clean, machine, summarize, summary_text, table_after

__all__ = [
    "REPORT",
    "Bucket",
    "Claim",
    "Client",
    "Conn",
    "Limits",
    "LoadConfig",
    "Message",
    "RoomLimits",
    "RoomsConfig",
    "RoomsRun",
    "Run",
    "claim_violations",
    "clean",
    "count",
    "count_rooms",
    "dynamodb_process",
    "machine",
    "main",
    "measure",
    "measure_rooms",
    "percentiles",
    "recoveries",
    "run_load",
    "run_rooms",
    "sandbox",
    "serve_dynamodb",
    "summarize",
    "summary_text",
    "table_after",
]
