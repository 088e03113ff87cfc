"""Ready-made accounts for the simulator.

``demo``: a few applications whose sessions and job runs come and go as a pure function of the clock
and the seed, so a dashboard over it moves and a fake clock can drive it in tests: batch runs per
application (some FAILED, some CANCELLED, some retried), a burst of runs QUEUED behind
``maxConcurrentRuns`` every half hour, and a streaming run whose attempt goes up every several minutes.
``scale``: many sessions, a share of them active, and optionally job runs (running, and ended inside the
last half hour), built in well under a second, for benchmarks and load tests.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
import time
from dataclasses import dataclass, field

from emr_serverless_simulator.job_runs import JobRunLifecycle
from emr_serverless_simulator.lifecycle import Lifecycle
from emr_serverless_simulator.store import Clock, Store, random_id

SCENARIOS = ("demo", "scale")
SCALE_MAX_CONCURRENT_RUNS = 1_000_000  # scale's limited applications: a limit, but never reached

DEMO_RETENTION_SECONDS = 2 * 3600.0  # ended sessions are forgotten after this, so memory stays bounded
_DEMO_MAX_LIFETIME = 20 + 60 + 40 + 35 * 60 + 30  # the longest a demo session can live, in seconds
_DEMO_APPS = (
    # name, release label, architecture, seconds between session starts
    ("analytics", "emr-7.2.0", "X86_64", 360.0),
    ("ml-notebooks", "emr-7.1.0", "ARM64", 480.0),
    ("reporting", "emr-7.2.0", "X86_64", 420.0),
    ("data-science", "emr-7.0.0", "ARM64", 540.0),
    ("sandbox", "emr-6.15.0", "X86_64", 600.0),
)
# GetApplication's capacity members of the demo applications, by _DEMO_APPS index (the rest: none set,
# auto-start and auto-stop after 15 minutes as AWS's defaults). ml-notebooks' small maximum makes its
# sessions come near it, as the capacity alert and the dashboard's headroom need to show something.
_WORKER = {"cpu": "4 vCPU", "memory": "16 GB", "disk": "20 GB"}
_DEMO_CAPACITY: dict[int, dict[str, object]] = {
    0: {"maximum_capacity": {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"}},
    1: {
        "maximum_capacity": {"cpu": "48 vCPU", "memory": "192 GB", "disk": "1000 GB"},
        "initial_capacity": {
            "Driver": {"workerCount": 1, "workerConfiguration": {"cpu": "2 vCPU", "memory": "8 GB", "disk": "20 GB"}},
            "Executor": {"workerCount": 2, "workerConfiguration": _WORKER},
        },
        "auto_stop_minutes": 30,
    },
    3: {"maximum_capacity": {"cpu": "200 vCPU", "memory": "800 GB"}, "auto_start": False},
}
# schedulerConfiguration of the demo applications, by _DEMO_APPS index (the rest: none). ml-notebooks
# runs at most two job runs at once, so each burst of training runs queues.
_DEMO_SCHEDULER: dict[int, tuple[int, int]] = {0: (25, 360), 1: (2, 15), 3: (10, 60)}  # max runs, queue timeout
_OWNERS = ("alice", "bob", "chen", "dana", "erik", "fatima")
_TEAMS = ("data-eng", "ml-platform", "finance", "growth")


def build_scenario(
    name: str = "demo",
    *,
    applications: int = 3,
    sessions_per_application: int = 20,
    active_fraction: float = 0.1,
    seed: int = 1,
    clock: Clock = time.time,
    account_id: str = "123456789012",
    region: str = "us-east-1",
    running_job_runs_per_application: int = 0,
    ended_job_runs_per_application: int = 0,
) -> Store:
    """A store holding scenario ``name``. ``sessions_per_application``, ``active_fraction`` and the two
    ``*_job_runs_per_application`` (live runs, and runs ended inside the last half hour) shape ``scale``."""
    if min(applications, sessions_per_application, running_job_runs_per_application,
           ended_job_runs_per_application) < 0:
        raise ValueError("applications, sessions and job runs per application must not be negative")
    if not 0.0 <= active_fraction <= 1.0:
        raise ValueError(f"active_fraction must be within [0, 1], got {active_fraction}")
    store = Store(account_id=account_id, region=region, clock=clock)
    if name == "demo":
        _build_demo(store, applications, seed)
    elif name == "scale":
        _build_scale(store, applications, sessions_per_application, active_fraction, seed)
        _build_scale_job_runs(store, running_job_runs_per_application, ended_job_runs_per_application, seed)
    else:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    return store


# ----- demo ------------------------------------------------------------------------------------


@dataclass
class _DemoPlan:
    session_id: str
    name: str
    owner: str
    team: str
    lifecycle: Lifecycle
    idle_timeout_minutes: int | None
    tags: dict[str, str]


@dataclass
class _DemoApp:
    index: int
    application_id: str
    name: str
    interval: float
    next_slot: int | None = None
    pending: tuple[int, _DemoPlan] | None = None
    ends: list[tuple[float, str]] = field(default_factory=list)  # heap of (ended at, session id)


class _DemoSessions:
    """The ticker that starts the demo's sessions when their time comes and forgets old ones."""

    def __init__(self, seed: int, account_id: str, apps: list[_DemoApp]) -> None:
        self.seed = seed
        self.account_id = account_id
        self.apps = apps

    def __call__(self, store: Store, now: float) -> None:
        for app in self.apps:
            # KeyError: the application (or a session) was removed by hand; leave it be.
            with contextlib.suppress(KeyError):
                self._advance(store, app, now)

    def _advance(self, store: Store, app: _DemoApp, now: float) -> None:
        first = math.floor((now - _DEMO_MAX_LIFETIME - DEMO_RETENTION_SECONDS) / app.interval)
        if app.next_slot is None or app.next_slot < first:
            app.next_slot, app.pending = first, None  # first call, or the clock jumped far ahead
        while True:
            if app.pending is None or app.pending[0] != app.next_slot:
                app.pending = (app.next_slot, self._plan(app, app.next_slot))
            plan = app.pending[1]
            if plan.lifecycle.created_at > now:
                break
            app.next_slot += 1
            ended = plan.lifecycle.ended_at
            assert ended is not None  # demo sessions always end
            if ended + DEMO_RETENTION_SECONDS < now:
                continue
            store.add_session(
                app.application_id,
                name=plan.name,
                session_id=plan.session_id,
                idle_timeout_minutes=plan.idle_timeout_minutes,
                tags=plan.tags,
                created_by=(
                    f"arn:aws:iam::{self.account_id}:user/{plan.owner}"
                    if plan.owner != "fatima"
                    else f"arn:aws:sts::{self.account_id}:assumed-role/DataScientist/{plan.owner}"
                ),
                execution_role_arn=f"arn:aws:iam::{self.account_id}:role/emr-serverless-{plan.team}",
                lifecycle=plan.lifecycle,
            )
            heapq.heappush(app.ends, (ended, plan.session_id))
        while app.ends and app.ends[0][0] + DEMO_RETENTION_SECONDS < now:
            _, session_id = heapq.heappop(app.ends)
            with contextlib.suppress(KeyError):
                store.remove_session(app.application_id, session_id)

    def _plan(self, app: _DemoApp, slot: int) -> _DemoPlan:
        rng = random.Random(f"demo/{self.seed}/{app.index}/{slot}")
        session_id = random_id(rng)
        owner, team = rng.choice(_OWNERS), rng.choice(_TEAMS)
        created = slot * app.interval + rng.uniform(0, app.interval * 0.9)
        starting_at = created + rng.uniform(5, 20)
        started_at = starting_at + rng.uniform(20, 60)
        first_busy_at = started_at + rng.uniform(10, 40)
        end_at = first_busy_at + rng.uniform(5 * 60, 35 * 60)
        failed, details = False, "Session failed"
        roll = rng.random()
        if roll < 0.06:
            failed, details = True, "Session failed to start: not enough capacity in the subnets"
            end_at = starting_at + (started_at - starting_at) * rng.uniform(0.3, 0.9)
        elif roll < 0.12:
            failed, details = True, "Session failed: the Spark driver exited with code 137 (out of memory)"
            end_at = first_busy_at + (end_at - first_busy_at) * rng.uniform(0.2, 0.8)
        vcpus = rng.choice((4.0, 8.0, 16.0))
        tags = {
            "team": team,
            "owner": owner,
            "aws:cloudformation:stack-name": f"emr-{app.name}",
            "cost-center": f"cc-{1000 + app.index * 7}",
            "project.name": rng.choice(("churn model", "Q3 report", "ad-hoc")),
            # Awkward values a label escaper must get right: quotes, backslashes, non-ASCII.
            "notebook.path": f'C:\\Users\\{owner}\\"{app.name}" notebook.ipynb',
        }
        if rng.random() < 0.5:
            tags["description"] = rng.choice(("Größenanalyse: Übersicht", "日本語のノート ✓", "naïve café"))
        return _DemoPlan(
            session_id=session_id,
            name=f"{owner}-{app.name}-{slot % 10000}",
            owner=owner,
            team=team,
            lifecycle=Lifecycle(
                created_at=created,
                starting_at=starting_at,
                started_at=started_at,
                first_busy_at=first_busy_at,
                busy_seconds=rng.uniform(30, 180),
                idle_seconds=rng.uniform(20, 240),
                end_at=end_at,
                terminating_seconds=rng.uniform(10, 30),
                failed=failed,
                failure_details=details,
                vcpus_busy=vcpus,
                vcpus_idle=vcpus / 4,
                memory_gb_busy=vcpus * 4,
                memory_gb_idle=vcpus,
                storage_gb=20.0,
            ),
            idle_timeout_minutes=rng.choice((30, 60, 60, 120, 240, None)),
            tags=tags,
        )


