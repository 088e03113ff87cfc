"""The label values of every series: `T` (target), `A` (application) and each kind's object labels
(`A` + its id and name + one ``tag_<key>`` per ``metrics.tag_labels`` entry), from a collection's
results; the families ``metrics.allowlist`` / ``denylist`` export; and the groups of families the
exposition writes besides the objects' own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from exporter.collect.target import TargetIdentity, TargetResult
from exporter.common.logs import warn_once
from exporter.config.schema import MetricsConfig, tag_label_name
from exporter.metrics.applications import APPLICATION_FAMILIES, ApplicationView
from exporter.metrics.families import APPLICATION_LABELS, TARGET_LABELS, Family, KindTable, LabelValues, Obj
from exporter.metrics.prices import PriceTable
from exporter.metrics.selection import FamilySelection
from exporter.metrics.tables import KIND_TABLES
from exporter.metrics.targets import (
    BUILD_FAMILIES,
    EXPORTED_KINDS,
    EXPORTED_SERIES_FAMILIES,
    EXPOSITION_FAMILIES,
    TARGET_FAMILIES,
    ExportedSeries,
    build_versions,
)

# The objects of one group of families, each with its label values and the collection time.
Rows = list[tuple[LabelValues, Obj, float]]
# Per target name, its series in one exposition by the kind label of emr_serverless_exported_series.
SeriesCounts = dict[str, Counter[str]]


@dataclass(frozen=True)
class Group(Generic[Obj]):
    """Families over one kind of object, which all carry the same labels first."""

    label_names: tuple[str, ...]
    families: tuple[Family[Obj], ...]
    rows: Rows[Obj]
    # The kind its series count as in emr_serverless_exported_series (each row's first label is its target's
    # name); empty: not counted per target.
    counted_as: str = ""


class Labels:
    def __init__(self, config: MetricsConfig) -> None:
        self.tag_keys = config.tag_labels
        self.tags_info_metric = config.tags_info_metric
        self.prices = PriceTable(config.prices)
        self._tag_names = tuple(tag_label_name(key) for key in self.tag_keys)
        selection = FamilySelection(config)
        self.selection = selection
        # Every kind's table with the families exported, in KIND_TABLES' order.
        self.tables = tuple(selection.table(table) for table in KIND_TABLES)
        self._application_families = selection.families(APPLICATION_FAMILIES)
        self._target_families = selection.families(TARGET_FAMILIES)
        self._exported_series_families = selection.families(EXPORTED_SERIES_FAMILIES)
        self._exposition_families = selection.families(EXPOSITION_FAMILIES)
        self._build_families = selection.families(BUILD_FAMILIES)

    def exports_tags(self, table: KindTable[Any]) -> bool:
        """Whether the kind's tags info metric is exported (``emr_serverless_session_tags``)."""
        return self.tags_info_metric and bool(table.tags_family)

    def exports_any(self, table: KindTable[Any]) -> bool:
        return bool(table.families) or self.exports_tags(table)

    def names(self, table: KindTable[Any]) -> tuple[str, ...]:
        """The label names every series of the kind's families starts with."""
        return (*table.label_names, *self._tag_names)

    def objects(self, result: TargetResult, table: KindTable[Any]) -> Iterator[tuple[LabelValues, Any]]:
        names = application_names(result)
        for obj in result.objects.get(table.kind, ()):
            yield self.object(result.identity, names.get(obj.application_id, ""), obj), obj

    def object(self, identity: TargetIdentity, application_name: str, obj: Any) -> LabelValues:
        """An object's label values: all they depend on is in the arguments."""
        tags = obj.tags
        return (
            identity.name, identity.region, identity.account_id, obj.application_id, application_name,
            obj.id, obj.name, *[tags.get(key, "") for key in self.tag_keys],
        )

    @staticmethod
    def tags(identity: TargetIdentity, table: KindTable[Any], obj: Any) -> dict[str, str]:
        """The labels of an object's tags series (``emr_serverless_session_tags``): one per tag."""
        labels = dict(zip(TARGET_LABELS, target_values(identity), strict=True))
        labels["application_id"] = obj.application_id
        labels[table.id_label] = obj.id
        for key, tag_value in obj.tags.items():  # sorted by AWS's key (exporter.model)
            name = tag_label_name(key)
            if name in labels:
                warn_once("tag keys collide on one label name; the first in sorted order is exported",
                          label=name, dropped_key=key)
                continue
            labels[name] = tag_value
        return labels

    def per_target_groups(self, results: Sequence[TargetResult]) -> list[Group[Any]]:
        """The applications' and the targets' families, after the objects' own, in the order they are exposed."""
        applications: Rows[ApplicationView] = []
        for result in results:
            target = target_values(result.identity)
            counts: dict[str, dict[Any, dict[str, int]]] = {
                app.id: {kind: {} for kind in result.objects} for app in result.applications
            }
            for kind, objects in result.objects.items():
                for obj in objects:
                    by_state = counts.setdefault(obj.application_id, {}).setdefault(kind, {})
                    by_state[obj.state] = by_state.get(obj.state, 0) + 1
            for app in result.applications:
                ended = {kind: by_app[app.id] for kind, by_app in result.ended.items() if app.id in by_app}
                view = ApplicationView(app, counts[app.id], ended,
                                       self.prices.get(result.identity.region, app.architecture),
                                       result.application_details.get(app.id))
                applications.append(((*target, app.id, app.name), view, result.finished_at))
        targets = [(target_values(result.identity), result, result.finished_at) for result in results]
        return [
            Group(APPLICATION_LABELS, self._application_families, applications, counted_as="application"),
            Group(TARGET_LABELS, self._target_families, targets, counted_as="target"),
        ]

    def closing_groups(self, results: Sequence[TargetResult], series: SeriesCounts,
                       sizes: Mapping[str, int]) -> list[Group[Any]]:
        """What the exposition ends with: each target's series by kind (``series``, counted over everything
        written before; its own series count as the target's), the sizes of the last bodies, the build."""
        own = len(EXPORTED_KINDS) if self._exported_series_families else 0
        exported: Rows[ExportedSeries] = []
        for result in results:
            counts = Counter(series.get(result.identity.name, Counter()))
            counts["target"] += own
            exported.append((target_values(result.identity), ExportedSeries(counts), result.finished_at))
        return [
            Group(TARGET_LABELS, self._exported_series_families, exported),
            Group((), self._exposition_families, [((), sizes, 0.0)]),
            Group((), self._build_families, [((), build_versions(), 0.0)]),
        ]


def application_names(result: TargetResult) -> dict[str, str]:
    return {app.id: app.name for app in result.applications}


def target_values(identity: TargetIdentity) -> LabelValues:
    return (identity.name, identity.region, identity.account_id)
