"""Background collection (collection.interval_seconds): scrapes serve a pre-rendered snapshot, cost AWS
nothing, and answer at once whatever AWS does."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.registry import CollectorRegistry

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config.schema import parse_config
from exporter.render.background import FIRST_VARIANTS, REMEMBER_SECONDS, BackgroundRenderer
from exporter.render.exposition import Exposition, negotiate
from exporter.render.lineformat import Syntax
from exporter.render.renderings import ACCEPT, Rendered
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
# Unusual but valid: each a format the direct writer writes, so each must be served the pre-rendered
# body. Before, every one of them took the generic path (a full render per scrape) or the wrong format.
UNUSUAL_ACCEPT_HEADERS: dict[str, Syntax] = {
    "application/openmetrics-text;version=1.0.0;escaping=values": "openmetrics",  # names stay as they are
    "application/openmetrics-text; escaping=allow-utf-8; version=1.0.0; charset=utf-8": "openmetrics",
    "Application/OpenMetrics-Text; Version=1.0.0": "openmetrics",  # media types and names are case-insensitive
    'application/openmetrics-text;version="1.0.0"': "openmetrics",  # a quoted value
    "application/openmetrics-text;version=1.0": "openmetrics",
    "application/openmetrics-text;version=2.0.0": "openmetrics",  # no native histograms here: the same body
    "application/openmetrics-text; version=0.0.1": "openmetrics",
    "text/plain;version=0.0.4;q=0.2,application/openmetrics-text;version=1.0.0;q=0.9": "openmetrics",
    "application/openmetrics-text;version=1.0.0;q=0,text/plain;version=0.0.4": "text",  # q=0: not acceptable
    "text/plain;version=1.0.0;escaping=values": "text",
    "text/plain; charset=utf-8; version=0.0.4": "text",
}


class Renders:
    """The accept headers ``exposition.render_parts`` is called with: the renders done, counted by the
    test (the renderer keeps no count of its own). ``slow`` holds each render until it is set."""

    def __init__(self, exposition: Exposition, monkeypatch: pytest.MonkeyPatch) -> None:
        self.accepts: list[str] = []
        self.started = threading.Event()
        self.slow: threading.Event | None = None
        original = exposition.render_parts

        def recording(accept_header: str = "") -> tuple[list[bytes], str]:
            self.accepts.append(accept_header)
            self.started.set()
            if self.slow is not None:
                self.slow.wait(30)
            return original(accept_header)

        monkeypatch.setattr(exposition, "render_parts", recording)

    @property
    def count(self) -> int:
        return len(self.accepts)

    def kinds(self) -> list[str]:
        return [negotiate(accept).syntax for accept in self.accepts]


@dataclass
class Rendering:
    renderer: BackgroundRenderer
    exposition: Exposition
    generic: CollectorRegistry  # every family through prometheus-client's generic path, over the same runner


def renderer_over(url: str, clock: list[float] | None = None) -> Rendering:
    runner, registry = collecting(url)
    exposition = build_exposition(runner, parse_config(simulator_config(url)))
    now = (lambda: clock[0]) if clock is not None else time.monotonic
    return Rendering(BackgroundRenderer(runner, exposition, interval_seconds=60, clock=now), exposition, registry)


def prerendered(renderer: BackgroundRenderer) -> set[tuple[str, bool]]:
    """The variants the renderer has ready: what HEAD (which renders nothing) finds."""
    formats = {"openmetrics": negotiate(OPENMETRICS), "text": negotiate("")}
    return {(syntax, gzip) for syntax, negotiated in formats.items() for gzip in (True, False)
            if renderer.cached(negotiated, gzip) is not None}


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("gzipped", [True, False])
def test_every_usual_accept_header_is_served_from_the_snapshot(simulator: Simulator, accept: str, gzipped: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Prometheus 3 asks for escaping=allow-utf-8: keyed by content type, the snapshot missed it and every
    # scrape rendered 10,000 sessions anew (1.4 s at scenario L instead of milliseconds).
    rendering = renderer_over(simulator.url)
    renderer, exposition = rendering.renderer, rendering.exposition
    renders = Renders(exposition, monkeypatch)
    negotiated = negotiate(accept)
    assert negotiated.direct and negotiated.content_type == choose_encoder(accept)[1]  # prometheus-client's
    assert renderer.get(negotiated, gzipped) is None  # before the first collection: remembered all the same
    renderer.refresh()
    before = renders.count
    served = renderer.get(negotiated, gzipped)
    assert served is not None and served.content_type == negotiated.content_type and served.gzip == gzipped
    assert renders.count == before  # pre-rendered, not rendered anew
    assert served.body is renderer.get(negotiate(ACCEPT[negotiated.syntax]), gzipped).body  # type: ignore[union-attr]
    fresh, _ = exposition.render(accept)
    body = gzip.decompress(b"".join(served.body)) if gzipped else b"".join(served.body)
    assert ours(body) == ours(fresh)  # the process's own figures moved in between


@pytest.mark.parametrize("accept", UNUSUAL_ACCEPT_HEADERS)
def test_an_unusual_accept_header_the_direct_writer_serves_gets_the_prerendered_body(
        simulator: Simulator, accept: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rendering = renderer_over(simulator.url)
    renderer, exposition = rendering.renderer, rendering.exposition
    renders = Renders(exposition, monkeypatch)
    syntax = UNUSUAL_ACCEPT_HEADERS[accept]
    renderer.get(negotiate(ACCEPT[syntax]), gzip=True)  # asked for: pre-rendered from the next collection on
    renderer.refresh()
    before = renders.count
    negotiated = negotiate(accept)
    served = renderer.get(negotiated, gzip=True)
    assert served is not None and renders.count == before  # no render of its own
    assert served.body is renderer.get(negotiate(ACCEPT[syntax]), gzip=True).body  # type: ignore[union-attr]
    body = gzip.decompress(served.body[0])
    assert body.endswith(b"# EOF\n") == (syntax == "openmetrics")
    assert served.content_type.startswith("application/openmetrics-text; version=1.0.0;" if syntax == "openmetrics"
                                          else "text/plain; version=")
    # The same lines as prometheus-client writes for the usual header. (For escaping=values its OpenMetrics
    # writer escapes legacy sample names all the same, unlike its own HELP lines and Prometheus' model,
    # which leave a legacy name as it is: the direct writer follows Prometheus.)
    assert ours(body) == ours(negotiate(ACCEPT[syntax]).encoder()(rendering.generic))


def test_only_what_was_asked_for_is_prerendered(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    rendering = renderer_over(simulator.url, clock)
    renderer, exposition = rendering.renderer, rendering.exposition
    renders = Renders(exposition, monkeypatch)
    renderer.refresh()
    # Before anyone asks: OpenMetrics with gzip, what Prometheus asks; text is not rendered at all.
    assert prerendered(renderer) == set(FIRST_VARIANTS) == {("openmetrics", True)}
    assert renders.kinds() == ["openmetrics"]

    # Plain text, identity (a curl): rendered on demand from what is known, complete and valid, with
    # its own Content-Type; kept for the next scrapes until the next collection.
    served = renderer.get(negotiate(""), gzip=False)
    assert served is not None and not served.gzip and served.content_type.startswith("text/plain")
    text = b"".join(served.body)
    promtool_check(text)
    assert text.count(b"emr_serverless_session_info{") == 5
    assert renders.kinds() == ["openmetrics", "text"]
    assert renderer.get(negotiate("text/plain;version=0.0.4"), gzip=False) is not None and renders.count == 2

    # The next collection pre-renders it beside OpenMetrics (one render for both): a scrape is a look-up.
    clock[0] += 60
    renderer.refresh()
    assert prerendered(renderer) == {("openmetrics", True), ("text", False)}
    assert renders.count == 4
    again = renderer.get(negotiate(""), gzip=False)
    assert again is not None and again is not served and renders.count == 4
    assert ours(b"".join(again.body)) == ours(exposition.render("")[0])

    # Still asked by Prometheus, no longer by the curl: the curl's variant is forgotten.
    clock[0] += REMEMBER_SECONDS + 1
    assert renderer.get(negotiate(OPENMETRICS), gzip=True) is not None
    renderer.refresh()
    assert prerendered(renderer) == {("openmetrics", True)}
    # And nothing at all once nobody asks: a collection renders nothing.
    clock[0] += REMEMBER_SECONDS + 1
    before = renders.count
    renderer.refresh()
    assert prerendered(renderer) == set() and renders.count == before
    served = renderer.get(negotiate(OPENMETRICS), gzip=True)  # rendered on demand: still complete
    assert served is not None and served.gzip and gzip.decompress(served.body[0]).endswith(b"# EOF\n")
    assert renders.count == before + 1


def test_an_unusual_format_is_rendered_each_time_and_never_prerendered(simulator: Simulator) -> None:
    renderer = renderer_over(simulator.url).renderer
    renderer.refresh()
    accept = "text/plain;version=1.0.0;escaping=dots"  # the generic path: not a variant the writer serves
    served = renderer.get(negotiate(accept), gzip=True)
    assert served is not None and served.content_type == choose_encoder(accept)[1]
    assert gzip.decompress(b"".join(served.body)).count(b"emr__serverless__session__info{") == 5  # dots escaped
    renderer.refresh()
    assert prerendered(renderer) == {("openmetrics", True)}


@pytest.mark.parametrize("accept", ["", "text/plain;version=1.0.0;escaping=dots"], ids=["direct", "generic"])
def test_concurrent_scrapes_of_a_variant_not_prerendered_share_one_render(
        simulator: Simulator, accept: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rendering = renderer_over(simulator.url)
    renderer, exposition = rendering.renderer, rendering.exposition
    renderer.refresh()
    renders = Renders(exposition, monkeypatch)
    renders.slow = threading.Event()
    negotiated = negotiate(accept)
    served: list[Rendered | None] = []
    scrapes = [threading.Thread(target=lambda: served.append(renderer.get(negotiated, gzip=False)))
               for _ in range(6)]
    scrapes[0].start()
    assert renders.started.wait(10)  # the first scrape is rendering: the others come while it does
    for scrape in scrapes[1:]:
        scrape.start()
    time.sleep(0.2)  # not needed to pass: lets the others reach the render under way before it ends
    renders.slow.set()
    for scrape in scrapes:
        scrape.join(30)
    assert renders.count == 1  # one render; before, one per scrape
    assert len(served) == 6 and all(s is not None and s.body is served[0].body for s in served)  # type: ignore[union-attr]


def test_head_renders_nothing_and_asks_for_nothing(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    rendering = renderer_over(simulator.url, clock)
    renderer, exposition = rendering.renderer, rendering.exposition
    renderer.refresh()
    renders = Renders(exposition, monkeypatch)
    # Text is not pre-rendered: HEAD finds nothing, renders nothing, and does not make the next
    # collections pre-render it for ten minutes.
    assert renderer.cached(negotiate(""), gzip=False) is None
    assert renderer.cached(negotiate(OPENMETRICS), gzip=True) is not None  # what is rendered is found
    clock[0] += 60
    renderer.refresh()
    assert renders.kinds() == ["openmetrics"]
    assert prerendered(renderer) == {("openmetrics", True)}


def ours(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if b"emr_serverless_" in line]
