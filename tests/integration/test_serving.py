"""The HTTP server as clients meet it, well-behaved and not: HEAD, encodings, auth, TLS and mutual TLS
(with a real Prometheus), silent and slow clients, many idle connections, and shutdown.

Bounds on time here are generous limits that separate "bounded" from "stuck", never benchmarks."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import math
import os
import select
import shutil
import signal
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config.schema import parse_config
from exporter.render.exposition import negotiate
from exporter.web.app import (
    MIN_SCRAPE_TIMEOUT_SECONDS,
    SCRAPE_TIMEOUT_MARGIN_SECONDS,
    ExporterApp,
    WebContext,
    choose_encoding,
    scrape_timeout,
)
from exporter.web.server import HardenedServer, ServerLimits
from exporter.web.webconfig.watcher import WebConfigWatcher
from exporter.wiring import build_exposition, build_runner
from tests.helpers.certs import KeyPair, make_authority, self_signed
from tests.helpers.prometheus_server import PrometheusServer
from tests.helpers.support import get, samples_of, serving_simulator, simulator_config

PASSWORD = "scrape-me"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
SMALL = ServerLimits(threads=2, max_connections=20, idle_timeout_seconds=10, header_timeout_seconds=1)


# --- helpers ---------------------------------------------------------------------------------------------


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"hi\n"]


@contextlib.contextmanager
def running(app: Any = hello, limits: ServerLimits = SMALL, tls: Any = None) -> Iterator[HardenedServer]:
    server = HardenedServer(("127.0.0.1", 0), app, limits=limits, tls_settings=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop(grace=1)


def port_of(server: HardenedServer) -> int:
    port: int = server.bind_addr[1]
    return port


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@dataclass
class Pki:
    directory: Path
    ca: Path
    server: KeyPair
    client: KeyPair
    rogue: KeyPair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_authority(directory, "ca")
    return Pki(directory, ca.cert_file, ca.issue("server", server=True), ca.issue("client", server=False),
               self_signed(directory, "rogue"))


def client_context(pki: Pki, cert: KeyPair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return context


@pytest.fixture
def store() -> Store:
    store = Store(account_id="123456789012", region="us-east-1")
    app = store.add_application(name="analytics")
    store.add_session(app, name="nb", state="IDLE")
    return store


@pytest.fixture
def simulator(store: Store) -> Iterator[Simulator]:
    with Simulator(store, host="127.0.0.1", port=0) as sim:
        yield sim


@contextlib.contextmanager
def exporter_app(simulator: Simulator, web_config: str | None = None, **sections: Any) -> Iterator[ExporterApp]:
    config = parse_config(simulator_config(simulator.url, **sections))
    runner = build_runner(config)
    watcher = WebConfigWatcher(web_config) if web_config else None
    try:
        yield ExporterApp(WebContext(runner, build_exposition(runner, config), "/metrics"),
                          watcher.current if watcher else None)
    finally:
        runner.close()


# --- HEAD, methods, encodings ---------------------------------------------------------------------------


def call(app: ExporterApp, path: str = "/metrics", method: str = "GET",
         **headers: str) -> tuple[str, dict[str, str], bytes]:
    """One request straight to the WSGI application: (status, headers, body). ``headers`` by their
    WSGI names (``accept_encoding`` for Accept-Encoding)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path,
               **{f"HTTP_{name.upper()}": value for name, value in headers.items()}}
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(response_headers))

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


