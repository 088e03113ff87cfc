"""prometheus-client's generic path over the metric tables, and the table of every metric the docs list.

``EmrServerlessCollector`` yields every family as prometheus-client ``*MetricFamily`` objects over the
runner's latest results (it never calls AWS itself). ``exporter.render.exposition`` writes the same bytes
directly and keeps this for the formats it does not write itself; the tests hold the two equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter.collect.runner import CollectionRunner
from exporter.config.schema import MetricsConfig
from exporter.metrics.applications import APPLICATION_FAMILIES
from exporter.metrics.families import Family, rows
from exporter.metrics.labels import Group, Labels, Rows, SeriesCounts
from exporter.metrics.tables import KIND_TABLES
from exporter.metrics.targets import (
    BUILD_FAMILIES,
    BUILD_INFO_HELP,
    BUILD_INFO_NAME,
    EXPORTED_SERIES_FAMILIES,
    EXPOSITION_FAMILIES,
    TARGET_FAMILIES,
    ExpositionSizes,
)


def _new_family(spec: Family[Any], label_names: Sequence[str]) -> GaugeMetricFamily | CounterMetricFamily:
    labels = [*label_names, *spec.extra_labels]
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)


def _fill(group: Group[Any], series: SeriesCounts | None = None, counted_as: str = "") -> list[Metric]:
    """The group's families; each row's samples counted in ``series`` under its target's name (its first
    label) as ``counted_as``, when given."""
    families = [_new_family(spec, group.label_names) for spec in group.families]
    for labels, obj, now in group.rows:
        written = 0
        for spec, family in zip(group.families, families, strict=True):
            for extra, sample_value in spec.samples(obj, now):
                family.add_metric([*labels, *extra], sample_value)
                written += 1
        if series is not None and counted_as:
            series.setdefault(labels[0], Counter())[counted_as] += written
    return list[Metric](families)


class EmrServerlessCollector(Collector):
    def __init__(self, runner: CollectionRunner, metrics_config: MetricsConfig,
                 sizes: ExpositionSizes | None = None) -> None:
        """``sizes``: the body sizes the exposition recorded (``exporter.render.exposition``); none: a registry of
        its own reports none."""
        self._runner = runner
        self._labels = Labels(metrics_config)
        self._sizes = sizes or ExpositionSizes()

    def describe(self) -> Iterator[Metric]:
        # Declaring nothing keeps registration from running a collection against AWS.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        latest = self._runner.latest
        results = latest or []
        labels = self._labels
        series: SeriesCounts = {}
        for table in labels.tables:
            if not labels.exports_any(table):
                continue
            objects: Rows[Any] = [
                (values, obj, result.finished_at) for result in results for values, obj in labels.objects(result, table)
            ]
            yield from _fill(Group(labels.names(table), table.families, objects), series, table.kind.name)
            if labels.exports_tags(table):
                family = Metric(table.tags_family, table.tags_help, "gauge")
                for result in results:
                    objects_of_kind = result.objects.get(table.kind, ())
                    for obj in objects_of_kind:  # label names differ from object to object
                        family.samples.append(Sample(table.tags_family, labels.tags(result.identity, table, obj), 1.0))
                    series.setdefault(result.identity.name, Counter())[table.kind.name] += len(objects_of_kind)
                yield family
        for group in labels.per_target_groups(results):
            yield from _fill(group, series, group.counted_as)
        for group in labels.closing_groups(results, series, self._sizes.reported(latest)):
            yield from _fill(group)


def metric_table() -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of every metric, as the docs' metric table lists them. Each kind's object
    labels are its own group: sessions `S`, job runs `J`."""
    table: list[tuple[str, str, str, str]] = []
    for kind_table in KIND_TABLES:
        group = kind_table.kind.name[0].upper()
        table += rows(group, kind_table.families)
        tags_labels = f"T + `application_id`, `{kind_table.id_label}`, one `tag_<key>` per tag"
        table.append((kind_table.tags_family, "gauge", tags_labels, kind_table.tags_help))
    table += rows("A", APPLICATION_FAMILIES) + rows("T", TARGET_FAMILIES) + rows("T", EXPORTED_SERIES_FAMILIES)
    table += [(f.name, f.type, ", ".join(f"`{name}`" for name in f.extra_labels), f.help) for f in EXPOSITION_FAMILIES]
    build_labels = ", ".join(f"`{name}`" for name in BUILD_FAMILIES[0].extra_labels)
    table.append((BUILD_INFO_NAME, "gauge", build_labels, BUILD_INFO_HELP))
    return table
