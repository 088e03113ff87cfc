"""Discovery and collection: what the exporter knows about each target after one pass over the API.

Per target: ListApplications (filtered), then per application its ListSessions queries (and GetApplication
for applications new or changed since their last one), then GetSession for the sessions worth a call, in
memory's order (new active, due, new ended, changed, stalest), at most ``aws.max_concurrency`` calls in
flight, within the rate limits, and nothing past the deadline. What a pass could not refresh or list is served as last
known (``exporter.collect.inventory``). This module knows nothing of Prometheus or HTTP: it produces
``TargetResult`` values.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from exporter.aws.calls import (
    NOT_FOUND,
    THROTTLING_CODES,
    ApiError,
    Deadline,
    DeadlineReached,
    Deferred,
    EmrServerlessApi,
    account_id_from_arn,
)
from exporter.collect.discovery import ApplicationFilter, Listing, ListingWindows, Shard
from exporter.collect.inventory import Refresh, SessionMemory, is_final
from exporter.collect.workers import Expired, WorkerPool
from exporter.config.schema import DiscoveryConfig
from exporter.model.session import Application, ApplicationDetail, Session, SessionSummary

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# How long past the deadline the runner waits for a target to hand in what it has.
DEADLINE_GRACE_SECONDS = 0.5
# How often a waiting collection looks up to see whether the exporter is shutting down.
SHUTDOWN_POLL_SECONDS = 0.25
# Less urgent GetSessions wait for the last listing (``_refresh``), but no longer than this share of the
# time to the deadline: one slow or hanging ListSessions must not hold back every other application's.
HOLD_SHARE = 0.5
# Work order: listings first (they say what to fetch), then GetSessions by their Refresh priority.
LISTING_PRIORITY = (0.0,)
GET_PRIORITY = 1.0


@dataclass(frozen=True)
class TargetIdentity:
    """The target labels (`T`) of every series of one target."""

    name: str
    region: str
    account_id: str


@dataclass
class TargetResult:
    identity: TargetIdentity
    applications: list[Application]
    sessions: list[Session]
    errors: list[ApiError]
    started_at: float
    finished_at: float
    last_success: float | None
    api_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    cache_hits: int = 0  # cumulative GetSession calls saved by remembering final sessions
    invalid_objects: dict[str, int] = field(default_factory=dict)  # cumulative, by kind
    stale_sessions: int = 0  # active sessions served as last known: not refreshed in this collection
    oldest_data_age: float = 0.0  # seconds since the least recently refreshed active session was fetched
    # Per application id: GetApplication's answer (capacity, auto-start/stop); absent: none valid yet.
    application_details: dict[str, ApplicationDetail] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        return not self.errors

    @property
    def duration_seconds(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


class CollectionTimeout(ApiError):
    def __init__(self, seconds: float, *, still_running: bool = False) -> None:
        reason = "the previous collection is still running" if still_running else f"not finished within {seconds:.1f}s"
        super().__init__("Collection", "Timeout", reason)


# The calls of a collection, as the worker pool runs them. A listing's failure (or deadline) leaves the
# target's picture incomplete; a GetSession or GetApplication out of budget only waits for the next one.


@dataclass(frozen=True)
class ListApplications:
    states: tuple[str, ...]


@dataclass(frozen=True)
class ListSessions:
    listing: Listing


@dataclass(frozen=True)
class GetApplication:
    app: Application


@dataclass(frozen=True)
class GetSession:
    refresh: Refresh


Call = ListApplications | ListSessions | GetApplication | GetSession
LISTING_CALLS = (ListApplications, ListSessions)


@dataclass
class _Pass:
    """The bookkeeping of one collection of one target."""

    started: float
    deadline: Deadline
    done: queue.SimpleQueue[tuple[Call, Any, BaseException | None]] = field(default_factory=queue.SimpleQueue)
    pending: int = 0
    pending_listings: int = 0  # of ``pending``: ListApplications and ListSessions calls
    errors: list[ApiError] = field(default_factory=list)
    listings_left: dict[str, int] = field(default_factory=dict)  # per application
    listing_failed: set[str] = field(default_factory=set)
    listed: dict[str, list[SessionSummary]] = field(default_factory=dict)  # per application, so far
    asked: set[str] = field(default_factory=set)  # session ids given to GetSession
    held: list[Refresh] = field(default_factory=list)  # not urgent: submitted once every listing is in
    hold_until: float = 0.0  # on the monotonic clock: past it, nothing more is held
    refreshed: set[str] = field(default_factory=set)
    running: set[int] = field(default_factory=set)  # calls a worker has started (set ops are atomic)
    applications: list[Application] | None = None  # ListApplications' answer, if it came


def _deferred(error: BaseException) -> bool:
    """Out of budget, ours (rate limit, deadline) or AWS's (throttling after the retries)."""
    return isinstance(error, (Deferred, DeadlineReached, Expired)) or (
        isinstance(error, ApiError) and error.code in THROTTLING_CODES
    )


