"""Read a synthesized CloudFormation template into the typed model the sandbox runs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "000000000000"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128

API = "AWS::ApiGatewayV2::Api"
ROUTE = "AWS::ApiGatewayV2::Route"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
STAGE = "AWS::ApiGatewayV2::Stage"
FUNCTION = "AWS::Lambda::Function"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")

_NO_VALUE = object()


class TemplateError(Exception):
    """The template describes something the sandbox cannot run."""


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table as `create_table` wants it, plus its TTL attribute."""

    logical_id: str
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    local_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    ttl_attribute: str | None = None
    stream_view_type: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: where its code is, how to call it, its raw environment."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    code_dir: Path
    environment: dict[str, Any]


@dataclass(frozen=True)
class RouteSpec:
    """One route: its key, the function behind it and whether its response is returned."""

    route_key: str
    function_id: str | None
    two_way: bool


@dataclass(frozen=True)
class ApiSpec:
    """The WebSocket API: id, route selection expression, routes by key, stage names."""

    logical_id: str
    name: str
    api_id: str
    route_selection_expression: str
    routes: dict[str, RouteSpec]
    stages: tuple[str, ...]


@dataclass(frozen=True)
class StackSpec:
    """Everything the sandbox emulates from one template."""

    template_path: Path
    stack_name: str
    api: ApiSpec
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    resources: dict[str, Any]
    parameters: dict[str, Any]
    mappings: dict[str, Any]
    warnings: list[str]


