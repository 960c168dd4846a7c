"""The hosted web client (infra/hosting.py): what is deployed, how it is served, who may
reach it, and how its origin gets into the chat's allow-list."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Token

from app import build_app
from infra.config import LOOPBACK_ORIGINS, ChatConfig, ConfigError
from infra.hosting import cloudfront_name, web_files
from tests.support.sign_in import fake_layer

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())["context"]

# Written out here on purpose, not imported: what the browser must get for each file.
EXPECTED_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
NOT_FOR_THE_BROWSER = {"README.md", "package.json"}


def expected_web_files() -> dict[str, str]:
    """web/'s files minus its Node.js tests, README, package.json and hidden files."""
    files = {}
    for path in sorted(WEB.rglob("*")):
        relative = path.relative_to(WEB)
        if (
            not path.is_file()
            or relative.parts[0] == "tests"
            or relative.as_posix() in NOT_FOR_THE_BROWSER
            or any(part.startswith(".") for part in relative.parts)
        ):
            continue
        files[relative.as_posix()] = EXPECTED_CONTENT_TYPES[path.suffix]
    return files


def render(value: Any) -> str:
    """A template value as text: Fn::Join joined, Ref X as ${X}, Fn::GetAtt X.Y as ${X.Y}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            return "${" + argument + "}"
        if name == "Fn::GetAtt":
            return "${" + ".".join(argument) + "}"
        if name == "Fn::Sub" and isinstance(argument, str):
            return argument
        if name == "Fn::Join":
            return str(argument[0]).join(render(part) for part in argument[1])
    raise AssertionError(f"cannot render {value!r}")


@dataclass
class Synthesized:
    """The chat stack's template, its web nested stack's, and the assembly directory."""

    app: App
    directory: Path
    parent: dict[str, Any]
    web: dict[str, Any]

    def resources(self, template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}

    def one(self, template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
        (found,) = self.resources(template, kind).items()
        return found

    @property
    def websocket_api(self) -> tuple[str, dict[str, Any]]:
        """The chat's WebSocket API (the server API is an HTTP API beside it)."""
        (found,) = [
            (k, v)
            for k, v in self.resources(self.parent, "AWS::ApiGatewayV2::Api").items()
            if v["Properties"]["ProtocolType"] == "WEBSOCKET"
        ]
        return found

    @property
    def nested_stack(self) -> tuple[str, dict[str, Any]]:
        return self.one(self.parent, "AWS::CloudFormation::Stack")

    @property
    def chat_function(self) -> dict[str, Any]:
        (function,) = [
            f
            for f in self.resources(self.parent, "AWS::Lambda::Function").values()
            if f["Properties"]["Handler"] == "handler.lambda_handler"
        ]
        return function

    def api_parameter(self) -> str:
        """The web stack's parameter that carries the API's id (the parent passes it)."""
        _, nested = self.nested_stack
        ((parameter, value),) = nested["Properties"]["Parameters"].items()
        (api_id, _) = self.websocket_api
        assert value == {"Ref": api_id}
        return str(parameter)


def synthesize(stack_name: str = "ChatStack", **context: Any) -> Synthesized:
    app = build_app({**CDK_JSON, **context})
    directory = Path(app.synth().directory)
    parent = json.loads((directory / f"{stack_name}.template.json").read_text())
    nested = sorted(directory.glob("*.nested.template.json"))
    web = json.loads(nested[0].read_text()) if nested else {"Resources": {}}
    return Synthesized(app=app, directory=directory, parent=parent, web=web)


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    return synthesize()


def endpoint_for(synth: Synthesized) -> str:
    """The stage URL as the web stack sees it (the API id is its parameter)."""
    return (
        f"wss://${{{synth.api_parameter()}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
        "/production"
    )


# --- what is deployed -------------------------------------------------------------------


def test_the_web_files_are_web_without_tests_readme_or_package_json():
    files = web_files()
    assert files == expected_web_files()
    assert "index.html" in files and "app.js" in files and "style.css" in files
    assert not any(p.startswith("tests/") or p in NOT_FOR_THE_BROWSER for p in files)


