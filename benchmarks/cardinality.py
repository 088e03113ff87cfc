"""What the cardinality controls save: one collection of many ended job runs under several configurations.
Prints the table of docs/configuration.md's worked example.

    .venv/bin/python benchmarks/cardinality.py [--applications 10] [--running 20] [--ended 500]

The simulator's ``scale`` scenario (no sessions), one target, two collections in this process (no HTTP);
the text format's sample lines are counted (prometheus-client's process series are left out). Counts and
bytes are set by the data, not by the machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emr_serverless_simulator import Simulator, build_scenario  # noqa: E402
from exporter.config.schema import parse_config  # noqa: E402
from exporter.wiring import build_exposition, build_runner, check_config  # noqa: E402

# The worked example's denylist: timestamps and attempts, but for the started and ended timestamps that the
# cost rules and EMRServerlessJobRunFailed read.
DENYLIST = ["emr_serverless_job_run_(created|attempt_created)_timestamp_seconds",
            "emr_serverless_job_run_(attempt|max_attempts|max_failed_attempts_per_hour)"]
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "the denylist above": {"metrics": {"denylist": DENYLIST}},
    "the denylist and the cap of 200": {"metrics": {"denylist": DENYLIST},
                                        "discovery": {"max_terminated_job_runs_per_application": 200}},
    "every `emr_serverless_job_run_.*_timestamp_seconds` and the attempts": {"metrics": {"denylist": [
        "emr_serverless_job_run_.*_timestamp_seconds",
        "emr_serverless_job_run_(attempt|max_attempts|max_failed_attempts_per_hour)"]}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applications", type=int, default=10)
    parser.add_argument("--running", type=int, default=20)
    parser.add_argument("--ended", type=int, default=500)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every failed run is logged once: thousands of lines
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "simulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "simulator")
    store = build_scenario("scale", applications=args.applications, sessions_per_application=0,
                           running_job_runs_per_application=args.running, ended_job_runs_per_application=args.ended,
                           seed=1)
    print(f"scale: {args.applications} applications x ({args.running} running + {args.ended} ended) job runs\n")
    print("| configuration | job runs exported | series per run | series | body |")
    print("| --- | --- | --- | --- | --- |")
    with Simulator(store, port=0) as simulator:
        for label, extra in CONFIGURATIONS.items():
            data: dict[str, Any] = {
                "targets": [{"region": "us-east-1", "endpoint_url": simulator.url, "name": "prod"}],
                **extra,
                "discovery": {"sessions": False, **extra.get("discovery", {})},
            }
            config = parse_config(yaml.safe_dump(data))
            check_config(config)
            runner = build_runner(config)
            try:
                exposition = build_exposition(runner, config, machine=False)
                runner.collect()
                runner.collect()  # what the first one listed but had no budget to fetch
                body, _ = exposition.render("")
            finally:
                runner.close()
            lines = [line for line in body.splitlines() if line and not line.startswith(b"#")]
            runs = sum(line.startswith(b"emr_serverless_job_run_info{") for line in lines)
            per_run = sum(line.startswith(b"emr_serverless_job_run_") for line in lines) / max(1, runs)
            print(f"| {label} | {runs:,} | {per_run:.1f} | {len(lines):,} | {len(body) / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
