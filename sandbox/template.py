"""Read a synthesized CloudFormation template into the typed model the sandbox runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sandbox.intrinsics import API, FUNCTION, STAGE, TABLE_TYPES, Resolver, TemplateError
from sandbox.stack_model import (
    ApiSpec,
    AuthorizerSpec,
    FunctionSpec,
    HttpApiSpec,
    HttpRouteSpec,
    IdentitySource,
    RouteSpec,
    StackSpec,
    TableSpec,
)

__all__ = [
    "ApiSpec",
    "AuthorizerSpec",
    "FunctionSpec",
    "HttpApiSpec",
    "HttpRouteSpec",
    "IdentitySource",
    "RouteSpec",
    "StackSpec",
    "TableSpec",
    "TemplateError",
    "find_template",
    "load_template",
    "local_api_id",
    "parse_template",
]

DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128

ROUTE = "AWS::ApiGatewayV2::Route"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
AUTHORIZER = "AWS::ApiGatewayV2::Authorizer"

_IDENTITY_SOURCE = re.compile(r"route\.request\.(header|querystring)\.(.+)")


def find_template(cdk_out: Path, stack: str | None) -> Path:
    """Return the stack template in `cdk_out`; raise TemplateError if none or ambiguous.

    Without `stack`, the candidates are the stacks the last synth made: `cdk synth` leaves
    an earlier synth's templates in place (`-c stage=dev` after a plain synth leaves
    `ChatStack` beside `Chat-dev`), but its `manifest.json` lists only its own. Of several,
    the one with a WebSocket API is the chat (`githubRepository` adds `ChatDeployRole`).
    """
    if stack:
        path = cdk_out / f"{stack}.template.json"
        if not path.is_file():
            raise TemplateError(f"no template for stack {stack!r}: {path} does not exist")
        return path
    # Nested stacks (the hosted web client) are deployed by their parent: not a candidate.
    candidates = _synthesized_stacks(cdk_out) or sorted(
        p for p in cdk_out.glob("*.template.json") if not p.name.endswith(".nested.template.json")
    )
    if not candidates:
        raise TemplateError(
            f"no *.template.json in {cdk_out}/ (run `make synth` first, or pass --template)"
        )
    if len(candidates) > 1:
        with_api = [p for p in candidates if _declares(p, API)]
        if len(with_api) == 1:
            return with_api[0]
        names = ", ".join(p.name.removesuffix(".template.json") for p in candidates)
        raise TemplateError(f"several stacks in {cdk_out}/ ({names}): pass --stack or --template")
    return candidates[0]


def _synthesized_stacks(cdk_out: Path) -> list[Path]:
    """The templates of the stacks the cloud assembly's manifest lists ([] without one)."""
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text(encoding="utf-8"))
        artifacts = manifest["artifacts"].values()
        files = [
            a["properties"]["templateFile"]
            for a in artifacts
            if a.get("type") == "aws:cloudformation:stack"
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    paths = sorted(cdk_out / name for name in files if isinstance(name, str))
    return [p for p in paths if p.is_file()]


def _declares(path: Path, resource_type: str) -> bool:
    """Whether the template at `path` has a resource of `resource_type`."""
    try:
        resources = json.loads(path.read_text(encoding="utf-8")).get("Resources", {})
        return any(r.get("Type") == resource_type for r in resources.values())
    except (OSError, ValueError, AttributeError):
        return False


def load_template(path: Path, *, region: str) -> StackSpec:
    """Parse the template file at `path`; raise TemplateError when it cannot be run."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a CloudFormation template (top level is not an object)")
    stack_name = path.name.removesuffix(".template.json").removesuffix(".json")
    return parse_template(document, template_path=path, stack_name=stack_name, region=region)


def parse_template(
    document: Mapping[str, Any], *, template_path: Path, stack_name: str, region: str
) -> StackSpec:
    """Build the StackSpec for a template document; raise TemplateError when it cannot be run."""
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError(f"{template_path}: no Resources")
    warnings: list[str] = []
    parameters = dict(document.get("Parameters") or {})
    mappings = dict(document.get("Mappings") or {})
    naming = Resolver(
        resources=resources,
        parameters=parameters,
        mappings=mappings,
        stack_name=stack_name,
        region=region,
        api_ids={},
        endpoint=None,
    )
    tables = {
        logical_id: _parse_table(logical_id, resource.get("Properties") or {}, naming)
        for logical_id, resource in resources.items()
        if resource.get("Type") in TABLE_TYPES
    }
    functions = {
        logical_id: _parse_function(
            logical_id, resource, template_path.parent, naming, warnings=warnings
        )
        for logical_id, resource in resources.items()
        if resource.get("Type") == FUNCTION
    }
    api = _parse_api(resources, stack_name, warnings=warnings)
    http_apis = _parse_http_apis(resources, stack_name, functions, warnings=warnings)
    for route in api.routes.values():
        if route.function_id is not None and route.function_id not in functions:
            raise TemplateError(
                f"route {route.route_key!r} targets {route.function_id!r}, "
                "which is not an AWS::Lambda::Function in this template"
            )
        if route.authorizer is not None and route.authorizer.function_id not in functions:
            raise TemplateError(
                f"authorizer {route.authorizer.logical_id} invokes "
                f"{route.authorizer.function_id!r}, "
                "which is not an AWS::Lambda::Function in this template"
            )
    return StackSpec(
        template_path=template_path,
        stack_name=stack_name,
        api=api,
        functions=functions,
        tables=tables,
        resources=dict(resources),
        parameters=parameters,
        mappings=mappings,
        warnings=warnings,
        http_apis=http_apis,
    )


def local_api_id(stack_name: str, logical_id: str) -> str:
    """A stable 10-character lowercase id standing in for the deployed API id."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]


def _parse_table(logical_id: str, props: Mapping[str, Any], naming: Resolver) -> TableSpec:
    where = f"table {logical_id}"
    key_schema = props.get("KeySchema")
    attributes = props.get("AttributeDefinitions")
    if not isinstance(key_schema, list) or not isinstance(attributes, list):
        raise TemplateError(f"{where}: KeySchema and AttributeDefinitions are required")
    table_name = naming.physical_name(logical_id, f"{where} TableName")
    gsis = [_index(index) for index in props.get("GlobalSecondaryIndexes") or []]
    lsis = [_index(index) for index in props.get("LocalSecondaryIndexes") or []]
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true") else None
    stream = props.get("StreamSpecification") or {}
    return TableSpec(
        logical_id=logical_id,
        name=table_name,
        key_schema=[dict(k) for k in key_schema],
        attribute_definitions=[dict(a) for a in attributes],
        global_secondary_indexes=gsis,
        local_secondary_indexes=lsis,
        ttl_attribute=ttl_attribute,
        stream_view_type=stream.get("StreamViewType"),
    )


def _index(index: Mapping[str, Any]) -> dict[str, Any]:
    """An index definition without throughput settings (tables are created on demand)."""
    return {
        "IndexName": index["IndexName"],
        "KeySchema": [dict(k) for k in index["KeySchema"]],
        "Projection": dict(index.get("Projection") or {"ProjectionType": "ALL"}),
    }


def _parse_function(
    logical_id: str,
    resource: Mapping[str, Any],
    template_dir: Path,
    naming: Resolver,
    *,
    warnings: list[str],
) -> FunctionSpec:
    where = f"function {logical_id}"
    props = resource.get("Properties") or {}
    if props.get("PackageType", "Zip") != "Zip":
        raise TemplateError(f"{where}: only Zip packages are supported, not container images")
    runtime = str(props.get("Runtime", ""))
    if not runtime.startswith("python"):
        raise TemplateError(f"{where}: runtime {runtime or '(none)'!r} is not supported (python*)")
    handler = props.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{where}: Handler must look like 'module.function', got {handler!r}")
    if props.get("Layers"):
        warnings.append(f"{where}: Layers are ignored")
    code_dir = _code_dir(logical_id, resource, template_dir)
    variables = (props.get("Environment") or {}).get("Variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError(f"{where}: Environment.Variables must be an object")
    return FunctionSpec(
        logical_id=logical_id,
        name=naming.physical_name(logical_id, f"{where} FunctionName"),
        arn=naming.arn_of(logical_id, f"{where} FunctionName"),
        handler=handler,
        runtime=runtime,
        timeout_s=float(props.get("Timeout", DEFAULT_TIMEOUT_S)),
        memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
        code_dir=code_dir,
        environment=dict(variables),
    )


def _code_dir(logical_id: str, resource: Mapping[str, Any], template_dir: Path) -> Path:
    asset = (resource.get("Metadata") or {}).get("aws:asset:path")
    if isinstance(asset, str):
        path = (template_dir / asset).resolve()
        if not path.is_dir():
            raise TemplateError(f"function {logical_id}: asset directory {path} does not exist")
        return path
    code = (resource.get("Properties") or {}).get("Code") or {}
    if isinstance(code.get("ZipFile"), str):
        raise TemplateError(
            f"function {logical_id}: inline Code.ZipFile is not supported; use an asset directory"
        )
    raise TemplateError(
        f"function {logical_id}: no Metadata 'aws:asset:path', so its code cannot be found "
        "(synthesize with asset metadata enabled, the CDK default)"
    )


def _ref_target(value: Any) -> str | None:
    """The logical id a value refers to via Ref, or None."""
    if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def _find_refs(value: Any) -> list[str]:
    """Every logical id referenced with Ref anywhere inside `value`."""
    if isinstance(value, dict):
        target = _ref_target(value)
        if target is not None:
            return [target]
        return [ref for item in value.values() for ref in _find_refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _find_refs(item)]
    return []


def _find_arn_targets(value: Any) -> list[str]:
    """Every logical id whose Arn is taken (GetAtt or ${X.Arn}) anywhere inside `value`."""
    if isinstance(value, dict):
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            parts = target.split(".", 1) if isinstance(target, str) else target
            if isinstance(parts, list) and len(parts) == 2 and parts[1] == "Arn":
                return [str(parts[0])]
            return []
        return [t for item in value.values() for t in _find_arn_targets(item)]
    if isinstance(value, list):
        return [t for item in value for t in _find_arn_targets(item)]
    if isinstance(value, str):
        return re.findall(r"\$\{([A-Za-z0-9]+)\.Arn\}", value)
    return []


def _parse_api(resources: Mapping[str, Any], stack_name: str, *, warnings: list[str]) -> ApiSpec:
    apis = [
        (logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items()
        if resource.get("Type") == API
        and (resource.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"
    ]
    if not apis:
        raise TemplateError("no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET")
    if len(apis) > 1:
        names = ", ".join(logical_id for logical_id, _ in apis)
        raise TemplateError(f"several WebSocket APIs ({names}); the sandbox runs exactly one")
    api_id, api_props = apis[0]
    expression = api_props.get("RouteSelectionExpression")
    if not isinstance(expression, str):
        raise TemplateError(f"api {api_id}: RouteSelectionExpression is required")
    integrations = _integrations(resources, api_id, warnings=warnings)
    authorizers = _authorizers(resources, api_id, warnings=warnings)
    routes = _routes(resources, api_id, integrations, authorizers, warnings=warnings)
    two_way = {
        routes[route_id].route_key
        for _, props in _children(resources, ROUTE_RESPONSE, api_id)
        if (route_id := _ref_target(props.get("RouteId"))) in routes
        and props.get("RouteResponseKey") == "$default"
    }
    stages = tuple(str(props.get("StageName")) for _, props in _children(resources, STAGE, api_id))
    if not stages:
        raise TemplateError(f"api {api_id}: no AWS::ApiGatewayV2::Stage")
    for stage in stages:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", stage):
            raise TemplateError(f"stage {stage!r}: only [A-Za-z0-9_-] stage names are supported")
    return ApiSpec(
        logical_id=api_id,
        name=str(api_props.get("Name", api_id)),
        api_id=local_api_id(stack_name, api_id),
        route_selection_expression=expression,
        routes={
            route.route_key: dataclasses.replace(route, two_way=route.route_key in two_way)
            for route in routes.values()
        },
        stages=stages,
    )


def _parse_http_apis(
    resources: Mapping[str, Any],
    stack_name: str,
    functions: Mapping[str, FunctionSpec],
    *,
    warnings: list[str],
) -> tuple[HttpApiSpec, ...]:
    """The template's HTTP APIs (the server API): each route's method, path, function and
    authorization, and the `$default` stage's throttle."""
    found = []
    for api_id, props in sorted(resources.items()):
        if props.get("Type") != API:
            continue
        api_props = props.get("Properties") or {}
        if api_props.get("ProtocolType") != "HTTP":
            continue
        integrations = _integrations(resources, api_id, warnings=warnings)
        routes = []
        for logical_id, route in _children(resources, ROUTE, api_id):
            route_key = route.get("RouteKey")
            method, _, path = str(route_key).partition(" ")
            if not path.startswith("/") or not method.isupper():
                raise TemplateError(
                    f"http route {logical_id}: RouteKey {route_key!r} is not 'METHOD /path'"
                )
            refs = [ref for ref in _find_refs(route.get("Target")) if ref in integrations]
            if len(refs) != 1 or integrations[refs[0]] not in functions:
                raise TemplateError(
                    f"http route {route_key}: Target must be integrations/<Ref Integration> "
                    "of this API, invoking a function of this template"
                )
            authorization = route.get("AuthorizationType", "NONE")
            if authorization not in ("NONE", "AWS_IAM"):
                warnings.append(
                    f"http route {route_key}: AuthorizationType {authorization} is not "
                    "emulated (allowed)"
                )
            routes.append(
                HttpRouteSpec(
                    route_key=str(route_key),
                    method=method,
                    path=path,
                    function_id=integrations[refs[0]],
                    iam=authorization == "AWS_IAM",
                )
            )
        burst = rate = None
        for _, stage in _children(resources, STAGE, api_id):
            if stage.get("StageName") != "$default":
                warnings.append(
                    f"http api {api_id}: stage {stage.get('StageName')!r} is not served "
                    "(only $default)"
                )
                continue
            settings = stage.get("DefaultRouteSettings") or {}
            burst = settings.get("ThrottlingBurstLimit")
            rate = settings.get("ThrottlingRateLimit")
        found.append(
            HttpApiSpec(
                logical_id=api_id,
                name=str(api_props.get("Name", api_id)),
                api_id=local_api_id(stack_name, api_id),
                routes=tuple(routes),
                throttle_burst=int(burst) if isinstance(burst, int | float) else None,
                throttle_rate=float(rate) if isinstance(rate, int | float) else None,
            )
        )
    return tuple(found)


def _children(
    resources: Mapping[str, Any], kind: str, api_id: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """(logical id, properties) of the resources of type `kind` that belong to the API."""
    out = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == kind and _ref_target(props.get("ApiId")) == api_id:
            out.append((logical_id, props))
    return out


def _integrations(
    resources: Mapping[str, Any], api_id: str, *, warnings: list[str]
) -> dict[str, str]:
    """Integration logical id -> the logical id of the Lambda function it invokes."""
    integrations: dict[str, str] = {}
    for logical_id, props in _children(resources, INTEGRATION, api_id):
        integration_type = props.get("IntegrationType")
        if integration_type not in ("AWS_PROXY", "AWS"):
            raise TemplateError(
                f"integration {logical_id}: IntegrationType {integration_type!r} is not supported"
            )
        if integration_type == "AWS":
            warnings.append(
                f"integration {logical_id}: AWS (non-proxy) is run as AWS_PROXY; "
                "mapping templates are ignored"
            )
        targets = _find_arn_targets(props.get("IntegrationUri"))
        if len(targets) != 1:
            raise TemplateError(
                f"integration {logical_id}: IntegrationUri must name one Lambda function "
                "with Fn::GetAtt [Function, Arn]"
            )
        integrations[logical_id] = targets[0]
    return integrations


def _authorizers(
    resources: Mapping[str, Any], api_id: str, *, warnings: list[str]
) -> dict[str, AuthorizerSpec]:
    """Authorizer logical id -> the REQUEST authorizer it describes."""
    authorizers: dict[str, AuthorizerSpec] = {}
    for logical_id, props in _children(resources, AUTHORIZER, api_id):
        where = f"authorizer {logical_id}"
        authorizer_type = props.get("AuthorizerType")
        if authorizer_type != "REQUEST":
            raise TemplateError(
                f"{where}: AuthorizerType {authorizer_type!r} is not supported "
                "(WebSocket APIs have Lambda REQUEST authorizers)"
            )
        targets = _find_arn_targets(props.get("AuthorizerUri"))
        if len(targets) != 1:
            raise TemplateError(
                f"{where}: AuthorizerUri must name one Lambda function "
                "with Fn::GetAtt [Function, Arn]"
            )
        raw_sources = props.get("IdentitySource") or []
        if not isinstance(raw_sources, list) or not all(isinstance(s, str) for s in raw_sources):
            raise TemplateError(f"{where}: IdentitySource must be a list of strings")
        sources: list[IdentitySource] = []
        for raw in raw_sources:
            match = _IDENTITY_SOURCE.fullmatch(raw.strip())
            if match is None:
                warnings.append(f"{where}: identity source {raw!r} is not checked by the sandbox")
                continue
            location: Literal["header", "querystring"] = (
                "header" if match.group(1) == "header" else "querystring"
            )
            sources.append(IdentitySource(location, match.group(2)))
        if props.get("AuthorizerResultTtlInSeconds"):
            warnings.append(
                f"{where}: AuthorizerResultTtlInSeconds is ignored "
                "(API Gateway caches authorizer results for HTTP APIs only)"
            )
        authorizers[logical_id] = AuthorizerSpec(
            logical_id=logical_id,
            name=str(props.get("Name", logical_id)),
            function_id=targets[0],
            identity_sources=tuple(sources),
        )
    return authorizers


def _routes(
    resources: Mapping[str, Any],
    api_id: str,
    integrations: Mapping[str, str],
    authorizers: Mapping[str, AuthorizerSpec],
    *,
    warnings: list[str],
) -> dict[str, RouteSpec]:
    """Route logical id -> the route (two_way still False: route responses come later)."""
    routes: dict[str, RouteSpec] = {}
    for logical_id, props in _children(resources, ROUTE, api_id):
        route_key = props.get("RouteKey")
        if not isinstance(route_key, str):
            raise TemplateError(f"route {logical_id}: RouteKey must be a string")
        target = props.get("Target")
        function_id: str | None = None
        if target is not None:
            refs = [ref for ref in _find_refs(target) if ref in integrations]
            if len(refs) != 1:
                raise TemplateError(
                    f"route {route_key}: Target must be integrations/<Ref Integration> of this API"
                )
            function_id = integrations[refs[0]]
        else:
            warnings.append(f"route {route_key}: no Target; invoking it fails")
        authorizer = _route_authorizer(route_key, props, authorizers, warnings=warnings)
        routes[logical_id] = RouteSpec(route_key, function_id, False, authorizer)
    return routes


def _route_authorizer(
    route_key: str,
    props: Mapping[str, Any],
    authorizers: Mapping[str, AuthorizerSpec],
    *,
    warnings: list[str],
) -> AuthorizerSpec | None:
    """The Lambda authorizer that guards the route, if the sandbox runs one for it."""
    authorization_type = props.get("AuthorizationType", "NONE")
    if authorization_type == "NONE":
        return None
    if authorization_type != "CUSTOM":
        warnings.append(
            f"route {route_key}: AuthorizationType {authorization_type} is not emulated (allowed)"
        )
        return None
    authorizer_id = _ref_target(props.get("AuthorizerId"))
    if authorizer_id is None or authorizer_id not in authorizers:
        raise TemplateError(
            f"route {route_key}: AuthorizerId must be a Ref to an AWS::ApiGatewayV2::Authorizer "
            "of this API"
        )
    if route_key != "$connect":
        warnings.append(
            f"route {route_key}: authorizers run on $connect only, as in API Gateway; ignored"
        )
        return None
    return authorizers[authorizer_id]
