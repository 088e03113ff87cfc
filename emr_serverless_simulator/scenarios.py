"""Ready-made accounts for the simulator.

``demo``: a few applications whose sessions come and go as a pure function of the clock and the seed,
so a dashboard over it moves and a fake clock can drive it in tests. ``scale``: many sessions, a
share of them active, built in well under a second, for benchmarks and load tests.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
import time
from dataclasses import dataclass, field

from emr_serverless_simulator.lifecycle import Lifecycle
from emr_serverless_simulator.store import Clock, Store, random_id

SCENARIOS = ("demo", "scale")

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
) -> Store:
    if applications < 0 or sessions_per_application < 0:
        raise ValueError("applications and sessions_per_application must not be negative")
    if not 0.0 <= active_fraction <= 1.0:
        raise ValueError(f"active_fraction must be within [0, 1], got {active_fraction}")
    store = Store(account_id=account_id, region=region, clock=clock)
    if name == "demo":
        _build_demo(store, applications, seed)
    elif name == "scale":
        _build_scale(store, applications, sessions_per_application, active_fraction, seed)
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
        store.configure_application(app_id, **_DEMO_CAPACITY.get(index % len(_DEMO_APPS), {}))
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
        else:
            apps.append(_DemoApp(index=index, application_id=app_id, name=name, interval=interval))
    store.add_ticker(_DemoSessions(seed, store.account_id, apps))
    store.now()  # materialise the sessions of the current time


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
            # Half the applications with a maximum capacity, as AWS accounts mix both.
            maximum_capacity={"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"} if app_index % 2 else None,
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