class Renders:
    """How often the exposition renders: counted by the test, around ``render_parts``. ``slow``, when
    set, holds each render until it is set."""

    def __init__(self, app: ExporterApp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.started = threading.Event()
        self.slow: threading.Event | None = None
        exposition = app.context.exposition
        original = exposition.render_parts

        def counting(accept_header: str = "") -> tuple[list[bytes], str]:
            self.count += 1
            self.started.set()
            if self.slow is not None:
                self.slow.wait(30)
            return original(accept_header)

        monkeypatch.setattr(exposition, "render_parts", counting)


def test_head_answers_the_headers_of_a_get_without_a_body(simulator: Simulator) -> None:
    with exporter_app(simulator) as app, running(app) as server:
        port = port_of(server)
        app.context.runner.collect()
        for path in ("/metrics", "/", "/healthz"):
            get(f"http://127.0.0.1:{port}{path}")  # /metrics: the HEAD below finds this scrape's rendering
            answer = raw_exchange(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK"), head
            assert body == b"", (path, body[:100])
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            assert length == len(get(f"http://127.0.0.1:{port}{path}")[2]) or path == "/metrics"
        status, headers, _ = get(f"http://127.0.0.1:{port}/metrics", method="POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_head_on_metrics_renders_nothing_and_calls_aws_for_nothing(
        store: Store, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with exporter_app(simulator) as app:
        renders = Renders(app, monkeypatch)
        calls = sum(store.calls.values())
        status, headers, body = call(app, method="HEAD", accept=OPENMETRICS, accept_encoding="gzip")
        assert status == "200 OK" and body == b""
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept, Accept-Encoding"
        assert "Content-Length" not in headers  # not known without rendering
        assert renders.count == 0 and sum(store.calls.values()) == calls  # before, a full render, dropped
        # After a GET, its rendering is there: HEAD says its length, still without rendering.
        _, _, got = call(app, accept=OPENMETRICS, accept_encoding="gzip")
        assert renders.count == 1
        _, headers, _ = call(app, method="HEAD", accept=OPENMETRICS, accept_encoding="gzip")
        assert headers["Content-Length"] == str(len(got)) and renders.count == 1


def test_concurrent_scrapes_of_one_collection_share_one_render(
        simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Scrapes closer together than collection.min_interval_seconds share a collection, and now its
    # rendering too: one render, not one per scrape (an HA pair, a scrape storm).
    with exporter_app(simulator, collection={"min_interval_seconds": 60}) as app:
        app.context.runner.collect()
        renders = Renders(app, monkeypatch)
        renders.slow = threading.Event()
        bodies: list[bytes] = []

        def scrape() -> None:
            bodies.append(call(app, accept=OPENMETRICS, accept_encoding="gzip")[2])

        scrapes = [threading.Thread(target=scrape) for _ in range(6)]
        scrapes[0].start()
        assert renders.started.wait(10)  # the first scrape is rendering: the others come while it does
        for thread in scrapes[1:]:
            thread.start()
        time.sleep(0.2)  # not needed to pass: lets the others reach the render under way before it ends
        renders.slow.set()
        for thread in scrapes:
            thread.join(30)
        assert renders.count == 1  # before, one per scrape
        assert len(bodies) == 6 and len(set(bodies)) == 1
        assert gzip.decompress(bodies[0]).count(b"emr_serverless_session_info{") == 1


@pytest.mark.parametrize(
    ("accept_encoding", "encoding"),
    [
        ("", "identity"),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("gzip;q=0", "identity"),
        ("gzip; q=0.000", "identity"),
        ("gzip;q=0, identity", "identity"),
        ("identity", "identity"),
        ("*", "gzip"),
        ("*;q=0", None),  # refuses everything, identity included: 406
        ("*;q=0, gzip;q=0.5", "gzip"),
        ("*;q=0, identity", "identity"),
        ("gzip;q=0.5, identity;q=1", "identity"),
        ("gzip;q=1, identity;q=0.5", "gzip"),
        ("identity;q=0, gzip;q=0.1", "gzip"),
        ("identity;q=0", None),
        ("identity;q=0, deflate", None),
        ("gzip;q=0, identity;q=0", None),
        ("deflate", "identity"),
        ("gzip;q=banana", "identity"),
    ],
)
def test_accept_encoding_negotiation(accept_encoding: str, encoding: str | None) -> None:
    assert choose_encoding(accept_encoding) == encoding


HEADER_TEXT = st.text(alphabet=st.sampled_from(list("abcdeginopqrstvxyz*/-.=;, 0123456789\"")), max_size=80)


@given(HEADER_TEXT | st.sampled_from(["application/openmetrics-text", "text/plain", "gzip", "identity"]).flatmap(
    lambda value: HEADER_TEXT.map(lambda rest: value + rest)))
def test_any_accept_or_accept_encoding_header_is_answered(header: str) -> None:
    negotiated = negotiate(header)
    assert negotiated.content_type.startswith(("text/plain; version=", "application/openmetrics-text; version=1.0.0"))
    assert choose_encoding(header) in ("gzip", "identity", None)


def test_an_accept_encoding_that_refuses_every_encoding_gets_406(simulator: Simulator) -> None:
    with exporter_app(simulator) as app:
        for refusing in ("identity;q=0", "*;q=0", "gzip;q=0, identity;q=0"):
            status, headers, body = call(app, accept_encoding=refusing)
            assert status == "406 Not Acceptable" and b"gzip or identity" in body, refusing
            assert "Content-Encoding" not in headers
        status, _, body = call(app, accept_encoding="identity;q=0, gzip")  # everything else as before
        assert status == "200 OK" and b"emr_serverless_up" in gzip.decompress(body)


def test_openmetrics_of_any_version_is_answered_as_what_it_is(simulator: Simulator) -> None:
    # Prometheus asks for OpenMetrics 0.0.1 as a fallback (and scrape_protocols can make it the only
    # choice): it gets OpenMetrics, not text. A version this exporter does not write is answered with
    # the version the body is, not the one asked.
    with exporter_app(simulator) as app:
        for accept in ("application/openmetrics-text; version=0.0.1", "application/openmetrics-text; version=99"):
            status, headers, body = call(app, accept=accept)
            assert status == "200 OK"
            assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0; charset=utf-8")
            assert body.endswith(b"# EOF\n")
            families = {family.name for family in parse_openmetrics(body.decode())}  # type: ignore[no-untyped-call]
            assert "emr_serverless_up" in families


@pytest.mark.parametrize("header", ["-5", "nan", "-inf", "0.0001", "1e-300", "0", "-0", "inf", "garbage", ""])
def test_no_scrape_timeout_header_ends_the_collection_at_once(store: Store, simulator: Simulator, header: str) -> None:
    # ListApplications takes 0.3 s: -5, nan, -inf and 0.0001 used to end the collection after 0.1 s (up 0),
    # while 0, inf and garbage were ignored. Now every non-finite or non-positive value is ignored, and a
    # tiny positive one leaves the collection at least MIN_SCRAPE_TIMEOUT_SECONDS.
    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=300))
    with exporter_app(simulator) as app:
        status, _, body = call(app, x_prometheus_scrape_timeout_seconds=header)
    assert status == "200 OK"
    assert [sample.value for sample in samples_of(body.decode())["emr_serverless_up"]] == [1.0], header


@given(st.text() | st.floats().map(str))
def test_a_scrape_timeout_is_ignored_or_a_sane_bound(header: str) -> None:
    seconds = scrape_timeout(header)
    assert seconds is None or (math.isfinite(seconds) and seconds >= MIN_SCRAPE_TIMEOUT_SECONDS)


def test_a_scrape_timeout_leaves_the_scraper_a_margin() -> None:
    assert scrape_timeout("10") == 10 - SCRAPE_TIMEOUT_MARGIN_SECONDS
    assert scrape_timeout("1.2") == MIN_SCRAPE_TIMEOUT_SECONDS


def test_gzip_over_http(simulator: Simulator) -> None:
    with exporter_app(simulator) as app, running(app) as server:
        url = f"http://127.0.0.1:{port_of(server)}/metrics"
        status, headers, body = get(url, headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept, Accept-Encoding"
        assert b"emr_serverless_up" in gzip.decompress(body)
        status, headers, body = get(url, headers={"Accept-Encoding": "gzip;q=0"})
        assert "Content-Encoding" not in headers and body.startswith(b"# HELP")
        assert int(headers["Content-Length"]) == len(body)


# --- auth, headers, rate limit --------------------------------------------------------------------------


def test_basic_auth_guards_everything_but_the_probes(tmp_path: Path, simulator: Simulator) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: {HASH}\n"
                   "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
    with exporter_app(simulator, str(web)) as app, running(app) as server:
        base = f"http://127.0.0.1:{port_of(server)}"
        for path in ("/metrics", "/", "/nope"):
            status, headers, _ = get(base + path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert get(base + path, headers={"Authorization": basic("prometheus", "wrong")})[0] == 401
        status, headers, body = get(base + "/metrics", headers={"Authorization": basic("prometheus", PASSWORD)})
        assert status == 200 and b"emr_serverless_up" in body and headers["X-Content-Type-Options"] == "nosniff"
        assert get(base + "/nope", headers={"Authorization": basic("prometheus", PASSWORD)})[0] == 404
        assert get(base + "/healthz")[0] == 200
        assert get(base + "/readyz")[0] == 200


def test_rate_limit_answers_429_past_the_burst(tmp_path: Path, simulator: Simulator) -> None:
    web = tmp_path / "web.yml"
    web.write_text("rate_limit:\n  interval: 1h\n  burst: 2\n")
    with exporter_app(simulator, str(web)) as app, running(app) as server:
        base = f"http://127.0.0.1:{port_of(server)}"
        assert [get(base + "/")[0] for _ in range(3)] == [200, 200, 429]
        assert get(base + "/healthz")[0] == 200  # probes are never limited


# --- TLS --------------------------------------------------------------------------------------------------


def tls_web_config(directory: Path, pki: Pki, **tls: Any) -> Path:
    web = directory / "web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(pki.server.cert), "key_file": str(pki.server.key), **tls},
        "basic_auth_users": {"prometheus": HASH},
    }))
    return web


def test_a_real_prometheus_scrapes_over_mutual_tls_with_basic_auth(
    tmp_path: Path, simulator: Simulator, pki: Pki
) -> None:
    web = tls_web_config(tmp_path, pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(pki.ca))
    tls_config = {"ca_file": str(pki.ca), "cert_file": str(pki.client.cert), "key_file": str(pki.client.key)}
    good = {"scheme": "https", "tls_config": tls_config, "basic_auth": {"username": "prometheus", "password": PASSWORD}}
    with serving_simulator(tmp_path, simulator.url, "--web.config.file", str(web),
                           scheme="https", context=client_context(pki, pki.client)) as served:
        url = served.url
        target = url.removeprefix("https://")

        def job(name: str, **settings: Any) -> dict[str, Any]:
            return {"job_name": name, "static_configs": [{"targets": [target]}], **settings}

        jobs = [
            job("wrong-password", **{**good, "basic_auth": {"username": "prometheus", "password": "nope"}}),
            job("no-client-cert", **{**good, "tls_config": {"ca_file": str(pki.ca)}}),
            job("plain-http", basic_auth=good["basic_auth"]),
        ]
        with PrometheusServer([target], scrape=good, extra_jobs=jobs) as prometheus:
            prometheus.wait_for('up{job="emr-serverless-exporter"} == 1')
            assert prometheus.wait_for('emr_serverless_up{job="emr-serverless-exporter",target="sim"} == 1')
            for name in ("wrong-password", "no-client-cert", "plain-http"):
                prometheus.wait_for(f'up{{job="{name}"}} == 0')
            errors = {t["labels"]["job"]: t["lastError"] for t in prometheus.targets_status()}
        assert "401" in errors["wrong-password"], errors
        assert errors["no-client-cert"] and errors["plain-http"], errors


def test_tls_clients_with_and_without_the_right_certificate(tmp_path: Path, simulator: Simulator, pki: Pki) -> None:
    web = tls_web_config(tmp_path, pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(pki.ca))
    auth = {"Authorization": basic("prometheus", PASSWORD)}
    with serving_simulator(tmp_path, simulator.url, "--web.config.file", str(web),
                           scheme="https", context=client_context(pki, pki.client)) as served:
        url = served.url
        assert get(url + "/metrics", context=client_context(pki, pki.client), headers=auth)[0] == 200
        assert get(url + "/metrics", context=client_context(pki, pki.client))[0] == 401
        for refused in (None, pki.rogue):  # no certificate; a certificate no trusted CA signed
            with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
                get(url + "/healthz", context=client_context(pki, refused), timeout=5)
        # Plain HTTP to the TLS port: a 400 that says so, as Go's servers answer.
        status, _, body = get(url.replace("https", "http") + "/metrics")
        assert status == 400 and b"HTTP request to an HTTPS server" in body


def test_client_allowed_sans(tmp_path: Path, simulator: Simulator, pki: Pki) -> None:
    ca = make_authority(tmp_path, "sans-ca")
    allowed = ca.issue("allowed", server=False, sans=("prometheus.example.com",))
    other = ca.issue("other", server=False, sans=("intruder.example.com",))
    web = tls_web_config(tmp_path, pki, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(ca.cert_file),
                         client_allowed_sans=["prometheus.example.com"])
    with serving_simulator(tmp_path, simulator.url, "--web.config.file", str(web),
                           scheme="https", context=client_context(pki, allowed)) as served:
        url = served.url
        assert get(url + "/healthz", context=client_context(pki, allowed))[0] == 200
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError, http.client.HTTPException)):
            get(url + "/healthz", context=client_context(pki, other), timeout=5)


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path, simulator: Simulator, pki: Pki) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(pki.server.cert, served / "tls.crt")
    shutil.copy(pki.server.key, served / "tls.key")
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: served/tls.crt\n  key_file: served/tls.key\n")
    renewed_ca = make_authority(tmp_path, "renewed-ca")
    renewed = renewed_ca.issue("renewed", server=True)
    renewed_client = ssl.create_default_context(cafile=str(renewed_ca.cert_file))
    with serving_simulator(tmp_path, simulator.url, "--web.config.file", "web.yml",
                           scheme="https", context=client_context(pki)) as exporter:
        process, url = exporter.process, exporter.url
        with pytest.raises(urllib.error.URLError):
            get(url + "/healthz", context=renewed_client)
        os.replace(renewed.key, served / "tls.key.new")
        os.replace(renewed.cert, served / "tls.crt")
        os.replace(served / "tls.key.new", served / "tls.key")
        deadline = time.monotonic() + 20
        while True:
            try:
                assert get(url + "/healthz", context=renewed_client)[0] == 200
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the renewed certificate was not picked up"
                time.sleep(0.3)
        assert process.poll() is None


