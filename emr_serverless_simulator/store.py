"""The simulator's in-memory account: applications, sessions, job runs, fault rules and call counters.

All state sits behind one re-entrant lock, so the HTTP server's threads and a test's thread can use
the store at once. Sessions and job runs either hold static fields (set by tests) or follow a lifecycle
(a pure function of the clock, used by the scenarios and by StartSession/StartJobRun). Which queued job
run gets an application's free slot, and when, is the store's decision (``maxConcurrentRuns``, first in
first out), taken for every instant up to now and never revised, so it too depends only on the clock.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import math
import random
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emr_serverless_simulator.errors import ApiError
from emr_serverless_simulator.faults import Fault
from emr_serverless_simulator.job_runs import (
    FINAL_JOB_RUN_STATES,
    JobRunLifecycle,
    JobRunSnapshot,
    job_run_state_details_for,
)
from emr_serverless_simulator.lifecycle import Lifecycle, Snapshot, state_details_for
from emr_serverless_simulator.throttle import AWS_QUOTAS, Throttle, TokenBucket

Clock = Callable[[], float]
Ticker = Callable[["Store", float], None]

TERMINAL_STATES = frozenset({"TERMINATED", "FAILED"})
NOT_YET_STARTED_STATES = frozenset({"SUBMITTED", "STARTING"})
_ID_ALPHABET = string.digits + string.ascii_lowercase
CALL_TIMES_KEPT = 100_000  # request times remembered per operation, the newest


def random_id(rng: random.Random) -> str:
    """An id shaped like AWS's: 20 lowercase alphanumerics, starting with 00."""
    return "00" + "".join(rng.choices(_ID_ALPHABET, k=18))


@dataclass
class Application:
    application_id: str
    name: str | None
    state: str
    type: str
    release_label: str
    architecture: str | None
    tags: dict[str, str] | None
    created_at: float
    updated_at: float
    state_details: str | None = None
    # GetApplication's capacity members in their wire shapes: {"cpu": "400 vCPU", "memory": "3000 GB",
    # "disk": "20000 GB"}, {"Driver": {"workerCount": 1, "workerConfiguration": {...}}}; None: not set.
    maximum_capacity: dict[str, str] | None = None
    initial_capacity: dict[str, dict[str, Any]] | None = None
    auto_start: bool = True  # AWS's defaults: auto-start on, auto-stop after 15 idle minutes
    auto_stop_minutes: int | None = 15  # None: auto-stop off
    # schedulerConfiguration: None, no limit (and no schedulerConfiguration in GetApplication); job runs
    # beyond the limit are QUEUED, and FAILED if still queued after queue_timeout_minutes.
    max_concurrent_runs: int | None = None
    queue_timeout_minutes: int = 360  # AWS's default


_CONFIGURABLE_APPLICATION_FIELDS = frozenset(
    {"maximum_capacity", "initial_capacity", "auto_start", "auto_stop_minutes", "max_concurrent_runs",
     "queue_timeout_minutes"}
)


@dataclass(frozen=True)
class SessionView:
    """A session as the API sees it at one instant."""

    application_id: str
    session_id: str
    name: str | None
    state: str
    state_details: str
    release_label: str
    execution_role_arn: str
    created_by: str
    created_at: float
    updated_at: float
    started_at: float | None
    ended_at: float | None
    idle_since: float | None
    idle_timeout_minutes: int | None
    tags: dict[str, str] | None
    total_utilization: dict[str, float] | None
    billed_utilization: dict[str, float] | None
    execution_duration_seconds: int | None


@dataclass
class SessionRecord:
    application_id: str
    session_id: str
    name: str | None
    created_at: float
    created_by: str
    execution_role_arn: str
    release_label: str
    idle_timeout_minutes: int | None
    tags: dict[str, str] | None
    # Static fields, used while ``lifecycle`` is None.
    state: str = "IDLE"
    state_details: str | None = None
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    idle_since: float | None = None
    total_utilization: dict[str, float] | None = None
    billed_utilization: dict[str, float] | None = None
    execution_duration_seconds: int | None = None
    lifecycle: Lifecycle | None = None

    @property
    def sort_key(self) -> tuple[float, str]:
        # Newest first, as AWS lists; the id breaks ties so the order (and pagination) is total.
        return (-self.created_at, self.session_id)

    def snapshot(self, now: float) -> Snapshot:
        if self.lifecycle is not None:
            return self.lifecycle.at(now)
        return Snapshot(
            state=self.state,
            state_details=self.state_details or state_details_for(self.state),
            updated_at=self.updated_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            idle_since=self.idle_since,
            total_utilization=self.total_utilization,
            billed_utilization=self.billed_utilization,
            execution_duration_seconds=self.execution_duration_seconds,
        )

    def freeze(self, now: float) -> None:
        """Turn a lifecycle session into a static one, as it is at ``now``, so fields can be set."""
        if self.lifecycle is None:
            return
        snap = self.lifecycle.at(now)
        self.lifecycle = None
        self.state, self.state_details, self.updated_at = snap.state, snap.state_details, snap.updated_at
        self.started_at, self.ended_at, self.idle_since = snap.started_at, snap.ended_at, snap.idle_since
        self.total_utilization = snap.total_utilization
        self.billed_utilization = snap.billed_utilization
        self.execution_duration_seconds = snap.execution_duration_seconds

    def view(self, now: float) -> SessionView:
        snap = self.snapshot(now)
        return SessionView(
            application_id=self.application_id,
            session_id=self.session_id,
            name=self.name,
            state=snap.state,
            state_details=snap.state_details,
            release_label=self.release_label,
            execution_role_arn=self.execution_role_arn,
            created_by=self.created_by,
            created_at=self.created_at,
            updated_at=max(snap.updated_at, self.created_at),
            started_at=snap.started_at,
            ended_at=snap.ended_at,
            idle_since=snap.idle_since,
            idle_timeout_minutes=self.idle_timeout_minutes,
            tags=dict(self.tags) if self.tags is not None else None,
            total_utilization=dict(snap.total_utilization) if snap.total_utilization else None,
            billed_utilization=dict(snap.billed_utilization) if snap.billed_utilization else None,
            execution_duration_seconds=snap.execution_duration_seconds,
        )


