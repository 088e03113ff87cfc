"""Command line: flags, wiring, and the serve / --once / --demo modes."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import math
import os
import platform
import signal
import ssl
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import NoReturn

import boto3

from exporter import __version__
from exporter.collect.discovery import Shard
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import Clock
from exporter.common.logs import FORMATS, LEVELS, setup_logging
from exporter.common.malloc import limit_arenas
from exporter.config.schema import Config, ConfigError, TargetConfig, load_config
from exporter.render.background import BackgroundRenderer
from exporter.render.exposition import Exposition
from exporter.web.app import PROBE_PATHS, ExporterApp, WebContext, parse_listen_address
from exporter.web.server import HardenedServer
from exporter.web.webconfig.files import WebConfigError
from exporter.web.webconfig.watcher import WebConfigWatcher
from exporter.wiring import build_exposition, build_runner, check_config

PROG = "emr-serverless-exporter"


class _DefaultConfigFile(str):
    """``--config.file``'s value when the flag is not given: only then does a missing file mean all
    defaults. A distinct object, so a user's own ``--config.file config.yaml`` is never taken for it."""


DEFAULT_CONFIG = _DefaultConfigFile("config.yaml")
DEMO_REGION = "us-east-1"
# For tests, read only with --demo and not product options: the simulator's seed, and a fixed instant
# (Unix seconds) that the simulator and the exporter both read as "now", so that `--demo --once` writes
# the same bytes every time (tests/e2e/test_golden.py). With a fixed instant, prometheus-client's process
# and Python collectors, which describe the machine, are left out.
DEMO_SEED_ENV = "EMR_SERVERLESS_EXPORTER_DEMO_SEED"
DEMO_TIME_ENV = "EMR_SERVERLESS_EXPORTER_DEMO_TIME"
# On SIGTERM, requests in flight get this long to be answered; the process is gone within 5 s in all,
# inside Kubernetes' default grace period of 30 s.
SHUTDOWN_GRACE_SECONDS = 2.0

log = logging.getLogger("exporter")

class UsageError(Exception):
    """A bad flag, configuration or address: exit status 2 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _HelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each flag's default as the flags table does."""

    def _get_help_string(self, action: argparse.Action) -> str:
        shown = _shown_default(action)
        help_text = action.help or ""
        return f"{help_text} (default: {shown})" if shown and action.default is not False else help_text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Prometheus exporter for AWS EMR Serverless interactive sessions.",
                     formatter_class=_HelpFormatter)
    parser.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG, metavar="PATH",
                        help="the YAML configuration; a missing default file means all defaults")
    parser.add_argument("--web.listen-address", dest="listen_address", default=":9865", metavar="HOST:PORT",
                        help="where to serve HTTP (:PORT means all interfaces, [::1]:PORT for IPv6)")
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", metavar="PATH",
                        help="the metrics endpoint")
    parser.add_argument("--web.config.file", dest="web_config_file", default=None, metavar="PATH",
                        help="TLS, mutual TLS and basic auth, in the Prometheus exporter-toolkit web "
                             "configuration format")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=list(LEVELS), metavar="LEVEL",
                        help=f"the least severe records logged: {', '.join(LEVELS)}")
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=list(FORMATS),
                        metavar="FORMAT", help=f"{' or '.join(FORMATS)}, one record per line on standard error")
    parser.add_argument("--demo", action="store_true",
                        help="collect from the built-in EMR Serverless simulator instead of AWS; needs no "
                             "credentials")
    parser.add_argument("--once", action="store_true",
                        help="collect once, print the exposition on standard output, exit 0 if every target is "
                             "up, else 1")
    parser.add_argument("--shard", type=int, default=0, metavar="N",
                        help="this replica's shard, from 0 to --total-shards - 1")
    parser.add_argument("--total-shards", dest="total_shards", type=int, default=1, metavar="M",
                        help="replicas that split the applications between them by a hash of the application "
                             "id (as kube-state-metrics does); together they export exactly what one unsharded "
                             "exporter would")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _shown_default(action: argparse.Action) -> str:
    """A flag's default as the docs show it: "" for none, "off" for a switch."""
    if action.default is False:
        return "off"
    if action.default is None or action.default is argparse.SUPPRESS:
        return ""
    return str(action.default)


