"""What many tests (and benchmarks/soak.py) share: the exporter as a real process, HTTP requests to it,
reading its exposition, a boto3 client for the simulator and a clock tests move by hand.

Tests import these from here, never from one another.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3
import botocore.config
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from exporter.collect.runner import CollectionRunner
from exporter.config.schema import parse_config
from exporter.wiring import build_registry, build_runner

EXPORTER = (sys.executable, "-m", "exporter")
Samples = dict[str, list[Any]]


# --- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    args: Sequence[str], *, timeout: float = 60, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m exporter ARGS`` to the end (``--once``, ``--version``, a bad flag)."""
    return subprocess.run(
        [*EXPORTER, *args], capture_output=True, text=True, timeout=timeout, env=env or aws_env(), cwd=cwd, check=False,
    )


class NotServing(AssertionError):
    """A process did not answer 200 in time, or exited first."""


def wait_until_serving(
    url: str, process: subprocess.Popen[Any], *, timeout: float = 30, context: ssl.SSLContext | None = None
) -> None:
    """Return once ``url`` answers 200; otherwise kill ``process`` and raise ``NotServing`` with what it
    wrote to a piped standard error."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(url, context=context, timeout=2)[0] == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            exited = process.poll()
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise NotServing(f"{url} did not answer 200 (exit status {exited}): {stderr or ''}")
        time.sleep(0.1)


@dataclass
class Served:
    """A serving process and its base URL; ``stderr`` once it has stopped (when piped)."""

    process: subprocess.Popen[str]
    url: str
    stderr: str = ""

    @property
    def address(self) -> str:
        return self.url.split("://", 1)[1]


@contextlib.contextmanager
def serving(
    *args: str,
    command: Sequence[str] = EXPORTER,
    host: str = "127.0.0.1",
    ready: str = "/readyz",
    scheme: str = "http",
    context: ssl.SSLContext | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stderr: IO[Any] | int = subprocess.PIPE,
    timeout: float = 30,
) -> Iterator[Served]:
    """``command ARGS --web.listen-address HOST:<free port>`` (the exporter by default; HOST "": every
    interface), yielded once ``ready`` answers 200 on 127.0.0.1; stopped with SIGTERM on the way out
    (standard error, when piped, in ``stderr``)."""
    port = free_port()
    process = subprocess.Popen(
        [*command, *args, "--web.listen-address", f"{host}:{port}"],
        env=env or aws_env(), cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, text=True, errors="replace",
    )
    served = Served(process, f"{scheme}://127.0.0.1:{port}")
    try:
        wait_until_serving(served.url + ready, process, timeout=timeout, context=context)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            served.stderr = process.communicate(timeout=30)[1] or ""
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def simulator_config(url: str, **sections: Any) -> str:
    """A configuration with one target, ``sim``, at ``url`` (a simulator), and ``sections`` as given. Each
    scrape or ``collect()`` collects (``collection.min_interval_seconds`` 0 unless ``sections`` set it): a
    test that changes the simulator and collects again means a new collection."""
    data: dict[str, Any] = {"targets": [{"region": "us-east-1", "endpoint_url": url, "name": "sim"}]}
    data.update(sections)
    data["collection"] = {"min_interval_seconds": 0, **(data.get("collection") or {})}
    return yaml.safe_dump(data)


def collecting(url: str, **sections: Any) -> tuple[CollectionRunner, CollectorRegistry]:
    """A runner and prometheus-client's registry over it for ``simulator_config(url, **sections)``, in this
    process (no HTTP serving)."""
    config = parse_config(simulator_config(url, **sections))
    runner = build_runner(config)
    return runner, build_registry(runner, config)


@contextlib.contextmanager
def serving_simulator(
    directory: Path, url: str, *args: str, sections: dict[str, Any] | None = None, **options: Any
) -> Iterator[Served]:
    """``serving`` with ``simulator_config`` written to ``directory``/config.yaml, from ``directory``."""
    config = directory / "config.yaml"
    config.write_text(simulator_config(url, **(sections or {})))
    with serving("--config.file", str(config), *args, cwd=directory, **options) as served:
        yield served


# --- HTTP ---------------------------------------------------------------------------------------------


def get(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 10, method: str = "GET",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# --- the exposition -----------------------------------------------------------------------------------


def samples_of(text: str) -> Samples:
    """Every sample of a text exposition, by sample name."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def session_ids(samples: Samples) -> set[str]:
    return {s.labels["session_id"] for s in samples.get("emr_serverless_session_info", [])}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` with these labels (among others)."""
    matching = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (name, labels, matching)
    return float(matching[0].value)


MAX_LABEL_LENGTH = 1024  # characters of a label value the exporter keeps


def sanitized(value: str) -> str:
    """A label value as the contract says: a line feed kept, other Cc characters and lone surrogates ->
    U+FFFD, 1,024 characters."""
    out = "".join(
        "\ufffd" if (unicodedata.category(char) == "Cc" and char != "\n") or 0xD800 <= ord(char) <= 0xDFFF else char
        for char in value
    )
    return out[:MAX_LABEL_LENGTH]


def promtool_check(body: str | bytes) -> None:
    """``promtool check metrics`` finds nothing to say about ``body``."""
    data = body.encode() if isinstance(body, str) else body
    lint = subprocess.run(["promtool", "check", "metrics"], input=data, capture_output=True, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr


# --- the simulator ------------------------------------------------------------------------------------


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def simulator_client(url: str, attempts: int = 1, *, validate: bool = True) -> Any:
    """A boto3 emr-serverless client for the simulator at ``url``, with dummy credentials."""
    return boto3.client(
        "emr-serverless",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            max_pool_connections=64,
            parameter_validation=validate,  # off: send what botocore would refuse, to see the server refuse it
        ),
    )