# --- the probes' own workers -----------------------------------------------------------------------------


class Holding:
    """A WSGI application that answers with the name of the thread serving the request; ``/hold`` first
    waits until ``release`` is set, and counts in ``held`` that it does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = threading.Semaphore(0)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/hold":
            self.held.release()
            self.release.wait(30)
        body = threading.current_thread().name.encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


@contextlib.contextmanager
def probed(app: Any, limits: ServerLimits = SMALL, tls: Any = None) -> Iterator[HardenedServer]:
    server = HardenedServer(("127.0.0.1", 0), app, limits=limits, tls_settings=tls,
                            probe_paths=("/healthz", "/readyz"))
    server.start()
    try:
        yield server
    finally:
        server.stop(grace=1)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_probes_answer_while_every_worker_is_held(pki: Pki, tls: bool) -> None:
    app = Holding()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    client = client_context(pki) if tls else None
    with probed(app, tls=(lambda: (context, ())) if tls else None) as server:
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port_of(server)}"
        holders = [threading.Thread(target=get, args=(base + "/hold",), kwargs={"timeout": 40, "context": client})
                   for _ in range(2 * SMALL.threads)]  # every worker, and as many queued
        for holder in holders:
            holder.start()
        try:
            for _ in range(SMALL.threads):
                assert app.held.acquire(timeout=20)  # every pool worker is in /hold
            # Without workers of their own, these waited for /hold's 30 s, past the client's 10 s.
            answers = [get(base + path, timeout=10, context=client) for path in ("/healthz", "/readyz")]
            held = not app.release.is_set()
        finally:
            app.release.set()
            for holder in holders:
                holder.join(timeout=40)
    assert held and [(status, body.startswith(b"http-probe-")) for status, _, body in answers] == [(200, True)] * 2


def test_only_the_probes_without_a_body_go_to_the_probe_workers_and_keep_alive_still_works() -> None:
    requests = [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"\r\nHEAD /readyz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET /healthz/ HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\ncontent-LENGTH : 2\r\n\r\nok", False),  # its body is read after
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        # Last: cheroot leaves an unread chunked body on the connection, whatever the worker.
        (b"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
         b"2\r\nok\r\n0\r\n\r\n", False),
    ]
    with probed(Holding()) as server:  # pipelined on one connection, each routed on its own
        answers = raw_exchange(port_of(server), b"".join(request for request, _ in requests))
    heads = answers.split(b"HTTP/1.1 200 OK")[1:]
    assert len(heads) == len(requests), answers
    for (request, to_probe_workers), head in zip(requests, heads, strict=True):
        if not request.lstrip().startswith(b"HEAD"):
            assert head.rstrip().rsplit(b"\r\n", 1)[1].startswith(b"http-probe-") is to_probe_workers, (request, head)


def test_a_client_that_reads_no_probe_answers_is_cut_at_the_probe_write_deadline() -> None:
    # One probe worker, and socket and write timeouts of 120 s: a client that pipelines probes and reads
    # nothing (here the answers are 64 KB, so the buffers fill at once) held the probes' worker that long.
    def large(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "65536")])
        return [b"x" * 65536]

    limits = replace(SMALL, probe_threads=1, idle_timeout_seconds=120, write_timeout_seconds=120)
    with probed(large, limits) as server, socket.socket() as reader_of_nothing:
        reader_of_nothing.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader_of_nothing.connect(("127.0.0.1", port_of(server)))
        reader_of_nothing.settimeout(40)
        # More than the server reads ahead: its close then resets the connection.
        reader_of_nothing.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 6000)
        poll = select.poll()
        poll.register(reader_of_nothing, select.POLLERR | select.POLLHUP)
        cut = poll.poll(40_000)  # the reset, seen without reading
        status = get(f"http://127.0.0.1:{port_of(server)}/healthz", timeout=10)[0]
    assert cut and status == 200


# --- silent, slow and many clients ------------------------------------------------------------------------


def test_silent_connections_take_no_worker() -> None:
    limits = ServerLimits(threads=2, max_connections=400, idle_timeout_seconds=30)
    with running(limits=limits) as server:
        threads_before = threading.active_count()
        silent = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(300)]
        try:
            # With a worker per connection, two workers would sit 30 s on each silent one before this.
            assert get(f"http://127.0.0.1:{port_of(server)}/", timeout=10)[0] == 200
            assert threading.active_count() <= threads_before + 2
        finally:
            for sock in silent:
                sock.close()


def test_a_silent_tls_client_does_not_stall_the_server(pki: Pki) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    with running(tls=lambda: (context, ())) as server:
        silent = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(5)]
        try:  # cheroot alone handshakes in its accept loop: 5 silent clients would stall it 5 x 10 s
            assert get(f"https://127.0.0.1:{port_of(server)}/", context=client_context(pki), timeout=5)[0] == 200
        finally:
            for sock in silent:
                sock.close()


def test_a_client_that_stops_mid_request_is_cut_at_the_header_deadline() -> None:
    with running() as server:  # header deadline 1 s; each socket read may wait 10 s
        stalled = []
        for _ in range(4):  # twice the workers
            sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=8)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            stalled.append(sock)
        try:
            assert get(f"http://127.0.0.1:{port_of(server)}/", timeout=8)[0] == 200
            for sock in stalled:
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(1024) == b""  # closed by the server well before the 8 s socket timeout
        finally:
            for sock in stalled:
                sock.close()


def _partial_heads(port: int, count: int, tls: bool) -> list[socket.socket]:
    """``count`` connections that send the first lines of a request head (TLS: the first bytes of a
    ClientHello) and then nothing."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00" if tls else b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        opened.append(sock)
    return opened