def flags_table() -> list[tuple[str, str, str]]:
    """(flag with its argument, default, meaning) of every flag, in ``--help``'s order, for
    docs/configuration.md (``python -m exporter.docs``)."""
    rows = []
    for action in build_parser()._actions:
        flags = ", ".join(action.option_strings)
        argument = f" {action.metavar}" if action.nargs != 0 and action.metavar else ""
        default = "none" if action.default is None else _shown_default(action)
        rows.append((flags + argument, default, action.help or ""))
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config_file == "":  # an unset variable in a template: never fall back to ./config.yaml silently
        raise UsageError("--config.file: the path is empty ('')")
    if args.total_shards < 1:
        raise UsageError(f"--total-shards: must be at least 1, got {args.total_shards}")
    if not 0 <= args.shard < args.total_shards:
        raise UsageError(f"--shard: must be from 0 to {args.total_shards - 1} (--total-shards - 1), got {args.shard}")
    if not args.telemetry_path.startswith("/") or args.telemetry_path in ("/", "/healthz", "/readyz"):
        raise UsageError(f"--web.telemetry-path: {args.telemetry_path!r} must start with / and not be /, "
                         "/healthz or /readyz")
    return args


def read_config(args: argparse.Namespace) -> Config:
    """The configuration ``--config.file`` names; without the flag, ``config.yaml``, or all defaults when
    there is none."""
    config = load_config(args.config_file, missing_ok=args.config_file is DEFAULT_CONFIG)
    try:
        check_config(config)
    except ConfigError as err:
        raise ConfigError(f"{args.config_file}: {err}") from None
    return config


def version_text() -> str:
    return f"{PROG} {__version__} (python {platform.python_version()}, boto3 {boto3.__version__})"


def demo_settings(environ: Mapping[str, str]) -> tuple[int, float | None]:
    """The demo's seed and fixed instant (None: the real clock) from the test-only environment variables."""
    seed_text, time_text = environ.get(DEMO_SEED_ENV, "1"), environ.get(DEMO_TIME_ENV)
    try:
        seed = int(seed_text)
    except ValueError:
        raise UsageError(f"{DEMO_SEED_ENV}: expected an integer, got {seed_text!r}") from None
    if time_text is None:
        return seed, None
    try:
        fixed = float(time_text)
    except ValueError:
        fixed = math.nan
    if not math.isfinite(fixed) or fixed <= 0:
        raise UsageError(f"{DEMO_TIME_ENV}: expected Unix seconds above 0, got {time_text!r}")
    return seed, fixed


