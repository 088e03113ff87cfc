"""Job runs (batch and streaming) as the exporter accepts them: ListJobRuns' summaries and GetJobRun's
answer, checked at the same boundary as sessions (``exporter.model.session``'s field types and checks)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct, field

from exporter.model.session import (
    Count,
    CreatedBy,
    Id,
    ReleaseLabel,
    ResourceUtilization,
    RoleArn,
    State,
    Tags,
    check_time,
    epoch,
    label_safe,
    model_max_length,
    safe_tags,
)

# Bounds from botocore's model, as for sessions: a run over them is invalid, dropped and counted.
JobRunArn = Annotated[str, Meta(max_length=model_max_length("JobRun", "arn", 1024))]
JobRunName = Annotated[str, Meta(max_length=model_max_length("JobRun", "name", 256))]
JobRunType = Annotated[str, Meta(max_length=model_max_length("JobRunSummary", "type", 64))]
Mode = Annotated[str, Meta(max_length=64)]  # an enum in the model
# Not a label (free text AWS writes): a failed run's reason, logged once.
StateDetails = Annotated[str, Meta(max_length=model_max_length("JobRun", "stateDetails", 256))]
Attempt = Annotated[int, Meta(ge=1, le=1_000_000)]


class JobRunSummary(Struct, gc=False):
    """A JobRunSummary from ListJobRuns: enough to decide whether GetJobRun is worth a call. ``type``
    (SPARK, HIVE) is only in the listing: it is carried over to the run GetJobRun returns."""

    id: Id
    application_id: Id = field(name="applicationId")
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    arn: JobRunArn = ""
    name: JobRunName = ""
    mode: Mode = ""
    type: JobRunType = ""
    release_label: ReleaseLabel = field(default="", name="releaseLabel")
    execution_role_arn: RoleArn = field(default="", name="executionRole")
    created_by: CreatedBy = field(default="", name="createdBy")
    state_details: StateDetails = field(default="", name="stateDetails")
    attempt: Attempt | None = None
    attempt_created_at: datetime | None = field(default=None, name="attemptCreatedAt")

    def __post_init__(self) -> None:
        for name, value in (("createdAt", self.created_at), ("updatedAt", self.updated_at),
                            ("attemptCreatedAt", self.attempt_created_at)):
            check_time(value, name)
        for attr in ("arn", "state", "name", "mode", "type", "release_label", "execution_role_arn", "created_by"):
            setattr(self, attr, label_safe(getattr(self, attr)))

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()

    @property
    def job_run_id(self) -> str:
        return self.id


class RetryPolicy(Struct, gc=False):
    max_attempts: Attempt | None = field(default=None, name="maxAttempts")
    max_failed_attempts_per_hour: Attempt | None = field(default=None, name="maxFailedAttemptsPerHour")


class JobRun(Struct, gc=False):
    """A JobRun from GetJobRun, with the members the metrics read."""

    application_id: Id = field(name="applicationId")
    job_run_id: Id = field(name="jobRunId")
    arn: JobRunArn
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    name: JobRunName = ""
    mode: Mode = ""
    type: JobRunType = ""  # not in GetJobRun's answer: carried over from the listing
    release_label: ReleaseLabel = field(default="", name="releaseLabel")
    execution_role_arn: RoleArn = field(default="", name="executionRole")
    created_by: CreatedBy = field(default="", name="createdBy")
    state_details: StateDetails = field(default="", name="stateDetails")
    started_at: datetime | None = field(default=None, name="startedAt")
    ended_at: datetime | None = field(default=None, name="endedAt")
    attempt: Attempt | None = None
    attempt_created_at: datetime | None = field(default=None, name="attemptCreatedAt")
    queued_milliseconds: Count | None = field(default=None, name="queuedDurationMilliseconds")
    execution_seconds: Count | None = field(default=None, name="totalExecutionDurationSeconds")
    execution_timeout_minutes: Count | None = field(default=None, name="executionTimeoutMinutes")
    retry_policy: RetryPolicy | None = field(default=None, name="retryPolicy")
    used: ResourceUtilization | None = field(default=None, name="totalResourceUtilization")
    billed: ResourceUtilization | None = field(default=None, name="billedResourceUtilization")
    tags: Tags = {}

    def __post_init__(self) -> None:
        for name, value in (("createdAt", self.created_at), ("updatedAt", self.updated_at),
                            ("startedAt", self.started_at), ("endedAt", self.ended_at),
                            ("attemptCreatedAt", self.attempt_created_at)):
            check_time(value, name)
        for attr in ("arn", "state", "name", "mode", "type", "release_label", "execution_role_arn", "created_by"):
            setattr(self, attr, label_safe(getattr(self, attr)))
        self.tags = safe_tags(self.tags)

    @property
    def id(self) -> str:
        return self.job_run_id

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()

    @property
    def ended(self) -> float | None:
        return epoch(self.ended_at)


def from_listing(summary: JobRunSummary) -> JobRun:
    """What the listing says of a run, as a run: exported until GetJobRun answers (its state, names and
    timestamps; not its use, durations or tags). Under ListJobRuns' and GetJobRun's quotas a restart lists
    every run long before it can fetch each one."""
    return JobRun(
        application_id=summary.application_id, job_run_id=summary.id, arn=summary.arn, state=summary.state,
        created_at=summary.created_at, updated_at=summary.updated_at, name=summary.name, mode=summary.mode,
        type=summary.type, release_label=summary.release_label, execution_role_arn=summary.execution_role_arn,
        created_by=summary.created_by, state_details=summary.state_details, attempt=summary.attempt,
        attempt_created_at=summary.attempt_created_at,
    )


def _build_type_info() -> None:
    """msgspec's type information built now, in the importing thread (see exporter.model.session)."""
    for kind in (JobRunSummary, RetryPolicy, JobRun):
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, kind)


_build_type_info()