@pytest.mark.parametrize("clients", ["50 silent partial heads", "16 tricklers", "20 silent partial TLS handshakes"])
def test_slow_clients_do_not_hold_a_scrape(pki: Pki, clients: str) -> None:
    # With the default limits (8 workers, a 10 s head deadline), a worker per slow client held every
    # worker for the deadline: the scrape took 10 s or more. Now heads are read in the selector loop and
    # a worker sees only complete ones. benchmarks/slow_clients.py measures it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    tls = "TLS" in clients
    with running(limits=ServerLimits(), tls=(lambda: (context, ())) if tls else None) as server:
        port = port_of(server)
        slow = _partial_heads(port, int(clients.split()[0]), tls)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.2):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")

        trickler = threading.Thread(target=trickle, daemon=True)
        if "trickler" in clients:
            trickler.start()
        try:
            time.sleep(0.5)  # every slow client has been seen by the server
            scheme = "https" if tls else "http"
            status, _, body = get(f"{scheme}://127.0.0.1:{port}/", timeout=5,
                                  context=client_context(pki) if tls else None)
            assert status == 200 and body == b"hi\n"
        finally:
            stop.set()
            for sock in slow:
                sock.close()


def test_a_head_in_pieces_pipelined_requests_and_keep_alive_are_served(pki: Pki) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    for tls in (False, True):
        with running(tls=(lambda: (context, ())) if tls else None) as server:
            sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=8)
            if tls:
                sock = client_context(pki).wrap_socket(sock, server_hostname="localhost")
            with sock:
                for piece in (b"GET / HT", b"TP/1.1\r\nHost: x\r", b"\n\r\n"):  # a head in three reads
                    sock.sendall(piece)
                    time.sleep(0.1)
                # Then two requests in one write, the second closing the connection.
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answers = b""
                while chunk := sock.recv(65536):
                    answers += chunk
            assert answers.count(b"HTTP/1.1 200 OK") == 3 and answers.count(b"hi\n") == 3, (tls, answers)


