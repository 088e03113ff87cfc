"""One pass over one target: what the exporter knows about it afterwards.

Per target: ListApplications (filtered), then per application and per kind collected (sessions, job
runs) its listings (and GetApplication for applications new or changed since their last one), then the
detail calls for the objects worth one, in the inventory's order (new active, due, new ended, changed,
stalest), at most ``aws.max_concurrency`` calls in flight, within the rate limits, and nothing past the
deadline. What a pass could not refresh or list is served as last known (``exporter.collect.inventory``).

One rule for ``up``: a call AWS throttles, or that the client-side budget defers (a rate limit with no
token before the deadline, a queued call the deadline overtook), is no error: its objects are served as
last known and counted stale. Any other failure (access denied, 5xx after the retries, a malformed
answer, a call still running at the deadline) makes the target's ``up`` 0 for that collection. A
ListApplications that fails so makes the target back off: no call at all until the backoff ends.

This module knows nothing of Prometheus or HTTP: it produces ``TargetResult`` values.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.aws.calls import (
    CALL_ROOM_SECONDS,
    NOT_FOUND,
    ApiError,
    Deferred,
    EmrServerlessApi,
    ListingProgress,
    account_id_from_arn,
    deferral,
)
from exporter.collect.discovery import ApplicationFilter, Listing, ListingWindows, Shard
from exporter.collect.inventory import Applications, Inventory, Refresh
from exporter.collect.workers import Expired, WorkerPool
from exporter.common.deadline import Deadline
from exporter.config.schema import DiscoveryConfig
from exporter.model.kinds import KINDS, ObjectKind
from exporter.model.session import Application, ApplicationDetail

log = logging.getLogger(__name__)

Clock = Callable[[], float]
AnyKind = ObjectKind[Any, Any]
# How often a waiting collection looks up to see whether the exporter is shutting down.
SHUTDOWN_POLL_SECONDS = 0.25
# Less urgent detail calls wait for the last listing (``_refresh``), but no longer than this share of the
# time to the deadline: one slow or hanging listing must not hold back every other application's.
HOLD_SHARE = 0.5
# Work order: listings first (they say what to fetch), then detail calls by their Refresh priority.
LISTING_PRIORITY = (0.0,)
GET_PRIORITY = 1.0
# After a ListApplications that failed (not throttled), no call until this backoff ends: twice as long
# after each failure in a row, from the first to the cap, less up to a quarter of jitter (pods of one
# deployment that failed together do not retry together). A scrape meanwhile gets the last result, up 0.
FAILURE_BACKOFF_FIRST_SECONDS = 10.0
FAILURE_BACKOFF_CAP_SECONDS = 300.0
# Listings of a rate-limited operation (ListJobRuns) run this many at a time, in plan order: all at once,
# they would share the tokens out page by page and none would finish before the deadline (a first listing
# is several pages), every collection starting them all over again.
LIMITED_LISTINGS_IN_FLIGHT = 2


@dataclass(frozen=True)
class TargetIdentity:
    """The target labels (`T`) of every series of one target."""

    name: str
    region: str
    account_id: str


@dataclass(frozen=True)
class KindStats:
    """How fresh one kind's objects are after a collection."""

    cache_hits: int = 0  # cumulative detail calls saved by remembering final objects
    stale: int = 0  # active objects served as last known or listed and not fetched yet
    oldest_data_age: float = 0.0  # seconds since the least recently refreshed active object was fetched
    oldest_listing_age: float = 0.0  # seconds since the least recently listed application's last complete listing
    dropped: int = 0  # cumulative final objects not exported for their application's cap (never fetched)


