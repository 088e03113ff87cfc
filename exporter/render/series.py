"""The one owner of per-session series, as kube-state-metrics' metrics store owns an object's lines.

Per-session series are most of the exposition (about 23 samples a session, ~55 MB at 10,000
sessions), and most sessions are FAILED/TERMINATED ones that never change. The store keeps each
exported session's sample lines, keyed by (target name, session id), with the version they were
rendered from:

    version = (target identity, application name, the Session, session_clock(session, now))

That is everything its samples and labels are made of: the target's labels, the application name
label, and the ``Session`` struct, which compares by value, field by field, so any change AWS reports
(state, updatedAt, utilization, idleSince, name, tags...) is a new version, and an unchanged session
served again from memory is the same version whatever object holds it; the clock is the collection
time only where a sample reads it (an IDLE session's idle seconds, ``metrics.session_clock``).

A session's lines are rendered again only when its version changes, through the metric tables
(``exporter.metrics.families``, pure: object -> samples) and the direct line formatter (``exporter.render.lineformat``).
Sample lines are the same in every format, so one rendering serves text and OpenMetrics; the
families' headers are computed once per format.

Each ``update`` keeps exactly the sessions of the latest results: a session no longer exported
leaves the store with its lines, so there are no stale series and memory follows what is exported.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import TERMINAL_SESSION_STATES, MetricsConfig
from exporter.metrics.families import (
    SESSION_FAMILIES,
    TAGS_FAMILY_HELP,
    TAGS_FAMILY_NAME,
    Labels,
    LabelValues,
    ObjSample,
    application_names,
    session_clock,
)
from exporter.model.session import Session
from exporter.render.lineformat import KINDS, FamilyWriter, Kind, SharedLabels, format_value, header, label_pairs

SessionKey = tuple[str, str]  # (target name, session id)
# Everything a session's samples depend on: its target, its application's name, the session itself
# (compared by value) and the collection time where a sample reads it.
Version = tuple[TargetIdentity, str, Session, float | None]
Lines = tuple[bytes, ...]  # one session's sample lines, one bytes object per family
Samples = list[tuple[ObjSample, ...]]  # one session's samples, one tuple per family

_TAGS_VALUE = format_value(1.0)


class _Entry:
    """A session's lines, and for a session that may still change, its labels and samples: when it
    does, the families whose samples are the same under the same labels keep their lines."""

    __slots__ = ("labels", "lines", "samples", "version")

    def __init__(self, version: Version, lines: Lines, labels: LabelValues | None, samples: Samples | None) -> None:
        self.version = version
        self.lines = lines
        self.labels = labels
        self.samples = samples


class SessionStore:
    def __init__(self, config: MetricsConfig) -> None:
        self._labels = Labels(config)
        self._shared = SharedLabels(self._labels.session_names)
        self._writers = [
            FamilyWriter(spec.name, spec.type, spec.help, self._shared, spec.extra_labels, spec.unit)
            for spec in SESSION_FAMILIES
        ]
        self._tags = self._labels.tags_info_metric
        self.headers: dict[Kind, list[bytes]] = {}  # per format, one per family
        for kind in KINDS:
            self.headers[kind] = [writer.headers[kind] for writer in self._writers]
            if self._tags:
                self.headers[kind].append(header(kind, TAGS_FAMILY_NAME, "gauge", TAGS_FAMILY_HELP))
        self._sessions: dict[SessionKey, _Entry] = {}
        self.rendered = 0  # sessions rendered so far; the others were served as they were

    def __len__(self) -> int:
        return len(self._sessions)

    def update(self, results: Sequence[TargetResult]) -> None:
        """Hold exactly the sessions of ``results``, in their order; render those whose version changed."""
        known = self._sessions
        fresh: dict[SessionKey, _Entry] = {}
        for result in results:
            identity, now = result.identity, result.finished_at
            names = application_names(result)
            for session in result.sessions:
                key = (identity.name, session.session_id)
                version = (identity, names.get(session.application_id, ""), session, session_clock(session, now))
                entry = known.get(key)
                if entry is None or entry.version != version:
                    entry = self._render(version, now, entry)
                    self.rendered += 1
                fresh[key] = entry
        self._sessions = fresh

    def parts(self, kind: Kind) -> list[bytes]:
        """Every session family in the ``kind`` format: its header, then each session's lines."""
        headers = self.headers[kind]
        parts: list[bytes] = []
        lines = [entry.lines for entry in self._sessions.values()]
        # One column per family, transposed in C; with no sessions, just the headers.
        columns = zip(*lines, strict=True) if lines else [() for _ in headers]
        for family_header, column in zip(headers, columns, strict=True):
            parts.append(family_header)
            parts.extend(column)
        return parts

    def _render(self, version: Version, now: float, previous: _Entry | None) -> _Entry:
        identity, application_name, session, _ = version
        labels = self._labels.session(identity, application_name, session)
        samples = [tuple(spec.samples(session, now)) for spec in SESSION_FAMILIES]
        old_lines: Lines = ()
        old_samples: Samples = []
        if (
            previous is not None and previous.samples is not None and previous.labels == labels
            and (not self._tags or previous.version[2].tags == session.tags)
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
                tags = self._labels.tags(identity, session)
                lines.append(
                    f"{TAGS_FAMILY_NAME}{label_pairs(list(tags), list(tags.values()))} {_TAGS_VALUE}\n".encode()
                )
        if session.state in TERMINAL_SESSION_STATES:  # final: it will not change again
            return _Entry(version, tuple(lines), None, None)
        return _Entry(version, tuple(lines), labels, samples)
