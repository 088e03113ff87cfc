"""What a scrape costs at scale: API calls, wall time, CPU, render time, size, memory. Prints a table.

    .venv/bin/python benchmarks/scale.py [--scenarios S,M,L] [--latency-ms 50] [--concurrency 32]

Per scenario, the simulator runs as its own process with the injected latency, and the exporter as
another, scraped over HTTP as Prometheus would (gzip). After the first collection, steady-state
scrapes are measured:
- API calls per scrape (from the exporter's own emr_serverless_api_requests_total) beside the
  minimum: list pages (ListApplications pages + one ListSessions page per application) + active sessions;
- scrape wall time beside the critical-path bound: ceil(active / concurrency) x latency + list chain
  (ListApplications pages, then one ListSessions page, one after another);
- exporter CPU seconds per scrape and peak RSS (from /proc);
- exposition render time, incremental against prometheus-client's generic generate_latest, measured in
  this process over the same simulator, in the same run;
- a naive baseline in the same run: every page listed, GetSession for every session one after
  another, generic rendering. Where that would take longer than --naive-budget-seconds, its wall time
  is extrapolated from the calls made within the budget (marked ~).
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import yaml
from prometheus_client.exposition import generate_latest

from exporter.cli import build_exposition, build_registry, build_runner
from exporter.config import parse_config

SCENARIOS = {  # name: (applications, sessions per application, active fraction)
    "S": (3, 20, 0.5),
    "M": (20, 100, 0.1),
    "L": (100, 100, 0.1),
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
API_LINE = re.compile(
    rb'^emr_serverless_api_requests_total\{[^}]*operation="(\w+)",outcome="(\w+)"[^}]*\} (\S+)$', re.M
)


@dataclass
class Row:
    name: str
    sessions: int
    active: int
    calls: float
    minimum: int
    wall: float
    bound: float
    cpu: float
    render_fast: float
    render_generic: float
    size_mb: float
    gzip_mb: float
    rss_mb: float
    naive_wall: float
    naive_extrapolated: bool
    naive_calls: int


def start_simulator(apps: int, per_app: int, active: float, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emr_serverless_simulator", "--port", "0", "--scenario", "scale", "--applications",
         str(apps), "--sessions-per-application", str(per_app), "--active-fraction", str(active),
         "--latency-ms", str(latency_ms), "--seed", "1"],
        stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    return process, line.removeprefix("listening on ")


def start_exporter(config_path: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config.file", str(config_path), "--web.listen-address",
         f"127.0.0.1:{port}", "--log.level", "error"],
        env={**os.environ, **CREDENTIALS},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the exporter did not become ready")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(port: int) -> tuple[float, bytes, int]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"})
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        compressed = response.read()
    wall = time.perf_counter() - began
    return wall, gzip.decompress(compressed), len(compressed)


def api_calls(body: bytes) -> float:
    return sum(float(count) for _, _, count in API_LINE.findall(body))


def render_times(url: str, concurrency: int) -> tuple[float, float]:
    """Incremental and generic render time of the same steady-state collection, in this process."""
    config = parse_config(yaml.safe_dump({
        "targets": [{"region": "us-east-1", "endpoint_url": url}],
        "aws": {"max_concurrency": concurrency}, "collection": {"timeout_seconds": 300},
    }))
    runner = build_runner(config)
    try:
        exposition, registry = build_exposition(runner, config), build_registry(runner, config)
        runner.collect()
        exposition.render()  # the first render fills the cache
        runner.collect()
        began = time.perf_counter()
        exposition.render()
        fast = time.perf_counter() - began
        began = time.perf_counter()
        generate_latest(registry)
        generic = time.perf_counter() - began
    finally:
        runner.close()
    return fast, generic


def naive(url: str, budget_seconds: float) -> tuple[float, bool, int]:
    """List everything, then GetSession for every session one after another, then render generically."""
    client = boto3.client(
        "emr-serverless", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    began = time.perf_counter()
    calls = 0
    sessions = []
    for page in client.get_paginator("list_applications").paginate():
        calls += 1
        for app in page["applications"]:
            for session_page in client.get_paginator("list_sessions").paginate(applicationId=app["id"]):
                calls += 1
                sessions += [(app["id"], s["sessionId"]) for s in session_page["sessions"]]
    listed = time.perf_counter() - began
    fetched = 0
    gets_began = time.perf_counter()
    for app_id, session_id in sessions:
        client.get_session(applicationId=app_id, sessionId=session_id)
        fetched += 1
        if time.perf_counter() - gets_began > budget_seconds:
            break
    per_get = (time.perf_counter() - gets_began) / max(1, fetched)
    extrapolated = fetched < len(sessions)
    return listed + per_get * len(sessions), extrapolated, calls + len(sessions)


def run(name: str, latency_ms: float, concurrency: int, scrapes: int, naive_budget: float) -> Row:
    apps, per_app, active_fraction = SCENARIOS[name]
    sessions = apps * per_app
    active = round(sessions * active_fraction)
    simulator, url = start_simulator(apps, per_app, active_fraction, latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config_path = Path(tmp) / "config.yaml"
            config_path.write_text(yaml.safe_dump({
                "targets": [{"region": "us-east-1", "endpoint_url": url, "name": "bench"}],
                "aws": {"max_concurrency": concurrency},
                "collection": {"timeout_seconds": 300},
            }))
            port = free_port()
            exporter = start_exporter(config_path, port)
            try:
                _, body, _ = scrape(port)  # the first scrape after the warm-up collection
                calls_before = api_calls(body)
                walls, cpus, calls = [], [], []
                for _ in range(scrapes):
                    cpu_before = cpu_seconds(exporter.pid)
                    wall, body, compressed = scrape(port)
                    cpus.append(cpu_seconds(exporter.pid) - cpu_before)
                    walls.append(wall)
                    total = api_calls(body)
                    calls.append(total - calls_before)
                    calls_before = total
                rss = peak_rss_mb(exporter.pid)
            finally:
                exporter.terminate()
                exporter.wait(30)
        fast, generic = render_times(url, concurrency)
        naive_wall, extrapolated, naive_calls = naive(url, naive_budget)
    finally:
        simulator.terminate()
        simulator.wait(30)
    list_pages = math.ceil(apps / 50) + apps
    latency = latency_ms / 1000
    bound = math.ceil(active / concurrency) * latency + (math.ceil(apps / 50) + 1) * latency
    return Row(
        name=name, sessions=sessions, active=active, calls=sorted(calls)[len(calls) // 2],
        minimum=list_pages + active, wall=sorted(walls)[len(walls) // 2], bound=bound,
        cpu=sorted(cpus)[len(cpus) // 2], render_fast=fast, render_generic=generic,
        size_mb=len(body) / 1e6, gzip_mb=compressed / 1e6, rss_mb=rss,
        naive_wall=naive_wall, naive_extrapolated=extrapolated, naive_calls=naive_calls,
    )


def print_table(rows: list[Row], latency_ms: float, concurrency: int) -> None:
    print(f"latency {latency_ms:g} ms per API call, max_concurrency {concurrency}, "
          "median of the steady-state scrapes")
    print()
    print("| scenario | sessions (active) | API calls / scrape (minimum) | scrape wall s (bound) | wall / bound "
          "| exporter CPU s / scrape | render ms: incremental / generic | exposition MB (gzip) | peak RSS MB "
          "| naive: wall s, API calls |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        naive_wall = f"{'~' if r.naive_extrapolated else ''}{r.naive_wall:.1f}"
        print(
            f"| {r.name} | {r.sessions:,} ({r.active:,}) | {r.calls:,.0f} ({r.minimum:,}) "
            f"| {r.wall:.2f} ({r.bound:.2f}) "
            f"| {r.wall / r.bound:.2f} | {r.cpu:.2f} | {r.render_fast * 1000:,.0f} / {r.render_generic * 1000:,.0f} "
            f"({r.render_generic / r.render_fast:.1f}x) | {r.size_mb:.1f} ({r.gzip_mb:.2f}) | {r.rss_mb:.0f} "
            f"| {naive_wall}, {r.naive_calls:,} |"
        )
    if any(r.naive_extrapolated for r in rows):
        print()
        print("~ extrapolated: the naive baseline's GetSession calls were timed for the budget, "
              "then scaled to all sessions.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="S,M,L")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--naive-budget-seconds", type=float, default=30.0)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    rows = [
        run(name, args.latency_ms, args.concurrency, args.scrapes, args.naive_budget_seconds)
        for name in args.scenarios.split(",")
    ]
    print_table(rows, args.latency_ms, args.concurrency)


if __name__ == "__main__":
    main()
