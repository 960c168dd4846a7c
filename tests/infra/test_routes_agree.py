"""The stack's routes, the handler's routed actions and the tests' model of API Gateway's
route selection are the same list: a route the handler does not expect would refuse every
frame on it, and a test event routed differently from the stack would prove nothing."""

from __future__ import annotations

import handler
from infra.websocket_api import MESSAGE_ROUTES, V1_MESSAGE_ROUTES
from tests.hostile import protocol
from tests.support.events import message_event


def test_the_handler_expects_exactly_the_stacks_routes() -> None:
    assert set(MESSAGE_ROUTES) == handler.ROUTED_ACTIONS
    assert set(V1_MESSAGE_ROUTES) == handler.V1_ROUTED_ACTIONS


def test_the_hostile_model_selects_the_stacks_routes() -> None:
    assert set(MESSAGE_ROUTES) == protocol.SELECTED
    assert set(V1_MESSAGE_ROUTES) == protocol.ROUTED_ACTIONS
    assert {"$connect", "$disconnect", "$default", *MESSAGE_ROUTES} == protocol.ROUTES


def test_test_events_take_the_route_api_gateway_would_select() -> None:
    for action in MESSAGE_ROUTES:
        assert message_event("c1", {"action": action})["requestContext"]["routeKey"] == action
    for action in ("ping", "history", "listRooms", "markRead", "nope"):
        event = message_event("c1", {"action": action})
        assert event["requestContext"]["routeKey"] == "$default"


def test_the_metrics_count_frames_on_exactly_the_stacks_routes() -> None:
    from chat import telemetry  # noqa: PLC0415
    from infra import metrics  # noqa: PLC0415

    stack_routes = {"$connect", "$disconnect", "$default", *MESSAGE_ROUTES}
    assert set(telemetry.ROUTES) == stack_routes
    assert metrics.ROUTES == telemetry.ROUTES
