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
from exporter.config.schema import parse_config
from exporter.render.background import ACCEPT, FIRST_VARIANTS, REMEMBER_SECONDS, Snapshots
from exporter.render.exposition import Exposition, direct_kind
from exporter.wiring import build_exposition
from tests.helpers.support import collecting, get, promtool_check, serving_simulator, simulator_config


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


def snapshots_over(url: str, clock: list[float] | None = None) -> tuple[Snapshots, Exposition]:
    runner, _ = collecting(url)
    exposition = build_exposition(runner, parse_config(simulator_config(url)))
    if clock is None:
        return Snapshots(runner, exposition, interval_seconds=60), exposition
    return Snapshots(runner, exposition, interval_seconds=60, clock=lambda: clock[0]), exposition


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("gzipped", [True, False])
def test_every_usual_accept_header_is_served_from_the_snapshot(simulator: Simulator, accept: str,
                                                                gzipped: bool) -> None:
    # Prometheus 3 asks for escaping=allow-utf-8: keyed by content type, the snapshot missed it and every
    # scrape rendered 10,000 sessions anew (1.4 s at scenario L instead of milliseconds).
    snapshots, exposition = snapshots_over(simulator.url)
    encoder, content_type = choose_encoder(accept)
    kind = direct_kind(encoder)
    assert kind is not None
    snapshots.get(accept, gzipped)  # None before the first collection: remembered all the same
    snapshots.refresh()
    renders = snapshots.renders
    served = snapshots.get(accept, gzipped)
    assert served is not None and served.content_type == content_type and served.gzip == gzipped
    assert snapshots.renders == renders  # pre-rendered, not rendered anew
    assert served.body is snapshots.get(ACCEPT[kind], gzipped).body  # type: ignore[union-attr]  # shared
    fresh, _ = exposition.render(accept)
    body = gzip.decompress(b"".join(served.body)) if gzipped else b"".join(served.body)
    assert ours(body) == ours(fresh)  # the process's own figures moved in between


def test_only_what_was_asked_for_is_prerendered(simulator: Simulator) -> None:
    clock = [1000.0]
    snapshots, exposition = snapshots_over(simulator.url, clock)
    snapshots.refresh()
    # Before anyone asks: OpenMetrics with gzip, what Prometheus asks; text is not rendered at all.
    assert snapshots.prerendered == set(FIRST_VARIANTS) == {("openmetrics", True)}
    assert snapshots.renders == 1

    # Plain text, identity (a curl): rendered on demand from what is known, complete and valid, with
    # its own Content-Type; kept for the next scrapes until the next collection.
    served = snapshots.get("", gzip=False)
    assert served is not None and not served.gzip and served.content_type.startswith("text/plain")
    text = b"".join(served.body)
    promtool_check(text)
    assert text.count(b"emr_serverless_session_info{") == 5
    assert snapshots.renders == 2
    assert snapshots.get("text/plain;version=0.0.4", gzip=False) is not None and snapshots.renders == 2

    # The next collection pre-renders it beside OpenMetrics (one render for both): a scrape is a look-up.
    clock[0] += 60
    snapshots.refresh()
    assert snapshots.prerendered == {("openmetrics", True), ("text", False)}
    assert snapshots.renders == 4
    again = snapshots.get("", gzip=False)
    assert again is not None and again is not served and snapshots.renders == 4
    assert ours(b"".join(again.body)) == ours(exposition.render("")[0])

    # Still asked by Prometheus, no longer by the curl: the curl's variant is forgotten.
    clock[0] += REMEMBER_SECONDS + 1
    assert snapshots.get(OPENMETRICS, gzip=True) is not None
    snapshots.refresh()
    assert snapshots.prerendered == {("openmetrics", True)}
    # And nothing at all once nobody asks: a collection renders nothing.
    clock[0] += REMEMBER_SECONDS + 1
    renders = snapshots.renders
    snapshots.refresh()
    assert snapshots.prerendered == set() and snapshots.renders == renders
    served = snapshots.get(OPENMETRICS, gzip=True)  # rendered on demand: still complete
    assert served is not None and served.gzip and gzip.decompress(served.body[0]).endswith(b"# EOF\n")
    assert snapshots.renders == renders + 1


def test_an_unusual_format_is_rendered_each_time_and_never_prerendered(simulator: Simulator) -> None:
    snapshots, _ = snapshots_over(simulator.url)
    snapshots.refresh()
    accept = "text/plain;version=1.0.0;escaping=dots"  # the generic path: not a variant the writer serves
    served = snapshots.get(accept, gzip=True)
    assert served is not None and served.content_type == choose_encoder(accept)[1]
    assert gzip.decompress(b"".join(served.body)).count(b"emr__serverless__session__info{") == 5  # dots escaped
    snapshots.refresh()
    assert snapshots.prerendered == {("openmetrics", True)}


def ours(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if b"emr_serverless_" in line]
