"""Every test process sees dummy AWS credentials; a ``simulator`` serves a module's ``store`` (helpers to
share are in tests/helpers/). Each test is marked with its tier, the folder it lives in: ``unit`` (no
process, socket or sleep: the edit loop, ``make test-fast``), ``integration`` (the exporter's parts over
real HTTP against the simulator, moto or a hostile endpoint), ``e2e`` (the exporter as a process, with a
real Prometheus), ``deploy`` (the chart, the image, the rules, the docs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emr_serverless_simulator import Simulator, Store
from tests.helpers.support import aws_env

TIERS = ("unit", "integration", "e2e", "deploy")
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.resolve().relative_to(HERE).parts[0]
        if tier not in TIERS:  # a test outside the tiers would run under no marker: refuse it
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))


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
