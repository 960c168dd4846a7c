"""Powertools for AWS Lambda (Python): AWS's public layer for the chat function, and its settings.

The function's code ships as-is (stdlib + the runtime's boto3); Powertools comes from the
layer AWS publishes in every commercial region, so the asset stays small. The tests and the
sandbox import the same Powertools release from requirements-run.txt:
tests/infra/test_monitoring.py checks that the pin there and the layer version here agree.

Upgrading: pick a release on PyPI, find its layer version (`aws lambda
get-layer-version-by-arn --arn <ARN>`: the layer's Description ends with the Powertools
version), add the pair to LAYER_VERSIONS, and change POWERTOOLS_VERSION and the pin in
requirements-run.txt together.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import function_settings

# The release the function runs: the layer in AWS, requirements-run.txt locally.
POWERTOOLS_VERSION = "3.31.1"

# The account that publishes the public layers in the commercial partition (`aws`).
# Docs: https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/
LAYER_ACCOUNT = "017000801446"

# PyPI release -> version of the public layer that carries it. AWS publishes one layer
# version per release, numbered alike for every runtime and architecture (3.0.0 = 1).
# Evidence: Python 3.9 support ended with 3.23.0 (3.24.0 dropped it) and the Python 3.9
# layers stop at version 27 (powertools-lambda-python issues #8434, #8437); counting one
# version per PyPI release from there gives 3.31.1 = 36, which is also the pair published
# projects pin together.
LAYER_VERSIONS: dict[str, int] = {
    "3.23.0": 27,
    "3.31.1": 36,
}

# Runtimes AWS builds the V3 layer for (AWSLambdaPowertoolsPythonV3-<runtime>-<arch>).
LAYER_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
LAYER_ARCHITECTURES = ("x86_64", "arm64")
# Partitions other than `aws` (China, GovCloud) get the layer from other accounts and at
# other version numbers; the stack does not guess them.
OTHER_PARTITION_REGION_PREFIXES = ("cn-", "us-gov-", "us-iso", "eu-isoe-")

# What Powertools reads from the environment (service name, metrics namespace, tracing).
# Service and namespace are written in lambda_src/chat/settings.json, which
# lambda_src/chat/telemetry.py reads for its defaults too.
SERVICE = function_settings.METRICS_SERVICE
METRICS_NAMESPACE = function_settings.METRICS_NAMESPACE


def layer_name(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> str:
    """`AWSLambdaPowertoolsPythonV3-python314-arm64` for Python 3.14 on arm64."""
    if runtime.name not in LAYER_RUNTIMES:
        raise ValueError(
            f"Powertools publishes no V3 layer for {runtime.name}; "
            f"layers exist for {', '.join(LAYER_RUNTIMES)}"
        )
    if architecture.name not in LAYER_ARCHITECTURES:
        raise ValueError(f"Powertools publishes no layer for the {architecture.name} architecture")
    return f"AWSLambdaPowertoolsPythonV3-{runtime.name.replace('.', '')}-{architecture.name}"


def layer_arn(
    scope: Construct,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    version: str = POWERTOOLS_VERSION,
) -> str:
    """The public layer's ARN in the stack's partition and region (tokens when unpinned)."""
    if version not in LAYER_VERSIONS:
        raise ValueError(
            f"no known layer version for Powertools {version}: add it to LAYER_VERSIONS"
        )
    stack = Stack.of(scope)
    region = stack.region
    if not Token.is_unresolved(region) and region.startswith(OTHER_PARTITION_REGION_PREFIXES):
        raise ValueError(
            f"region {region}: Powertools' public layer there comes from another account at "
            "other version numbers; this stack only knows the commercial (aws) partition"
        )
    return (
        f"arn:{stack.partition}:lambda:{region}:{LAYER_ACCOUNT}:layer:"
        f"{layer_name(runtime, architecture)}:{LAYER_VERSIONS[version]}"
    )


def powertools_layer(
    scope: Construct,
    construct_id: str,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
) -> lambda_.ILayerVersion:
    """AWS's public Powertools layer, referenced (nothing is uploaded)."""
    return lambda_.LayerVersion.from_layer_version_arn(
        scope, construct_id, layer_arn(scope, runtime, architecture)
    )


def telemetry_environment(*, stage_name: str, tracing: bool) -> dict[str, str]:
    """The function's Powertools settings, as environment variables.

    Kept apart from ChatConfig.function_environment() (the chat's own settings, which
    lambda_src/chat/settings.py reads): these are read by Powertools and chat/telemetry.py.
    """
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        # Never log whole events (they carry message bodies and, on $connect, tokens).
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_TRACE_DISABLED": str(not tracing).lower(),
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        # The `stage` dimension of the chat's metrics (the WebSocket stage).
        "STAGE_NAME": stage_name,
    }
