"""The exporter's memory against a hostile endpoint: RSS over time, printed as a table.

    .venv/bin/python benchmarks/hostile_memory.py pages [--seconds 240] [--every 20] [--page-size 50]
    .venv/bin/python benchmarks/hostile_memory.py huge [--scrapes 3] [--operations GetSession,ListSessions]
    ... [--exporter-root /work/main]   # measure another checkout's exporter (e.g. before a change)

The exporter runs as its own process (``python -m exporter``) against ``tests/helpers/hostile_endpoint.py``,
which runs in this process, and is scraped once a second, as Prometheus would:

- ``pages``  one application's ListSessions never ends: an ever-new nextToken, each page ``--page-size``
             sessions never seen before (0: the application's two sessions again on every page). Every
             ``--every`` seconds: the exporter's RSS (``/proc/PID/status``), the pages it has fetched so far
             and RSS growth per page since the first row (after warm-up).
- ``huge``   10 MB of ``stateDetails`` in the answers of ``--operations`` (ListApplications, GetApplication:
             of one application; ListSessions, GetSession: of one session). RSS after start-up and after
             each scrape, and the outcomes of the exporter's calls (``emr_serverless_api_requests_total``).

It asserts nothing; it is a measurement, not a timed test.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests package

from tests.helpers.hostile_endpoint import BAD_APP, BAD_SESSION, HostileEndpoint, JsonObject
from tests.helpers.support import aws_env, serving

HUGE = "x" * 10_000_000
REQUESTS = re.compile(r'^emr_serverless_api_requests_total\{([^}]*)\} (\S+)$', re.M)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (VmRSS) or at its highest so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def scrape(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError):
        return ""


def outcomes(body: str) -> str:
    """``operation:outcome=count`` of every api_requests_total series."""
    found = []
    for labels, value in REQUESTS.findall(body):
        named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        found.append(f"{named.get('operation')}:{named.get('outcome')}={float(value):.0f}")
    return " ".join(sorted(found))


def spoil_huge(endpoint: HostileEndpoint, operations: list[str]) -> None:
    def huge(obj: JsonObject) -> None:
        obj["stateDetails"] = HUGE

    apps = [op for op in operations if op in ("ListApplications", "GetApplication")]
    sessions = [op for op in operations if op in ("ListSessions", "GetSession")]
    if apps:
        endpoint.mutate_application(BAD_APP, huge, operations=apps)
    if sessions:
        endpoint.mutate_session(BAD_SESSION, huge, operations=sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("pages", "huge"))
    parser.add_argument("--seconds", type=float, default=240, help="pages: how long to run")
    parser.add_argument("--every", type=float, default=20, help="pages: seconds between rows")
    parser.add_argument("--page-size", type=int, default=50, help="pages: new sessions per page (0: the same two)")
    parser.add_argument("--scrapes", type=int, default=3, help="huge: scrapes to make")
    parser.add_argument("--operations", default="GetSession", help="huge: the answers that carry 10 MB")
    parser.add_argument("--timeout", type=float, default=10, help="collection.timeout_seconds")
    parser.add_argument("--exporter-root", default="", help="import the exporter from this checkout instead")
    args = parser.parse_args()

    with HostileEndpoint() as endpoint, tempfile.TemporaryDirectory() as tmp:
        if args.scenario == "pages":
            endpoint.endless_pages("ListSessions", "new", match={"applicationId": BAD_APP}, page_size=args.page_size)
        else:
            spoil_huge(endpoint, [op.strip() for op in args.operations.split(",") if op.strip()])
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "targets": [{"region": "us-east-1", "endpoint_url": endpoint.url, "name": "hostile"}],
            "collection": {"timeout_seconds": args.timeout},
        }))
        root = args.exporter_root or str(Path(__file__).resolve().parent.parent)
        # python -m puts the working directory first on the path: the exporter comes from ``root``
        with serving("--config.file", str(config), ready="/healthz", env=aws_env(PYTHONPATH=root), cwd=root,
                     stderr=subprocess.DEVNULL) as served:
            process, url = served.process, served.url
            spoiled = f" in {args.operations}" if args.scenario == "huge" else ""
            print(f"{args.scenario}{spoiled}: exporter from {root}, pid {process.pid}, collection timeout "
                  f"{args.timeout:g}s, RSS at start {rss_mb(process.pid):.1f} MB", flush=True)
            if args.scenario == "pages":
                run_pages(endpoint, process.pid, url, args)
            else:
                run_huge(process.pid, url, args)


def run_pages(endpoint: HostileEndpoint, pid: int, url: str, args: argparse.Namespace) -> None:
    print(f"{'time s':>7} {'scrapes':>7} {'pages':>7} {'RSS MB':>7} {'KB/page since first row':>24}", flush=True)
    started = time.monotonic()
    scrapes = 0
    first: tuple[int, float] | None = None
    next_row = started + args.every
    while time.monotonic() - started < args.seconds:
        scrape(f"{url}/metrics", args.timeout + 5)
        scrapes += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
        if time.monotonic() >= next_row:
            next_row += args.every
            pages, rss = endpoint.calls["ListSessions"], rss_mb(pid)
            first = first or (pages, rss)
            per_page = (rss - first[1]) * 1024 / (pages - first[0]) if pages > first[0] else 0.0
            print(f"{time.monotonic() - started:>7.0f} {scrapes:>7} {pages:>7} {rss:>7.1f} {per_page:>24.3f}",
                  flush=True)


def run_huge(pid: int, url: str, args: argparse.Namespace) -> None:
    print(f"{'scrape':>6} {'seconds':>7} {'RSS MB':>7} {'peak':>7}  api_requests_total", flush=True)
    for index in range(1, args.scrapes + 1):
        started = time.monotonic()
        body = scrape(f"{url}/metrics", args.timeout + 5)
        print(f"{index:>6} {time.monotonic() - started:>7.2f} {rss_mb(pid):>7.1f} {rss_mb(pid, 'VmHWM'):>7.1f}  "
              f"{outcomes(body)}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
