"""Route selection: exact, case-sensitive keys, stringified values, $default fallback."""

from __future__ import annotations

import pytest

from sandbox.routing import RouteSelector, stringify

ROUTES = {"$connect", "$disconnect", "$default", "join", "123", "Join2", "chat/join", "true"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"action":"join"}', "join"),
        ('{"action":123}', "123"),
        ('{"action":true}', "true"),
        ('{"action":"nope"}', "$default"),
        ("hello", "$default"),
        ("{}", "$default"),
        ("[1]", "$default"),
        ('{"action":null}', "$default"),
        ('{"action":"Join"}', "$default"),
        ('{"action":"$connect"}', "$default"),
        ('{"action":"$disconnect"}', "$default"),
        ('"join"', "$default"),
        ("", "$default"),
    ],
)
def test_body_action_selects_exact_route_or_default(body: str, expected: str) -> None:
    # GIVEN the usual expression and a $default route
    selector = RouteSelector("$request.body.action")
    # WHEN a message arrives
    route = selector.select(body, ROUTES)
    # THEN only an exact, case-sensitive match wins; everything else falls back
    assert route == expected


def test_no_match_and_no_default_selects_nothing() -> None:
    # GIVEN an API without $default
    selector = RouteSelector("$request.body.action")
    # WHEN the action matches no route
    route = selector.select('{"action":"nope"}', {"join"})
    # THEN there is no route (the gateway answers Forbidden)
    assert route is None


def test_template_expression_joins_several_variables() -> None:
    # GIVEN a templated expression with two variables
    selector = RouteSelector("${request.body.service}/${request.body.action}")
    # WHEN both are present
    key = selector.evaluate('{"service":"chat","action":"join"}')
    # THEN they are joined with the static text
    assert key == "chat/join"
    assert selector.select('{"service":"chat","action":"join"}', ROUTES) == "chat/join"


def test_missing_value_resolves_to_empty_string() -> None:
    # GIVEN a templated expression
    selector = RouteSelector("${request.body.service}/${request.body.action}")
    # WHEN one variable is missing
    key = selector.evaluate('{"action":"join"}')
    # THEN it is rendered as ""
    assert key == "/join"


def test_nested_path_and_array_index_are_followed() -> None:
    # GIVEN an expression into nested objects and arrays
    selector = RouteSelector("$request.body.meta.kinds[1]")
    # WHEN the body has that shape
    key = selector.evaluate('{"meta":{"kinds":["a","b"]}}')
    # THEN the indexed value is the key
    assert key == "b"


def test_non_json_body_cannot_be_evaluated() -> None:
    # GIVEN the usual expression
    selector = RouteSelector("$request.body.action")
    # WHEN the body is not a JSON object
    # THEN evaluation yields None (the message goes to $default)
    assert selector.evaluate("not json") is None
    assert selector.evaluate("[1, 2]") is None


def test_static_default_expression_always_selects_default() -> None:
    # GIVEN the escaped static expression
    selector = RouteSelector(r"\$default")
    # WHEN any message arrives
    # THEN it goes to $default
    assert selector.select("anything", ROUTES) == "$default"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (["item1", "item2"], "[item1, item2]"),
        (123, "123"),
        (1.5, "1.5"),
        (False, "false"),
        (None, ""),
        ({"a": 1}, "{a=1}"),
    ],
)
def test_values_are_stringified_like_api_gateway(value: object, rendered: str) -> None:
    # GIVEN a JSON value WHEN it is stringified THEN arrays read "[item1, item2]"
    assert stringify(value) == rendered


@pytest.mark.parametrize(
    "expression", ["$request.header.Auth", "${request.querystring.x}", "$request.body."]
)
def test_unsupported_expressions_are_rejected(expression: str) -> None:
    # GIVEN an expression that is not about the message body
    # WHEN it is parsed THEN the sandbox refuses it clearly
    with pytest.raises(ValueError, match="route selection expression"):
        RouteSelector(expression)
