"""Which applications a target collects: a filter around ListApplications (ids, name, this replica's shard).

Filtering happens on the listing, before anything else is asked about an application, so an application
another replica owns or the configuration leaves out costs no ListSessions, GetSession or GetApplication.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from exporter.config import DiscoveryConfig
from exporter.model import Application


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
