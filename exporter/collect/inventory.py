"""What one target remembers between collections, and what it should ask AWS for next.

Plain classes with no threads and no clock of their own (every method takes ``now``), so that each rule
is unit-tested directly. ``Inventory`` is written once and holds the objects of one kind (sessions, job
runs: ``exporter.model.kinds``); ``Applications`` holds the applications and their GetApplication answers.

- Applications and objects stay known until a *complete* answer says they are gone (a complete
  ListApplications without the application, the detail call's ResourceNotFoundException) or a final
  object ages out: a failed or throttled call never makes series flap to nothing.
- Objects in a final state never change again: fetched once, then served from memory.
- Every collection lists each application's active objects, so states are fresh from the listing
  however little detail-call budget there is, and detail calls go where they buy most: new active
  objects, then the ones *due*, new final ones, objects whose state or updatedAt changed, then the
  stalest (docs/design.md: the refresh order and its period P).
- Objects seen reaching a final state are counted once each, by application and state, from each
  application's first complete listing on: never one already final at that listing, never twice.
- Per application, at most the kind's cap (``discovery.max_terminated_<kind>s_per_application``) of final
  objects are kept, the most recently ended; the others are forgotten before anything is fetched for them
  (so they cost no detail call), counted in ``dropped``, and passed over while listings still show them.
- An application's capacity (GetApplication) is asked once when it is first discovered and again only when
  its ``updatedAt`` in ListApplications changes: a steady-state collection makes no GetApplication call.
- What each listing asks for (its states and creation-time window) is ``exporter.collect.discovery``'s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

import msgspec

from exporter.config.schema import DiscoveryConfig
from exporter.model.kinds import DetailT, ObjectKind, SummaryT
from exporter.model.session import Application, ApplicationDetail


@dataclass
class Known(Generic[DetailT]):
    obj: DetailT
    refreshed_at: float  # when the detail call last returned it
    refreshed_in: int = 0  # in which collection (``Inventory.begin_collection`` counts them)
    # The final state came from a listing, not the detail call: its end and last utilization are still to fetch.
    final_from_listing: bool = False
    # Listed and not fetched yet: what the listing says of it (a kind with ``from_summary``), exported meanwhile.
    partial: bool = False


# Refresh ranks: what a detail call buys most comes first, the stalest first within a rank.
NEW = 0.0  # listed, active, never fetched: running (costing money) and not exported until fetched
DUE = 1.0  # not refreshed for P - 1 collections: must not wait behind churn (``Inventory.period``)
NEW_FINAL = 2.0  # listed, ended, never fetched (a cold start's look-back finds thousands): can wait
CHANGED = 3.0  # the listing shows a new state or updatedAt, or the object left the active states
STALEST = 4.0  # nothing changed that the listing shows: utilization and idle time only


@dataclass(frozen=True)
class Refresh:
    """A detail call worth making; lower ``priority`` first."""

    kind: ObjectKind[Any, Any]
    application_id: str
    object_id: str
    priority: tuple[float, float]  # (rank, when last refreshed)

    @property
    def urgent(self) -> bool:
        """New and active: worth a call before the other applications' listings are in. Not the due ones:
        after a quota drop every object is due, and the first application listed would spend the budget on
        its own before the others' new active objects are known."""
        return self.priority[0] == NEW


class Applications:
    """The applications of the last complete discovery, and what GetApplication said of each."""

    def __init__(self) -> None:
        self.by_id: dict[str, Application] = {}
        # Per application: its last GetApplication answer (None: malformed, dropped) and the listing's
        # updatedAt that answer is for.
        self.details: dict[str, ApplicationDetail | None] = {}
        self._described: dict[str, datetime] = {}

    def discovered(self, applications: Iterable[Application]) -> None:
        """A complete discovery: what is not in it is gone."""
        self.by_id = {app.id: app for app in applications}
        self.details = {app: d for app, d in self.details.items() if app in self.by_id}
        self._described = {app: t for app, t in self._described.items() if app in self.by_id}

    def to_describe(self) -> list[Application]:
        """Applications whose GetApplication answer is missing or older than their listing's updatedAt:
        new ones, changed ones, and ones whose last GetApplication failed."""
        return [app for app in self.by_id.values() if self._described.get(app.id) != app.updated_at]

    def described(self, app: Application, detail: ApplicationDetail | None) -> None:
        """GetApplication answered for ``app`` as listed (``detail`` None: malformed, so it is not asked
        again until the application changes)."""
        if app.id in self.by_id:
            self.details[app.id] = detail
            self._described[app.id] = app.updated_at


