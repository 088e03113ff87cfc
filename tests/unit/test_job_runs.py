"""Job runs, unit by unit: the model, what the inventory counts as ended, and how the metrics read a run."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.metrics.job_runs import JOB_RUN_FAMILIES
from exporter.model.job_run import JobRunSummary
from exporter.model.session import InvalidObject, convert
from tests.helpers.job_runs import NOW, at, inventory, run, summary


def test_runs_final_at_the_first_listing_are_not_counted_and_later_ends_are_counted_once() -> None:
    runs = inventory()
    runs.plan("app1", [summary("done", "SUCCESS"), summary("going", "RUNNING"), summary("queued", "QUEUED")], NOW)
    assert runs.ended == {"app1": {}}  # listed completely: zeros from here on, nothing counted yet
    for found in (run("done", "SUCCESS"), run("going", "RUNNING"), run("queued", "QUEUED")):
        runs.refreshed(found, NOW)
    # Later: "going" ends (the listing shows it), "quick" started and failed between two listings.
    runs.plan("app1", [summary("going", "FAILED", NOW), summary("quick", "FAILED", NOW),
                       summary("queued", "QUEUED")], NOW + 30)
    assert runs.ended["app1"] == {"FAILED": 2}
    # The detail calls that follow, and the same listing again (a retried collection), count nothing more.
    runs.refreshed(run("going", "FAILED", NOW), NOW + 31)
    runs.refreshed(run("quick", "FAILED", NOW), NOW + 31)
    runs.plan("app1", [summary("going", "FAILED", NOW), summary("quick", "FAILED", NOW)], NOW + 60)
    assert runs.ended["app1"] == {"FAILED": 2}


def test_a_run_that_ends_while_its_listing_fails_is_counted_once_from_its_detail() -> None:
    runs = inventory()
    runs.plan("app1", [summary("going", "RUNNING")], NOW)
    runs.refreshed(run("going", "RUNNING"), NOW)
    assert [r.object_id for r in runs.fallback("app1")] == ["going"]  # a throttled listing: what is known
    assert runs.refreshed(run("going", "CANCELLED", NOW), NOW + 30)  # first seen final: its reason is logged
    runs.plan("app1", [summary("going", "CANCELLED", NOW)], NOW + 60)
    assert runs.ended["app1"] == {"CANCELLED": 1}


def test_a_cold_starts_active_listing_exports_new_runs_and_infers_nothing_else() -> None:
    runs = inventory()
    runs.take_in("app1", [summary("going", "RUNNING"), summary("early", "PENDING"), summary("odd", "SUCCESS")])
    exported = {k.obj.id: k for k in runs.objects(NOW)}
    assert set(exported) == {"going", "early"} and all(k.partial for k in exported.values())  # from the listing
    assert sorted((r.object_id, r.urgent) for r in runs.fallback("app1")) == [("early", True), ("going", True)]
    assert runs.ended == {}  # no zeros before the application's first complete listing
    runs.refreshed(run("going", "RUNNING"), NOW)
    runs.take_in("app1", [summary("going", "RUNNING")])  # the same listing again: nothing changes
    assert not runs.objects(NOW)[0].partial and runs.objects(NOW)[0].obj.id == "going"


def test_runs_seen_active_before_the_first_complete_listing_count_when_they_end() -> None:
    runs = inventory()
    runs.take_in("app1", [summary("going", "RUNNING"), summary("unfetched", "RUNNING"), summary("left", "RUNNING")])
    runs.refreshed(run("going", "RUNNING"), NOW)
    assert runs.refreshed(run("left", "CANCELLED", NOW), NOW)  # ended before the look-back was in: counted
    # The look-back is in: "going" and "unfetched" ended meanwhile (seen active: counted), "before" ended
    # before the start (first seen final at the first complete listing: never counted).
    runs.plan("app1", [summary("going", "SUCCESS", NOW), summary("unfetched", "FAILED", NOW),
                       summary("left", "CANCELLED", NOW), summary("before", "SUCCESS", NOW - 600)], NOW + 30)
    assert runs.ended == {"app1": {"SUCCESS": 1, "FAILED": 1, "CANCELLED": 1}}


def test_at_the_first_listing_only_runs_created_after_the_start_count_as_ended() -> None:
    runs = inventory()
    # Discovered at NOW - 300: "before" was created at NOW - 660 (ended before the start, maybe), "during" at
    # NOW - 240 (it started and ended while the exporter watched: counted, though first seen final).
    runs.plan("app1", [summary("before", "SUCCESS", NOW - 60), summary("during", "FAILED", NOW + 360)],
              NOW + 400, NOW - 300)
    assert runs.ended == {"app1": {"FAILED": 1}}


def test_the_listings_type_is_carried_over_to_the_run_get_job_run_returns() -> None:
    runs = inventory()
    runs.plan("app1", [summary("r1", "RUNNING")], NOW)
    runs.refreshed(run("r1", "RUNNING"), NOW)  # GetJobRun has no type
    runs.refreshed(run("r1", "RUNNING", NOW), NOW + 30)  # a later answer keeps it from the known run
    (known,) = runs.objects(NOW + 30)
    assert known.obj.type == "Spark"


def test_a_run_is_read_as_the_metric_table_says() -> None:
    found = run("r1", "RUNNING", mode="STREAMING", attempt=3, attemptCreatedAt=at(NOW - 120),
                queuedDurationMilliseconds=1500, totalExecutionDurationSeconds=42, executionTimeoutMinutes=720,
                retryPolicy={"maxFailedAttemptsPerHour": 5}, startedAt=at(NOW - 500),
                totalResourceUtilization={"vCPUHour": 2.0, "memoryGBHour": 1.0},
                billedResourceUtilization={"vCPUHour": 2.5})
    values = {f.name: [v for _, v in f.samples(found, NOW)] for f in JOB_RUN_FAMILIES}
    assert values["emr_serverless_job_run_queued_duration_seconds"] == [1.5]
    assert values["emr_serverless_job_run_execution_timeout_seconds"] == [43200.0]
    assert values["emr_serverless_job_run_attempt"] == [3.0]
    assert values["emr_serverless_job_run_attempt_created_timestamp_seconds"] == [NOW - 120]
    assert values["emr_serverless_job_run_max_failed_attempts_per_hour"] == [5.0]
    assert values["emr_serverless_job_run_max_attempts"] == []  # a streaming run: AWS gives none
    assert values["emr_serverless_job_run_vcpu_seconds_total"] == [7200.0]
    assert values["emr_serverless_job_run_memory_byte_seconds_total"] == [3600.0 * 2**30]
    assert values["emr_serverless_job_run_billed_vcpu_seconds_total"] == [9000.0]
    assert values["emr_serverless_job_run_ended_timestamp_seconds"] == []  # absent until set
    states = dict(next(f for f in JOB_RUN_FAMILIES if f.name.endswith("_state")).samples(found, NOW))
    assert len(states) == 9 and states[("RUNNING",)] == 1.0


@pytest.mark.parametrize("bad", [{"attempt": 0}, {"queuedDurationMilliseconds": -1}, {"updatedAt": "yesterday"},
                                 {"jobRunId": "NOT-AN-ID"}, {"retryPolicy": {"maxAttempts": "3"}}])
def test_a_malformed_run_is_invalid(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidObject):
        run("r1", "RUNNING", **bad)


def test_a_listed_run_is_exported_from_its_listing_until_get_job_run_answers() -> None:
    runs = inventory()
    runs.plan("app1", [summary("r2", "RUNNING", name="nightly", mode="BATCH", attempt=2),
                       summary("r1", "QUEUED")], NOW)
    listed = runs.objects(NOW)
    assert [(k.obj.id, k.obj.state, k.partial) for k in listed] == [("r1", "QUEUED", True), ("r2", "RUNNING", True)]
    assert (listed[1].obj.name, listed[1].obj.mode, listed[1].obj.type, listed[1].obj.attempt) == (
        "nightly", "BATCH", "Spark", 2)
    assert listed[1].obj.used is None  # use and tags wait for GetJobRun
    assert runs.unfetched == 2
    runs.refreshed(run("r2", "RUNNING", totalResourceUtilization={"vCPUHour": 1.0}), NOW)
    assert [(k.obj.id, k.partial) for k in runs.objects(NOW)] == [("r2", False), ("r1", True)]
    runs.plan("app1", [summary("r1", "SCHEDULED", NOW)], NOW + 30)  # a new state before it is ever fetched
    assert {k.obj.id: k.obj.state for k in runs.objects(NOW + 30)}["r1"] == "SCHEDULED"
    runs.vanished("r1")
    assert [k.obj.id for k in runs.objects(NOW + 30)] == ["r2"]


@pytest.mark.parametrize(("member", "bound"), [("stateDetails", 256), ("name", 256), ("arn", 1024)])
def test_a_run_over_the_models_length_limits_is_invalid(member: str, bound: int) -> None:
    extra: dict[str, Any] = {member: "x" * bound}
    run("r1", "FAILED", **extra)  # at the bound: fine
    extra[member] += "x"
    with pytest.raises(InvalidObject):
        run("r1", "FAILED", **extra)
    with pytest.raises(InvalidObject):
        convert({"id": "r1", "applicationId": "app1", "state": "FAILED", "createdAt": at(NOW), "updatedAt": at(NOW),
                 member: "x" * (bound + 1)}, JobRunSummary)
