"""No secret in any output (issue 8): planted secrets never appear in logs, metrics or the landing page.

The exporter runs as a real process at debug level, in both log formats, with secrets planted wherever
a user can put one: the environment's AWS secret key and session token, an external_id, an endpoint
URL's userinfo, and a query string sent to it. One target assumes a role through a real STS endpoint
(moto's server), whose answer carries fresh credentials; one collects through an endpoint URL with a
password; one fails to connect to such a URL. Every output is then searched for every secret.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

from emr_serverless_simulator import Simulator, Store
from exporter.common.logs import WIRE_LOGGERS, setup_logging
from exporter.common.redaction import forget_secrets
from tests.helpers import support
from tests.helpers.support import aws_env, free_port

ROLE_ACCOUNT = "210987654321"


@dataclass
class World:
    """The planted secrets and the endpoints that see them."""

    sts_url: str
    role_url: str
    direct_url: str
    secrets: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return aws_env(
            AWS_SECRET_ACCESS_KEY=self.secrets["AWS_SECRET_ACCESS_KEY"],
            AWS_SESSION_TOKEN=self.secrets["AWS_SESSION_TOKEN"],
            AWS_ENDPOINT_URL_STS=self.sts_url,
        )

    def config(self, tmp_path: Path, *, failing_target: bool) -> Path:
        userinfo = f"{self.secrets['endpoint user']}:{self.secrets['endpoint password']}@"
        targets: list[dict[str, Any]] = [
            {"region": "us-east-1", "endpoint_url": self.role_url, "name": "cross",
             "role_arn": f"arn:aws:iam::{ROLE_ACCOUNT}:role/exporter-{secrets.token_hex(4)}",
             "external_id": self.secrets["external_id"]},
            {"region": "us-east-1", "name": "direct",
             "endpoint_url": self.direct_url.replace("http://", f"http://{userinfo}")},
        ]
        if failing_target:
            targets.append({"region": "us-east-1", "name": "refused",
                            "endpoint_url": f"http://{userinfo}127.0.0.1:{free_port()}"})
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({
            "targets": targets,
            "aws": {"max_attempts": 1, "connect_timeout_seconds": 2, "read_timeout_seconds": 5},
        }))
        return path

    def issued_credentials(self) -> dict[str, str]:
        """What STS handed out for our external_id: secrets the exporter only learns at run time."""
        issued: dict[str, str] = {}
        for backend in sts_backends[ROLE_ACCOUNT].values():
            for role in backend.assumed_roles:
                if role.external_id == self.secrets["external_id"]:
                    issued[f"issued SecretAccessKey {len(issued)}"] = role.secret_access_key
                    issued[f"issued SessionToken {len(issued)}"] = role.session_token
        return issued


def planted() -> dict[str, str]:
    token = secrets.token_urlsafe
    return {
        # AWS's own alphabets: base64 with / and +, so URL-encoding changes them
        "AWS_SECRET_ACCESS_KEY": f"sk/{token(24)}+{token(6)}",
        "AWS_SESSION_TOKEN": f"IQoJb3JpZ2lu/{token(90)}+{token(9)}==",
        "external_id": f"ext-{token(12)}=,.@:/-x",
        "endpoint user": f"user{secrets.token_hex(6)}",
        "endpoint password": f"pw{secrets.token_hex(10)}",
        "query value": f"q{secrets.token_hex(10)}",
    }


@pytest.fixture
def world() -> Iterator[World]:
    port = free_port()
    sts = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    sts.start()
    role_store = Store(account_id=ROLE_ACCOUNT)
    role_store.add_session(role_store.add_application(name="cross-app"), state="IDLE", tags={"team": "a"})
    direct_store = Store(account_id="123456789012")
    direct_store.add_session(direct_store.add_application(name="direct-app"), state="BUSY")
    try:
        with Simulator(role_store, port=0) as role_sim, Simulator(direct_store, port=0) as direct_sim:
            yield World(f"http://127.0.0.1:{port}", role_sim.url, direct_sim.url, planted())
    finally:
        sts.stop()


def assert_no_secret(world: World, outputs: dict[str, str]) -> None:
    every = {**world.secrets, **world.issued_credentials()}
    assert any(name.startswith("issued") for name in every), "the role was never assumed: nothing was tested"
    leaks = [f"{secret_name} in {where}: ...{text[max(0, text.find(secret) - 80):text.find(secret) + 20]!r}"
             for secret_name, secret in every.items() for where, text in outputs.items() if secret in text]
    assert not leaks, "\n".join(leaks)


def run_once(world: World, config: Path, log_format: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(config), "--once",
         "--log.level", "debug", "--log.format", log_format],
        capture_output=True, text=True, env=world.env(), timeout=60, check=False,
    )


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_once_at_debug_level_shows_no_secret(world: World, tmp_path: Path, log_format: str) -> None:
    result = run_once(world, world.config(tmp_path, failing_target=True), log_format)
    assert result.returncode == 1, result.stderr  # the refused target is down, the others up
    assert 'emr_serverless_up{account_id="210987654321",region="us-east-1",target="cross"} 1.0' in result.stdout
    assert 'emr_serverless_up{account_id="123456789012",region="us-east-1",target="direct"} 1.0' in result.stdout
    assert "urllib3.connectionpool" in result.stderr and "botocore.credentials" in result.stderr  # debug is on
    assert "EndpointConnectionError" in result.stderr  # the refused endpoint's URL was logged, redacted
    if log_format == "json":
        for line in result.stderr.splitlines():
            json.loads(line)
    assert_no_secret(world, {"stderr": result.stderr, "stdout": result.stdout})


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
    return body.decode()


@contextlib.contextmanager
def serving(world: World, config: Path, log_format: str) -> Iterator[tuple[str, list[str]]]:
    """The exporter serving HTTP at debug level; yields its URL, then its standard error once stopped."""
    log_path = config.with_name("stderr.log")  # a file: debug logs would fill a pipe and block it
    stderr: list[str] = []
    with log_path.open("w") as log_file, support.serving(
        "--config.file", str(config), "--log.level", "debug", "--log.format", log_format,
        env=world.env(), stderr=log_file,
    ) as served:
        yield served.url, stderr
    stderr.append(log_path.read_text())


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_a_served_exporter_shows_no_secret(world: World, tmp_path: Path, log_format: str) -> None:
    outputs: dict[str, str] = {}
    with serving(world, world.config(tmp_path, failing_target=False), log_format) as (url, stderr):
        query = f"password={world.secrets['query value']}&token={world.secrets['query value']}"
        outputs["/metrics"] = get(f"{url}/metrics?{query}")
        outputs["/"] = get(f"{url}/?{query}")
        outputs["/metrics again"] = get(f"{url}/metrics")
    outputs["stderr"] = stderr[0]
    assert 'target="cross"} 1.0' in outputs["/metrics"] and 'target="direct"} 1.0' in outputs["/metrics"]
    assert "http request" in outputs["stderr"]  # the request lines, with their query strings, were logged
    assert_no_secret(world, outputs)


def test_the_landing_page_shows_no_secret_of_a_failing_target(world: World, tmp_path: Path) -> None:
    with serving(world, world.config(tmp_path, failing_target=True), "logfmt") as (url, stderr):
        page = get(f"{url}/")
    assert "EndpointConnectionError" in page
    assert_no_secret(world, {"/": page, "stderr": stderr[0]})


# --- the logging setup in-process -------------------------------------------------------------------


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """setup_logging("debug", "json") for one test; yields a function returning what it wrote."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook,
             {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3", *WIRE_LOGGERS)})
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token-0123456789")
    stream = io.StringIO()
    setup_logging("debug", "json", stream)
    try:
        yield stream.getvalue
    finally:
        root.handlers[:], root.level, sys.excepthook, threading.excepthook, levels = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        forget_secrets()


def test_every_logger_s_records_are_redacted(debug_logs: Callable[[], str]) -> None:
    logging.getLogger("urllib3.connectionpool").debug("%s \"GET /x?X-Amz-Signature=%s HTTP/1.1\" 200",
                                                      "http://u:pw-123@h", "sig-123")
    logging.getLogger("exporter.collect.target").warning(
        "failed", extra={"fields": {"first_error": "http://u:pw-123@h", "errors": ["env-token-0123456789", 3]}}
    )
    try:
        raise ValueError("ExternalId=ext-123 in 'SessionToken': 'tok-123'")
    except ValueError:
        logging.getLogger("botocore.hooks").debug("boom", exc_info=True)
    records = [json.loads(line) for line in debug_logs().splitlines()]
    assert [r["msg"] for r in records] == ['http://<redacted>@h "GET /x?X-Amz-Signature=<redacted> HTTP/1.1" 200',
                                           "failed", "boom"]
    assert records[1]["first_error"] == "http://<redacted>@h" and records[1]["errors"] == ["<redacted>", 3]
    assert records[2]["err"] == "ValueError(\"ExternalId=<redacted> in 'SessionToken': '<redacted>'\")"


def test_botocore_wire_logs_stay_off_at_debug_level(debug_logs: Callable[[], str]) -> None:
    for name in WIRE_LOGGERS:
        logging.getLogger(name).debug("Response body: b'<Credentials>...'")
    logging.getLogger("botocore.retries.standard").debug("Not retrying request.")
    assert [json.loads(line)["logger"] for line in debug_logs().splitlines()] == ["botocore.retries.standard"]


def test_an_uncaught_exception_in_a_thread_is_one_redacted_record(debug_logs: Callable[[], str]) -> None:
    def fail() -> None:
        raise RuntimeError("Could not connect to http://u:pw-123@h/")

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    (line,) = debug_logs().splitlines()
    record = json.loads(line)
    assert record["msg"] == "uncaught exception" and "pw-123" not in line
    assert "RuntimeError: Could not connect to http://<redacted>@h/" in record["traceback"]
