"""How much latency does the simulator itself add? 500 sequential GetSession calls at latency 0.

    .venv/bin/python benchmarks/simulator_latency.py [--calls 500]

Through boto3 (signing, parsing: the client's own cost dominates) and through one raw keep-alive
http.client connection (the simulator's cost). A Nagle/delayed-ACK stall would show as ~40 ms.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
from collections.abc import Callable

import boto3
import botocore.config

from emr_serverless_simulator import Simulator, Store


def measure(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(20):  # warm up: connections, caches
        call()
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    store = Store()
    app = store.add_application(name="bench")
    sid = store.add_session(
        app, name="bench", tags={"team": "x"}, total_utilization={"vCPUHour": 1.0}, billed_utilization={"vCPUHour": 1.0}
    )
    with Simulator(store, latency_ms=0) as sim:
        client = boto3.client(
            "emr-serverless",
            endpoint_url=sim.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
        connection = http.client.HTTPConnection("127.0.0.1", sim.port)
        path = f"/applications/{app}/sessions/{sid}"

        def raw() -> None:
            connection.request("GET", path, headers={"Authorization": "AWS4-HMAC-SHA256 bench"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200

        rows = [
            ("boto3 get_session", measure(lambda: client.get_session(applicationId=app, sessionId=sid), args.calls)),
            ("raw http.client keep-alive", measure(raw, args.calls)),
        ]
        connection.close()
    print(f"{args.calls} sequential GetSession calls, simulator latency_ms=0")
    print(f"{'client':<28} {'median ms':>10} {'p99 ms':>8}")
    for name, (median, p99) in rows:
        print(f"{name:<28} {median:>10.3f} {p99:>8.3f}")


if __name__ == "__main__":
    main()
