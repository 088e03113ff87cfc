"""A session's life as a pure function of time: state, timestamps and utilization at any instant.

SUBMITTED -> STARTING -> STARTED -> BUSY/IDLE alternating -> TERMINATING -> TERMINATED, or FAILED
at ``end_at`` (before ``started_at``: failed to start). Being a function of the clock, not of how
often it is asked, makes scenarios reproducible and lets tests drive them with a fake clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

STATE_DETAILS: dict[str, str] = {
    "SUBMITTED": "Session is submitted",
    "STARTING": "Session is starting",
    "STARTED": "Session has started",
    "IDLE": "Session is idle",
    "BUSY": "Session is running a statement",
    "TERMINATING": "Session is terminating",
    "TERMINATED": "Session was terminated",
    "FAILED": "Session failed",
}


def state_details_for(state: str) -> str:
    return STATE_DETAILS.get(state, f"Session is {state.lower() or 'in an unknown state'}")


@dataclass(frozen=True)
class Snapshot:
    """The time-dependent fields of a session at one instant (None: absent)."""

    state: str
    state_details: str
    updated_at: float
    started_at: float | None
    ended_at: float | None
    idle_since: float | None
    total_utilization: dict[str, float] | None
    billed_utilization: dict[str, float] | None
    execution_duration_seconds: int | None


@dataclass(frozen=True)
class Lifecycle:
    created_at: float
    starting_at: float
    started_at: float
    first_busy_at: float
    busy_seconds: float
    idle_seconds: float
    end_at: float | None = None  # TERMINATING (or FAILED) from here; None: runs until terminated
    terminating_seconds: float = 15.0
    failed: bool = False
    failure_details: str = "Session failed: the driver exited with code 1"
    vcpus_busy: float = 8.0
    vcpus_idle: float = 2.0
    memory_gb_busy: float = 32.0
    memory_gb_idle: float = 8.0
    storage_gb: float = 20.0
    min_billed_seconds: float = 60.0  # AWS bills at least a minute of the session's workers

    @property
    def ended_at(self) -> float | None:
        if self.end_at is None:
            return None
        return self.end_at if self.failed else self.end_at + self.terminating_seconds

    def terminate(self, now: float) -> Lifecycle:
        """TerminateSession: TERMINATING now, unless already ending or ended."""
        if self.end_at is not None and self.end_at <= now:
            return self
        # A session still starting ends without ever having started.
        return replace(self, end_at=now, failed=False)

    def _busy_time(self, seconds: float) -> float:
        """Seconds spent BUSY in the first ``seconds`` of the BUSY/IDLE alternation."""
        if seconds <= 0:
            return 0.0
        period = self.busy_seconds + self.idle_seconds
        cycles = math.floor(seconds / period)
        return cycles * self.busy_seconds + min(seconds - cycles * period, self.busy_seconds)

    def at(self, now: float) -> Snapshot:
        state, updated_at, idle_since = self._state_at(now)
        ended_at = self.ended_at if state in ("TERMINATED", "FAILED") else None
        ran = self.started_at <= now and (self.end_at is None or self.started_at < self.end_at)
        if not ran:
            return Snapshot(state, self._details(state), updated_at, None, ended_at, None, None, None, None)
        stop = min(now, ended_at) if ended_at is not None else now
        running = max(0.0, stop - self.started_at)
        cycling_until = stop if self.end_at is None else min(stop, self.end_at)
        busy = self._busy_time(cycling_until - self.first_busy_at)
        idle = running - busy
        total = {
            "vCPUHour": (busy * self.vcpus_busy + idle * self.vcpus_idle) / 3600,
            "memoryGBHour": (busy * self.memory_gb_busy + idle * self.memory_gb_idle) / 3600,
            "storageGBHour": running * self.storage_gb / 3600,
        }
        minimum = {
            "vCPUHour": self.min_billed_seconds * self.vcpus_idle / 3600,
            "memoryGBHour": self.min_billed_seconds * self.memory_gb_idle / 3600,
            "storageGBHour": self.min_billed_seconds * self.storage_gb / 3600,
        }
        billed = {key: max(value, minimum[key]) for key, value in total.items()}
        return Snapshot(
            state,
            self._details(state),
            updated_at,
            self.started_at,
            ended_at,
            idle_since,
            {key: round(value, 6) for key, value in total.items()},
            {key: round(value, 6) for key, value in billed.items()},
            int(running),
        )

    def _details(self, state: str) -> str:
        return self.failure_details if state == "FAILED" else state_details_for(state)

    def _state_at(self, now: float) -> tuple[str, float, float | None]:
        """(state, updatedAt, idleSince)."""
        if self.end_at is not None and now >= self.end_at:
            if self.failed:
                return "FAILED", self.end_at, None
            if now < self.end_at + self.terminating_seconds:
                return "TERMINATING", self.end_at, None
            return "TERMINATED", self.end_at + self.terminating_seconds, None
        if now < self.starting_at:
            return "SUBMITTED", self.created_at, None
        if now < self.started_at:
            return "STARTING", self.starting_at, None
        if now < self.first_busy_at:
            return "STARTED", self.started_at, None
        period = self.busy_seconds + self.idle_seconds
        offset = (now - self.first_busy_at) % period
        if offset < self.busy_seconds:
            return "BUSY", now - offset, None
        idle_since = now - (offset - self.busy_seconds)
        return "IDLE", idle_since, idle_since
