"""The sandbox's HTTP API (sandbox/http_api.py) on its own, with a stand-in for the
functions: routing, the stage throttle, the payload format 2.0 event and the answers API
Gateway makes of a function's result. Signatures are checked end to end in
tests/e2e/test_server_api_through_sandbox.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sandbox.http_api import OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY, HttpApi
from sandbox.lambdas import InvocationResult
from sandbox.stack_model import HttpApiSpec, HttpRouteSpec

REGION = "us-east-1"


class Functions:
    """Stands in for the sandbox's LambdaService: records each event, answers `result`."""

    def __init__(self, result: Any = None, *, status: str = "ok", delay_s: float = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = {"statusCode": 200, "body": "{}"} if result is None else result
        self.status = status
        self.delay_s = delay_s

    async def invoke(
        self, function_id: str, event: dict[str, Any], *, label: str | None = None
    ) -> InvocationResult:
        self.events.append(event)
        await asyncio.sleep(self.delay_s)
        error = None if self.status == "ok" else {"errorMessage": "boom"}
        return InvocationResult(self.status, self.result, error, 1.0)  # type: ignore[arg-type]


def spec(*, iam: bool = True, burst: int | None = None, rate: float | None = None) -> HttpApiSpec:
    routes = tuple(
        HttpRouteSpec(f"{method} {path}", method, path, "Fn", iam)
        for method, path in (
            ("GET", "/rooms"),
            ("GET", "/rooms/{room}/members"),
            ("GET", "/rooms/lobby/members"),
            ("POST", "/rooms/{room}/messages"),
        )
    )
    return HttpApiSpec("Api", "Api", "abc123", routes, burst, rate)


def run(api: HttpApi, scenario: Callable[[TestClient[Any, Any]], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with TestClient(TestServer(api.app())) as client:
            return await scenario(client)

    return asyncio.run(main())


def signed(
    client: TestClient[Any, Any], method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    host = f"{client.host}:{client.port}"
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    credentials = Credentials(OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY)
    SigV4Auth(credentials, "execute-api", REGION).add_auth(request)
    return {k: v for k, v in request.headers.items()}


async def get(client: TestClient[Any, Any], path: str, *, sign: bool = False) -> tuple[int, Any]:
    headers = signed(client, "GET", path) if sign else {}
    async with client.get(path, headers=headers) as answer:
        text = await answer.text()
        return answer.status, json.loads(text) if text else None


def test_the_function_gets_a_payload_2_event_with_decoded_path_parameters():
    functions = Functions()
    api = HttpApi(spec(iam=False), functions, region=REGION)  # type: ignore[arg-type]
    status, _ = run(api, lambda c: get(c, "/rooms/caf%C3%A9/members?limit=5&x=1&x=2"))
    assert status == 200
    (event,) = functions.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /rooms/{room}/members"
    assert event["rawPath"] == "/rooms/caf%C3%A9/members"
    assert event["pathParameters"] == {"room": "café"}
    assert event["queryStringParameters"] == {"limit": "5", "x": "1,2"}
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert "authorizer" not in event["requestContext"]


def test_a_literal_segment_wins_over_a_parameter():
    functions = Functions()
    api = HttpApi(spec(iam=False), functions, region=REGION)  # type: ignore[arg-type]
    run(api, lambda c: get(c, "/rooms/lobby/members"))
    assert functions.events[0]["routeKey"] == "GET /rooms/lobby/members"
    assert "pathParameters" not in functions.events[0]


def test_a_signed_request_carries_the_callers_iam_identity():
    functions = Functions()
    api = HttpApi(spec(), functions, region=REGION)  # type: ignore[arg-type]
    status, _ = run(api, lambda c: get(c, "/rooms", sign=True))
    assert status == 200
    iam = functions.events[0]["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == OPERATOR_ACCESS_KEY_ID
    assert iam["userArn"].endswith(":user/sandbox-operator")


def test_the_stage_throttle_refuses_beyond_its_burst_with_429():
    functions = Functions()
    api = HttpApi(spec(iam=False, burst=2, rate=0.001), functions, region=REGION)  # type: ignore[arg-type]

    async def three(client: TestClient[Any, Any]) -> list[Any]:
        return [await get(client, "/rooms") for _ in range(3)]

    answers = run(api, three)
    assert [status for status, _ in answers] == [200, 200, 429]
    assert answers[2][1] == {"message": "Too Many Requests"}
    assert len(functions.events) == 2


def test_a_result_without_a_status_code_is_a_200_json_body():
    api = HttpApi(spec(iam=False), Functions(["a", 1]), region=REGION)  # type: ignore[arg-type]
    assert run(api, lambda c: get(c, "/rooms")) == (200, ["a", 1])


def test_a_failed_function_is_500_and_a_late_one_503():
    failing = HttpApi(spec(iam=False), Functions(status="error"), region=REGION)  # type: ignore[arg-type]
    assert run(failing, lambda c: get(c, "/rooms")) == (500, {"message": "Internal Server Error"})
    late = HttpApi(
        spec(iam=False),
        Functions(delay_s=1.0),  # type: ignore[arg-type]
        region=REGION,
        integration_timeout_s=0.1,
    )
    assert run(late, lambda c: get(c, "/rooms")) == (503, {"message": "Service Unavailable"})


def test_the_functions_status_headers_and_body_are_the_answer():
    result = {"statusCode": 418, "headers": {"x-test": "yes"}, "body": '{"a":1}'}
    functions = Functions(result)
    api = HttpApi(spec(iam=False), functions, region=REGION)  # type: ignore[arg-type]

    async def scenario(client: TestClient[Any, Any]) -> tuple[int, str, str]:
        async with client.get("/rooms") as answer:
            return answer.status, answer.headers.get("x-test", ""), await answer.text()

    assert run(api, scenario) == (418, "yes", '{"a":1}')


def test_an_unsigned_request_to_an_iam_route_never_reaches_the_function():
    functions = Functions()
    api = HttpApi(spec(), functions, region=REGION)  # type: ignore[arg-type]
    assert run(api, lambda c: get(c, "/rooms")) == (403, {"message": "Forbidden"})
    assert functions.events == []
