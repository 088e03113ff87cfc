"""Job runs collected from the simulator through the real boto3 client: the listing planned within the
ListJobRuns rate limit, quiet applications, runs seen ending, kinds switched off, the mode filter."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.collect.target import CollectionTimeout
from tests.helpers.support import collecting, samples_of, value

NO_SESSIONS = {"sessions": False}


def scrape(registry: Any) -> dict[str, list[Any]]:
    return samples_of(generate_latest(registry).decode())


def run_ids(samples: dict[str, list[Any]]) -> set[str]:
    return {s.labels["job_run_id"] for s in samples.get("emr_serverless_job_run_info", [])}


def listed(store: Store) -> list[str]:
    """The application ids of each ListJobRuns the simulator answers, in order, as they arrive."""
    seen: list[str] = []

    def record(params: Any) -> bool:
        seen.append(params["applicationId"])
        return False

    store.add_fault(Fault(operation="ListJobRuns", error_code=None, delay_ms=0.001, match=record))
    return seen


def under_listing_quota(url: str, *, per_second: float, timeout: float, get_per_second: float = 50) -> Any:
    """A runner and registry of job runs only, with a tight ListJobRuns rate limit (burst: one second's)."""
    return collecting(url, discovery=NO_SESSIONS, collection={"timeout_seconds": timeout},
                      aws={"rate_limits": {"ListJobRuns": {"requests_per_second": per_second, "burst": per_second},
                                           "GetJobRun": {"requests_per_second": get_per_second,
                                                         "burst": get_per_second}}})


def collect_until_exported(runner: Any, registry: Any, truth: set[str], most: int) -> int:
    """Collections made, at most ``most``, until every run of ``truth`` is exported; no call fails in any
    (the budget, not AWS, holds the listing back). A call still in flight at a 3 s deadline is the one error
    allowed: on a loaded machine an answer can take longer than the half second a call is left."""
    collections = 0
    while collections < most and run_ids(scrape(registry)) != truth:
        result = runner.collect()[0]
        assert all(isinstance(error, CollectionTimeout) for error in result.errors), result.errors
        collections += 1
    return collections


def test_under_a_tight_listing_quota_every_run_is_exported_within_the_bound(store: Store, simulator: Simulator) -> None:
    # Each first listing is four pages (two running runs, 120 ended ones). Listings sharing the tokens page by
    # page finished none before the deadline, and every collection started them over: now a few at a time.
    now = time.time()
    apps = [store.add_application(name=f"etl{i}") for i in range(4)]
    truth = {store.add_job_run(app, state="RUNNING") for app in apps for _ in range(2)}
    truth |= {store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
              for app in apps for _ in range(120)}
    runner, registry = under_listing_quota(simulator.url, per_second=2, timeout=3, get_per_second=20)
    try:
        collections = collect_until_exported(runner, registry, truth, 12)
        samples = scrape(registry)
    finally:
        runner.close()
    # 4 x 4 pages at 2/s and 2 burst: 7 s of tokens, three collections of 3 s on a quiet machine (the cap allows
    # for a busy one; before, no listing ever finished and the loop ran out with nothing exported).
    assert run_ids(samples) == truth
    assert value(samples, "emr_serverless_oldest_listing_age_seconds", kind="job_run") < 3 * (collections + 1)


def test_a_cold_start_exports_every_applications_running_runs_before_any_look_back(
    store: Store, simulator: Simulator
) -> None:
    # Six applications, each with a look-back of three pages: about 7 ListJobRuns fit one 3 s collection.
    # Listed one application after the other, the first collection exported the runs of two applications at
    # most; now it lists every application's active runs first, and the look-backs follow.
    now = time.time()
    apps = [store.add_application(name=f"etl{i}") for i in range(6)]
    running = {store.add_job_run(app, state="RUNNING") for app in apps}
    ended = {store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
             for app in apps for _ in range(110)}
    runner, registry = under_listing_quota(simulator.url, per_second=2, timeout=3)
    try:
        assert runner.collect()[0].up
        first = scrape(registry)
        collect_until_exported(runner, registry, running | ended, 15)
        samples = scrape(registry)
    finally:
        runner.close()
    assert run_ids(first) >= running and not run_ids(first) >= ended  # running first: the look-backs take longer
    assert value(first, "emr_serverless_job_run_state", job_run_id=sorted(running)[0], state="RUNNING") == 1
    # Ends are counted from each application's first complete listing (the look-back's runs ended before).
    assert {s.labels["application_id"] for s in first.get("emr_serverless_application_job_runs_ended_total", [])
            } < set(apps)
    assert run_ids(samples) == running | ended  # and the look-backs finish: nothing is lost
    assert all(s.value == 0 for s in samples["emr_serverless_application_job_runs_ended_total"])


def test_a_listing_paced_by_its_rate_limit_does_not_hold_back_the_other_applications_detail_calls(
    store: Store, simulator: Simulator
) -> None:
    # Listings under the ListJobRuns rate limit run through the whole collection by design. Less urgent
    # detail calls waited for every listing (or half the deadline): half of GetJobRun's budget idle in every
    # collection. Now they wait only for the listings that are not paced: app A's listing takes 12 s here,
    # and app B's known run is refreshed meanwhile. Before, not until A's listing was in.
    slow, busy = store.add_application(name="slow"), store.add_application(name="busy")
    store.add_job_run(slow, state="RUNNING")
    known = store.add_job_run(busy, state="RUNNING")
    runner, _ = collecting(simulator.url, discovery=NO_SESSIONS,
                           collection={"timeout_seconds": 60, "min_interval_seconds": 0},
                           aws={"read_timeout_seconds": 60,
                                "rate_limits": {"ListJobRuns": {"requests_per_second": 100, "burst": 100}}})
    delayed, refreshed = threading.Event(), threading.Event()

    def one_listing_of_slow(params: Any) -> bool:  # one of its listings: the other slot goes on
        if params["applicationId"] != slow or delayed.is_set():
            return False
        delayed.set()
        return True

    def fetched(params: Any) -> bool:
        if params["jobRunId"] == known:
            refreshed.set()
        return False

    results: list[Any] = []
    try:
        assert runner.collect()[0].up  # both runs known
        store.add_fault(Fault(operation="ListJobRuns", error_code=None, delay_ms=12_000, match=one_listing_of_slow))
        store.add_fault(Fault(operation="GetJobRun", error_code=None, delay_ms=0.001, match=fetched))
        collection = threading.Thread(target=lambda: results.extend(runner.collect()))
        collection.start()
        assert delayed.wait(10)
        assert refreshed.wait(8) and collection.is_alive()  # refreshed while A's listing is still out
        collection.join(60)
    finally:
        runner.close()
    assert results and results[0].up


def test_a_quiet_application_is_not_listed_again_until_it_changes(store: Store, simulator: Simulator) -> None:
    stopped = store.add_application(name="stopped", state="STOPPED")
    busy = store.add_application(name="busy")
    store.add_job_run(busy, state="RUNNING")
    done = store.add_job_run(stopped, state="SUCCESS", created_at=time.time() - 120, ended_at=time.time() - 60)
    seen = listed(store)
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS,
                                  aws={"rate_limits": {"ListJobRuns": {"requests_per_second": 0}}})
    try:
        for _ in range(3):
            assert runner.collect()[0].up
        quiet = seen.count(stopped)
        store.set_application_state(stopped, "STARTED")  # a run submitted to it starts it: listed again
        assert runner.collect()[0].up
        samples = scrape(registry)
    finally:
        runner.close()
    assert quiet == 2 and seen.count(stopped) == 4  # its two listings once, then again once it changed
    assert seen.count(busy) == 8  # every collection
    assert done in run_ids(samples)  # served from what is known meanwhile
    assert value(samples, "emr_serverless_oldest_listing_age_seconds", kind="job_run") < 5


