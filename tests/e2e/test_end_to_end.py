"""The exporter against the simulator over HTTP: real boto3 client, signing, retries and pagination."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.config.schema import parse_config
from exporter.model.kinds import SESSIONS
from exporter.model.session import label_safe
from exporter.wiring import build_registry, build_runner
from tests.helpers import support
from tests.helpers.prometheus_server import PrometheusServer
from tests.helpers.support import (
    free_port,
    promtool_check,
    run_exporter,
    samples_of,
    serving,
    session_ids,
    simulator_config,
    value,
)

ACCOUNT = "123456789012"
HOUR = 3600.0
AWKWARD_TAGS = {
    "aws:cloudformation:stack-name": "stack-1",
    "team": 'say "hi" \\ back\nslash',
    "Ort": "Zürich 東京 🚀",
}


@pytest.fixture
def store() -> Store:
    return Store(account_id=ACCOUNT, region="us-east-1")


def awkward_world(store: Store) -> dict[str, Any]:
    """Odd tags, an unknown future state, a vanishing session, many pages, old and recent endings."""
    now = time.time()
    app = store.add_application(name="analytics", state="STARTED")
    store.add_application(name="stopped-app", state="STOPPED")
    many = [store.add_session(app, name=f"nb-{i}", state="IDLE" if i % 2 else "BUSY") for i in range(120)]
    odd = store.add_session(app, name='odd "name"', state="BUSY", tags=AWKWARD_TAGS,
                            total_utilization={"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 1.0},
                            billed_utilization={"vCPUHour": 2.5, "memoryGBHour": 10.0, "storageGBHour": 1.0})
    future = store.add_session(app, name="future", state="SUSPENDED")
    vanished = store.add_session(app, name="vanishes", state="IDLE")
    store.add_fault(Fault(operation="GetSession", error_code="ResourceNotFoundException",
                          match={"sessionId": vanished}))
    old_done = store.add_session(app, name="old", state="TERMINATED", created_at=now - 3 * HOUR,
                                 started_at=now - 3 * HOUR, ended_at=now - 2 * HOUR)
    recent_done = store.add_session(app, name="recent", state="TERMINATED", created_at=now - 0.5 * HOUR,
                                    started_at=now - 0.5 * HOUR, ended_at=now - 600)
    long_lived_done = store.add_session(app, name="long-lived", state="FAILED", created_at=now - 0.9 * HOUR,
                                        started_at=now - 0.9 * HOUR, ended_at=now - 300)
    return {"app": app, "many": many, "odd": odd, "future": future, "vanished": vanished,
            "old_done": old_done, "recent_done": recent_done, "long_lived_done": long_lived_done}


def write_config(tmp_path: Path, simulator: Simulator, **sections: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(simulator_config(simulator.url, **sections))
    return path


def collect_in_process(config_text: str) -> tuple[Any, dict[str, list[Any]]]:
    config = parse_config(config_text)
    runner = build_runner(config)
    try:
        results = runner.collect()
        return results, samples_of(generate_latest(build_registry(runner, config)).decode())
    finally:
        runner.close()


def config_text(simulator: Simulator, **sections: Any) -> str:
    return simulator_config(simulator.url, **sections)


# --- the --once run over awkward data -----------------------------------------------------------------


def test_once_over_awkward_data_is_complete_and_correct(tmp_path: Path, store: Store, simulator: Simulator) -> None:
    world = awkward_world(store)
    config = write_config(tmp_path, simulator, metrics={"tag_labels": ["team", "aws:cloudformation:stack-name"]})
    result = run_exporter(["--config.file", str(config), "--once"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    samples = samples_of(result.stdout)

    expected = {*world["many"], world["odd"], world["future"], world["recent_done"], world["long_lived_done"]}
    assert session_ids(samples) == expected
    assert value(samples, "emr_serverless_up", target="sim") == 1
    # Vanished: dropped quietly, counted; old terminated: never fetched.
    assert value(samples, "emr_serverless_api_requests_total", operation="GetSession",
                 outcome="ResourceNotFoundException") == 1
    assert value(samples, "emr_serverless_api_requests_total", operation="GetSession", outcome="ok") == len(expected)
    assert store.calls["GetSession"] == len(expected) + 1
    # 122 active sessions: 3 pages; the windowed listing holds the active ones too plus recent endings.
    assert value(samples, "emr_serverless_api_requests_total", operation="ListSessions", outcome="ok") >= 3 + 3

    odd = {s.labels["session_id"]: s.labels for s in samples["emr_serverless_session_info"]}[world["odd"]]
    assert odd["session_name"] == 'odd "name"'
    assert odd["tag_team"] == label_safe(AWKWARD_TAGS["team"])
    assert odd["tag_aws_cloudformation_stack_name"] == "stack-1"
    assert odd["account_id"] == ACCOUNT and odd["application_name"] == "analytics"
    tags = {s.labels["session_id"]: s.labels for s in samples["emr_serverless_session_tags"]}[world["odd"]]
    assert tags["tag_Ort"] == "Zürich 東京 🚀"
    assert value(samples, "emr_serverless_session_billed_vcpu_seconds_total", session_id=world["odd"]) == 2.5 * 3600

    future_states = [s for s in samples["emr_serverless_session_state"] if s.labels["session_id"] == world["future"]]
    assert {s.labels["state"] for s in future_states} == {*SESSIONS.states, "SUSPENDED"}
    assert [s.labels["state"] for s in future_states if s.value == 1] == ["SUSPENDED"]
    assert "unknown session state" in result.stderr

    assert value(samples, "emr_serverless_application_sessions", application_id=world["app"], state="FAILED") == 1
    assert value(samples, "emr_serverless_application_sessions", application_id=world["app"], state="TERMINATED") == 1
    stopped = [s for s in samples["emr_serverless_application_state"] if s.labels["application_name"] == "stopped-app"]
    assert [s.labels["state"] for s in stopped if s.value == 1] == ["STOPPED"]

    promtool_check(result.stdout)


def test_a_third_of_get_session_failing_with_500(tmp_path: Path, store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="analytics")
    ids = [store.add_session(app, name=f"s{i}", state="BUSY") for i in range(30)]
    failing = set(ids[::3])
    store.add_fault(Fault(operation="GetSession", error_code="InternalServerException",
                          match=lambda params: params.get("sessionId") in failing))
    config = write_config(tmp_path, simulator, aws={"max_attempts": 2})
    result = run_exporter(["--config.file", str(config), "--once"])

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    samples = samples_of(result.stdout)
    assert value(samples, "emr_serverless_up", target="sim") == 0
    assert session_ids(samples) == set(ids) - failing
    # Every attempt is counted: each failing session was tried twice (aws.max_attempts).
    assert value(samples, "emr_serverless_api_requests_total", operation="GetSession",
                 outcome="InternalServerException") == 2 * len(failing)
    assert store.calls["GetSession"] == len(ids) + len(failing)
    warnings = [line for line in result.stderr.splitlines() if "level=warn" in line]
    assert len(warnings) == 1 and "GetSession:InternalServerException=10" in warnings[0]
    assert "emr_serverless_last_success_timestamp_seconds" not in samples  # never completed yet


# --- errors by code, in process -----------------------------------------------------------------------


def test_throttled_listing_is_counted_by_code_keeps_up_and_other_applications_survive(
    store: Store, simulator: Simulator
) -> None:
    throttled = store.add_application(name="throttled")
    healthy = store.add_application(name="healthy")
    store.add_session(throttled, state="IDLE")
    ok_sessions = {store.add_session(healthy, state="IDLE") for _ in range(3)}
    store.add_fault(Fault(operation="ListSessions", error_code="ThrottlingException",
                          match={"applicationId": throttled}))
    results, samples = collect_in_process(config_text(simulator, aws={"max_attempts": 1}))
    assert results[0].up  # throttling is no error: the listing waits for a later collection
    assert session_ids(samples) == ok_sessions
    assert value(samples, "emr_serverless_api_requests_total", operation="ListSessions",
                 outcome="ThrottlingException") >= 1
    assert results[0].errors == []


def test_everything_failing_still_gives_metrics(store: Store, simulator: Simulator) -> None:
    store.add_application(name="a")
    store.add_fault(Fault(operation="ListApplications", error_code="InternalServerException"))
    _results, samples = collect_in_process(config_text(simulator, aws={"max_attempts": 1}))
    assert value(samples, "emr_serverless_up", target="sim") == 0
    assert value(samples, "emr_serverless_api_requests_total", operation="ListApplications",
                 outcome="InternalServerException") == 1
    assert "emr_serverless_last_success_timestamp_seconds" not in samples


def test_unreachable_endpoint_is_counted_not_raised() -> None:
    text = yaml.safe_dump({
        "targets": [{"region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{free_port()}", "name": "gone"}],
        "aws": {"max_attempts": 1, "connect_timeout_seconds": 1},
    })
    _results, samples = collect_in_process(text)
    assert value(samples, "emr_serverless_up", target="gone") == 0
    assert value(samples, "emr_serverless_api_requests_total", operation="ListApplications",
                 outcome="EndpointConnectionError") == 1


# --- discovery ------------------------------------------------------------------------------------------


def test_application_filters(store: Store, simulator: Simulator) -> None:
    a = store.add_application(name="analytics-prod", state="STARTED")
    b = store.add_application(name="analytics-dev", state="STOPPED")
    c = store.add_application(name="etl", state="STARTED")
    for app in (a, b, c):
        store.add_session(app, state="IDLE")

    def apps(**discovery: Any) -> set[str]:
        _, samples = collect_in_process(config_text(simulator, discovery=discovery))
        return {s.labels["application_id"] for s in samples.get("emr_serverless_application_info", [])}

    assert apps() == {a, b, c}
    assert apps(application_ids=[a, c]) == {a, c}
    assert apps(application_name_regex="analytics-.*") == {a, b}
    assert apps(application_name_regex="analytics") == set()  # a full match, not a search
    assert apps(application_states=["STOPPED"]) == {b}
    _, samples = collect_in_process(config_text(simulator, discovery={"application_ids": [c]}))
    assert {s.labels["application_id"] for s in samples["emr_serverless_session_info"]} == {c}


def test_terminal_sessions_age_out_and_no_stale_series(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="a")
    now = time.time()
    keep = store.add_session(app, state="TERMINATED", created_at=now - 500, ended_at=now - 100)
    store.add_session(app, state="TERMINATED", created_at=now - 900, ended_at=now - 700)
    active = store.add_session(app, state="IDLE")
    config = parse_config(config_text(simulator, discovery={"terminated_session_max_age_seconds": 600}))
    runner = build_runner(config)
    registry = build_registry(runner, config)
    try:
        runner.collect()
        assert session_ids(samples_of(generate_latest(registry).decode())) == {keep, active}
        store.remove_session(app, active)
        runner.collect()
        assert session_ids(samples_of(generate_latest(registry).decode())) == {keep}
    finally:
        runner.close()


def test_session_that_ended_outside_the_listing_window_is_seen_ending(store: Store, simulator: Simulator) -> None:
    """Created before the window, active last scrape, terminated since: fetched once more, not lost."""
    app = store.add_application(name="a")
    now = time.time()
    old = store.add_session(app, state="BUSY", created_at=now - 10 * HOUR, started_at=now - 10 * HOUR)
    config = parse_config(config_text(simulator, discovery={"terminated_session_max_age_seconds": 600}))
    runner = build_runner(config)
    registry = build_registry(runner, config)
    try:
        runner.collect()
        store.set_session_state(app, old, "TERMINATED", ended_at=time.time())
        runner.collect()
        samples = samples_of(generate_latest(registry).decode())
        assert value(samples, "emr_serverless_session_state", session_id=old, state="TERMINATED") == 1
    finally:
        runner.close()


def test_get_session_concurrency_is_bounded(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="a")
    for _ in range(24):
        store.add_session(app, state="BUSY")
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    original = store.session

    def counting_session(application_id: str, session_id: str) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.05)  # hold the request so that concurrent ones overlap
            return original(application_id, session_id)
        finally:
            with lock:
                in_flight -= 1

    store.session = counting_session  # type: ignore[method-assign]
    results, samples = collect_in_process(config_text(simulator, aws={"max_concurrency": 4}))
    assert results[0].up
    assert len(session_ids(samples)) == 24
    assert 1 < peak <= 4


# --- HTTP ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving_json_logs(config: Path) -> Iterator[str]:
    """The exporter as a real process serving HTTP; yields its base URL once /readyz answers 200."""
    with serving("--config.file", str(config), "--log.format", "json") as served:
        yield served.url
    assert served.process.returncode == 0, served.stderr
    for line in served.stderr.splitlines():
        json.loads(line)  # every log record is one JSON object per line


@pytest.fixture
def served(tmp_path: Path, store: Store, simulator: Simulator) -> Iterator[str]:
    app = store.add_application(name="analytics")
    store.add_session(app, name="nb", state="IDLE", tags={"team": "data"})
    with serving_json_logs(write_config(tmp_path, simulator)) as url:
        yield url


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return support.get(url, headers=headers)


def test_http_endpoints(served: str) -> None:
    status, headers, body = get(f"{served}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = samples_of(body.decode())
    assert value(samples, "emr_serverless_up", target="sim") == 1
    assert len(session_ids(samples)) == 1
    assert "process_cpu_seconds_total" in body.decode()

    status, headers, body = get(f"{served}/metrics", **{"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip" and b"emr_serverless_up" in gzip.decompress(body)
    status, headers, body = get(f"{served}/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")

    status, _, body = get(f"{served}/")
    assert status == 200 and b'href="/metrics"' in body and b"sim" in body
    assert get(f"{served}/healthz")[0] == 200
    assert get(f"{served}/readyz")[0] == 200
    assert get(f"{served}/nope")[0] == 404


def test_metrics_answers_200_when_aws_fails(served: str, store: Store) -> None:
    store.add_fault(Fault(operation="ListApplications", error_code="InternalServerException"))
    status, _, body = get(f"{served}/metrics")
    assert status == 200
    assert value(samples_of(body.decode()), "emr_serverless_up", target="sim") == 0


def test_demo_once_collects_demo_data() -> None:
    result = run_exporter(["--demo", "--once"])
    assert result.returncode == 0, result.stderr
    samples = samples_of(result.stdout)
    assert len(session_ids(samples)) >= 5
    assert "demo" in result.stderr.splitlines()[0]


def test_steady_state_fetches_only_active_sessions(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="a")
    now = time.time()
    active = {store.add_session(app, state="BUSY") for _ in range(5)}
    ended = {store.add_session(app, state="TERMINATED", created_at=now - 500, ended_at=now - 60) for _ in range(7)}
    config = parse_config(config_text(simulator, discovery={"terminated_session_max_age_seconds": 600}))
    runner = build_runner(config)
    registry = build_registry(runner, config)
    try:
        runner.collect()
        assert store.calls["GetSession"] == 12
        assert store.calls["ListSessions"] == 2  # first time: active of any age + all inside the window
        store.reset_calls()
        one_active = next(iter(active))
        store.set_session_state(app, one_active, "TERMINATED", ended_at=time.time())
        runner.collect()
        assert store.calls["GetSession"] == 5  # the active ones, one of which is newly final
        # Steady state: the active sessions (fresh states) and what was created since, one page each.
        assert store.calls["ListSessions"] == 2
        store.reset_calls()
        newcomer = store.add_session(app, state="STARTING")
        runner.collect()
        assert store.calls["GetSession"] == 5  # 4 still active + the newcomer
        assert store.calls["ListSessions"] == 2
        samples = samples_of(generate_latest(registry).decode())
        active.add(newcomer)
        assert session_ids(samples) == active | ended
        assert value(samples, "emr_serverless_cache_hits_total", target="sim", kind="session") == 7 + 8
        # Memory follows discovery: once the final sessions age out they are neither exported nor kept.
        store.remove_application(app)
        runner.collect()
        assert session_ids(samples_of(generate_latest(registry).decode())) == set()
        assert not runner.targets[0].inventories[SESSIONS].objects(time.time())
    finally:
        runner.close()


def test_a_real_prometheus_scrapes_sessions_with_awkward_labels(
    tmp_path: Path, store: Store, simulator: Simulator
) -> None:
    app = store.add_application(name="analytics")
    session = store.add_session(app, name='odd "name"', state="IDLE", tags=AWKWARD_TAGS,
                                total_utilization={"vCPUHour": 0.5})
    config = write_config(tmp_path, simulator, metrics={"tag_labels": ["team"]})
    with serving_json_logs(config) as url, PrometheusServer(targets=[url.removeprefix("http://")]) as prometheus:
        series = prometheus.wait_for(f'emr_serverless_session_info{{session_id="{session}"}}')
        vcpu = prometheus.wait_for(f'emr_serverless_session_vcpu_seconds_total{{session_id="{session}"}}')
        tags = prometheus.wait_for(f'emr_serverless_session_tags{{session_id="{session}"}}')
    labels = series[0]["metric"]
    assert labels["tag_team"] == label_safe(AWKWARD_TAGS["team"])  # the line feed kept
    assert labels["session_name"] == 'odd "name"'
    assert labels["application_name"] == "analytics" and labels["target"] == "sim"
    assert float(vcpu[0]["value"][1]) == 0.5 * 3600
    assert tags[0]["metric"]["tag_Ort"] == AWKWARD_TAGS["Ort"]
    assert tags[0]["metric"]["tag_aws_cloudformation_stack_name"] == "stack-1"


def test_the_scrape_timeout_header_bounds_the_collection(served: str, store: Store) -> None:
    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=4000))
    status, _, body = get(f"{served}/metrics", **{"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert status == 200
    samples = samples_of(body.decode())
    assert value(samples, "emr_serverless_up", target="sim") == 0  # cut at 1.5 s - margin, not the 25 s default
    assert len(session_ids(samples)) == 1  # served as last known


def test_memory_follows_discovery_even_when_every_collection_is_incomplete(store: Store, simulator: Simulator) -> None:
    gone = store.add_application(name="gone")
    throttled = store.add_application(name="throttled")
    now = time.time()
    store.add_session(gone, state="TERMINATED", created_at=now - 500, ended_at=now - 60)
    store.add_session(gone, state="IDLE")
    # A listing that fails every time (throttling would not: it is no error, so the collection is complete).
    store.add_fault(Fault(operation="ListSessions", error_code="InternalServerException",
                          match={"applicationId": throttled}))
    config = parse_config(config_text(simulator, aws={"max_attempts": 1}))
    runner = build_runner(config)
    try:
        runner.collect()
        target = runner.targets[0]
        remembered = {k.obj.state for k in target.inventories[SESSIONS].objects(time.time())}
        assert remembered == {"TERMINATED", "IDLE"}  # remembered despite the incomplete run
        store.remove_application(gone)
        results = runner.collect()
        assert not results[0].up
        assert not target.inventories[SESSIONS].objects(time.time())
    finally:
        runner.close()
