"""``python -m emr_serverless_simulator``: serve a scenario until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from emr_serverless_simulator.faults import Fault, parse_fault_spec
from emr_serverless_simulator.scenarios import SCENARIOS, build_scenario
from emr_serverless_simulator.server import Simulator
from emr_serverless_simulator.throttle import Throttle, parse_throttle_spec


def _fault(spec: str) -> Fault:
    try:
        return parse_fault_spec(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _throttle(spec: str) -> Throttle:
    try:
        return parse_throttle_spec(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emr_serverless_simulator", description="A local EMR Serverless endpoint for boto3."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="demo", help="default %(default)s")
    parser.add_argument("--applications", type=int, default=3, metavar="N", help="default %(default)s")
    parser.add_argument(
        "--sessions-per-application", type=int, default=20, metavar="M", help="scale scenario; default %(default)s"
    )
    parser.add_argument(
        "--active-fraction", type=float, default=0.1, metavar="F", help="scale scenario; default %(default)s"
    )
    parser.add_argument(
        "--running-job-runs-per-application", type=int, default=0, metavar="R",
        help="scale scenario: live job runs per application; default %(default)s",
    )
    parser.add_argument(
        "--ended-job-runs-per-application", type=int, default=0, metavar="E",
        help="scale scenario: job runs per application ended inside the last half hour; default %(default)s",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="L", help="added to every response")
    parser.add_argument("--seed", type=int, default=1, help="default %(default)s")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="OP:CODE:FRACTION[:DELAY_MS]",
        help="answer FRACTION of OP's calls with error CODE (empty CODE: delay only); repeatable",
    )
    parser.add_argument(
        "--throttle",
        type=_throttle,
        action="append",
        default=[],
        metavar="OP:RATE[:BURST]",
        help="rate-limit OP (* for each operation) to RATE requests/s with BURST at once (default: RATE), "
        "answering ThrottlingException beyond it, as AWS does; repeatable",
    )
    parser.add_argument(
        "--aws-quotas",
        action="store_true",
        help="rate-limit as AWS's documented quotas per account and region do: ListJobRuns 1/s (burst 25), "
        "GetJobRun, ListApplications and GetApplication 10/s (burst 50) each; a --throttle for the same "
        "operation wins",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        store = build_scenario(
            args.scenario,
            applications=args.applications,
            sessions_per_application=args.sessions_per_application,
            active_fraction=args.active_fraction,
            seed=args.seed,
            running_job_runs_per_application=args.running_job_runs_per_application,
            ended_job_runs_per_application=args.ended_job_runs_per_application,
        )
    except ValueError as err:
        print(f"python -m emr_serverless_simulator: {err}", file=sys.stderr)
        return 2
    for fault in args.fault:
        store.add_fault(fault)
    if args.aws_quotas:
        store.apply_aws_quotas()
    for throttle in args.throttle:
        store.set_throttle(throttle.operation, throttle.rate, throttle.burst)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    simulator = Simulator(store, host=args.host, port=args.port, latency_ms=args.latency_ms)
    try:
        simulator.start()
    except OSError as err:
        print(f"python -m emr_serverless_simulator: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    print(f"listening on {simulator.url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
