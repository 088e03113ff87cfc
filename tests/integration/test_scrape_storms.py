"""Scrape storms through the exporter's real HTTP server, with the default configuration: whatever the
scrape pattern (a burst of ~1,000 scrapes, 500 scrapers at once, an HA pair), AWS sees at most one
collection per ``collection.min_interval_seconds`` and no operation beyond its rate limit (the
simulator's call counts say so), and every scrape answers 200 with the last known data. In the background,
``collection.interval_seconds`` alone sets the pace."""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config.schema import Config, parse_config
from exporter.web.server import ServerLimits
from exporter.wiring import build_runner
from tests.helpers.support import FakeClock, get, samples_of, serving, serving_simulator

APPLICATIONS = 3
ACTIVE_PER_APPLICATION = 2
STORM_SECONDS = 2.0  # each pattern's loops end by then at the latest
DEFAULTS = Config()


def populated() -> Store:
    store = Store(account_id="123456789012", region="us-east-1")
    now = time.time()
    for index in range(APPLICATIONS):
        app = store.add_application(name=f"analytics-{index}")
        for _ in range(ACTIVE_PER_APPLICATION):
            store.add_session(app, state="IDLE")
        store.add_session(app, state="TERMINATED", created_at=now - 900, started_at=now - 800, ended_at=now - 60)
    return store


@dataclass
class Exporter:
    """A serving exporter over its own simulator, and when it started (before its first collection)."""

    store: Store
    address: str
    began: float
    collection: dict[str, Any]


@contextlib.contextmanager
def exporter(directory: Path, collection: dict[str, Any]) -> Iterator[Exporter]:
    store = populated()
    config = directory / "config.yaml"  # the defaults but for the simulator as the one target
    with Simulator(store, port=0) as simulator:
        config.write_text(yaml.safe_dump({"targets": [{"region": "us-east-1", "endpoint_url": simulator.url}],
                                          **({"collection": collection} if collection else {})}))
        began = time.monotonic()
        with serving("--config.file", str(config), cwd=directory) as served:
            yield Exporter(store, served.address, began, collection)


@pytest.fixture(scope="module")
def with_defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter for the patterns run against the defaults: the bounds are over its whole life."""
    with exporter(tmp_path_factory.mktemp("defaults"), {}) as served:
        yield served


@pytest.fixture
def rate_limits_only(tmp_path: Path) -> Iterator[Exporter]:
    """Every scrape collects (min_interval_seconds 0): the default rate limits alone hold AWS's share."""
    with exporter(tmp_path, {"min_interval_seconds": 0}) as served:
        yield served


Scrapes = list[tuple[int, bytes]]


def scrape(connection: http.client.HTTPConnection) -> tuple[int, bytes]:
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    return response.status, response.read()