def _build_demo(store: Store, applications: int, seed: int) -> None:
    now = store.clock()
    apps: list[_DemoApp] = []
    for index in range(applications):
        name, release, arch, interval = _DEMO_APPS[index % len(_DEMO_APPS)]
        if index >= len(_DEMO_APPS):
            name = f"{name}-{index // len(_DEMO_APPS) + 1}"
        stopped = applications >= 2 and index == applications - 1
        app_id = store.add_application(
            name=name,
            state="STOPPED" if stopped else "STARTED",
            application_id=random_id(random.Random(f"demo/{seed}/application/{index}")),
            release_label=release,
            architecture=arch,
            tags={"team": _TEAMS[index % len(_TEAMS)], "environment": "demo"},
            created_at=now - 30 * 86400 + index * 3600,
        )
        scheduler: dict[str, object] = {}
        if index % len(_DEMO_APPS) in _DEMO_SCHEDULER:
            max_runs, queue_timeout = _DEMO_SCHEDULER[index % len(_DEMO_APPS)]
            scheduler = {"max_concurrent_runs": max_runs, "queue_timeout_minutes": queue_timeout}
        # One call, as before job runs: the application's updatedAt is what it was.
        store.configure_application(app_id, **_DEMO_CAPACITY.get(index % len(_DEMO_APPS), {}), **scheduler)
        if stopped:
            # A stopped application keeps a little history: one session that ended a while ago.
            store.add_session(
                app_id,
                name=f"{name}-last",
                session_id=random_id(random.Random(f"demo/{seed}/stopped/{index}")),
                state="TERMINATED",
                created_at=now - 3 * 3600,
                started_at=now - 3 * 3600 + 45,
                ended_at=now - 2.5 * 3600,
                tags={"team": "finance", "owner": "bob"},
                total_utilization={"vCPUHour": 1.0, "memoryGBHour": 4.0, "storageGBHour": 10.0},
                billed_utilization={"vCPUHour": 1.0, "memoryGBHour": 4.0, "storageGBHour": 10.0},
                execution_duration_seconds=1755,
            )
            # And one job run that ended a while ago.
            store.add_job_run(
                app_id,
                name="finance_report.monthly_close",
                job_run_id=random_id(random.Random(f"demo-jobs/{seed}/stopped/{index}")),
                state="SUCCESS",
                created_at=now - 3 * 3600,
                started_at=now - 3 * 3600 + 50,
                ended_at=now - 2.6 * 3600,
                tags={"team": "finance", "job": "finance_report.monthly_close", "orchestrator": "airflow"},
                total_utilization={"vCPUHour": 5.2, "memoryGBHour": 20.8, "storageGBHour": 26.0},
                billed_utilization={"vCPUHour": 5.2, "memoryGBHour": 20.8, "storageGBHour": 26.0},
                execution_duration_seconds=1390,
                retry_policy={"maxAttempts": 2},
            )
        else:
            apps.append(_DemoApp(index=index, application_id=app_id, name=name, interval=interval))
    store.add_ticker(_DemoSessions(seed, store.account_id, apps))
    # Job runs have a ticker (and random generators) of their own: the sessions stay as they were.
    store.add_ticker(_DemoJobRuns(seed, store.account_id, [
        _DemoJobApp(app.index, app.application_id, app.name, _demo_job_streams(app.index % len(_DEMO_APPS)))
        for app in apps
    ]))
    store.now()  # materialise the sessions and job runs of the current time