@dataclass
class _AppSessions:
    by_id: dict[str, SessionRecord] = field(default_factory=dict)
    order: list[tuple[float, str]] | None = None  # sorted sort keys; None: rebuild on next listing

    def sorted_keys(self) -> list[tuple[float, str]]:
        if self.order is None:
            self.order = sorted(record.sort_key for record in self.by_id.values())
        return self.order


_UPDATABLE_SESSION_FIELDS = frozenset(
    {
        "name",
        "state_details",
        "updated_at",
        "started_at",
        "ended_at",
        "idle_since",
        "idle_timeout_minutes",
        "tags",
        "total_utilization",
        "billed_utilization",
        "execution_duration_seconds",
        "created_by",
        "execution_role_arn",
        "release_label",
    }
)


@dataclass(frozen=True)
class JobRunView:
    """A job run (or one attempt of it) as the API sees it at one instant. ``job_driver``,
    ``network_configuration`` and ``configuration_overrides`` are the run's own (not copied, as listings of
    many runs would spend their time copying them): read them, don't change them."""

    application_id: str
    job_run_id: str
    name: str | None
    mode: str | None
    type: str | None
    state: str
    state_details: str
    release_label: str
    execution_role_arn: str
    created_by: str
    created_at: float
    updated_at: float
    started_at: float | None
    ended_at: float | None
    attempt: int | None
    attempt_created_at: float | None
    attempt_updated_at: float | None
    tags: dict[str, str] | None
    total_utilization: dict[str, float] | None
    billed_utilization: dict[str, float] | None
    execution_duration_seconds: int | None
    queued_duration_ms: int | None
    execution_timeout_minutes: int | None
    retry_policy: dict[str, int] | None
    job_driver: dict[str, Any]
    network_configuration: dict[str, Any] | None
    configuration_overrides: dict[str, Any] | None


@dataclass
class JobRunRecord:
    application_id: str
    job_run_id: str
    name: str | None
    mode: str | None
    type: str | None
    created_at: float
    created_by: str
    execution_role_arn: str
    release_label: str
    tags: dict[str, str] | None
    execution_timeout_minutes: int | None
    retry_policy: dict[str, int] | None
    job_driver: dict[str, Any]
    network_configuration: dict[str, Any] | None
    configuration_overrides: dict[str, Any] | None
    # Static fields, used while ``lifecycle`` is None.
    state: str = "RUNNING"
    state_details: str | None = None
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    attempt: int | None = 1
    attempt_created_at: float | None = None
    attempt_updated_at: float | None = None
    total_utilization: dict[str, float] | None = None
    billed_utilization: dict[str, float] | None = None
    execution_duration_seconds: int | None = None
    queued_duration_ms: int | None = None
    lifecycle: JobRunLifecycle | None = None
    # A lifecycle run's snapshot once final: it changes no more, so listings of many ended runs stay cheap.
    _final: JobRunSnapshot | None = field(default=None, repr=False)

    @property
    def sort_key(self) -> tuple[float, str]:
        return (-self.created_at, self.job_run_id)

    def set_lifecycle(self, lifecycle: JobRunLifecycle | None) -> None:
        self.lifecycle = lifecycle
        self._final = None

    def snapshot(self, now: float) -> JobRunSnapshot:
        if self.lifecycle is not None:
            if self._final is not None:
                return self._final
            snap = self.lifecycle.at(now)
            if snap.state in FINAL_JOB_RUN_STATES:
                self._final = snap
            return snap
        return JobRunSnapshot(
            state=self.state,
            state_details=self.state_details or job_run_state_details_for(self.state),
            updated_at=self.updated_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attempt=self.attempt,
            attempt_created_at=(
                self.attempt_created_at if self.attempt_created_at is not None or self.attempt is None
                else self.created_at
            ),
            attempt_updated_at=(
                self.attempt_updated_at if self.attempt_updated_at is not None or self.attempt is None
                else self.updated_at
            ),
            total_utilization=self.total_utilization,
            billed_utilization=self.billed_utilization,
            execution_duration_seconds=self.execution_duration_seconds,
            queued_duration_ms=self.queued_duration_ms,
        )

    def attempt_snapshot(self, attempt: int, now: float) -> JobRunSnapshot | None:
        """Attempt ``attempt`` (1-based) at ``now``; None: no such attempt. A static run's earlier attempts
        are made up: FAILED, created evenly between the run's creation and its current attempt's."""
        if self.lifecycle is not None:
            return self.lifecycle.attempt_at(attempt, now)
        current = self.snapshot(now)
        latest = current.attempt or 1
        if not 1 <= attempt <= latest:
            return None
        if attempt == latest:
            return current
        last_created = current.attempt_created_at if current.attempt_created_at is not None else self.created_at

        def created(number: int) -> float:
            return self.created_at + (last_created - self.created_at) * (number - 1) / (latest - 1)

        return JobRunSnapshot(
            state="FAILED",
            state_details=f"Attempt {attempt} failed",
            updated_at=created(attempt + 1),
            started_at=None,
            ended_at=created(attempt + 1),
            attempt=attempt,
            attempt_created_at=created(attempt),
            attempt_updated_at=created(attempt + 1),
            total_utilization=None,
            billed_utilization=None,
            execution_duration_seconds=None,
            queued_duration_ms=current.queued_duration_ms,
        )

    def freeze(self, now: float) -> None:
        """Turn a lifecycle run into a static one, as it is at ``now``, so fields can be set."""
        if self.lifecycle is None:
            return
        snap = self.snapshot(now)
        self.set_lifecycle(None)
        self.state, self.state_details, self.updated_at = snap.state, snap.state_details, snap.updated_at
        self.started_at, self.ended_at = snap.started_at, snap.ended_at
        self.attempt, self.attempt_created_at = snap.attempt, snap.attempt_created_at
        self.attempt_updated_at = snap.attempt_updated_at
        self.total_utilization, self.billed_utilization = snap.total_utilization, snap.billed_utilization
        self.execution_duration_seconds = snap.execution_duration_seconds
        self.queued_duration_ms = snap.queued_duration_ms

    def view(self, now: float, snap: JobRunSnapshot | None = None) -> JobRunView:
        snap = snap if snap is not None else self.snapshot(now)
        return JobRunView(
            application_id=self.application_id,
            job_run_id=self.job_run_id,
            name=self.name,
            mode=self.mode,
            type=self.type,
            state=snap.state,
            state_details=snap.state_details,
            release_label=self.release_label,
            execution_role_arn=self.execution_role_arn,
            created_by=self.created_by,
            created_at=self.created_at,
            updated_at=max(snap.updated_at, self.created_at),
            started_at=snap.started_at,
            ended_at=snap.ended_at,
            attempt=snap.attempt,
            attempt_created_at=snap.attempt_created_at,
            attempt_updated_at=snap.attempt_updated_at,
            tags=dict(self.tags) if self.tags is not None else None,
            total_utilization=dict(snap.total_utilization) if snap.total_utilization else None,
            billed_utilization=dict(snap.billed_utilization) if snap.billed_utilization else None,
            execution_duration_seconds=snap.execution_duration_seconds,
            queued_duration_ms=snap.queued_duration_ms,
            execution_timeout_minutes=self.execution_timeout_minutes,
            retry_policy=dict(self.retry_policy) if self.retry_policy is not None else None,
            job_driver=self.job_driver,
            network_configuration=self.network_configuration,
            configuration_overrides=self.configuration_overrides,
        )


