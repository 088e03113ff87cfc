"""A real Prometheus server for tests: scrape a target, load rule files, run PromQL queries.

    with PrometheusServer(targets=["127.0.0.1:9865"], scrape_interval="1s", rule_files=[rules]) as prom:
        prom.wait_for('up{job="emr-serverless-exporter"} == 1')
        result = prom.query("sum(emr_serverless_up)")

``scrape`` adds settings to the job (``scheme: https``, ``tls_config``, ``basic_auth``), and
``extra_jobs`` adds whole scrape configs, e.g. the same target with a wrong password.

Runs ``/usr/bin/prometheus`` (or ``$PROMETHEUS_BIN``) on a free loopback port with a temporary
configuration and TSDB directory, both removed on exit. A missing binary is an error, not a skip:
CI installs Prometheus, so a skipped test would hide a broken setup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.helpers.support import free_port

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
DEFAULT_JOB = "emr-serverless-exporter"


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error, or could not be started."""


class PrometheusServer:
    """A Prometheus process scraping ``targets`` as job ``job``, evaluating ``rule_files``."""

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = "1s",
        rule_files: Sequence[str | os.PathLike[str]] = (),
        *,
        job: str = DEFAULT_JOB,
        evaluation_interval: str | None = None,
        metrics_path: str = "/metrics",
        scrape: dict[str, Any] | None = None,
        extra_jobs: Sequence[dict[str, Any]] = (),
        startup_timeout: float = 30.0,
        binary: str = PROMETHEUS_BIN,
        tsdb: str | os.PathLike[str] | None = None,
    ) -> None:
        """``tsdb``: a directory of TSDB blocks (``promtool tsdb create-blocks-from ...``) to start from,
        copied; queried at their own times (retention then counts from their newest block)."""
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.rule_files = [str(Path(path).resolve()) for path in rule_files]
        self.job = job
        self.metrics_path = metrics_path
        self.scrape = dict(scrape or {})
        self.extra_jobs = list(extra_jobs)
        self.startup_timeout = startup_timeout
        self.binary = binary
        self.tsdb = Path(tsdb) if tsdb is not None else None
        self.port = 0
        self.url = ""
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # --- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def config(self) -> dict[str, Any]:
        """The prometheus.yml this server runs with."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": self.rule_files,
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                    **self.scrape,
                },
                *self.extra_jobs,
            ],
        }

    def start(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(
                f"Prometheus binary {self.binary} not found or not executable: install prometheus "
                "(Debian: apt-get install prometheus) or set PROMETHEUS_BIN"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        config_file = self._dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if self.tsdb is not None:
            shutil.copytree(self.tsdb, self._dir / "data")
        self._log = (self._dir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.retention.time={'1d' if self.tsdb is not None else '1h'}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited with status {self._process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready after {self.startup_timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def log(self) -> str:
        """Prometheus's own log so far (for failure messages)."""
        if self._dir is None:
            return ""
        path = self._dir / "prometheus.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    # --- HTTP API -----------------------------------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>``; returns ``data``, raises PrometheusError on an error status."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:
            try:
                body = json.load(err)
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {err.code}") from err
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params or ''}: {body.get('errorType', '?')}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query (now, or at Unix time ``at``); a vector's samples, or a scalar/string
        as one sample without labels."""
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at)
        data = self.api("query", params)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        samples: list[dict[str, Any]] = result
        return samples

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll ``expr`` until its result is not empty; TimeoutError names the query."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {expr!r} after {timeout}s")
            time.sleep(0.2)

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups (``/api/v1/rules``)."""
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def targets_status(self) -> list[dict[str, Any]]:
        """The active scrape targets (``/api/v1/targets``)."""
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active
