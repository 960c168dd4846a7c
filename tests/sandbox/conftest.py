"""Fixtures: one sandbox running the echo fixture stack, shared by the conformance modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sandbox import ECHO_TEMPLATE, Sandbox, running_sandbox


@pytest.fixture(scope="session")
def echo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The echo stack with AWS's default limits (Lambda timeout 2 s in the template)."""
    with running_sandbox(ECHO_TEMPLATE, tmp_path_factory.mktemp("echo")) as sandbox:
        yield sandbox
