"""Where the exporter's CPU goes during on-scrape collections at scale: py-spy over the exporter process.

    .venv/bin/pip install py-spy    # not a dependency of the project
    .venv/bin/python benchmarks/profile_scrape.py [--scenario L] [--scrapes 5] [--top 40] [--raw out.txt]

Runs the scenario's simulator (in this process) and the exporter (a child, as benchmarks/scale.py
does), lets it finish its first collection and render, then samples the exporter with py-spy (only the
thread holding the GIL, 200 Hz: the process is GIL-bound) while it is scraped --scrapes times. Prints the
share of samples
per function: self (the function was on top) and inclusive (anywhere on the stack), and per area
(botocore's serialising, signing, sending, parsing, event hooks; urllib3 and http.client; rendering;
gzip; the exporter's own collection code).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import ROOT, SCENARIOS, Bench, Exporter, exporter_config

# First match wins: a sample is charged to the area of the innermost frame that names one.
AREAS = (
    ("gzip (web)", ("exposition.py:gzip_parts",)),
    ("render: session store, line format", ("series.py", "lineformat.py", "exposition.py", "metrics.py")),
    ("botocore: parse response", ("botocore/parsers.py",)),
    ("botocore: sign (SigV4)", ("botocore/auth.py", "botocore/signers.py")),
    ("botocore: serialize request", ("botocore/serialize.py", "botocore/validate.py")),
    ("botocore: endpoint resolution", ("botocore/regions.py", "botocore/endpoint_provider.py")),
    ("botocore: event hooks", ("botocore/hooks.py", "botocore/handlers.py", "botocore/utils.py")),
    ("urllib3 / http.client / socket", ("urllib3/", "http/client.py", "socket.py", "ssl.py", "selectors.py")),
    ("botocore: other", ("botocore/",)),
    ("msgspec model", ("model.py",)),
    ("collection, memory, workers", ("collection.py", "memory.py", "workers.py", "aws.py", "ratelimit.py")),
    ("HTTP serving", ("http_server.py", "web.py", "wsgiref")),
    ("threading, queue", ("threading.py", "queue.py")),
)


def area(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in AREAS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", default="L")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--raw", help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    py_spy = Path(sys.executable).parent / "py-spy"
    bench = Bench(SCENARIOS[args.scenario], args.latency_ms)
    with tempfile.TemporaryDirectory() as tmp:
        exporter = Exporter(ROOT, exporter_config(bench.scenario, "scrape", bench.simulator.url, args.concurrency),
                            Path(tmp))
        try:
            exporter.wait_ready()
            exporter.scrape()  # the first render
            raw = Path(args.raw) if args.raw else Path(tmp) / "raw.txt"
            spy = subprocess.Popen([str(py_spy), "record", "--pid", str(exporter.process.pid), "--rate", "200",
                                    "--format", "raw", "--output", str(raw), "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)  # py-spy attaches
            cpu = 0.0
            for _ in range(args.scrapes):
                cpu += exporter.scrape().cpu
            spy.send_signal(2)
            spy.wait(60)
            stacks: Counter[tuple[str, ...]] = Counter()
            for line in raw.read_text().splitlines():
                folded, _, samples = line.rpartition(" ")
                stacks[tuple(folded.split(";"))] += int(samples)
        finally:
            exporter.close()
            bench.close()
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [frame for frame in stack if not frame.startswith("process ") and not frame.startswith("thread ")]
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        areas[area(frames)] += count
    print(f"{args.scenario}: {args.scrapes} scrapes, exporter CPU {cpu:.2f} s, {total:,} samples of active threads\n")
    print("| area | share of samples |\n| --- | --- |")
    for name, count in areas.most_common():
        print(f"| {name} | {count / total:.1%} |")
    print("\n| function (self) | share |\n| --- | --- |")
    for frame, count in own.most_common(args.top):
        print(f"| {frame} | {count / total:.1%} |")
    print("\n| function (inclusive) | share |\n| --- | --- |")
    for frame, count in inclusive.most_common(args.top):
        print(f"| {frame} | {count / total:.1%} |")


if __name__ == "__main__":
    main()
