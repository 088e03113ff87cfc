"""Background collection (collection.interval_seconds): scrapes serve a pre-rendered snapshot, cost AWS
nothing, and answer at once whatever AWS does."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config import parse_config
from exporter.exposition import direct_kind
from exporter.snapshot import PRERENDERED, Snapshots
from exporter.wiring import build_exposition
from tests.support import collecting, get, promtool_check, serving_simulator, simulator_config


@pytest.fixture
def store() -> Store:
    store = Store(account_id="123456789012", region="us-east-1")
    app = store.add_application(name="analytics")
    for index in range(5):
        store.add_session(app, name=f"nb{index}", state="IDLE")
    return store


def test_scrapes_serve_the_snapshot_and_cost_aws_nothing(tmp_path: Path, store: Store, simulator: Simulator) -> None:
    interval = 2.0
    with serving_simulator(tmp_path, simulator.url, sections={"collection": {"interval_seconds": interval}}) as served:
        url = served.url
        started = time.monotonic()
        calls_before = sum(store.calls.values())
        bodies = {}
        for accept in ("", OPENMETRICS):
            for encoding in ("identity", "gzip"):
                for _ in range(10):  # an HA pair and then some
                    status, headers, body = get(url + "/metrics", headers={"Accept": accept,
                                                                          "Accept-Encoding": encoding})
                    assert status == 200
                bodies[(accept, encoding)] = (headers, body)
        elapsed = time.monotonic() - started
        calls_after = sum(store.calls.values())
    # 40 scrapes; collections happen once per interval whatever the scrapes: ListApplications, two
    # ListSessions and five GetSessions each.
    collections = calls_after and (calls_after - calls_before) / 8
    assert collections <= elapsed / interval + 1
    text_headers, text = bodies[("", "identity")]
    assert text_headers["Content-Type"].startswith("text/plain")
    promtool_check(text)
    om_headers, om = bodies[(OPENMETRICS, "identity")]
    assert om_headers["Content-Type"].startswith("application/openmetrics-text") and om.endswith(b"# EOF\n")
    for accept in ("", OPENMETRICS):
        headers, compressed = bodies[(accept, "gzip")]
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(compressed).count(b"emr_serverless_session_info{") == 5
    assert b"emr_serverless_last_collection_timestamp_seconds" in text


def test_a_scrape_answers_at_once_while_aws_hangs(tmp_path: Path, store: Store, simulator: Simulator) -> None:
    sections = {"collection": {"interval_seconds": 1, "timeout_seconds": 20}}
    with serving_simulator(tmp_path, simulator.url, sections=sections) as served:
        url = served.url
        store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=15_000))
        time.sleep(1.5)  # the next background collection is now stuck in ListApplications
        for _ in range(5):
            began = time.monotonic()
            status, _, body = get(url + "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"})
            took = time.monotonic() - began
            assert status == 200 and body.count(b"emr_serverless_session_info{") == 5
            assert took < 5, "a scrape waited for AWS (15 s)"


# What Prometheus 3 and 2 send by default, plain-text scrapers and OpenMetrics with either escaping.
ACCEPT_HEADERS = [
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    OPENMETRICS,
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=0.0.4",
    "*/*",
    "",
]


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_every_usual_accept_header_is_served_from_the_snapshot(simulator: Simulator, accept: str) -> None:
    # Prometheus 3 asks for escaping=allow-utf-8: keyed by content type, the snapshot missed it and every
    # scrape rendered 10,000 sessions anew (1.4 s at scenario L instead of milliseconds).
    runner, _ = collecting(simulator.url)
    exposition = build_exposition(runner, parse_config(simulator_config(simulator.url)))
    snapshots = Snapshots(runner, exposition, interval_seconds=60)
    snapshots.refresh()
    served = snapshots.get(accept)
    encoder, content_type = choose_encoder(accept)
    assert served is not None and served.content_type == content_type
    kind = direct_kind(encoder)
    assert kind is not None
    assert served.identity is snapshots.get(PRERENDERED[kind]).identity  # type: ignore[union-attr]  # not rendered anew
    fresh, _ = exposition.render(accept)
    assert b"".join(served.identity) == gzip.decompress(served.gzip)
    assert ours(b"".join(served.identity)) == ours(fresh)  # the process's own figures moved in between


def ours(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if b"emr_serverless_" in line]
