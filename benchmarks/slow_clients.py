"""How long a scrape takes while slow clients hold connections open. Prints a table.

    .venv/bin/python benchmarks/slow_clients.py [--rounds 2] [--scrapes 5] [--compare REV[,REV...]]
                                                [--concurrent-scrapers N [--collection-seconds 9]]

The exporter runs as a child process (on scrape, one target: the simulator, in this process, with one
application and five sessions) and is scraped over HTTP as Prometheus scrapes it (OpenMetrics, gzip, a
10 s scrape timeout), one scrape every half second, under three loads:
- unloaded;
- 50 silent partial heads: connections that send the first lines of a request head and then nothing;
  one the server closes is opened again at once, as a persistent attacker (or a broken proxy) would;
- 16 tricklers: connections that send a request head one byte a second, opened again when closed.

--concurrent-scrapers N adds a measurement: N scrapers at once (more than the server's 8 HTTP workers)
against a slow collection, ListApplications delayed --collection-seconds (a large account under AWS
quotas), each burst begun past collection.min_interval_seconds after the last collection; figures: scrape
wall times, the collections each burst made (the simulator's ListApplications calls), and the wall time of
one /healthz sent 1 s after the burst's collection began (a kubelet's liveness probe; its timeout in the
Helm chart is 5 s). --scrapes 0 leaves the three loads out.

--compare REV,... runs the exporters of other revisions (``git archive``) beside this tree's, against
the same simulator; loads and exporters are interleaved (ABBA over the rounds), so that both see the
same machine. Figures: median and max scrape wall time (seconds) over rounds x scrapes per exporter
and load. The machine has 2 shared cores: read differences below ~50 ms as noise.
"""

from __future__ import annotations

import argparse
import http.client
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emr_serverless_simulator import Fault, Simulator, Store  # noqa: E402
from exporter.config.schema import Config  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import revision_tree  # noqa: E402  (a sibling script: git archive of exporter/ at a revision)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
              "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;"
              "q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
PARTIAL_HEAD = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n"
TRICKLE = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Trickle: " + b"x" * 10_000
TRICKLE_SECONDS = 1.0
SETTLE_SECONDS = 1.0  # after opening the load connections, before the first scrape
SCRAPE_GAP_SECONDS = 0.5
MIN_INTERVAL_SECONDS = Config().collection.min_interval_seconds  # the exporters run the defaults
HEALTHZ_AFTER_SECONDS = 1.0  # after the burst's collection began: its scrapes hold the workers by then


class Exporter:
    """The exporter of ``tree`` as a child process, on scrape."""

    def __init__(self, name: str, tree: Path, simulator_url: str, workdir: Path) -> None:
        self.name = name
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = workdir / f"config-{self.port}.yaml"
        config.write_text(yaml.safe_dump({"targets": [{"name": "sim", "region": "us-east-1",
                                                       "endpoint_url": simulator_url}]}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--config.file", str(config),
             "--web.listen-address", f"127.0.0.1:{self.port}", "--log.level", "warn"],
            env={**os.environ, **CREDENTIALS, "PYTHONPATH": str(tree)}, cwd=tree, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while self.scrape_or_none("/readyz") is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the exporter did not become ready")
            time.sleep(0.2)

    def scrape_or_none(self, path: str = "/metrics") -> float | None:
        """Seconds to a complete 200 answer, or None when it failed."""
        began = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", path, headers=PROMETHEUS_HEADERS)
            response = connection.getresponse()
            response.read()
            return time.monotonic() - began if response.status == 200 else None
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Load:
    """Connections to ``port`` kept open (opened again when the server closes them), each sent
    ``first`` at once and then ``drip`` bytes of ``rest`` every ``every`` seconds (none: silent)."""

    def __init__(self, port: int, count: int, first: bytes, rest: bytes = b"", every: float = 0.0) -> None:
        self.port, self.count, self.first, self.rest, self.every = port, count, first, rest, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _open(self) -> tuple[socket.socket, int]:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(self.first)
        return sock, 0

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        sent: dict[socket.socket, int] = {}
        for _ in range(self.count):
            sock, offset = self._open()
            sent[sock] = offset
            selector.register(sock, selectors.EVENT_READ)
        next_drip = time.monotonic() + self.every
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.05):  # readable: the server answered or closed it
                old = key.fileobj
                assert isinstance(old, socket.socket)
                selector.unregister(old)
                del sent[old]
                old.close()
                sock, offset = self._open()
                sent[sock] = offset
                selector.register(sock, selectors.EVENT_READ)
            if self.every and time.monotonic() >= next_drip:
                next_drip += self.every
                for sock, offset in list(sent.items()):
                    if offset < len(self.rest):
                        try:
                            sock.sendall(self.rest[offset:offset + 1])
                        except OSError:
                            continue  # closed by the server: reopened at the next select
                        sent[sock] = offset + 1
        for sock in sent:
            sock.close()
        selector.close()


LOADS: dict[str, Callable[[int], Load]] = {
    "unloaded": lambda port: Load(port, 0, b""),
    "50 silent partial heads": lambda port: Load(port, 50, PARTIAL_HEAD),
    "16 tricklers": lambda port: Load(port, 16, b"", TRICKLE, TRICKLE_SECONDS),
}


def measure(exporter: Exporter, load: str, scrapes: int) -> list[float | None]:
    with LOADS[load](exporter.port):
        time.sleep(SETTLE_SECONDS)
        times = []
        for _ in range(scrapes):
            times.append(exporter.scrape_or_none())
            time.sleep(SCRAPE_GAP_SECONDS)
    time.sleep(SETTLE_SECONDS)  # the server sees the load's connections close before the next measurement
    return times


