"""Under an AWS-like GetSession quota: how many collections until every active session is refreshed.

400 active sessions; the simulator throttles GetSession with a 10 TPS token bucket (burst 10), as a
real quota would; the exporter is configured with the same rate; a scrape every 15 s with Prometheus'
default 10 s timeout. Prints one line per collection and the bound ceil(active / (rate x interval)) + 1.

    .venv/bin/python benchmarks/quota.py [--sessions 400] [--rate 10] [--interval 15] [--timeout 10]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Mapping

import yaml

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config.schema import parse_config
from exporter.model.kinds import SESSIONS
from exporter.wiring import build_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true")

    store = Store(clock=time.time)
    app = store.add_application(name="busy")
    sessions = {store.add_session(app, state="IDLE") for _ in range(args.sessions)}
    fetched: list[str] = []

    def record(params: Mapping[str, str]) -> bool:
        fetched.append(params["sessionId"])
        return False  # only watching

    store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=1, match=record))
    store.set_throttle("GetSession", args.rate, int(args.rate))
    with Simulator(store, port=0) as simulator:
        config = parse_config(yaml.safe_dump({
            "targets": [{"region": "us-east-1", "endpoint_url": simulator.url, "name": "bench"}],
            "aws": {"rate_limits": {"GetSession": {"requests_per_second": args.rate, "burst": int(args.rate)}}},
        }))
        runner = build_runner(config)
        seen: set[str] = set()
        collections = 0
        try:
            while seen != sessions and collections < 20:
                started = time.monotonic()
                before = len(fetched)
                result = runner.collect(timeout=args.timeout)[0]
                seen |= set(fetched[before:])
                collections += 1
                stats = result.stats[SESSIONS]
                print(f"collection {collections}: up={int(result.up)} fetched={len(fetched) - before} "
                      f"ever={len(seen)} stale={stats.stale} oldest_age={stats.oldest_data_age:.0f}s "
                      f"throttled_by_aws={store.throttled['GetSession']}")
                time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
        finally:
            runner.close()
    bound = math.ceil(args.sessions / (args.rate * args.interval)) + 1
    print(f"every session refreshed after {collections} collections; "
          f"bound ceil(active / (rate x interval)) + 1 = {bound}")


if __name__ == "__main__":
    main()
