"""The simulator's job runs: the lifecycle, the application's queue, listing (grouped by state, filters,
pages), cancel, attempts, AWS's quotas, and the demo and scale scenarios. Time is a FakeClock moved by
hand: nothing here sleeps."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from emr_serverless_simulator import (
    FINAL_JOB_RUN_STATES,
    JOB_RUN_STATES,
    Fault,
    JobRunLifecycle,
    JobRunView,
    Simulator,
    Store,
    build_scenario,
)
from tests.helpers.support import FakeClock, simulator_client

ROLE = "arn:aws:iam::123456789012:role/jobs"
DRIVER = {"sparkSubmit": {"entryPoint": "s3://bucket/job.py"}}
LIVE = {"SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "CANCELLING", "QUEUED"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def store(clock: FakeClock, monotonic: FakeClock) -> Store:
    return Store(clock=clock, monotonic=monotonic)


@pytest.fixture
def client(store: Store) -> Iterator[Any]:
    with Simulator(store) as sim:
        yield simulator_client(sim.url)


def start(client: Any, app: str, **kwargs: Any) -> str:
    return str(client.start_job_run(applicationId=app, executionRoleArn=ROLE, jobDriver=DRIVER, **kwargs)["jobRunId"])


def run_of(client: Any, app: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    run: dict[str, Any] = client.get_job_run(applicationId=app, jobRunId=run_id, **kwargs)["jobRun"]
    return run


def listed(client: Any, app: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [run for page in client.get_paginator("list_job_runs").paginate(applicationId=app, **kwargs)
            for run in page["jobRuns"]]


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


# ----- the lifecycle ---------------------------------------------------------------------------------------


def test_a_batch_run_goes_through_its_states_and_its_use_grows_until_it_ends() -> None:
    life = JobRunLifecycle(created_at=0, submitted_seconds=5, pending_seconds=20, scheduled_seconds=10,
                           running_seconds=600, admitted_at=5, vcpus=8, memory_gb=32, storage_gb=20)
    assert [life.at(t).state for t in (0, 10, 30, 100, 634, 635, 10_000)] == [
        "SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "RUNNING", "SUCCESS", "SUCCESS"]
    assert life.at(10).total_utilization is None and life.at(10).started_at is None  # not started: absent
    early, later, final = life.at(35 + 30), life.at(35 + 300), life.at(10_000)
    assert early.total_utilization is not None and later.total_utilization is not None
    assert early.total_utilization["vCPUHour"] == pytest.approx(30 * 8 / 3600, abs=1e-6)
    assert early.billed_utilization == pytest.approx(  # a minute at least
        {"vCPUHour": 60 * 8 / 3600, "memoryGBHour": 60 * 32 / 3600, "storageGBHour": 60 * 20 / 3600}, abs=1e-6)
    assert later.total_utilization["vCPUHour"] == pytest.approx(300 * 8 / 3600, abs=1e-6)
    assert final.total_utilization == life.at(635).total_utilization  # stops growing once ended
    assert final.total_utilization == pytest.approx(
        {"vCPUHour": 600 * 8 / 3600, "memoryGBHour": 600 * 32 / 3600, "storageGBHour": 600 * 20 / 3600}, abs=1e-6)
    assert (final.started_at, final.ended_at, final.updated_at) == (35, 635, 635)
    # As AWS documents it: the duration is there once the run is final, not while it runs.
    assert later.execution_duration_seconds is None and final.execution_duration_seconds == 600
    assert final.queued_duration_ms == 0 and life.at(0).queued_duration_ms is None
    assert (final.attempt, final.attempt_created_at) == (1, 0)
    failed = JobRunLifecycle(created_at=0, admitted_at=2, running_seconds=60, outcome="FAILED",
                             failure_details="ExitCode: 1. OutOfMemoryError")
    assert (failed.at(500).state, failed.at(500).state_details) == ("FAILED", "ExitCode: 1. OutOfMemoryError")


def test_a_queued_run_counts_its_queue_time_and_fails_at_the_queue_timeout() -> None:
    queued = JobRunLifecycle(created_at=0, submitted_seconds=5, admitted_at=305, pending_seconds=10,
                             scheduled_seconds=10, running_seconds=100)
    assert [queued.at(t).state for t in (1, 6, 304, 305, 330)] == ["SUBMITTED", "QUEUED", "QUEUED", "PENDING",
                                                                   "RUNNING"]
    assert queued.at(105).queued_duration_ms == 100_000  # growing while queued
    assert queued.at(5000).queued_duration_ms == 300_000  # then what it was
    timed_out = JobRunLifecycle(created_at=0, submitted_seconds=5, queue_timeout_at=905)
    snap = timed_out.at(1000)
    assert (timed_out.at(904).state, snap.state, snap.ended_at, snap.started_at) == ("QUEUED", "FAILED", 905, None)
    assert "queue timeout of 15 minutes" in snap.state_details and snap.queued_duration_ms == 900_000


def test_cancelling_then_cancelled_and_a_submitter_s_own_cancel() -> None:
    life = JobRunLifecycle(created_at=0, admitted_at=2, pending_seconds=10, scheduled_seconds=10,
                           running_seconds=None, cancel_at=100, cancelling_seconds=30)
    assert [life.at(t).state for t in (50, 100, 129, 130)] == ["RUNNING", "CANCELLING", "CANCELLING", "CANCELLED"]
    assert life.at(500).total_utilization == life.at(100).total_utilization  # no use after the cancel
    assert (life.at(500).ended_at, life.at(500).execution_duration_seconds) == (130, 108)
    planned = JobRunLifecycle(created_at=0, admitted_at=2, pending_seconds=10, scheduled_seconds=10,
                              running_seconds=60, outcome="CANCELLED", cancelling_seconds=5)
    assert [planned.at(t).state for t in (80, 82, 87)] == ["RUNNING", "CANCELLING", "CANCELLED"]
    before_start = JobRunLifecycle(created_at=0, queue_timeout_at=1000, cancel_at=50, cancelling_seconds=5)
    assert before_start.at(60).state == "CANCELLED" and before_start.at(60).started_at is None


def test_retried_attempts_count_up_and_each_can_be_read() -> None:
    # Attempt length: 10 + 10 + 100 = 120 s; the third attempt is the last and succeeds after 50 s.
    life = JobRunLifecycle(created_at=0, submitted_seconds=5, admitted_at=5, pending_seconds=10,
                           scheduled_seconds=10, failed_attempts=2, failed_attempt_seconds=100, running_seconds=50,
                           attempt_failure_details="executors lost")
    assert [life.at(t).attempt for t in (6, 124, 125, 244, 245, 1000)] == [1, 1, 2, 2, 3, 3]
    retry = life.at(130)
    assert (retry.state, retry.attempt_created_at) == ("PENDING", 125)
    assert retry.state_details == "Attempt 1 failed: executors lost. Attempt 2 is pending"
    final = life.at(1000)
    assert (final.state, final.ended_at, final.started_at) == ("SUCCESS", 5 + 240 + 20 + 50, 25)
    assert final.total_utilization is not None
    assert final.total_utilization["vCPUHour"] == pytest.approx((100 + 100 + 50) * 4 / 3600, abs=1e-6)
    first = life.attempt_at(1, 1000)
    assert first is not None and (first.state, first.attempt_created_at, first.ended_at) == ("FAILED", 0, 125)
    assert life.attempt_at(3, 1000) == final and life.attempt_at(4, 1000) is None and life.attempt_at(0, 1000) is None
    streaming = JobRunLifecycle(created_at=0, admitted_at=0, pending_seconds=10, scheduled_seconds=10,
                                running_seconds=None, failed_attempts=None, failed_attempt_seconds=280)
    assert streaming.at(86_400).attempt == 289 and streaming.at(86_400).state in ("PENDING", "SCHEDULED", "RUNNING")


@settings(max_examples=200, deadline=None)
@given(
    submitted=st.floats(0, 60), pending=st.floats(0, 120), scheduled=st.floats(0, 120),
    running=st.none() | st.floats(0, 3600), failed_attempts=st.none() | st.integers(0, 4),
    attempt_seconds=st.floats(1, 1800), wait=st.none() | st.floats(0, 3600), timeout=st.none() | st.floats(0, 3600),
    cancel=st.none() | st.floats(0, 20_000), outcome=st.sampled_from(["SUCCESS", "FAILED", "CANCELLED"]),
    times=st.lists(st.floats(0, 30_000), min_size=2, max_size=12),
)
def test_any_lifecycle_is_consistent_at_any_instant(
    submitted: float, pending: float, scheduled: float, running: float | None, failed_attempts: int | None,
    attempt_seconds: float, wait: float | None, timeout: float | None, cancel: float | None, outcome: str,
    times: list[float],
) -> None:
    life = JobRunLifecycle(
        created_at=0, submitted_seconds=submitted, pending_seconds=pending, scheduled_seconds=scheduled,
        running_seconds=running, failed_attempts=failed_attempts, failed_attempt_seconds=attempt_seconds,
        admitted_at=None if wait is None else submitted + wait,
        queue_timeout_at=None if timeout is None else submitted + timeout, cancel_at=cancel, outcome=outcome,
    )
    previous = None
    for now in sorted(times):
        snap = life.at(now)
        assert snap.state in JOB_RUN_STATES and 0 < len(snap.state_details) <= 256
        assert snap.attempt is not None and snap.attempt >= 1
        assert snap.updated_at <= now + 1e-6 and snap.attempt_created_at is not None
        assert (snap.ended_at is not None) == (snap.state in FINAL_JOB_RUN_STATES)
        if snap.started_at is not None and snap.ended_at is not None:
            assert snap.started_at <= snap.ended_at + 1e-6
        if snap.total_utilization is not None:
            assert snap.billed_utilization is not None
            assert all(snap.billed_utilization[k] >= v for k, v in snap.total_utilization.items())
        if previous is not None:
            assert snap.attempt >= (previous.attempt or 1)  # attempts only count up
            assert (snap.queued_duration_ms or 0) >= (previous.queued_duration_ms or 0)
            if previous.total_utilization is not None:
                assert snap.total_utilization is not None
                assert snap.total_utilization["vCPUHour"] >= previous.total_utilization["vCPUHour"]
            if previous.state in FINAL_JOB_RUN_STATES:
                assert snap == previous  # final is final
        previous = snap
    ended = life.ended_at
    if ended is not None and math.isfinite(ended):
        assert life.at(ended + 1).state in FINAL_JOB_RUN_STATES


# ----- through boto3: lifecycle, queue, cancel, attempts -----------------------------------------------------


def test_start_job_run_moves_with_the_clock(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application(state="STOPPED")
    run_id = start(client, app, name="nightly", tags={"team": "x"}, executionTimeoutMinutes=60,
                   retryPolicy={"maxAttempts": 2}, clientToken="token-1")
    again = start(client, app, name="nightly", clientToken="token-1")
    assert again == run_id  # idempotent by client token
    assert client.get_application(applicationId=app)["application"]["state"] == "STARTED"  # auto-start
    run = run_of(client, app, run_id)
    assert (run["state"], run["name"], run["mode"], run["tags"]) == ("SUBMITTED", "nightly", "BATCH", {"team": "x"})
    assert (run["executionTimeoutMinutes"], run["retryPolicy"], run["jobDriver"]) == (60, {"maxAttempts": 2}, DRIVER)
    assert run["executionRole"] == ROLE and "startedAt" not in run and "queuedDurationMilliseconds" not in run
    seen = []
    for _ in range(20):
        clock.advance(10)
        seen.append(run_of(client, app, run_id)["state"])
    assert seen == (["PENDING"] + ["SCHEDULED"] + ["RUNNING"] * 12 + ["SUCCESS"] * 6)  # the default template
    final = run_of(client, app, run_id)
    assert final["endedAt"] > final["startedAt"] and final["totalExecutionDurationSeconds"] == 120
    clock.advance(3600)
    assert run_of(client, app, run_id) == final
    assert client.list_tags_for_resource(resourceArn=store.job_run_arn(app, run_id))["tags"] == {"team": "x"}


def test_runs_queue_beyond_max_concurrent_runs_and_leave_as_slots_free(
    store: Store, clock: FakeClock, client: Any
) -> None:
    app = store.add_application(max_concurrent_runs=2, queue_timeout_minutes=10)
    scheduler = client.get_application(applicationId=app)["application"]["schedulerConfiguration"]
    assert scheduler == {"maxConcurrentRuns": 2, "queueTimeoutMinutes": 10}
    store.job_run_templates["BATCH"] = JobRunLifecycle(created_at=0, submitted_seconds=1, pending_seconds=4,
                                                       scheduled_seconds=5, running_seconds=290)  # 5 minutes
    runs = [start(client, app, name=f"run-{n}") for n in range(6)]
    clock.advance(2)
    assert [run_of(client, app, r)["state"] for r in runs] == ["PENDING"] * 2 + ["QUEUED"] * 4
    assert {r["id"] for r in client.list_job_runs(applicationId=app, states=["QUEUED"])["jobRuns"]} == set(runs[2:])
    clock.advance(300)  # the first two end at 300 s: the next two leave the queue, first in first out
    assert [run_of(client, app, r)["state"] for r in runs] == ["SUCCESS"] * 2 + ["PENDING"] * 2 + ["QUEUED"] * 2
    third = run_of(client, app, runs[2])
    assert third["queuedDurationMilliseconds"] == 299_000  # from 1 s to 300 s
    clock.advance(300)  # the last two leave the queue at 599 s, two seconds before their 10-minute timeout
    states = [run_of(client, app, r)["state"] for r in runs]
    assert states == ["SUCCESS"] * 4 + ["PENDING"] * 2
    assert run_of(client, app, runs[5])["queuedDurationMilliseconds"] == 598_000
    store.configure_application(app, max_concurrent_runs=1, queue_timeout_minutes=1)
    late = [start(client, app, name=f"late-{n}") for n in range(2)]
    clock.advance(30)
    assert [run_of(client, app, r)["state"] for r in late] == ["QUEUED"] * 2  # both slots still held
    clock.advance(3600)
    for run_id in late:  # a slot came free only at 898 s, past their timeout
        timed_out = run_of(client, app, run_id)
        assert timed_out["state"] == "FAILED" and "queue timeout of 1 minutes" in timed_out["stateDetails"]
        assert "startedAt" not in timed_out and timed_out["queuedDurationMilliseconds"] == 60_000


def test_a_queued_run_cancelled_never_takes_a_slot(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application(max_concurrent_runs=1)
    first, second, third = (start(client, app, name=str(n)) for n in range(3))
    clock.advance(5)
    client.cancel_job_run(applicationId=app, jobRunId=second)
    assert run_of(client, app, second)["state"] == "CANCELLING"
    clock.advance(140)  # the first ends at 142 s: the third, not the cancelled second, takes its slot
    assert [run_of(client, app, r)["state"] for r in (first, second, third)] == ["SUCCESS", "CANCELLED", "PENDING"]
    assert "startedAt" not in run_of(client, app, second)


def test_cancel_a_running_run_with_a_grace_period_and_a_static_one(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application()
    run_id = start(client, app, mode="STREAMING")
    clock.advance(60)
    running = run_of(client, app, run_id)
    assert running["state"] == "RUNNING" and running["executionTimeoutMinutes"] == 0
    answer = client.cancel_job_run(applicationId=app, jobRunId=run_id, shutdownGracePeriodInSeconds=45)
    assert (answer["applicationId"], answer["jobRunId"]) == (app, run_id)
    clock.advance(44)
    assert run_of(client, app, run_id)["state"] == "CANCELLING"
    client.cancel_job_run(applicationId=app, jobRunId=run_id)  # cancelling already: nothing changes
    clock.advance(1)
    cancelled = run_of(client, app, run_id)
    assert cancelled["state"] == "CANCELLED" and cancelled["endedAt"].timestamp() == pytest.approx(clock.now)
    with pytest.raises(client.exceptions.ValidationException):
        client.cancel_job_run(applicationId=app, jobRunId=run_id)
    static = store.add_job_run(app, state="RUNNING")
    client.cancel_job_run(applicationId=app, jobRunId=static)
    assert run_of(client, app, static)["state"] == "CANCELLED"


def test_a_streaming_run_retries_and_lists_its_attempts(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application()
    run_id = start(client, app, mode="STREAMING", retryPolicy={"maxFailedAttemptsPerHour": 10})
    attempts_seen, created_seen = set(), set()
    for _ in range(2 * 45):  # 45 minutes in 30-second steps
        clock.advance(30)
        run = run_of(client, app, run_id)
        attempts_seen.add(run["attempt"])
        created_seen.add(run["attemptCreatedAt"])
    assert attempts_seen == {1, 2, 3, 4, 5}  # a ten-minute attempt after 20 s of PENDING and SCHEDULED
    assert len(created_seen) == 5 and run["retryPolicy"] == {"maxFailedAttemptsPerHour": 10}
    attempts = client.list_job_run_attempts(applicationId=app, jobRunId=run_id)["jobRunAttempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5]
    assert [a["state"] for a in attempts] == ["FAILED"] * 4 + [run["state"]]
    assert all(a["jobCreatedAt"] == run["createdAt"] and a["id"] == run_id for a in attempts)
    assert [a["createdAt"] for a in attempts[1:]] == [a["updatedAt"] for a in attempts[:-1]]  # one after another
    paged = list(client.get_paginator("list_job_run_attempts").paginate(
        applicationId=app, jobRunId=run_id, PaginationConfig={"PageSize": 2}))
    assert [[a["attempt"] for a in page["jobRunAttempts"]] for page in paged] == [[1, 2], [3, 4], [5]]
    second = run_of(client, app, run_id, attempt=2)
    assert (second["attempt"], second["state"]) == (2, "FAILED") and second["endedAt"] == attempts[1]["updatedAt"]
    assert second["totalResourceUtilization"]["vCPUHour"] == pytest.approx(600 * 4 / 3600, abs=1e-6)
    assert run_of(client, app, run_id, attempt=5)["attempt"] == 5
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        run_of(client, app, run_id, attempt=6)


# ----- listing ---------------------------------------------------------------------------------------------


def test_several_states_come_back_grouped_by_state_across_pages(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application()
    states = ["RUNNING", "SUCCESS", "FAILED", "QUEUED"] * 30
    ids = {store.add_job_run(app, state=state, created_at=clock.now - 10 * n): state for n, state in enumerate(states)}
    newest_first = sorted(ids, key=lambda run_id: -store.job_run(app, run_id).created_at)  # type: ignore[union-attr]
    assert [r["id"] for r in listed(client, app)] == newest_first  # no states asked: time order
    asked = ["SUCCESS", "RUNNING", "QUEUED"]
    expected = [run_id for state in asked for run_id in newest_first if ids[run_id] == state]
    pages = list(client.get_paginator("list_job_runs").paginate(
        applicationId=app, states=asked, PaginationConfig={"PageSize": 7}))
    assert [r["id"] for page in pages for r in page["jobRuns"]] == expected  # grouped, in the order asked
    assert len(pages) == math.ceil(90 / 7) and not pages[-1].get("nextToken")
    full = list(client.get_paginator("list_job_runs").paginate(applicationId=app, states=asked))
    assert [len(page["jobRuns"]) for page in full] == [50, 40]
    token = full[0]["nextToken"]
    with pytest.raises(client.exceptions.ValidationException):  # a token of another states filter
        client.list_job_runs(applicationId=app, states=["FAILED"], nextToken=token)


def test_120_runs_come_in_pages_of_50_and_changes_between_pages_lose_nothing(
    store: Store, clock: FakeClock, client: Any
) -> None:
    app = store.add_application()
    ids = [store.add_job_run(app, name=f"r{n}", created_at=clock.now - n) for n in range(120)]
    first = client.list_job_runs(applicationId=app)
    assert len(first["jobRuns"]) == 50 and first["nextToken"]
    store.add_job_run(app)  # newer than everything listed: must not shift the next pages
    rest = listed(client, app, PaginationConfig={"StartingToken": first["nextToken"]})
    assert [r["id"] for r in first["jobRuns"] + rest] == ids
    assert store.calls["ListJobRuns"] == 3


def test_created_at_and_mode_filters(store: Store, clock: FakeClock, client: Any) -> None:
    app = store.add_application()
    base = clock.now - 10_000
    ids = [store.add_job_run(app, created_at=base + 1000 * n, mode="STREAMING" if n % 2 else "BATCH")
           for n in range(5)]
    at = [datetime.fromtimestamp(base + 1000 * n, timezone.utc) for n in range(5)]

    def found(**kwargs: Any) -> set[str]:
        return {r["id"] for r in listed(client, app, **kwargs)}

    assert found(createdAtAfter=at[2] + timedelta(seconds=1)) == set(ids[3:])
    assert found(createdAtBefore=at[2] - timedelta(milliseconds=1)) == set(ids[:2])
    assert found(createdAtAfter=at[1], createdAtBefore=at[3]) == set(ids[1:4])  # both bounds included
    assert found(mode="STREAMING") == {ids[1], ids[3]}
    assert found(mode="BATCH", createdAtAfter=at[1]) == {ids[2], ids[4]}
    assert found(createdAtAfter=at[4] + timedelta(hours=1)) == set()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"maxResults": 0},
        {"maxResults": 51},
        {"nextToken": "garbage"},
        {"nextToken": "WyJ4Il0="},  # a list, but not a cursor
        {"states": ["SLEEPING"]},
        {"states": ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "FAILED", "CANCELLING", "CANCELLED",
                    "QUEUED"]},  # at most 8
        {"mode": "INTERACTIVE"},
    ],
)
def test_bad_list_job_runs_parameters_are_validation_errors(store: Store, kwargs: Any) -> None:
    app = store.add_application()
    with Simulator(store) as sim:
        client = simulator_client(sim.url, validate=False)
        with pytest.raises(client.exceptions.ValidationException):
            client.list_job_runs(applicationId=app, **kwargs)


# ----- quotas, faults, counters ------------------------------------------------------------------------------


def test_aws_quotas_throttle_each_operation_past_its_rate_and_burst(
    store: Store, monotonic: FakeClock, client: Any
) -> None:
    app = store.add_application()
    run_id = store.add_job_run(app)
    store.apply_aws_quotas()
    calls = {
        "ListJobRuns": lambda: client.list_job_runs(applicationId=app),
        "GetJobRun": lambda: client.get_job_run(applicationId=app, jobRunId=run_id),
        "ListApplications": lambda: client.list_applications(),
        "GetApplication": lambda: client.get_application(applicationId=app),
    }

    def admitted(operation: str, requests: int) -> int:
        ok = 0
        for _ in range(requests):
            try:
                calls[operation]()
                ok += 1
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ThrottlingException"
        return ok

    bursts = {"ListJobRuns": 25, "GetJobRun": 50, "ListApplications": 50, "GetApplication": 50}
    assert {op: admitted(op, burst + 5) for op, burst in bursts.items()} == bursts
    monotonic.advance(1.0)  # a second's worth: 1 ListJobRuns, 10 of each of the others
    assert {op: admitted(op, 12) for op in bursts} == {"ListJobRuns": 1, "GetJobRun": 10, "ListApplications": 10,
                                                      "GetApplication": 10}
    assert store.throttled == Counter({"ListJobRuns": 5 + 11, "GetJobRun": 5 + 2, "ListApplications": 5 + 2,
                                       "GetApplication": 5 + 2})
    assert store.calls["ListJobRuns"] == 30 + 12 and len(store.call_times("GetJobRun")) == 55 + 12
    assert client.list_job_run_attempts(applicationId=app, jobRunId=run_id)  # no quota of its own


def test_faults_and_call_counts_cover_the_job_run_operations(store: Store, client: Any) -> None:
    app = store.add_application()
    target, other = store.add_job_run(app), store.add_job_run(app)
    store.add_fault(Fault(operation="GetJobRun", error_code="InternalServerException", match={"jobRunId": target}))
    store.add_fault(Fault(operation="ListJobRuns", error_code="ThrottlingException",
                          match=lambda params: params.get("mode") == "STREAMING"))
    store.reset_calls()
    with pytest.raises(client.exceptions.InternalServerException):
        run_of(client, app, target)
    run_of(client, app, other)
    with pytest.raises(ClientError) as caught:
        client.list_job_runs(applicationId=app, mode="STREAMING")
    assert error_code(caught) == "ThrottlingException"
    client.list_job_runs(applicationId=app, states=["RUNNING"])
    client.list_job_run_attempts(applicationId=app, jobRunId=other)
    client.cancel_job_run(applicationId=app, jobRunId=other)
    start(client, app)
    assert store.calls == Counter({"GetJobRun": 2, "ListJobRuns": 2, "ListJobRunAttempts": 1, "CancelJobRun": 1,
                                   "StartJobRun": 1})


# ----- scenarios -------------------------------------------------------------------------------------------


def runs_of(store: Store, *, started_only: bool = False) -> dict[str, JobRunView]:
    apps = [a.application_id for a in store.applications() if not started_only or a.state == "STARTED"]
    return {view.job_run_id: view for app in apps for view in store.list_job_runs(app, limit=1_000_000)[0]}


def test_demo_has_every_behaviour_within_45_minutes() -> None:
    clock = FakeClock()
    store = build_scenario("demo", clock=clock, seed=1)
    names = {a.application_id: a.name or "" for a in store.applications()}
    limits = {a.name or "": a.max_concurrent_runs for a in store.applications()}
    assert limits == {"analytics": 25, "ml-notebooks": 2, "reporting": None}
    states_by_app: dict[str, Counter[str]] = {}
    streaming_attempts: list[int] = []
    first = set(runs_of(store))
    failure_details = set()
    ever: set[str] = set()
    for _ in range(46):
        views = runs_of(store)
        ever |= set(views)
        for view in views.values():
            states_by_app.setdefault(names[view.application_id], Counter())[view.state] += 1
            if view.mode == "STREAMING" and view.state not in FINAL_JOB_RUN_STATES:
                streaming_attempts.append(view.attempt or 0)
            if view.state == "FAILED":
                failure_details.add(view.state_details)
        admitted = Counter(names[v.application_id] for v in views.values()
                           if v.state in ("PENDING", "SCHEDULED", "RUNNING"))
        for app, count in admitted.items():
            limit = limits[app]
            assert limit is None or count <= limit  # never more runs at once than the limit
        clock.advance(60)
    for app in ("analytics", "ml-notebooks"):
        assert {"RUNNING", "SUCCESS"} <= set(states_by_app[app]), app
    assert {"FAILED", "CANCELLED"} <= set(states_by_app["analytics"]) | set(states_by_app["ml-notebooks"])
    assert states_by_app["ml-notebooks"]["QUEUED"] > 0 and states_by_app["analytics"]["QUEUED"] == 0
    assert set(states_by_app["reporting"]) == {"SUCCESS"}  # stopped: one run, long ended
    assert all(0 < len(details) <= 256 for details in failure_details) and len(failure_details) >= 2
    assert max(streaming_attempts) - min(streaming_attempts) >= 3  # the streaming run retries every few minutes
    assert ever - first, "new runs are submitted"
    assert first - set(runs_of(store)), "old runs are forgotten"


def test_demo_job_runs_are_a_function_of_seed_and_clock() -> None:
    clock = FakeClock(1_767_225_600.0)
    walked = build_scenario("demo", clock=clock, seed=4)
    sizes = []
    for _ in range(2 * 24 * 2):  # two days in 30-minute steps
        clock.advance(1800)
        sizes.append(len(runs_of(walked)))
    assert max(sizes) < 150  # old runs are forgotten: memory stays bounded
    fresh = build_scenario("demo", clock=FakeClock(clock.now), seed=4)
    assert runs_of(fresh, started_only=True) == runs_of(walked, started_only=True)
    other_seed = build_scenario("demo", clock=FakeClock(clock.now), seed=5)
    assert set(runs_of(other_seed)).isdisjoint(runs_of(walked))


def test_scale_has_live_and_recently_ended_job_runs() -> None:
    clock = FakeClock()
    began = time.perf_counter()
    store = build_scenario("scale", applications=20, sessions_per_application=10, active_fraction=0.5,
                           running_job_runs_per_application=10, ended_job_runs_per_application=100, seed=3,
                           clock=clock)
    assert time.perf_counter() - began < 5  # a loose bound (timings are benchmarks' business): no blow-up
    views = runs_of(store)
    assert len(views) == 20 * 110
    per_app = Counter((v.application_id, v.state in FINAL_JOB_RUN_STATES) for v in views.values())
    assert set(per_app.values()) == {10, 100}
    states = Counter(v.state for v in views.values())
    assert states["RUNNING"] > 150 and states["SUCCESS"] > 1500 and states["FAILED"] and states["CANCELLED"]
    assert not states["QUEUED"]  # the limited applications' limit is never reached
    assert all(clock.now - 1800 <= (v.ended_at or 0) <= clock.now for v in views.values() if v.state == "SUCCESS")
    assert any(v.mode == "STREAMING" and (v.attempt or 1) > 1 for v in views.values())
    clock.advance(3600)  # live runs stay live through a benchmark
    assert sum(v.state not in FINAL_JOB_RUN_STATES for v in runs_of(store).values()) == 200
    same = build_scenario("scale", applications=20, sessions_per_application=10, active_fraction=0.5,
                          running_job_runs_per_application=10, ended_job_runs_per_application=100, seed=3,
                          clock=FakeClock())
    assert set(runs_of(same)) == set(views)
    # Job runs draw from a generator of their own: the sessions are those of a scale without job runs.
    without = build_scenario("scale", applications=20, sessions_per_application=10, active_fraction=0.5, seed=3,
                             clock=FakeClock())
    assert not runs_of(without)
    sessions = {app: store.session_ids(app) for app in store.application_ids()}
    assert sessions == {app: without.session_ids(app) for app in without.application_ids()}


def test_scale_lists_live_runs_over_http() -> None:
    store = build_scenario("scale", applications=2, sessions_per_application=1, running_job_runs_per_application=60,
                           ended_job_runs_per_application=40)
    with Simulator(store) as sim:
        client = simulator_client(sim.url)
        for app in store.application_ids():
            live = listed(client, app, states=sorted(LIVE))
            assert len(live) == 60 and all(r["state"] in LIVE for r in live)
            assert len(listed(client, app)) == 100


def test_cli_aws_quotas_and_job_run_flags() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emr_serverless_simulator", "--port", "0", "--scenario", "scale", "--applications", "1",
         "--sessions-per-application", "1", "--running-job-runs-per-application", "3",
         "--ended-job-runs-per-application", "4", "--aws-quotas"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", process.stdout.readline())
        assert match
        client = simulator_client(match[1])
        app = client.list_applications()["applications"][0]["id"]
        outcomes: list[int | str] = []
        for _ in range(30):  # 25 at once, then one a second
            try:
                outcomes.append(len(client.list_job_runs(applicationId=app)["jobRuns"]))
            except ClientError as err:
                outcomes.append(err.response["Error"]["Code"])
        assert outcomes[:25] == [7] * 25 and "ThrottlingException" in outcomes[25:]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and "Traceback" not in stderr
    bad = subprocess.run([sys.executable, "-m", "emr_serverless_simulator", "--scenario", "scale",
                          "--ended-job-runs-per-application", "-1"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert bad.returncode == 2 and "must not be negative" in bad.stderr
