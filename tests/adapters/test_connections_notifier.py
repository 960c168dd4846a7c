"""ConnectionsNotifier over a real boto3 client, against an HTTP @connections stand-in."""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from botocore.config import Config

from chat.notifier import ConnectionsNotifier
from chat.ports import encode
from sandbox.connections_standin import running_connections_api


@pytest.fixture
def api():
    with running_connections_api() as state:
        yield state


def make_notifier(url: str, concurrency: int = 8, attempts: int = 3) -> ConnectionsNotifier:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(
            max_pool_connections=concurrency,
            retries={"mode": "standard", "max_attempts": attempts},
        ),
    )
    return ConnectionsNotifier(client, concurrency=concurrency)


def test_frames_are_posted_as_compact_utf8_json_in_order_per_connection(api):
    notifier = make_notifier(api.url)
    report = notifier.send({"a=": [{"n": 1}, {"n": 2, "text": "héllo"}], "b=": [{"n": 1}]})
    assert report.sent == 2
    assert report.gone == frozenset()
    assert api.frames("a=") == [{"n": 1}, {"n": 2, "text": "héllo"}]
    assert api.frames("b=") == [{"n": 1}]
    assert encode({"text": "é"}) == '{"text":"é"}'.encode()


def test_gone_connections_are_reported_and_their_remaining_frames_skipped(api):
    api.gone.add("gone=")
    report = make_notifier(api.url).send({"gone=": [{"n": 1}, {"n": 2}], "ok=": [{"n": 1}]})
    assert report.gone == frozenset({"gone="})
    assert report.sent == 1
    assert api.frames("ok=") == [{"n": 1}]


def test_other_failures_are_counted_and_do_not_stop_the_others(api, caplog):
    caplog.set_level(logging.INFO, logger="chat.notifier")
    api.forbidden.add("bad=")
    report = make_notifier(api.url).send({"bad=": [{"n": 1}], "ok=": [{"n": 1}]})
    assert report.failed == 1
    assert report.gone == frozenset()
    assert api.frames("ok=") == [{"n": 1}]
    # One line for the delivery, counting the failure by error, not one per recipient.
    (losses,) = [r for r in caplog.records if r.getMessage() == "delivery finished with losses"]
    assert (losses.sent, losses.gone, losses.failed) == (1, 0, 1)
    assert sum(losses.errors.values()) == 1, losses.errors
    assert not [r for r in caplog.records if r.levelno > logging.INFO]


def test_an_unreachable_endpoint_counts_as_failures_without_raising():
    notifier = make_notifier("http://127.0.0.1:9/production", attempts=1)
    report = notifier.send({"a=": [{"n": 1}]})
    assert report.failed == 1


def test_posts_to_different_connections_run_concurrently_up_to_the_limit(api):
    api.delay_seconds = 0.05
    notifier = make_notifier(api.url, concurrency=8)
    report = notifier.send({f"c{i}=": [{"i": i}] for i in range(40)})
    assert report.sent == 40
    assert 2 <= api.max_in_flight <= 8


def test_ids_are_url_encoded_so_ids_ending_in_equals_work(api):
    make_notifier(api.url).send({"R1kmxc2VNjMCFIA=": [json.loads('{"x": 1}')]})
    assert api.frames("R1kmxc2VNjMCFIA=") == [{"x": 1}]


def test_is_gone_is_true_only_for_410(api):
    api.gone.add("gone=")
    api.forbidden.add("bad=")
    notifier = make_notifier(api.url)
    assert notifier.is_gone("gone=") is True
    assert notifier.is_gone("alive=") is False
    assert notifier.is_gone("bad=") is False
