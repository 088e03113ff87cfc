"""The command line as a user meets it: exit status 2 with one line naming the problem, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from exporter import __version__
from tests.helpers.support import free_port, run_exporter


def assert_usage_error(result_stderr: str, returncode: int, *expected: str) -> None:
    assert returncode == 2, result_stderr
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("emr-serverless-exporter: ")
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result_stderr


def test_version() -> None:
    result = run_exporter(["--version"])
    assert result.returncode == 0
    assert result.stdout.startswith(f"emr-serverless-exporter {__version__} (python 3.")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--log.level", "verbose"], ["--log.level", "invalid choice: 'verbose'"]),
        (["--log.format", "xml"], ["--log.format", "invalid choice"]),
        (["--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
        (["--web.telemetry-path", "metrics"], ["--web.telemetry-path", "must start with /"]),
        (["--web.config.file", "web.yml"], ["web.yml: file not found"]),
        (["--web.listen-address", "9865"], ["--web.listen-address", "expected HOST:PORT"]),
        (["--config.file", "/nonexistent/c.yaml"], ["/nonexistent/c.yaml: file not found"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], expected: list[str]) -> None:
    result = run_exporter([*args, "--once"] if "--web" not in args[0] else args)
    assert_usage_error(result.stderr, result.returncode, *expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("targets:\n  - region: 5\n", "targets[0].region: expected a string, got an integer"),
        ("aws:\n  max_concurrency: -3\n", "aws.max_concurrency: must be from 1 to 256"),
        ("discovery:\n  bogus: 1\n", "discovery.bogus: unknown key"),
        ("targets: [\n", "invalid YAML at line 2"),
        ("metrics:\n  denylist: [emr_serverless_job_run_state, emr_serverless_jobrun_attempt]\n",
         "metrics.denylist[1]: 'emr_serverless_jobrun_attempt' is no metric family of the exporter"),
        ("metrics:\n  allowlist: [x]\n  denylist: [y]\n", "metrics.denylist: cannot be set together with"),
    ],
)
def test_bad_configuration_exits_2_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_exporter(["--config.file", str(config), "--once"])
    assert_usage_error(result.stderr, result.returncode, str(config), expected)


def test_unreadable_configuration_exits_2(tmp_path: Path) -> None:
    result = run_exporter(["--config.file", str(tmp_path), "--once"])  # a directory
    assert_usage_error(result.stderr, result.returncode, str(tmp_path), "cannot read")


def test_address_in_use_exits_2() -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_exporter(["--web.listen-address", f"127.0.0.1:{port}"], timeout=30)
    assert_usage_error(result.stderr, result.returncode, "--web.listen-address", f"127.0.0.1:{port}", "in use")


def test_missing_region_names_the_target(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.helpers.support import aws_env

    env = aws_env()
    del env["AWS_DEFAULT_REGION"]
    result = subprocess.run([sys.executable, "-m", "exporter", "--once"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60, check=False)
    assert_usage_error(result.stderr, result.returncode, "targets[0].region: not set")
    assert os.environ.get("AWS_DEFAULT_REGION") is not None  # the test process itself is untouched