def in_threads(count: int, work: Callable[[int], Scrapes]) -> Scrapes:
    results: list[Scrapes] = [[] for _ in range(count)]
    threads = [threading.Thread(target=lambda i=i: results[i].extend(work(i))) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [one for result in results for one in result]


def burst(address: str) -> Scrapes:
    """Up to 1,000 scrapes as fast as 8 kept-alive connections send them (a scrape interval of 0)."""
    taken = iter(range(1000))
    lock = threading.Lock()
    end = time.monotonic() + STORM_SECONDS

    def scraper(_: int) -> Scrapes:
        connection = http.client.HTTPConnection(address, timeout=30)
        done = []
        while time.monotonic() < end:
            with lock:
                if next(taken, None) is None:
                    break
            done.append(scrape(connection))
        connection.close()
        return done

    return in_threads(8, scraper)


def parallel(address: str) -> Scrapes:
    """500 scrapers, each one scrape on its own connection, all at once."""
    barrier = threading.Barrier(500, timeout=30)

    def scraper(_: int) -> Scrapes:
        connection = http.client.HTTPConnection(address, timeout=30)
        barrier.wait()
        try:
            return [scrape(connection)]
        finally:
            connection.close()

    return in_threads(500, scraper)


def ha_pair(address: str) -> Scrapes:
    """Two Prometheus servers scraping every 0.2 s, 0.1 s apart."""

    def scraper(index: int) -> Scrapes:
        connection = http.client.HTTPConnection(address, timeout=30)
        start = time.monotonic() + 0.1 * index
        done = []
        for round_index in range(int(STORM_SECONDS / 0.2)):
            time.sleep(max(0.0, start + 0.2 * round_index - time.monotonic()))
            done.append(scrape(connection))
        connection.close()
        return done

    return in_threads(2, scraper)


def per_collection(store: Store) -> dict[str, int]:
    """The most calls one collection makes: one page of applications, then per application its two listings
    and its GetApplication, one GetSession per session."""
    sessions = sum(len(store.session_ids(app)) for app in store.application_ids())
    return {"ListApplications": 1, "ListSessions": 2 * APPLICATIONS, "GetApplication": APPLICATIONS,
            "GetSession": sessions}


def check_storm(served: Exporter, pattern: Callable[[str], Scrapes]) -> None:
    scrapes = pattern(served.address)
    elapsed = time.monotonic() - served.began
    calls = dict(served.store.calls)

    assert scrapes and all(status == 200 for status, _ in scrapes)
    session_ids = [sid.encode() for app in served.store.application_ids() for sid in served.store.session_ids(app)]
    for _, body in scrapes:  # the last known data, every time
        assert all(b'session_id="' + sid + b'"' in body for sid in session_ids)
    min_interval = served.collection.get("min_interval_seconds", DEFAULTS.collection.min_interval_seconds)
    collections = calls.get("ListApplications", 0)  # one page each
    if min_interval:
        assert 1 <= collections <= 1 + elapsed / min_interval, (len(scrapes), elapsed, calls)
        for operation, most in per_collection(served.store).items():
            assert calls.get(operation, 0) <= collections * most, (operation, calls)
    for operation, limit in DEFAULTS.aws.rate_limits.by_operation().items():
        if limit.requests_per_second:
            allowed = limit.burst + limit.requests_per_second * elapsed
            assert calls.get(operation, 0) <= allowed, (operation, len(scrapes), elapsed, calls)


@pytest.mark.parametrize("pattern", [burst, parallel, ha_pair], ids=["burst", "parallel", "ha-pair"])
def test_a_scrape_storm_collects_at_most_once_per_min_interval_and_every_scrape_is_answered(
    with_defaults: Exporter, pattern: Callable[[str], Scrapes]
) -> None:
    assert DEFAULTS.collection.min_interval_seconds > 0  # by default, scrapes close together share a collection
    check_storm(with_defaults, pattern)


def test_scrapes_queued_for_a_worker_during_a_slow_collection_are_served_it_not_a_new_one(tmp_path: Path) -> None:
    # Three times as many scrapers as HTTP workers against a collection slower than min_interval (here 0,
    # so that every scrape handled after a collection ended would start one): the workers are held for
    # the whole collection and the other scrapes queue. All arrived while it ran, so all get it.
    scrapers = 3 * ServerLimits().threads
    with exporter(tmp_path, {"min_interval_seconds": 0}) as served:
        before = served.store.calls["ListApplications"]  # the warm-up collection's
        served.store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=3000))
        barrier = threading.Barrier(scrapers, timeout=30)

        def scraper(_: int) -> Scrapes:
            connection = http.client.HTTPConnection(served.address, timeout=60)
            barrier.wait()
            try:
                return [scrape(connection)]
            finally:
                connection.close()

        scrapes = in_threads(scrapers, scraper)
        collections = served.store.calls["ListApplications"] - before
    assert len(scrapes) == scrapers and all(status == 200 for status, _ in scrapes)
    assert all(b"emr_serverless_up{" in body and b'session_id="' in body for _, body in scrapes)
    assert collections == 1  # on the old code 3: one per batch of scrapes a worker took after the last ended