@dataclass
class _AppJobRuns:
    by_id: dict[str, JobRunRecord] = field(default_factory=dict)
    order: list[tuple[float, str]] | None = None  # sorted sort keys; None: rebuild on next listing
    # The scheduler's state: runs not admitted yet, first in first out; admitted runs
    # that may still hold a slot; when the last one was admitted (the queue never overtakes itself).
    waiting: list[tuple[float, int, str]] = field(default_factory=list)  # (enqueued at, arrival, id)
    holding: list[JobRunRecord] = field(default_factory=list)
    last_admitted_at: float = -math.inf

    def sorted_keys(self) -> list[tuple[float, str]]:
        if self.order is None:
            self.order = sorted(record.sort_key for record in self.by_id.values())
        return self.order


_UPDATABLE_JOB_RUN_FIELDS = frozenset(
    {
        "name",
        "mode",
        "type",
        "state_details",
        "updated_at",
        "started_at",
        "ended_at",
        "attempt",
        "attempt_created_at",
        "attempt_updated_at",
        "tags",
        "total_utilization",
        "billed_utilization",
        "execution_duration_seconds",
        "queued_duration_ms",
        "execution_timeout_minutes",
        "retry_policy",
        "job_driver",
        "network_configuration",
        "configuration_overrides",
        "created_by",
        "execution_role_arn",
        "release_label",
    }
)
# StartJobRun's runs: copies of these with the request's time (tests may replace them).
DEFAULT_JOB_RUN_TEMPLATES: dict[str, JobRunLifecycle] = {
    "BATCH": JobRunLifecycle(created_at=0.0),
    # A streaming run runs until cancelled; its attempts fail every ten minutes and are retried.
    "STREAMING": JobRunLifecycle(
        created_at=0.0, running_seconds=None, failed_attempts=None, failed_attempt_seconds=600.0,
        attempt_failure_details="The streaming query stopped: lost connection to the Kinesis stream",
        cancelling_seconds=30.0,
    ),
}