# ----- demo job runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobStream:
    """Job runs of one kind on one application: ``runs`` of them each ``interval`` seconds (a slot)."""

    kind: str  # "batch": one run a slot; "burst": ``runs`` at once; "streaming": one run a day, replaced
    interval: float
    names: tuple[str, ...]
    runs: int = 1
    queue_wait: float = 0.0  # the longest a run can wait QUEUED (the queue timeout where there is a limit)

    @property
    def max_lifetime(self) -> float:
        """An upper bound of a run's life (submitted to final) in this stream."""
        if self.kind == "streaming":
            return 2 * self.interval + 3600
        return 2 * 3600 + self.queue_wait


def _demo_job_streams(kind_index: int) -> tuple[_JobStream, ...]:
    queue_wait = _DEMO_SCHEDULER[kind_index][1] * 60.0 if kind_index in _DEMO_SCHEDULER else 0.0
    streams: dict[int, tuple[_JobStream, ...]] = {
        0: (
            _JobStream("batch", 300.0, ("orders_etl.load_orders", "clickstream.sessionize", "inventory.snapshot",
                                        "orders_etl.nightly_rollup"), queue_wait=queue_wait),
            _JobStream("streaming", 86400.0, ("clickstream-ingest",), queue_wait=queue_wait),
        ),
        1: (_JobStream("burst", 1800.0, ("train_churn_model", "feature_backfill", "score_customers"), runs=5,
                       queue_wait=queue_wait),),
        2: (_JobStream("batch", 420.0, ("finance_report.daily", "kpi_dashboard.refresh"), queue_wait=queue_wait),),
        3: (_JobStream("batch", 540.0, ("experiment.ab_test_stats", "notebook_export"), queue_wait=queue_wait),),
        4: (_JobStream("batch", 900.0, ("adhoc_query",), queue_wait=queue_wait),),
    }
    return streams[kind_index]