def start_demo_simulator(
    config: Config, *, seed: int = 1, clock: Clock = time.time
) -> tuple[Config, boto3.Session, object]:
    """The built-in simulator on a free loopback port, and a config that points one target at it."""
    from emr_serverless_simulator import Simulator, build_scenario

    simulator = Simulator(build_scenario("demo", seed=seed, clock=clock), host="127.0.0.1", port=0)
    simulator.start()
    target = TargetConfig(region=DEMO_REGION, endpoint_url=simulator.url)
    session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=DEMO_REGION)
    return replace(config, targets=(target,)), session, simulator


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (UsageError, ConfigError, WebConfigError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def run(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    setup_logging(args.log_level, args.log_format)
    limit_arenas()  # before the first thread (exporter.common.malloc)
    try:
        listen_address = parse_listen_address(args.listen_address)
    except ValueError as err:
        raise UsageError(f"--web.listen-address: {args.listen_address!r}: {err}") from None
    config = read_config(args)
    web_config = WebConfigWatcher(args.web_config_file) if args.web_config_file else None
    session = None
    clock: Clock = time.time
    fixed_time = None
    if args.demo:
        seed, fixed_time = demo_settings(os.environ)
        if fixed_time is not None:
            clock = functools.partial(float, fixed_time)  # reads as a constant "now"
        config, session, _simulator = start_demo_simulator(config, seed=seed, clock=clock)
        log.info("demo mode: collecting demo data from the built-in EMR Serverless simulator, not AWS")
    shard = Shard(args.shard, args.total_shards) if args.total_shards > 1 else None
    runner = build_runner(config, session=session, shard=shard, clock=clock)
    exposition = build_exposition(runner, config, machine=fixed_time is None)
    # What is alive now (modules, botocore's service models, the clients) lives as long as the process:
    # frozen, the garbage collector's full collections no longer scan it (docs/performance.md).
    gc.freeze()

    if args.once:
        results = runner.collect()
        sys.stdout.buffer.writelines(exposition.render_parts()[0])
        sys.stdout.flush()
        return 0 if all(result.up for result in results) else 1

    serve(args, config, listen_address, runner, exposition, web_config)  # ends the process


def serve(args: argparse.Namespace, config: Config, listen_address: tuple[str, int], runner: CollectionRunner,
          exposition: Exposition, web_config: WebConfigWatcher | None) -> NoReturn:
    """Serve HTTP(S) until SIGTERM or SIGINT, then stop within a few seconds and end the process."""
    interval = config.collection.interval_seconds
    background = BackgroundRenderer(runner, exposition, interval) if interval else None
    context = WebContext(runner, exposition, args.telemetry_path, demo=args.demo, background=background)
    tls = web_config is not None and web_config.current().config.tls is not None

    def tls_settings() -> tuple[ssl.SSLContext, tuple[str, ...]]:
        assert web_config is not None
        loaded = web_config.current()
        assert loaded.ssl_context is not None and loaded.config.tls is not None
        return loaded.ssl_context, loaded.config.tls.client_allowed_sans

    server = HardenedServer(
        listen_address,
        ExporterApp(context, web_config.current if web_config else None),
        tls_settings=tls_settings if tls else None,
        server_name=f"{PROG}/{__version__}",
        probe_paths=PROBE_PATHS,
    )
    try:
        server.start()
    except OSError as err:
        reason = err.__cause__ if isinstance(err.__cause__, OSError) else err
        raise UsageError(f"--web.listen-address: cannot listen on {args.listen_address!r}: "
                         f"{reason.strerror or reason}") from None

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if background is not None:
        background.start()  # collects now and then every interval
    else:  # warm up so that /readyz turns ready without waiting for the first scrape
        threading.Thread(target=runner.collect, name="first-collection", daemon=True).start()
    log.info(
        "serving",
        extra={"fields": {"version": __version__, "address": args.listen_address, "path": args.telemetry_path,
                          "tls": tls, "basic_auth": bool(web_config and web_config.current().auth.enabled),
                          "config": args.config_file, "targets": len(runner.targets),
                          "demo": args.demo, "shard": f"{args.shard}/{args.total_shards}",
                          "collection": f"every {interval}s" if background else "on scrape"}},
    )
    started = time.monotonic()
    stop.wait()

    log.info("shutting down", extra={"fields": {"grace_seconds": SHUTDOWN_GRACE_SECONDS}})
    if background is not None:
        background.close()
    runner.close()  # a collection in flight hands in what it has
    stopped = server.stop(grace=SHUTDOWN_GRACE_SECONDS)
    log.info("stopped", extra={"fields": {"uptime_seconds": round(time.monotonic() - started, 1),
                                          "requests_cut_short": not stopped}})
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: an AWS call in flight keeps its pool thread in a socket read for up to the read
    # timeout times the attempts, and the interpreter joins pool threads at exit. Everything worth
    # keeping (logs, answers) is written by now.
    os._exit(0)
