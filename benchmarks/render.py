"""What rendering /metrics costs at scale, old path against new, text and OpenMetrics. Prints tables.

    .venv/bin/python benchmarks/render.py [--sessions 10000] [--active 1000] [--rounds 5] [--steps 6]
                                          [--baseline 5f8ee71]

The scale scenario is built directly as exporter.model.session structs, as collection hands them over: 100
applications, --sessions sessions of which --active are IDLE/BUSY (the rest TERMINATED, three tags
each). A steady-state step is one collection later: every active session is a new object with new
updatedAt, utilization and idleSince, every final one is the same as before.

Each path runs in its own process, the paths interleaved, --rounds times; figures are medians of CPU
time (``time.process_time``: the machine is shared, wall time would measure the neighbours):
- old: the incremental exposition of --baseline (prometheus-client's encoder, cut back per session),
  from ``git archive`` of that commit;
- new: this tree's exposition (the session store and the direct line formatter);
- new + gc.freeze(): the same, with ``gc.freeze()`` once the process has started (imports, a boto3
  client), before the first collection, where ``exporter.cli`` calls it;
- generic: prometheus-client's ``generate_latest`` over every family (what both must equal).
First render: an empty cache or store. Steady: the mean over --steps steps, each a new collection
rendered in one format (text and OpenMetrics alternate), with the garbage collector's share (its
time in those renders, and full collections per render). gzip: the steady body as the web layer
compressed it before (level 6, piece by piece) and does now (level 1, in 64 KiB chunks).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEXT = ""
OPENMETRICS = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"  # as Prometheus 3 asks
ACCOUNT = "123456789012"
OWNERS = ("alice", "bob", "chen", "dana", "erik", "fatima")
TEAMS = ("data-eng", "ml-platform", "finance", "growth")
PATHS = ("old", "new", "new+freeze", "generic")
GZIP = ((6, 0), (1, 0), (1, 64 * 1024))  # (level, chunk bytes): 0 is piece by piece


# --- the scenario ---------------------------------------------------------------------------------------


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _id(rng: random.Random) -> str:
    return "00" + "".join(rng.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(15))


class Scenario:
    """The scale scenario's sessions as exporter.model.session structs; ``collect()`` is one collection later."""

    def __init__(self, sessions: int, active: int, applications: int = 100, seed: int = 1) -> None:
        from exporter.model.session import Application, Session, convert

        self._convert, self._session = convert, Session
        rng = random.Random(seed)
        self.now = 1_764_000_000.0
        self.applications: list[Any] = []
        self._wires: list[dict[str, Any]] = []
        active_indexes = set(rng.sample(range(sessions), active))
        per_application = -(-sessions // applications)
        for i in range(sessions):
            if i % per_application == 0:
                app_id = _id(rng)
                app_arn = f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/{app_id}"
                self.applications.append(convert({
                    "id": app_id, "arn": app_arn, "name": f"scale-app-{len(self.applications):04d}",
                    "state": "STARTED", "type": "Spark", "releaseLabel": "emr-7.2.0", "architecture": "X86_64",
                    "createdAt": _time(self.now - 90 * 86400), "updatedAt": _time(self.now - 86400),
                }, Application))
            owner, session_id = OWNERS[i % len(OWNERS)], _id(rng)
            wire: dict[str, Any] = {
                "applicationId": app_id, "sessionId": session_id, "arn": f"{app_arn}/sessions/{session_id}",
                "name": f"session-{i}", "releaseLabel": "emr-7.2.0",
                "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/emr-exec",
                "createdBy": f"arn:aws:iam::{ACCOUNT}:user/{owner}", "idleTimeoutMinutes": 60,
                "tags": {"team": TEAMS[i % len(TEAMS)], "owner": owner, "env": rng.choice(("prod", "dev"))},
            }
            if i in active_indexes:
                created = self.now - rng.uniform(600, 3 * 3600)
                wire.update(state=rng.choice(("IDLE", "BUSY")), createdAt=_time(created),
                            startedAt=_time(created + 40), vcpus=rng.choice((4.0, 8.0)))
            else:
                ended = self.now - rng.uniform(0, 1800)
                created = ended - rng.uniform(600, 1500)
                hours = (ended - created - 40) / 3600
                vcpus = rng.choice((2.0, 4.0))
                used = {"vCPUHour": round(vcpus * hours, 6), "memoryGBHour": round(vcpus * 4 * hours, 6),
                        "storageGBHour": round(20 * hours, 6)}
                wire.update(state="TERMINATED", createdAt=_time(created), startedAt=_time(created + 40),
                            endedAt=_time(ended), updatedAt=_time(ended), totalResourceUtilization=used,
                            billedResourceUtilization=used, totalExecutionDurationSeconds=int(ended - created - 40))
            self._wires.append(wire)
        # Final sessions as the exporter's memory holds them: structs only (their wire dicts go).
        self._final = {i: convert(w, Session) for i, w in enumerate(self._wires) if w["state"] == "TERMINATED"}
        self._wires = [{} if i in self._final else wire for i, wire in enumerate(self._wires)]

    def _active(self, wire: dict[str, Any]) -> Any:
        wire = dict(wire)
        vcpus = wire.pop("vcpus")
        started = wire["startedAt"].timestamp()
        hours = (self.now - started) / 3600
        used = {"vCPUHour": round(vcpus * hours, 6), "memoryGBHour": round(vcpus * 4 * hours, 6),
                "storageGBHour": round(20 * hours, 6)}
        wire.update(updatedAt=_time(self.now - 1), totalResourceUtilization=used, billedResourceUtilization=used,
                    totalExecutionDurationSeconds=int(self.now - started))
        if wire["state"] == "IDLE":
            wire["idleSince"] = _time(self.now - 45)
        return self._convert(wire, self._session)

    def collect(self) -> list[Any]:
        from exporter.collect.target import TargetIdentity, TargetResult

        self.now += 30
        sessions = [self._final.get(i) or self._active(wire) for i, wire in enumerate(self._wires)]
        if "objects" in TargetResult.__dataclass_fields__:  # the tree measured may predate kinds (--compare)
            from exporter.model.kinds import SESSIONS

            objects: dict[str, Any] = {"objects": {SESSIONS: sessions}}
        else:
            objects = {"sessions": sessions}
        return [TargetResult(
            identity=TargetIdentity("prod", "us-east-1", ACCOUNT), applications=self.applications,
            **objects, errors=[], started_at=self.now - 2, finished_at=self.now, last_success=self.now,
            api_calls={("GetSession", "ok"): len(self._wires), ("ListSessions", "ok"): len(self.applications)},
        )]


# --- one path in one process ------------------------------------------------------------------------------


def _cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.process_time()
    result = work()
    return (time.process_time() - began) * 1000, result


def _gzip(parts: list[bytes], level: int, chunk: int) -> list[bytes]:
    """As the web layer compresses: piece by piece (chunk 0, before) or joined into chunks (now). A copy of
    exporter.render.exposition.gzip_parts/chunks on purpose: the worker also runs old trees, which lack them."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if chunk:
        joined: list[bytes] = []
        batch: list[bytes] = []
        size = 0
        for part in parts:
            batch.append(part)
            size += len(part)
            if size >= chunk:
                joined.append(compressor.compress(b"".join(batch)))
                batch, size = [], 0
        compressed = [*joined, compressor.compress(b"".join(batch))]
    else:
        compressed = [compressor.compress(part) for part in parts]
    compressed.append(compressor.flush())
    return compressed


def worker(path: str, sessions: int, active: int, steps: int) -> dict[str, Any]:
    import boto3
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    from exporter.collect.runner import CollectionRunner
    from exporter.config.schema import parse_config

    try:
        from exporter.wiring import build_exposition, build_registry
    except ImportError:  # a tree from before exporter/wiring.py (--baseline)
        from exporter.cli import build_exposition, build_registry  # type: ignore[attr-defined,no-redef]

    boto3.client("emr-serverless", region_name="us-east-1")  # the heap of a started exporter
    if path == "new+freeze":
        gc.freeze()  # where exporter.cli does it: started, nothing collected yet
    scenario = Scenario(sessions, active)
    config = parse_config("targets: [{region: us-east-1, name: prod}]\n")
    runner = CollectionRunner([], timeout_seconds=1)
    runner.latest = scenario.collect()
    figures: dict[str, Any] = {}

    def renderer() -> Callable[[str], list[bytes]]:
        """A fresh exposition (or registry): nothing rendered yet."""
        if path == "generic":
            registry = build_registry(runner, config)
            return lambda accept: [(generate_openmetrics if accept else generate_latest)(registry)]
        exposition = build_exposition(runner, config)
        return lambda accept: exposition.render_parts(accept)[0]

    for name, accept in (("text", TEXT), ("openmetrics", OPENMETRICS)):
        render = renderer()
        figures[f"first {name}"] = _cpu(lambda: render(accept))[0]  # noqa: B023 (called at once)
    render = renderer()  # the steady state: both formats rendered once
    for accept in (TEXT, OPENMETRICS):
        render(accept)
    collections = [0]
    gc_ms = [0.0]
    began = [0.0]

    def gc_callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.process_time()
        else:
            gc_ms[0] += (time.process_time() - began[0]) * 1000
            collections[0] += info["generation"] == 2

    gc.callbacks.append(gc_callback)
    steady: dict[str, list[float]] = {"text": [], "openmetrics": []}
    parts: list[bytes] = []
    for step in range(steps):
        runner.latest = scenario.collect()
        name, accept = ("text", TEXT) if step % 2 == 0 else ("openmetrics", OPENMETRICS)
        elapsed, parts = _cpu(lambda: render(accept))  # noqa: B023 (called at once)
        steady[name].append(elapsed)
    gc.callbacks.remove(gc_callback)
    for name, times in steady.items():
        figures[f"steady {name}"] = statistics.fmean(times)  # the mean: GC's full collections are rare and long
    figures["GC ms"] = gc_ms[0] / steps
    figures["full GCs"] = collections[0] / steps
    figures["body MB"] = sum(map(len, parts)) / 1e6
    figures["pieces"] = len(parts)
    for level, chunk in GZIP:
        elapsed, compressed = _cpu(lambda: _gzip(parts, level, chunk))  # noqa: B023 (called at once)
        figures[f"gzip {level} {chunk}"] = elapsed
        figures[f"gzip {level} {chunk} MB"] = sum(map(len, compressed)) / 1e6
    figures["peak RSS MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


# --- the parent -------------------------------------------------------------------------------------------


def baseline_tree(revision: str, into: Path) -> Path:
    """``exporter/`` as it was at ``revision``, extracted under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "exporter"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_worker(path: str, tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--worker", path, "--sessions", str(args.sessions),
               "--active", str(args.active), "--steps", str(args.steps)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=tree).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def rounds(args: argparse.Namespace, old_tree: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for round_index in range(args.rounds):
        paths = args.paths.split(",")
        order = paths if round_index % 2 == 0 else paths[::-1]
        for path in order:
            yield path, run_worker(path, old_tree if path == "old" else ROOT, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--baseline", default="5f8ee71", help="the commit whose exposition is the old path")
    parser.add_argument("--paths", default=",".join(PATHS), help="which paths to run, comma-separated")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.sessions, args.active, args.steps)))
        return
    results: dict[str, list[dict[str, Any]]] = {path: [] for path in args.paths.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = baseline_tree(args.baseline, Path(tmp))
        for path, figures in rounds(args, old_tree):
            results[path].append(figures)
            print(f"  {path}: " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()), file=sys.stderr)

    def median(path: str, key: str) -> float:
        return float(statistics.median(figures[key] for figures in results[path]))

    print(f"\n{args.sessions:,} sessions ({args.active:,} active), {args.rounds} interleaved rounds, "
          f"{args.steps} steady steps each; CPU ms, medians\n")
    print("| path | first render text | first render OpenMetrics | steady text | steady OpenMetrics "
          "| of which GC (full GCs / render) | gzip 6 by piece ms (MB) | gzip 1 by piece ms (MB) "
          "| gzip 1 by 64 KiB ms (MB) | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    labels = {"old": f"old ({args.baseline}: prometheus-client encoder, cut per session)",
              "new": "new (session store, direct lines)", "new+freeze": "new + gc.freeze() after start",
              "generic": "generic generate_latest"}
    for path in results:
        print(f"| {labels[path]} | {median(path, 'first text'):,.0f} | {median(path, 'first openmetrics'):,.0f} "
              f"| {median(path, 'steady text'):,.0f} | {median(path, 'steady openmetrics'):,.0f} "
              f"| {median(path, 'GC ms'):,.0f} ({median(path, 'full GCs'):.2f}) "
              + "".join(f"| {median(path, f'gzip {level} {chunk}'):,.0f} "
                        f"({median(path, f'gzip {level} {chunk} MB'):.2f}) " for level, chunk in GZIP)
              + f"| {median(path, 'peak RSS MB'):,.0f} |")
    last = "new" if "new" in results else list(results)[-1]
    print(f"\nbody {median(last, 'body MB'):.1f} MB in {median(last, 'pieces'):,.0f} pieces")


if __name__ == "__main__":
    main()
