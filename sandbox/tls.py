"""The sandbox's own certificate authority, for the HTTPS listener the functions call.

On AWS every call a function makes to the `@connections` management API and to Lambda's
Invoke API is HTTPS, so the sandbox serves both over TLS too (docs/sandbox.md, "HTTPS").
At start it makes a throwaway certificate authority with `trustme` and a server
certificate for `127.0.0.1`, `localhost` and `::1`, and writes the authority's PEM to
`ca.pem` in a directory of its own (a fresh temporary one, removed at exit, unless
`--tls-dir` names one). The functions trust it through `AWS_CA_BUNDLE` (botocore honours
it); tests and tools pass the same file as `verify=`.

Nothing else trusts this authority: its private key never leaves the sandbox's memory.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
SERVER_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class SandboxTls:
    """The authority's PEM file and the server's TLS context."""

    ca_path: Path
    server_context: ssl.SSLContext


def make_tls(directory: Path) -> SandboxTls:
    """A new authority and server certificate; the authority's PEM written to `directory`."""
    ca = trustme.CA(organization_name="chat sandbox")
    server = ca.issue_cert(*SERVER_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / CA_FILE
    ca.cert_pem.write_to_path(str(ca_path))
    return SandboxTls(ca_path=ca_path.resolve(), server_context=context)


def temporary_directory() -> tempfile.TemporaryDirectory[str]:
    """A directory for the CA file when `--tls-dir` is not given (removed at exit)."""
    return tempfile.TemporaryDirectory(prefix="sandbox-tls-")
