"""Sign-in in the template: off by default; on, a JWT authorizer on $connect and only there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from app import build_app
from infra import authorizer_layer
from infra.authorizer_layer import BUILD_INFO, LayerNotBuiltError, check_built, pip_command
from infra.config import ChatConfig, ConfigError
from tests.support.sign_in import fake_layer
from tests.support.stack import (
    chat_template,
    template_with,
    websocket_api_id,
    websocket_resources,
)
from tests.support.synth import run_cdk

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
CLIENT_ID = "4h5j6k7l8m9n0p1q2r3s4t5u6v"


@pytest.fixture(scope="module")
def layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_layer(tmp_path_factory.mktemp("authorizer-layer"))


@pytest.fixture(scope="module")
def sign_in(layer_dir: Path) -> dict[str, Any]:
    """The context that turns sign-in on for a Cognito user pool."""
    return {
        "signIn": True,
        "signInIssuer": ISSUER,
        "signInAudience": CLIENT_ID,
        "signInLayerDir": str(layer_dir),
    }


@pytest.fixture(scope="module")
def template(sign_in: dict[str, Any]) -> Template:
    return template_with(**sign_in)


def functions(template: Template) -> dict[str, Any]:
    return dict(template.find_resources("AWS::Lambda::Function"))


def by_handler(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, f) for k, f in functions(template).items() if f["Properties"]["Handler"] == handler
    ]
    return found


def authorizer_function(template: Template) -> tuple[str, dict[str, Any]]:
    return by_handler(template, "authorizer.handler")


def chat_function(template: Template) -> tuple[str, dict[str, Any]]:
    return by_handler(template, "handler.lambda_handler")


# --- off (the default) --------------------------------------------------------------------


def test_sign_in_is_off_by_default_and_needs_no_layer():
    default = chat_template()
    default.resource_count_is("AWS::ApiGatewayV2::Authorizer", 0)
    default.resource_count_is("AWS::Lambda::LayerVersion", 0)
    # The chat function and its fan-out worker; no authorizer.
    # (and the server API's function)
    assert sorted(f["Properties"]["Handler"] for f in functions(default).values()) == [
        "admin.handler",
        "handler.fanout_handler",
        "handler.lambda_handler",
    ]
    for route in websocket_resources(default, "AWS::ApiGatewayV2::Route").values():
        assert route["Properties"].get("AuthorizationType", "NONE") == "NONE"
    env = chat_function(default)[1]["Properties"]["Environment"]["Variables"]
    assert env["SIGN_IN_REQUIRED"] == "false"
    # The other sign-in keys are not even read while signIn is false.
    template_with(signInIssuer="not a url", signInLayerDir="/nonexistent", signInGroupsClaim="")


# --- on -----------------------------------------------------------------------------------


def test_authorizer_is_a_lambda_request_authorizer_on_connect_only(template):
    (authorizer_id, authorizer), *others = template.find_resources(
        "AWS::ApiGatewayV2::Authorizer"
    ).items()
    assert others == []
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "REQUEST"
    function_id, _ = authorizer_function(template)
    assert function_id in json.dumps(props["AuthorizerUri"])
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in websocket_resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    for key, route in routes.items():
        if key != "$connect":
            assert route.get("AuthorizationType", "NONE") == "NONE", key
            assert "AuthorizerId" not in route, key


def test_identity_source_is_the_token_query_parameter_by_default(template):
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer", {"IdentitySource": ["route.request.querystring.token"]}
    )


def test_identity_source_can_be_the_websocket_subprotocol_header(sign_in):
    protocol = template_with(**sign_in, signInTokenSource="protocol")
    protocol.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {"IdentitySource": ["route.request.header.Sec-WebSocket-Protocol"]},
    )
    env = authorizer_function(protocol)[1]["Properties"]["Environment"]["Variables"]
    assert env["SIGN_IN_TOKEN_SOURCE"] == "protocol"


def test_authorizer_runs_python_314_on_arm64_from_its_own_asset_with_the_layer(template):
    _, function = authorizer_function(template)
    props = function["Properties"]
    assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
    assert props["Timeout"] <= 10
    (layer_id, layer), *others = template.find_resources("AWS::Lambda::LayerVersion").items()
    assert others == []
    assert props["Layers"] == [{"Ref": layer_id}]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert "PyJWT[crypto]==" in layer["Properties"]["Description"]
    # The chat function does not get it: only AWS's public Powertools layer (no PyJWT).
    (powertools,) = chat_function(template)[1]["Properties"]["Layers"]
    assert "AWSLambdaPowertoolsPythonV3" in json.dumps(powertools)


def test_authorizer_environment_comes_from_context(template):
    env = authorizer_function(template)[1]["Properties"]["Environment"]["Variables"]
    assert env == {
        "SIGN_IN_ISSUER": ISSUER,
        "SIGN_IN_AUDIENCE": CLIENT_ID,
        "SIGN_IN_JWKS_URL": f"{ISSUER}/.well-known/jwks.json",
        "SIGN_IN_NAME_CLAIM": "cognito:username",
        "SIGN_IN_GROUPS_CLAIM": "cognito:groups",
        "SIGN_IN_TOKEN_SOURCE": "query",
        "LOG_LEVEL": "INFO",
    }


def test_jwks_url_name_and_groups_claims_can_be_overridden(sign_in):
    custom = template_with(
        **sign_in,
        signInJwksUrl="https://keys.example.com/jwks.json",
        signInNameClaim="preferred_username",
        signInGroupsClaim=" groups ",
    )
    env = authorizer_function(custom)[1]["Properties"]["Environment"]["Variables"]
    assert env["SIGN_IN_JWKS_URL"] == "https://keys.example.com/jwks.json"
    assert env["SIGN_IN_NAME_CLAIM"] == "preferred_username"
    assert env["SIGN_IN_GROUPS_CLAIM"] == "groups"
    # The claim reaches only the authorizer: the chat function reads the context it gives.
    chat_env = chat_function(custom)[1]["Properties"]["Environment"]["Variables"]
    assert "SIGN_IN_GROUPS_CLAIM" not in chat_env


def test_chat_function_is_told_that_sign_in_is_required(template):
    env = chat_function(template)[1]["Properties"]["Environment"]["Variables"]
    assert env["SIGN_IN_REQUIRED"] == "true"


def test_only_api_gateway_may_invoke_the_authorizer_and_only_as_this_authorizer(template):
    function_id, _ = authorizer_function(template)
    (authorizer_id,) = template.find_resources("AWS::ApiGatewayV2::Authorizer")
    api_id = websocket_api_id(template)
    permissions = [
        p["Properties"]
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert len(permissions) == 1
    (permission,) = permissions
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["Principal"] == "apigateway.amazonaws.com"
    parts = permission["SourceArn"]["Fn::Join"][1]
    assert parts[-3:] == [{"Ref": api_id}, "/authorizers/", {"Ref": authorizer_id}]
    assert ":execute-api:" in parts


def test_authorizer_role_may_write_its_own_log_group_and_nothing_else(template):
    _, function = authorizer_function(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    policies = [
        p["Properties"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [group_id, "Arn"]},
        }
    ]
    group = template.to_json()["Resources"][group_id]
    assert group["Properties"]["RetentionInDays"] == 30


# --- context validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"signInIssuer": ""}, "signInIssuer"),
        ({"signInIssuer": "http://cognito.example.com/pool"}, "signInIssuer"),
        ({"signInIssuer": "cognito-idp.eu-west-1.amazonaws.com/pool"}, "signInIssuer"),
        ({"signInIssuer": f"{ISSUER}?x=1"}, "signInIssuer"),
        ({"signInAudience": ""}, "signInAudience"),
        ({"signInAudience": "a b"}, "signInAudience"),
        ({"signInAudience": "a,b"}, "signInAudience"),
        ({"signInJwksUrl": "ftp://keys.example.com/jwks.json"}, "signInJwksUrl"),
        ({"signInNameClaim": ""}, "signInNameClaim"),
        ({"signInGroupsClaim": ""}, "signInGroupsClaim"),
        ({"signInGroupsClaim": "   "}, "signInGroupsClaim"),
        ({"signInGroupsClaim": "g" * 129}, "signInGroupsClaim"),
        ({"signInGroupsClaim": "gr\noups"}, "signInGroupsClaim"),
        ({"signInGroupsClaim": "grou\tps"}, "signInGroupsClaim"),
        ({"signInGroupsClaim": ["cognito:groups"]}, "signInGroupsClaim"),
        ({"signInGroupsClaim": 7}, "signInGroupsClaim"),
        ({"signInTokenSource": "cookie"}, "signInTokenSource"),
        ({"signIn": "maybe"}, "signIn"),
        ({"signInDomain": "http://chat.auth.eu-west-1.amazoncognito.com"}, "signInDomain"),
        ({"signInDomain": "https://chat.auth.eu-west-1.amazoncognito.com/oauth2"}, "signInDomain"),
        ({"signInDomain": "chat.auth.eu-west-1.amazoncognito.com"}, "signInDomain"),
    ],
)
def test_bad_sign_in_context_fails_synth_with_the_key_named(sign_in, overrides, key):
    with pytest.raises(ConfigError, match=key):
        template_with(**{**sign_in, **overrides})


def test_the_sign_in_domain_is_the_issuers_origin_unless_set(sign_in):
    # Where the hosted page fetches tokens (its CSP allows it): Cognito's token endpoint is
    # on the user pool's domain, not on the issuer's host.
    def sign_in_config(**context: Any) -> Any:
        return ChatConfig.from_context(App(context={**sign_in, **context}).node).sign_in

    assert sign_in_config().domain == "https://cognito-idp.eu-west-1.amazonaws.com"
    assert sign_in_config().client_id == CLIENT_ID
    domain = "https://chat.auth.eu-west-1.amazoncognito.com"
    assert sign_in_config(signInDomain=domain + "/").domain == domain


def test_loopback_http_issuer_is_accepted_for_local_runs(sign_in):
    local = template_with(**{**sign_in, "signInIssuer": "http://127.0.0.1:8765"})
    env = authorizer_function(local)[1]["Properties"]["Environment"]["Variables"]
    assert env["SIGN_IN_JWKS_URL"] == "http://127.0.0.1:8765/.well-known/jwks.json"


# --- the layer ----------------------------------------------------------------------------


def test_synth_without_the_layer_fails_naming_the_command_that_builds_it(
    sign_in, tmp_path, monkeypatch
):
    missing = tmp_path / "missing"
    with pytest.raises(LayerNotBuiltError, match=f"not built.*--layer-dir {missing}"):
        template_with(**{**sign_in, "signInLayerDir": str(missing)})
    # In its default place (a fresh checkout: no build/ yet), the make target is named.
    monkeypatch.setattr(authorizer_layer, "ROOT", tmp_path)
    with pytest.raises(LayerNotBuiltError, match="Build it with `make authorizer-layer`"):
        check_built(authorizer_layer.DEFAULT_LAYER_DIR)


def test_synth_with_a_layer_built_from_other_pins_fails(sign_in, tmp_path):
    stale = fake_layer(tmp_path / "stale")
    info = json.loads((stale / BUILD_INFO).read_text())
    info["requirements"] = ["PyJWT[crypto]==2.0.0"]
    (stale / BUILD_INFO).write_text(json.dumps(info))
    with pytest.raises(LayerNotBuiltError, match="other pins"):
        template_with(**{**sign_in, "signInLayerDir": str(stale)})


def test_layer_is_built_for_lambdas_runtime_not_this_machine(tmp_path):
    command = pip_command(tmp_path)
    for flag, value in [
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.14"),
        ("--implementation", "cp"),
        ("--target", str(tmp_path)),
        ("--requirement", str(authorizer_layer.REQUIREMENTS)),
    ]:
        assert command[command.index(flag) + 1] == value
    assert "--only-binary=:all:" in command


def test_layer_build_is_skipped_when_up_to_date_and_replaces_a_stale_one(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_pip(command: list[str], check: bool) -> None:
        calls.append(command)
        site = Path(command[command.index("--target") + 1])
        for package in ("jwt", "cryptography", "bin"):
            (site / package).mkdir(parents=True)

    monkeypatch.setattr(subprocess, "run", fake_pip)
    target = tmp_path / "layer"
    assert authorizer_layer.build(target)
    assert check_built(target) == target
    assert not (target / "python" / "bin").exists()  # console scripts are dropped
    assert not authorizer_layer.build(target)
    assert len(calls) == 1
    (target / BUILD_INFO).write_text("{}")
    assert authorizer_layer.build(target)
    assert len(calls) == 2


def test_layer_pins_the_same_pyjwt_as_the_dev_environment():
    # The sandbox and the tests run the authorizer with the virtualenv's PyJWT.
    def pyjwt(path: Path) -> set[str]:
        return {
            line.split("#")[0].strip()
            for line in path.read_text().splitlines()
            if line.lower().startswith("pyjwt")
        }

    assert pyjwt(authorizer_layer.REQUIREMENTS) == pyjwt(ROOT / "requirements-run.txt")


def test_authorizer_asset_is_authorizer_src_alone(sign_in):
    defaults = json.loads((ROOT / "cdk.json").read_text())["context"]
    # The CLI asks for asset metadata; an in-process app must too.
    context = {**defaults, **sign_in, "aws:cdk:enable-asset-metadata": True}
    assembly = build_app(context).synth()
    stack = assembly.get_stack_by_name("ChatStack")
    _, function = authorizer_function(Template.from_json(stack.template))
    asset = Path(assembly.directory) / function["Metadata"]["aws:asset:path"]
    assert sorted(p.name for p in asset.iterdir()) == ["authorizer.py"]


def cli_synth(out: Path, layer_dir: Path) -> subprocess.CompletedProcess[str]:
    """The pinned CLI with sign-in on, offline (an unroutable proxy) and without credentials."""
    context = {
        "signIn": "true",
        "signInIssuer": ISSUER,
        "signInAudience": CLIENT_ID,
        "signInLayerDir": str(layer_dir),
    }
    args = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
    return run_cdk("synth", "--quiet", "--output", str(out), *args)


@pytest.mark.synth
def test_cli_synth_with_sign_in_is_offline_and_cfn_lint_clean(layer_dir, tmp_path):
    result = cli_synth(tmp_path / "cdk.out", layer_dir)
    assert result.returncode == 0, result.stderr
    template = tmp_path / "cdk.out" / "ChatStack.template.json"
    assert "AWS::ApiGatewayV2::Authorizer" in template.read_text()
    cfn_lint = ROOT / ".venv" / "bin" / "cfn-lint"
    lint = subprocess.run(
        [str(cfn_lint), "--ignore-checks", "W3005", "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.synth
def test_cli_synth_with_sign_in_and_no_layer_fails_with_the_build_command(tmp_path):
    result = cli_synth(tmp_path / "cdk.out", tmp_path / "no-layer")
    assert result.returncode != 0
    assert "LayerNotBuiltError" in result.stderr
    assert f"python -m infra.authorizer_layer --layer-dir {tmp_path / 'no-layer'}" in result.stderr