_BATCH_FAILURES = (
    "Job failed, please check complete logs in configured logging destination. ExitCode: 1. "
    "Last few exceptions: Caused by: java.lang.OutOfMemoryError: Java heap space",
    "Job failed, please check complete logs in configured logging destination. ExitCode: 1. "
    "Last few exceptions: pyspark.errors.exceptions.captured.AnalysisException: "
    "[TABLE_OR_VIEW_NOT_FOUND] The table or view `sales`.`orders_staging` cannot be found.",
    "Job failed: S3 access denied writing to s3://demo-analytics-output/",
)
_ORCHESTRATORS = ("airflow", "airflow", "step-functions", "manual")


@dataclass
class _JobPlan:
    job_run_id: str
    name: str
    team: str
    orchestrator: str
    owner: str
    mode: str
    lifecycle: JobRunLifecycle
    execution_timeout_minutes: int
    retry_policy: dict[str, int] | None


@dataclass
class _StreamState:
    stream: _JobStream
    key: int
    next_slot: int | None = None
    pending: tuple[int, list[_JobPlan], int] | None = None  # (slot, its plans, how many added)
    ends: list[tuple[float, str]] = field(default_factory=list)  # heap of (latest end, job run id)


@dataclass
class _DemoJobApp:
    index: int
    application_id: str
    name: str
    streams: tuple[_JobStream, ...]
    states: list[_StreamState] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.states = [_StreamState(stream, key) for key, stream in enumerate(self.streams)]


