"""Sessions and job runs at XL, in the background, under AWS's quotas. Prints tables.

    .venv/bin/python benchmarks/xl.py [--steady-seconds 180] [--restart-timeout 1500] [--interval 15]
                                      [--exporter-config extra.yaml] [--label NAME]

XL: 100 applications, 1,000 active sessions (of 2,000), 1,000 running job runs and 10,000 job runs ended
in the last hour, against the simulator at 50 ms of API latency with AWS's documented per-account quotas
switched on (ListJobRuns 1/s burst 25; GetJobRun, ListApplications, GetApplication 10/s burst 50). The
exporter runs as a child process with its default configuration (its default ``aws.rate_limits`` are half
of those quotas) but ``collection.interval_seconds`` (background mode, 15 s) and ``aws.max_concurrency`` 32;
``--exporter-config`` merges more keys in (a ``metrics.denylist``, say), ``--label`` names the row.

It prints, in this order:
- the restart case: from the exporter's start, how long until every active job run, and then every job run
  the simulator says should be exported (active, or ended less than
  ``discovery.terminated_job_run_max_age_seconds`` ago), is exported, beside the listing bound
  ceil(2 A / R) seconds + one collection (A applications, R ListJobRuns/s), and beside the pages a cold
  start lists: the exporter's, and the fewest any client could (per application, its runs to export, 50 a
  page);
- then, over ``--steady-seconds`` of steady state: scrape wall time (plain and gzip, median and max, timed
  by curl), series and bytes of the exposition, peak RSS, exporter CPU per refreshed object (GetSession and
  GetJobRun answered), API calls per operation per collection and the call rate the simulator saw beside
  the default limit, and the largest ``emr_serverless_oldest_listing_age_seconds`` and
  ``emr_serverless_oldest_object_data_age_seconds`` by kind beside the listing bound.
The machine has 2 shared cores: wall and CPU figures are noisy; counts and ages are set by the quotas.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import CURL, PROMETHEUS_ACCEPT, Exporter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emr_serverless_simulator import Simulator, build_scenario  # noqa: E402
from exporter.config.schema import Config  # noqa: E402

APPLICATIONS = 100
LATENCY_MS = 50.0
SAMPLE = re.compile(rb'^(\w+)\{([^}]*)\} (\S+)$', re.M)


def truth(store: Any, max_age: float, *, active_only: bool = False) -> set[str]:
    """The job runs the exporter should export now: active, or ended within ``max_age``."""
    now = store.now()
    wanted = set()
    for app in store.application_ids():
        for run_id in store.job_run_ids(app):
            run = store.job_run(app, run_id)
            if run is not None and (run.ended_at is None or (not active_only and run.ended_at >= now - max_age)):
                wanted.add(run_id)
    return wanted


def first_listing_pages(store: Any, lookback: float) -> int:
    """ListJobRuns pages of the exporter's cold start: per application, one listing of the active runs and one
    of every run created in the look-back, 50 runs a page."""
    now, pages = store.now(), 0
    for app in store.application_ids():
        runs = [run for run in (store.job_run(app, run_id) for run_id in store.job_run_ids(app)) if run is not None]
        active = sum(1 for run in runs if run.ended_at is None)
        created = sum(1 for run in runs if run.created_at >= now - lookback)
        pages += max(1, math.ceil(active / 50)) + max(1, math.ceil(created / 50))
    return pages


def fewest_pages(store: Any, max_age: float) -> int:
    """The fewest ListJobRuns pages any client lists to export what it should: per application (ListJobRuns
    lists one), its runs to export, 50 a page."""
    wanted = truth(store, max_age)
    return sum(math.ceil(sum(1 for run_id in store.job_run_ids(app) if run_id in wanted) / 50)
               for app in store.application_ids())


def scrape(url: str, gzip: bool) -> tuple[float, bytes, int]:
    """(curl's wall time, the body, the bytes sent) of one scrape in Prometheus' format."""
    headers = ["-H", f"Accept: {PROMETHEUS_ACCEPT}"] + (["-H", "Accept-Encoding: gzip"] if gzip else [])
    with tempfile.NamedTemporaryFile() as out:
        timed = subprocess.run([CURL or "curl", "-sS", "--max-time", "60", "-o", out.name, "-w", "%{time_total}",
                                *headers, f"{url}/metrics"], capture_output=True, text=True, check=True)
        sent = Path(out.name).read_bytes()
    body = zlib.decompress(sent, 16 + zlib.MAX_WBITS) if gzip else sent
    return float(timed.stdout), body, len(sent)


def samples(body: bytes, name: bytes) -> list[tuple[dict[str, str], float]]:
    found = []
    for metric, labels, value in SAMPLE.findall(body):
        if metric == name:
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels.decode()))
            found.append((pairs, float(value)))
    return found


def by_kind(body: bytes, name: bytes) -> dict[str, float]:
    return {labels["kind"]: value for labels, value in samples(body, name)}


def exported_runs(body: bytes) -> set[str]:
    return {labels["job_run_id"] for labels, _ in samples(body, b"emr_serverless_job_run_info")}


def calls(body: bytes) -> Counter[str]:
    counted: Counter[str] = Counter()
    for labels, value in samples(body, b"emr_serverless_api_requests_total"):
        counted[labels["operation"]] += int(value)
    return counted


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steady-seconds", type=float, default=180)
    parser.add_argument("--restart-timeout", type=float, default=1500)
    parser.add_argument("--interval", type=float, default=15)
    parser.add_argument("--exporter-config", type=Path)
    parser.add_argument("--label", default="defaults")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows when redirected

    started_build = time.perf_counter()
    store = build_scenario("scale", applications=APPLICATIONS, sessions_per_application=20, active_fraction=0.5,
                           running_job_runs_per_application=10, ended_job_runs_per_application=100, seed=1)
    store.apply_aws_quotas()
    built = time.perf_counter() - started_build
    simulator = Simulator(store, port=0, latency_ms=LATENCY_MS).start()
    defaults = Config()
    limits = defaults.aws.rate_limits.by_operation()
    max_age = defaults.discovery.terminated_job_run_max_age_seconds
    config: dict[str, Any] = {
        "targets": [{"endpoint_url": simulator.url, "region": "us-east-1", "name": "xl"}],
        "collection": {"interval_seconds": args.interval},
        "aws": {"max_concurrency": 32},
    }
    if args.exporter_config:
        config = deep_merge(config, yaml.safe_load(args.exporter_config.read_text()) or {})
    rate, burst = limits["ListJobRuns"].requests_per_second, limits["ListJobRuns"].burst
    bound = math.ceil(2 * APPLICATIONS / rate) + args.interval if rate else args.interval
    print(f"XL ({args.label}): {APPLICATIONS} applications, built in {built:.2f} s; "
          f"{len(truth(store, max_age)):,} job runs to export; listing bound {bound:.0f} s "
          f"(ceil(2 x {APPLICATIONS} / {rate:g} ListJobRuns/s) + one {args.interval:g} s collection)")
    if rate:
        pages = first_listing_pages(store, defaults.discovery.job_run_lookback_seconds)
        fewest = fewest_pages(store, max_age)
        print(f"cold start: {pages} ListJobRuns pages ({(pages - burst) / rate:.0f} s at {rate:g}/s after a "
              f"burst of {burst}); the fewest any client can make: {fewest} ({(fewest - burst) / rate:.0f} s)")

    with tempfile.TemporaryDirectory() as workdir:
        exporter = Exporter(ROOT, config, Path(workdir))
        url = f"http://127.0.0.1:{exporter.port}"
        try:
            began = time.time()
            exporter.wait_ready()
            complete_after = active_after = None
            while time.time() - began < args.restart_timeout:
                _, body, _ = scrape(url, gzip=True)
                exported = exported_runs(body)
                if active_after is None and not truth(store, max_age, active_only=True) - exported:
                    active_after = time.time() - began
                missing = truth(store, max_age) - exported
                if not missing:
                    complete_after = time.time() - began
                    break
                time.sleep(5)
            print(f"restart: every active job run exported after {active_after:.0f} s" if active_after is not None
                  else f"restart: active job runs still missing after {args.restart_timeout:.0f} s")
            print(f"restart: every job run exported after {complete_after:.0f} s" if complete_after is not None
                  else f"restart: {len(missing)} job runs still missing after {args.restart_timeout:.0f} s")

            _, first, _ = scrape(url, gzip=True)
            cpu_before, calls_before, steady_began = exporter.cpu_seconds(), calls(first), time.time()
            store.reset_calls()
            walls: dict[bool, list[float]] = {False: [], True: []}
            sizes: dict[bool, int] = {}
            listing_age: dict[str, float] = {}
            data_age: dict[str, float] = {}
            body = first
            while time.time() - steady_began < args.steady_seconds:
                for gzip in (True, False):
                    wall, body, sent = scrape(url, gzip)
                    walls[gzip].append(wall)
                    sizes[gzip] = sent
                for kind, age in by_kind(body, b"emr_serverless_oldest_listing_age_seconds").items():
                    listing_age[kind] = max(listing_age.get(kind, 0.0), age)
                for kind, age in by_kind(body, b"emr_serverless_oldest_object_data_age_seconds").items():
                    data_age[kind] = max(data_age.get(kind, 0.0), age)
                time.sleep(2)
            elapsed = time.time() - steady_began
            cpu = exporter.cpu_seconds() - cpu_before
            made = calls(body) - calls_before
            collections = max(1, store.calls["ListApplications"])
            series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            rss = exporter.peak_rss_mb()
        finally:
            exporter.close()
            simulator.stop()
    refreshed = made["GetSession"] + made["GetJobRun"]
    print(f"\nsteady state, {elapsed:.0f} s, {collections} collections:")
    print("| scrape | median s | max s | bytes |\n| --- | --- | --- | --- |")
    for gzip in (False, True):
        print(f"| {'gzip' if gzip else 'plain'} | {statistics.median(walls[gzip]):.3f} | {max(walls[gzip]):.3f} "
              f"| {sizes[gzip]:,} |")
    print(f"\nseries {series:,}; peak RSS {rss:.0f} MB; exporter CPU {cpu:.1f} s "
          f"({1000 * cpu / max(1, refreshed):.2f} ms per refreshed object, {refreshed:,} refreshed)")
    print("\n| operation | calls per collection | calls/s seen by AWS | default limit /s |\n| --- | --- | --- | --- |")
    for operation in sorted(set(made) | set(store.calls)):
        limit = limits.get(operation)
        shown = f"{limit.requests_per_second:g} (burst {limit.burst})" if limit and limit.requests_per_second else "-"
        seen = store.calls[operation] / elapsed
        print(f"| {operation} | {made[operation] / collections:.1f} | {seen:.2f} | {shown} |")
    print("\n| kind | oldest listing age max s | oldest data age max s |\n| --- | --- | --- |")
    for kind in sorted(listing_age):
        print(f"| {kind} | {listing_age[kind]:.0f} | {data_age.get(kind, 0):.0f} |")
    print(f"job-run listing bound: {bound:.0f} s")


if __name__ == "__main__":
    main()