def test_a_file_of_an_unknown_type_fails_the_synth_until_it_is_named(tmp_path):
    for name in ("index.html", "app.js", "js/a.js", "style.css", "tests/a.test.js"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    for name in ("README.md", "package.json", ".DS_Store"):
        (tmp_path / name).write_text("x")
    assert set(web_files(tmp_path)) == {"index.html", "app.js", "js/a.js", "style.css"}
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match=r"web/logo\.png.*CONTENT_TYPES"):
        web_files(tmp_path)


def deployed_objects(synth: Synthesized) -> dict[str, tuple[str, bytes, dict[str, Any]]]:
    """Every object the deployments put in the bucket: key → (Content-Type, staged bytes,
    the deployment's properties), read from the asset directories CDK staged."""
    objects: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
    deployments = synth.resources(synth.web, "Custom::CDKBucketDeployment")
    assert deployments
    for props in (d["Properties"] for d in deployments.values()):
        (key,) = props["SourceObjectKeys"]
        source = synth.directory / f"asset.{key.removesuffix('.zip')}"
        assert source.is_dir(), source
        assert props["Exclude"] == ["*"]  # then Include picks this deployment's files
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            name = path.relative_to(source).as_posix()
            # aws s3 sync matches filters with fnmatch: `*` spans directories too.
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in props["Include"]):
                assert name not in objects, f"{name} is deployed twice"
                content_type = props["SystemMetadata"]["content-type"]
                objects[name] = (content_type, path.read_bytes(), props)
    return objects


def test_the_bucket_gets_exactly_the_web_files_and_the_endpoint_with_their_types(synth):
    objects = deployed_objects(synth)
    assert {name: content_type for name, (content_type, _, _) in objects.items()} == {
        **expected_web_files(),
        "get-ws-endpoint": "application/json",
    }
    for name, (_, data, props) in objects.items():
        assert props["SystemMetadata"]["cache-control"] == "no-cache", name
        assert props["Prune"] is True, name
        if name != "get-ws-endpoint":
            assert data == (WEB / name).read_bytes(), name


def test_the_site_zip_holds_nothing_that_is_not_deployed(synth):
    sources = {
        props["SourceObjectKeys"][0]
        for props in (
            d["Properties"]
            for d in synth.resources(synth.web, "Custom::CDKBucketDeployment").values()
        )
        if props["SystemMetadata"]["content-type"] != "application/json"
    }
    (site,) = sources
    staged = synth.directory / f"asset.{site.removesuffix('.zip')}"
    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert shipped == set(expected_web_files())


def test_get_ws_endpoint_is_json_naming_this_stages_url(synth):
    (_, data, props) = deployed_objects(synth)["get-ws-endpoint"]
    text = data.decode()
    (markers,) = props["SourceMarkers"]
    for marker, value in markers.items():
        text = text.replace(marker, render(value))
    assert json.loads(text) == {"endpoint": endpoint_for(synth)}


ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
DOMAIN = "https://chat.auth.eu-west-1.amazoncognito.com"


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack with sign-in on for a Cognito user pool and its hosted UI's domain."""
    layer = fake_layer(tmp_path_factory.mktemp("authorizer-layer"))
    return synthesize(
        signIn=True,
        signInIssuer=ISSUER,
        signInAudience="app-client-id",
        signInDomain=DOMAIN,
        signInTokenSource="protocol",
        signInLayerDir=str(layer),
    )


def endpoint_document(synth: Synthesized) -> Any:
    (_, data, props) = deployed_objects(synth)["get-ws-endpoint"]
    text = data.decode()
    (markers,) = props["SourceMarkers"]
    for marker, value in markers.items():
        text = text.replace(marker, render(value))
    return json.loads(text)


def test_with_sign_in_get_ws_endpoint_also_says_how_the_page_signs_in(signed_in):
    # `endpoint` as before (older pages keep working), and what web/js/signin.js needs:
    # the issuer to discover, the app client (the authorizer's audience: an ID token's
    # `aud`), where the token goes, the scope and the claim that gives the name.
    assert endpoint_document(signed_in) == {
        "endpoint": endpoint_for(signed_in),
        "signIn": {
            "issuer": ISSUER,
            "clientId": "app-client-id",
            "tokenSource": "protocol",
            "scope": "openid",
            "nameClaim": "cognito:username",
        },
    }


