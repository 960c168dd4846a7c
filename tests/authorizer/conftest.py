"""The authorizer is its own Lambda asset (authorizer_src/): import it as Lambda would."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sign_in import AUDIENCE, NAME_CLAIM, JwksServer, jwks_server

AUTHORIZER_SRC = Path(__file__).resolve().parents[2] / "authorizer_src"
if str(AUTHORIZER_SRC) not in sys.path:
    sys.path.insert(0, str(AUTHORIZER_SRC))

import authorizer  # noqa: E402


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    with jwks_server() as server:
        yield server


@pytest.fixture
def issuer(jwks: JwksServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The authorizer configured as the stack would, trusting the local issuer; fresh caches."""
    for name, value in {
        "SIGN_IN_ISSUER": jwks.issuer,
        "SIGN_IN_AUDIENCE": AUDIENCE,
        "SIGN_IN_JWKS_URL": jwks.url,
        "SIGN_IN_NAME_CLAIM": NAME_CLAIM,
        "SIGN_IN_TOKEN_SOURCE": "query",
        "LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    authorizer.jwks_client.cache_clear()
    authorizer._configure_logging.cache_clear()  # log to this test's captured stdout
    yield jwks.issuer
    authorizer.jwks_client.cache_clear()
    authorizer._configure_logging.cache_clear()