class Store:
    """One simulated account and region."""

    def __init__(
        self,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        clock: Clock = time.time,
        *,
        throttles: Iterable[Throttle] = (),
        monotonic: Clock = time.monotonic,
    ) -> None:
        """``clock`` is the wall clock of the data; ``monotonic`` the clock of rate limits (``throttles``)
        and of the request times kept for tests."""
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._apps: dict[str, Application] = {}
        self._sessions: dict[str, _AppSessions] = {}
        self._faults: list[Fault] = []
        self._calls: Counter[str] = Counter()
        self._call_times: dict[str, deque[float]] = {}
        self._throttles: dict[str, Throttle] = {}
        self._buckets: dict[str, TokenBucket] = {}
        # Requests answered with ThrottlingException by a rate limit, per operation (random faults apart).
        self.throttled: Counter[str] = Counter()
        # Requests by the access key ID that signed them, so tests can see which credentials were used.
        self.access_keys: Counter[str] = Counter()
        self._tickers: list[Ticker] = []
        self._client_tokens: dict[tuple[str, str], str] = {}
        self._ids = random.Random(f"{account_id}/{region}")
        self._job_runs: dict[str, _AppJobRuns] = {}
        self._queueing: set[str] = set()  # applications with job runs not admitted yet
        self._arrivals = 0  # orders the queue among runs enqueued at the same instant
        self._job_client_tokens: dict[tuple[str, str], str] = {}
        # Job runs draw their ids from their own generator, so adding them moves no session's id.
        self._job_ids = random.Random(f"{account_id}/{region}/job-runs")
        # StartJobRun's run for each mode: a copy of this lifecycle, created at the request's time.
        self.job_run_templates: dict[str, JobRunLifecycle] = dict(DEFAULT_JOB_RUN_TEMPLATES)
        for throttle in throttles:
            self.set_throttle(throttle.operation, throttle.rate, throttle.burst)

    # ----- time ---------------------------------------------------------------------------------

    def add_ticker(self, ticker: Ticker) -> None:
        """Run ``ticker(store, now)`` (under the lock) before every read or write: scenarios use it to
        start new sessions and forget old ones as the clock advances."""
        with self._lock:
            self._tickers.append(ticker)

    def now(self) -> float:
        """The current time, after the tickers have caught up with it."""
        with self._lock:
            now = self.clock()
            for ticker in self._tickers:
                ticker(self, now)
            if self._queueing:
                self._schedule(now)
            return now

    # ----- ARNs ---------------------------------------------------------------------------------

    def application_arn(self, application_id: str) -> str:
        return f"arn:aws:emr-serverless:{self.region}:{self.account_id}:/applications/{application_id}"

    def session_arn(self, application_id: str, session_id: str) -> str:
        return f"{self.application_arn(application_id)}/sessions/{session_id}"

    def job_run_arn(self, application_id: str, job_run_id: str) -> str:
        return f"{self.application_arn(application_id)}/jobruns/{job_run_id}"

    # ----- applications -------------------------------------------------------------------------

    def add_application(
        self,
        name: str | None = "analytics",
        state: str = "STARTED",
        application_id: str | None = None,
        type: str = "Spark",
        release_label: str = "emr-7.2.0",
        architecture: str | None = "X86_64",
        tags: Mapping[str, str] | None = None,
        created_at: float | None = None,
        state_details: str | None = None,
        maximum_capacity: Mapping[str, str] | None = None,
        initial_capacity: Mapping[str, Mapping[str, Any]] | None = None,
        auto_start: bool = True,
        auto_stop_minutes: int | None = 15,
        max_concurrent_runs: int | None = None,
        queue_timeout_minutes: int = 360,
        updated_at: float | None = None,
    ) -> str:
        """Add an application. ``max_concurrent_runs`` (None: no limit) and ``queue_timeout_minutes`` are its
        schedulerConfiguration: job runs beyond the limit wait QUEUED for a free slot, first in first out.
        ``updated_at`` (default: now): when it last changed, as one stopped long ago shows it."""
        with self._lock:
            now = self.clock()
            app_id = application_id or random_id(self._ids)
            if app_id in self._apps:
                raise ValueError(f"application {app_id} exists")
            created = now if created_at is None else created_at
            self._apps[app_id] = Application(
                application_id=app_id,
                name=name,
                state=state,
                type=type,
                release_label=release_label,
                architecture=architecture,
                tags=dict(tags) if tags is not None else None,
                created_at=created,
                updated_at=max(created, now if updated_at is None else updated_at),
                state_details=state_details,
                maximum_capacity=dict(maximum_capacity) if maximum_capacity is not None else None,
                initial_capacity=(
                    {worker: copy.deepcopy(dict(config)) for worker, config in initial_capacity.items()}
                    if initial_capacity is not None
                    else None
                ),
                auto_start=auto_start,
                auto_stop_minutes=auto_stop_minutes,
                max_concurrent_runs=max_concurrent_runs,
                queue_timeout_minutes=queue_timeout_minutes,
            )
            self._sessions[app_id] = _AppSessions()
            self._job_runs[app_id] = _AppJobRuns()
            return app_id

    def set_application_state(self, application_id: str, state: str) -> None:
        with self._lock:
            app = self._app(application_id)
            app.state = state
            app.updated_at = max(self.clock(), app.created_at)

    def configure_application(self, application_id: str, **capacity: Any) -> None:
        """UpdateApplication's effect on the capacity and scheduler members (``maximum_capacity``,
        ``initial_capacity``, ``auto_start``, ``auto_stop_minutes``, ``max_concurrent_runs``,
        ``queue_timeout_minutes``, as ``add_application`` takes them): they change, and so does ``updatedAt``.
        A new ``max_concurrent_runs`` applies to the job runs queued from now on."""
        unknown = set(capacity) - _CONFIGURABLE_APPLICATION_FIELDS
        if unknown:
            raise TypeError(f"cannot configure application fields {sorted(unknown)}")
        with self._lock:
            self.now()  # queued runs are admitted up to now under the old limit
            app = self._app(application_id)
            had_limit = app.max_concurrent_runs is not None
            for key, value in copy.deepcopy(capacity).items():
                setattr(app, key, value)
            app.updated_at = max(self.clock(), app.updated_at + 0.001)
            runs = self._job_runs[application_id]
            if not had_limit and app.max_concurrent_runs is not None:
                # Runs admitted while there was no limit hold slots too (the scheduler drops the ended ones).
                runs.holding = [
                    record for record in runs.by_id.values()
                    if record.lifecycle is not None and record.lifecycle.admitted_at is not None
                ]

    def remove_application(self, application_id: str) -> None:
        with self._lock:
            self._app(application_id)
            del self._apps[application_id]
            del self._sessions[application_id]
            del self._job_runs[application_id]
            self._queueing.discard(application_id)

    def application_ids(self) -> list[str]:
        with self._lock:
            self.now()
            return list(self._apps)

    def applications(self) -> list[Application]:
        """Copies, newest first."""
        with self._lock:
            self.now()
            apps = sorted(self._apps.values(), key=lambda app: (-app.created_at, app.application_id))
            return [dataclasses.replace(app, tags=dict(app.tags) if app.tags else app.tags) for app in apps]

    def application(self, application_id: str) -> Application | None:
        with self._lock:
            self.now()
            app = self._apps.get(application_id)
            if app is None:
                return None
            return dataclasses.replace(app, tags=dict(app.tags) if app.tags else app.tags)

    # ----- sessions -----------------------------------------------------------------------------

    def add_session(
        self,
        application_id: str,
        name: str | None = None,
        state: str = "IDLE",
        session_id: str | None = None,
        created_at: float | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        idle_since: float | None = None,
        idle_timeout_minutes: int | None = 60,
        tags: Mapping[str, str] | None = None,
        total_utilization: Mapping[str, float] | None = None,
        billed_utilization: Mapping[str, float] | None = None,
        execution_duration_seconds: int | None = None,
        created_by: str | None = None,
        execution_role_arn: str | None = None,
        release_label: str | None = None,
        *,
        state_details: str | None = None,
        updated_at: float | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> str:
        """Add a session. Timestamps left None default from the state and the clock: created now,
        started at creation unless SUBMITTED/STARTING/FAILED or a state the API does not know, ended
        now when TERMINATED/FAILED, idle since now when IDLE. With ``lifecycle`` the state and its
        timestamps follow the lifecycle instead."""
        with self._lock:
            now = self.clock()
            app = self._app(application_id)
            if lifecycle is not None:
                created_at = lifecycle.created_at
            created = now if created_at is None else created_at
            if started_at is None and state in _STARTED_STATES:
                started_at = created
            if ended_at is None and state in TERMINAL_STATES:
                ended_at = max(now, created)
            if idle_since is None and state == "IDLE":
                idle_since = max(now, created)
            stamps = [t for t in (created, started_at, ended_at, idle_since) if t is not None]
            record = SessionRecord(
                application_id=application_id,
                session_id=session_id or random_id(self._ids),
                name=name,
                created_at=created,
                created_by=created_by or f"arn:aws:iam::{self.account_id}:user/alice",
                execution_role_arn=execution_role_arn
                or f"arn:aws:iam::{self.account_id}:role/EMRServerlessSessionRole",
                release_label=release_label or app.release_label,
                idle_timeout_minutes=idle_timeout_minutes,
                tags=dict(tags) if tags is not None else None,
                state=state,
                state_details=state_details,
                updated_at=updated_at if updated_at is not None else max(stamps),
                started_at=started_at,
                ended_at=ended_at,
                idle_since=idle_since,
                total_utilization=dict(total_utilization) if total_utilization is not None else None,
                billed_utilization=dict(billed_utilization) if billed_utilization is not None else None,
                execution_duration_seconds=execution_duration_seconds,
                lifecycle=lifecycle,
            )
            sessions = self._sessions[application_id]
            if record.session_id in sessions.by_id:
                raise ValueError(f"session {record.session_id} exists in application {application_id}")
            sessions.by_id[record.session_id] = record
            if sessions.order is not None:
                bisect.insort(sessions.order, record.sort_key)
            return record.session_id

    def remove_session(self, application_id: str, session_id: str) -> None:
        with self._lock:
            sessions = self._sessions.get(application_id)
            if sessions is None or session_id not in sessions.by_id:
                raise KeyError(f"no session {session_id} in application {application_id}")
            record = sessions.by_id.pop(session_id)
            if sessions.order is not None:
                index = bisect.bisect_left(sessions.order, record.sort_key)
                del sessions.order[index]

    def set_session_state(
        self,
        application_id: str,
        session_id: str,
        state: str,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        idle_since: float | None = None,
        state_details: str | None = None,
    ) -> None:
        """Set the state (any string). The session stops following its lifecycle. ``ended_at`` defaults
        to now for TERMINATED/FAILED, ``idle_since`` to now for IDLE (and is cleared otherwise)."""
        with self._lock:
            now = self.clock()
            record = self._session(application_id, session_id)
            record.freeze(now)
            record.state = state
            record.state_details = state_details
            record.updated_at = max(now, record.created_at)
            if started_at is not None:
                record.started_at = started_at
            elif record.started_at is None and state in _STARTED_STATES - TERMINAL_STATES:
                record.started_at = record.updated_at
            if state in TERMINAL_STATES:
                record.ended_at = ended_at if ended_at is not None else record.ended_at or record.updated_at
            else:
                record.ended_at = ended_at
            if state == "IDLE":
                record.idle_since = idle_since if idle_since is not None else record.updated_at
            else:
                record.idle_since = None

    def update_session(self, application_id: str, session_id: str, **fields: object) -> None:
        """Set static fields by their ``add_session`` names (e.g. ``total_utilization=...``); the
        session stops following its lifecycle."""
        unknown = set(fields) - _UPDATABLE_SESSION_FIELDS
        if unknown:
            raise TypeError(f"cannot update session fields {sorted(unknown)}")
        with self._lock:
            record = self._session(application_id, session_id)
            record.freeze(self.clock())
            for key, value in fields.items():
                setattr(record, key, dict(value) if isinstance(value, Mapping) else value)

    def set_session_lifecycle(self, application_id: str, session_id: str, lifecycle: Lifecycle) -> None:
        with self._lock:
            self._session(application_id, session_id).lifecycle = lifecycle

    def terminate_session(self, application_id: str, session_id: str) -> None:
        """TerminateSession: a lifecycle session goes through TERMINATING; a static one is TERMINATED
        at once; an ended one is left as it is."""
        with self._lock:
            now = self.now()
            record = self._session(application_id, session_id)
            if record.lifecycle is not None:
                record.lifecycle = record.lifecycle.terminate(now)
            elif record.state not in TERMINAL_STATES:
                self.set_session_state(application_id, session_id, "TERMINATED", ended_at=now)

    def session_ids(self, application_id: str) -> list[str]:
        """Newest first."""
        with self._lock:
            self.now()
            return [key[1] for key in self._sessions_of(application_id).sorted_keys()]

    def session(self, application_id: str, session_id: str) -> SessionView | None:
        with self._lock:
            now = self.now()
            sessions = self._sessions.get(application_id)
            record = sessions.by_id.get(session_id) if sessions is not None else None
            return record.view(now) if record is not None else None

    def list_sessions(
        self,
        application_id: str,
        *,
        states: Iterable[str] = (),
        created_after: float | None = None,
        created_before: float | None = None,
        after_key: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[SessionView], bool]:
        """Up to ``limit`` sessions, newest first, strictly after ``after_key`` (a sort key: the
        pagination cursor), and whether more follow. Only the sessions looked at are evaluated, so a
        page of a large application is cheap."""
        wanted = frozenset(states)
        with self._lock:
            now = self.now()
            sessions = self._sessions_of(application_id)
            keys = sessions.sorted_keys()
            start = bisect.bisect_right(keys, after_key) if after_key is not None else 0
            if created_before is not None:
                # Newest first: skip the sessions created after the upper bound without looking at them.
                start = max(start, bisect.bisect_left(keys, (-created_before, "")))
            page: list[SessionView] = []
            for key in keys[start:]:
                created = -key[0]
                if created_after is not None and created < created_after:
                    break  # everything further is older still
                view = sessions.by_id[key[1]].view(now)
                if wanted and view.state not in wanted:
                    continue
                if len(page) == limit:
                    return page, True
                page.append(view)
            return page, False

    def start_session(
        self,
        application_id: str,
        *,
        client_token: str,
        execution_role_arn: str,
        name: str | None,
        tags: Mapping[str, str] | None,
        idle_timeout_minutes: int | None,
    ) -> str:
        """StartSession: a new session on a lifecycle that runs until terminated; idempotent by
        client token, as AWS is."""
        with self._lock:
            now = self.now()
            existing = self._client_tokens.get((application_id, client_token))
            if existing is not None and existing in self._sessions_of(application_id).by_id:
                return existing
            lifecycle = Lifecycle(
                created_at=now,
                starting_at=now + 5,
                started_at=now + 30,
                first_busy_at=now + 45,
                busy_seconds=60,
                idle_seconds=120,
            )
            session_id = self.add_session(
                application_id,
                name=name,
                idle_timeout_minutes=idle_timeout_minutes,
                tags=tags,
                execution_role_arn=execution_role_arn,
                lifecycle=lifecycle,
            )
            self._client_tokens[(application_id, client_token)] = session_id
            return session_id

    # ----- job runs -----------------------------------------------------------------------------

    def add_job_run(
        self,
        application_id: str,
        name: str | None = None,
        state: str = "RUNNING",
        job_run_id: str | None = None,
        created_at: float | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        tags: Mapping[str, str] | None = None,
        total_utilization: Mapping[str, float] | None = None,
        billed_utilization: Mapping[str, float] | None = None,
        execution_duration_seconds: int | None = None,
        created_by: str | None = None,
        execution_role_arn: str | None = None,
        release_label: str | None = None,
        *,
        mode: str | None = "BATCH",
        type: str | None = None,
        state_details: str | None = None,
        updated_at: float | None = None,
        attempt: int | None = 1,
        attempt_created_at: float | None = None,
        attempt_updated_at: float | None = None,
        queued_duration_ms: int | None = None,
        execution_timeout_minutes: int | None = None,
        retry_policy: Mapping[str, int] | None = None,
        job_driver: Mapping[str, Any] | None = None,
        network_configuration: Mapping[str, Any] | None = None,
        configuration_overrides: Mapping[str, Any] | None = None,
        lifecycle: JobRunLifecycle | None = None,
    ) -> str:
        """Add a job run. Static fields left None default from the state and the clock: created now,
        started at creation when RUNNING, SUCCESS or CANCELLING, ended now when final; ``type`` is the
        application's, the execution timeout 720 minutes (0 for STREAMING), the job driver a spark-submit
        of ``s3://.../<name>.py``. With ``lifecycle`` the state, attempts, timestamps and utilization follow
        it instead; one without ``admitted_at`` waits for a slot of the application (``max_concurrent_runs``)."""
        with self._lock:
            now = self.clock()
            app = self._app(application_id)
            if lifecycle is not None:
                created_at = lifecycle.created_at
            created = now if created_at is None else created_at
            if started_at is None and state in ("RUNNING", "SUCCESS", "CANCELLING"):
                started_at = created
            if ended_at is None and state in FINAL_JOB_RUN_STATES:
                ended_at = max(now, created)
            stamps = [t for t in (created, started_at, ended_at) if t is not None]
            run_id = job_run_id or random_id(self._job_ids)
            record = JobRunRecord(
                application_id=application_id,
                job_run_id=run_id,
                name=name,
                mode=mode,
                type=type if type is not None else app.type,
                created_at=created,
                created_by=created_by or f"arn:aws:iam::{self.account_id}:user/alice",
                execution_role_arn=execution_role_arn or f"arn:aws:iam::{self.account_id}:role/EMRServerlessJobRole",
                release_label=release_label or app.release_label,
                tags=dict(tags) if tags is not None else None,
                execution_timeout_minutes=(
                    execution_timeout_minutes if execution_timeout_minutes is not None
                    else 0 if mode == "STREAMING" else 720
                ),
                retry_policy=dict(retry_policy) if retry_policy is not None else None,
                job_driver=(
                    copy.deepcopy(dict(job_driver)) if job_driver is not None
                    else _default_job_driver(app.type, name or run_id)
                ),
                network_configuration=copy.deepcopy(dict(network_configuration)) if network_configuration else None,
                configuration_overrides=(
                    copy.deepcopy(dict(configuration_overrides)) if configuration_overrides else None
                ),
                state=state,
                state_details=state_details,
                updated_at=updated_at if updated_at is not None else max(stamps),
                started_at=started_at,
                ended_at=ended_at,
                attempt=attempt,
                attempt_created_at=attempt_created_at,
                attempt_updated_at=attempt_updated_at,
                total_utilization=dict(total_utilization) if total_utilization is not None else None,
                billed_utilization=dict(billed_utilization) if billed_utilization is not None else None,
                execution_duration_seconds=execution_duration_seconds,
                queued_duration_ms=queued_duration_ms if queued_duration_ms is not None or state == "SUBMITTED" else 0,
            )
            runs = self._job_runs[application_id]
            if run_id in runs.by_id:
                raise ValueError(f"job run {run_id} exists in application {application_id}")
            runs.by_id[run_id] = record
            if runs.order is not None:
                bisect.insort(runs.order, record.sort_key)
            if lifecycle is not None:
                self._follow(app, runs, record, lifecycle)
            return run_id

    def _follow(self, app: Application, runs: _AppJobRuns, record: JobRunRecord, lifecycle: JobRunLifecycle) -> None:
        """Put a run on ``lifecycle``: admitted as it says, at once without a limit, or queued for a slot."""
        if lifecycle.admitted_at is None and app.max_concurrent_runs is None:
            lifecycle = dataclasses.replace(lifecycle, admitted_at=lifecycle.enqueued_at)
        record.set_lifecycle(lifecycle)
        if lifecycle.admitted_at is not None:
            if app.max_concurrent_runs is not None:
                runs.holding.append(record)
            return
        if lifecycle.queue_timeout_at is None:
            record.set_lifecycle(dataclasses.replace(
                lifecycle, queue_timeout_at=lifecycle.enqueued_at + app.queue_timeout_minutes * 60
            ))
        self._arrivals += 1
        bisect.insort(runs.waiting, (lifecycle.enqueued_at, self._arrivals, record.job_run_id))
        self._queueing.add(app.application_id)

    def _schedule(self, now: float) -> None:
        """Admit queued job runs, in order, at the instants (up to ``now``) their application has a free slot."""
        for application_id in list(self._queueing):
            app, runs = self._apps.get(application_id), self._job_runs.get(application_id)
            if app is not None and runs is not None:
                self._admit_waiting(app, runs, now)
                if runs.waiting:
                    continue
            self._queueing.discard(application_id)

    def _admit_waiting(self, app: Application, runs: _AppJobRuns, now: float) -> None:
        while runs.waiting:
            enqueued_at, _, run_id = runs.waiting[0]
            record = runs.by_id.get(run_id)
            life = record.lifecycle if record is not None else None
            if record is None or life is None or life.admitted_at is not None:
                runs.waiting.pop(0)  # removed, made static, or admitted by hand
                continue
            at = max(enqueued_at, runs.last_admitted_at)
            if at > now:
                return
            limit = app.max_concurrent_runs
            if limit is not None:
                # Decisions are taken in time order, so a run that released its slot by `at` is done with.
                runs.holding = [
                    held for held in runs.holding
                    if held.lifecycle is not None and held.lifecycle.releases_slot_at() > at
                ]
                if len(runs.holding) >= limit:
                    releases = sorted(held.lifecycle.releases_slot_at() for held in runs.holding if held.lifecycle)
                    at = max(at, releases[len(releases) - limit])
            leaves = min((t for t in (life.queue_timeout_at, life.cancel_at) if t is not None), default=math.inf)
            if leaves < at:
                if leaves > now:
                    return
                runs.waiting.pop(0)  # timed out or cancelled in the queue: its lifecycle shows which
                continue
            if at > now:
                return
            record.set_lifecycle(dataclasses.replace(life, admitted_at=at))
            if limit is not None:
                runs.holding.append(record)
            runs.last_admitted_at = at
            runs.waiting.pop(0)

    def remove_job_run(self, application_id: str, job_run_id: str) -> None:
        with self._lock:
            runs = self._job_runs.get(application_id)
            if runs is None or job_run_id not in runs.by_id:
                raise KeyError(f"no job run {job_run_id} in application {application_id}")
            record = runs.by_id.pop(job_run_id)
            if runs.order is not None:
                del runs.order[bisect.bisect_left(runs.order, record.sort_key)]
            if record in runs.holding:
                runs.holding.remove(record)

    def set_job_run_state(
        self,
        application_id: str,
        job_run_id: str,
        state: str,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        state_details: str | None = None,
    ) -> None:
        """Set the state (any string). The run stops following its lifecycle. ``ended_at`` defaults to now
        for a final state (and is cleared otherwise); ``started_at`` to now on RUNNING if never set."""
        with self._lock:
            now = self.now()
            record = self._job_run(application_id, job_run_id)
            record.freeze(now)
            record.state = state
            record.state_details = state_details
            record.updated_at = max(now, record.created_at)
            record.attempt_updated_at = record.updated_at if record.attempt is not None else None
            if started_at is not None:
                record.started_at = started_at
            elif record.started_at is None and state == "RUNNING":
                record.started_at = record.updated_at
            if state in FINAL_JOB_RUN_STATES:
                record.ended_at = ended_at if ended_at is not None else record.ended_at or record.updated_at
            else:
                record.ended_at = ended_at

    def update_job_run(self, application_id: str, job_run_id: str, **fields: object) -> None:
        """Set static fields by their ``add_job_run`` names (e.g. ``attempt=3``); the run stops following
        its lifecycle."""
        unknown = set(fields) - _UPDATABLE_JOB_RUN_FIELDS
        if unknown:
            raise TypeError(f"cannot update job run fields {sorted(unknown)}")
        with self._lock:
            record = self._job_run(application_id, job_run_id)
            record.freeze(self.now())
            for key, value in fields.items():
                setattr(record, key, copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value)

    def set_job_run_lifecycle(self, application_id: str, job_run_id: str, lifecycle: JobRunLifecycle) -> None:
        with self._lock:
            self.now()
            record = self._job_run(application_id, job_run_id)
            self._follow(self._app(application_id), self._job_runs[application_id], record, lifecycle)

    def cancel_job_run(self, application_id: str, job_run_id: str, grace_seconds: float | None = None) -> bool:
        """CancelJobRun: a lifecycle run goes through CANCELLING (for ``grace_seconds`` when given), a static
        one is CANCELLED at once. False, and nothing changes, when the run is already final."""
        with self._lock:
            now = self.now()
            record = self._job_run(application_id, job_run_id)
            state = record.snapshot(now).state
            if state in FINAL_JOB_RUN_STATES:
                return False
            if state == "CANCELLING":
                return True
            if record.lifecycle is not None:
                life = record.lifecycle
                record.set_lifecycle(dataclasses.replace(
                    life, cancel_at=now,
                    cancelling_seconds=life.cancelling_seconds if grace_seconds is None else grace_seconds,
                ))
            else:
                self.set_job_run_state(application_id, job_run_id, "CANCELLED", ended_at=now)
            return True

    def start_job_run(
        self,
        application_id: str,
        *,
        client_token: str,
        execution_role_arn: str,
        job_driver: Mapping[str, Any],
        name: str | None = None,
        mode: str = "BATCH",
        tags: Mapping[str, str] | None = None,
        execution_timeout_minutes: int | None = None,
        retry_policy: Mapping[str, int] | None = None,
        configuration_overrides: Mapping[str, Any] | None = None,
    ) -> str:
        """StartJobRun: a new run on a copy of ``job_run_templates[mode]`` created now; idempotent by client
        token, as AWS is."""
        with self._lock:
            now = self.now()
            existing = self._job_client_tokens.get((application_id, client_token))
            if existing is not None and existing in self._job_runs_of(application_id).by_id:
                return existing
            run_id = self.add_job_run(
                application_id,
                name=name,
                mode=mode,
                tags=tags,
                execution_role_arn=execution_role_arn,
                execution_timeout_minutes=execution_timeout_minutes,
                retry_policy=retry_policy,
                job_driver=job_driver,
                configuration_overrides=configuration_overrides,
                lifecycle=dataclasses.replace(self.job_run_templates[mode], created_at=now),
            )
            self._job_client_tokens[(application_id, client_token)] = run_id
            return run_id

    def job_run_ids(self, application_id: str) -> list[str]:
        """Newest first."""
        with self._lock:
            self.now()
            return [key[1] for key in self._job_runs_of(application_id).sorted_keys()]

    def job_run(self, application_id: str, job_run_id: str, attempt: int | None = None) -> JobRunView | None:
        """The run as GetJobRun shows it (``attempt``: as that attempt was or is); None: no such run or attempt."""
        with self._lock:
            now = self.now()
            runs = self._job_runs.get(application_id)
            record = runs.by_id.get(job_run_id) if runs is not None else None
            if record is None:
                return None
            if attempt is None:
                return record.view(now)
            snap = record.attempt_snapshot(attempt, now)
            return record.view(now, snap) if snap is not None else None

    def job_run_attempts(self, application_id: str, job_run_id: str) -> list[JobRunView] | None:
        """Every attempt of the run so far, the first first; None: no such run."""
        with self._lock:
            now = self.now()
            runs = self._job_runs.get(application_id)
            record = runs.by_id.get(job_run_id) if runs is not None else None
            if record is None:
                return None
            latest = record.snapshot(now).attempt or 1
            return [
                record.view(now, snap)
                for snap in (record.attempt_snapshot(number, now) for number in range(1, latest + 1))
                if snap is not None
            ]

    def list_job_runs(
        self,
        application_id: str,
        *,
        states: Iterable[str] = (),
        created_after: float | None = None,
        created_before: float | None = None,
        mode: str | None = None,
        after: tuple[str, tuple[float, str]] | None = None,
        limit: int = 50,
    ) -> tuple[list[JobRunView], bool]:
        """Up to ``limit`` runs and whether more follow. Without ``states``, newest first; with them, grouped
        by state in the order given, newest first within a state, as AWS answers. ``after`` is the cursor of
        the last run of the page before: (its state, or "" without ``states``; its sort key)."""
        groups = list(dict.fromkeys(states)) or [""]
        with self._lock:
            now = self.now()
            runs = self._job_runs_of(application_id)
            keys = runs.sorted_keys()
            # Newest first: skip the runs created after the upper bound without looking at them.
            lowest = 0 if created_before is None else bisect.bisect_left(keys, (-created_before, ""))
            first_group, after_key = 0, None
            if after is not None:
                if after[0] not in groups:
                    raise ValueError(f"the cursor's state {after[0]!r} is not among the states asked for")
                first_group, after_key = groups.index(after[0]), after[1]
            page: list[JobRunView] = []
            for index in range(first_group, len(groups)):
                group = groups[index]
                start = lowest
                if index == first_group and after_key is not None:
                    start = max(start, bisect.bisect_right(keys, after_key))
                for key in keys[start:]:
                    if created_after is not None and -key[0] < created_after:
                        break  # everything further is older still
                    record = runs.by_id[key[1]]
                    if mode is not None and record.mode != mode:
                        continue
                    snap = record.snapshot(now)
                    if group and snap.state != group:
                        continue
                    if len(page) == limit:
                        return page, True
                    page.append(record.view(now, snap))
            return page, False

    def apply_aws_quotas(self) -> None:
        """Rate-limit the operations AWS documents a quota for, per account and region, as AWS does:
        ListJobRuns 1/s (burst 25), GetJobRun 10/s (burst 50), ListApplications and GetApplication
        10/s (burst 50) each (``throttle.AWS_QUOTAS``); ThrottlingException beyond them."""
        for throttle in AWS_QUOTAS:
            self.set_throttle(throttle.operation, throttle.rate, throttle.burst)

    # ----- faults and counters ------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_throttle(self, operation: str, rate: float, burst: float | None = None) -> None:
        """Rate-limit ``operation`` (``*``: each operation on its own) as AWS does: a token bucket of
        ``rate`` requests a second and ``burst`` at once (default: one second's worth), starting full; a
        request that finds it empty is answered ``ThrottlingException`` (400). Replaces an earlier limit."""
        throttle = Throttle(operation, rate, burst)
        TokenBucket(throttle.rate, throttle.capacity, self.monotonic)  # raises ValueError on bad numbers
        with self._lock:
            self._throttles[operation] = throttle
            # A bucket follows its limit: an operation's own, or the `*` one for those without their own.
            if operation == "*":
                self._buckets = {op: b for op, b in self._buckets.items() if op in self._throttles}
            else:
                self._buckets.pop(operation, None)

    def clear_throttles(self) -> None:
        with self._lock:
            self._throttles.clear()
            self._buckets.clear()

    def throttles(self) -> list[Throttle]:
        with self._lock:
            return list(self._throttles.values())

    def _admit(self, operation: str) -> bool:
        throttle = self._throttles.get(operation) or self._throttles.get("*")
        if throttle is None:
            return True
        bucket = self._buckets.get(operation)
        if bucket is None:
            bucket = self._buckets[operation] = TokenBucket(throttle.rate, throttle.capacity, self.monotonic)
        return bucket.take()

    def check_faults(self, operation: str, params: Mapping[str, str]) -> tuple[float, ApiError | None]:
        """(seconds to wait, error to answer with or None) for one call; the caller waits, not us.
        A rate limit comes first, as AWS's front end refuses a request before the service sees it."""
        delay_ms = 0.0
        error: ApiError | None = None
        with self._lock:
            if not self._admit(operation):
                self.throttled[operation] += 1
                return 0.0, ApiError("ThrottlingException")
            for fault in self._faults:
                if fault.matches(operation, params) and fault.hit():
                    delay_ms += fault.delay_ms
                    if error is None:
                        error = fault.error()
        return delay_ms / 1000, error

    @property
    def calls(self) -> Counter[str]:
        """Requests received per operation name, faulted ones included (the live counter)."""
        return self._calls

    def record_call(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1
            times = self._call_times.get(operation)
            if times is None:
                times = self._call_times[operation] = deque(maxlen=CALL_TIMES_KEPT)
            times.append(self.monotonic())

    def call_times(self, operation: str) -> list[float]:
        """When requests of ``operation`` arrived (``monotonic``, oldest first; throttled and faulted ones
        included; the newest CALL_TIMES_KEPT), so a test can measure the rate a client sends at."""
        with self._lock:
            return list(self._call_times.get(operation, ()))

    def record_access_key(self, access_key_id: str) -> None:
        with self._lock:
            self.access_keys[access_key_id] += 1

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._call_times.clear()
            self.throttled.clear()

    # ----- internals ----------------------------------------------------------------------------

    def _app(self, application_id: str) -> Application:
        app = self._apps.get(application_id)
        if app is None:
            raise KeyError(f"no application {application_id}")
        return app

    def _sessions_of(self, application_id: str) -> _AppSessions:
        sessions = self._sessions.get(application_id)
        if sessions is None:
            raise KeyError(f"no application {application_id}")
        return sessions

    def _job_runs_of(self, application_id: str) -> _AppJobRuns:
        runs = self._job_runs.get(application_id)
        if runs is None:
            raise KeyError(f"no application {application_id}")
        return runs

    def _job_run(self, application_id: str, job_run_id: str) -> JobRunRecord:
        record = self._job_runs_of(application_id).by_id.get(job_run_id)
        if record is None:
            raise KeyError(f"no job run {job_run_id} in application {application_id}")
        return record

    def _session(self, application_id: str, session_id: str) -> SessionRecord:
        record = self._sessions_of(application_id).by_id.get(session_id)
        if record is None:
            raise KeyError(f"no session {session_id} in application {application_id}")
        return record


_STARTED_STATES = frozenset({"STARTED", "IDLE", "BUSY", "TERMINATING", "TERMINATED"})


def _default_job_driver(engine: str, name: str) -> dict[str, Any]:
    if engine.lower() == "hive":
        return {"hive": {"query": f"s3://emr-serverless-jobs/queries/{name}.sql"}}
    return {"sparkSubmit": {"entryPoint": f"s3://emr-serverless-jobs/jobs/{name}.py"}}
