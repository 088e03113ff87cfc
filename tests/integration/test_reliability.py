"""Collection when AWS misbehaves, against the project's simulator through the real boto3 client:
restarts lose nothing, failures serve what is known, throttling defers instead of failing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.collect import target
from exporter.collect.inventory import Inventory
from exporter.model.kinds import SESSIONS
from tests.helpers.support import Samples, collecting, samples_of, session_ids, value


def scrape(registry: Any) -> Samples:
    return samples_of(generate_latest(registry).decode())


def test_a_restart_loses_no_session_that_spec_says_is_exported(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="analytics")
    now = time.time()
    long_run = store.add_session(app, state="TERMINATED", created_at=now - 3 * 3600 - 600,
                                 started_at=now - 3 * 3600, ended_at=now - 600)
    invented = store.add_session(app, state="DORMANT", created_at=now - 2 * 3600)
    store.add_session(app, state="FAILED", created_at=now - 5 * 3600, ended_at=now - 2 * 3600)  # aged out
    active = store.add_session(app, state="IDLE", created_at=now - 3 * 86400)  # older than any look-back
    runner, registry = collecting(simulator.url, discovery={"terminated_session_max_age_seconds": 3600})
    try:
        results = runner.collect()  # the exporter's first collection: as after a restart
        assert results[0].up
        assert session_ids(scrape(registry)) == {long_run, invented, active}
    finally:
        runner.close()


def test_failed_listings_serve_what_is_known_and_nothing_flaps(
    store: Store, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target, "FAILURE_BACKOFF_FIRST_SECONDS", 0.0)  # the backoff has its own test below
    apps = [store.add_application(name=f"app{i}") for i in range(2)]
    sessions = {store.add_session(app, state="BUSY") for app in apps for _ in range(3)}
    runner, registry = collecting(simulator.url, aws={"max_attempts": 1})
    try:
        assert runner.collect()[0].up
        assert session_ids(scrape(registry)) == sessions

        store.add_fault(Fault(operation="ListApplications", error_code="AccessDeniedException"))
        assert not runner.collect()[0].up
        samples = scrape(registry)
        assert session_ids(samples) == sessions  # the last known, not nothing
        assert len(samples["emr_serverless_application_info"]) == 2
        assert value(samples, "emr_serverless_up") == 0

        store.clear_faults()
        store.add_fault(Fault(operation="ListSessions", error_code="InternalServerException",
                              match={"applicationId": apps[0]}))
        assert not runner.collect()[0].up
        assert session_ids(scrape(registry)) == sessions

        # Only a complete answer removes anything: the application is gone once ListApplications says so.
        store.clear_faults()
        store.remove_application(apps[0])
        assert runner.collect()[0].up
        assert session_ids(scrape(registry)) == set(store.session_ids(apps[1]))
    finally:
        runner.close()


def test_a_failing_list_applications_backs_off_and_lists_nothing_else(store: Store, simulator: Simulator) -> None:
    # AccessDenied on ListApplications: listing the last known applications' sessions anyway cost ~70 calls a
    # scrape into a quota the account shares; now one call, then none until the backoff ends.
    apps = [store.add_application(name=f"app{i}") for i in range(3)]
    sessions = {store.add_session(app, state="BUSY") for app in apps for _ in range(2)}
    runner, registry = collecting(simulator.url, aws={"max_attempts": 1})
    try:
        assert runner.collect()[0].up
        store.add_fault(Fault(operation="ListApplications", error_code="AccessDeniedException"))
        store.reset_calls()
        results = [runner.collect()[0] for _ in range(20)]  # a scrape storm, inside the first backoff
        samples = scrape(registry)
    finally:
        runner.close()
    assert dict(store.calls) == {"ListApplications": 1}
    assert not any(result.up for result in results)
    assert session_ids(samples) == sessions  # served as last known
    assert value(samples, "emr_serverless_up") == 0
    assert [e.code for e in results[-1].errors] == ["AccessDeniedException"]


def test_throttled_listings_keep_the_target_up_and_serve_the_last_known(store: Store, simulator: Simulator) -> None:
    # One rule for up: a call AWS throttles is no error, whichever operation it is; the objects it concerns
    # are served as last known and counted stale.
    app = store.add_application(name="throttled")
    sessions = {store.add_session(app, state="BUSY") for _ in range(3)}
    runner, registry = collecting(simulator.url, aws={"max_attempts": 1})
    try:
        assert runner.collect()[0].up
        for operation in ("ListSessions", "ListApplications", "GetSession", "GetApplication"):
            store.add_fault(Fault(operation=operation, error_code="ThrottlingException"))
        assert runner.collect()[0].up
        samples = scrape(registry)
    finally:
        runner.close()
    assert session_ids(samples) == sessions
    assert value(samples, "emr_serverless_up") == 1
    assert value(samples, "emr_serverless_stale_objects", kind="session") == 3
    requests = samples["emr_serverless_api_requests_total"]
    throttled = [s for s in requests if s.labels["outcome"] == "ThrottlingException"]
    assert {s.labels["operation"] for s in throttled} == {"ListApplications", "ListSessions", "GetSession"}


def test_random_throttling_of_get_session_keeps_the_target_up(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="busy")
    sessions = {store.add_session(app, state="BUSY") for _ in range(100)}
    store.add_fault(Fault(operation="GetSession", error_code="ThrottlingException", fraction=0.3, seed=7))
    runner, registry = collecting(simulator.url)  # the default configuration
    try:
        ups = []
        for _ in range(4):
            ups.append(runner.collect()[0].up)
        samples = scrape(registry)
    finally:
        runner.close()
    # Retries with backoff absorb almost all of it; a session throttled five times in a row is served as
    # last known and counted stale, not a reason to call the whole target down.
    assert all(ups)
    assert session_ids(samples) == sessions
    throttled = value(samples, "emr_serverless_api_requests_total", operation="GetSession",
                      outcome="ThrottlingException")
    assert throttled > 50
    assert value(samples, "emr_serverless_stale_objects", kind="session") <= 5


def test_under_a_rate_limit_every_session_is_refreshed_within_a_bounded_number_of_collections(
    store: Store, simulator: Simulator
) -> None:
    app = store.add_application(name="crowded")
    sessions = {store.add_session(app, state="IDLE") for _ in range(100)}
    sent: list[tuple[float, str]] = []  # every GetSession the simulator received: when, for which session

    def record(params: Any) -> bool:
        sent.append((time.monotonic(), params["sessionId"]))
        return False  # only watching: the fault never applies

    store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=1, match=record))
    rate, burst, seconds = 10.0, 10, 3.0
    store.set_throttle("GetSession", rate, burst)  # and AWS's own quota, as a token bucket
    runner, registry = collecting(simulator.url, collection={"timeout_seconds": seconds},
                             aws={"rate_limits": {"GetSession": {"requests_per_second": rate, "burst": burst}}})
    refreshed_by: list[set[str]] = []
    stale: list[float] = []
    try:
        # ceil(100 / (10/s x 3 s)) + 1 = 5 collections at most until every session was fetched.
        for _ in range(5):
            before = len(sent)
            assert runner.collect()[0].up  # out of budget is deferred, not down
            refreshed_by.append({sid for _, sid in sent[before:]})
            stale.append(value(scrape(registry), "emr_serverless_stale_objects", kind="session"))
        seen_by_then = set().union(*refreshed_by)
        assert seen_by_then == sessions
        # Stalest first: the second round starts with what the first left out, so no session waits two rounds.
        assert not refreshed_by[0] & refreshed_by[1]
    finally:
        runner.close()
    assert max(stale) > 0  # the gauge shows what was served as last known
    # Our bucket keeps under AWS's: next to nothing is throttled (two clocks, a slot's width apart).
    assert store.throttled["GetSession"] <= 2
    times = sorted(t for t, _ in sent)
    for i, first in enumerate(times):  # never faster than the bucket: burst + rate x elapsed in any window
        in_window = [t for t in times[i:] if t - first <= 1.0]
        assert len(in_window) <= burst + rate * 1.0 + 1


def early_and_late(store: Store, late_sessions: int) -> tuple[str, str, set[str], list[str]]:
    """An application "early" with six IDLE sessions, "late" with ``late_sessions``, and the ids of the
    GetSessions the simulator receives, in order, as they arrive."""
    early, late = store.add_application(name="early"), store.add_application(name="late")
    for _ in range(6):
        store.add_session(early, state="IDLE")
    late_ids = {store.add_session(late, state="IDLE") for _ in range(late_sessions)}
    sent: list[str] = []

    def record(params: Any) -> bool:
        sent.append(params["sessionId"])
        return False

    store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=1, match=record))
    return early, late, late_ids, sent


def refresh_only(memory: Inventory[Any, Any], application_id: str) -> None:
    """As if the next collection's tight budget had refreshed this application's sessions only."""
    memory.begin_collection()
    for known in memory.objects(time.time()):
        if known.obj.application_id == application_id:
            memory.refreshed(known.obj, time.time())


def test_due_sessions_of_a_late_listing_go_before_an_early_listings_unchanged_ones(
    store: Store, simulator: Simulator
) -> None:
    # Workers take rate-limit slots in the order they take jobs: were an early application's unchanged
    # sessions started as soon as its listing is in, they would spend the budget the due ones need.
    early, late, due, sent = early_and_late(store, 2)
    # Slots 50 ms apart: calls reach the simulator in the order the workers took them.
    runner, _ = collecting(simulator.url, aws={"max_concurrency": 4, "rate_limits": {
        "GetSession": {"requests_per_second": 20, "burst": 1}}})
    try:
        assert runner.collect()[0].up  # collection 1: every session fetched
        memory = runner.targets[0].inventories[SESSIONS]
        refresh_only(memory, early)  # collection 2
        store.add_fault(Fault(operation="ListSessions", error_code=None, delay_ms=300,
                              match={"applicationId": late}))
        sent.clear()
        assert runner.collect()[0].up  # collection 3: P = ceil(8 / 6) = 2, so the late ones are due
        assert memory.period == 2
    finally:
        runner.close()
    assert set(sent[:2]) == due and len(sent) == 8


def test_after_a_quota_drop_new_active_sessions_still_go_before_every_due_one(
    store: Store, simulator: Simulator
) -> None:
    # With P = 1 (a budget that just dropped), every known session is due. Due ones sent as soon as their
    # own application's listing is in would spend the budget before a later listing's new sessions are seen.
    _, late, _, sent = early_and_late(store, 0)
    runner, _ = collecting(simulator.url, aws={"max_concurrency": 4, "rate_limits": {
        "GetSession": {"requests_per_second": 20, "burst": 1}}})
    try:
        assert runner.collect()[0].up  # collection 1: the six early sessions fetched, P = 1 from now on
        new = store.add_session(late, state="BUSY")
        store.add_fault(Fault(operation="ListSessions", error_code=None, delay_ms=300, match={"applicationId": late}))
        sent.clear()
        assert runner.collect()[0].up  # collection 2: six due, one new behind a late listing
        assert runner.targets[0].inventories[SESSIONS].period == 1
    finally:
        runner.close()
    assert sent[0] == new and len(sent) == 7


def test_a_hanging_listing_holds_back_the_other_applications_refreshes_for_half_the_time_only(
    store: Store, simulator: Simulator
) -> None:
    # Less urgent GetSessions wait for the last listing, but one that hangs past the deadline must not
    # leave every other application's sessions unrefreshed: they go out halfway to the deadline.
    early, late, _, sent = early_and_late(store, 1)
    runner, _ = collecting(simulator.url, collection={"timeout_seconds": 2},
                           aws={"rate_limits": {"GetSession": {"requests_per_second": 100, "burst": 1}}})
    try:
        assert runner.collect()[0].up  # collection 1: every session fetched
        refresh_only(runner.targets[0].inventories[SESSIONS], early)  # collection 2: P = ceil(7 / 6) = 2
        store.add_fault(Fault(operation="ListSessions", error_code=None, delay_ms=3000, match={"applicationId": late}))
        sent.clear()
        result = runner.collect()[0]  # collection 3: the early ones are not due, so held; the late listing hangs
    finally:
        runner.close()
    assert not result.up  # the late application's listing did not finish: the picture is incomplete
    early_sessions = {s.session_id for s in result.objects[SESSIONS] if s.application_id == early}
    assert len(early_sessions) == 6 and early_sessions <= set(sent)


def test_states_stay_fresh_from_listings_when_no_get_session_gets_through(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="quota")
    sessions = [store.add_session(app, state="IDLE") for _ in range(20)]
    runner, registry = collecting(simulator.url, aws={"max_attempts": 2})
    try:
        assert runner.collect()[0].up
        store.add_fault(Fault(operation="GetSession", error_code="ThrottlingException"))  # AWS's quota is spent
        for sid in sessions[:3]:
            store.set_session_state(app, sid, "BUSY")
        assert runner.collect()[0].up  # throttled GetSessions are deferred, listings went through
        samples = scrape(registry)
    finally:
        runner.close()
    current = {s.labels["session_id"]: s.labels["state"] for s in samples["emr_serverless_session_state"] if s.value}
    assert current == {sid: "BUSY" if sid in sessions[:3] else "IDLE" for sid in sessions}
    assert value(samples, "emr_serverless_stale_objects", kind="session") == 20


def test_a_scrape_during_the_first_collection_gets_up_0_not_an_empty_exposition(
    store: Store, simulator: Simulator
) -> None:
    store.add_application(name="slow")
    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=2000))
    runner, registry = collecting(simulator.url)
    first = threading.Thread(target=runner.collect)
    first.start()
    try:
        time.sleep(0.3)  # the first collection is under way
        joined = runner.collect(timeout=0.5)
        samples = scrape(registry)
    finally:
        first.join()
        runner.close()
    assert [result.up for result in joined] == [False]
    assert value(samples, "emr_serverless_up") == 0  # rendered from runner.latest: was no target series at all