class _DemoJobRuns:
    """The ticker that submits the demo's job runs when their time comes and forgets old ones. Each slot's
    runs come from a generator of their own (seed, application, stream, slot), so a store that jumps to
    an instant shows the same runs, in the same states, as one that walked there."""

    def __init__(self, seed: int, account_id: str, apps: list[_DemoJobApp]) -> None:
        self.seed = seed
        self.account_id = account_id
        self.apps = apps

    def __call__(self, store: Store, now: float) -> None:
        for app in self.apps:
            for state in app.states:
                # KeyError: the application (or a run) was removed by hand; leave it be.
                with contextlib.suppress(KeyError):
                    self._advance(store, app, state, now)

    def _advance(self, store: Store, app: _DemoJobApp, state: _StreamState, now: float) -> None:
        stream = state.stream
        first = math.floor((now - stream.max_lifetime - DEMO_RETENTION_SECONDS) / stream.interval)
        if state.next_slot is None or state.next_slot < first:
            state.next_slot, state.pending = first, None  # first call, or the clock jumped far ahead
        while True:
            if state.pending is None or state.pending[0] != state.next_slot:
                state.pending = (state.next_slot, self._plans(app, state, state.next_slot), 0)
            slot, plans, added = state.pending
            while added < len(plans) and plans[added].lifecycle.created_at <= now:
                self._submit(store, app, state, plans[added], now)
                added += 1
            state.pending = (slot, plans, added)
            if added < len(plans):
                break
            state.next_slot += 1
        while state.ends and state.ends[0][0] + DEMO_RETENTION_SECONDS < now:
            _, job_run_id = heapq.heappop(state.ends)
            with contextlib.suppress(KeyError):
                store.remove_job_run(app.application_id, job_run_id)

    def _submit(self, store: Store, app: _DemoJobApp, state: _StreamState, plan: _JobPlan, now: float) -> None:
        latest_end = plan.lifecycle.latest_end(state.stream.queue_wait)
        if latest_end + DEMO_RETENTION_SECONDS < now:
            return  # long forgotten
        account = self.account_id
        created_by = {
            "airflow": f"arn:aws:sts::{account}:assumed-role/airflow-worker/airflow",
            "step-functions": f"arn:aws:sts::{account}:assumed-role/StepFunctions-{app.name}/execution",
        }.get(plan.orchestrator, f"arn:aws:iam::{account}:user/{plan.owner}")
        network = (
            {"subnetIds": ["subnet-0a1b2c3d4e5f60718"], "securityGroupIds": ["sg-0123456789abcdef0"]}
            if app.index % 2 == 0 else None
        )
        store.add_job_run(
            app.application_id,
            name=plan.name,
            job_run_id=plan.job_run_id,
            mode=plan.mode,
            tags={"team": plan.team, "job": plan.name, "orchestrator": plan.orchestrator, "environment": "demo"},
            created_by=created_by,
            execution_role_arn=f"arn:aws:iam::{account}:role/emr-serverless-jobs-{plan.team}",
            execution_timeout_minutes=plan.execution_timeout_minutes,
            retry_policy=plan.retry_policy,
            job_driver={"sparkSubmit": {
                "entryPoint": f"s3://demo-{app.name}-artifacts/jobs/{plan.name}.py",
                "entryPointArguments": ["--env", "demo"],
                "sparkSubmitParameters": f"--conf spark.executor.cores={int(plan.lifecycle.vcpus // 2) or 1}",
            }},
            configuration_overrides={
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": f"s3://demo-{app.name}-logs/"}}
            },
            network_configuration=network,
            lifecycle=plan.lifecycle,
        )
        heapq.heappush(state.ends, (latest_end, plan.job_run_id))

    def _plans(self, app: _DemoJobApp, state: _StreamState, slot: int) -> list[_JobPlan]:
        stream = state.stream
        rng = random.Random(f"demo-jobs/{self.seed}/{app.index}/{state.key}/{slot}")
        if stream.kind == "streaming":
            return [self._streaming_plan(app, state, slot, rng)]
        if stream.kind == "burst":
            at = slot * stream.interval + rng.uniform(0, 300)
            plans = []
            for _ in range(stream.runs):
                at += rng.uniform(3, 15)
                plans.append(self._batch_plan(stream, at, rng, running=(180, 360)))
            return plans
        created = slot * stream.interval + rng.uniform(0, stream.interval * 0.9)
        return [self._batch_plan(stream, created, rng, running=(120, 1200))]

    def _batch_plan(
        self, stream: _JobStream, created: float, rng: random.Random, running: tuple[float, float]
    ) -> _JobPlan:
        job_run_id = random_id(rng)
        name = rng.choice(stream.names)
        team, orchestrator, owner = rng.choice(_TEAMS), rng.choice(_ORCHESTRATORS), rng.choice(_OWNERS)
        running_seconds = rng.uniform(*running)
        timeout = 120
        if name.endswith("nightly_rollup"):
            # A job that runs close to its execution timeout, as the timeout alert needs to show.
            timeout, running_seconds = 30, rng.uniform(25.5, 28.5) * 60
        outcome, details = "SUCCESS", _BATCH_FAILURES[0]
        roll = rng.random()
        if roll < 0.12:
            outcome, details = "FAILED", rng.choice(_BATCH_FAILURES)
            running_seconds *= rng.uniform(0.2, 0.9)
        elif roll < 0.2:
            outcome = "CANCELLED"  # by its submitter, part of the way through
            running_seconds *= rng.uniform(0.1, 0.7)
        retry_policy: dict[str, int] | None = None
        failed_attempts = 0
        if orchestrator != "manual":
            retry_policy = {"maxAttempts": rng.choice((1, 2, 3))}
            if retry_policy["maxAttempts"] > 1 and rng.random() < 0.25:
                failed_attempts = 1  # the first attempt lost its executors; the retry carries on
        vcpus = rng.choice((4.0, 8.0, 16.0, 32.0))
        return _JobPlan(
            job_run_id=job_run_id,
            name=name,
            team=team,
            orchestrator=orchestrator,
            owner=owner,
            mode="BATCH",
            lifecycle=JobRunLifecycle(
                created_at=created,
                submitted_seconds=rng.uniform(2, 8),
                pending_seconds=rng.uniform(10, 40),
                scheduled_seconds=rng.uniform(5, 20),
                running_seconds=running_seconds,
                outcome=outcome,
                failure_details=details,
                failed_attempts=failed_attempts,
                failed_attempt_seconds=rng.uniform(60, 180),
                attempt_failure_details="ExecutorLostFailure: the executors were lost (spot capacity reclaimed)",
                cancelling_seconds=rng.uniform(5, 15),
                vcpus=vcpus,
                memory_gb=vcpus * 4,
                storage_gb=20.0 * max(1.0, vcpus / 8),
            ),
            execution_timeout_minutes=timeout,
            retry_policy=retry_policy,
        )

    def _streaming_plan(self, app: _DemoJobApp, state: _StreamState, slot: int, rng: random.Random) -> _JobPlan:
        stream = state.stream

        def created(slot_index: int) -> float:
            # Deployed within the first hours of its day; the next day's deployment replaces it.
            offset_rng = random.Random(f"demo-jobs/{self.seed}/{app.index}/{state.key}/{slot_index}/deployed")
            return slot_index * stream.interval + offset_rng.uniform(1800, 5400)

        return _JobPlan(
            job_run_id=random_id(rng),
            name=stream.names[0],
            team="data-eng",
            orchestrator="step-functions",
            owner="dana",
            mode="STREAMING",
            lifecycle=JobRunLifecycle(
                created_at=created(slot),
                submitted_seconds=rng.uniform(2, 5),
                pending_seconds=rng.uniform(15, 30),
                scheduled_seconds=rng.uniform(5, 15),
                running_seconds=None,
                failed_attempts=None,  # every attempt ends in a failure and is retried
                failed_attempt_seconds=rng.uniform(6 * 60, 10 * 60),
                attempt_failure_details="The streaming query stopped: Kinesis shard iterator expired",
                cancel_at=created(slot + 1) + 90,  # replaced by the next deployment
                cancelling_seconds=30.0,
                vcpus=8.0,
                memory_gb=32.0,
                storage_gb=40.0,
            ),
            execution_timeout_minutes=0,
            retry_policy={"maxFailedAttemptsPerHour": 10},
        )


