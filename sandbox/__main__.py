"""`python -m sandbox`: run the synthesized stack on this machine."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.dynamodb import EmbeddedDynamoDB, create_tables
from sandbox.faults import (
    POST_BREAKS,
    POST_ERROR_STATUSES,
    ConnectionSelector,
    FaultConfig,
    FaultConfigError,
    Faults,
)
from sandbox.gateway import Gateway, GatewayConfig
from sandbox.http_api import OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY, HttpApi
from sandbox.intrinsics import LocalEndpoint, Resolver
from sandbox.lambdas import (
    FUNCTION_ACCESS_KEY_ID,
    FunctionConfig,
    FunctionPool,
    LambdaService,
    runtime_environment,
)
from sandbox.stage import INTEGRATION_TIMEOUT_S
from sandbox.template import StackSpec, TemplateError, find_template, load_template
from sandbox.tls import SandboxTls, make_tls, temporary_directory

log = logging.getLogger("sandbox")


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m sandbox`."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Run a synthesized CDK stack locally: its API Gateway WebSocket API, its Lambda "
            "functions (in warm worker processes) and its DynamoDB tables (embedded moto). "
            "Nothing calls real AWS."
        ),
    )
    parser.add_argument(
        "--template",
        metavar="PATH",
        type=Path,
        help="CloudFormation template to run (default: the one *.template.json in --cdk-out)",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="run <DIR>/<NAME>.template.json when --cdk-out holds several stacks",
    )
    parser.add_argument(
        "--cdk-out",
        metavar="DIR",
        type=Path,
        default=Path("cdk.out"),
        help="CDK output directory (default: cdk.out)",
    )
    parser.add_argument(
        "--print-template",
        action="store_true",
        help="print the path of the template it would run (the stack the last synth in "
        "--cdk-out made, or --stack, or --template) and exit",
    )
    parser.add_argument(
        "--host",
        metavar="ADDRESS",
        default=os.environ.get("HOST", "127.0.0.1"),
        help="address to listen on (default: $HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        type=int,
        default=int(os.environ.get("PORT", "8080")),
        help="port to listen on; 0 picks a free one (default: $PORT or 8080)",
    )
    parser.add_argument(
        "--tls-port",
        metavar="PORT",
        type=int,
        default=0,
        help="port of the HTTPS listener (on 127.0.0.1) serving @connections and Lambda's "
        "Invoke API; 0 (the default) picks a free one",
    )
    parser.add_argument(
        "--server-api-port",
        metavar="PORT",
        type=int,
        default=0,
        help="port of the HTTPS listener (on 127.0.0.1) serving the stack's server API "
        "(its HTTP API, IAM-signed); 0 (the default) picks a free one",
    )
    parser.add_argument(
        "--tls-dir",
        metavar="DIR",
        type=Path,
        help="write the sandbox's certificate authority to DIR/ca.pem (default: a temporary "
        "directory, removed at exit)",
    )
    parser.add_argument(
        "--web-dir",
        metavar="DIR",
        type=Path,
        default=Path("web"),
        help="directory served at / (index.html); default: web",
    )
    parser.add_argument(
        "--idle-timeout",
        metavar="SECONDS",
        type=float,
        default=600.0,
        help="seconds without traffic before a socket is closed with 1001 (AWS: 600)",
    )
    parser.add_argument(
        "--max-duration",
        metavar="SECONDS",
        type=float,
        default=7200.0,
        help="seconds after which any socket is closed with 1001 (AWS: 7200)",
    )
    parser.add_argument(
        "--integration-timeout",
        metavar="SECONDS",
        type=float,
        default=INTEGRATION_TIMEOUT_S,
        help="seconds API Gateway waits for a Lambda before giving up (AWS: 29, at most)",
    )
    parser.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="use this DynamoDB-compatible endpoint instead of the embedded one "
        "(missing tables are created)",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=4,
        help="maximum concurrent execution environments per function (default: 4)",
    )
    parser.add_argument(
        "--warm-workers",
        metavar="N",
        type=int,
        default=1,
        help="execution environments started per function before ready (default: 1)",
    )
    parser.add_argument(
        "--region",
        metavar="REGION",
        default="us-east-1",
        help="AWS region to emulate (default: us-east-1)",
    )
    parser.add_argument(
        "--events-file",
        metavar="PATH",
        type=Path,
        default=None,
        help="where the events the chat publishes (eventBusName) are written, one JSON "
        "object a line (default: events.jsonl in a temporary directory)",
    )
    _add_fault_arguments(parser)
    return parser


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group(
        "fault switches",
        "Inject failures AWS can produce, to test how the stack copes (all off by default; "
        "every injected fault is logged with a 'fault:' prefix). See docs/sandbox.md.",
    )
    faults.add_argument(
        "--fault-post-latency-ms",
        metavar="MS",
        type=float,
        default=0.0,
        help="delay every @connections POST to a selected connection by MS milliseconds",
    )
    faults.add_argument(
        "--fault-post-error-rate",
        metavar="P",
        type=float,
        default=0.0,
        help="answer this fraction (0-1) of @connections POSTs to selected connections with "
        "an error instead of delivering them",
    )
    faults.add_argument(
        "--fault-post-error-status",
        metavar="STATUS",
        type=int,
        choices=POST_ERROR_STATUSES,
        default=429,
        help="the error: 429 (LimitExceededException, the default) or 500 "
        "(InternalServerErrorException)",
    )
    faults.add_argument(
        "--fault-post-connections",
        metavar="SELECTOR",
        default="all",
        help="which connections the POST faults hit: all (default), a fraction such as 0.25 "
        "(drawn per connection), or query:NAME=VALUE (connections whose $connect URL had "
        "that query parameter, e.g. query:fault=slow)",
    )
    faults.add_argument(
        "--fault-post-break",
        metavar="MODE",
        choices=POST_BREAKS,
        help="deliver every @connections POST to a selected connection, then break its HTTPS "
        "answer: silent (never answer; hold the connection until the client gives up), "
        "cut-body (200 with a Content-Length, half the body, then the connection dropped), "
        "late (answer after --fault-post-late-ms) or reset-after-write (a TCP reset, no answer)",
    )
    faults.add_argument(
        "--fault-post-late-ms",
        metavar="MS",
        type=float,
        default=6000.0,
        help="with --fault-post-break late: how long after delivering the answer comes "
        "(default 6000, past the function's 5 s read timeout)",
    )
    faults.add_argument(
        "--fault-idle-close-ms",
        metavar="MS",
        type=float,
        default=0.0,
        help="the HTTPS listener closes a kept-alive connection after MS milliseconds without "
        "a request (idle-close; every connection, not only selected ones)",
    )
    faults.add_argument(
        "--fault-drop-disconnect-rate",
        metavar="P",
        type=float,
        default=0.0,
        help="never deliver this fraction (0-1) of $disconnect events",
    )
    faults.add_argument(
        "--fault-dynamodb-throttle-rate",
        metavar="P",
        type=float,
        default=0.0,
        help="answer this fraction (0-1) of the functions' requests to the embedded DynamoDB "
        "with HTTP 400 ProvisionedThroughputExceededException (ThrottlingException for "
        "table operations)",
    )
    faults.add_argument(
        "--fault-crash-after-posts",
        metavar="N",
        type=int,
        default=0,
        help="kill (SIGKILL) the execution environment of an invocation when it makes its "
        "Nth @connections POST; that post and any later one are not delivered",
    )
    faults.add_argument(
        "--fault-crash-route",
        metavar="ROUTE",
        help="only crash invocations of this route key (default: any route)",
    )
    faults.add_argument(
        "--fault-crash-count",
        metavar="K",
        type=int,
        default=1,
        help="crash at most K invocations (default 1; 0: every one that reaches N posts)",
    )
    faults.add_argument(
        "--fault-spare-last-attempt",
        action="store_true",
        help="never fail an SDK's last announced attempt (amz-sdk-request attempt=max>1): "
        "errors then test that clients retry, without making their calls fail",
    )
    faults.add_argument(
        "--fault-sdk-backoff-scale",
        metavar="F",
        type=float,
        default=1.0,
        help="multiply the wait before each retry of the functions' AWS SDK (botocore's "
        "standard and adaptive retry modes) by F, 0 < F <= 1 (default 1): a test of retries "
        "that need not wait as long as AWS's clients do",
    )
    faults.add_argument(
        "--fault-seed",
        metavar="N",
        type=int,
        help="seed for the random fault choices (default: unseeded)",
    )


def fault_config(args: argparse.Namespace) -> FaultConfig:
    """The fault switches from the command line. Raises FaultConfigError."""
    config = FaultConfig(
        post_latency_ms=args.fault_post_latency_ms,
        post_error_rate=args.fault_post_error_rate,
        post_error_status=args.fault_post_error_status,
        post_connections=ConnectionSelector.parse(args.fault_post_connections),
        post_break=args.fault_post_break,
        post_late_ms=args.fault_post_late_ms,
        idle_close_ms=args.fault_idle_close_ms,
        drop_disconnect_rate=args.fault_drop_disconnect_rate,
        dynamodb_throttle_rate=args.fault_dynamodb_throttle_rate,
        crash_after_posts=args.fault_crash_after_posts,
        crash_route=args.fault_crash_route,
        crash_count=args.fault_crash_count,
        spare_last_attempt=args.fault_spare_last_attempt,
        sdk_backoff_scale=args.fault_sdk_backoff_scale,
        seed=args.fault_seed,
    )
    if config.dynamodb_throttle_rate > 0 and args.dynamodb_endpoint:
        raise FaultConfigError("--fault-dynamodb-throttle-rate needs the embedded DynamoDB")
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.print_template:
        try:
            print(args.template or find_template(args.cdk_out, args.stack))
        except TemplateError as exc:
            print(f"sandbox: error: {exc}", file=sys.stderr)
            return 2
        return 0
    _configure_logging()
    if args.workers < 1 or not 0 <= args.warm_workers <= args.workers:
        print(
            "sandbox: error: need 1 <= --workers and 0 <= --warm-workers <= --workers",
            file=sys.stderr,
        )
        return 2
    if min(args.idle_timeout, args.max_duration, args.integration_timeout) <= 0:
        print("sandbox: error: timeouts must be positive", file=sys.stderr)
        return 2
    try:
        args.faults = Faults(fault_config(args))
    except FaultConfigError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2
    try:
        template = args.template or find_template(args.cdk_out, args.stack)
        stack = load_template(template, region=args.region)
    except TemplateError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        listener = socket.create_server((args.host, args.port), family=family, backlog=256)
    except OSError as exc:
        print(f"sandbox: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        tls_listener = socket.create_server(("127.0.0.1", args.tls_port), backlog=256)
    except OSError as exc:
        listener.close()
        print(f"sandbox: error: cannot listen on 127.0.0.1:{args.tls_port}: {exc}", file=sys.stderr)
        return 2
    with temporary_directory() as scratch:
        try:
            tls = make_tls(args.tls_dir or Path(scratch))
        except OSError as exc:
            print(f"sandbox: error: cannot write the CA to {args.tls_dir}: {exc}", file=sys.stderr)
            return 2
        if args.events_file is None:
            args.events_file = Path(scratch) / "events.jsonl"
        try:
            return asyncio.run(_serve(args, stack, listener, tls_listener, tls))
        except TemplateError as exc:
            print(f"sandbox: error: {exc}", file=sys.stderr)
            return 2
        finally:
            listener.close()
            tls_listener.close()


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger("aiohttp.websocket").setLevel(logging.ERROR)


def _say(line: str) -> None:
    print(line, flush=True)


async def _serve(
    args: argparse.Namespace,
    stack: StackSpec,
    listener: socket.socket,
    tls_listener: socket.socket,
    tls: SandboxTls,
) -> int:
    stop = _stop_on_signals()
    port = listener.getsockname()[1]
    url_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    url_host = "[::1]" if url_host == "::" else url_host
    endpoint = LocalEndpoint(url_host, port, tls_port=tls_listener.getsockname()[1])
    _warn(stack)

    embedded: EmbeddedDynamoDB | None = None
    runner: web.AppRunner | None = None
    api_runner: web.AppRunner | None = None
    # The HTTP APIs' runners (the server API), added as each starts.
    http_runners: list[web.AppRunner] = []
    lambdas: LambdaService | None = None
    gateway: Gateway | None = None
    try:
        if args.dynamodb_endpoint:
            dynamodb_endpoint = args.dynamodb_endpoint
        else:
            embedded = EmbeddedDynamoDB(
                host="127.0.0.1", faults=args.faults, throttled_key=FUNCTION_ACCESS_KEY_ID
            )
            dynamodb_endpoint = await asyncio.to_thread(embedded.start)
        await asyncio.to_thread(
            create_tables, dynamodb_endpoint, args.region, stack.tables.values()
        )
        lambdas = _lambda_service(
            stack,
            args,
            endpoint=endpoint,
            ca_bundle=str(tls.ca_path),
            dynamodb_endpoint=dynamodb_endpoint,
            # Any other AWS call goes to moto, or (with an external DynamoDB) to a local 404:
            # never to real AWS.
            fallback_endpoint=(
                embedded.endpoint if embedded is not None else f"http://{url_host}:{port}/no-aws"
            ),
        )
        await lambdas.warm(args.warm_workers)

        web_dir = args.web_dir if args.web_dir.is_dir() else None
        if web_dir is None:
            _say(f"sandbox: warning: web directory {args.web_dir} not found; / serves nothing")
        gateway = Gateway(
            GatewayConfig(
                api=stack.api,
                web_dir=web_dir,
                region=args.region,
                idle_timeout_s=args.idle_timeout,
                max_duration_s=args.max_duration,
                integration_timeout_s=args.integration_timeout,
                functions=stack.functions,
                api_url=endpoint.https_base,
                events_file=args.events_file,
            ),
            lambdas,
            args.faults,
        )
        runner = await _start(gateway.app(), listener, None)
        idle_close_s = args.faults.config.idle_close_ms / 1000
        api_runner = await _start(
            gateway.api_app(),
            tls_listener,
            tls.server_context,
            **({"keepalive_timeout": idle_close_s} if idle_close_s > 0 else {}),
        )
        try:
            http_urls = await _start_http_apis(stack, args, lambdas, tls, http_runners)
        except OSError as exc:
            print(f"sandbox: error: cannot serve the server API: {exc}", file=sys.stderr)
            return 2

        _banner(
            stack,
            args,
            dynamodb=dynamodb_endpoint,
            embedded=embedded is not None,
            endpoint=endpoint,
            tls=tls,
            http_urls=http_urls,
        )
        await stop.wait()
        _say("sandbox: stopping")
    finally:
        if gateway is not None:
            await gateway.shutdown()
        if runner is not None:
            await runner.cleanup()
        if api_runner is not None:
            await api_runner.cleanup()
        for http_runner in http_runners:
            await http_runner.cleanup()
        if lambdas is not None:
            await lambdas.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    _say("sandbox: stopped")
    return 0


async def _start(
    app: web.Application, listener: socket.socket, ssl_context: ssl.SSLContext | None, **kw: Any
) -> web.AppRunner:
    """Serve `app` on `listener` (over TLS with `ssl_context`); the runner to clean up."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0, **kw)
    await runner.setup()
    await web.SockSite(runner, listener, ssl_context=ssl_context).start()
    return runner


