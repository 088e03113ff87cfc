"""A bounded soak: faults switched on and off in phases; memory and threads must stay flat. Prints a table.

    .venv/bin/python benchmarks/soak.py [--phase-seconds 15] [--phases calm,throttle,5xx,delay,pages,calm]

The exporter runs as its own process with two targets: ``sim``, the EMR Serverless simulator (in this
process, so its faults and rate limits can be switched while it serves), and ``hostile``, the hostile
endpoint of ``tests/helpers/hostile_endpoint.py`` (baseline data, or a listing whose pages never end). It is
scraped about once a second, as Prometheus would. Each phase switches faults on for its duration:

- ``calm``      no faults;
- ``throttle``  the simulator rate-limits like AWS: GetSession 5/s burst 10, ListSessions 2/s burst 5
                (token buckets answering ThrottlingException), and 30 % of GetSession throttled at random;
- ``5xx``       30 % of every simulator call answers InternalServerException;
- ``delay``     half the GetSession calls wait 2 s, half the ListApplications calls 1 s;
- ``pages``     the hostile endpoint's ListSessions of one application never ends: an ever-new nextToken,
                every page 50 sessions never seen before.

Per phase it prints the exporter's RSS and thread count (``/proc/PID/status``) when the phase ends and
their peak during it, the scrapes (how many, how many failed, the slowest), how often each target was
up, the log lines written, and the API calls each endpoint received. Memory and threads are compared
after warm-up: the end of the first phase against the end of the last. It asserts nothing; it is a
measurement, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests package

from emr_serverless_simulator import Fault, Simulator, Store, build_scenario
from tests.helpers.hostile_endpoint import BAD_APP, HostileEndpoint
from tests.helpers.support import serving

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
UP_LINE = re.compile(r'^emr_serverless_up\{[^}]*target="(\w+)"[^}]*\} (\S+)$', re.M)
OPERATIONS = ("ListApplications", "ListSessions", "GetSession")


@dataclass
class Phase:
    name: str
    on: Callable[[Store, HostileEndpoint], None]

    def off(self, store: Store, hostile: HostileEndpoint) -> None:
        store.clear_faults()
        store.clear_throttles()
        hostile.clear()


def _calm(store: Store, hostile: HostileEndpoint) -> None:
    pass


def _throttle(store: Store, hostile: HostileEndpoint) -> None:
    store.set_throttle("GetSession", rate=5, burst=10)
    store.set_throttle("ListSessions", rate=2, burst=5)
    store.add_fault(Fault(operation="GetSession", error_code="ThrottlingException", fraction=0.3, seed=1))


def _5xx(store: Store, hostile: HostileEndpoint) -> None:
    store.add_fault(Fault(operation="*", error_code="InternalServerException", fraction=0.3, seed=2))


def _delay(store: Store, hostile: HostileEndpoint) -> None:
    store.add_fault(Fault(operation="GetSession", error_code=None, fraction=0.5, delay_ms=2000, seed=3))
    store.add_fault(Fault(operation="ListApplications", error_code=None, fraction=0.5, delay_ms=1000, seed=4))


def _pages(store: Store, hostile: HostileEndpoint) -> None:
    hostile.endless_pages("ListSessions", "new", match={"applicationId": BAD_APP}, page_size=50)


PHASES: dict[str, Callable[[Store, HostileEndpoint], None]] = {
    "calm": _calm, "throttle": _throttle, "5xx": _5xx, "delay": _delay, "pages": _pages,
}


@dataclass
class Row:
    phase: str
    seconds: float = 0.0
    scrapes: int = 0
    failed: int = 0
    slowest: float = 0.0
    up: Counter[str] = field(default_factory=Counter)
    rss_mb: float = 0.0
    rss_peak_mb: float = 0.0
    threads: int = 0
    threads_peak: int = 0
    log_lines: int = 0
    sim_calls: Counter[str] = field(default_factory=Counter)
    hostile_calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0


def proc_status(pid: int) -> tuple[float, int]:
    """(RSS in MB, threads) of a process."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["Threads"][0])


def scrape(url: str, timeout: float) -> tuple[bool, float, str]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode("utf-8", "replace")
            return response.status == 200, time.monotonic() - started, body
    except (urllib.error.URLError, OSError):
        return False, time.monotonic() - started, ""


def run_phase(
    phase: Phase, store: Store, hostile: HostileEndpoint, pid: int, url: str, log: Path, args: argparse.Namespace
) -> Row:
    row = Row(phase.name)
    log_before = log.read_bytes().count(b"\n")
    sim_before, hostile_before, throttled_before = Counter(store.calls), Counter(hostile.calls), store.throttled.total()
    phase.on(store, hostile)
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.phase_seconds:
            tick = time.monotonic()
            ok, seconds, body = scrape(f"{url}/metrics", args.timeout + 2)
            row.scrapes += 1
            row.failed += not ok
            row.slowest = max(row.slowest, seconds)
            for target, value in UP_LINE.findall(body):
                row.up[target] += float(value) == 1.0
            rss, threads = proc_status(pid)
            row.rss_peak_mb, row.threads_peak = max(row.rss_peak_mb, rss), max(row.threads_peak, threads)
            time.sleep(max(0.0, args.scrape_interval - (time.monotonic() - tick)))
    finally:
        phase.off(store, hostile)
    row.seconds = time.monotonic() - started
    row.rss_mb, row.threads = proc_status(pid)
    row.log_lines = log.read_bytes().count(b"\n") - log_before
    row.sim_calls = Counter(store.calls) - sim_before
    row.hostile_calls = Counter(hostile.calls) - hostile_before
    row.throttled = store.throttled.total() - throttled_before
    return row