@dataclass
class TargetResult:
    identity: TargetIdentity
    applications: list[Application]
    objects: dict[AnyKind, list[Any]]  # per kind collected, the objects to export (its detail struct)
    errors: list[ApiError]
    started_at: float
    finished_at: float
    last_success: float | None
    api_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    invalid_objects: dict[str, int] = field(default_factory=dict)  # cumulative, by kind
    stats: dict[AnyKind, KindStats] = field(default_factory=dict)  # per kind collected
    # Per kind, per application listed completely since the start: objects seen reaching each final state.
    ended: dict[AnyKind, dict[str, dict[str, int]]] = field(default_factory=dict)
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
# target's picture incomplete; a detail call or GetApplication out of budget only waits for the next one.


@dataclass(frozen=True)
class ListApplications:
    states: tuple[str, ...]


@dataclass(frozen=True)
class ListObjects:
    listing: Listing
    progress: ListingProgress  # where a try the budget cut short stopped: the next one resumes there
    index: int  # which of the application's listings of that kind


@dataclass(frozen=True)
class GetApplication:
    app: Application


@dataclass(frozen=True)
class GetObject:
    refresh: Refresh


Call = ListApplications | ListObjects | GetApplication | GetObject
# What one pass keeps per (kind, application) or (kind, object id): kinds share no ids, keys are kept apart.
KindKey = tuple[AnyKind, str]


@dataclass
class _AppListings:
    """An application's listings of one kind, from their first try until every one has its last page: a try
    the budget (ListJobRuns' rate limit, the deadline, throttling) cuts short resumes next collection from the
    page it reached, so that a first listing longer than one collection's budget still finishes."""

    started: float  # when the first try began: what was created before it is known once all are done
    listings: list[Listing]
    progress: list[ListingProgress]
    results: list[list[Any] | None]  # each listing's summaries, once it is done

    @classmethod
    def new(cls, listings: list[Listing], started: float) -> _AppListings:
        return cls(started, listings, [ListingProgress() for _ in listings], [None] * len(listings))


@dataclass
class _Pass:
    """The bookkeeping of one collection of one target."""

    started: float
    deadline: Deadline
    done: queue.SimpleQueue[tuple[Call, Any, BaseException | None]] = field(default_factory=queue.SimpleQueue)
    pending: int = 0
    # Of ``pending``: the listings less urgent detail calls wait for (``_holds``).
    pending_listings: int = 0
    errors: list[ApiError] = field(default_factory=list)
    listings_left: dict[KindKey, int] = field(default_factory=dict)  # per kind and application
    listing_failed: set[KindKey] = field(default_factory=set)
    asked: set[KindKey] = field(default_factory=set)  # objects given to a detail call
    held: list[Refresh] = field(default_factory=list)  # not urgent: submitted once every listing is in
    hold_until: float = 0.0  # on the monotonic clock: past it, nothing more is held
    refreshed: set[KindKey] = field(default_factory=set)
    running: set[int] = field(default_factory=set)  # calls a worker has started (set ops are atomic)
    applications: list[Application] | None = None  # ListApplications' answer, if it came
    waiting_listings: dict[AnyKind, list[ListObjects]] = field(default_factory=dict)  # rate-limited, in plan order
    discovery_failed: bool = False  # ListApplications failed for another reason than the budget


