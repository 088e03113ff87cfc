"""What one target remembers between collections, and what it should ask AWS for next.

A plain class with no threads and no clock of its own (every method takes ``now``), so that each rule is
unit-tested directly:

- Applications and sessions stay known until a *complete* answer says they are gone (a complete
  ListApplications without the application, GetSession's ResourceNotFoundException) or a terminal
  session ages out: a failed or throttled call never makes series flap to nothing.
- FAILED/TERMINATED sessions never change again: fetched once, then served from memory.
- Every collection lists each application's active sessions, so states are fresh from the listing
  however little GetSession budget there is, and GetSession goes where it buys most: new active
  sessions, then the ones *due* (a deadline, below), new final ones, sessions whose state or updatedAt
  changed, then the stalest.
- The deadline: with B GetSessions answered per collection and N active sessions, each can be refreshed
  once every P = ceil(N / B) collections, so one not refreshed for P - 1 collections is due and goes
  before every change. However many sessions change, a session is refreshed within P collections
  while the budget holds (a collection with less, or new sessions taken first, push the due ones
  later: the issue's bound, P + 1, has room for one), and changed sessions get what the due ones leave.
  The collector calls ``begin_collection`` once per collection; memory counts the answers itself.
- An application's capacity (GetApplication) is asked once when it is first discovered and again only when
  its ``updatedAt`` in ListApplications changes: a steady-state collection makes no GetApplication call.
- What each ListSessions asks for (its states and creation-time window) is ``exporter.collect.discovery``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from exporter.config.schema import TERMINAL_SESSION_STATES, DiscoveryConfig
from exporter.model.session import Application, ApplicationDetail, Session, SessionSummary


@dataclass
class Known:
    session: Session
    refreshed_at: float  # when GetSession last returned it
    refreshed_in: int = 0  # in which collection (``SessionMemory.begin_collection`` counts them)
    # The final state came from a listing, not GetSession: its endedAt and last utilization are still to fetch.
    final_from_listing: bool = False


# Refresh ranks: what a GetSession buys most comes first, the stalest first within a rank.
NEW = 0.0  # listed, active, never fetched: running (costing money) and not exported until fetched
DUE = 1.0  # not refreshed for P - 1 collections: must not wait behind churn (SessionMemory.period)
NEW_FINAL = 2.0  # listed, ended, never fetched (a cold start's look-back finds thousands): can wait
CHANGED = 3.0  # the listing shows a new state or updatedAt, or the session left the active states
STALEST = 4.0  # nothing changed that the listing shows: utilization and idle time only


@dataclass(frozen=True)
class Refresh:
    """A GetSession worth making; lower ``priority`` first."""

    application_id: str
    session_id: str
    priority: tuple[float, float]  # (rank, when last refreshed)

    @property
    def urgent(self) -> bool:
        """New and active, or due: worth a call before the other applications' listings are in."""
        return self.priority[0] <= DUE


def is_final(state: str) -> bool:
    return state in TERMINAL_SESSION_STATES


