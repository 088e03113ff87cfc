"""Every test process sees dummy AWS credentials; a ``simulator`` serves a module's ``store`` (helpers to
share are in tests/support.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from emr_serverless_simulator import Simulator, Store
from tests.support import aws_env


@pytest.fixture(autouse=True)
def _dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests see the same dummy credentials as subprocesses."""
    for key, value in aws_env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)


@pytest.fixture
def store() -> Store:
    """An empty simulated account on the real clock; a module overrides it to start from a world of its own."""
    return Store(clock=time.time)


@pytest.fixture
def simulator(store: Store) -> Iterator[Simulator]:
    with Simulator(store, host="127.0.0.1", port=0) as sim:
        yield sim