# ----- scale -----------------------------------------------------------------------------------


def _build_scale(
    store: Store, applications: int, sessions_per_application: int, active_fraction: float, seed: int
) -> None:
    now = store.clock()
    rng = random.Random(f"scale/{seed}")
    total = applications * sessions_per_application
    active = set(rng.sample(range(total), round(total * active_fraction)))
    account = store.account_id
    for app_index in range(applications):
        app_id = store.add_application(
            name=f"scale-app-{app_index:04d}",
            application_id=random_id(rng),
            created_at=now - 90 * 86400 + app_index,
            tags={"team": _TEAMS[app_index % len(_TEAMS)]},
            # Half the applications with a maximum capacity and a concurrent-run limit (never reached), as
            # AWS accounts mix both.
            maximum_capacity={"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"} if app_index % 2 else None,
            max_concurrent_runs=SCALE_MAX_CONCURRENT_RUNS if app_index % 2 else None,
        )
        for n in range(sessions_per_application):
            i = app_index * sessions_per_application + n
            owner = _OWNERS[i % len(_OWNERS)]
            session_id = random_id(rng)
            tags = {"team": _TEAMS[i % len(_TEAMS)], "owner": owner, "env": rng.choice(("prod", "dev"))}
            created_by = f"arn:aws:iam::{account}:user/{owner}"
            if i in active:
                created = now - rng.uniform(600, 3 * 3600)
                started = created + rng.uniform(30, 80)
                # A few are still STARTED (no statement run yet); the rest alternate BUSY and IDLE.
                first_busy = now + rng.uniform(60, 900) if rng.random() < 0.1 else started + rng.uniform(10, 60)
                vcpus = rng.choice((4.0, 8.0))
                lifecycle = Lifecycle(
                    created_at=created,
                    starting_at=created + 10,
                    started_at=started,
                    first_busy_at=first_busy,
                    busy_seconds=rng.uniform(30, 300),
                    idle_seconds=rng.uniform(30, 600),
                    vcpus_busy=vcpus,
                    vcpus_idle=vcpus / 4,
                    memory_gb_busy=vcpus * 4,
                    memory_gb_idle=vcpus,
                )
                store.add_session(
                    app_id,
                    name=f"session-{i}",
                    session_id=session_id,
                    tags=tags,
                    created_by=created_by,
                    lifecycle=lifecycle,
                )
            else:
                # Ended within 30 minutes after running up to 25: created inside the last hour, so an
                # exporter with the default one-hour window lists and exports every one of them.
                ended = now - rng.uniform(0, 1800)
                created = ended - rng.uniform(600, 1500)
                started = created + 40
                hours = (ended - started) / 3600
                vcpus = rng.choice((2.0, 4.0))
                used = {"vCPUHour": vcpus * hours, "memoryGBHour": vcpus * 4 * hours, "storageGBHour": 20 * hours}
                store.add_session(
                    app_id,
                    name=f"session-{i}",
                    session_id=session_id,
                    tags=tags,
                    created_by=created_by,
                    state="TERMINATED",
                    created_at=created,
                    started_at=started,
                    ended_at=ended,
                    total_utilization={k: round(v, 6) for k, v in used.items()},
                    billed_utilization={k: round(max(v, v / hours / 60), 6) for k, v in used.items()},
                    execution_duration_seconds=int(ended - started),
                )


