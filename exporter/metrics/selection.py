"""Which metric families are exported: ``metrics.allowlist`` or ``metrics.denylist``, as kube-state-metrics'
``--metric-allowlist`` / ``--metric-denylist``, applied to the tables before anything is rendered, so a
family left out costs neither CPU nor bytes in any format.

An entry is a family's name exactly (``emr_serverless_job_run_attempt``, a counter with its ``_total``) or a
regular expression that must match a whole name (``emr_serverless_job_run_.*_timestamp_seconds``). Unlike
kube-state-metrics, an entry that selects nothing is a configuration error: a typo must not silently
export everything (denylist) or nothing (allowlist).

The exporter's own metrics are kept from accidents: ``emr_serverless_up`` and ``emr_serverless_build_info``
are always exported; the other self-metrics (per target: collection, API calls, staleness, cost) are never
matched by a regular expression and are exported whatever the allowlist says; only a denylist entry that
names one exactly drops it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from typing import Any, TypeVar

from exporter.config.schema import ConfigError, MetricsConfig, is_metric_name
from exporter.metrics.applications import APPLICATION_FAMILIES
from exporter.metrics.families import Family, KindTable
from exporter.metrics.tables import KIND_TABLES
from exporter.metrics.targets import ALWAYS_EXPORTED, SELF_FAMILY_NAMES

F = TypeVar("F", bound=Family[Any])


def selectable_names() -> tuple[str, ...]:
    """Every family a list's regular expressions choose from: the objects' and the applications' families."""
    names: list[str] = []
    for table in KIND_TABLES:
        names += [family.name for family in table.families]
        names.append(table.tags_family)
    names += [family.name for family in APPLICATION_FAMILIES]
    return tuple(names)


class FamilySelection:
    """The families ``metrics.allowlist`` / ``metrics.denylist`` export; raises ConfigError naming the entry
    that selects nothing, or one that would drop what cannot be dropped."""

    def __init__(self, config: MetricsConfig) -> None:
        self._allow = bool(config.allowlist)
        key, entries = ("allowlist", config.allowlist) if self._allow else ("denylist", config.denylist)
        self._active = bool(entries)
        selectable = selectable_names()
        self._matched: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"metrics.{key}[{index}]"
            if is_metric_name(entry):
                if entry in ALWAYS_EXPORTED and not self._allow:
                    raise ConfigError(f"{where}: {entry} cannot be dropped: it says whether the exporter works "
                                      "and which version runs")
                if entry not in selectable and entry not in SELF_FAMILY_NAMES:
                    raise ConfigError(f"{where}: {entry!r} is no metric family of the exporter{_hint(entry)}")
                self._matched.add(entry)
                continue
            pattern = re.compile(entry)  # compiles: the schema checked it
            found = [name for name in selectable if pattern.fullmatch(name)]
            if not found:
                raise ConfigError(f"{where}: {entry!r} matches no metric family (a full match; regular expressions "
                                  "never match the exporter's own metrics: name one exactly to drop it)")
            self._matched.update(found)

    def wanted(self, name: str) -> bool:
        if not self._active or name in ALWAYS_EXPORTED:
            return True
        if self._allow:
            return name in self._matched or name in SELF_FAMILY_NAMES
        return name not in self._matched

    def families(self, families: Iterable[F]) -> tuple[F, ...]:
        return tuple(family for family in families if self.wanted(family.name))

    def table(self, table: KindTable[Any]) -> KindTable[Any]:
        """The table with only the families exported; ``tags_family`` empty when the tags family is not."""
        if not self._active:
            return table
        tags = table.tags_family if self.wanted(table.tags_family) else ""
        return dataclasses.replace(table, families=self.families(table.families), tags_family=tags)


def _hint(entry: str) -> str:
    close = difflib.get_close_matches(entry, [*selectable_names(), *SELF_FAMILY_NAMES], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_selection(config: MetricsConfig) -> None:
    """Raise ConfigError when ``metrics.allowlist`` or ``metrics.denylist`` names what is not there."""
    FamilySelection(config)
