"""A cold start under the ListJobRuns rate limit: every application's active runs are listed first, and the
look-backs follow over several collections, so the active listing is stale by the time the look-back is in."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from tests.helpers.support import collecting, samples_of

NO_SESSIONS = {"sessions": False}
# About 7 ListJobRuns a 3 s collection: a look-back of 25 pages takes four.
TIGHT = {"rate_limits": {"ListJobRuns": {"requests_per_second": 2, "burst": 2},
                         "GetJobRun": {"requests_per_second": 50, "burst": 50}}}
ENDED = "emr_serverless_application_job_runs_ended_total"


def scrape(registry: Any) -> dict[str, list[Any]]:
    return samples_of(generate_latest(registry).decode())


def run_ids(samples: dict[str, list[Any]]) -> set[str]:
    return {s.labels["job_run_id"] for s in samples.get("emr_serverless_job_run_info", [])}


def fetched(store: Store) -> list[str]:
    """The job run ids of each GetJobRun the simulator answers, in order."""
    seen: list[str] = []

    def record(params: Any) -> bool:
        seen.append(params["jobRunId"])
        return False

    store.add_fault(Fault(operation="GetJobRun", error_code=None, delay_ms=0.001, match=record))
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
    gets = fetched(store)
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
