"""The simulator's behaviour: pagination, filters, faults, latency, scenarios and the CLI."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_serverless_simulator import Fault, Lifecycle, Simulator, Store, build_scenario
from tests.helpers.support import FakeClock, simulator_client

ROLE = "arn:aws:iam::123456789012:role/r"
ACTIVE = {"STARTED", "IDLE", "BUSY"}


@pytest.fixture
def store() -> Store:
    return Store(clock=time.time)


@pytest.fixture
def sim(store: Store) -> Iterator[Simulator]:
    with Simulator(store) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Any:
    return simulator_client(sim.url)


def error_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


# ----- pagination and filters ------------------------------------------------------------------


def test_120_sessions_come_in_3_pages_of_50_each_id_once(store: Store, client: Any) -> None:
    app = store.add_application()
    now = time.time()
    ids = [store.add_session(app, name=f"s{i}", created_at=now - i) for i in range(120)]
    store.reset_calls()
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, str] = {"nextToken": token} if token else {}
        page = client.list_sessions(applicationId=app, maxResults=50, **kwargs)
        pages.append([s["sessionId"] for s in page["sessions"]])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    listed = [sid for page in pages for sid in page]
    assert listed == ids  # newest first, each exactly once
    assert store.calls["ListSessions"] == 3
    paginated = [
        s["sessionId"]
        for page in client.get_paginator("list_sessions").paginate(applicationId=app)
        for s in page["sessions"]
    ]
    assert paginated == ids
    assert store.calls["ListSessions"] == 6  # the paginator used the default page size of 50


def test_ties_in_created_at_and_changes_between_pages_lose_nothing(store: Store, client: Any) -> None:
    app = store.add_application()
    same_time = time.time() - 100
    ids = {store.add_session(app, created_at=same_time) for _ in range(30)}
    first = client.list_sessions(applicationId=app, maxResults=10)
    store.add_session(app)  # newer than everything listed: must not shift the next pages
    rest = [s["sessionId"] for page in client.get_paginator("list_sessions").paginate(
        applicationId=app, PaginationConfig={"StartingToken": first["nextToken"], "PageSize": 10})
        for s in page["sessions"]]
    listed = [s["sessionId"] for s in first["sessions"]] + rest
    assert len(listed) == len(set(listed)) == 30
    assert set(listed) == ids


def test_applications_paginate_and_filter(store: Store, client: Any) -> None:
    started = {store.add_application(name=f"a{i}", created_at=time.time() - i) for i in range(7)}
    stopped = store.add_application(name="stopped", state="STOPPED")
    pages = list(client.get_paginator("list_applications").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["applications"]) for p in pages] == [3, 3, 2]
    only_stopped = client.list_applications(states=["STOPPED"])["applications"]
    assert [a["id"] for a in only_stopped] == [stopped]
    assert {a["id"] for a in client.list_applications(states=["STARTED"])["applications"]} == started
    first = client.list_applications()["applications"][0]
    assert first["id"] == stopped  # newest first
    assert first["architecture"] == "X86_64"


def test_states_filter(store: Store, client: Any) -> None:
    app = store.add_application()
    by_state = {state: store.add_session(app, state=state) for state in ("IDLE", "BUSY", "TERMINATED", "FAILED")}
    listed = client.list_sessions(applicationId=app, states=["IDLE", "FAILED"])["sessions"]
    assert {s["sessionId"] for s in listed} == {by_state["IDLE"], by_state["FAILED"]}
    assert {s["state"] for s in listed} == {"IDLE", "FAILED"}


def test_created_at_filters(store: Store, client: Any) -> None:
    app = store.add_application()
    base = time.time() - 10_000
    ids = [store.add_session(app, created_at=base + 1000 * i) for i in range(5)]
    at = [datetime.fromtimestamp(base + 1000 * i, timezone.utc) for i in range(5)]

    def listed(**kwargs: Any) -> set[str]:
        return {s["sessionId"] for s in client.list_sessions(applicationId=app, **kwargs)["sessions"]}

    assert listed(createdAtAfter=at[2] + timedelta(seconds=1)) == set(ids[3:])
    assert listed(createdAtBefore=at[2] - timedelta(milliseconds=1)) == set(ids[:2])
    # botocore sends microseconds (…T…:…:….123456Z) for a fractional datetime and whole seconds otherwise.
    assert listed(createdAtAfter=at[1] - timedelta(microseconds=500), createdAtBefore=at[3] + timedelta(seconds=1)) \
        == set(ids[1:4])
    assert listed(createdAtAfter=at[4] + timedelta(hours=1)) == set()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"maxResults": 0},
        {"maxResults": 51},
        {"nextToken": "garbage"},
        {"nextToken": base64.urlsafe_b64encode(b'{"not": "a cursor"}').decode()},
        {"states": ["SLEEPING"]},
    ],
)
def test_bad_list_sessions_parameters_are_validation_errors(store: Store, sim: Simulator, kwargs: Any) -> None:
    client = simulator_client(sim.url, validate=False)
    app = store.add_application()
    store.add_session(app)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_sessions(applicationId=app, **kwargs)


def test_bad_max_results_for_applications(sim: Simulator) -> None:
    client = simulator_client(sim.url, validate=False)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_applications(maxResults=51)


# ----- sessions --------------------------------------------------------------------------------


def test_state_changes_after_the_fact_and_made_up_states(store: Store, client: Any) -> None:
    app = store.add_application()
    sid = store.add_session(app, state="IDLE", created_at=time.time() - 100)
    session = client.get_session(applicationId=app, sessionId=sid)["session"]
    assert session["state"] == "IDLE" and "idleSince" in session and "endedAt" not in session
    store.set_session_state(app, sid, "SUSPENDED")
    session = client.get_session(applicationId=app, sessionId=sid)["session"]
    assert session["state"] == "SUSPENDED" and "idleSince" not in session
    ended = time.time() - 5
    store.set_session_state(app, sid, "TERMINATED", ended_at=ended)
    session = client.get_session(applicationId=app, sessionId=sid)["session"]
    assert session["state"] == "TERMINATED"
    assert session["endedAt"].timestamp() == pytest.approx(ended, abs=0.01)
    store.update_session(app, sid, total_utilization={"vCPUHour": 3.0})
    session = client.get_session(applicationId=app, sessionId=sid)["session"]
    assert session["totalResourceUtilization"] == {"vCPUHour": 3.0}
    store.remove_session(app, sid)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_session(applicationId=app, sessionId=sid)


def test_start_and_terminate_session(store: Store, client: Any) -> None:
    app = store.add_application(state="STOPPED")
    first = client.start_session(applicationId=app, executionRoleArn=ROLE, clientToken="token-1", name="mine",
                                 tags={"team": "x"})
    again = client.start_session(applicationId=app, executionRoleArn=ROLE, clientToken="token-1", name="mine")
    assert again["sessionId"] == first["sessionId"]  # idempotent by client token
    assert client.get_application(applicationId=app)["application"]["state"] == "STARTED"  # auto-start
    session = client.get_session(applicationId=app, sessionId=first["sessionId"])["session"]
    assert (session["state"], session["name"], session["tags"]) == ("SUBMITTED", "mine", {"team": "x"})
    assert session["executionRoleArn"] == ROLE
    assert client.list_tags_for_resource(resourceArn=first["arn"])["tags"] == {"team": "x"}
    client.terminate_session(applicationId=app, sessionId=first["sessionId"])
    assert client.get_session(applicationId=app, sessionId=first["sessionId"])["session"]["state"] == "TERMINATING"
    static = store.add_session(app, state="IDLE")
    client.terminate_session(applicationId=app, sessionId=static)
    session = client.get_session(applicationId=app, sessionId=static)["session"]
    assert session["state"] == "TERMINATED" and "endedAt" in session


def test_lifecycle_is_a_function_of_time() -> None:
    life = Lifecycle(created_at=0, starting_at=10, started_at=40, first_busy_at=60, busy_seconds=30,
                     idle_seconds=70, end_at=1000, terminating_seconds=20, vcpus_busy=8, vcpus_idle=2,
                     min_billed_seconds=60)
    assert [life.at(t).state for t in (0, 20, 50, 70, 100, 970, 1005, 1020)] == [
        "SUBMITTED", "STARTING", "STARTED", "BUSY", "IDLE", "BUSY", "TERMINATING", "TERMINATED"]
    assert life.at(100).idle_since == 90
    assert life.at(20).total_utilization is None  # not started: absent, not zero
    early = life.at(45)
    assert early.billed_utilization is not None and early.total_utilization is not None
    assert early.billed_utilization["vCPUHour"] == pytest.approx(60 * 2 / 3600, abs=1e-6)  # the minimum
    assert early.total_utilization["vCPUHour"] == pytest.approx(5 * 2 / 3600, abs=1e-6)
    # 60..160 is one cycle: 30 s busy at 8 vCPU, 70 s idle at 2; plus 20 s of STARTED at 2.
    assert life.at(160).total_utilization == pytest.approx(
        {"vCPUHour": (30 * 8 + 90 * 2) / 3600, "memoryGBHour": (30 * 32 + 90 * 8) / 3600,
         "storageGBHour": 120 * 20 / 3600}, abs=1e-6)
    final = life.at(5000)
    assert final.ended_at == 1020 and final.execution_duration_seconds == 980
    assert final.total_utilization == life.at(1020).total_utilization  # stops growing once ended
    failed = Lifecycle(created_at=0, starting_at=10, started_at=40, first_busy_at=60, busy_seconds=30,
                       idle_seconds=70, end_at=25, failed=True)
    snap = failed.at(30)
    assert (snap.state, snap.started_at, snap.ended_at, snap.total_utilization) == ("FAILED", None, 25, None)


# ----- faults, counters, latency ---------------------------------------------------------------


def test_fraction_of_calls_fail_reproducibly(store: Store, sim: Simulator) -> None:
    app = store.add_application()
    sid = store.add_session(app)
    client = simulator_client(sim.url)

    def outcomes(seed: int) -> list[bool]:
        store.clear_faults()
        store.add_fault(Fault(operation="GetSession", error_code="InternalServerException", fraction=1 / 3,
                              seed=seed))
        results = []
        for _ in range(300):
            try:
                client.get_session(applicationId=app, sessionId=sid)
                results.append(True)
            except client.exceptions.InternalServerException:
                results.append(False)
        return results

    first = outcomes(seed=5)
    assert 60 <= first.count(False) <= 140
    assert outcomes(seed=5) == first  # same seed, same calls fail
    assert outcomes(seed=6) != first
    store.clear_faults()
    client.get_session(applicationId=app, sessionId=sid)


def test_match_targets_one_session_and_calls_are_counted(store: Store, client: Any) -> None:
    app = store.add_application()
    target, other = store.add_session(app), store.add_session(app)
    store.add_fault(Fault(operation="GetSession", error_code="ResourceNotFoundException",
                          match={"sessionId": target}))
    store.add_fault(Fault(operation="ListSessions", error_code="ThrottlingException",
                          match=lambda params: params.get("states") == "BUSY"))
    store.reset_calls()
    for _ in range(3):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_session(applicationId=app, sessionId=target)
        client.get_session(applicationId=app, sessionId=other)
    with pytest.raises(ClientError) as caught:
        client.list_sessions(applicationId=app, states=["BUSY"])
    assert error_code(caught) == "ThrottlingException"
    client.list_sessions(applicationId=app, states=["IDLE"])
    assert store.calls == Counter({"GetSession": 6, "ListSessions": 2})
    store.reset_calls()
    assert store.calls == Counter()


def test_throttling_is_retried_by_boto3(store: Store, sim: Simulator) -> None:
    store.add_application()
    calls = iter(range(1000))
    # Throttle the first call only: boto3's backoff before each retry makes more of them slow.
    store.add_fault(Fault(operation="ListApplications", error_code="ThrottlingException",
                          match=lambda params: next(calls) == 0))
    client = simulator_client(sim.url, attempts=3)
    assert client.list_applications()["applications"]
    assert store.calls["ListApplications"] == 2


def test_delay_faults_and_latency(store: Store) -> None:
    app = store.add_application()
    slow, fast = store.add_session(app), store.add_session(app)
    store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=300, match={"sessionId": slow}))
    with Simulator(store) as sim:
        client = simulator_client(sim.url)
        client.get_session(applicationId=app, sessionId=fast)  # warm the connection
        began = time.monotonic()
        client.get_session(applicationId=app, sessionId=slow)
        assert time.monotonic() - began >= 0.29
        client.get_session(applicationId=app, sessionId=fast)  # unmatched: no delay (speed: benchmarks/)
        sim.latency_ms = 200
        began = time.monotonic()
        client.get_session(applicationId=app, sessionId=fast)
        assert time.monotonic() - began >= 0.19


def test_concurrent_requests_overlap_their_latency(store: Store) -> None:
    app = store.add_application()
    ids = [store.add_session(app) for _ in range(32)]
    with Simulator(store, latency_ms=300) as sim:
        client = simulator_client(sim.url)
        client.list_applications()
        began = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            sessions = list(pool.map(lambda sid: client.get_session(applicationId=app, sessionId=sid), ids))
        elapsed = time.monotonic() - began
    assert {s["session"]["sessionId"] for s in sessions} == set(ids)
    # One after another they cannot take less than 32 x 0.3 s = 9.6 s; only a serial server gets near it.
    assert elapsed < 9.0


def test_stop_closes_keep_alive_connections(store: Store) -> None:
    store.add_application()
    sim = Simulator(store).start()
    client = simulator_client(sim.url)
    client.list_applications()
    threads_before = threading.active_count()
    sim.stop()
    with pytest.raises(Exception):  # noqa: B017 - any connection error will do
        client.list_applications()
    assert threading.active_count() <= threads_before


# ----- scenarios -------------------------------------------------------------------------------


def _views(store: Store, *, running_only: bool = False) -> dict[str, Any]:
    apps = [a.application_id for a in store.applications() if not running_only or a.state == "STARTED"]
    return {sid: store.session(app, sid) for app in apps for sid in store.session_ids(app)}


def test_demo_moves_with_the_clock() -> None:
    clock = FakeClock()
    store = build_scenario("demo", clock=clock, seed=1)
    apps = store.applications()
    assert len(apps) == 3 and [a.state for a in apps].count("STOPPED") == 1
    before = _views(store)
    assert any(v.state in ACTIVE for v in before.values())
    assert any(v.state in ("TERMINATED", "FAILED") for v in before.values())
    running = [sid for sid, v in before.items() if v.state in ("IDLE", "BUSY")]
    clock.advance(120)
    after = _views(store)
    for sid in running:
        if sid in after and after[sid].total_utilization and before[sid].total_utilization:
            assert after[sid].total_utilization["vCPUHour"] > before[sid].total_utilization["vCPUHour"]
            assert after[sid].execution_duration_seconds > before[sid].execution_duration_seconds
    clock.advance(600)
    later = _views(store)
    assert {sid: v.state for sid, v in later.items() if sid in before} != {sid: v.state for sid, v in before.items()}
    assert set(later) - set(before), "new sessions start"
    clock.advance(4 * 3600)
    much_later = _views(store)
    stopped_app = next(a for a in apps if a.state == "STOPPED")
    gone = set(before) - set(much_later) - set(store.session_ids(stopped_app.application_id))
    assert gone, "old sessions are forgotten"
    assert len(gone) >= len(before) - 2


def test_demo_is_reproducible_and_bounded() -> None:
    clock = FakeClock()
    walked = build_scenario("demo", clock=clock, seed=4)
    states_seen: Counter[str] = Counter()
    sizes = []
    for _ in range(3 * 24 * 6):  # three days in 10-minute steps
        clock.advance(600)
        views = _views(walked)
        states_seen.update(v.state for v in views.values())
        sizes.append(len(views))
        for view in views.values():
            if view.billed_utilization is not None and view.total_utilization is not None:
                assert all(view.billed_utilization[k] >= view.total_utilization[k] for k in view.total_utilization)
    assert max(sizes) < 100  # old sessions are forgotten: memory stays bounded
    assert set(states_seen) == {"SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY", "TERMINATING",
                                "TERMINATED", "FAILED"}
    # A store that jumps straight to the same time shows the same sessions in the same states.
    fresh = build_scenario("demo", clock=FakeClock(clock.now), seed=4)
    # (The stopped application's bit of history is set relative to when the store was built.)
    assert _views(fresh, running_only=True) == _views(walked, running_only=True)
    other_seed = build_scenario("demo", clock=FakeClock(clock.now), seed=5)
    assert set(_views(other_seed)).isdisjoint(_views(walked))


def test_demo_has_awkward_tags() -> None:
    views = _views(build_scenario("demo", clock=FakeClock()))
    tags = [v.tags for v in views.values() if v.tags]
    keys = {k for t in tags for k in t}
    values = {v for t in tags for v in t.values()}
    assert {"aws:cloudformation:stack-name", "cost-center", "project.name"} <= keys
    assert any('"' in v and "\\" in v for v in values)
    assert any(not v.isascii() for v in values)


def test_scale_builds_deterministically() -> None:
    clock = FakeClock()
    store = build_scenario("scale", applications=10, sessions_per_application=1000, active_fraction=0.1,
                           seed=3, clock=clock)
    views = _views(store)
    assert len(views) == 10_000
    states = Counter(v.state for v in views.values())
    assert sum(states[s] for s in ACTIVE) == 1000
    assert states["TERMINATED"] == 9000
    assert all(clock.now - 1800 <= v.ended_at <= clock.now for v in views.values() if v.state == "TERMINATED")
    again = build_scenario("scale", applications=10, sessions_per_application=1000, active_fraction=0.1,
                           seed=3, clock=FakeClock())
    assert set(_views(again)) == set(views)
    other = build_scenario("scale", applications=2, sessions_per_application=10, seed=4, clock=FakeClock())
    assert set(_views(other)).isdisjoint(views)
    # Active sessions keep using resources as time passes.
    active = next(sid for sid, v in views.items() if v.state in ("IDLE", "BUSY"))
    clock.advance(300)
    assert _views(store)[active].total_utilization["vCPUHour"] > views[active].total_utilization["vCPUHour"]


def test_scale_lists_every_session_over_http() -> None:
    store = build_scenario("scale", applications=1, sessions_per_application=5000, active_fraction=0.2)
    with Simulator(store) as sim:
        client = simulator_client(sim.url)
        app = store.application_ids()[0]
        listed = [s for page in client.get_paginator("list_sessions").paginate(applicationId=app)
                  for s in page["sessions"]]
        busy = client.list_sessions(applicationId=app, states=["BUSY", "IDLE", "STARTED"])
    assert len({s["sessionId"] for s in listed}) == 5000
    assert all(s["state"] in ACTIVE for s in busy["sessions"]) and busy["sessions"]


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("nope")


# ----- the command line ------------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emr_serverless_simulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", first)
    assert match, (first, process.stderr.read() if process.poll() is not None else "")
    return process, match[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process, url = _start_cli("--scenario", "scale", "--applications", "2", "--sessions-per-application", "5")
    try:
        apps = simulator_client(url).list_applications()["applications"]
        assert len(apps) == 2
    finally:
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_cli_faults_and_bad_arguments() -> None:
    process, url = _start_cli("--fault", "ListApplications:InternalServerException:1")
    try:
        client = simulator_client(url)
        with pytest.raises(client.exceptions.InternalServerException):
            client.list_applications()
    finally:
        process.terminate()
        process.communicate(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "emr_serverless_simulator", "--fault", "nonsense"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "OP:CODE:FRACTION" in bad.stderr and "Traceback" not in bad.stderr