def print_row(row: Row) -> None:
    def calls(counter: Counter[str]) -> str:
        return "/".join(str(counter.get(op, 0)) for op in OPERATIONS)

    up = " ".join(f"{target}:{row.up[target] * 100 // max(1, row.scrapes)}%" for target in ("sim", "hostile"))
    print(f"{row.phase:<9} {row.seconds:>5.0f}s {row.scrapes:>7} {row.failed:>6} {row.slowest:>7.2f}s  {up:<22}"
          f"{row.rss_mb:>7.1f} {row.rss_peak_mb:>7.1f} {row.threads:>7} {row.threads_peak:>5} {row.log_lines:>6}  "
          f"{calls(row.sim_calls):>17} {row.throttled:>6}  {calls(row.hostile_calls):>15}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="calm,throttle,5xx,delay,pages,calm",
                        help=f"comma-separated, from {', '.join(PHASES)} (default %(default)s)")
    parser.add_argument("--phase-seconds", type=float, default=15.0, help="default %(default)s")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="default %(default)s")
    parser.add_argument("--timeout", type=float, default=5.0, help="collection.timeout_seconds (default %(default)s)")
    parser.add_argument("--applications", type=int, default=3, help="simulator applications (default %(default)s)")
    parser.add_argument("--sessions-per-application", type=int, default=30, help="default %(default)s")
    parser.add_argument("--active-fraction", type=float, default=0.5, help="default %(default)s")
    parser.add_argument("--exporter-arg", action="append", default=[], help="extra exporter flag; repeatable")
    args = parser.parse_args()
    names = [name.strip() for name in args.phases.split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown or not names:
        parser.error(f"--phases: unknown phase {unknown[0] if unknown else '(none)'!r}")
    phases = [Phase(name, PHASES[name]) for name in names]

    store = build_scenario("scale", applications=args.applications,
                           sessions_per_application=args.sessions_per_application,
                           active_fraction=args.active_fraction, seed=1)
    with Simulator(store) as simulator, HostileEndpoint() as hostile, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "targets": [
                {"region": "us-east-1", "endpoint_url": simulator.url, "name": "sim"},
                {"region": "us-east-1", "endpoint_url": hostile.url, "name": "hostile"},
            ],
            "collection": {"timeout_seconds": args.timeout},
        }))
        log = Path(tmp) / "exporter.log"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **CREDENTIALS}
        with log.open("wb") as log_file, serving("--config.file", str(config), *args.exporter_arg, ready="/healthz",
                                                  env=env, stderr=log_file) as served:
            process, url = served.process, served.url
            total = len(phases) * args.phase_seconds
            print(f"soak: {len(phases)} phases x {args.phase_seconds:.0f}s (~{total:.0f}s), scrape every "
                  f"{args.scrape_interval:g}s, collection timeout {args.timeout:g}s, "
                  f"{args.applications}x{args.sessions_per_application} simulated sessions "
                  f"(active fraction {args.active_fraction:g}); exporter pid {process.pid}", flush=True)
            print(f"{'phase':<9} {'time':>6} {'scrapes':>7} {'failed':>6} {'slowest':>8}  {'up (sim, hostile)':<22}"
                  f"{'RSS MB':>7} {'peak':>7} {'threads':>7} {'peak':>5} {'log':>6}  "
                  f"{'sim LA/LS/GS':>17} {'thrtl':>6}  {'hostile LA/LS/GS':>15}")
            rows = []
            for phase in phases:
                if process.poll() is not None:
                    print(f"the exporter exited with {process.returncode}", flush=True)
                    break
                rows.append(run_phase(phase, store, hostile, process.pid, url, log, args))
                print_row(rows[-1])
            if len(rows) >= 2:
                first, last = rows[0], rows[-1]
                print(f"after warm-up ({first.phase} -> {last.phase}): RSS {first.rss_mb:.1f} -> {last.rss_mb:.1f} MB "
                      f"({last.rss_mb - first.rss_mb:+.1f}), threads {first.threads} -> {last.threads} "
                      f"({last.threads - first.threads:+d}); peak RSS {max(r.rss_peak_mb for r in rows):.1f} MB, "
                      f"peak threads {max(r.threads_peak for r in rows)}")
            text = log.read_text(errors="replace")
            print(f"exporter log: {text.count(chr(10))} lines, {text.count('Traceback')} tracebacks")


if __name__ == "__main__":
    main()