def _deferred(error: BaseException) -> bool:
    """Out of budget, ours (rate limit, deadline, no worker in time) or AWS's (throttling after the retries)."""
    return isinstance(error, Expired) or deferral(error)


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
        self.applications = Applications()
        # Per kind collected: what is known of its objects, and where each application's next listing starts.
        self.kinds: tuple[AnyKind, ...] = tuple(kind for kind in KINDS if discovery.collects(kind))
        self.inventories: dict[AnyKind, Inventory[Any, Any]] = {k: Inventory(k, discovery) for k in self.kinds}
        self.windows: dict[AnyKind, ListingWindows] = {k: ListingWindows(k, discovery) for k in self.kinds}
        self._cache_hits: dict[AnyKind, int] = dict.fromkeys(self.kinds, 0)
        # Per kind and application, listings under way across collections (``_AppListings``).
        self._app_listings: dict[KindKey, _AppListings] = {}
        self._failures = 0  # ListApplications failed (not throttled) this many collections in a row
        self._backoff_until = 0.0  # on the monotonic clock: no call before it
        self._random = random.Random()

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
        return self._last_known([error])

    def _last_known(self, errors: list[ApiError]) -> TargetResult:
        """The last result with these errors, at this instant (with no result yet, nothing known)."""
        last = self._last_result
        now = self._clock()
        if last is None:
            return self._result([], {}, errors, now, now)
        return TargetResult(**{**last.__dict__, "errors": errors, "started_at": now, "finished_at": now,
                               "api_calls": self._api.calls.snapshot(),
                               "invalid_objects": self._api.calls.invalid_snapshot()})

    def close(self) -> None:
        """Stop: a collection under way returns what it has within ``SHUTDOWN_POLL_SECONDS``."""
        self._closing.set()
        self._pool.close()

    # --- one pass ------------------------------------------------------------------------------------

    def _collect(self, deadline: Deadline) -> TargetResult:
        if time.monotonic() < self._backoff_until and self._last_result is not None:
            return self._last_known(self._last_result.errors)  # backing off: no call, up stays 0
        run = _Pass(started=self._clock(), deadline=deadline)
        run.hold_until = time.monotonic() + HOLD_SHARE * max(0.0, deadline.remaining())
        for inventory in self.inventories.values():
            inventory.begin_collection()
        applications = self._discover_applications(run)
        if run.deadline.passed or self._closing.is_set() or run.discovery_failed:
            applications_to_list: list[Application] = []  # serve what is known
        else:
            applications_to_list = applications
        for kind in self.kinds:
            planned = self._plan_listings(kind, applications_to_list, run)
            if self._api.rate_limited(kind.list_operation):
                planned, run.waiting_listings[kind] = planned[:LIMITED_LISTINGS_IN_FLIGHT], planned[
                    LIMITED_LISTINGS_IN_FLIGHT:]
            for call in planned:
                self._submit(run, call, LISTING_PRIORITY)
            # Not listed this time (quiet, or past the listing budget): what is known is refreshed all the same,
            # within the detail call's own budget, as after a failed listing.
            for app in applications_to_list:
                if (kind, app.id) not in run.listings_left:
                    for refresh in self.inventories[kind].fallback(app.id):
                        self._refresh(run, refresh)
        if applications_to_list:
            for app in self.applications.to_describe():  # new or changed applications only
                self._submit(run, GetApplication(app), LISTING_PRIORITY)
        # An application's new active detail calls start as soon as its listings are in, while other
        # listings go on; the rest wait for the last listing, or for HOLD_SHARE of the time (``_refresh``).
        self._drain(run)

        now = self._clock()
        objects: dict[AnyKind, list[Any]] = {}
        stats: dict[AnyKind, KindStats] = {}
        ended: dict[AnyKind, dict[str, dict[str, int]]] = {}
        for kind, inventory in self.inventories.items():
            known = inventory.objects(now)
            fetched = [k for k in known if not k.partial]  # active others: counted in ``inventory.unfetched``
            active = [k for k in fetched if not kind.is_final(k.obj.state)]
            self._cache_hits[kind] += sum(
                1 for k in fetched
                if kind.is_final(k.obj.state) and not k.final_from_listing and (kind, k.obj.id) not in run.refreshed
            )
            oldest = min((k.refreshed_at for k in active), default=now)
            stats[kind] = KindStats(
                cache_hits=self._cache_hits[kind],
                stale=sum((kind, k.obj.id) not in run.refreshed for k in active) + inventory.unfetched,
                oldest_data_age=max(0.0, now - oldest),
                oldest_listing_age=self.windows[kind].oldest_listing(
                    [app.id for app in self.applications.by_id.values() if not self.windows[kind].quiet(app, now)],
                    now),
                dropped=inventory.dropped,
            )
            self._log_capped(kind, inventory.newly_capped())
            objects[kind] = [k.obj for k in known]
            ended[kind] = {app: dict(counts) for app, counts in inventory.ended.items()}
        finished = self._clock()
        if run.errors:
            self._log_errors(run.errors)
        else:
            self._last_success = finished
        self._last_result = self._result(
            applications, objects, run.errors, run.started, finished, stats=stats, ended=ended,
            details={app: d for app, d in self.applications.details.items() if d is not None},
        )
        return self._last_result

    def _plan_listings(self, kind: AnyKind, applications: list[Application], run: _Pass) -> list[ListObjects]:
        """The listing calls of ``kind`` this collection makes, in order: not for the quiet applications, and
        only as many as the rate limit affords before the deadline (the others wait for a later collection:
        planned, not failed). First the active listing of every application never listed (a cold start
        exports what runs now within ceil(A / R) seconds, before any look-back's pages), then each
        application's listings, all or none (where the budget affords fewer than the first application's,
        as many of them as it affords), the least recently listed and the busiest first. With R listings
        a second and A applications, each is listed at least every ceil(2A / R) seconds and one collection."""
        windows = self.windows[kind]
        wanted = windows.order((app for app in applications if not windows.quiet(app, run.started)),
                               self.inventories[kind].active_by_application())
        budget = self._api.affordable(kind.list_operation, max(0.0, run.deadline.remaining() - CALL_ROOM_SECONDS))
        under_way: dict[str, _AppListings] = {}  # built for the applications looked at only (1,000 or more)

        def listings_of(application_id: str) -> _AppListings:
            if application_id not in under_way:
                under_way[application_id] = self._app_listings.get((kind, application_id)) or _AppListings.new(
                    windows.listings(application_id, run.started), run.started)
            return under_way[application_id]

        first = [(app.id, i) for app in wanted if windows.never_listed(app.id)
                 for i, listing in enumerate(listings_of(app.id).listings)
                 if listing.every_active and listings_of(app.id).results[i] is None]
        chosen = first[: int(min(budget, len(first)))]
        budget -= len(chosen)
        taken = set(chosen)
        for app in wanted:
            rest = [(app.id, i) for i, result in enumerate(listings_of(app.id).results)
                    if result is None and (app.id, i) not in taken]
            if len(rest) > budget:
                if not chosen:  # a budget below one application's listings: they resume over collections
                    chosen = rest[: int(budget)]
                break
            chosen += rest
            budget -= len(rest)
        calls = []
        for application_id, i in chosen:
            state = self._app_listings.setdefault((kind, application_id), under_way[application_id])
            run.listings_left[kind, application_id] = run.listings_left.get((kind, application_id), 0) + 1
            calls.append(ListObjects(state.listings[i], state.progress[i], i))
        return calls

    def _discover_applications(self, run: _Pass) -> list[Application]:
        """ListApplications, filtered; when it fails, the applications last discovered."""
        self._submit(run, ListApplications(self._discovery.application_states), LISTING_PRIORITY)
        self._drain(run)
        if run.discovery_failed:
            self._failures += 1
            backoff = min(FAILURE_BACKOFF_CAP_SECONDS, FAILURE_BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1))
            self._backoff_until = time.monotonic() + backoff * self._random.uniform(0.75, 1.0)
        elif run.applications is not None:
            self._failures = 0
        if run.applications is None:
            return list(self.applications.by_id.values())
        for app in run.applications:
            self._account_id = account_id_from_arn(app.arn) or self._account_id
        self.applications.discovered(app for app in run.applications if self._filter.wanted(app))
        self._app_listings = {key: state for key, state in self._app_listings.items()
                              if key[1] in self.applications.by_id}
        for kind in self.kinds:
            self.inventories[kind].keep_applications(self.applications.by_id)
            self.windows[kind].keep(self.applications.by_id, run.started)
        return list(self.applications.by_id.values())

    def _call(self, call: Call, deadline: Deadline) -> Any:
        """One call, as a worker runs it (bounded by the pass's deadline)."""
        api = self._api
        match call:
            case ListApplications(states):
                return api.list_applications(deadline, states)
            case ListObjects(listing, progress):
                return api.list_objects(listing.kind, listing.application_id, deadline, states=listing.states,
                                        created_at_after=listing.created_after, extra=listing.extra,
                                        progress=progress)
            case GetApplication(app):
                return api.get_application(app.id, deadline)
            case GetObject(refresh):
                return api.get_object(refresh.kind, refresh.application_id, refresh.object_id, deadline)

    def _refresh(self, run: _Pass, refresh: Refresh) -> None:
        key = (refresh.kind, refresh.object_id)
        if key in run.asked:
            return
        run.asked.add(key)
        if not refresh.urgent and run.pending_listings and time.monotonic() < run.hold_until:
            # A worker reserves its rate-limit slot when it takes a job: the first applications listed
            # would commit the budget to their own less urgent sessions before the others' are planned.
            run.held.append(refresh)
            return
        self._submit_get(run, refresh)

    def _holds(self, call: Call) -> bool:
        """A listing the less urgent detail calls wait for. Not one under a rate limit (ListJobRuns): paced
        through the whole collection by design, it would idle half the detail calls' budget every time (at
        XL, GetJobRun at 3 of its 5 a second)."""
        if isinstance(call, ListObjects):
            return not self._api.rate_limited(call.listing.kind.list_operation)
        return isinstance(call, ListApplications)

    def _release_held(self, run: _Pass) -> None:
        # Most urgent first: an idle worker takes each job as it is submitted, before the queue can order it.
        for refresh in sorted(run.held, key=lambda r: r.priority):
            self._submit_get(run, refresh)
        run.held.clear()

    def _submit_get(self, run: _Pass, refresh: Refresh) -> None:
        self._submit(run, GetObject(refresh), (GET_PRIORITY, *refresh.priority))

    def _submit(self, run: _Pass, call: Call, priority: tuple[float, ...]) -> None:
        run.pending += 1
        if self._holds(call):
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
            if self._holds(call):
                run.pending_listings -= 1
            self._handle(run, call, result, error)

    def _give_up(self, run: _Pass) -> None:
        """At the deadline: a call that started and did not finish fails the collection; calls not started
        (no worker or no rate-limit token in time), listings too, are deferred: served as last known,
        first in line next time. Nothing left runs later."""
        timed_out = any(isinstance(err, CollectionTimeout) for err in run.errors)
        if run.running and not timed_out:
            run.errors.append(CollectionTimeout(max(0.0, self._clock() - run.started)))
        # The pool drops queued jobs whose deadline passed; results of calls still running are ignored.
        run.pending = run.pending_listings = 0

    def _handle(self, run: _Pass, call: Call, result: Any, error: BaseException | None) -> None:
        not_found = isinstance(error, ApiError) and error.code == NOT_FOUND
        match call:
            case ListApplications():
                if error is None:
                    run.applications = result
                elif not _deferred(error):  # throttled or deferred: the last discovery stands, up stays 1
                    run.discovery_failed = True
                    self._failed(run, error)
            case ListObjects(listing, _, index):
                waiting = run.waiting_listings.get(listing.kind)
                if waiting and not run.deadline.passed:
                    self._submit(run, waiting.pop(0), LISTING_PRIORITY)
                key = (listing.kind, listing.application_id)
                state = self._app_listings.get(key)
                if error is None or not_found:  # not found: the application was deleted after it was listed
                    if state is not None:
                        state.results[index] = result if error is None else []
                else:
                    run.listing_failed.add(key)
                    if not _deferred(error):  # failed: the next try starts over (a deferred one resumes)
                        self._failed(run, error)
                        self._app_listings.pop(key, None)
                self._listed(run, key)
            case GetApplication(app):
                if error is None:
                    self.applications.described(app, result)
                elif not (not_found or _deferred(error)):
                    # Not: deleted since it was listed (the next listing drops it), or out of budget (the last
                    # answer is served and the application is asked again next collection).
                    self._failed(run, error)
            case GetObject(refresh):
                inventory = self.inventories[refresh.kind]
                if error is None:
                    if result is not None:  # None: AWS sent an invalid one, dropped; the last known stays
                        first_final = inventory.refreshed(result, self._clock())
                        run.refreshed.add((refresh.kind, result.id))
                        if first_final and result.state in refresh.kind.failed_states:
                            self._log_failure(refresh.kind, result)
                elif not_found:
                    inventory.vanished(refresh.object_id)  # ended and deleted between list and get: counted
                elif not _deferred(error):
                    # Not out of budget (ours or AWS's), where the last known copy is served and this object is
                    # first in line next time (throttling shows in the API counters, staleness in its gauges).
                    self._failed(run, error)

    def _listed(self, run: _Pass, key: KindKey) -> None:
        """One listing is in; once all of the application's listings of that kind are, plan its detail calls
        (with every listing done: from them; else from what is known, as after a failed listing)."""
        run.listings_left[key] -= 1
        if run.listings_left[key] > 0:
            return
        kind, application_id = key
        inventory = self.inventories[kind]
        app = self.applications.by_id.get(application_id)
        state = self._app_listings.get(key)
        if key in run.listing_failed or app is None or state is None or None in state.results:
            for listing, result in zip(state.listings, state.results, strict=True) if state and app else ():
                if listing.every_active and result is not None:  # a cold start's first listing, or one cut short
                    inventory.take_in(application_id, result)
            refreshes = inventory.fallback(application_id)
        else:
            del self._app_listings[key]
            self.windows[kind].listed(app, state.started)
            summaries = [summary for result in state.results if result is not None for summary in result]
            now = self._clock()
            watched_since = self.windows[kind].watched_since(application_id, now)
            refreshes = inventory.plan(application_id, summaries, now, watched_since)
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
        objects: dict[AnyKind, list[Any]],
        errors: list[ApiError],
        started: float,
        finished: float,
        *,
        stats: dict[AnyKind, KindStats] | None = None,
        ended: dict[AnyKind, dict[str, dict[str, int]]] | None = None,
        details: dict[str, ApplicationDetail] | None = None,
    ) -> TargetResult:
        return TargetResult(
            identity=self.identity,
            applications=applications,
            objects={kind: objects.get(kind, []) for kind in self.kinds},
            errors=errors,
            started_at=started,
            finished_at=finished,
            last_success=self._last_success,
            api_calls=self._api.calls.snapshot(),
            invalid_objects=self._api.calls.invalid_snapshot(),
            stats={kind: (stats or {}).get(kind, KindStats()) for kind in self.kinds},
            ended=ended or {},
            application_details=details or {},
        )

    def _log_capped(self, kind: AnyKind, application_ids: Iterable[str]) -> None:
        """Once per application: its final objects of the kind outnumber the cap, the least recently ended are
        not exported (``emr_serverless_dropped_objects_total`` counts them)."""
        key = f"discovery.{kind.max_terminated_key}"
        for application_id in application_ids:
            log.warning(
                f"more ended {kind.name.replace('_', ' ')}s than {key}: the least recently ended are not exported",
                extra={"fields": {"target": self.identity.name, "application": application_id, "kind": kind.name,
                                  "cap": self._discovery.max_terminated(kind)}},
            )

    def _log_failure(self, kind: AnyKind, obj: Any) -> None:
        """A failed object's reason (free text, never a label), once, when it is first seen failed."""
        log.warning(
            f"{kind.name.replace('_', ' ')} failed",
            extra={"fields": {"target": self.identity.name, "application": obj.application_id, "id": obj.id,
                              "name": obj.name, "state_details": obj.state_details}},
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
