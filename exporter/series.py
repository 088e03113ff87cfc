"""The one owner of per-session series, as kube-state-metrics' metrics store owns an object's lines.

Per-session series are most of the exposition (about 23 samples a session, ~55 MB at 10,000
sessions), and most sessions are FAILED/TERMINATED ones that never change. The store keeps each
exported session's sample lines, keyed by (target name, session id), with the version they were
rendered from:

    version = (label values, the Session, session_clock(session, now))

The label values are the session's `S` labels (target, application name, tag labels...); the
``Session`` struct compares by value, field by field, so any change AWS reports (state, updatedAt,
utilization, idleSince, tags...) is a new version, and an unchanged session served again from memory
is the same version whatever object holds it; the clock is the collection time only where a sample
reads it (an IDLE session's idle seconds). A session's lines are rendered again only when its
version changes, through the metric tables (``exporter.metrics``, pure: object -> samples) and the
direct line formatter (``exporter.lineformat``). Sample lines are the same in every format, so one
rendering serves text and OpenMetrics; the families' headers are computed once per format.

Each ``update`` keeps exactly the sessions of the latest results: a session no longer exported
leaves the store with its lines, so there are no stale series and memory follows what is exported.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.collection import TargetIdentity, TargetResult
from exporter.config import MetricsConfig
from exporter.lineformat import KINDS, FamilyWriter, Kind, SharedLabels, format_value, header, label_pairs
from exporter.metrics import (
    SESSION_FAMILIES,
    TAGS_FAMILY_HELP,
    TAGS_FAMILY_NAME,
    Labels,
    LabelValues,
    session_clock,
)
from exporter.model import Session

SessionKey = tuple[str, str]  # (target name, session id)
Version = tuple[LabelValues, Session, float | None]
Lines = tuple[bytes, ...]  # one session's sample lines, one bytes object per family

_TAGS_VALUE = format_value(1.0)


class SessionStore:
    def __init__(self, config: MetricsConfig) -> None:
        self._labels = Labels(config)
        self._shared = SharedLabels(self._labels.session_names)
        self._writers = [
            FamilyWriter(spec.name, spec.type, spec.help, self._shared, spec.extra_labels) for spec in SESSION_FAMILIES
        ]
        self._tags = self._labels.tags_info_metric
        self.headers: dict[Kind, list[bytes]] = {}  # per format, one per family
        for kind in KINDS:
            self.headers[kind] = [writer.headers[kind] for writer in self._writers]
            if self._tags:
                self.headers[kind].append(header(kind, TAGS_FAMILY_NAME, "gauge", TAGS_FAMILY_HELP))
        self._sessions: dict[SessionKey, tuple[Version, Lines]] = {}
        self.rendered = 0  # sessions rendered so far; the others were served as they were

    def __len__(self) -> int:
        return len(self._sessions)

    def update(self, results: Sequence[TargetResult]) -> None:
        """Hold exactly the sessions of ``results``, in their order; render those whose version changed."""
        known = self._sessions
        fresh: dict[SessionKey, tuple[Version, Lines]] = {}
        for result in results:
            identity, now = result.identity, result.finished_at
            for labels, session in self._labels.sessions(result):
                key = (identity.name, session.session_id)
                version = (labels, session, session_clock(session, now))
                entry = known.get(key)
                if entry is None or entry[0] != version:
                    entry = (version, self._render(identity, labels, session, now))
                    self.rendered += 1
                fresh[key] = entry
        self._sessions = fresh

    def parts(self, kind: Kind) -> list[bytes]:
        """Every session family in the ``kind`` format: its header, then each session's lines."""
        lines = [entry[1] for entry in self._sessions.values()]
        parts: list[bytes] = []
        for index, family_header in enumerate(self.headers[kind]):
            parts.append(family_header)
            parts.extend([session_lines[index] for session_lines in lines])
        return parts

    def _render(self, identity: TargetIdentity, labels: LabelValues, session: Session, now: float) -> Lines:
        runs = self._shared.runs(labels)
        lines = [
            writer.lines(runs, spec.samples(session, now)).encode()
            for spec, writer in zip(SESSION_FAMILIES, self._writers, strict=True)
        ]
        if self._tags:
            tags = self._labels.tags(identity, session)
            lines.append(f"{TAGS_FAMILY_NAME}{label_pairs(list(tags), list(tags.values()))} {_TAGS_VALUE}\n".encode())
        return tuple(lines)