def test_one_handler_one_cli_layer_for_all_the_deployments(synth):
    layers = synth.resources(synth.web, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    handlers = [
        f
        for f in synth.resources(synth.web, "AWS::Lambda::Function").values()
        if f["Properties"].get("Layers")
    ]
    assert [h["Properties"]["Layers"] for h in handlers] == [[{"Ref": next(iter(layers))}]]


def test_the_deployment_role_reads_its_zips_and_writes_this_bucket_only(synth):
    (handler,) = [
        f
        for f in synth.resources(synth.web, "AWS::Lambda::Function").values()
        if f["Properties"].get("Layers")
    ]
    role_id = handler["Properties"]["Role"]["Fn::GetAtt"][0]
    role = synth.web["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources(synth.web, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    bucket, _ = next(
        (k, v)
        for k, v in synth.resources(synth.web, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" in v["Properties"]
    )
    log_group, _ = synth.one(synth.web, "AWS::Logs::LogGroup")
    zips = sorted(
        {
            d["Properties"]["SourceObjectKeys"][0]
            for d in synth.resources(synth.web, "Custom::CDKBucketDeployment").values()
        }
    )
    assets = "arn:${AWS::Partition}:s3:::cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/"
    assert [
        (s["Effect"], s["Action"], sorted(map(render, _listed(s["Resource"])))) for s in policy
    ] == [
        ("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"${{{log_group}.Arn}}"]),
        ("Allow", "s3:GetObject", [assets + key for key in zips]),
        ("Allow", "s3:ListBucket", [f"${{{bucket}.Arn}}"]),
        ("Allow", ["s3:DeleteObject", "s3:PutObject"], [f"${{{bucket}.Arn}}/*"]),
    ]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- how it is served -------------------------------------------------------------------


def test_the_bucket_is_private_encrypted_tls_only_and_logged(synth):
    buckets = synth.resources(synth.web, "AWS::S3::Bucket")
    (site_id, site), (logs_id, logs) = sorted(
        buckets.items(), key=lambda item: "LoggingConfiguration" not in item[1]["Properties"]
    )
    for bucket in (site, logs):
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
        assert "VersioningConfiguration" not in props
        assert "WebsiteConfiguration" not in props
    assert site["Properties"]["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert site["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id},
        "LogFilePrefix": "s3/",
    }
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources(synth.web, "AWS::S3::BucketPolicy").values()
    }
    for bucket_id in (site_id, logs_id):
        denials = [s["Condition"] for s in policies[bucket_id] if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in denials
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in denials
        for statement in policies[bucket_id]:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != {"AWS": "*"} and statement["Principal"] != "*"
    # Readers of the site: CloudFront, for this distribution only (OAC).
    (distribution_id, _) = synth.one(synth.web, "AWS::CloudFront::Distribution")
    (read,) = [s for s in policies[site_id] if s["Action"] == "s3:GetObject"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert render(read["Condition"]["StringEquals"]["AWS:SourceArn"]).endswith(
        f":distribution/${{{distribution_id}}}"
    )


def test_the_distribution_reads_through_oac_https_only_with_index_html(synth):
    (_, distribution) = synth.one(synth.web, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    (oac_id, oac) = synth.one(synth.web, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningProtocol"] == "sigv4"
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, no legacy OAI
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    (headers_id, _) = synth.one(synth.web, "AWS::CloudFront::ResponseHeadersPolicy")
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": headers_id}
    assert "CacheBehaviors" not in config
    assert config["DefaultRootObject"] == "index.html"
    assert config["Logging"]["Prefix"] == "cloudfront/"


def security_headers(synth: Synthesized) -> dict[str, Any]:
    (_, policy) = synth.one(synth.web, "AWS::CloudFront::ResponseHeadersPolicy")
    return dict(policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"])


def test_the_csp_allows_the_pages_own_files_and_this_apis_endpoint_only(synth):
    csp = security_headers(synth)["ContentSecurityPolicy"]
    assert csp["Override"] is True
    directives = dict(d.split(" ", 1) for d in render(csp["ContentSecurityPolicy"]).split("; "))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        # 'self' for GET /get-ws-endpoint; the one WebSocket endpoint is this API's stage.
        "connect-src": f"'self' {endpoint_for(synth)}",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
    }
    # The same URL the stack gives clients, with the parameter standing for the API.
    (api_id, _) = synth.websocket_api
    websocket_url = render(synth.parent["Outputs"]["WebSocketUrl"]["Value"])
    assert endpoint_for(synth).replace(synth.api_parameter(), api_id) == websocket_url
    assert "unsafe" not in json.dumps(csp) and "ws:" not in directives["connect-src"]


def test_with_sign_in_the_csp_also_allows_the_issuers_discovery_and_token_endpoint(signed_in):
    csp = security_headers(signed_in)["ContentSecurityPolicy"]
    directives = dict(d.split(" ", 1) for d in render(csp["ContentSecurityPolicy"]).split("; "))
    # The discovery document is under the issuer's path (this pool only); the token
    # endpoint is on the user pool's domain. The hosted sign-in page is a navigation, which
    # connect-src does not govern, and no form is ever posted (form-action stays 'none').
    assert directives["connect-src"] == f"'self' {endpoint_for(signed_in)} {ISSUER}/ {DOMAIN}"
    assert directives["form-action"] == "'none'"
    assert directives["script-src"] == "'self'"


def test_hsts_nosniff_no_referrer_and_no_framing(synth):
    headers = security_headers(synth)
    assert headers["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 365 * 86400,
        "IncludeSubdomains": True,
        "Override": True,
    }
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}


def test_cloudfront_names_carry_the_stack_and_region_and_fit():
    stack = Stack(App(), "Test")
    assert stack.resolve(cloudfront_name("Chat-dev")) == {
        "Fn::Join": ["", ["Chat-dev-web-", {"Ref": "AWS::Region"}]]
    }
    long_a, long_b = "Chat-" + "a" * 100, "Chat-" + "a" * 99 + "b"
    prefix_a = stack.resolve(cloudfront_name(long_a))["Fn::Join"][1][0]
    prefix_b = stack.resolve(cloudfront_name(long_b))["Fn::Join"][1][0]
    assert prefix_a != prefix_b
    # Origin access control names: at most 64 characters, the longest region included.
    assert len(prefix_a) + len("ap-southeast-5") <= 64
    assert Token.is_unresolved(cloudfront_name("Chat-dev"))


# --- the page's origin and the chat ----------------------------------------------------


def test_the_page_url_is_an_output_and_its_origin_is_allowed_on_connect(synth):
    (nested_id, _) = synth.nested_stack
    web_url = render(synth.parent["Outputs"]["WebUrl"]["Value"])
    assert re.fullmatch(rf"https://\$\{{{nested_id}\.Outputs\.\w+DomainName\}}", web_url)
    (distribution_id, _) = synth.one(synth.web, "AWS::CloudFront::Distribution")
    output = web_url.split(".Outputs.")[1].rstrip("}")
    assert synth.web["Outputs"][output]["Value"] == {"Fn::GetAtt": [distribution_id, "DomainName"]}
    allowed = render(
        synth.chat_function["Properties"]["Environment"]["Variables"]["ALLOWED_ORIGINS"]
    )
    assert allowed.split(",") == [web_url, *LOOPBACK_ORIGINS]


def test_configured_origins_come_first_and_any_origin_stays_any_origin():
    configured = synthesize(allowedOrigins="https://chat.example.com")
    allowed = configured.chat_function["Properties"]["Environment"]["Variables"]
    web_url = render(configured.parent["Outputs"]["WebUrl"]["Value"])
    assert render(allowed["ALLOWED_ORIGINS"]).split(",") == [
        "https://chat.example.com",
        web_url,
        *LOOPBACK_ORIGINS,
    ]
    anyone = synthesize(allowedOrigins="*").chat_function["Properties"]["Environment"]
    assert anyone["Variables"]["ALLOWED_ORIGINS"] == "*"


def test_the_web_stack_depends_on_the_api_and_never_on_the_function(synth):
    (nested_id, nested) = synth.nested_stack
    function_id = next(
        k
        for k, v in synth.resources(synth.parent, "AWS::Lambda::Function").items()
        if v is synth.chat_function
    )
    assert synth.api_parameter()  # its one parameter is the API's id
    assert function_id not in json.dumps(nested)
    assert list(synth.web.get("Parameters", {})) == [synth.api_parameter()]
    # and the function depends on the web stack (its domain), not the other way round
    assert nested_id in json.dumps(synth.chat_function)


def test_without_hosting_there_is_no_web_stack_and_no_page_origin():
    plain = synthesize(hostWebClient=False)
    assert plain.resources(plain.parent, "AWS::CloudFormation::Stack") == {}
    assert plain.web == {"Resources": {}}
    assert "WebUrl" not in plain.parent["Outputs"]
    variables = plain.chat_function["Properties"]["Environment"]["Variables"]
    assert variables["ALLOWED_ORIGINS"] == ",".join(LOOPBACK_ORIGINS)


def bucket_policies(s: Synthesized) -> dict[str, tuple[str, str]]:
    """Each web bucket's (DeletionPolicy, UpdateReplacePolicy): `site` and `logs`."""
    return {
        "site" if "LoggingConfiguration" in v["Properties"] else "logs": (
            v["DeletionPolicy"],
            v["UpdateReplacePolicy"],
        )
        for v in s.resources(s.web, "AWS::S3::Bucket").values()
    }


def emptied(s: Synthesized) -> set[str]:
    """The buckets a Custom::S3AutoDeleteObjects empties: `site` and/or `logs`."""
    buckets = {
        logical_id: "site" if "LoggingConfiguration" in v["Properties"] else "logs"
        for logical_id, v in s.resources(s.web, "AWS::S3::Bucket").items()
    }
    return {
        buckets[v["Properties"]["BucketName"]["Ref"]]
        for v in s.resources(s.web, "Custom::S3AutoDeleteObjects").values()
    }


def managed_policies(s: Synthesized) -> list[str]:
    """The AWS managed policies of every role in both templates, rendered."""
    return [
        render(arn)
        for template in (s.parent, s.web)
        for role in s.resources(template, "AWS::IAM::Role").values()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    ]


def test_by_default_the_buckets_are_retained_and_nothing_can_empty_them(synth):
    assert bucket_policies(synth) == {"site": ("Retain", "Retain"), "logs": ("Retain", "Retain")}
    assert emptied(synth) == set()
    # No auto-delete provider: the web stack's only role is the deployment's, and no role
    # in either template has AWSLambdaBasicExecutionRole (ours write to their own groups).
    (role,) = synth.resources(synth.web, "AWS::IAM::Role")
    assert role.startswith("DeployRole")
    assert not [arn for arn in managed_policies(synth) if "AWSLambdaBasicExecutionRole" in arn]
    runtimes = {
        f["Properties"]["Runtime"]
        for f in synth.resources(synth.web, "AWS::Lambda::Function").values()
    }
    assert len(runtimes) == 1  # the BucketDeployment handler's Python; no Node.js provider
    assert not [r for r in runtimes if r.startswith("nodejs")]
    for policy in synth.resources(synth.web, "AWS::S3::BucketPolicy").values():
        assert "s3:PutBucketPolicy" not in json.dumps(policy)


def test_removal_policy_destroy_alone_does_not_delete_the_buckets():
    # destroy is the default already; retain and a prod stage change nothing either.
    for context in ({"removalPolicy": "retain"}, {"stage": "prod"}):
        other = synthesize(("Chat-prod" if "stage" in context else "ChatStack"), **context)
        assert set(bucket_policies(other).values()) == {("Retain", "Retain")}, context
        assert emptied(other) == set(), context


@pytest.fixture(scope="module")
def auto_deleted() -> Synthesized:
    return synthesize(autoDeleteBuckets=True)


def test_with_auto_delete_buckets_both_are_emptied_and_deleted_with_the_stack(auto_deleted):
    assert bucket_policies(auto_deleted) == {
        "site": ("Delete", "Delete"),
        "logs": ("Delete", "Delete"),
    }
    assert emptied(auto_deleted) == {"site", "logs"}


def test_with_auto_delete_buckets_each_bucket_still_follows_its_removal_policy():
    site_kept = synthesize(
        autoDeleteBuckets=True, removalPolicy="retain", logRemovalPolicy="destroy"
    )
    assert bucket_policies(site_kept)["site"] == ("Retain", "Retain")
    assert bucket_policies(site_kept)["logs"] == ("Delete", "Delete")
    assert emptied(site_kept) == {"logs"}
    prod = synthesize("Chat-prod", stage="prod", autoDeleteBuckets=True)
    assert bucket_policies(prod)["logs"] == ("Retain", "Retain")  # prod keeps its logs
    assert emptied(prod) == {"site"}


# What the auto-delete provider may do to each bucket: docs/security.md says the same.
AUTO_DELETE_ACTIONS = ["s3:DeleteObject*", "s3:GetBucket*", "s3:List*", "s3:PutBucketPolicy"]


def test_the_auto_delete_provider_can_empty_these_two_buckets_and_nothing_else(auto_deleted):
    roles = auto_deleted.resources(auto_deleted.web, "AWS::IAM::Role")
    (provider,) = [k for k in roles if k.startswith("CustomS3AutoDeleteObjects")]
    props = roles[provider]["Properties"]
    assert [render(a) for a in props["ManagedPolicyArns"]] == [
        "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert "Policies" not in props  # no inline policy: its S3 rights are the buckets' grants
    assert not [
        p
        for p in auto_deleted.resources(auto_deleted.web, "AWS::IAM::Policy").values()
        if provider in json.dumps(p["Properties"]["Roles"])
    ]
    granted = {}
    for policy in auto_deleted.resources(auto_deleted.web, "AWS::S3::BucketPolicy").values():
        bucket = policy["Properties"]["Bucket"]["Ref"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if provider in json.dumps(statement.get("Principal")):
                assert statement["Effect"] == "Allow" and "Condition" not in statement
                assert [render(r) for r in statement["Resource"]] == [
                    f"${{{bucket}.Arn}}",
                    f"${{{bucket}.Arn}}/*",
                ]
                granted[bucket] = statement["Action"]
    assert set(granted) == set(auto_deleted.resources(auto_deleted.web, "AWS::S3::Bucket"))
    assert all(actions == AUTO_DELETE_ACTIONS for actions in granted.values())


def test_docs_security_md_records_what_the_auto_delete_provider_can_do():
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("\n## The web bucket's auto-delete role", 1)[1].split("\n## ", 1)[0]
    for needle in (*AUTO_DELETE_ACTIONS, "AWSLambdaBasicExecutionRole", "`autoDeleteBuckets=true`"):
        assert needle in section, needle


@pytest.mark.parametrize("value", ["sometimes", "2"])
def test_a_bad_auto_delete_buckets_fails_with_the_key_named(value):
    with pytest.raises(ConfigError, match="autoDeleteBuckets"):
        ChatConfig.from_context(App(context={"autoDeleteBuckets": value}).node)


def test_access_logs_expire_with_the_log_retention(synth):
    (logs,) = [
        v
        for v in synth.resources(synth.web, "AWS::S3::Bucket").values()
        if "LifecycleConfiguration" in v["Properties"]
    ]
    assert logs["Properties"]["LifecycleConfiguration"] == {
        "Rules": [{"ExpirationInDays": 30, "Status": "Enabled"}]
    }
    (_, group) = synth.one(synth.web, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 30


# --- the real CLI synth -----------------------------------------------------------------


@pytest.mark.synth
def test_the_cli_stages_the_web_files_and_cfn_lint_accepts_the_web_template(cdk_out):
    result, out = cdk_out
    assert result.returncode == 0, result.stderr
    (nested,) = out.glob("*.nested.template.json")
    template = json.loads(nested.read_text())
    keys = {
        d["Properties"]["SourceObjectKeys"][0]
        for d in template["Resources"].values()
        if d["Type"] == "Custom::CDKBucketDeployment"
        and d["Properties"]["SystemMetadata"]["content-type"] != "application/json"
    }
    (site,) = keys
    staged = out / f"asset.{site.removesuffix('.zip')}"
    assert {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()} == set(
        expected_web_files()
    )
    cfn_lint = shutil.which("cfn-lint", path=str(ROOT / ".venv" / "bin")) or "cfn-lint"
    # W3005 (a DependsOn also implied by GetAtt) is how CDK always renders a function's role.
    lint = subprocess.run(
        [cfn_lint, "--ignore-checks", "W3005", "--", str(nested)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