class TargetCollector:
    """Collects one target (account and region); keeps only what the next collection needs."""

    def __init__(
        self,
        api: EmrServerlessApi,
        *,
        region: str,
        name: str | None,
        discovery: DiscoveryConfig,
        shard: Shard | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._api = api
        self._filter = ApplicationFilter(discovery, shard)
        self._region = region
        self._name = name
        self._discovery = discovery
        self._clock = clock
        self._pool = WorkerPool(api.max_concurrency, "aws")
        self._account_id = api.account_id  # from role_arn until an application ARN says otherwise
        self._last_success: float | None = None
        self._last_result: TargetResult | None = None
        self._busy = threading.Lock()
        self._closing = threading.Event()
        self.memory = SessionMemory(discovery)
        self.windows = ListingWindows(discovery)
        self._cache_hits = 0

    @property
    def identity(self) -> TargetIdentity:
        name = self._name or f"{self._account_id or 'unknown'}/{self._region}"
        return TargetIdentity(name=name, region=self._region, account_id=self._account_id)

    def collect(self, deadline: Deadline) -> TargetResult:
        if not self._busy.acquire(blocking=False):
            # The previous collection still hands in its result: never two at once.
            return self.unfinished(CollectionTimeout(0, still_running=True))
        try:
            return self._collect(deadline)
        finally:
            self._busy.release()

    def unfinished(self, error: ApiError) -> TargetResult:
        """What is known when a collection did not finish in time: the last result, with up 0."""
        last = self._last_result
        now = self._clock()
        if last is None:
            return self._result([], [], [error], now, now)
        return TargetResult(**{**last.__dict__, "errors": [error], "started_at": now, "finished_at": now,
                               "api_calls": self._api.calls.snapshot(),
                               "invalid_objects": self._api.calls.invalid_snapshot()})

    def close(self) -> None:
        """Stop: a collection under way returns what it has within ``SHUTDOWN_POLL_SECONDS``."""
        self._closing.set()
        self._pool.close()

    # --- one pass ------------------------------------------------------------------------------------

    def _collect(self, deadline: Deadline) -> TargetResult:
        run = _Pass(started=self._clock(), deadline=deadline)
        run.hold_until = time.monotonic() + HOLD_SHARE * max(0.0, deadline.remaining())
        self.memory.begin_collection()
        applications = self._discover_applications(run)
        if run.deadline.passed or self._closing.is_set():
            applications_to_list: list[Application] = []  # no time left: serve what is known
        else:
            applications_to_list = applications
        for app in applications_to_list:
            listings = self.windows.listings(app.id, run.started)
            run.listings_left[app.id] = len(listings)
            for listing in listings:
                self._submit(run, ListSessions(listing), LISTING_PRIORITY)
        if applications_to_list:
            for app in self.memory.to_describe():  # new or changed applications only
                self._submit(run, GetApplication(app), LISTING_PRIORITY)
        # An application's new active and due GetSessions start as soon as its listings are in, while other
        # listings go on; the rest wait for the last listing, or for HOLD_SHARE of the time (``_refresh``).
        self._drain(run)

        now = self._clock()
        known = self.memory.sessions(now)
        active_stale = [k for k in known if not is_final(k.session.state) and k.session.session_id not in run.refreshed]
        self._cache_hits += sum(
            1 for k in known
            if is_final(k.session.state) and not k.final_from_listing and k.session.session_id not in run.refreshed
        )
        oldest = min((k.refreshed_at for k in known if not is_final(k.session.state)), default=now)
        finished = self._clock()
        if run.errors:
            self._log_errors(run.errors)
        else:
            self._last_success = finished
        self._last_result = self._result(
            applications, [k.session for k in known], run.errors, run.started, finished,
            stale=len(active_stale) + self.memory.unfetched, oldest_age=max(0.0, now - oldest),
            details={app: d for app, d in self.memory.details.items() if d is not None},
        )
        return self._last_result

    def _discover_applications(self, run: _Pass) -> list[Application]:
        """ListApplications, filtered; on failure the applications last discovered (up will be 0)."""
        self._submit(run, ListApplications(self._discovery.application_states), LISTING_PRIORITY)
        self._drain(run)
        if run.applications is None:
            return list(self.memory.applications.values())
        for app in run.applications:
            self._account_id = account_id_from_arn(app.arn) or self._account_id
        self.memory.discovered(app for app in run.applications if self._filter.wanted(app))
        self.windows.keep(self.memory.applications)
        return list(self.memory.applications.values())

    def _call(self, call: Call, deadline: Deadline) -> Any:
        """One call, as a worker runs it (bounded by the pass's deadline)."""
        api = self._api
        match call:
            case ListApplications(states):
                return api.list_applications(deadline, states)
            case ListSessions(listing):
                return api.list_sessions(
                    listing.application_id, deadline, states=listing.states, created_at_after=listing.created_after
                )
            case GetApplication(app):
                return api.get_application(app.id, deadline)
            case GetSession(refresh):
                return api.get_session(refresh.application_id, refresh.session_id, deadline)

    def _refresh(self, run: _Pass, refresh: Refresh) -> None:
        if refresh.session_id in run.asked:
            return
        run.asked.add(refresh.session_id)
        if not refresh.urgent and run.pending_listings and time.monotonic() < run.hold_until:
            # A worker reserves its rate-limit slot when it takes a job: the first applications listed
            # would commit the budget to their own less urgent sessions before the others' are planned.
            run.held.append(refresh)
            return
        self._submit_get(run, refresh)

    def _release_held(self, run: _Pass) -> None:
        for refresh in run.held:
            self._submit_get(run, refresh)
        run.held.clear()

    def _submit_get(self, run: _Pass, refresh: Refresh) -> None:
        self._submit(run, GetSession(refresh), (GET_PRIORITY, *refresh.priority))

    def _submit(self, run: _Pass, call: Call, priority: tuple[float, ...]) -> None:
        run.pending += 1
        if isinstance(call, LISTING_CALLS):
            run.pending_listings += 1

        def done(result: Any, error: BaseException | None) -> None:
            run.done.put((call, result, error))

        def started_call() -> Any:
            run.running.add(id(call))
            try:
                return self._call(call, run.deadline)
            finally:
                run.running.discard(id(call))

        self._pool.submit(priority, run.deadline, started_call, done)

    def _drain(self, run: _Pass) -> None:
        """Handle completions until nothing is pending or the deadline (or shutdown) comes."""
        while run.pending:
            if self._closing.is_set() or run.deadline.passed:
                self._give_up(run)
                return
            wait = min(SHUTDOWN_POLL_SECONDS, run.deadline.remaining())
            if run.held:
                if time.monotonic() >= run.hold_until:  # a listing is late: hold nothing longer
                    self._release_held(run)
                else:
                    wait = min(wait, run.hold_until - time.monotonic())
            try:
                call, result, error = run.done.get(timeout=max(0.0, wait))
            except queue.Empty:
                continue
            run.pending -= 1
            if isinstance(call, LISTING_CALLS):
                run.pending_listings -= 1
            self._handle(run, call, result, error)

    def _give_up(self, run: _Pass) -> None:
        """At the deadline: a listing not finished, or a call that started and did not finish, fails the
        collection; GetSessions not started (no worker or no rate-limit token in time) are deferred:
        served as last known, first in line next time. Nothing left runs later."""
        timed_out = any(isinstance(err, CollectionTimeout) for err in run.errors)
        if (run.pending_listings or run.running) and not timed_out:
            run.errors.append(CollectionTimeout(max(0.0, self._clock() - run.started)))
        # The pool drops queued jobs whose deadline passed; results of calls still running are ignored.
        run.pending = run.pending_listings = 0

    def _handle(self, run: _Pass, call: Call, result: Any, error: BaseException | None) -> None:
        not_found = isinstance(error, ApiError) and error.code == NOT_FOUND
        match call:
            case ListApplications():
                if error is None:
                    run.applications = result
                else:
                    self._failed(run, error)
            case ListSessions(listing):
                if error is None:
                    self._listed(run, listing, result)
                elif not_found:
                    self._listed(run, listing, [])  # the application was deleted after it was listed
                else:
                    run.listing_failed.add(listing.application_id)
                    self._failed(run, error)
                    self._listed(run, listing, [])
            case GetApplication(app):
                if error is None:
                    self.memory.described(app, result)
                elif not (not_found or _deferred(error)):
                    # Not: deleted since it was listed (the next listing drops it), or out of budget (the last
                    # answer is served and the application is asked again next collection).
                    self._failed(run, error)
            case GetSession(refresh):
                if error is None:
                    session: Session | None = result
                    if session is not None:  # None: AWS sent an invalid one, dropped; the last known stays
                        self.memory.refreshed(session, self._clock())
                        run.refreshed.add(session.session_id)
                elif not_found:
                    self.memory.vanished(refresh.session_id)  # ended and deleted between list and get: counted
                elif not _deferred(error):
                    # Not out of budget (ours or AWS's), where the last known copy is served and this session
                    # is first in line next time (throttling shows in the API counters, staleness in its gauges).
                    self._failed(run, error)

    def _listed(self, run: _Pass, listing: Listing, summaries: Iterable[SessionSummary]) -> None:
        """One listing is in; once all of the application's are, plan its GetSessions."""
        app_id = listing.application_id
        run.listed.setdefault(app_id, []).extend(summaries)
        run.listings_left[app_id] -= 1
        if run.listings_left[app_id] > 0:
            return
        if app_id in run.listing_failed:
            refreshes = self.memory.fallback(app_id)
        else:
            self.windows.listed(app_id, run.started)
            refreshes = self.memory.plan(app_id, run.listed.pop(app_id), self._clock())
        for refresh in refreshes:
            self._refresh(run, refresh)
        if not run.pending_listings:  # the last listing is in: every application is planned
            self._release_held(run)

    def _failed(self, run: _Pass, error: BaseException) -> None:
        if isinstance(error, ApiError):
            run.errors.append(error)
        elif isinstance(error, (Deferred, Expired)):
            run.errors.append(CollectionTimeout(max(0.0, self._clock() - run.started)))
        else:  # a bug, not bad data: say where, once per collection, and keep serving
            log.error("collection step failed", exc_info=error)
            run.errors.append(ApiError("Collection", "InternalError", f"{type(error).__name__}: {error}"))

    def _result(
        self,
        applications: list[Application],
        sessions: list[Session],
        errors: list[ApiError],
        started: float,
        finished: float,
        *,
        stale: int = 0,
        oldest_age: float = 0.0,
        details: dict[str, ApplicationDetail] | None = None,
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
            invalid_objects=self._api.calls.invalid_snapshot(),
            stale_sessions=stale,
            oldest_data_age=oldest_age,
            application_details=details or {},
        )

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
        self._closed = False
        self._last_start: float | None = None  # on ``clock``, when the last collection began
        self.latest: list[TargetResult] | None = None
        self.ready = threading.Event()

    def collect(self, timeout: float | None = None) -> list[TargetResult]:
        """One collection, bounded by the configured timeout and ``timeout`` (the scrape's). A caller that
        joins a collection already running waits at most its own timeout, then gets what is known."""
        limit = min(self._timeout, timeout or self._timeout)
        with self._cond:
            if self._in_flight or self._closed:
                self._cond.wait_for(lambda: not self._in_flight or self._closed, timeout=limit)
                return self.latest if self.latest is not None else self._known()
            # Start to start, so that one scrape per interval longer than min_interval still collects each
            # time however long the collection takes; a clock set back does not pin the last result.
            now = self._clock()
            if self.latest and self._last_start is not None and 0 <= now - self._last_start < self._min_interval:
                return self.latest
            self._in_flight = True
            self._last_start = now
        results: list[TargetResult] | None = None
        try:
            results = self._collect_all(limit)
            return results
        finally:
            with self._cond:
                self._in_flight = False
                if results is not None:
                    self.latest = results
                    self.ready.set()
                self._cond.notify_all()

    def _known(self) -> list[TargetResult]:
        """The last results with up 0, or empty ones before the first: for a caller that cannot wait."""
        return [target.unfinished(CollectionTimeout(0, still_running=True)) for target in self.targets]

    def _collect_all(self, timeout: float) -> list[TargetResult]:
        deadline = Deadline.after(timeout)
        futures = [self._pool.submit(target.collect, deadline) for target in self.targets]
        # A target stuck past the deadline must not hold back the others' series.
        wait(futures, timeout=timeout + DEADLINE_GRACE_SECONDS)
        return [
            future.result() if future.done() else target.unfinished(CollectionTimeout(timeout))
            for target, future in zip(self.targets, futures, strict=True)
        ]

    def close(self) -> None:
        """Shut down: collections under way and callers waiting for them return within a second."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for target in self.targets:
            target.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
