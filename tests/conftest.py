"""Every test process sees dummy AWS credentials (helpers to share are in tests/support.py)."""

from __future__ import annotations

import pytest

from tests.support import aws_env


@pytest.fixture(autouse=True)
def _dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests see the same dummy credentials as subprocesses."""
    for key, value in aws_env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
