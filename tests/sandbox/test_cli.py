"""The sandbox as a program: CLI, banner, web client files, external DynamoDB, clean shutdown."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.sandbox import (
    ECHO_TEMPLATE,
    ROOT,
    Sandbox,
    connection_id_of,
    running_sandbox,
    wait_for,
)

pytestmark = pytest.mark.sandbox


def get(sandbox: Sandbox, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_help_documents_every_option() -> None:
    # GIVEN the CLI WHEN --help is asked for
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # THEN every option is described
    for option in (
        "--template",
        "--stack",
        "--host",
        "--port",
        "--web-dir",
        "--idle-timeout",
        "--max-duration",
        "--integration-timeout",
        "--dynamodb-endpoint",
        "--workers",
        "--warm-workers",
        "--region",
    ):
        assert option in result.stdout


def test_a_staged_synth_after_a_plain_one_runs_the_stage(tmp_path: Path) -> None:
    # GIVEN cdk.out after `make synth` then `make synth CDK_ARGS="-c stage=dev"`: the plain
    # synth's ChatStack is still there, and the manifest names only Chat-dev
    for name in ("ChatStack", "Chat-dev"):
        (tmp_path / f"{name}.template.json").write_text(ECHO_TEMPLATE.read_text())
    stack = {
        "type": "aws:cloudformation:stack",
        "properties": {"templateFile": "Chat-dev.template.json"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {"Chat-dev": stack}}))

    def which(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--cdk-out",
                str(tmp_path),
                "--print-template",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # WHEN `make run` asks the sandbox which template it runs THEN it is the stage's
    result = which()
    assert (result.returncode, result.stdout.strip()) == (
        0,
        str(tmp_path / "Chat-dev.template.json"),
    ), result.stderr
    # AND STACK=ChatStack (--stack) still picks the older one
    assert which("--stack", "ChatStack").stdout.strip() == str(tmp_path / "ChatStack.template.json")
    # AND with no manifest and two templates the error names both and says what to pass
    (tmp_path / "manifest.json").unlink()
    result = which()
    assert result.returncode == 2
    assert "several stacks" in result.stderr and "Chat-dev, ChatStack" in result.stderr


def test_unrunnable_template_exits_2_with_a_clear_error(tmp_path: Path) -> None:
    # GIVEN a template without a WebSocket API
    template = tmp_path / "Empty.template.json"
    template.write_text(json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}))
    # WHEN the sandbox is started on it
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--template", str(template), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it exits with status 2 and says why
    assert result.returncode == 2
    assert "no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET" in result.stderr


def test_port_in_use_exits_2_with_a_clear_error() -> None:
    # GIVEN a port that is already taken
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        # WHEN the sandbox is asked to listen there
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--template",
                str(ECHO_TEMPLATE),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    # THEN it exits with status 2 and says so
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_banner_prints_page_websocket_and_callback_urls(echo_sandbox: Sandbox) -> None:
    # GIVEN a running sandbox THEN its banner gives the page and the stage on the plain port,
    # the callback URL and Lambda Invoke on the HTTPS port, the CA bundle and a ready line
    port, tls_port = echo_sandbox.port, echo_sandbox.tls_port
    assert tls_port != port
    assert echo_sandbox.banner_value("Web page") == f"http://127.0.0.1:{port}/"
    assert echo_sandbox.banner_value("WebSocket URL") == f"ws://127.0.0.1:{port}/dev"
    assert echo_sandbox.banner_value("Callback URL") == f"https://127.0.0.1:{tls_port}/dev"
    assert (
        echo_sandbox.banner_value("Lambda Invoke")
        == f"https://127.0.0.1:{tls_port}/2015-03-31/functions/<name>/invocations"
    )
    assert echo_sandbox.banner_value("CA bundle").endswith("/ca.pem")
    assert f"Sandbox ready: http://127.0.0.1:{port}/" in echo_sandbox.log()


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        ("/", "text/html", b"sandbox fixture page"),
        ("/index.html", "text/html", b"sandbox fixture page"),
        ("/js/app.js", "text/javascript", b"export const fixture"),
        ("/style.css", "text/css", b"margin"),
    ],
)
def test_web_client_files_are_served_with_correct_types(
    echo_sandbox: Sandbox, path: str, content_type: str, needle: bytes
) -> None:
    # GIVEN --web-dir WHEN a file is requested THEN it is served with its content type
    status, headers, body = get(echo_sandbox, path)
    assert status == 200
    assert headers["Content-Type"].startswith(content_type)
    assert needle in body


@pytest.mark.parametrize(
    "path",
    [
        "/../echo.template.json",
        "/%2e%2e/echo.template.json",
        "/js/..%2f..%2fecho.template.json",
        "/js/%2e%2e/%2e%2e/echo.template.json",
        "/..%5cecho.template.json",
        "/missing.js",
    ],
)
def test_paths_outside_the_web_dir_are_not_served(echo_sandbox: Sandbox, path: str) -> None:
    # GIVEN a path that escapes --web-dir (or does not exist) THEN it is 404
    status, _, body = get(echo_sandbox, path)
    assert status == 404
    assert b"Resources" not in body


def test_ws_endpoint_discovery_returns_the_stage_url(echo_sandbox: Sandbox) -> None:
    # GIVEN the page's endpoint discovery WHEN it is called THEN it names the local stage
    status, headers, body = get(echo_sandbox, "/get-ws-endpoint")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"endpoint": f"ws://127.0.0.1:{echo_sandbox.port}/dev"}


def test_external_dynamodb_endpoint_gets_the_tables(tmp_path: Path) -> None:
    # GIVEN a DynamoDB-compatible endpoint that the sandbox does not own
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        dynamodb: Any = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # WHEN the sandbox runs with --dynamodb-endpoint
        with running_sandbox(ECHO_TEMPLATE, tmp_path, "--dynamodb-endpoint", endpoint) as sandbox:
            # THEN the tables are created there, with TTL enabled
            assert "EventsTable" in dynamodb.list_tables()["TableNames"]
            ttl = dynamodb.describe_time_to_live(TableName="EventsTable")
            assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
            # AND the Lambdas use it
            with sandbox.connect() as ws:
                cid = connection_id_of(ws)
            items = dynamodb.query(
                TableName="EventsTable",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": cid}},
            )["Items"]
            assert items
    finally:
        server.stop()


def test_sigterm_closes_sockets_with_1001_and_stops_everything(tmp_path: Path) -> None:
    # GIVEN a sandbox with an open connection and warm workers
    with running_sandbox(ECHO_TEMPLATE, tmp_path) as sandbox, sandbox.connect() as ws:
        cid = connection_id_of(ws)
        ws.send('{"action":"context"}')
        worker_pid = int(json.loads(ws.recv(timeout=5))["pid"])
        moto_port = int(sandbox.banner_value("DynamoDB").rsplit(":", 1)[1])
        # WHEN it gets SIGTERM
        started = time.monotonic()
        assert sandbox.stop(timeout=10) == 0
        # THEN it stopped within a few seconds, cleanly
        assert time.monotonic() - started < 6
        # AND the client got a close frame with 1001
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=2)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    # AND $disconnect ran for it before the workers stopped
    assert f"$disconnect {cid} 200" in sandbox.log()
    assert "sandbox: stopped" in sandbox.log()

    # AND no worker process or DynamoDB server is left
    def worker_gone() -> bool | None:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            return True
        return None

    wait_for(worker_gone, timeout=3, what="the worker to exit")
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", moto_port, timeout=1).connect()


def test_handler_that_cannot_be_imported_fails_connect_with_502(tmp_path: Path) -> None:
    # GIVEN a function whose handler module does not exist
    document = json.loads(ECHO_TEMPLATE.read_text())
    function = document["Resources"]["EchoFunction"]
    function["Properties"]["Handler"] = "missing_module.lambda_handler"
    for resource in document["Resources"].values():
        if "aws:asset:path" in resource.get("Metadata", {}):
            resource["Metadata"]["aws:asset:path"] = str(ECHO_TEMPLATE.parent / "echo")
    template = tmp_path / "Broken.template.json"
    template.write_text(json.dumps(document))
    # WHEN a client connects
    with running_sandbox(template, tmp_path) as sandbox:
        with pytest.raises(InvalidStatus) as rejected:
            sandbox.connect()
        # THEN the init error is a Lambda error (502), reported like the real runtime's
        assert rejected.value.response.status_code == 502
        assert "Runtime.ImportModuleError" in sandbox.log()
        assert "Unable to import module 'missing_module'" in sandbox.log()