class SessionMemory:
    def __init__(self, discovery: DiscoveryConfig) -> None:
        self._max_age = discovery.terminated_session_max_age_seconds
        self.applications: dict[str, Application] = {}  # last complete discovery
        # By application id, then session id: planning one application reads its own sessions only (one
        # flat dict made each collection read every session once per application: 1,000,000 at 100 x 10,000).
        self._sessions: dict[str, dict[str, Known]] = {}
        self._added: list[Session] = []  # sessions new to memory since the last ``sessions()``
        # Listed but not fetched yet (no budget left): remembered, so a later listing that starts after
        # them still gets them fetched, first in line.
        self._unfetched: dict[str, dict[str, SessionSummary]] = {}
        # Per application: its last GetApplication answer (None: malformed, dropped) and the listing's
        # updatedAt that answer is for.
        self.details: dict[str, ApplicationDetail | None] = {}
        self._described: dict[str, datetime] = {}
        self.collection = 0  # collections begun
        self._answered = 0  # GetSessions answered in this collection
        self._budget = 0  # GetSessions answered by the last collection that had any answered
        self.period = math.inf  # P: collections in which every active session can be refreshed once

    def begin_collection(self) -> None:
        """A collection of the target starts: count it and set the deadline P from the last budget.

        P = ceil(active known sessions / GetSessions answered by the previous collection). That count
        is the budget however it was bound (rate limit, AWS throttling, the deadline, or demand: a
        collection that could fetch everything gets P = 1, all due, which costs nothing). A collection
        that answered none (every call failed, throttled or out of time) says nothing about the budget
        and the last one that answered any stands: a P too small only makes more sessions due, which
        degrades to stalest first over all, never to starvation; a P too large (infinity) would let
        churn starve the unchanged. Only before anything was ever answered is P infinite (nothing is
        known to be due; every active session is new and goes first anyway).
        """
        if self._answered:
            self._budget = self._answered
        self.collection += 1
        self._answered = 0
        active = sum(not is_final(k.session.state) for known in self._sessions.values() for k in known.values())
        self.period = max(1, math.ceil(active / self._budget)) if self._budget else math.inf

    def _due(self, known: Known) -> bool:
        # Not refreshed in the P - 1 collections since the one that did: due in this one.
        return self.collection - known.refreshed_in >= self.period

    # --- applications ----------------------------------------------------------------------------------

    def discovered(self, applications: Iterable[Application]) -> None:
        """A complete discovery: what is not in it is gone, with its sessions."""
        self.applications = {app.id: app for app in applications}
        self._sessions = {app: known for app, known in self._sessions.items() if app in self.applications}
        self._unfetched = {app: listed for app, listed in self._unfetched.items() if app in self.applications}
        self.details = {app: d for app, d in self.details.items() if app in self.applications}
        self._described = {app: t for app, t in self._described.items() if app in self.applications}

    def to_describe(self) -> list[Application]:
        """Applications whose GetApplication answer is missing or older than their listing's updatedAt:
        new ones, changed ones, and ones whose last GetApplication failed."""
        return [app for app in self.applications.values() if self._described.get(app.id) != app.updated_at]

    def described(self, app: Application, detail: ApplicationDetail | None) -> None:
        """GetApplication answered for ``app`` as listed (``detail`` None: malformed, so it is not asked
        again until the application changes)."""
        if app.id in self.applications:
            self.details[app.id] = detail
            self._described[app.id] = app.updated_at

    def plan(self, application_id: str, summaries: Iterable[SessionSummary], now: float) -> list[Refresh]:
        """What to fetch of an application whose listings all succeeded, most useful first:

        - listed sessions memory does not know (new ones, or ones not fetched yet), unless final and
          aged out already (a summary has no endedAt; its updatedAt is when it ended);
        - known active sessions whose state or updatedAt the listing shows changed (the new state is
          exported at once), or that left the active states (ended, or gone);
        - the other known active sessions, stalest first.

        Ranked new active, due (``period``), new final, changed, stalest.
        """
        listed = {s.session_id: s for s in summaries if s.application_id == application_id}
        known_here = self._sessions.get(application_id, {})
        unfetched = self._unfetched.get(application_id, {})
        for sid, summary in listed.items():
            if sid in known_here or self.aged_out(summary, now):
                continue
            if application_id in self.applications:
                unfetched[sid] = summary
        if unfetched:
            self._unfetched[application_id] = unfetched
        refreshes = [Refresh(application_id, sid, new_priority(summary)) for sid, summary in unfetched.items()]
        for sid, known in known_here.items():
            session = known.session
            if is_final(session.state) and not known.final_from_listing:
                continue
            now_listed = listed.get(sid)
            if now_listed is None or known.final_from_listing:
                rank = CHANGED  # no longer active: fetch its final state once
            elif (now_listed.state, now_listed.updated_at) != (session.state, session.updated_at):
                known.session = msgspec.structs.replace(
                    session, state=now_listed.state, updated_at=now_listed.updated_at
                )
                known.final_from_listing = is_final(now_listed.state)  # exported now, fetched until fetched
                rank = CHANGED
            else:
                rank = STALEST
            if self._due(known):
                rank = DUE
            refreshes.append(Refresh(application_id, sid, (rank, known.refreshed_at)))
        return sorted(refreshes, key=lambda r: r.priority)

    def fallback(self, application_id: str) -> list[Refresh]:
        """What to fetch of an application whose listing failed: what memory knows, ranked as ``plan``
        ranks it without a listing (so nothing is known to have changed): new active, due, new final,
        then the stalest."""
        refreshes = [Refresh(application_id, sid, new_priority(summary))
                     for sid, summary in self._unfetched.get(application_id, {}).items()]
        refreshes += [
            Refresh(application_id, sid, (DUE if self._due(k) else STALEST, k.refreshed_at))
            for sid, k in self._sessions.get(application_id, {}).items()
            if not is_final(k.session.state) or k.final_from_listing
        ]
        return sorted(refreshes, key=lambda r: r.priority)

    # --- sessions --------------------------------------------------------------------------------------

    def refreshed(self, session: Session, now: float) -> None:
        """GetSession answered (in the collection begun last)."""
        self._answered += 1
        self._unfetched.get(session.application_id, {}).pop(session.session_id, None)
        if session.application_id in self.applications:
            known = self._sessions.setdefault(session.application_id, {})
            if session.session_id not in known:
                self._added.append(session)
            known[session.session_id] = Known(session, now, self.collection)

    def vanished(self, session_id: str) -> None:
        """GetSession said ResourceNotFoundException: an answer too (it spent the budget)."""
        self._answered += 1
        for known in self._sessions.values():
            known.pop(session_id, None)
        for listed in self._unfetched.values():
            listed.pop(session_id, None)

    @property
    def unfetched(self) -> int:
        """Sessions listed but not fetched yet: not exported until they are."""
        return sum(map(len, self._unfetched.values()))

    def aged_out(self, session: Session | SessionSummary, now: float) -> bool:
        """Final and ended more than ``terminated_session_max_age_seconds`` ago (a summary has no endedAt: its
        updatedAt is when it ended)."""
        ended = session.ended if isinstance(session, Session) and session.ended is not None else session.updated
        return is_final(session.state) and ended < now - self._max_age

    def sessions(self, now: float) -> list[Known]:
        """What to export: every known session of a known application that has not aged out (and
        forget the ones that have), in an order GetSession's answers, which arrive in any order, do not
        decide (tests/e2e/test_golden.py): applications by id; in each, its sessions as the last call gave them,
        then the ones new since, by id. Only the new ones are sorted."""
        if self._added:
            for app_id, sid in sorted({(s.application_id, s.session_id) for s in self._added}):
                known = self._sessions.get(app_id)
                if known is not None and sid in known:  # not forgotten since
                    known[sid] = known.pop(sid)  # to the end of its application
            self._added = []
        self._sessions = {
            app: {sid: k for sid, k in known.items() if not self.aged_out(k.session, now)}
            for app, known in sorted(self._sessions.items())
        }
        self._unfetched = {
            app: {sid: s for sid, s in listed.items() if not self.aged_out(s, now)}
            for app, listed in self._unfetched.items()
        }
        return [k for known in self._sessions.values() for k in known.values()]


def new_priority(summary: SessionSummary) -> tuple[float, float]:
    """A session not fetched yet: an active one before a final one. At a cold start under a quota, the
    look-back lists thousands of ended sessions (9,000 at scenario L, 15 minutes at 10 TPS); the running
    ones, which cost money now, go first, and the due ones before the ended, so that a long backlog
    starves no running session. Both before CHANGED: neither is exported until it is fetched."""
    return (NEW_FINAL if is_final(summary.state) else NEW, 0.0)