async def _start_http_apis(
    stack: StackSpec,
    args: argparse.Namespace,
    lambdas: LambdaService,
    tls: SandboxTls,
    runners: list[web.AppRunner],
) -> list[tuple[str, str]]:
    """Serve each HTTP API of the template (the server API) on an HTTPS listener of its
    own; the first on --server-api-port. Returns (name, URL) of each. Raises OSError."""
    urls = []
    for index, spec in enumerate(stack.http_apis):
        wanted = args.server_api_port if index == 0 else 0
        listener = socket.create_server(("127.0.0.1", wanted), backlog=256)
        app = HttpApi(spec, lambdas, region=args.region).app()
        runners.append(await _start(app, listener, tls.server_context))
        urls.append((spec.name, f"https://127.0.0.1:{listener.getsockname()[1]}/"))
    return urls


def _stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT/SIGTERM; a second one exits at once."""
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(130)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    return stop


def _warn(stack: StackSpec) -> None:
    for warning in stack.warnings:
        _say(f"sandbox: warning: {warning}")
    running = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for function in stack.functions.values():
        if function.runtime != running:
            _say(
                f"sandbox: warning: {function.logical_id} declares {function.runtime}; "
                f"running it on {running}"
            )


def _lambda_service(
    stack: StackSpec,
    args: argparse.Namespace,
    *,
    endpoint: LocalEndpoint,
    ca_bundle: str,
    dynamodb_endpoint: str,
    fallback_endpoint: str,
) -> LambdaService:
    """A worker pool per function, with its environment resolved to local values."""
    resolver = Resolver.for_stack(stack, region=args.region, endpoint=endpoint)
    pools = {}
    for function in stack.functions.values():
        variables = resolver.resolve_environment(
            function.environment, f"function {function.logical_id}"
        )
        environment = runtime_environment(
            function,
            region=args.region,
            dynamodb_endpoint=dynamodb_endpoint,
            lambda_endpoint=endpoint.https_base,
            fallback_endpoint=fallback_endpoint,
            events_endpoint=endpoint.https_base,
            variables=variables,
            ca_bundle=ca_bundle,
        )
        pools[function.logical_id] = FunctionPool(
            FunctionConfig(
                function,
                environment,
                sdk_backoff_scale=args.faults.config.sdk_backoff_scale,
            ),
            max_workers=args.workers,
        )
    return LambdaService(pools, on_finished=args.faults.forget)


def _banner(
    stack: StackSpec,
    args: argparse.Namespace,
    *,
    dynamodb: str,
    embedded: bool,
    endpoint: LocalEndpoint,
    tls: SandboxTls,
    http_urls: list[tuple[str, str]],
) -> None:
    api = stack.api
    base = endpoint.authority
    https = endpoint.https_base
    _say(f"Stack:         {stack.stack_name} ({stack.template_path})")
    _say(
        f"API:           {api.name} (local id {api.api_id}), region {args.region}, "
        f"route selection {api.route_selection_expression}"
    )
    routes = ", ".join(
        key
        + (" (two-way)" if route.two_way else "")
        + (f" (authorizer {route.authorizer.name})" if route.authorizer is not None else "")
        for key, route in api.routes.items()
    )
    _say(f"Routes:        {routes}")
    for function in stack.functions.values():
        _say(
            f"Function:      {function.name}: {function.handler} in {function.code_dir} "
            f"({function.runtime}, {function.timeout_s:g} s, {function.memory_mb} MB)"
        )
    tables = ", ".join(table.name for table in stack.tables.values()) or "(none)"
    kind = "embedded moto" if embedded else "external"
    _say(f"DynamoDB:      {dynamodb} ({kind}); tables: {tables}")
    for line in args.faults.config.describe():
        _say(f"Fault:         {line}")
    _say(f"Lambda Invoke: {https}/2015-03-31/functions/<name>/invocations")
    _say(f"EventBridge:   {https}/ (PutEvents) -> {args.events_file}; http://{base}/events")
    _say(f"CA bundle:     {tls.ca_path}")
    for name, url in http_urls:
        _say(f"Server API:    {url} ({name}; IAM-signed, region {args.region})")
    if http_urls:
        _say(
            f"Operator keys: AWS_ACCESS_KEY_ID={OPERATOR_ACCESS_KEY_ID} "
            f"AWS_SECRET_ACCESS_KEY={OPERATOR_SECRET_ACCESS_KEY}"
        )
    _say(f"Web page:      http://{base}/")
    for stage in api.stages:
        _say(f"WebSocket URL: ws://{base}/{stage}")
        _say(f"Callback URL:  {https}/{stage}")
    _say(f"Sandbox ready: http://{base}/")


if __name__ == "__main__":
    status = main()
    # Everything is stopped and said: skip the interpreter's teardown of moto, boto3 and
    # aiohttp (most of a second on a loaded machine, at every stop).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
