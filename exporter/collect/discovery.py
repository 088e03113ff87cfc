"""What a target lists: which applications (a filter around ListApplications: ids, name, this replica's
shard), and what each application's listings of a kind ask for (states and a creation-time window).

Filtering happens on the listing, before anything else is asked about an application, so an application
another replica owns or the configuration leaves out costs no listing, detail call or GetApplication.

Every listing of a kind asks for the application's active objects, with no date bound (a session or a
streaming run can stay active for days), so that states are fresh however little detail-call budget
there is; and for the objects created since the last complete listing, of any state, which finds those
that started and ended between two collections. The first listing of an application looks back the
kind's look-back (at least its max age) with no state filter, so a restart finds what ended meanwhile
and a state AWS adds later is listed too.

Where the listing has a quota (ListJobRuns: 1 request/s per account and region), not every application
can be listed every collection: the least recently listed go first, the busiest first among equals,
and an application that runs nothing (CREATED or STOPPED, unchanged since its last complete listing) is
not listed again until ListApplications shows it changed.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from exporter.config.schema import DiscoveryConfig
from exporter.model.kinds import QUIET_APPLICATION_STATES, ObjectKind
from exporter.model.session import Application

# Steady-state listings reach this far before the last one, for clock skew between us and AWS's
# createdAt and for sessions that became visible to ListSessions late.
LISTING_OVERLAP_SECONDS = 300.0


@dataclass(frozen=True)
class Shard:
    """This replica's share of the applications, as kube-state-metrics' --shard / --total-shards."""

    index: int
    total: int

    def owns(self, application_id: str) -> bool:
        # crc32, not hash(): Python salts str hashes per process, and every replica must agree.
        return zlib.crc32(application_id.encode()) % self.total == self.index


class ApplicationFilter:
    """``discovery.application_ids`` and ``application_name_regex`` (a full match), then the shard."""

    def __init__(self, discovery: DiscoveryConfig, shard: Shard | None = None) -> None:
        self._ids = frozenset(discovery.application_ids)
        self._name = re.compile(discovery.application_name_regex) if discovery.application_name_regex else None
        self._shard = shard

    def wanted(self, app: Application) -> bool:
        if self._ids and app.id not in self._ids:
            return False
        if self._shard and not self._shard.owns(app.id):
            return False
        return not (self._name and not self._name.fullmatch(app.name))


@dataclass(frozen=True)
class Listing:
    """One listing of a kind: ``states`` (empty: all) and objects created after ``created_after``."""

    kind: ObjectKind[Any, Any]
    application_id: str
    states: tuple[str, ...] = ()
    created_after: datetime | None = None
    extra: tuple[tuple[str, str], ...] = ()  # more request members (a job-run mode)

    @property
    def every_active(self) -> bool:
        """Lists every active object of the application, however old: what it shows can be taken in alone."""
        return self.created_after is None and self.states == self.kind.active_states


class ListingWindows:
    """Per application, when its last complete listing of one kind started: where the next one's window
    begins."""

    def __init__(self, kind: ObjectKind[Any, Any], discovery: DiscoveryConfig) -> None:
        self.kind = kind
        self._lookback = discovery.lookback_seconds(kind)
        self._max_age = discovery.max_age_seconds(kind)
        self._extra = discovery.listing_filter(kind)
        self._listed_at: dict[str, float] = {}
        self._discovered_at: dict[str, float] = {}  # when each application was first discovered
        # Per application, its state and updatedAt as ListApplications showed them at its last complete listing.
        self._listed_as: dict[str, tuple[str, datetime]] = {}

    def listings(self, application_id: str, now: float) -> list[Listing]:
        """The active objects, however old (first: a cold start lists them for every application before any
        look-back), and those created since the last complete listing (the first time, since the look-back),
        of any state: one in a state AWS adds later is listed too."""
        listed_before = self._listed_at.get(application_id)
        since = now - self._lookback if listed_before is None else listed_before - LISTING_OVERLAP_SECONDS
        return [
            Listing(self.kind, application_id, states=self.kind.active_states, extra=self._extra),
            Listing(self.kind, application_id, created_after=datetime.fromtimestamp(since, timezone.utc),
                    extra=self._extra),
        ]

    def watched_since(self, application_id: str, now: float) -> float:
        """When the application was first discovered (``now`` if not yet): what was created since ended since."""
        return self._discovered_at.get(application_id, now)

    def never_listed(self, application_id: str) -> bool:
        return application_id not in self._listed_at

    def quiet(self, app: Application, now: float) -> bool:
        """The application runs nothing and nothing changed since its last complete listing: no need to
        list it (a run submitted to it starts it, which changes its state). Never listed, it is quiet too
        when it has run nothing since before the keep window: whatever ran on it ended too long ago to be
        exported (a restart in an account of many stopped applications lists none of them)."""
        if app.state not in QUIET_APPLICATION_STATES:
            return False
        listed_as = self._listed_as.get(app.id)
        if listed_as is None:
            return app.updated_at.timestamp() < now - self._max_age
        return listed_as == (app.state, app.updated_at)

    def order(self, apps: Iterable[Application], busy: Mapping[str, int]) -> list[Application]:
        """Who goes first when not every application can be listed: never listed, then the least recently
        listed, the busiest (``busy``: active objects known) first among equals."""
        return sorted(apps, key=lambda app: (self._listed_at.get(app.id, -1.0), -busy.get(app.id, 0), app.id))

    def oldest_listing(self, application_ids: Iterable[str], now: float) -> float:
        """Seconds since the least recently listed of ``application_ids`` was last listed completely; one never
        listed counts from its discovery (a cold start behind the listing quota shows how far behind it is)."""
        return max((now - self._listed_at.get(app, self._discovered_at.get(app, now)) for app in application_ids),
                   default=0.0)

    def listed(self, app: Application, started: float) -> None:
        """Every listing of the application succeeded: what was created before ``started`` is known."""
        self._listed_at[app.id] = started
        self._listed_as[app.id] = (app.state, app.updated_at)

    def keep(self, application_ids: Iterable[str], now: float) -> None:
        """A complete discovery at ``now``: forget every other application, note when new ones appeared."""
        wanted = set(application_ids)
        self._discovered_at = {app: self._discovered_at.get(app, now) for app in wanted}
        self._listed_at = {app: t for app, t in self._listed_at.items() if app in wanted}
        self._listed_as = {app: v for app, v in self._listed_as.items() if app in wanted}
