"""The one owner of per-object series, as kube-state-metrics' metrics store owns an object's lines: one
``SeriesStore`` per kind (sessions, job runs), written once.

Per-object series are most of the exposition (about 23 samples a session, ~55 MB at 10,000 sessions),
and most objects are final ones that never change. The store keeps each exported object's sample lines,
keyed by (target name, object id), with the version they were rendered from:

    version = (target identity, application name, the object, table.clock(object, now))

That is everything its samples and labels are made of: the target's labels, the application name
label, and the object's struct, which compares by value, field by field, so any change AWS reports
(state, updatedAt, utilization, name, tags...) is a new version, and an unchanged object served again
from memory is the same version whatever holds it; the clock is the collection time only where a sample
reads it (an IDLE session's idle seconds).

An object's lines are rendered again only when its version changes, through its kind's metric table
(``exporter.metrics``, pure: object -> samples) and the direct line formatter
(``exporter.render.lineformat``). Sample lines are the same in every format, so one rendering serves
text and OpenMetrics; the families' headers are computed once per format.

Each ``update`` keeps exactly the objects of the latest results: an object no longer exported leaves the
store with its lines, so there are no stale series and memory follows what is exported.

The table holds only the families ``metrics.allowlist`` / ``denylist`` export: a family left out is never
read from an object, rendered or kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import MetricsConfig
from exporter.metrics.families import KindTable, LabelValues, ObjSample
from exporter.metrics.labels import Labels, application_names
from exporter.render.lineformat import SYNTAXES, FamilyWriter, SharedLabels, Syntax, format_value, header, label_pairs

ObjectKey = tuple[str, str]  # (target name, object id)
# Everything an object's samples depend on: its target, its application's name, the object itself
# (compared by value) and the collection time where a sample reads it.
Version = tuple[TargetIdentity, str, Any, float | None]
Lines = tuple[bytes, ...]  # one object's sample lines, one bytes object per family
Samples = list[tuple[ObjSample, ...]]  # one object's samples, one tuple per family

_TAGS_VALUE = format_value(1.0)


class _Entry:
    """An object's lines and how many series they are, and for an object that may still change, its labels
    and samples: when it does, the families whose samples are the same under the same labels keep their lines."""

    __slots__ = ("labels", "lines", "samples", "series", "version")

    def __init__(self, version: Version, lines: Lines, series: int, labels: LabelValues | None,
                 samples: Samples | None) -> None:
        self.version = version
        self.lines = lines
        self.series = series
        self.labels = labels
        self.samples = samples


class SeriesStore:
    """The series of one kind's objects (its ``KindTable``)."""

    def __init__(self, table: KindTable[Any], config: MetricsConfig) -> None:
        self._labels = Labels(config)
        self._table = table = self._labels.selection.table(table)
        self._shared = SharedLabels(self._labels.names(table))
        self._writers = [
            FamilyWriter(spec.name, spec.type, spec.help, self._shared, spec.extra_labels, spec.unit)
            for spec in table.families
        ]
        self._tags = self._labels.exports_tags(table)
        self.headers: dict[Syntax, list[bytes]] = {}  # per syntax, one per family
        for fmt in SYNTAXES:
            self.headers[fmt] = [writer.headers[fmt] for writer in self._writers]
            if self._tags:
                self.headers[fmt].append(header(fmt, table.tags_family, "gauge", table.tags_help))
        self._objects: dict[ObjectKey, _Entry] = {}
        self.series: Counter[str] = Counter()  # by target name, in the latest ``update``

    @property
    def kind_name(self) -> str:
        return self._table.kind.name

    def __len__(self) -> int:
        return len(self._objects)

    def update(self, results: Sequence[TargetResult]) -> None:
        """Hold exactly the objects of ``results``, in their order; render those whose version changed."""
        known = self._objects
        fresh: dict[ObjectKey, _Entry] = {}
        clock = self._table.clock
        self.series = Counter()
        for result in results:
            identity, now = result.identity, result.finished_at
            names = application_names(result)
            series = 0
            for obj in result.objects.get(self._table.kind, ()):
                key = (identity.name, obj.id)
                version = (identity, names.get(obj.application_id, ""), obj, clock(obj, now))
                entry = known.get(key)
                if entry is None or entry.version != version:
                    entry = self._render(version, now, entry)
                fresh[key] = entry
                series += entry.series
            self.series[identity.name] += series
        self._objects = fresh

    def parts(self, syntax: Syntax) -> list[bytes]:
        """Every family of the kind in ``syntax``: its header, then each object's lines."""
        headers = self.headers[syntax]
        parts: list[bytes] = []
        lines = [entry.lines for entry in self._objects.values()]
        # One column per family, transposed in C; with no objects, just the headers.
        columns = zip(*lines, strict=True) if lines else [() for _ in headers]
        for family_header, column in zip(headers, columns, strict=True):
            parts.append(family_header)
            parts.extend(column)
        return parts

    def _render(self, version: Version, now: float, previous: _Entry | None) -> _Entry:
        identity, application_name, obj, _ = version
        labels = self._labels.object(identity, application_name, obj)
        samples = [tuple(spec.samples(obj, now)) for spec in self._table.families]
        old_lines: Lines = ()
        old_samples: Samples = []
        if (
            previous is not None and previous.samples is not None and previous.labels == labels
            and (not self._tags or previous.version[2].tags == obj.tags)
        ):
            old_lines, old_samples = previous.lines, previous.samples
        runs: list[str] | None = None
        lines: list[bytes] = []
        for index, writer in enumerate(self._writers):
            if old_lines and old_samples[index] == samples[index]:
                lines.append(old_lines[index])
                continue
            runs = runs if runs is not None else self._shared.runs(labels)
            lines.append(writer.lines(runs, samples[index]).encode())
        if self._tags:
            if old_lines:
                lines.append(old_lines[-1])
            else:
                tags = self._labels.tags(identity, self._table, obj)
                name = self._table.tags_family
                lines.append(f"{name}{label_pairs(list(tags), list(tags.values()))} {_TAGS_VALUE}\n".encode())
        series = sum(map(len, samples)) + int(self._tags)
        if self._table.kind.is_final(obj.state):  # final: it will not change again
            return _Entry(version, tuple(lines), series, None, None)
        return _Entry(version, tuple(lines), series, labels, samples)
