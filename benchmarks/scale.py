"""What a collection and a scrape cost at scale, on scrape and in the background. Prints tables.

    .venv/bin/python benchmarks/scale.py [--scenarios S,M,L,L-quota] [--modes scrape,background]
                                         [--rounds 5] [--compare REV[,REV...]] [--quick]

Scenarios (10 % of the sessions active; 50 ms API latency; aws.max_concurrency 32; otherwise the default
configuration). On scrape, every scenario is scraped every 15 s, as Prometheus would (back to back, scrapes
would share collections: collection.min_interval_seconds):
- S: 1 application, 100 sessions; M: 10 applications, 1,000 sessions; L: 100 applications, 10,000;
- L-quota: L with the simulator throttling GetSession at 10 TPS (burst 10) as AWS would, the exporter's
  aws.rate_limits.GetSession at the same rate; scrapes with a 10 s timeout (on scrape), or
  collection.interval_seconds 15 (background); terminated sessions older than a minute
  are left out (discovery.terminated_session_max_age_seconds 60), so that the steady state shows in
  minutes, not after the one-time backlog of 9,000 final sessions (15 min at 10 TPS).
--quick runs S, M and M-quota (M under the same quota) with 3 rounds: about six minutes.

The simulator runs in this process (so that its quota, its record of which session each GetSession
fetched and the sessions' states can be read and changed), the exporter as a child process scraped
over HTTP with gzip and Prometheus' Accept header, its CPU and peak RSS read from /proc. Per scenario
and mode it prints:
- API calls per collection, by operation, beside the minimum: ListApplications pages + per
  application one page of active sessions and one of sessions created since the last listing (the
  sessions that start and end between two collections) + one GetSession per active session (under a
  quota: as many as the budget allows before the deadline);
- collection wall time (the exporter's emr_serverless_collection_duration_seconds) and scrape wall
  time beside the critical path: ListApplications pages one after another, then the ListSessions and
  GetSession calls at max_concurrency in flight: (pages + ceil((listings + gets) / concurrency)) x latency;
- exporter CPU per collection (on scrape: the scrape; in the background: collection, the variant scraped
  (OpenMetrics, gzip) rendered and gzipped, the scrapes served) and per refreshed session (GetSession answered);
- render time of a steady-state collection (OpenMetrics, incremental) beside prometheus-client's
  generic generate_latest, CPU time in this process over the same simulator;
- peak RSS, and emr_serverless_oldest_object_data_age_seconds of sessions (median and max over the scrapes);
- under a quota: how many collections until every active session was fetched once (the cold start),
  then the longest any went between two refreshes (in collections), beside the bound
  ceil(active / (rate x interval)) + 1; states fresh from listings (50 active sessions change state
  between two collections: how many of them are exported with a stale state afterwards); whether
  `up` stayed 1; GetSession calls AWS throttled.
--compare REV,... runs exporters of other revisions (``git archive``) beside this tree's, all at once
against one simulator, on-scrape mode only, their scrapes interleaved (ABBA), and prints medians and
ratios: for comparing a change interleaved against the one before.
Figures are medians of --rounds steady-state scrapes or collections (means over the run in the
background: CPU, calls). The machine has 2 shared cores: CPU and wall figures are noisy (see
docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import yaml
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emr_serverless_simulator import Fault, Simulator, Store, build_scenario  # noqa: E402
from exporter.config.schema import parse_config  # noqa: E402
from exporter.model.kinds import SESSIONS  # noqa: E402
from exporter.wiring import build_exposition, build_registry, build_runner  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
# What Prometheus 3 sends: OpenMetrics first.
PROMETHEUS_ACCEPT = (f"{OPENMETRICS};escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
                     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
API_LINE = re.compile(rb'operation="(\w+)",outcome="(\w+)"[^}]*\} (\S+)')
STATE_LINE = re.compile(rb'session_id="([^"]+)"[^}]*state="(\w+)"[^}]*\} 1\.0')
OPERATIONS = ("ListApplications", "ListSessions", "GetSession")
CHANGED_STATES = 50  # active sessions whose state changes between two collections (the quota scenarios)

CURL = shutil.which("curl")  # scrapes timed from outside this busy process (see Exporter.scrape)


@dataclass(frozen=True)
class Scenario:
    name: str
    applications: int
    per_application: int
    quota: float = 0.0  # GetSession requests per second AWS allows (burst as many); 0: no quota
    active_fraction: float = 0.1

    @property
    def sessions(self) -> int:
        return self.applications * self.per_application

    @property
    def active(self) -> int:
        return round(self.sessions * self.active_fraction)

    def interval(self, mode: str) -> float:
        """Seconds between scrapes (on scrape) or collections (in the background)."""
        if self.quota or mode == "scrape":
            return 15.0
        return {"S": 2.0, "M": 3.0}.get(self.name, 10.0)


SCENARIOS = {s.name: s for s in (
    Scenario("S", 1, 100), Scenario("M", 10, 100), Scenario("L", 100, 100),
    Scenario("L-quota", 100, 100, quota=10), Scenario("M-quota", 10, 100, quota=10),
)}
QUOTA_FINAL_MAX_AGE = 60.0
SCRAPE_TIMEOUT = 10.0  # Prometheus' default, sent in the header under a quota
WARM_UP_COLLECTIONS = 2  # background mode: not measured (the first fetches every final session once)


@dataclass
class Scrape:
    wall: float
    cpu: float  # exporter CPU seconds since the previous scrape
    calls: dict[tuple[str, str], float]
    up: bool
    oldest: float
    duration: float  # emr_serverless_collection_duration_seconds
    finished: float  # emr_serverless_last_collection_timestamp_seconds
    states: dict[str, str] | None = None


@dataclass
class Result:
    scenario: Scenario
    mode: str
    tree: str
    calls: dict[str, float]  # per collection, by operation (attempts, all outcomes)
    throttled: float  # per collection: GetSession answered ThrottlingException
    refreshed: float  # per collection: GetSession answered ok
    collection_wall: float
    scrape_wall: float
    scrape_wall_max: float
    cpu: float  # per collection
    rss_mb: float
    oldest: float
    oldest_max: float
    up: str  # "yes" if every scrape saw up 1, else how many did not
    collections: int
    quota: QuotaFigures | None = None
    render: tuple[float, float] | None = None  # CPU ms: incremental, generic


@dataclass
class QuotaFigures:
    covered_after: int | None  # collections until every active session was refreshed once (None: never)
    longest_gap: int  # collections, the longest any active session went without a refresh
    bound: int
    stale_states: int  # exported active sessions whose state is not the simulator's, after a change
    exported_active: int
    throttled_by_aws: int


# --- the simulator ------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """The simulator of one scenario, and what it saw."""

    scenario: Scenario
    latency_ms: float
    store: Store = field(init=False)
    simulator: Simulator = field(init=False)
    # (time.time(), session id) of each GetSession the quota admitted
    fetched: list[tuple[float, str]] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)  # session id: the state change_states set

    def __post_init__(self) -> None:
        s = self.scenario
        self.store = build_scenario("scale", applications=s.applications, sessions_per_application=s.per_application,
                                    active_fraction=s.active_fraction, seed=1)
        self.store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=0.001, match=self._record))
        if s.quota:
            self.store.set_throttle("GetSession", s.quota, s.quota)
        self.simulator = Simulator(self.store, port=0, latency_ms=self.latency_ms).start()

    def _record(self, params: Mapping[str, str]) -> bool:
        self.fetched.append((time.time(), params["sessionId"]))
        return False  # only watching

    def active(self) -> dict[str, tuple[str, str]]:
        """Active session id: (application id, state), as the simulator has them now."""
        found = {}
        for app_id in self.store.application_ids():
            for session_id in self.store.session_ids(app_id):
                session = self.store.session(app_id, session_id)
                if session is not None and not SESSIONS.is_final(session.state):
                    found[session_id] = (app_id, session.state)
        return found

    def change_states(self, count: int, seed: int = 1) -> None:
        """Flip ``count`` active sessions between IDLE and BUSY, as users starting and ending work would."""
        active = sorted(self.active().items())
        for session_id, (app_id, state) in random.Random(seed).sample(active, min(count, len(active))):
            self.changed[session_id] = "BUSY" if state == "IDLE" else "IDLE"  # and it stays so: no lifecycle
            self.store.set_session_state(app_id, session_id, self.changed[session_id])

    def close(self) -> None:
        self.simulator.stop()


# --- the exporter -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    """The exporter of ``tree`` as a child process."""

    def __init__(self, tree: Path, config: dict[str, object], workdir: Path) -> None:
        self.port = free_port()
        config_path = workdir / f"config-{self.port}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / f"exporter-{self.port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exporter", "--config.file", str(config_path), "--web.listen-address",
                 f"127.0.0.1:{self.port}", "--log.level", "warn"],
                env={**os.environ, **CREDENTIALS, "PYTHONPATH": str(tree)}, cwd=tree, stderr=log,
            )
        self.started = time.time()
        self._cpu_mark = 0.0

    def wait_ready(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the exporter exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as response:
                    if response.status == 200:
                        self._cpu_mark = self.cpu_seconds()
                        return time.time()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the exporter did not become ready")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def scrape(self, timeout_header: float | None = None, states: bool = False) -> Scrape:
        headers = {"Accept-Encoding": "gzip", "Accept": PROMETHEUS_ACCEPT}
        if timeout_header:
            headers["X-Prometheus-Scrape-Timeout-Seconds"] = f"{timeout_header:g}"
        url = f"http://127.0.0.1:{self.port}/metrics"
        if CURL:
            # Timed by curl in a process of its own: this process also hosts the simulator, whose busy handler
            # threads delay every GIL re-acquisition of an in-process client (a background L scrape read
            # 1.85 s median from here and 0.014 s from curl, the same exporter at the same time).
            with tempfile.NamedTemporaryFile() as body_file:
                timed = subprocess.run(
                    [CURL, "-sS", "--max-time", "120", "-o", body_file.name, "-w", "%{time_total}",
                     *(arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")), url],
                    capture_output=True, text=True, check=True)
                wall = float(timed.stdout)
                compressed = Path(body_file.name).read_bytes()
        else:
            began = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as response:
                compressed = response.read()
            wall = time.perf_counter() - began
        cpu = self.cpu_seconds()
        spent, self._cpu_mark = cpu - self._cpu_mark, cpu
        body = zlib.decompress(compressed, 16 + zlib.MAX_WBITS)  # releases the GIL: the simulator goes on
        calls = {(op.decode(), outcome.decode()): float(value)
                 for op, outcome, value in API_LINE.findall(section(body, b"emr_serverless_api_requests_total"))}
        return Scrape(
            wall=wall, cpu=spent, calls=calls, up=sample(body, b"emr_serverless_up") == 1.0,
            oldest=sample(body, b"emr_serverless_oldest_object_data_age_seconds"),  # sessions: the first kind
            duration=sample(body, b"emr_serverless_collection_duration_seconds"),
            finished=sample(body, b"emr_serverless_last_collection_timestamp_seconds"),
            states={sid.decode(): state.decode()
                    for sid, state in STATE_LINE.findall(section(body, b"emr_serverless_session_state"))}
            if states else None,
        )

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        warnings = self.log.read_text().splitlines()
        if warnings:  # why a collection failed, for the reader of the table
            print(f"  exporter log ({len(warnings)} lines): " + "\n    ".join(warnings[:5]), file=sys.stderr)


def section(body: bytes, name: bytes) -> bytes:
    """The sample lines of one family (a family's samples are contiguous), found without a full parse."""
    start = body.find(b"\n" + name + b"{")
    if start < 0:
        return b""
    end = body.find(b"\n#", start + 1)
    return body[start:end if end >= 0 else len(body)]


def sample(body: bytes, name: bytes) -> float:
    lines = section(body, name)
    return float(lines.split(b"\n", 2)[1].rsplit(b" ", 1)[1]) if lines else float("nan")


def exporter_config(scenario: Scenario, mode: str, url: str, concurrency: int) -> dict[str, object]:
    collection: dict[str, float] = {"timeout_seconds": 25}
    discovery: dict[str, float] = {}
    if scenario.quota:
        collection["timeout_seconds"] = SCRAPE_TIMEOUT if mode == "scrape" else scenario.interval(mode) - 1
    if mode == "background":
        collection["interval_seconds"] = scenario.interval(mode)
    aws: dict[str, object] = {"max_concurrency": concurrency}
    if scenario.quota:
        aws["rate_limits"] = {"GetSession": {"requests_per_second": scenario.quota, "burst": int(scenario.quota)}}
        # The steady state: terminated sessions older than a minute are neither fetched nor exported, so
        # the one-time backlog of the scenario's 9,000 (15 min at 10 TPS) does not hide it.
        discovery["terminated_session_max_age_seconds"] = QUOTA_FINAL_MAX_AGE
    return {"targets": [{"region": "us-east-1", "endpoint_url": url, "name": "bench"}], "aws": aws,
            "collection": collection, "discovery": discovery}


# --- measuring ----------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def deltas(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}


def by_operation(calls: dict[tuple[str, str], float]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (operation, _), count in calls.items():
        totals[operation] += count
    return dict(totals)


def on_scrape(bench: Bench, trees: list[tuple[str, Path]], rounds: int, concurrency: int,
              workdir: Path) -> list[Result]:
    """Every tree's exporter at once; scrapes interleaved ABBA, one at a time (the others idle meanwhile)."""
    scenario = bench.scenario
    config = exporter_config(scenario, "scrape", bench.simulator.url, concurrency)
    exporters = [Exporter(tree, config, workdir) for _, tree in trees]
    try:
        ready = [exporter.wait_ready() for exporter in exporters]
        header = SCRAPE_TIMEOUT if scenario.quota else None
        scrapes: list[list[Scrape]] = [[] for _ in exporters]
        # When each collection had ended: the first at start (the warm-up), then one per scrape.
        boundaries = [[exporter.started, moment] for exporter, moment in zip(exporters, ready, strict=True)]
        totals = [exporter.scrape(header).calls for exporter in exporters]  # the first render, not measured
        for moments in boundaries:
            moments.append(time.time())
        count = rounds
        if scenario.quota:  # enough collections to see every session refreshed, and a state change
            count = max(rounds, quota_collections(scenario, SCRAPE_TIMEOUT - 1, "scrape"))
        checked: list[Scrape | None] = [None for _ in exporters]
        began = time.monotonic()
        for round_index in range(count):
            order = list(range(len(exporters)))
            if round_index % 2:
                order.reverse()
            time.sleep(max(0.0, scenario.interval("scrape") - (time.monotonic() - began)))
            began = time.monotonic()
            check = bool(scenario.quota) and round_index == 3
            if check:
                bench.change_states(CHANGED_STATES)
            for index in order:
                scrape = exporters[index].scrape(header, states=check)
                scrape.calls, totals[index] = deltas(totals[index], scrape.calls), scrape.calls
                scrapes[index].append(scrape)
                boundaries[index].append(time.time())
                if check:
                    checked[index] = scrape
            print(f"  {scenario.name} scrape {round_index + 1}/{count}: "
                  + ", ".join(f"{s[-1].wall:.2f}s {s[-1].cpu:.2f} CPU" for s in scrapes), file=sys.stderr)
        active = bench.active()
        results = []
        for index, (name, _) in enumerate(trees):
            quota = None
            if scenario.quota and len(trees) == 1:
                quota = quota_figures(bench, active, boundaries[index], checked[index], "scrape")
            results.append(summarize(scenario, "scrape", name, scrapes[index], len(scrapes[index]),
                                     exporters[index].peak_rss_mb(), quota))
        return results
    finally:
        for exporter in exporters:
            exporter.close()


def in_background(bench: Bench, rounds: int, concurrency: int, workdir: Path) -> Result:
    """This tree's exporter collecting every interval; scraped three times an interval."""
    scenario = bench.scenario
    interval = scenario.interval("background")
    exporter = Exporter(ROOT, exporter_config(scenario, "background", bench.simulator.url, concurrency), workdir)
    try:
        exporter.wait_ready()
        count = rounds
        if scenario.quota:
            count = max(rounds, quota_collections(scenario, interval - 2, "background"))
        first = exporter.scrape()
        seen = [first]  # the first scrape after each collection
        scrapes = [first]
        cpu_at = [exporter.cpu_seconds()]
        checked: Scrape | None = None
        changed_after: float | None = None
        while len(seen) < count + WARM_UP_COLLECTIONS:
            time.sleep(interval / 3)
            scrape = exporter.scrape(states=changed_after is not None and checked is None)
            scrapes.append(scrape)
            if scrape.finished == seen[-1].finished:
                continue
            seen.append(scrape)
            cpu_at.append(exporter.cpu_seconds())
            if scrape.states is not None and began_after(scrape, changed_after):
                checked = scrape
            if scenario.quota and changed_after is None and len(seen) == 4:
                bench.change_states(CHANGED_STATES)
                changed_after = time.time()
            print(f"  {scenario.name} background collection {len(seen) - 1}/{count + WARM_UP_COLLECTIONS - 1}: "
                  f"{scrape.duration:.2f}s, scrape {scrape.wall * 1000:.0f} ms", file=sys.stderr)
        if scenario.quota and checked is None:  # wait for one collection that began after the change
            while checked is None:
                time.sleep(interval / 3)
                scrape = exporter.scrape(states=True)
                if began_after(scrape, changed_after):
                    checked = scrape
        # Per collection: what changed between the first scrape after the second collection (the first
        # ones fetch every final session once) and the last. A scrape slower than the interval misses
        # collections: count them by their ListApplications pages.
        steady = WARM_UP_COLLECTIONS if not scenario.quota else 1
        calls = deltas(seen[steady].calls, seen[-1].calls)
        collections = max(1, round(by_operation(calls).get("ListApplications", 0)
                                   / minimum_calls(scenario)["ListApplications"]))
        per_collection = [Scrape(wall=s.wall, cpu=(cpu_at[-1] - cpu_at[steady]) / collections, up=s.up,
                                 oldest=s.oldest, duration=s.duration, finished=s.finished,
                                 calls={k: v / collections for k, v in calls.items()}) for s in seen[steady + 1:]]
        result = summarize(scenario, "background", "this tree", per_collection, collections, exporter.peak_rss_mb(),
                           None)
        # Scrape wall time and oldest data over every scrape since, not only the first after each collection.
        since = scrapes[scrapes.index(seen[steady]) + 1:]
        result.scrape_wall = median([s.wall for s in since])
        result.scrape_wall_max = max(s.wall for s in since)
        result.oldest = median([s.oldest for s in since])
        result.oldest_max = max(s.oldest for s in since)
        result.up = up_text(since)
        if scenario.quota:
            boundaries = [exporter.started] + [s.finished for s in seen]
            result.quota = quota_figures(bench, bench.active(), boundaries, checked, "background")
        return result
    finally:
        exporter.close()


def began_after(scrape: Scrape, moment: float | None) -> bool:
    """Whether the collection this scrape shows began after ``moment``."""
    return moment is not None and scrape.finished - scrape.duration > moment


def up_text(scrapes: list[Scrape]) -> str:
    down = sum(not s.up for s in scrapes)
    return "yes" if not down else f"no: 0 in {down} of {len(scrapes)}"


def summarize(scenario: Scenario, mode: str, tree: str, scrapes: list[Scrape], collections: int, rss: float,
              quota: QuotaFigures | None) -> Result:
    operations = {op: median([by_operation(s.calls).get(op, 0.0) for s in scrapes]) for op in OPERATIONS}
    return Result(
        scenario=scenario, mode=mode, tree=tree, calls=operations,
        throttled=median([s.calls.get(("GetSession", "ThrottlingException"), 0.0) for s in scrapes]),
        refreshed=median([s.calls.get(("GetSession", "ok"), 0.0) for s in scrapes]),
        collection_wall=median([s.duration for s in scrapes]), scrape_wall=median([s.wall for s in scrapes]),
        scrape_wall_max=max(s.wall for s in scrapes), cpu=median([s.cpu for s in scrapes]), rss_mb=rss,
        oldest=median([s.oldest for s in scrapes]), oldest_max=max(s.oldest for s in scrapes),
        up=up_text(scrapes), collections=collections, quota=quota,
    )


def quota_collections(scenario: Scenario, window: float, mode: str) -> int:
    """Enough collections to fetch every active session once (and the final ones of the last minute),
    then to see each refreshed again within the bound."""
    first = math.ceil(scenario.active / (scenario.quota * window)) + 1
    return first + math.ceil(scenario.active / (scenario.quota * scenario.interval(mode))) + 2


def quota_figures(bench: Bench, active: dict[str, tuple[str, str]], boundaries: list[float], checked: Scrape | None,
                  mode: str) -> QuotaFigures:
    """Which collection fetched each active session: ``boundaries`` are when collections 1, 2, ... ended
    (boundaries[0] the start); a fetch belongs to the first collection that ended after it."""
    scenario = bench.scenario
    collections = len(boundaries) - 1
    fetched_in: dict[str, list[int]] = defaultdict(list)
    edges = boundaries[1:]
    for moment, session_id in bench.fetched:
        index = next((i for i, edge in enumerate(edges) if moment <= edge), None)
        if index is not None and session_id in active:
            fetched_in[session_id].append(index + 1)
    covered: set[str] = set()
    covered_after = None
    for collection in range(1, collections + 1):
        covered |= {sid for sid, seen in fetched_in.items() if collection in seen}
        if len(covered) == len(active):
            covered_after = collection
            break
    # Once every session was fetched (the cold start's backlog is over): the longest between two
    # refreshes, and since the last one to the end of the run (a lower bound of the next gap).
    longest = 0
    start = covered_after or collections
    for session_id in active:
        seen = [c for c in sorted(set(fetched_in.get(session_id, []))) if c >= start]
        if not seen:
            longest = max(longest, collections - start + 1)
            continue
        longest = max(longest, collections - seen[-1], *(b - a for a, b in itertools.pairwise(seen)))
    bound = math.ceil(scenario.active / (scenario.quota * scenario.interval(mode))) + 1
    stale = exported = 0
    if checked is not None and checked.states is not None:
        for session_id, state in bench.changed.items():
            exported_state = checked.states.get(session_id)
            if exported_state is not None:
                exported += 1
                stale += exported_state != state
    return QuotaFigures(covered_after=covered_after, longest_gap=longest, bound=bound, stale_states=stale,
                        exported_active=exported, throttled_by_aws=bench.store.throttled["GetSession"])


def render_times(bench: Bench, rounds: int, concurrency: int) -> tuple[float, float]:
    """CPU ms to render a steady-state collection in OpenMetrics: incremental and generic, in this process."""
    config = parse_config(yaml.safe_dump({
        "targets": [{"region": "us-east-1", "endpoint_url": bench.simulator.url}],
        "aws": {"max_concurrency": concurrency},
        "collection": {"timeout_seconds": 300, "min_interval_seconds": 0},  # each collect() below collects
    }))
    runner = build_runner(config)
    fast, generic = [], []
    try:
        exposition, registry = build_exposition(runner, config), build_registry(runner, config)
        runner.collect()
        exposition.render_parts(OPENMETRICS)  # the first render fills the store
        for _ in range(rounds):
            runner.collect()
            began = time.process_time()
            exposition.render_parts(OPENMETRICS)
            fast.append(time.process_time() - began)
            began = time.process_time()
            generate_openmetrics(registry)  # type: ignore[no-untyped-call]
            generic.append(time.process_time() - began)
    finally:
        runner.close()
    return median(fast) * 1000, median(generic) * 1000


# --- tables -------------------------------------------------------------------------------------------------


def minimum_calls(scenario: Scenario, mode: str = "scrape") -> dict[str, int]:
    per_app_active = math.ceil(scenario.active / scenario.applications)
    gets = scenario.active
    if scenario.quota:  # the budget: a burst, then the rate until the deadline (less the last call's room)
        window = SCRAPE_TIMEOUT - 0.5 if mode == "scrape" else scenario.interval(mode) - 1
        gets = min(gets, int(scenario.quota * (1 + window - 0.5)))
    return {"ListApplications": math.ceil(scenario.applications / 50),
            "ListSessions": scenario.applications * (max(1, math.ceil(per_app_active / 50)) + 1),
            "GetSession": gets}


def critical_path(scenario: Scenario, latency_ms: float, concurrency: int, gets: float) -> float:
    minimum = minimum_calls(scenario)
    rounds = minimum["ListApplications"] + math.ceil((minimum["ListSessions"] + gets) / concurrency)
    return rounds * latency_ms / 1000


def print_tables(results: list[Result], latency_ms: float, concurrency: int) -> None:
    print(f"\nlatency {latency_ms:g} ms per API call, max_concurrency {concurrency}; "
          "medians over the steady-state scrapes (on scrape) or collections (background)\n")
    print("| scenario | mode | sessions (active) | API calls / collection: LA + LS + GS (minimum) "
          "| collection s (critical path) | scrape s: median, max | CPU s / collection "
          "| CPU ms / refreshed session | render ms: incremental / generic | peak RSS MB "
          "| oldest data s: median, max | up 1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        s = r.scenario
        minimum = minimum_calls(s, r.mode)
        calls = " + ".join(f"{r.calls[op]:,.0f}" for op in OPERATIONS)
        least = " + ".join(f"{minimum[op]:,}" for op in OPERATIONS)
        path = critical_path(s, latency_ms, concurrency, r.refreshed)
        interval = f", every {s.interval(r.mode):g} s" if r.mode == "background" or s.quota else ""
        render = f"{r.render[0]:,.0f} / {r.render[1]:,.0f} ({r.render[1] / r.render[0]:.1f}x)" if r.render else "-"
        per_session = r.cpu / r.refreshed * 1000 if r.refreshed else float("nan")
        print(f"| {s.name} | {'on scrape' if r.mode == 'scrape' else 'background'}{interval} "
              f"| {s.sessions:,} ({s.active:,}) | {calls} ({least}) "
              f"| {r.collection_wall:.2f} ({path:.2f}; {r.collection_wall / path:.2f}x) "
              f"| {r.scrape_wall:.3f}, {r.scrape_wall_max:.3f} | {r.cpu:.2f} | {per_session:.2f} | {render} "
              f"| {r.rss_mb:.0f} | {r.oldest:.1f}, {r.oldest_max:.1f} | {r.up} |")
    quota = [r for r in results if r.quota]
    if quota:
        print("\nUnder the GetSession quota (the bound: ceil(active / (rate x interval)) + 1 collections):\n")
        print("| scenario | mode | GetSession / collection: ok (throttled by AWS) | collections until every "
              "active session was fetched (cold start) | then the longest between two refreshes, collections "
              f"(bound) | {CHANGED_STATES} sessions changed state: exported stale (exported) | up 1 |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in quota:
            q = r.quota
            assert q is not None
            print(f"| {r.scenario.name} | {'on scrape' if r.mode == 'scrape' else 'background'}, every "
                  f"{r.scenario.interval(r.mode):g} s | {r.refreshed:.0f} ({q.throttled_by_aws} in all) "
                  f"| {q.covered_after or 'never'} of {r.collections} | {q.longest_gap} ({q.bound}) "
                  f"| {q.stale_states} ({q.exported_active}) | {r.up} |")


def print_comparison(results: list[Result]) -> None:
    base = results[-1]
    print(f"\n{base.scenario.name} on scrape, exporters side by side, scrapes interleaved; ratios against "
          f"{base.tree}\n")
    print("| exporter | CPU s / scrape | CPU ms / refreshed session | scrape s | collection s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        per_session = r.cpu / r.refreshed * 1000 if r.refreshed else float("nan")
        print(f"| {r.tree} | {r.cpu:.2f} ({r.cpu / base.cpu:.2f}x) | {per_session:.2f} "
              f"| {r.scrape_wall:.2f} ({r.scrape_wall / base.scrape_wall:.2f}x) "
              f"| {r.collection_wall:.2f} ({r.collection_wall / base.collection_wall:.2f}x) | {r.rss_mb:.0f} |")


# --- main ---------------------------------------------------------------------------------------------------


def revision_tree(revision: str, into: Path) -> Path:
    """``exporter/`` as it was at ``revision``, extracted under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "exporter"],
                             capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenarios", default="S,M,L,L-quota")
    parser.add_argument("--modes", default="scrape,background")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--compare", default="", help="git revisions whose exporters run beside this tree's")
    parser.add_argument("--quick", action="store_true", help="S, M and M-quota, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.scenarios, args.rounds = "S,M,M-quota", 3
    os.environ.update(CREDENTIALS)
    results: list[Result] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        trees = [(rev, revision_tree(rev, workdir / f"rev-{rev}")) for rev in args.compare.split(",") if rev]
        trees.append(("this tree", ROOT))
        for name in args.scenarios.split(","):
            scenario = SCENARIOS[name]
            for mode in args.modes.split(","):
                bench = Bench(scenario, args.latency_ms)
                try:
                    if mode == "scrape":
                        found = on_scrape(bench, trees, args.rounds, args.concurrency, workdir)
                        if args.compare:
                            print_comparison(found)
                        results.append(found[-1])
                    else:
                        results.append(in_background(bench, args.rounds, args.concurrency, workdir))
                    if not scenario.quota and mode == "scrape" and not args.compare:
                        results[-1].render = render_times(bench, min(args.rounds, 3), args.concurrency)
                finally:
                    bench.close()
    print_tables(results, args.latency_ms, args.concurrency)
    print(f"\n{time.strftime('%Y-%m-%d', time.gmtime())}, {time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
