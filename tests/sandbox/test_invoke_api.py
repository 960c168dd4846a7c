"""Lambda's Invoke API in the sandbox (docs/sandbox.md items 52-57), on the real template's
fan-out worker, called with boto3's own `lambda` client as the chat function calls it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.chat_client import ChatClient, room_items
from tests.support.sandbox import REGION, Sandbox, wait_for

pytestmark = pytest.mark.sandbox

WORKER_HANDLER = "handler.fanout_handler"
GHOST = "GhostGhostGhos1="  # well-formed, but no socket has it: 410


@pytest.fixture
def member(chat_sandbox: Sandbox) -> Iterator[tuple[ChatClient, str]]:
    """A joined chat client and its connection id."""
    client = ChatClient(chat_sandbox.connect().__enter__())
    client.join("Invoker")
    (item,) = [i for i in room_items(chat_sandbox) if i["name"]["S"] == "Invoker"]
    yield client, item["connectionId"]["S"]
    client.close()
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")


def shard(*connection_ids: str, text: str = "from a worker") -> bytes:
    request = {
        "fanout": {
            "v": 1,
            "frames": [{"text": text}],
            "deliveries": [[cid, [0]] for cid in connection_ids],
        }
    }
    return json.dumps(request).encode()


def answer(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def test_invoking_the_worker_by_name_posts_its_shard_and_returns_its_report(chat_sandbox, member):
    client, connection_id = member
    name = chat_sandbox.function_name(WORKER_HANDLER)
    response = chat_sandbox.lambda_client().invoke(
        FunctionName=name, Payload=shard(connection_id, GHOST)
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert answer(response) == {"sent": 1, "gone": [GHOST], "failed": 0}
    assert client.wait_for(lambda f: f.get("text") == "from a worker")


@pytest.mark.parametrize(
    "form",
    [
        "arn:aws:lambda:{region}:000000000000:function:{name}",
        "arn:aws:lambda:{region}:000000000000:function:{name}:$LATEST",
        "000000000000:function:{name}",
        "{name}:$LATEST",
    ],
    ids=["arn", "arn-latest", "partial-arn", "name-latest"],
)
def test_the_worker_answers_to_its_arn_and_partial_arn(chat_sandbox, form):
    name = chat_sandbox.function_name(WORKER_HANDLER)
    response = chat_sandbox.lambda_client().invoke(
        FunctionName=form.format(region=REGION, name=name), Payload=shard(GHOST)
    )
    assert answer(response) == {"sent": 0, "gone": [GHOST], "failed": 0}


@pytest.mark.parametrize(
    "reference",
    ["NoSuchFunction", "{name}:7", "arn:aws:lambda:eu-west-1:000000000000:function:{name}"],
    ids=["unknown", "other-qualifier", "other-region"],
)
def test_an_unknown_function_is_resource_not_found(chat_sandbox, reference):
    client = chat_sandbox.lambda_client()
    name = chat_sandbox.function_name(WORKER_HANDLER)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=reference.format(name=name), Payload=b"{}")


def test_a_function_error_comes_back_as_an_unhandled_function_error(chat_sandbox):
    name = chat_sandbox.function_name(WORKER_HANDLER)
    response = chat_sandbox.lambda_client().invoke(FunctionName=name, Payload=b'{"not": "a shard"}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = answer(response)
    assert error["errorType"] == "ValueError"
    assert "fan-out request" in error["errorMessage"]


def test_a_payload_that_is_not_json_is_invalid_request_content(chat_sandbox):
    client = chat_sandbox.lambda_client()
    name = chat_sandbox.function_name(WORKER_HANDLER)
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName=name, Payload=b"{not json")


@pytest.mark.parametrize(
    ("invocation_type", "limit"),
    [("RequestResponse", 6 * 1024 * 1024), ("Event", 1024 * 1024)],
)
def test_a_payload_over_the_limit_is_request_too_large(chat_sandbox, invocation_type, limit):
    client = chat_sandbox.lambda_client()
    name = chat_sandbox.function_name(WORKER_HANDLER)
    padding = "x" * (limit - 10)  # with {"padding": ""} around it: 5 bytes over
    payload = json.dumps({"padding": padding}).encode()
    assert len(payload) > limit
    with pytest.raises(client.exceptions.RequestTooLargeException):
        client.invoke(FunctionName=name, InvocationType=invocation_type, Payload=payload)


def test_an_event_invocation_is_accepted_at_once_and_runs_in_the_background(chat_sandbox, member):
    client, connection_id = member
    name = chat_sandbox.function_name(WORKER_HANDLER)
    response = chat_sandbox.lambda_client().invoke(
        FunctionName=name, InvocationType="Event", Payload=shard(connection_id, text="later")
    )
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    assert client.wait_for(lambda f: f.get("text") == "later")


def test_a_dry_run_checks_the_request_and_runs_nothing(chat_sandbox, member):
    client, connection_id = member
    name = chat_sandbox.function_name(WORKER_HANDLER)
    response = chat_sandbox.lambda_client().invoke(
        FunctionName=name, InvocationType="DryRun", Payload=shard(connection_id, text="dry")
    )
    assert response["StatusCode"] == 204
    assert client.quiet(1.0) == []
