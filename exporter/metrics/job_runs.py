"""The metrics of a batch or streaming job run: one series set per exported run (GetJobRun's answer, with
the listing's ``type``)."""

from __future__ import annotations

from exporter.metrics.families import Family, KindTable, info, state_set, usage_families, value
from exporter.model.job_run import JobRun
from exporter.model.kinds import JOB_RUNS
from exporter.model.session import ResourceUtilization, epoch


def _used(run: JobRun) -> ResourceUtilization | None:
    return run.used


def _billed(run: JobRun) -> ResourceUtilization | None:
    return run.billed


def _minutes(minutes: float | None) -> float | None:
    return minutes * 60 if minutes is not None else None


JOB_RUN_FAMILIES: tuple[Family[JobRun], ...] = (
    Family(
        "emr_serverless_job_run_info", "gauge", "Information about the job run; always 1.",
        info(lambda r: (r.arn, r.mode, r.type, r.release_label, r.execution_role_arn, r.created_by)),
        ("arn", "mode", "type", "release_label", "execution_role_arn", "created_by"),
    ),
    Family(
        "emr_serverless_job_run_state", "gauge", "Current state of the job run: 1 for the current state.",
        state_set(JOB_RUNS.states, lambda r: r.state, "job run"), ("state",),
    ),
    Family(
        "emr_serverless_job_run_created_timestamp_seconds", "gauge",
        "When the job run was created, in Unix seconds.", value(lambda r, now: r.created_at.timestamp()),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_started_timestamp_seconds", "gauge",
        "When the job run started, in Unix seconds.", value(lambda r, now: epoch(r.started_at)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_ended_timestamp_seconds", "gauge",
        "When the job run ended, in Unix seconds.", value(lambda r, now: r.ended),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_queued_duration_seconds", "gauge",
        "Time the job run spent QUEUED (queuedDurationMilliseconds / 1000).",
        value(lambda r, now: r.queued_milliseconds / 1000 if r.queued_milliseconds is not None else None),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_execution_duration_seconds", "gauge",
        "Total execution duration of the job run (totalExecutionDurationSeconds).",
        value(lambda r, now: r.execution_seconds),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_execution_timeout_seconds", "gauge",
        "Execution time after which AWS cancels the job run (executionTimeoutMinutes x 60).",
        value(lambda r, now: _minutes(r.execution_timeout_minutes)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_attempt", "gauge",
        "Attempt of the job run: streaming and retried runs count up.", value(lambda r, now: r.attempt),
    ),
    Family(
        "emr_serverless_job_run_attempt_created_timestamp_seconds", "gauge",
        "When the job run's current attempt was created, in Unix seconds.",
        value(lambda r, now: epoch(r.attempt_created_at)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_job_run_max_attempts", "gauge",
        "Attempts a batch job run may make (retryPolicy.maxAttempts).",
        value(lambda r, now: r.retry_policy.max_attempts if r.retry_policy else None),
    ),
    Family(
        "emr_serverless_job_run_max_failed_attempts_per_hour", "gauge",
        "Failed attempts per hour after which a streaming job run stops (retryPolicy.maxFailedAttemptsPerHour).",
        value(lambda r, now: r.retry_policy.max_failed_attempts_per_hour if r.retry_policy else None),
    ),
    *usage_families("emr_serverless_job_run", "job run", _used, _billed),
)

JOB_RUN_TABLE: KindTable[JobRun] = KindTable(
    kind=JOB_RUNS,
    id_label="job_run_id",
    name_label="job_run_name",
    families=JOB_RUN_FAMILIES,
    tags_family="emr_serverless_job_run_tags",
    tags_help="The job run's AWS tags as labels tag_<key>; always 1.",
    count_family="emr_serverless_application_job_runs",
    count_help="Exported job runs of the application by state.",
    ended_family="emr_serverless_application_job_runs_ended_total",
    ended_help="Job runs seen reaching SUCCESS, FAILED or CANCELLED since the exporter started, by state (runs "
               "already final at the first listing are not counted).",
)
