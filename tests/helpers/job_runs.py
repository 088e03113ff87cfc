"""Job runs as the unit tests build them: a listing's summary, GetJobRun's answer and an inventory of one
application ("app1"), with times around a fixed NOW."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from exporter.collect.inventory import Inventory
from exporter.config.schema import DiscoveryConfig
from exporter.model.job_run import JobRun, JobRunSummary
from exporter.model.kinds import JOB_RUNS
from exporter.model.session import convert

NOW = 1_764_000_000.0
ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/app1/jobruns/"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def summary(rid: str, state: str, updated: float = NOW - 60, **extra: Any) -> JobRunSummary:
    """The listing's view of run ``rid`` of app1, created 600 s before its ``updated``."""
    return convert({"id": rid, "applicationId": "app1", "state": state, "createdAt": at(updated - 600),
                    "updatedAt": at(updated), "type": "Spark", **extra}, JobRunSummary)


def run(rid: str, state: str, updated: float = NOW - 60, **extra: Any) -> JobRun:
    """GetJobRun's answer for run ``rid`` of app1, created 600 s before its ``updated``."""
    return convert({"jobRunId": rid, "applicationId": "app1", "arn": ARN + rid, "state": state,
                    "createdAt": at(updated - 600), "updatedAt": at(updated), "name": f"etl-{rid}", **extra}, JobRun)


def inventory(**discovery: Any) -> Inventory[JobRunSummary, JobRun]:
    """An inventory of job runs that knows app1 (``discovery``: DiscoveryConfig keys)."""
    runs = Inventory(JOB_RUNS, DiscoveryConfig(**discovery))
    runs.keep_applications(["app1"])
    return runs
