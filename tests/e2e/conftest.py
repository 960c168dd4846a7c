"""The e2e suites' shared fixture: chat clients on the session's sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.chat_client import ChatClient
from tests.support.rooms import chat_clients
from tests.support.sandbox import Sandbox


@pytest.fixture
def connect(chat_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    """Chat clients on the session's sandbox (see `chat_clients`)."""
    yield from chat_clients(chat_sandbox)