def test_probes_answer_while_more_scrapes_than_http_workers_wait_on_a_collection(tmp_path: Path) -> None:
    # The collection is held in ListApplications until the test lets it go (its bounds, 60 s, outlast the
    # probes' 20 s); three times as many scrapes as HTTP workers wait on it, so every worker is held and
    # more scrapes queue. The probes must answer all the same, or the kubelet restarts a healthy exporter
    # whenever a slow collection meets many scrapers. Before, the /healthz client timed out after 20 s.
    scrapers = 3 * ServerLimits().threads
    store = populated()
    listing, release = threading.Event(), threading.Event()

    def held(_: object) -> bool:
        listing.set()
        release.wait()
        return False  # no fault: the call is answered once released

    slow = {"collection": {"timeout_seconds": 60}, "aws": {"read_timeout_seconds": 60}}
    with Simulator(store, port=0) as simulator, serving_simulator(tmp_path, simulator.url, sections=slow) as served:
        before = store.calls["ListApplications"]  # the warm-up collection's
        store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=0.001, match=held))
        sent = threading.Barrier(scrapers + 1, timeout=30)  # every scrape's request is written

        def scraper(_: int) -> Scrapes:
            connection = http.client.HTTPConnection(served.address, timeout=60)
            try:
                connection.request("GET", "/metrics")
                sent.wait()
                response = connection.getresponse()
                return [(response.status, response.read())]
            finally:
                connection.close()

        probes: dict[str, tuple[int, bool]] = {}
        scrapes: Scrapes = []
        threads = threading.Thread(target=lambda: scrapes.extend(in_threads(scrapers, scraper)))
        threads.start()
        try:
            sent.wait()
            assert listing.wait(30)  # the collection is in flight, held
            for path in ("/healthz", "/readyz"):
                status = get(served.url + path, timeout=20)[0]
                probes[path] = (status, release.is_set())
        finally:
            release.set()
            threads.join(timeout=90)
        collections = store.calls["ListApplications"] - before

    assert probes == {"/healthz": (200, False), "/readyz": (200, False)}  # answered while the collection was held
    assert len(scrapes) == scrapers and all(status == 200 for status, _ in scrapes)
    for _, body in scrapes:
        up = samples_of(body.decode())["emr_serverless_up"]
        assert [sample.value for sample in up] == [1.0]
    assert collections == 1


def test_with_no_min_interval_the_rate_limits_still_hold_aws_s_share(rate_limits_only: Exporter) -> None:
    check_storm(rate_limits_only, burst)


def test_in_the_background_interval_seconds_is_the_schedule_whatever_min_interval() -> None:
    # Scrapes never collect in the background; the schedule (here every second) must not wait for the
    # on-scrape floor of 5 s.
    store = populated()
    with Simulator(store, port=0) as simulator:
        config = parse_config(yaml.safe_dump({"targets": [{"region": "us-east-1", "endpoint_url": simulator.url}],
                                              "collection": {"interval_seconds": 1}}))
        assert config.collection.min_interval_seconds > config.collection.interval_seconds
        runner = build_runner(config)
        try:
            runner.collect()
            runner.collect()  # what the background loop does every interval_seconds
        finally:
            runner.close()
    assert store.calls["ListApplications"] == 2


def test_min_interval_counts_from_the_start_of_the_last_collection_on_the_runner_s_clock() -> None:
    # Prometheus every 10 s with a collection that takes 8 s: the next scrape comes 2 s after the last one
    # ended and must still collect, or every other scrape would serve the one before.
    clock = FakeClock()
    store = populated()
    takes = iter([8.0])

    def first_listing_takes_8_seconds(_: object) -> bool:
        clock.advance(next(takes, 0.0))
        return False  # only watching

    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=0.001,
                          match=first_listing_takes_8_seconds))
    with Simulator(store, port=0) as simulator:
        config = parse_config(yaml.safe_dump({"targets": [{"region": "us-east-1", "endpoint_url": simulator.url}]}))
        runner = build_runner(config, clock=clock)
        try:
            runner.collect()  # from 0 to 8 s on the runner's clock
            clock.advance(2)
            runner.collect()  # 10 s after the first began: collects
            clock.advance(4.9)
            runner.collect()  # 4.9 s after the second began: shares it
            clock.now -= 3600  # the wall clock set back an hour must not pin the last result for an hour
            runner.collect()
        finally:
            runner.close()
    assert store.calls["ListApplications"] == 3
