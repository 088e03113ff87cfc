"""Shared helpers: run the exporter as a real process with dummy AWS credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

from tests.prometheus_server import free_port

__all__ = ["aws_env", "free_port", "run_exporter"]


def aws_env(**extra: str) -> dict[str, str]:
    """An environment with dummy credentials and no way to reach real AWS metadata endpoints."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.update(extra)
    return env


def run_exporter(
    args: Sequence[str], *, timeout: float = 60, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True, text=True, timeout=timeout, env=aws_env(), cwd=cwd, check=False,
    )


@pytest.fixture(autouse=True)
def _dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests see the same dummy credentials as subprocesses."""
    for key, value in aws_env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