def test_at_the_connection_limit_the_longest_idle_connection_makes_room() -> None:
    with running() as server:  # at most 20 connections
        idle = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(40)]
        try:
            assert get(f"http://127.0.0.1:{port_of(server)}/", timeout=10)[0] == 200
            assert server.open_connections <= SMALL.max_connections
            assert idle[0].recv(1) == b""  # the oldest were closed to make room
        finally:
            for sock in idle:
                sock.close()


def test_a_thousand_idle_connections_add_no_threads_and_a_scrape_still_works(
    tmp_path: Path, simulator: Simulator
) -> None:
    with serving_simulator(tmp_path, simulator.url) as served:
        process, url = served.process, served.url
        get(url + "/metrics")  # the collection's own threads exist from now on
        before = thread_count(process.pid)
        port = int(url.rsplit(":", 1)[1])
        idle = []
        try:
            for _ in range(1000):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            during = thread_count(process.pid)
            status, _, body = get(url + "/metrics", timeout=20)
            after = thread_count(process.pid)
        finally:
            for sock in idle:
                sock.close()
    assert status == 200 and b"emr_serverless_up" in body
    print(f"threads: {before} before, {during} with 1,000 idle connections, {after} after a scrape")
    assert during <= before + 2 and after <= before + 2


# --- shutdown ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_during_a_40_second_aws_call(
    tmp_path: Path, store: Store, simulator: Simulator, signum: signal.Signals
) -> None:
    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=40_000))
    with serving_simulator(tmp_path, simulator.url, "--log.format", "json", ready="/healthz") as served:
        process, url = served.process, served.url
        assert get(url + "/readyz")[0] == 503  # the first collection is stuck in ListApplications
        answers: list[object] = []
        scrape = threading.Thread(target=lambda: answers.append(_scrape_or_error(url + "/metrics")))
        scrape.start()
        time.sleep(1.0)  # the scrape has joined the collection stuck in ListApplications
        sent = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - sent
        scrape.join(timeout=30)
    print(f"{signum.name}: exit {process.returncode} after {took:.2f}s; scrape: {answers}")
    assert process.returncode == 0, stderr
    assert took < 5.0, stderr
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        json.loads(line)  # nothing but log records
    assert answers == [200], answers  # the scrape in flight gets what is known


def _scrape_or_error(url: str) -> object:
    try:
        return get(url, timeout=30)[0]
    except (ConnectionError, http.client.HTTPException, urllib.error.URLError):
        return "connection closed"


def test_the_default_listen_address_form_serves_every_interface(tmp_path: Path, simulator: Simulator) -> None:
    """`:PORT` (the default is `:9865`) binds every interface, IPv4 and IPv6 where the host has it."""
    with serving_simulator(tmp_path, simulator.url, host="", ready="/healthz") as served:
        port = int(served.url.rsplit(":", 1)[1])
        if socket.has_ipv6:
            with contextlib.suppress(OSError):  # a host without an IPv6 loopback has nothing to check
                socket.create_connection(("::1", port), timeout=2).close()
                assert get(f"http://[::1]:{port}/healthz", timeout=5)[0] == 200
