"""Run `python -m sandbox` in a child process and wait until it serves (for tests and bench)."""

from __future__ import annotations

import http.client
import itertools
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"^Sandbox ready: (http://\S+)/$", re.MULTILINE)

T = TypeVar("T")
S = TypeVar("S", bound="SandboxProcess")


def wait_for(probe: Callable[[], T | None], *, timeout: float = 5.0, what: str = "it") -> T:
    """Poll `probe` until it returns something other than None; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class SandboxProcess:
    """A running sandbox process and the URLs it printed."""

    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    stage: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/{self.stage}"

    @property
    def api_url(self) -> str:
        """`https://127.0.0.1:<tls port>`: the HTTPS listener of @connections and Invoke."""
        invoke = self.banner_value("Lambda Invoke")
        return invoke.split("/2015-03-31/", 1)[0]

    @property
    def tls_port(self) -> int:
        return int(self.api_url.rsplit(":", 1)[1])

    @property
    def callback_url(self) -> str:
        """The stage's @connections endpoint, as the functions' CALLBACK_URL (HTTPS)."""
        return f"{self.api_url}/{self.stage}"

    @property
    def ca_bundle(self) -> str:
        """The PEM file of the sandbox's certificate authority (pass it as `verify=`)."""
        return self.banner_value("CA bundle")

    @property
    def server_api_url(self) -> str:
        """`https://127.0.0.1:<port>/`: the stack's server API (IAM-signed), if it has one."""
        return self.banner_value("Server API")

    def https_connection(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        """A standard-library client on the HTTPS listener, trusting the sandbox's CA."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        return http.client.HTTPSConnection(
            "127.0.0.1", self.tls_port, timeout=timeout, context=context
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> bool:
        """Wait until `text` is in the log: True once it is, False after `timeout` seconds.

        What the sandbox logs about an invocation can land after a client has seen that
        invocation's effects (a killed environment is noticed when its pipe ends).
        """
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def banner_value(self, label: str) -> str:
        match = re.search(rf"^{re.escape(label)}:\s+(\S+)", self.log(), re.MULTILINE)
        assert match, f"{label} not in the banner"
        return match.group(1)

    def connect(self, query: str = "", **kwargs: Any) -> ClientConnection:
        """A websockets client connected to the stage (use it as a context manager).

        Each connection comes from its own loopback address (127.0.x.y), as every connection
        to API Gateway has its own source address; pass `source_address=(ip, 0)` to open
        several from one address.
        """
        url = self.ws_url + (f"?{query}" if query else "")
        kwargs.setdefault("proxy", None)
        kwargs.setdefault("open_timeout", 10)
        if "127.0.0.1" in url:
            kwargs.setdefault("source_address", (next_loopback_address(), 0))
        client: ClientConnection = connect(url, **kwargs)
        return client

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; raises AssertionError if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"sandbox did not stop within {timeout} s") from None
        return self.process.returncode


_LOOPBACK = itertools.count(1)


def next_loopback_address() -> str:
    """A fresh address of 127.0.0.0/8 (Linux answers on all of it) for one client: 127.0.x.y
    with x, y in 1..250, so 62,500 of them before they repeat."""
    n = next(_LOOPBACK) % 62_500
    return f"127.0.{n // 250 + 1}.{n % 250 + 1}"


@contextmanager
def start_sandbox(
    template: Path,
    log_dir: Path,
    *args: str,
    stage: str,
    kind: type[S],
) -> Iterator[S]:
    """Start the sandbox on a free port with `args`; stop it (SIGTERM) afterwards."""
    log_path = log_dir / f"sandbox-{uuid.uuid4().hex[:8]}.log"
    command = [
        sys.executable,
        "-m",
        "sandbox",
        "--template",
        str(template.resolve()),
        "--port",
        "0",
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:

        def ready() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"sandbox exited early:\n{log_path.read_text()}")
            match = READY.search(log_path.read_text(encoding="utf-8", errors="replace"))
            return match.group(1) if match else None

        base_url = wait_for(ready, timeout=60, what="the sandbox's ready line")
        yield kind(process, log_path, base_url, stage)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