def measure_concurrent(exporter: Exporter, store: Store, scrapers: int,
                       collection_seconds: float) -> tuple[list[float | None], int, float | None]:
    """``scrapers`` scrapes at once during a collection of ``collection_seconds``: their wall times, how
    many collections the burst made, and the wall time of a /healthz sent during it (None: it failed)."""
    time.sleep(MIN_INTERVAL_SECONDS + SETTLE_SECONDS)  # so that the burst's first scrape collects
    listing = threading.Event()

    def began(_: object) -> bool:
        listing.set()
        return True  # every ListApplications is delayed

    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=collection_seconds * 1000,
                          match=began))
    before = store.calls["ListApplications"]
    barrier = threading.Barrier(scrapers)
    times: list[float | None] = [None] * scrapers

    def scrape(index: int) -> None:
        barrier.wait()
        times[index] = exporter.scrape_or_none()

    threads = [threading.Thread(target=scrape, args=(index,)) for index in range(scrapers)]
    for thread in threads:
        thread.start()
    healthz = None
    if listing.wait(60):
        time.sleep(HEALTHZ_AFTER_SECONDS)
        healthz = exporter.scrape_or_none("/healthz")
    for thread in threads:
        thread.join()
    collections = store.calls["ListApplications"] - before
    store.clear_faults()
    return times, collections, healthz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scrapes", type=int, default=5, help="scrapes per round, exporter and load")
    parser.add_argument("--compare", default="", help="git revisions whose exporters run beside this tree's")
    parser.add_argument("--concurrent-scrapers", type=int, default=0,
                        help="also N scrapers at once during a slow collection (0: not measured)")
    parser.add_argument("--collection-seconds", type=float, default=9.0,
                        help="how long ListApplications takes during the concurrent scrapes")
    args = parser.parse_args()
    loads = list(LOADS) if args.scrapes else []

    store = Store(account_id="123456789012", region="us-east-1")
    application = store.add_application(name="analytics")
    for index in range(5):
        store.add_session(application, name=f"nb{index}", state="IDLE")
    with tempfile.TemporaryDirectory() as tmp, Simulator(store, host="127.0.0.1", port=0) as simulator:
        workdir = Path(tmp)
        trees = [("this tree", ROOT)]
        trees += [(rev, revision_tree(rev, workdir / f"rev-{rev}")) for rev in args.compare.split(",") if rev]
        exporters = [Exporter(name, tree, simulator.url, workdir) for name, tree in trees]
        times: dict[tuple[str, str], list[float | None]] = defaultdict(list)
        bursts: dict[str, list[int]] = defaultdict(list)  # per exporter, the collections of each burst
        healthz: dict[str, list[float | None]] = defaultdict(list)  # per exporter, /healthz during each burst
        concurrent = f"{args.concurrent_scrapers} concurrent scrapers, {args.collection_seconds:g} s collections"
        try:
            for round_ in range(args.rounds):
                for load in loads:
                    for exporter in exporters if round_ % 2 == 0 else exporters[::-1]:
                        measured = measure(exporter, load, args.scrapes)
                        times[(exporter.name, load)] += measured
                        shown = ", ".join("failed" if t is None else f"{t:.2f}" for t in measured)
                        print(f"  round {round_ + 1}, {exporter.name}, {load}: {shown}", flush=True)
                for exporter in (exporters[::-1] if round_ % 2 else exporters) if args.concurrent_scrapers else []:
                    measured, collections, probe = measure_concurrent(exporter, store, args.concurrent_scrapers,
                                                                      args.collection_seconds)
                    times[(exporter.name, concurrent)] += measured
                    bursts[exporter.name].append(collections)
                    healthz[exporter.name].append(probe)
                    shown = ", ".join("failed" if t is None else f"{t:.1f}" for t in measured)
                    print(f"  round {round_ + 1}, {exporter.name}, {concurrent}: {collections} collections; "
                          f"/healthz {'failed' if probe is None else f'{probe:.3f}'}; {shown}", flush=True)
        finally:
            for exporter in exporters:
                exporter.stop()

    print("\n| exporter | load | scrapes | median s | max s | failed |")
    print("|---|---|---:|---:|---:|---:|")
    for load in [*loads, *([concurrent] if args.concurrent_scrapers else [])]:
        for exporter in exporters:
            measured = times[(exporter.name, load)]
            done = [t for t in measured if t is not None]
            median = f"{statistics.median(done):.3f}" if done else "-"
            worst = f"{max(done):.3f}" if done else "-"
            print(f"| {exporter.name} | {load} | {len(measured)} | {median} | {worst} | {len(measured) - len(done)} |")
    if args.concurrent_scrapers:
        print(f"\nCollections per burst of {args.concurrent_scrapers} scrapes (ListApplications calls):")
        for exporter in exporters:
            print(f"- {exporter.name}: {', '.join(map(str, bursts[exporter.name]))}")
        print(f"\n| exporter | /healthz {HEALTHZ_AFTER_SECONDS:g} s into a burst | median s | max s | failed |")
        print("|---|---:|---:|---:|---:|")
        for exporter in exporters:
            probes = healthz[exporter.name]
            done = [t for t in probes if t is not None]
            median = f"{statistics.median(done):.3f}" if done else "-"
            worst = f"{max(done):.3f}" if done else "-"
            print(f"| {exporter.name} | {len(probes)} probes | {median} | {worst} | {len(probes) - len(done)} |")


if __name__ == "__main__":
    main()