def test_a_restart_lists_no_application_stopped_before_the_keep_window(store: Store, simulator: Simulator) -> None:
    # Stopped two hours ago: what ran on it ended before that, too long ago to be exported by default.
    long_ago = time.time() - 7200
    stopped = store.add_application(name="dev", state="STOPPED", created_at=long_ago - 3600, updated_at=long_ago)
    store.add_job_run(stopped, state="SUCCESS", created_at=long_ago - 600, ended_at=long_ago - 60)
    busy = store.add_application(name="busy")
    running = store.add_job_run(busy, state="RUNNING")
    seen = listed(store)
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS,
                                  aws={"rate_limits": {"ListJobRuns": {"requests_per_second": 0}}})
    try:
        assert runner.collect()[0].up
        before = scrape(registry)
        store.set_application_state(stopped, "STARTED")  # a run submitted to it starts it: listed from then on
        started = store.add_job_run(stopped, state="RUNNING")
        assert runner.collect()[0].up
        after = scrape(registry)
    finally:
        runner.close()
    assert seen.count(stopped) == 2 and seen.count(busy) == 4  # its two listings once it started, not before
    assert run_ids(before) == {running} and run_ids(after) == {running, started}
    assert value(before, "emr_serverless_oldest_listing_age_seconds", kind="job_run") < 5