@dataclass(frozen=True)
class LocalEndpoint:
    """Where the sandbox listens, used to rewrite execute-api URLs."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        """`host:port` as it appears in URLs."""
        return f"{self.host}:{self.port}"


def find_template(cdk_out: Path, stack: str | None) -> Path:
    """Return the stack template in `cdk_out`; raise TemplateError if none or ambiguous."""
    if stack:
        path = cdk_out / f"{stack}.template.json"
        if not path.is_file():
            raise TemplateError(f"no template for stack {stack!r}: {path} does not exist")
        return path
    candidates = sorted(cdk_out.glob("*.template.json"))
    if not candidates:
        raise TemplateError(
            f"no *.template.json in {cdk_out}/ (run `make synth` first, or pass --template)"
        )
    if len(candidates) > 1:
        names = ", ".join(p.name.removesuffix(".template.json") for p in candidates)
        raise TemplateError(f"several stacks in {cdk_out}/ ({names}): pass --stack or --template")
    return candidates[0]


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
    for route in api.routes.values():
        if route.function_id is not None and route.function_id not in functions:
            raise TemplateError(
                f"route {route.route_key!r} targets {route.function_id!r}, "
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
    name = props.get("TableName")
    table_name = logical_id if name is None else naming.resolve_string(name, f"{where} TableName")
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
    name = props.get("FunctionName")
    function_name = (
        logical_id if name is None else naming.resolve_string(name, f"{where} FunctionName")
    )
    variables = (props.get("Environment") or {}).get("Variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError(f"{where}: Environment.Variables must be an object")
    return FunctionSpec(
        logical_id=logical_id,
        name=function_name,
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
    route_keys, targets = _routes(resources, api_id, integrations, warnings=warnings)
    two_way = {
        route_keys[route_id]
        for _, props in _children(resources, ROUTE_RESPONSE, api_id)
        if (route_id := _ref_target(props.get("RouteId"))) in route_keys
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
            key: RouteSpec(route_key=key, function_id=function_id, two_way=key in two_way)
            for key, function_id in targets.items()
        },
        stages=stages,
    )


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


def _routes(
    resources: Mapping[str, Any],
    api_id: str,
    integrations: Mapping[str, str],
    *,
    warnings: list[str],
) -> tuple[dict[str, str], dict[str, str | None]]:
    """(route logical id -> route key, route key -> function logical id or None)."""
    route_keys: dict[str, str] = {}
    targets: dict[str, str | None] = {}
    for logical_id, props in _children(resources, ROUTE, api_id):
        route_key = props.get("RouteKey")
        if not isinstance(route_key, str):
            raise TemplateError(f"route {logical_id}: RouteKey must be a string")
        if props.get("AuthorizationType", "NONE") != "NONE":
            warnings.append(f"route {route_key}: authorizers are not emulated (allowed)")
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
        route_keys[logical_id] = route_key
        targets[route_key] = function_id
    return route_keys, targets


class Resolver:
    """Resolves CloudFormation intrinsic functions to the sandbox's local values."""

    def __init__(
        self,
        *,
        resources: Mapping[str, Any],
        parameters: Mapping[str, Any],
        mappings: Mapping[str, Any],
        stack_name: str,
        region: str,
        api_ids: Mapping[str, str],
        endpoint: LocalEndpoint | None,
    ) -> None:
        self._resources = resources
        self._parameters = parameters
        self._mappings = mappings
        self._stack_name = stack_name
        self._region = region
        self._api_ids = api_ids
        self._endpoint = endpoint

    @classmethod
    def for_stack(cls, stack: StackSpec, *, region: str, endpoint: LocalEndpoint) -> Resolver:
        """A resolver for `stack` whose execute-api URLs point at `endpoint`."""
        return cls(
            resources=stack.resources,
            parameters=stack.parameters,
            mappings=stack.mappings,
            stack_name=stack.stack_name,
            region=region,
            api_ids={stack.api.logical_id: stack.api.api_id},
            endpoint=endpoint,
        )

    def resolve_environment(self, variables: Mapping[str, Any], where: str) -> dict[str, str]:
        """Resolve each variable to a string; raise TemplateError naming the bad one."""
        out: dict[str, str] = {}
        for name, value in variables.items():
            resolved = self.resolve_string(value, f"{where}: environment variable {name}")
            out[name] = resolved
        return out

    def resolve_string(self, value: Any, where: str) -> str:
        """Resolve `value` to a string, with execute-api URLs rewritten to the local endpoint."""
        resolved = self.resolve(value, where)
        if resolved is _NO_VALUE or isinstance(resolved, (dict, list)):
            raise TemplateError(f"{where}: does not resolve to a string")
        text = _scalar(resolved)
        return self._rewrite_execute_api(text)

    def resolve(self, value: Any, where: str) -> Any:
        """Resolve the intrinsic functions inside `value` (raise TemplateError if unsupported)."""
        if isinstance(value, list):
            items = [self.resolve(item, where) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument, where)
            if key.startswith("Fn::"):
                return self._function(key, argument, where)
        return {k: self.resolve(v, where) for k, v in value.items()}

    def _function(self, name: str, argument: Any, where: str) -> Any:
        if name == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            if not (isinstance(parts, list) and len(parts) == 2):
                raise TemplateError(f"{where}: malformed Fn::GetAtt {argument!r}")
            return self._get_att(str(parts[0]), str(self.resolve(parts[1], where)), where)
        if name == "Fn::Join":
            delimiter, items = argument
            resolved = self.resolve(items, where)
            if not isinstance(resolved, list):
                raise TemplateError(f"{where}: Fn::Join needs a list")
            return str(delimiter).join(_scalar(item) for item in resolved)
        if name == "Fn::Sub":
            return self._sub(argument, where)
        if name == "Fn::Select":
            index, items = argument
            resolved = self.resolve(items, where)
            position = int(self.resolve(index, where))
            if not isinstance(resolved, list) or not 0 <= position < len(resolved):
                raise TemplateError(f"{where}: Fn::Select index {position} out of range")
            return resolved[position]
        if name == "Fn::Split":
            delimiter, text = argument
            return _scalar(self.resolve(text, where)).split(str(delimiter))
        if name == "Fn::FindInMap":
            map_name, top, second = (self.resolve(part, where) for part in argument)
            try:
                return self._mappings[map_name][top][second]
            except KeyError as exc:
                raise TemplateError(f"{where}: Fn::FindInMap {argument!r} not found") from exc
        raise TemplateError(f"{where}: intrinsic function {name} is not supported by the sandbox")

    def _ref(self, target: Any, where: str) -> Any:
        if not isinstance(target, str):
            raise TemplateError(f"{where}: malformed Ref {target!r}")
        pseudo = {
            "AWS::Region": self._region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self._stack_name,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{self._region}:{ACCOUNT_ID}:"
                f"stack/{self._stack_name}/00000000-0000-0000-0000-000000000000"
            ),
        }
        if target in pseudo:
            return pseudo[target]
        if target == "AWS::NoValue":
            return _NO_VALUE
        if target in self._parameters:
            parameter = self._parameters[target]
            if "Default" not in parameter:
                raise TemplateError(f"{where}: parameter {target} has no Default")
            return parameter["Default"]
        resource = self._resources.get(target)
        if resource is None:
            raise TemplateError(f"{where}: Ref to unknown {target!r}")
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind in TABLE_TYPES:
            name = props.get("TableName")
            return target if name is None else self.resolve_string(name, where)
        if kind == FUNCTION:
            name = props.get("FunctionName")
            return target if name is None else self.resolve_string(name, where)
        if kind == API:
            return self._api_ids.get(target, target)
        if kind == STAGE:
            return str(props.get("StageName"))
        raise TemplateError(f"{where}: Ref to {kind} {target} is not supported by the sandbox")

    def _get_att(self, target: str, attribute: str, where: str) -> Any:
        resource = self._resources.get(target)
        if resource is None:
            raise TemplateError(f"{where}: Fn::GetAtt of unknown {target!r}")
        kind = resource.get("Type")
        if kind in TABLE_TYPES and attribute in ("Arn", "StreamArn"):
            table = self._ref(target, where)
            arn = f"arn:{PARTITION}:dynamodb:{self._region}:{ACCOUNT_ID}:table/{table}"
            return arn if attribute == "Arn" else f"{arn}/stream/1970-01-01T00:00:00.000"
        if kind == FUNCTION and attribute == "Arn":
            name = self._ref(target, where)
            return f"arn:{PARTITION}:lambda:{self._region}:{ACCOUNT_ID}:function:{name}"
        if kind == API and attribute == "ApiEndpoint":
            return (
                f"wss://{self._api_ids.get(target, target)}.execute-api.{self._region}.{URL_SUFFIX}"
            )
        if kind == API and attribute == "ApiId":
            return self._api_ids.get(target, target)
        raise TemplateError(
            f"{where}: Fn::GetAtt {target}.{attribute} ({kind}) is not supported by the sandbox"
        )

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, list):
            text, variables = argument
            local = {k: self.resolve(v, where) for k, v in dict(variables).items()}
        else:
            text, local = argument, {}
        if not isinstance(text, str):
            raise TemplateError(f"{where}: malformed Fn::Sub")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return _scalar(local[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return _scalar(self._get_att(logical_id, attribute, where))
            return _scalar(self._ref(name, where))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _rewrite_execute_api(self, text: str) -> str:
        if self._endpoint is None:
            return text
        authority = self._endpoint.authority
        for api_id in self._api_ids.values():
            domain = f"{api_id}.execute-api.{self._region}.{URL_SUFFIX}"
            text = text.replace(f"https://{domain}", f"http://{authority}")
            text = text.replace(f"wss://{domain}", f"ws://{authority}")
            text = text.replace(domain, authority)
        return text


def _scalar(value: Any) -> str:
    if value is _NO_VALUE:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"expected a string, got {json.dumps(value)[:80]}")
    return str(value)
