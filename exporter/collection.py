"""Discovery and collection: what the exporter knows about each target after one pass over the API.

Per target: ListApplications (filtered), then per application two bounded ListSessions calls, then
GetSession for every session worth exporting, at most ``aws.max_concurrency`` calls in flight.
This module knows nothing of Prometheus or HTTP: it produces ``TargetResult`` values.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from exporter.aws import NOT_FOUND, ApiError, EmrServerlessApi
from exporter.config import SESSION_STATES, TERMINAL_SESSION_STATES, DiscoveryConfig

if TYPE_CHECKING:
    from mypy_boto3_emr_serverless.type_defs import (
        ApplicationSummaryTypeDef,
        SessionSummaryTypeDef,
        SessionTypeDef,
    )

log = logging.getLogger(__name__)

# Known states that are not final; listed without a date bound because a session can stay active for days.
ACTIVE_SESSION_STATES = tuple(state for state in SESSION_STATES if state not in TERMINAL_SESSION_STATES)

Clock = Callable[[], float]

# Steady-state listings reach this far before the last one, for clock skew between us and AWS's
# createdAt and for sessions that became visible to ListSessions late.
LISTING_OVERLAP_SECONDS = 300.0

# How long past the deadline the runner waits for a target to hand in what it has.
DEADLINE_GRACE_SECONDS = 0.2


@dataclass(frozen=True)
class TargetIdentity:
    """The target labels (`T`) of every series of one target."""

    name: str
    region: str
    account_id: str


@dataclass
class TargetResult:
    identity: TargetIdentity
    applications: list[ApplicationSummaryTypeDef]
    sessions: list[SessionTypeDef]
    errors: list[ApiError]
    started_at: float
    finished_at: float
    last_success: float | None
    api_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    cache_hits: int = 0  # cumulative GetSession calls saved by remembering final sessions

    @property
    def up(self) -> bool:
        return not self.errors

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.started_at


class CollectionTimeout(ApiError):
    def __init__(self, seconds: float, *, still_running: bool = False) -> None:
        reason = "the previous collection is still running" if still_running else f"not finished within {seconds:.1f}s"
        super().__init__("Collection", "Timeout", reason)


@dataclass(frozen=True)
class Shard:
    """This replica's share of the applications, as kube-state-metrics' --shard / --total-shards."""

    index: int
    total: int

    def owns(self, application_id: str) -> bool:
        # crc32, not hash(): Python salts str hashes per process, and every replica must agree.
        return zlib.crc32(application_id.encode()) % self.total == self.index


def account_id_from_arn(arn: str) -> str:
    """``arn:aws:emr-serverless:us-east-1:123456789012:/applications/x`` -> ``123456789012``."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) > 4 else ""


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class TargetCollector:
    """Collects one target (account and region); keeps only what the next collection needs."""

    def __init__(
        self,
        api: EmrServerlessApi,
        *,
        region: str,
        name: str | None,
        discovery: DiscoveryConfig,
        account_id: str = "",
        max_concurrency: int,
        shard: Shard | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._api = api
        self._shard = shard
        self._region = region
        self._name = name
        self._discovery = discovery
        self._name_pattern = (
            re.compile(discovery.application_name_regex) if discovery.application_name_regex else None
        )
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="aws")
        self._account_id = account_id  # from role_arn until an application ARN says otherwise
        self._last_success: float | None = None
        self._last_result: TargetResult | None = None
        self._busy = threading.Lock()
        # Sessions exported last time in a non-final state, by id: fetched again without being listed,
        # so that one which ended is seen ending.
        self._active_last_time: dict[str, str] = {}
        # FAILED/TERMINATED sessions as GetSession last returned them, until they age out of discovery.
        self._final_sessions: dict[str, SessionTypeDef] = {}
        self._cache_hits = 0
        # Per application, when its last complete listing started; steady-state listings start there.
        self._listed_at: dict[str, float] = {}

    @property
    def identity(self) -> TargetIdentity:
        name = self._name or f"{self._account_id or 'unknown'}/{self._region}"
        return TargetIdentity(name=name, region=self._region, account_id=self._account_id)

    def collect(self, deadline: float) -> TargetResult:
        if not self._busy.acquire(blocking=False):
            # The previous collection overran its deadline and still runs: never two at once.
            return self.unfinished(CollectionTimeout(0, still_running=True))
        try:
            return self._collect(deadline)
        finally:
            self._busy.release()

    def _collect(self, deadline: float) -> TargetResult:
        started = self._clock()
        errors: list[ApiError] = []
        applications: list[ApplicationSummaryTypeDef] = []
        sessions: list[SessionTypeDef] = []
        try:
            applications = self._discover_applications()
            sessions = self._collect_sessions(applications, started, deadline, errors)
        except ApiError as err:
            errors.append(err)
        finished = self._clock()
        if not errors:
            self._last_success = finished
        else:
            self._log_errors(errors)
        self._last_result = self._result(applications, sessions, errors, started, finished)
        return self._last_result

    def unfinished(self, error: ApiError) -> TargetResult:
        """What is known when a collection did not finish in time: the last result, with up 0."""
        last = self._last_result
        now = self._clock()
        return self._result(last.applications if last else [], last.sessions if last else [], [error], now, now)

    def _result(
        self,
        applications: list[ApplicationSummaryTypeDef],
        sessions: list[SessionTypeDef],
        errors: list[ApiError],
        started: float,
        finished: float,
    ) -> TargetResult:
        return TargetResult(
            identity=self.identity,
            applications=applications,
            sessions=sessions,
            errors=errors,
            started_at=started,
            finished_at=finished,
            last_success=self._last_success,
            api_calls=self._api.calls.snapshot(),
            cache_hits=self._cache_hits,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- discovery ---------------------------------------------------------------------------------

    def _discover_applications(self) -> list[ApplicationSummaryTypeDef]:
        wanted_ids = set(self._discovery.application_ids)
        found = []
        for app in self._api.list_applications(self._discovery.application_states):
            self._account_id = account_id_from_arn(app["arn"]) or self._account_id
            if wanted_ids and app["id"] not in wanted_ids:
                continue
            if self._shard and not self._shard.owns(app["id"]):
                continue
            if self._name_pattern and not self._name_pattern.fullmatch(app.get("name", "")):
                continue
            found.append(app)
        return found

    def _list_sessions(self, application_id: str, now: float) -> list[SessionSummaryTypeDef]:
        """The sessions that memory does not already cover.

        The first time: active sessions of any age, plus sessions of any state (a state AWS adds later
        included) created inside the terminal-session window. After a complete collection, sessions
        created before it are remembered (active ones are fetched again, final ones served from memory),
        so one listing of what was created since then, with an overlap for clock skew, is enough.
        """
        listed_before = self._listed_at.get(application_id)
        try:
            if listed_before is None:
                max_age = self._discovery.terminated_session_max_age_seconds
                listed = [
                    *self._api.list_sessions(application_id, states=ACTIVE_SESSION_STATES),
                    *self._api.list_sessions(application_id, created_at_after=_utc(now - max_age)),
                ]
            else:
                since = _utc(listed_before - LISTING_OVERLAP_SECONDS)
                listed = list(self._api.list_sessions(application_id, created_at_after=since))
        except ApiError as err:
            if err.code == NOT_FOUND:  # the application was deleted after it was listed
                return []
            raise
        return listed

    # --- sessions ----------------------------------------------------------------------------------

    def _collect_sessions(
        self,
        applications: list[ApplicationSummaryTypeDef],
        now: float,
        deadline: float,
        errors: list[ApiError],
    ) -> list[SessionTypeDef]:
        max_age = self._discovery.terminated_session_max_age_seconds
        app_ids = {app["id"] for app in applications}
        sessions: list[SessionTypeDef] = []
        seen: set[str] = set()

        def aged_out(item: SessionTypeDef | SessionSummaryTypeDef) -> bool:
            """Final and ended before the window; a listing's summary has no endedAt, only updatedAt."""
            ended = _epoch(cast("SessionTypeDef", item).get("endedAt")) or _epoch(item["updatedAt"])
            return item["state"] in TERMINAL_SESSION_STATES and ended is not None and ended < now - max_age

        def keep(session: SessionTypeDef) -> None:
            if not aged_out(session):
                sessions.append(session)

        # Completions arrive on a queue: waiting on a set of ~1,000 futures at every wake-up would be O(n^2).
        done: queue.SimpleQueue[tuple[str, Future[Any]]] = queue.SimpleQueue()
        pending: set[Future[Any]] = set()

        def submit(kind: str, call: Callable[..., Any], *args: Any) -> None:
            future = self._pool.submit(call, *args)
            pending.add(future)
            future.add_done_callback(lambda finished: done.put((kind, finished)))

        def fetch(app_id: str, session_id: str) -> None:
            if session_id in seen:
                return
            seen.add(session_id)
            final = self._final_sessions.get(session_id)
            if final is not None:  # a FAILED/TERMINATED session never changes again
                self._cache_hits += 1
                keep(final)
            else:
                submit("get", self._api.get_session, app_id, session_id)

        for app in applications:
            submit("list", self._list_sessions, app["id"], now)
        # What memory already knows needs no listing: last time's active sessions are fetched again (so one
        # that ended is seen ending), final ones served until they age out. Gets start as soon as a
        # listing arrives, so lists and gets overlap.
        remembered = [*self._active_last_time.items()]
        remembered += [(sid, s["applicationId"]) for sid, s in self._final_sessions.items()]
        for session_id, app_id in remembered:
            if app_id in app_ids:
                fetch(app_id, session_id)

        while pending:
            try:
                kind, future = done.get(timeout=max(0.0, deadline - self._clock()))
            except queue.Empty:
                for future in pending:
                    future.cancel()
                errors.append(CollectionTimeout(deadline - now))
                break
            pending.discard(future)
            try:
                result = future.result()
            except ApiError as err:
                if not (kind == "get" and err.code == NOT_FOUND):  # vanished: dropped, counted
                    errors.append(err)
                continue
            if kind == "get":
                keep(result)
                continue
            for summary in result:
                if not aged_out(summary):
                    fetch(summary["applicationId"], summary["sessionId"])

        if errors and self._last_result:
            # Serve what is known: the last copy of every session listed now that was not fetched in time.
            exported = {s["sessionId"] for s in sessions}
            sessions += [
                s for s in self._last_result.sessions if s["sessionId"] in seen and s["sessionId"] not in exported
            ]
        self._remember(sessions, complete=not errors, app_ids=app_ids, aged_out=aged_out)
        if not errors:  # memory now covers everything created before `now` in these applications
            self._listed_at = {app_id: now for app_id in app_ids}
        return sessions

    def _remember(
        self,
        sessions: list[SessionTypeDef],
        *,
        complete: bool,
        app_ids: set[str],
        aged_out: Callable[[SessionTypeDef], bool],
    ) -> None:
        """Keep what the next collection needs, and nothing that is no longer discovered."""
        final = {s["sessionId"]: s for s in sessions if s["state"] in TERMINAL_SESSION_STATES}
        active = {s["sessionId"]: s["applicationId"] for s in sessions if s["state"] not in TERMINAL_SESSION_STATES}
        if not complete:
            # Sessions this collection did not reach are still there: keep them, but still drop what a
            # complete collection would (undiscovered applications, aged-out sessions), so memory stays
            # bounded even when every collection is incomplete.
            old_final = {
                sid: s for sid, s in self._final_sessions.items() if s["applicationId"] in app_ids and not aged_out(s)
            }
            old_active = {sid: app for sid, app in self._active_last_time.items() if app in app_ids}
            final = {**old_final, **final}
            active = {**old_active, **active}
        self._final_sessions = final
        self._active_last_time = active

    def _log_errors(self, errors: Iterable[ApiError]) -> None:
        errors = list(errors)
        by_code: dict[str, int] = {}
        for err in errors:
            key = f"{err.operation}:{err.code}"
            by_code[key] = by_code.get(key, 0) + 1
        log.warning(
            "collection of target incomplete",
            extra={
                "fields": {
                    "target": self.identity.name,
                    "failed_calls": len(errors),
                    "errors": ",".join(f"{key}={count}" for key, count in sorted(by_code.items())),
                    "first_error": str(errors[0]),
                }
            },
        )


class CollectionRunner:
    """Runs collections of all targets in parallel; concurrent callers share the one in flight."""

    def __init__(
        self,
        targets: list[TargetCollector],
        *,
        timeout_seconds: float,
        min_interval_seconds: float = 0.0,
        clock: Clock = time.time,
    ) -> None:
        self.targets = targets
        self._timeout = timeout_seconds
        self._min_interval = min_interval_seconds
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="target")
        self._cond = threading.Condition()
        self._in_flight = False
        self.latest: list[TargetResult] | None = None
        self.ready = threading.Event()

    def collect(self, timeout: float | None = None) -> list[TargetResult]:
        """One collection, bounded by the configured timeout and ``timeout`` (the scrape's)."""
        with self._cond:
            if self._in_flight:
                self._cond.wait_for(lambda: not self._in_flight)
                assert self.latest is not None
                return self.latest
            if self.latest and self._min_interval:
                last_end = max(result.finished_at for result in self.latest)
                if self._clock() - last_end < self._min_interval:
                    return self.latest
            self._in_flight = True
        results: list[TargetResult] | None = None
        try:
            results = self._collect_all(min(self._timeout, timeout or self._timeout))
            return results
        finally:
            with self._cond:
                self._in_flight = False
                if results is not None:
                    self.latest = results
                    self.ready.set()
                self._cond.notify_all()

    def _collect_all(self, timeout: float) -> list[TargetResult]:
        deadline = self._clock() + timeout
        futures = [self._pool.submit(target.collect, deadline) for target in self.targets]
        # A target stuck in a call past the deadline must not hold back the others' series.
        wait(futures, timeout=timeout + DEADLINE_GRACE_SECONDS)
        return [
            future.result() if future.done() else target.unfinished(CollectionTimeout(timeout))
            for target, future in zip(self.targets, futures, strict=True)
        ]

    def close(self) -> None:
        for target in self.targets:
            target.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
