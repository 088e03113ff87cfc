"""A job run's life as a pure function of time: state, attempt, timestamps and utilization at any instant.

SUBMITTED -> [QUEUED] -> PENDING -> SCHEDULED -> RUNNING -> SUCCESS or FAILED; CANCELLING -> CANCELLED
from any live state once cancelled; FAILED straight from QUEUED when the queue timeout passes. A
retried attempt (streaming runs, batch runs with ``maxAttempts``) fails after ``failed_attempt_seconds``
of RUNNING and the next one starts at PENDING, ``attempt`` one higher. When the run leaves the queue
(``admitted_at``) is the application's decision, taken by the store from ``maxConcurrentRuns``, so it is
a field, not a duration; everything else follows from the durations and the clock, as for sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

JOB_RUN_STATES = (
    "SUBMITTED",
    "PENDING",
    "SCHEDULED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
    "QUEUED",
)
FINAL_JOB_RUN_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
JOB_RUN_MODES = ("BATCH", "STREAMING")
OUTCOMES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
MAX_STATE_DETAILS = 256

STATE_DETAILS: dict[str, str] = {
    "SUBMITTED": "Job run is submitted",
    "QUEUED": "Job run is queued: the application runs its maximum of concurrent job runs",
    "PENDING": "Job run is pending: workers are being provisioned",
    "SCHEDULED": "Job run is scheduled",
    "RUNNING": "Job run is running",
    "SUCCESS": "Job run completed successfully",
    "FAILED": "Job run failed",
    "CANCELLING": "Job run is being cancelled",
    "CANCELLED": "Job run was cancelled",
}


def job_run_state_details_for(state: str) -> str:
    return STATE_DETAILS.get(state, f"Job run is {state.lower() or 'in an unknown state'}")


def _short(details: str) -> str:
    return details if len(details) <= MAX_STATE_DETAILS else details[: MAX_STATE_DETAILS - 3] + "..."


@dataclass(frozen=True)
class JobRunSnapshot:
    """The time-dependent fields of a job run (or of one of its attempts) at one instant (None: absent)."""

    state: str
    state_details: str
    updated_at: float
    started_at: float | None
    ended_at: float | None
    attempt: int | None
    attempt_created_at: float | None
    attempt_updated_at: float | None
    total_utilization: dict[str, float] | None
    billed_utilization: dict[str, float] | None
    execution_duration_seconds: int | None
    queued_duration_ms: int | None


@dataclass(frozen=True)
class JobRunLifecycle:
    created_at: float
    submitted_seconds: float = 2.0
    pending_seconds: float = 10.0
    scheduled_seconds: float = 10.0
    running_seconds: float | None = 120.0  # RUNNING time of the last attempt; None: until cancelled
    outcome: str = "SUCCESS"  # of the last attempt: SUCCESS, FAILED, or CANCELLED (by its submitter)
    failure_details: str = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
    failed_attempts: int | None = 0  # attempts that fail and are retried before the last; None: all of them
    failed_attempt_seconds: float = 600.0  # RUNNING time of each of those
    attempt_failure_details: str = "The driver exited with code 1"
    cancelling_seconds: float = 15.0
    admitted_at: float | None = None  # leaves SUBMITTED/QUEUED for PENDING; None: not decided yet (queued)
    cancel_at: float | None = None  # CancelJobRun
    queue_timeout_at: float | None = None  # FAILED here if still queued
    vcpus: float = 4.0
    memory_gb: float = 16.0
    storage_gb: float = 20.0
    min_billed_seconds: float = 60.0  # AWS bills at least a minute of the run's workers

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {self.outcome!r}")
        retried = self.failed_attempts is None or self.failed_attempts > 0
        if retried and self.pending_seconds + self.scheduled_seconds + self.failed_attempt_seconds <= 0:
            raise ValueError("a retried attempt must last some time")

    # ----- the shape of the timeline ------------------------------------------------------------

    @property
    def enqueued_at(self) -> float:
        """When the run leaves SUBMITTED: admitted at once if a slot is free, QUEUED otherwise."""
        return self.created_at + self.submitted_seconds

    @property
    def _failed_attempt_length(self) -> float:
        return self.pending_seconds + self.scheduled_seconds + self.failed_attempt_seconds

    def _run_end(self) -> float:
        """When the last attempt stops RUNNING (inf: never, on its own)."""
        if self.admitted_at is None or self.failed_attempts is None or self.running_seconds is None:
            return math.inf
        return (
            self.admitted_at
            + self.failed_attempts * self._failed_attempt_length
            + self.pending_seconds
            + self.scheduled_seconds
            + self.running_seconds
        )

    def _timed_out_at(self) -> float | None:
        """When the run failed in the queue, if it did (the queue timeout came before a slot did)."""
        timeout = self.queue_timeout_at
        if timeout is None or (self.admitted_at is not None and self.admitted_at <= timeout):
            return None
        if self.cancel_at is not None and self.cancel_at < timeout:
            return None
        return timeout

    def _cancelling_from(self) -> float | None:
        """When CANCELLING starts, if it does: a cancel before the run ended, or the submitter's own."""
        if self._timed_out_at() is not None:
            return None
        run_end = self._run_end()
        planned = run_end if self.outcome == "CANCELLED" and math.isfinite(run_end) else None
        cancel = self.cancel_at if self.cancel_at is not None and self.cancel_at < run_end else None
        candidates = [t for t in (cancel, planned) if t is not None]
        return min(candidates) if candidates else None

    @property
    def ended_at(self) -> float | None:
        """When the run reaches its final state (None: not known yet, or never without a cancel)."""
        timed_out = self._timed_out_at()
        if timed_out is not None:
            return timed_out
        cancelling = self._cancelling_from()
        if cancelling is not None:
            return cancelling + self.cancelling_seconds
        run_end = self._run_end()
        return run_end if math.isfinite(run_end) else None

    def releases_slot_at(self) -> float:
        """Until when an admitted run holds one of the application's concurrent-run slots."""
        ended = self.ended_at
        return ended if ended is not None else math.inf

    def latest_end(self, queue_wait: float) -> float:
        """An upper bound of ``ended_at`` for a run that waits at most ``queue_wait`` seconds in the queue."""
        ended = replace(self, admitted_at=self.enqueued_at + queue_wait).ended_at
        return max(ended if ended is not None else math.inf, self.enqueued_at + queue_wait)

    # ----- attempts -----------------------------------------------------------------------------

    def _attempt_index_at(self, t: float) -> int:
        """0-based index of the attempt running at ``t`` (t >= admitted_at)."""
        assert self.admitted_at is not None
        if self.failed_attempts == 0:
            return 0
        index = math.floor((t - self.admitted_at) / self._failed_attempt_length)
        if self.failed_attempts is not None:
            index = min(index, self.failed_attempts)
        return max(0, index)

    def _attempt_start(self, index: int) -> float:
        assert self.admitted_at is not None
        return self.admitted_at + index * self._failed_attempt_length

    def _attempt_created(self, index: int) -> float:
        # The first attempt is created with the run; each retry when the attempt before it failed.
        return self.created_at if index == 0 else self._attempt_start(index)

    def _running_seconds(self, until: float) -> float:
        """Seconds spent RUNNING (over every attempt) from admission until ``until``."""
        if self.admitted_at is None or until <= self.admitted_at:
            return 0.0
        elapsed = until - self.admitted_at
        lead = self.pending_seconds + self.scheduled_seconds
        length = self._failed_attempt_length
        failing = elapsed if self.failed_attempts is None else min(elapsed, self.failed_attempts * length)
        total = 0.0
        if failing > 0:
            full = math.floor(failing / length)
            total += full * self.failed_attempt_seconds + min(
                self.failed_attempt_seconds, max(0.0, failing - full * length - lead)
            )
        if self.failed_attempts is not None:
            rest = elapsed - self.failed_attempts * length
            if rest > lead:
                last = rest - lead
                total += last if self.running_seconds is None else min(last, self.running_seconds)
        return total

    # ----- the snapshot -------------------------------------------------------------------------

    def at(self, now: float) -> JobRunSnapshot:
        """The run as GetJobRun shows it at ``now``."""
        queued = self._queued_ms(now)
        timed_out = self._timed_out_at()
        if timed_out is not None and now >= timed_out:
            minutes = round((timed_out - self.enqueued_at) / 60)
            details = f"Job run failed: it stayed queued for its queue timeout of {minutes} minutes"
            return self._snapshot("FAILED", details, timed_out, 0, timed_out, timed_out, queued)
        cancelling = self._cancelling_from()
        if cancelling is not None and now >= cancelling:
            index = self._attempt_index_at(cancelling) if self._admitted_by(cancelling) else 0
            done = cancelling + self.cancelling_seconds
            state = "CANCELLED" if now >= done else "CANCELLING"
            updated = done if state == "CANCELLED" else cancelling
            return self._snapshot(
                state, job_run_state_details_for(state), updated, index, min(now, cancelling),
                done if state == "CANCELLED" else None, queued,
            )
        if now < self.enqueued_at:
            return self._snapshot("SUBMITTED", job_run_state_details_for("SUBMITTED"), self.created_at, 0, now,
                                  None, None)
        if not self._admitted_by(now):
            return self._snapshot("QUEUED", job_run_state_details_for("QUEUED"), self.enqueued_at, 0, now, None,
                                  queued)
        index = self._attempt_index_at(now)
        start = self._attempt_start(index)
        lead = self.pending_seconds + self.scheduled_seconds
        last = self.failed_attempts is not None and index == self.failed_attempts
        if now < start + self.pending_seconds:
            state, since = "PENDING", start
        elif now < start + lead:
            state, since = "SCHEDULED", start + self.pending_seconds
        elif not last or self.running_seconds is None or now < start + lead + self.running_seconds:
            state, since = "RUNNING", start + lead
        else:
            ended = start + lead + self.running_seconds
            details = self.failure_details if self.outcome == "FAILED" else job_run_state_details_for("SUCCESS")
            return self._snapshot(self.outcome, details, ended, index, ended, ended, queued)
        details = job_run_state_details_for(state)
        if index > 0 and state != "RUNNING":
            details = f"Attempt {index} failed: {self.attempt_failure_details}. Attempt {index + 1} is {state.lower()}"
        return self._snapshot(state, details, since, index, now, None, queued)

    def attempt_at(self, attempt: int, now: float) -> JobRunSnapshot | None:
        """Attempt ``attempt`` (1-based) as GetJobRun's ``attempt`` shows it at ``now``; None: no such attempt."""
        current = self.at(now)
        latest = current.attempt or 1
        if not 1 <= attempt <= latest:
            return None
        if attempt == latest:
            return current
        index = attempt - 1
        start = self._attempt_start(index)
        failed = start + self._failed_attempt_length
        ran = self.failed_attempt_seconds
        lead = self.pending_seconds + self.scheduled_seconds
        total, billed = self._utilization(ran)
        return JobRunSnapshot(
            state="FAILED",
            state_details=_short(f"Attempt {attempt} failed: {self.attempt_failure_details}"),
            updated_at=failed,
            started_at=start + lead if ran > 0 else None,
            ended_at=failed,
            attempt=attempt,
            attempt_created_at=self._attempt_created(index),
            attempt_updated_at=failed,
            total_utilization=total if ran > 0 else None,
            billed_utilization=billed if ran > 0 else None,
            execution_duration_seconds=int(ran),
            queued_duration_ms=current.queued_duration_ms,
        )

    def _admitted_by(self, t: float) -> bool:
        return self.admitted_at is not None and t >= self.admitted_at

    def _queued_ms(self, now: float) -> int | None:
        """Time spent QUEUED so far; None before the run got as far as the queue (or if it never did)."""
        until = min(t for t in (now, self.admitted_at, self._timed_out_at(), self.cancel_at) if t is not None)
        if until < self.enqueued_at:
            return None
        return round((until - self.enqueued_at) * 1000)

    def _utilization(self, running: float) -> tuple[dict[str, float], dict[str, float]]:
        total = {
            "vCPUHour": running * self.vcpus / 3600,
            "memoryGBHour": running * self.memory_gb / 3600,
            "storageGBHour": running * self.storage_gb / 3600,
        }
        floor = self.min_billed_seconds / 3600
        minimum = {"vCPUHour": floor * self.vcpus, "memoryGBHour": floor * self.memory_gb,
                   "storageGBHour": floor * self.storage_gb}
        billed = {key: max(value, minimum[key]) for key, value in total.items()}
        return ({key: round(value, 6) for key, value in total.items()},
                {key: round(value, 6) for key, value in billed.items()})

    def _snapshot(
        self,
        state: str,
        details: str,
        updated_at: float,
        index: int,
        usage_until: float,
        ended_at: float | None,
        queued_ms: int | None,
    ) -> JobRunSnapshot:
        first_running = (
            self.admitted_at + self.pending_seconds + self.scheduled_seconds if self.admitted_at is not None else None
        )
        started = first_running is not None and usage_until >= first_running
        total = billed = None
        if started:
            total, billed = self._utilization(self._running_seconds(usage_until))
        duration = None
        if ended_at is not None:
            duration = int(ended_at - first_running) if started and first_running is not None else 0
        attempt_created = self._attempt_created(index)
        return JobRunSnapshot(
            state=state,
            state_details=_short(details),
            updated_at=updated_at,
            started_at=first_running if started else None,
            ended_at=ended_at,
            attempt=index + 1,
            attempt_created_at=attempt_created,
            attempt_updated_at=max(updated_at, attempt_created),
            total_utilization=total,
            billed_utilization=billed,
            execution_duration_seconds=duration,
            queued_duration_ms=queued_ms,
        )
