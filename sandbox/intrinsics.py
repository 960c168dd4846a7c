"""CloudFormation intrinsics resolved to local values, and the one physical name and ARN rule."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.stack_model import StackSpec

log = logging.getLogger("sandbox")

ACCOUNT_ID = "000000000000"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

API = "AWS::ApiGatewayV2::Api"
STAGE = "AWS::ApiGatewayV2::Stage"
FUNCTION = "AWS::Lambda::Function"
NESTED_STACK = "AWS::CloudFormation::Stack"
# Nested stacks are not run; their outputs resolve to names under this reserved domain.
NESTED_OUTPUT_DOMAIN = "nested-stack.sandbox.invalid"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")

# Resource type -> (the property that names it, ARN service, ARN resource before the name).
_NAMED_TYPES = {
    **{table: ("TableName", "dynamodb", "table/") for table in TABLE_TYPES},
    FUNCTION: ("FunctionName", "lambda", "function:"),
}

_NO_VALUE = object()


class TemplateError(Exception):
    """The template describes something the sandbox cannot run."""


@dataclass(frozen=True)
class LocalEndpoint:
    """Where the sandbox listens, used to rewrite execute-api URLs: `wss://` to the plain
    port's `ws://`, and `https://` (the callback URL) to the HTTPS listener when there is
    one (`tls_port`; it listens on 127.0.0.1)."""

    host: str
    port: int
    tls_port: int | None = None

    @property
    def authority(self) -> str:
        """`host:port` as it appears in URLs."""
        return f"{self.host}:{self.port}"

    @property
    def https_base(self) -> str:
        """The base URL `https://…` execute-api URLs become."""
        if self.tls_port is None:
            return f"http://{self.authority}"
        return f"https://127.0.0.1:{self.tls_port}"


def arn(service: str, region: str, resource: str) -> str:
    """An ARN in the sandbox's fake account, e.g. arn("lambda", region, "function:Name")."""
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT_ID}:{resource}"


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

    def physical_name(self, logical_id: str, where: str) -> str:
        """The deployed name of a table or function: its *Name property, else its logical id."""
        resource = self._resources.get(logical_id) or {}
        name_property = _NAMED_TYPES[resource.get("Type", "")][0]
        name = (resource.get("Properties") or {}).get(name_property)
        return logical_id if name is None else self.resolve_string(name, where)

    def arn_of(self, logical_id: str, where: str) -> str:
        """The ARN of a table or function, built from its physical name."""
        resource = self._resources.get(logical_id) or {}
        _, service, prefix = _NAMED_TYPES[resource.get("Type", "")]
        return arn(service, self._region, prefix + self.physical_name(logical_id, where))

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
            "AWS::StackId": arn(
                "cloudformation",
                self._region,
                f"stack/{self._stack_name}/00000000-0000-0000-0000-000000000000",
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
        if kind in _NAMED_TYPES:
            return self.physical_name(target, where)
        if kind == API:
            return self._api_ids.get(target, target)
        if kind == STAGE:
            return str((resource.get("Properties") or {}).get("StageName"))
        raise TemplateError(f"{where}: Ref to {kind} {target} is not supported by the sandbox")

    def _get_att(self, target: str, attribute: str, where: str) -> Any:
        resource = self._resources.get(target)
        if resource is None:
            raise TemplateError(f"{where}: Fn::GetAtt of unknown {target!r}")
        kind = resource.get("Type")
        if kind in _NAMED_TYPES and attribute == "Arn":
            return self.arn_of(target, where)
        if kind in TABLE_TYPES and attribute == "StreamArn":
            return f"{self.arn_of(target, where)}/stream/1970-01-01T00:00:00.000"
        if kind == API and attribute == "ApiEndpoint":
            return (
                f"wss://{self._api_ids.get(target, target)}.execute-api.{self._region}.{URL_SUFFIX}"
            )
        if kind == API and attribute == "ApiId":
            return self._api_ids.get(target, target)
        if kind == NESTED_STACK and attribute.startswith("Outputs.") and len(attribute) > 8:
            return self._nested_output(target, attribute[len("Outputs.") :], where)
        raise TemplateError(
            f"{where}: Fn::GetAtt {target}.{attribute} ({kind}) is not supported by the sandbox"
        )

    def _nested_output(self, stack: str, output: str, where: str) -> str:
        """A placeholder for a nested stack's output: the sandbox does not run nested stacks
        (what CDK puts there, such as CloudFront hosting, is not emulated)."""
        value = f"{output.lower()}.{stack.lower()}.{NESTED_OUTPUT_DOMAIN}"
        log.warning(
            "sandbox: warning: %s: nested stack %s is not run; its output %s is %s",
            where,
            stack,
            output,
            value,
        )
        return value

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
            text = text.replace(f"https://{domain}", self._endpoint.https_base)
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