def _build_scale_job_runs(store: Store, running: int, ended: int, seed: int) -> None:
    """``running`` live job runs and ``ended`` runs ended inside the last half hour, per application. Live
    runs follow lifecycles long enough to stay live through a benchmark: most RUNNING, some just submitted
    (SUBMITTED, PENDING, SCHEDULED), a tenth STREAMING with attempts that fail every few hours. Ended runs
    are static: SUCCESS, some FAILED or CANCELLED."""
    if not running and not ended:
        return
    now = store.clock()
    rng = random.Random(f"scale-jobs/{seed}")  # a generator of their own: sessions stay as they were
    account = store.account_id
    for app_index, app_id in enumerate(store.application_ids()):
        for n in range(running + ended):
            name = f"etl_{(app_index * 7 + n) % 20:02d}"
            team = _TEAMS[n % len(_TEAMS)]
            job_run_id = random_id(rng)
            tags = {"team": team, "job": name}
            created_by = f"arn:aws:sts::{account}:assumed-role/airflow-worker/airflow"
            role = f"arn:aws:iam::{account}:role/emr-serverless-jobs-{team}"
            vcpus = rng.choice((4.0, 8.0, 16.0))
            if n < running:
                streaming = rng.random() < 0.1
                if streaming:
                    created = now - rng.uniform(3600, 3 * 86400)
                else:
                    # A few just submitted; the rest running for up to two hours, with hours still to go.
                    created = now - (rng.uniform(0, 50) if rng.random() < 0.15 else rng.uniform(60, 7200))
                lifecycle = JobRunLifecycle(
                    created_at=created,
                    pending_seconds=rng.uniform(10, 40),
                    scheduled_seconds=rng.uniform(5, 20),
                    running_seconds=None if streaming else (now - created) + rng.uniform(2 * 3600, 10 * 3600),
                    failed_attempts=None if streaming else 0,
                    failed_attempt_seconds=rng.uniform(3600, 6 * 3600),
                    vcpus=vcpus,
                    memory_gb=vcpus * 4,
                )
                store.add_job_run(
                    app_id, name=name, job_run_id=job_run_id, tags=tags, created_by=created_by,
                    execution_role_arn=role, mode="STREAMING" if streaming else "BATCH",
                    retry_policy={"maxFailedAttemptsPerHour": 5} if streaming else {"maxAttempts": 2},
                    lifecycle=lifecycle,
                )
                continue
            ended_at = now - rng.uniform(0, 1800)
            created = ended_at - rng.uniform(120, 1500)
            roll = rng.random()
            state = "SUCCESS" if roll < 0.85 else "FAILED" if roll < 0.95 else "CANCELLED"
            started = created + rng.uniform(20, 60)
            hours = (ended_at - started) / 3600
            used = {"vCPUHour": vcpus * hours, "memoryGBHour": vcpus * 4 * hours, "storageGBHour": 20 * hours}
            store.add_job_run(
                app_id, name=name, job_run_id=job_run_id, tags=tags, created_by=created_by, execution_role_arn=role,
                state=state,
                state_details=_BATCH_FAILURES[n % len(_BATCH_FAILURES)] if state == "FAILED" else None,
                created_at=created,
                started_at=started,
                ended_at=ended_at,
                updated_at=ended_at,
                attempt_updated_at=ended_at,
                total_utilization={k: round(v, 6) for k, v in used.items()},
                billed_utilization={k: round(max(v, v / hours / 60), 6) for k, v in used.items()},
                execution_duration_seconds=int(ended_at - started),
                queued_duration_ms=0,
                retry_policy={"maxAttempts": 2},
            )
