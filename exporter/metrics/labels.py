"""The label values of every series: `T` (target), `A` (application) and each kind's object labels
(`A` + its id and name + one ``tag_<key>`` per ``metrics.tag_labels`` entry), from a collection's
results; and the groups of families the exposition writes besides the objects' own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from exporter.collect.target import TargetIdentity, TargetResult
from exporter.common.logs import warn_once
from exporter.config.schema import MetricsConfig, tag_label_name
from exporter.metrics.applications import APPLICATION_FAMILIES, ApplicationView
from exporter.metrics.families import APPLICATION_LABELS, TARGET_LABELS, Family, KindTable, LabelValues, Obj
from exporter.metrics.prices import PriceTable
from exporter.metrics.targets import BUILD_FAMILIES, TARGET_FAMILIES, build_versions

# The objects of one group of families, each with its label values and the collection time.
Rows = list[tuple[LabelValues, Obj, float]]


@dataclass(frozen=True)
class Group(Generic[Obj]):
    """Families over one kind of object, which all carry the same labels first."""

    label_names: tuple[str, ...]
    families: tuple[Family[Obj], ...]
    rows: Rows[Obj]


class Labels:
    def __init__(self, config: MetricsConfig) -> None:
        self.tag_keys = config.tag_labels
        self.tags_info_metric = config.tags_info_metric
        self.prices = PriceTable(config.prices)
        self._tag_names = tuple(tag_label_name(key) for key in self.tag_keys)

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

    def other_groups(self, results: Sequence[TargetResult]) -> list[Group[Any]]:
        """Everything but the objects' own families, in the order they are exposed."""
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
            Group(APPLICATION_LABELS, APPLICATION_FAMILIES, applications),
            Group(TARGET_LABELS, TARGET_FAMILIES, targets),
            Group((), BUILD_FAMILIES, [((), build_versions(), 0.0)]),
        ]


def application_names(result: TargetResult) -> dict[str, str]:
    return {app.id: app.name for app in result.applications}


def target_values(identity: TargetIdentity) -> LabelValues:
    return (identity.name, identity.region, identity.account_id)