class Inventory(Generic[SummaryT, DetailT]):
    """The known objects of one kind, and the order in which to refresh them."""

    def __init__(self, kind: ObjectKind[SummaryT, DetailT], discovery: DiscoveryConfig) -> None:
        self.kind = kind
        self._max_age = discovery.max_age_seconds(kind)
        self._max_terminated = discovery.max_terminated(kind)
        self._applications: set[str] = set()  # of the last complete discovery
        # By application id, then object id: planning one application reads its own objects only (one
        # flat dict made each collection read every session once per application: 1,000,000 at 100 x 10,000).
        self._objects: dict[str, dict[str, Known[DetailT]]] = {}
        self._added: list[DetailT] = []  # objects new to the inventory since the last ``objects()``
        # Listed but not fetched yet (no budget left): remembered, so a later listing that starts after
        # them still gets them fetched, first in line.
        self._unfetched: dict[str, dict[str, SummaryT]] = {}
        self.collection = 0  # collections begun
        self._answered = 0  # detail calls answered in this collection
        self._budget = 0  # detail calls answered by the last collection that had any answered
        self.period = math.inf  # P: collections in which every active object can be refreshed once
        # Per application: objects seen reaching each final state since the start, cumulative (``ended``).
        self._ends: dict[str, Counter[str]] = {}
        # Applications listed completely at least once: their ends are exported from then on, zeros included.
        self._listed_completely: set[str] = set()
        # Per application, the objects whose end was counted, or that were already final when first seen.
        self._final_seen: dict[str, set[str]] = {}
        # Per application, what the listing says of each unfetched object (a kind with ``from_summary``).
        self._partial: dict[str, dict[str, DetailT]] = {}
        # Per application, final objects the cap left out that its listing still shows: never taken in again.
        self._dropped: dict[str, set[str]] = {}
        # Per application not listed completely yet, objects forgotten (aged out, or gone at the detail call):
        # its cold start's active listing may still show them active (the look-back ends collections later),
        # and must not bring them back to be exported, fetched and counted again (``_forget``).
        self._forgotten: dict[str, set[str]] = {}
        self.dropped = 0  # final objects the cap left out, cumulative
        self._capped: set[str] = set()  # applications whose objects the cap ever left out
        self._newly_capped: list[str] = []  # of those, the ones not yet reported (``newly_capped``)

    def is_final(self, state: str) -> bool:
        return self.kind.is_final(state)

    def active_by_application(self) -> dict[str, int]:
        """Known active objects per application: how busy each is."""
        return {
            app: sum(not self.is_final(k.obj.state) for k in known.values()) for app, known in self._objects.items()
        }

    def _seen_final(self, application_id: str, object_id: str, state: str, *, count: bool) -> bool:
        """An object seen in a final state: counted once if ``count`` (it ended since the exporter started);
        True the first time it is seen so."""
        seen = self._final_seen.setdefault(application_id, set())
        if object_id in seen:
            return False
        seen.add(object_id)
        if count:
            self._ends.setdefault(application_id, Counter())[state] += 1
        return True

    @property
    def ended(self) -> dict[str, Counter[str]]:
        """Per application listed completely at least once, the objects seen reaching each final state since
        the start (one seen active by a cold start's first listing and ended before its look-back was in, too)."""
        return {app: self._ends.get(app, Counter()) for app in sorted(self._listed_completely)}

    def begin_collection(self) -> None:
        """A collection of the target starts: count it and set the period P from the last budget:
        P = ceil(active known objects / detail calls answered by the previous collection that answered
        any; infinite before anything was ever answered). docs/design.md says why this bound holds."""
        if self._answered:
            self._budget = self._answered
        self.collection += 1
        self._answered = 0
        active = sum(not self.is_final(k.obj.state) for known in self._objects.values() for k in known.values())
        self.period = max(1, math.ceil(active / self._budget)) if self._budget else math.inf

    def _due(self, known: Known[DetailT]) -> bool:
        # Not refreshed in the P - 1 collections since the one that did: due in this one.
        return self.collection - known.refreshed_in >= self.period

    def keep_applications(self, application_ids: Iterable[str]) -> None:
        """A complete discovery: the objects of every other application are gone."""
        self._applications = set(application_ids)
        self._objects = {app: known for app, known in self._objects.items() if app in self._applications}
        self._unfetched = {app: listed for app, listed in self._unfetched.items() if app in self._applications}
        self._ends = {app: counts for app, counts in self._ends.items() if app in self._applications}
        self._listed_completely &= self._applications
        self._partial = {app: objs for app, objs in self._partial.items() if app in self._applications}
        self._final_seen = {app: seen for app, seen in self._final_seen.items() if app in self._applications}
        self._dropped = {app: ids for app, ids in self._dropped.items() if app in self._applications}
        self._forgotten = {app: ids for app, ids in self._forgotten.items() if app in self._applications}
        self._capped &= self._applications

    def plan(self, application_id: str, summaries: Iterable[SummaryT], now: float,
             watched_since: float = math.inf) -> list[Refresh]:
        """What to fetch of an application whose listings all succeeded, most useful first:

        - listed objects the inventory does not know (new ones, or ones not fetched yet), unless final and
          aged out already (a summary has no end; its updatedAt is when it ended);
        - known active objects whose state or updatedAt the listing shows changed (the new state is
          exported at once), or that left the active states (ended, or gone);
        - the other known active objects, stalest first.

        Ranked new active, due (``period``), new final, changed, stalest.
        """
        listed = {s.id: s for s in summaries if s.application_id == application_id}
        known_here = self._objects.get(application_id, {})
        unfetched = self._unfetched.get(application_id, {})
        first_listing = application_id not in self._listed_completely
        forgotten = self._forgotten.pop(application_id, set())  # the next complete listing begins after this one
        # A left-out object this complete listing no longer shows is created before its window: never listed again.
        dropped = self._dropped.pop(application_id, set()) & listed.keys()
        if dropped:
            self._dropped[application_id] = dropped
        for oid, summary in listed.items():
            if oid in known_here or oid in dropped or oid in forgotten or self.aged_out(summary, now):
                continue
            if application_id in self._applications:
                if self.is_final(summary.state):
                    # Ended before it was ever seen: counted unless at the first listing, where it is counted
                    # only if it ended after the exporter started (seen active, or created after the application
                    # was first discovered: a run that started and ended during a cold start's look-back).
                    seen_active = oid in unfetched and not self.is_final(unfetched[oid].state)
                    after_start = seen_active or summary.created_at.timestamp() >= watched_since
                    self._seen_final(application_id, oid, summary.state, count=after_start or not first_listing)
                self._listed_unfetched(application_id, unfetched, summary)
        if unfetched:
            self._unfetched[application_id] = unfetched
        changed: set[str] = set()
        for oid, known in known_here.items():  # what the listing shows changed, before the cap counts the final ones
            obj = known.obj
            now_listed = listed.get(oid)
            if now_listed is None or self.is_final(obj.state):  # final: nothing more to take from a listing
                continue
            if now_listed.updated_at < obj.updated_at:  # listed before the detail call answered (a cold start's)
                continue
            if (now_listed.state, now_listed.updated_at) != (obj.state, obj.updated_at):
                known.obj = msgspec.structs.replace(  # type: ignore[type-var]
                    obj, state=now_listed.state, updated_at=now_listed.updated_at
                )
                known.final_from_listing = self.is_final(now_listed.state)  # exported now, fetched until fetched
                if known.final_from_listing:
                    self._seen_final(application_id, oid, now_listed.state, count=True)
                changed.add(oid)
        self._cap(application_id)
        refreshes = [self._refresh(application_id, oid, self.new_priority(s))
                     for oid, s in self._unfetched.get(application_id, {}).items()]
        for oid, known in self._objects.get(application_id, {}).items():
            if self.is_final(known.obj.state) and not known.final_from_listing:
                continue
            # No longer active (fetch its final state once) or changed, else only its utilization may have.
            changed_or_gone = oid not in listed or known.final_from_listing or oid in changed
            rank = DUE if self._due(known) else CHANGED if changed_or_gone else STALEST
            refreshes.append(self._refresh(application_id, oid, (rank, known.refreshed_at)))
        if application_id in self._applications:
            self._listed_completely.add(application_id)  # its ends are exported from here on
        return sorted(refreshes, key=lambda r: r.priority)

    def take_in(self, application_id: str, summaries: Iterable[SummaryT]) -> None:
        """Active objects one listing shows before the application's other listings are in (a cold start lists
        every application's active objects before any application's look-back): the new ones are exported from
        the listing and fetched first (``fallback``). Nothing else is taken from an incomplete set of listings:
        neither what it does not show nor an end."""
        if application_id not in self._applications:
            return
        known_here = self._objects.get(application_id, {})
        passed_over = self._dropped.get(application_id, set()) | self._forgotten.get(application_id, set())
        new = {s.id: s for s in summaries
               if s.application_id == application_id and not self.is_final(s.state)
               and s.id not in known_here and s.id not in passed_over}
        if not new:
            return
        unfetched = self._unfetched.setdefault(application_id, {})
        for summary in new.values():
            self._listed_unfetched(application_id, unfetched, summary)

    def _listed_unfetched(self, application_id: str, unfetched: dict[str, SummaryT], summary: SummaryT) -> None:
        """A listed object not fetched yet: remembered to be fetched, and exported from its listing meanwhile
        (a kind with ``from_summary``), as this listing shows it."""
        if unfetched.get(summary.id) != summary and self.kind.from_summary is not None:
            self._partial.setdefault(application_id, {})[summary.id] = self.kind.from_summary(summary)
        unfetched[summary.id] = summary

    def _cap(self, application_id: str) -> None:
        """Keep the application's most recently ended final objects, up to the kind's cap; forget the others,
        fetched or not (a summary's updatedAt is when it ended)."""
        known = self._objects.get(application_id, {})
        unfetched = self._unfetched.get(application_id, {})
        finals = [(k.obj.ended or k.obj.updated, oid) for oid, k in known.items() if self.is_final(k.obj.state)]
        finals += [(s.updated, oid) for oid, s in unfetched.items() if self.is_final(s.state)]
        if len(finals) <= self._max_terminated:
            return
        finals.sort(reverse=True)
        left_out = [oid for _, oid in finals[self._max_terminated :]]
        partial = self._partial.get(application_id, {})
        for oid in left_out:
            known.pop(oid, None)
            unfetched.pop(oid, None)
            partial.pop(oid, None)
        self._dropped.setdefault(application_id, set()).update(left_out)
        self.dropped += len(left_out)
        if application_id not in self._capped:
            self._capped.add(application_id)
            self._newly_capped.append(application_id)

    def newly_capped(self) -> list[str]:
        """Applications whose final objects the cap left out for the first time since the last call."""
        found, self._newly_capped = self._newly_capped, []
        return found

    def fallback(self, application_id: str) -> list[Refresh]:
        """What to fetch of an application whose listing failed: what the inventory knows, ranked as
        ``plan`` ranks it without a listing (so nothing is known to have changed): new active, due, new
        final, then the stalest."""
        refreshes = [self._refresh(application_id, oid, self.new_priority(summary))
                     for oid, summary in self._unfetched.get(application_id, {}).items()]
        refreshes += [
            self._refresh(application_id, oid, (DUE if self._due(k) else STALEST, k.refreshed_at))
            for oid, k in self._objects.get(application_id, {}).items()
            if not self.is_final(k.obj.state) or k.final_from_listing
        ]
        return sorted(refreshes, key=lambda r: r.priority)

    def _refresh(self, application_id: str, object_id: str, priority: tuple[float, float]) -> Refresh:
        return Refresh(self.kind, application_id, object_id, priority)

    def new_priority(self, summary: SummaryT) -> tuple[float, float]:
        """An object not fetched yet: an active one before a final one. At a cold start under a quota, the
        look-back lists thousands of ended objects (9,000 sessions at scenario L, 15 minutes at 10 TPS); the
        running ones, which cost money now, go first, and the due ones before the ended, so that a long
        backlog starves no running object. Both before CHANGED: neither is exported until it is fetched."""
        return (NEW_FINAL if self.is_final(summary.state) else NEW, 0.0)

    # --- answers ---------------------------------------------------------------------------------------

    def refreshed(self, obj: DetailT, now: float) -> bool:
        """The detail call answered (in the collection begun last). True when this is the first time the
        object is seen in a final state (the caller logs a failure's reason once)."""
        self._answered += 1
        app = obj.application_id
        listed = self._unfetched.get(app, {}).pop(obj.id, None)
        self._partial.get(app, {}).pop(obj.id, None)
        if app not in self._applications or obj.id in self._dropped.get(app, ()):
            return False
        known = self._objects.setdefault(app, {})
        previous = known.get(obj.id)
        carried_from = listed if listed is not None else (previous.obj if previous is not None else None)
        if self.kind.from_listing and carried_from is not None:
            missing = {attr: getattr(carried_from, attr) for attr in self.kind.from_listing if not getattr(obj, attr)}
            if any(missing.values()):
                obj = msgspec.structs.replace(obj, **missing)  # type: ignore[type-var]
        if previous is None:
            self._added.append(obj)
        known[obj.id] = Known(obj, now, self.collection)
        if not self.is_final(obj.state):
            return False
        # Counted here when it ended after it was seen active (its listing did not show it final).
        self._seen_final(app, obj.id, obj.state, count=True)
        # A final object is fetched once: this answer is its first final one unless one came before.
        return previous is None or previous.final_from_listing or not self.is_final(previous.obj.state)

    def vanished(self, object_id: str) -> None:
        """The detail call said ResourceNotFoundException: an answer too (it spent the budget)."""
        self._answered += 1
        for app, known in self._objects.items():
            if known.pop(object_id, None) is not None:
                self._forget(app, {object_id})
        for app, listed in self._unfetched.items():
            if listed.pop(object_id, None) is not None:
                self._forget(app, {object_id})
        for partial in self._partial.values():
            partial.pop(object_id, None)

    def _forget(self, application_id: str, object_ids: set[str]) -> None:
        """Objects no longer kept: until the application's first complete listing, its cold start's active
        listing, taken in collections before, may still show them active."""
        if object_ids and application_id not in self._listed_completely:
            self._forgotten.setdefault(application_id, set()).update(object_ids)

    @property
    def unfetched(self) -> int:
        """Active objects listed but not fetched yet (ended ones waiting for their one fetch are not stale: a
        restart's backlog of them must not read as active objects going unrefreshed)."""
        return sum(not self.is_final(s.state) for listed in self._unfetched.values() for s in listed.values())

    def aged_out(self, obj: DetailT | SummaryT, now: float) -> bool:
        """Final and ended more than the kind's max age ago (a summary has no end: its updatedAt is when it
        ended)."""
        ended = getattr(obj, "ended", None)
        return self.is_final(obj.state) and (ended if ended is not None else obj.updated) < now - self._max_age

    def objects(self, now: float) -> list[Known[DetailT]]:
        """What to export: every known object of a known application that has not aged out (and forget
        the ones that have), in an order the detail calls' answers, which arrive in any order, do not
        decide (the golden exposition): applications by id; in each, its objects as the last call gave
        them, then the ones new since, by id. Only the new ones are sorted."""
        if self._added:
            for app_id, oid in sorted({(o.application_id, o.id) for o in self._added}):
                known = self._objects.get(app_id)
                if known is not None and oid in known:  # not forgotten since
                    known[oid] = known.pop(oid)  # to the end of its application
            self._added = []
        aged: dict[str, set[str]] = {}
        for app, known in self._objects.items():
            aged[app] = {oid for oid, k in known.items() if self.aged_out(k.obj, now)}
        for app, listed in self._unfetched.items():
            aged.setdefault(app, set()).update(oid for oid, s in listed.items() if self.aged_out(s, now))
        for app, ids in aged.items():
            self._forget(app, ids)
        self._objects = {
            app: {oid: k for oid, k in known.items() if oid not in aged[app]}
            for app, known in sorted(self._objects.items())
        }
        self._unfetched = {
            app: {oid: s for oid, s in listed.items() if oid not in aged[app]}
            for app, listed in self._unfetched.items()
        }
        for app in self._objects.keys() | self._unfetched.keys():  # objects that ended since their application's plan
            self._cap(app)
        # What aged out is never listed again (``plan`` passes it over): no need to remember it was counted.
        self._final_seen = {
            app: {oid for oid in seen if oid in self._objects.get(app, {}) or oid in self._unfetched.get(app, {})}
            for app, seen in self._final_seen.items()
        }
        self._partial = {
            app: {oid: obj for oid, obj in partial.items() if oid in self._unfetched.get(app, {})}
            for app, partial in self._partial.items()
        }
        found: list[Known[DetailT]] = []
        for app in sorted(self._objects.keys() | self._partial.keys()):
            found += self._objects.get(app, {}).values()
            # Listed, not fetched yet: after the fetched ones, by id (the order answers arrive in decides nothing).
            partial = self._partial.get(app, {})
            found += [Known(partial[oid], -math.inf, partial=True) for oid in sorted(partial)]
        return found
