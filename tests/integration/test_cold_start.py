"""A cold start under the ListJobRuns rate limit: every application's active runs are listed first, and the
look-backs follow over several collections, so the active listing is stale by the time the look-back is in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from tests.helpers.support import collecting, samples_of

NO_SESSIONS = {"sessions": False}
# About 7 ListJobRuns a 3 s collection: a look-back of 25 pages takes four.
TIGHT = {"rate_limits": {"ListJobRuns": {"requests_per_second": 2, "burst": 2},
                         "GetJobRun": {"requests_per_second": 50, "burst": 50}}}
ENDED = "emr_serverless_application_job_runs_ended_total"
T = TypeVar("T")


def scrape(registry: Any) -> dict[str, list[Any]]:
    return samples_of(generate_latest(registry).decode())


def run_ids(samples: dict[str, list[Any]]) -> set[str]:
    return {s.labels["job_run_id"] for s in samples.get("emr_serverless_job_run_info", [])}


def recording(store: Store, operation: str, what: Callable[[Any], T]) -> list[T]:
    """``what`` of each ``operation`` request the simulator answers, in the order they arrive."""
    seen: list[T] = []

    def record(params: Any) -> bool:
        seen.append(what(params))
        return False

    store.add_fault(Fault(operation=operation, error_code=None, delay_ms=0.001, match=record))
    return seen


# Days old, only the stale active listing shows it still running; recent, the look-back's first page too.
@pytest.mark.parametrize("age", [3 * 86400, 0], ids=["streaming-days-old", "recent"])
def test_a_run_that_ends_and_ages_out_during_the_cold_start_is_counted_once(
    store: Store, simulator: Simulator, age: float
) -> None:
    # Max age 0: ended runs are counted, never exported. Each try of the look-back took the stale active
    # listing in again: the run came back as running, was fetched, and counted once more (4 times).
    now = time.time()
    app = store.add_application(name="etl")
    going = store.add_job_run(app, state="RUNNING", created_at=now - age)
    for _ in range(1200):  # a look-back of 25 pages
        store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
    runner, registry = collecting(simulator.url, discovery={**NO_SESSIONS, "terminated_job_run_max_age_seconds": 0},
                                  collection={"timeout_seconds": 3}, aws=TIGHT)
    try:
        assert runner.collect()[0].up
        assert going in run_ids(scrape(registry))  # the cold start's active listing
        store.set_job_run_state(app, going, "SUCCESS", ended_at=time.time())
        for _ in range(12):
            assert runner.collect()[0].up
            if ENDED in scrape(registry):  # the look-back is in
                break
        samples = scrape(registry)
    finally:
        runner.close()
    assert {s.labels["state"]: s.value for s in samples[ENDED]}["SUCCESS"] == 1
    assert going not in run_ids(samples)


def test_a_run_that_vanishes_during_the_cold_start_is_not_fetched_again(store: Store, simulator: Simulator) -> None:
    now = time.time()
    app = store.add_application(name="etl")
    gone = store.add_job_run(app, state="RUNNING", created_at=now - 3 * 86400)
    for _ in range(1200):
        store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
    gets = recording(store, "GetJobRun", lambda params: params["jobRunId"])
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS, collection={"timeout_seconds": 3}, aws=TIGHT)
    try:
        assert runner.collect()[0].up
        store.remove_job_run(app, gone)
        exported = []
        for _ in range(12):
            assert runner.collect()[0].up
            samples = scrape(registry)
            exported.append(gone in run_ids(samples))
            if ENDED in samples:
                break
    finally:
        runner.close()
    assert ENDED in samples  # the look-back finished
    assert gets.count(gone) == 2 and not any(exported)  # fetched running, then gone: once


def test_a_run_that_starts_and_ends_during_the_cold_start_is_counted(store: Store, simulator: Simulator) -> None:
    now = time.time()
    apps = [store.add_application(name=f"etl{i}") for i in range(6)]
    for app in apps:
        store.add_job_run(app, state="RUNNING")
        for _ in range(110):  # a look-back of three pages: about seven fit a collection
            store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS, collection={"timeout_seconds": 3}, aws=TIGHT)
    try:
        assert runner.collect()[0].up  # every active listing, and a look-back or two
        quick = {store.add_job_run(app, state="FAILED", created_at=time.time(), ended_at=time.time()) for app in apps}
        for _ in range(15):
            assert runner.collect()[0].up
            if {s.labels["application_id"] for s in scrape(registry).get(ENDED, [])} == set(apps):
                break
        for _ in range(3):  # every application listed again: a run the look-back had passed shows then
            assert runner.collect()[0].up
        samples = scrape(registry)
    finally:
        runner.close()
    assert quick <= run_ids(samples)
    assert sum(s.value for s in samples[ENDED] if s.labels["state"] == "FAILED") == len(apps)


def test_one_listing_a_collection_still_lists_every_application_again(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="etl")
    store.add_job_run(app, state="RUNNING")
    seen = recording(store, "ListJobRuns", lambda params: params["applicationId"])
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS, collection={"timeout_seconds": 1.2},
                                  aws={"rate_limits": {"ListJobRuns": {"requests_per_second": 1, "burst": 1}}})
    try:
        for _ in range(3):  # the cold start: the active listing, then the look-back
            assert runner.collect()[0].up
            time.sleep(1)  # the token of a listing comes back
        cold_start = len(seen)
        later = store.add_job_run(app, state="RUNNING")
        for _ in range(4):
            assert runner.collect()[0].up
            time.sleep(1)  # the token of a listing comes back
        samples = scrape(registry)
    finally:
        runner.close()
    assert cold_start >= 2
    assert len(seen) > cold_start and later in run_ids(samples)


def test_an_application_new_in_the_middle_of_a_cold_start_is_listed_before_the_look_backs_go_on(
    store: Store, simulator: Simulator
) -> None:
    now = time.time()
    apps = [store.add_application(name=f"etl{i}") for i in range(3)]
    for app in apps:
        store.add_job_run(app, state="RUNNING")
        for _ in range(600):  # a look-back of 12 pages: the cold start takes several collections
            store.add_job_run(app, state="SUCCESS", created_at=now - 900, ended_at=now - 600)
    calls = recording(store, "ListJobRuns", lambda params: (params["applicationId"], "createdAtAfter" in params))
    runner, registry = collecting(simulator.url, discovery=NO_SESSIONS, collection={"timeout_seconds": 3}, aws=TIGHT)
    try:
        assert runner.collect()[0].up
        assert runner.collect()[0].up
        new = store.add_application(name="new")
        started = store.add_job_run(new, state="RUNNING")
        deleted = apps.pop()
        store.remove_application(deleted)
        before = len(calls)
        assert runner.collect()[0].up
        samples = scrape(registry)
    finally:
        runner.close()
    assert (new, False) in calls[before:before + 2]  # its active runs first (two listings run at a time)
    assert started in run_ids(samples)
    assert all(app != deleted for app, _ in calls[before:])
    assert {s.labels["application_id"] for s in samples["emr_serverless_job_run_info"]} == {*apps, new}
