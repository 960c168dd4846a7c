"""Template parsing and intrinsic resolution, on the fixture templates and inline snippets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.intrinsics import LocalEndpoint, Resolver
from sandbox.template import (
    TemplateError,
    find_template,
    load_template,
    local_api_id,
    parse_template,
)
from tests.support.sandbox import ECHO_TEMPLATE, FIXTURES

ENDPOINT = LocalEndpoint("127.0.0.1", 8080, tls_port=8443)


def echo_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(ECHO_TEMPLATE.read_text())
    return document


def parse(document: dict[str, Any]) -> Any:
    return parse_template(
        document, template_path=ECHO_TEMPLATE, stack_name="echo", region="us-east-1"
    )


def test_websocket_api_routes_and_stage_are_read() -> None:
    # GIVEN the echo fixture template WHEN it is loaded
    stack = load_template(ECHO_TEMPLATE, region="us-east-1")
    # THEN the API, its routes (with their functions and two-way flag) and stage are known
    api = stack.api
    assert api.route_selection_expression == "$request.body.action"
    assert api.stages == ("dev",)
    assert api.api_id == local_api_id("echo", "EchoApi")
    assert len(api.api_id) == 10
    assert set(api.routes) >= {"$connect", "$disconnect", "$default", "join", "context"}
    assert api.routes["join"].function_id == "EchoFunction"
    assert api.routes["context"].function_id == "OtherFunction"
    assert api.routes["join"].two_way is True
    assert api.routes["oneway"].two_way is False
    assert api.routes["$connect"].two_way is False


def test_function_settings_and_asset_directory_are_read() -> None:
    # GIVEN the echo fixture template WHEN it is loaded
    stack = load_template(ECHO_TEMPLATE, region="us-east-1")
    # THEN handler, limits and the asset directory (relative to the template) are known
    echo = stack.functions["EchoFunction"]
    assert echo.handler == "echo_handler.lambda_handler"
    assert echo.timeout_s == 2
    assert echo.memory_mb == 192
    assert echo.code_dir == (FIXTURES / "echo").resolve()
    assert stack.functions["OtherFunction"].memory_mb == 256


def test_global_table_keys_indexes_and_ttl_are_read() -> None:
    # GIVEN a TableV2-style AWS::DynamoDB::GlobalTable WHEN the template is loaded
    table = load_template(ECHO_TEMPLATE, region="us-east-1").tables["EventsTable"]
    # THEN the table is named after its logical id, with keys, GSI and TTL
    assert table.name == "EventsTable"
    assert [k["AttributeName"] for k in table.key_schema] == ["pk", "sk"]
    assert table.global_secondary_indexes[0]["IndexName"] == "byEventType"
    assert "ProvisionedThroughput" not in table.global_secondary_indexes[0]
    assert table.ttl_attribute == "ttl"


def test_defaults_apply_when_timeout_and_memory_are_absent() -> None:
    # GIVEN a function without Timeout and MemorySize
    document = echo_document()
    props = document["Resources"]["EchoFunction"]["Properties"]
    del props["Timeout"], props["MemorySize"]
    # WHEN it is parsed THEN Lambda's defaults (3 s, 128 MB) apply
    function = parse(document).functions["EchoFunction"]
    assert (function.timeout_s, function.memory_mb) == (3, 128)


def test_environment_resolves_to_local_values() -> None:
    # GIVEN the echo template's environment (Ref, GetAtt, Join, Sub)
    stack = load_template(ECHO_TEMPLATE, region="eu-west-1")
    resolver = Resolver.for_stack(stack, region="eu-west-1", endpoint=ENDPOINT)
    # WHEN it is resolved
    env = resolver.resolve_environment(stack.functions["EchoFunction"].environment, "echo")
    # THEN tables are local names, and execute-api URLs point at the sandbox: https:// at
    # its HTTPS listener, wss:// at its plain port
    assert env == {
        "TABLE_NAME": "EventsTable",
        "TABLE_ARN": "arn:aws:dynamodb:eu-west-1:000000000000:table/EventsTable",
        "CALLBACK_URL": "https://127.0.0.1:8443/dev",
        "SOCKET_URL": "ws://127.0.0.1:8080/dev",
        "GREETING": "hello",
    }


def resolve(value: Any, resources: dict[str, Any] | None = None) -> str:
    stack = parse(echo_document())
    all_resources = {**stack.resources, **(resources or {})}
    resolver = Resolver(
        resources=all_resources,
        parameters={"Env": {"Type": "String", "Default": "dev"}},
        mappings={"Sizes": {"small": {"value": "1"}}},
        stack_name="echo",
        region="us-east-1",
        api_ids={"EchoApi": stack.api.api_id},
        endpoint=ENDPOINT,
    )
    return resolver.resolve_string(value, "VAR")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "AWS::Region"}, "us-east-1"),
        ({"Ref": "AWS::AccountId"}, "000000000000"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::StackName"}, "echo"),
        ({"Ref": "EchoStage"}, "dev"),
        ({"Ref": "Env"}, "dev"),
        ({"Fn::Sub": "${AWS::Region}-${!Literal}"}, "us-east-1-${Literal}"),
        (
            {"Fn::Sub": "${EchoFunction.Arn}"},
            "arn:aws:lambda:us-east-1:000000000000:function:EchoFunction",
        ),
        ({"Fn::Sub": ["${Name}/${AWS::AccountId}", {"Name": "n"}]}, "n/000000000000"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}, "b"),
        ({"Fn::FindInMap": ["Sizes", "small", "value"]}, "1"),
        (
            {"Fn::GetAtt": "EchoFunction.Arn"},
            "arn:aws:lambda:us-east-1:000000000000:function:EchoFunction",
        ),
        (True, "true"),
        (42, "42"),
    ],
)
def test_intrinsics_resolve(value: Any, expected: str) -> None:
    # GIVEN an intrinsic WHEN it is resolved THEN it becomes the local value
    assert resolve(value) == expected


def test_api_ref_and_endpoint_resolve_to_local_urls() -> None:
    # GIVEN the API's Ref and ApiEndpoint WHEN they are resolved
    api_id = local_api_id("echo", "EchoApi")
    # THEN the id is the local one and the endpoint the local ws:// URL
    assert resolve({"Ref": "EchoApi"}) == api_id
    assert resolve({"Fn::GetAtt": ["EchoApi", "ApiEndpoint"]}) == "ws://127.0.0.1:8080"
    domain = {"Fn::Join": [".", [{"Ref": "EchoApi"}, "execute-api.us-east-1.amazonaws.com"]]}
    assert resolve(domain) == "127.0.0.1:8080"


def test_nested_stack_outputs_resolve_to_placeholders() -> None:
    # GIVEN a nested stack (CDK's NestedStack), which the sandbox does not run
    nested = {"Web": {"Type": "AWS::CloudFormation::Stack", "Properties": {}}}
    value = {"Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Web", "Outputs.WebDomainName"]}, ",x"]]}
    # WHEN one of its outputs is resolved THEN it is a placeholder under a reserved domain
    assert resolve(value, nested) == "https://webdomainname.web.nested-stack.sandbox.invalid,x"
    # AND other attributes of a nested stack are still refused
    with pytest.raises(TemplateError, match=r"Web\.Arn"):
        resolve({"Fn::GetAtt": ["Web", "Arn"]}, nested)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::ImportValue": "Shared"}, "Fn::ImportValue is not supported"),
        ({"Fn::If": ["C", "a", "b"]}, "Fn::If is not supported"),
        ({"Ref": "Nowhere"}, "Ref to unknown 'Nowhere'"),
        ({"Fn::GetAtt": ["EventsTable", "Nope"]}, "EventsTable.Nope"),
        ({"Ref": "EchoIntegration"}, "AWS::ApiGatewayV2::Integration"),
    ],
)
def test_unsupported_intrinsics_fail_naming_the_variable(value: Any, message: str) -> None:
    # GIVEN an intrinsic the sandbox cannot resolve WHEN it is resolved
    # THEN the error names the variable and the problem
    with pytest.raises(TemplateError, match="VAR") as caught:
        resolve(value)
    assert message in str(caught.value)


def test_table_name_property_names_the_table() -> None:
    # GIVEN a table with an explicit TableName (itself an intrinsic)
    document = echo_document()
    document["Resources"]["EventsTable"]["Properties"]["TableName"] = {
        "Fn::Sub": "${AWS::StackName}-events"
    }
    # WHEN the template is parsed THEN that name is used, also for Ref
    stack = parse(document)
    assert stack.tables["EventsTable"].name == "echo-events"
    assert resolve({"Ref": "EventsTable"}) == "EventsTable"  # the unmodified template


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["Resources"].pop("EchoApi"), "no AWS::ApiGatewayV2::Api"),
        (lambda d: d["Resources"].pop("EchoStage"), "no AWS::ApiGatewayV2::Stage"),
        (
            lambda d: d["Resources"]["EchoFunction"]["Properties"].update(Runtime="nodejs20.x"),
            "runtime 'nodejs20.x' is not supported",
        ),
        (
            lambda d: d["Resources"]["EchoFunction"]["Metadata"].pop("aws:asset:path"),
            "no Metadata 'aws:asset:path'",
        ),
        (
            lambda d: d["Resources"]["EchoIntegration"]["Properties"].update(
                IntegrationType="MOCK"
            ),
            "IntegrationType 'MOCK' is not supported",
        ),
    ],
)
def test_templates_the_sandbox_cannot_run_are_rejected(mutate: Any, message: str) -> None:
    # GIVEN a template missing something essential
    document = copy.deepcopy(echo_document())
    mutate(document)
    # WHEN it is parsed THEN a TemplateError says what is wrong
    with pytest.raises(TemplateError, match=message.replace("(", r"\(")):
        parse(document)


def test_find_template_picks_the_only_stack_or_asks(tmp_path: Path) -> None:
    # GIVEN a cdk.out with one template THEN it is found
    (tmp_path / "A.template.json").write_text("{}")
    assert find_template(tmp_path, None).name == "A.template.json"
    # GIVEN two templates THEN --stack is required, and picks one
    (tmp_path / "B.template.json").write_text("{}")
    with pytest.raises(TemplateError, match="pass --stack"):
        find_template(tmp_path, None)
    assert find_template(tmp_path, "B").name == "B.template.json"
    # GIVEN no template THEN the error says to synthesize
    with pytest.raises(TemplateError, match="make synth"):
        find_template(tmp_path / "missing", None)


def write_assembly(cdk_out: Path, *stacks: str) -> None:
    """A cloud assembly manifest as `cdk synth` writes it, listing `stacks` only."""
    artifacts: dict[str, Any] = {"Tree": {"type": "cdk:tree"}}
    for name in stacks:
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{name}.template.json"},
        }
    (cdk_out / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))


def test_find_template_ignores_an_earlier_synths_stack(tmp_path: Path) -> None:
    # GIVEN a plain synth's ChatStack left in place by a later `-c stage=dev` synth
    (tmp_path / "ChatStack.template.json").write_text(ECHO_TEMPLATE.read_text())
    (tmp_path / "Chat-dev.template.json").write_text(ECHO_TEMPLATE.read_text())
    (tmp_path / "Chat-devWeb1234.nested.template.json").write_text("{}")
    write_assembly(tmp_path, "Chat-dev")
    # WHEN no stack is named THEN the one the last synth made is run
    assert find_template(tmp_path, None).name == "Chat-dev.template.json"
    # AND --stack still picks the other
    assert find_template(tmp_path, "ChatStack").name == "ChatStack.template.json"


def test_find_template_picks_the_stack_with_the_websocket_api(tmp_path: Path) -> None:
    # GIVEN one synth that made the chat and the deploy-role stack (githubRepository)
    (tmp_path / "ChatStack.template.json").write_text(ECHO_TEMPLATE.read_text())
    role = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {}}}}
    (tmp_path / "ChatDeployRole.template.json").write_text(json.dumps(role))
    write_assembly(tmp_path, "ChatStack", "ChatDeployRole")
    # THEN the chat's stack is run
    assert find_template(tmp_path, None).name == "ChatStack.template.json"
    # GIVEN two chat stacks from one synth THEN it still asks which one
    (tmp_path / "Chat-dev.template.json").write_text(ECHO_TEMPLATE.read_text())
    write_assembly(tmp_path, "ChatStack", "ChatDeployRole", "Chat-dev")
    with pytest.raises(
        TemplateError, match=r"several stacks .*Chat-dev, ChatDeployRole, ChatStack"
    ):
        find_template(tmp_path, None)


AUTHORIZER_TEMPLATE = FIXTURES / "authorizer.template.json"


def authorizer_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(AUTHORIZER_TEMPLATE.read_text())
    return document


def parse_authorizer(document: dict[str, Any]) -> Any:
    return parse_template(
        document, template_path=AUTHORIZER_TEMPLATE, stack_name="auth", region="us-east-1"
    )


def test_connect_authorizer_function_and_identity_sources_are_read() -> None:
    # GIVEN a $connect route with AuthorizationType CUSTOM and a REQUEST authorizer
    # WHEN the template is loaded
    stack = load_template(AUTHORIZER_TEMPLATE, region="us-east-1")
    # THEN $connect carries the authorizer, its function and identity sources; others none
    authorizer = stack.api.routes["$connect"].authorizer
    assert authorizer is not None
    assert authorizer.function_id == "AuthorizerFunction"
    assert [s.expression for s in authorizer.identity_sources] == [
        "route.request.querystring.token"
    ]
    assert stack.api.routes["$default"].authorizer is None
    assert stack.warnings == []


def test_authorizer_uri_may_use_fn_sub_and_header_sources() -> None:
    # GIVEN an AuthorizerUri written with Fn::Sub and a header identity source
    document = authorizer_document()
    props = document["Resources"]["TokenAuthorizer"]["Properties"]
    props["AuthorizerUri"] = {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
        "functions/${AuthorizerFunction.Arn}/invocations"
    }
    props["IdentitySource"] = ["route.request.header.Sec-WebSocket-Protocol"]
    # WHEN it is parsed THEN the function and the header source are found
    authorizer = parse_authorizer(document).api.routes["$connect"].authorizer
    assert authorizer.function_id == "AuthorizerFunction"
    (source,) = authorizer.identity_sources
    assert (source.location, source.name) == ("header", "Sec-WebSocket-Protocol")


@pytest.mark.parametrize(
    ("mutate", "warning"),
    [
        (
            lambda r: r["DefaultRoute"]["Properties"].update(
                AuthorizationType="CUSTOM", AuthorizerId={"Ref": "TokenAuthorizer"}
            ),
            "route $default: authorizers run on $connect only",
        ),
        (
            lambda r: r["ConnectRoute"]["Properties"].update(AuthorizationType="AWS_IAM"),
            "route $connect: AuthorizationType AWS_IAM is not emulated",
        ),
        (
            lambda r: r["TokenAuthorizer"]["Properties"].update(
                IdentitySource=["stageVariables.key"]
            ),
            "identity source 'stageVariables.key' is not checked",
        ),
        (
            lambda r: r["TokenAuthorizer"]["Properties"].update(AuthorizerResultTtlInSeconds=300),
            "AuthorizerResultTtlInSeconds is ignored",
        ),
    ],
)
def test_authorizer_settings_the_sandbox_does_not_run_are_warned_about(
    mutate: Any, warning: str
) -> None:
    # GIVEN an authorizer setting the sandbox does not emulate
    document = authorizer_document()
    mutate(document["Resources"])
    # WHEN the template is parsed THEN a warning says so
    assert any(warning in w for w in parse_authorizer(document).warnings)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r["ConnectRoute"]["Properties"].pop("AuthorizerId"),
            "AuthorizerId must be a Ref",
        ),
        (
            lambda r: r["TokenAuthorizer"]["Properties"].update(AuthorizerType="JWT"),
            "AuthorizerType 'JWT' is not supported",
        ),
        (
            lambda r: r["TokenAuthorizer"]["Properties"].update(AuthorizerUri="arn:aws:x"),
            "AuthorizerUri must name one Lambda function",
        ),
        (
            lambda r: r.pop("AuthorizerFunction"),
            "not an AWS::Lambda::Function",
        ),
    ],
)
def test_authorizers_the_sandbox_cannot_run_are_rejected(mutate: Any, message: str) -> None:
    # GIVEN a broken authorizer definition
    document = authorizer_document()
    mutate(document["Resources"])
    # WHEN it is parsed THEN a TemplateError says what is wrong
    with pytest.raises(TemplateError, match=message):
        parse_authorizer(document)
