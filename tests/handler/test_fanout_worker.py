"""The fan-out worker's entry point (handler.fanout_handler) against the @connections stand-in,
and how the chat function chooses its notifier (chat/wiring.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import handler
from chat import wiring
from chat.fanout import FanoutEngine
from chat.notifier import ConnectionsNotifier
from chat.settings import Settings
from chat.sharding import LambdaShardInvoker, ShardedNotifier, encode_request
from sandbox.connections_standin import running_connections_api
from tests.support.events import LambdaContext


@pytest.fixture
def api(monkeypatch):
    with running_connections_api() as state:
        monkeypatch.delenv("TABLE_NAME", raising=False)  # the worker has no table
        monkeypatch.setenv("CALLBACK_URL", state.url)
        handler.reset()
        yield state
    handler.reset()


def test_the_worker_posts_its_shard_in_order_and_reports_who_is_gone(api):
    api.gone.add("gone0000000000A=")
    frames: list[dict[str, Any]] = [{"event": "join", "name": "Zed"}, {"text": "hi", "seq": 1}]
    shard = {cid: frames for cid in ("aaaaaaaaaaaaaaA=", "bbbbbbbbbbbbbbB=", "gone0000000000A=")}
    request = json.loads(json.dumps(encode_request(shard)))
    answer = handler.fanout_handler(request, LambdaContext())
    assert answer == {"sent": 2, "gone": ["gone0000000000A="], "failed": 0}
    assert api.frames("aaaaaaaaaaaaaaA=") == frames
    assert api.frames("bbbbbbbbbbbbbbB=") == frames


def test_the_worker_fails_loudly_on_a_request_that_is_not_a_shard(api):
    with pytest.raises(ValueError, match="fan-out request"):
        handler.fanout_handler({"requestContext": {"routeKey": "$default"}}, LambdaContext())
    assert api.posts == []


def test_the_chat_function_shards_only_when_the_stack_names_a_worker():
    plain = Settings(table_name="t", callback_url="https://x.example/production")
    assert isinstance(wiring.notifier(plain), FanoutEngine)
    boto = Settings(table_name="t", callback_url="https://x.example/p", fanout_engine="boto3")
    assert isinstance(wiring.notifier(boto), ConnectionsNotifier)
    sharded = Settings(
        table_name="t",
        callback_url="https://x.example/production",
        fanout_worker="ChatStack-FanoutWorker",
        fanout_shard_size=500,
    )
    chosen = wiring.notifier(sharded)
    assert isinstance(chosen, ShardedNotifier)
    assert isinstance(chosen.local, FanoutEngine)


def test_the_chat_function_reads_a_workers_answer_just_longer_than_the_worker_may_run():
    sharded = Settings(
        table_name="t",
        callback_url="https://x.example/production",
        fanout_worker="ChatStack-FanoutWorker",
        fanout_worker_timeout_seconds=12,
    )
    chosen = wiring.notifier(sharded)
    assert isinstance(chosen, ShardedNotifier)
    invoker = chosen._invoke
    assert isinstance(invoker, LambdaShardInvoker)
    config = invoker.client.meta.config
    assert config.read_timeout == 12 + wiring.WORKER_READ_MARGIN_S == 13
    assert config.connect_timeout == wiring.WORKER_CONNECT_TIMEOUT_S
    assert config.retries["total_max_attempts"] == 1  # a throttled one is retried by us


def test_the_worker_timeout_setting_is_range_checked():
    env = {"TABLE_NAME": "t", "CALLBACK_URL": "https://x.example/production"}
    assert Settings.from_env(env).fanout_worker_timeout_seconds == 17
    assert (
        Settings.from_env(
            {**env, "FANOUT_WORKER_TIMEOUT_SECONDS": "26"}
        ).fanout_worker_timeout_seconds
        == 26
    )
    for bad in ("2", "27", "soon"):
        with pytest.raises(ValueError, match="FANOUT_WORKER_TIMEOUT_SECONDS"):
            Settings.from_env({**env, "FANOUT_WORKER_TIMEOUT_SECONDS": bad})


def test_worker_settings_need_no_table(monkeypatch):
    env = {"CALLBACK_URL": "https://x.example/production"}
    assert Settings.from_env(env, worker=True).callback_url == env["CALLBACK_URL"]
    with pytest.raises(KeyError, match="TABLE_NAME"):
        Settings.from_env(env)