def test_runs_seen_ending_are_counted_once_and_final_ones_at_the_start_never(
    store: Store, simulator: Simulator
) -> None:
    app = store.add_application(name="etl")
    store.add_job_run(app, state="FAILED", created_at=time.time() - 300, ended_at=time.time() - 200)
    going = store.add_job_run(app, state="RUNNING")
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS)
    try:
        assert runner.collect()[0].up
        first = scrape(registry)
        store.set_job_run_state(app, going, "FAILED", ended_at=time.time(), state_details="OutOfMemoryError")
        quick = store.add_job_run(app, state="SUCCESS", created_at=time.time(), ended_at=time.time())
        store.add_fault(Fault(operation="ListJobRuns", error_code="ThrottlingException"))
        assert runner.collect()[0].up  # throttled: no error; the failed run is fetched from what is known
        store.clear_faults()
        for _ in range(2):  # the listing again, twice: nothing counted twice
            assert runner.collect()[0].up
        samples = scrape(registry)
    finally:
        runner.close()
    ended = "emr_serverless_application_job_runs_ended_total"
    assert {s.labels["state"]: s.value for s in first[ended]} == {"SUCCESS": 0, "FAILED": 0, "CANCELLED": 0}
    assert {s.labels["state"]: s.value for s in samples[ended]} == {"SUCCESS": 1, "FAILED": 1, "CANCELLED": 0}
    assert quick in run_ids(samples)


def test_a_kind_switched_off_costs_no_call_and_the_mode_filter_is_sent(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="etl")
    store.add_session(app, state="IDLE")
    batch = store.add_job_run(app, state="RUNNING", mode="BATCH")
    store.add_job_run(app, state="RUNNING", mode="STREAMING")
    runner, registry = collecting(simulator.url, discovery={"job_runs": False})
    try:
        assert runner.collect()[0].up
        assert "ListJobRuns" not in store.calls and "GetJobRun" not in store.calls
        assert "emr_serverless_job_run_info" not in scrape(registry)
    finally:
        runner.close()
    store.reset_calls()
    runner, registry = collecting(simulator.url, discovery={"sessions": False, "job_run_modes": ["BATCH"]})
    try:
        assert runner.collect()[0].up
        assert "ListSessions" not in store.calls and "GetSession" not in store.calls
        assert run_ids(scrape(registry)) == {batch}
    finally:
        runner.close()


def test_a_listing_longer_than_one_collections_budget_resumes_where_it_stopped(
    store: Store, simulator: Simulator
) -> None:
    # Seven pages at 1 ListJobRuns a second and 2.5 s collections: no collection can list it whole. Each try
    # started over, and the runs were never exported; now each resumes from the page the last one reached.
    now = time.time()
    app = store.add_application(name="busy")
    truth = {store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600) for _ in range(300)}
    truth.add(store.add_job_run(app, state="RUNNING"))
    runner, registry = under_listing_quota(simulator.url, per_second=1, timeout=2.5)
    try:
        collections = collect_until_exported(runner, registry, truth, 12)
    finally:
        runner.close()
    assert run_ids(scrape(registry)) == truth
    assert store.calls["ListJobRuns"] <= 7 + 2 * collections  # the pages, and at most the tries cut short
