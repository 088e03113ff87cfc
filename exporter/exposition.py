"""The /metrics body, rendered incrementally the way kube-state-metrics does it.

Per-session series are most of the exposition (about 22 samples a session), and most sessions are
FAILED/TERMINATED ones served unchanged from memory. So each session's sample lines are kept
pre-serialized, per exposition format, and only sessions that changed since the last render are
rendered again: in one batch, through prometheus-client's own encoder (text or OpenMetrics), whose
output is then cut back into per-session pieces by sample count. Everything else (process, Python,
application and exporter metrics) goes through the same encoder as a plain registry. The result
parses to exactly what the generic ``generate_latest`` path gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.collection import CollectionRunner
from exporter.config import TERMINAL_SESSION_STATES
from exporter.metrics import EmrServerlessCollector, SessionRow

Encoder = Callable[[Collector], bytes]
OPENMETRICS_EOF = b"# EOF\n"
# Formats kept pre-serialized at once (text and OpenMetrics); an odd Accept header evicts the oldest.
MAX_CACHED_FORMATS = 2
RENDER_BATCH_SESSIONS = 256


class _Families(Collector):
    """The ``collect()`` an encoder needs, over families already built."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


@dataclass
class _Rendered:
    """One session's sample lines in one format, one bytes object per family."""

    session: object  # held, so that the identity in the fingerprint can never be reused
    labels: tuple[str, ...]
    now: float | None
    lines: list[bytes]


@dataclass
class _FormatCache:
    headers: list[bytes] = field(default_factory=list)  # "# HELP ...\n# TYPE ...\n" per family
    sessions: dict[tuple[str, str], _Rendered] = field(default_factory=dict)


def _time_key(row: SessionRow) -> float | None:
    """Only a session that is not final can depend on the time (idle seconds); a final one keeps its
    lines for as long as memory serves the same object under the same labels."""
    return None if row.session.state in TERMINAL_SESSION_STATES else row.now


class Exposition:
    def __init__(self, runner: CollectionRunner, registry: CollectorRegistry, sessions: EmrServerlessCollector) -> None:
        """``registry`` must not hold the session families; ``sessions`` renders them."""
        self._runner = runner
        self._registry = registry
        self._sessions = sessions
        self._lock = threading.Lock()
        self._caches: dict[str, _FormatCache] = {}  # by content type: format, version and escaping
        self.rendered_sessions = 0  # sessions rendered afresh so far (the rest came from the cache)

    def render(self, accept_header: str = "") -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        parts, content_type = self.render_parts(accept_header)
        return b"".join(parts), content_type

    def render_parts(self, accept_header: str = "") -> tuple[list[bytes], str]:
        """The body as a list of pieces, to be written (or compressed) one by one: at 10,000 sessions
        the body is ~60 MB, which need not exist in one piece beside the cache it is made of."""
        encoder, content_type = choose_encoder(accept_header)
        rows = self._sessions.session_rows(self._runner.latest or [])
        with self._lock:
            session_parts = self._render_sessions(encoder, self._cache_for(content_type), rows)
        body = encoder(self._registry)
        if body.endswith(OPENMETRICS_EOF):  # OpenMetrics ends with one EOF marker, after everything
            return [body[: -len(OPENMETRICS_EOF)], *session_parts, OPENMETRICS_EOF], content_type
        return [body, *session_parts], content_type

    def _cache_for(self, content_type: str) -> _FormatCache:
        cache = self._caches.pop(content_type, None) or _FormatCache()
        self._caches[content_type] = cache  # most recently used last
        while len(self._caches) > MAX_CACHED_FORMATS:
            del self._caches[next(iter(self._caches))]
        return cache

    def _render_sessions(self, encoder: Encoder, cache: _FormatCache, rows: Sequence[SessionRow]) -> list[bytes]:
        keys = [(row.target.name, row.session.session_id) for row in rows]
        fresh: dict[tuple[str, str], _Rendered] = {}
        stale: list[tuple[tuple[str, str], SessionRow]] = []
        for key, row in zip(keys, rows, strict=True):
            now = _time_key(row)
            known = cache.sessions.get(key)
            if known and known.session is row.session and known.labels == row.labels and known.now == now:
                fresh[key] = known
            else:
                stale.append((key, row))
        if not cache.headers:
            self._render_batch(encoder, [], cache)
        # In batches: one batch's samples and label dicts are ~20x the size of the text they become.
        for first in range(0, len(stale), RENDER_BATCH_SESSIONS):
            batch = stale[first : first + RENDER_BATCH_SESSIONS]
            rendered = self._render_batch(encoder, [row for _, row in batch], cache)
            for (key, row), lines in zip(batch, rendered, strict=True):
                fresh[key] = _Rendered(row.session, row.labels, _time_key(row), lines)
        self.rendered_sessions += len(stale)
        cache.sessions = fresh  # sessions no longer exported leave the cache with their series

        parts: list[bytes] = []
        for index, header in enumerate(cache.headers):
            parts.append(header)
            parts.extend(fresh[key].lines[index] for key in keys)
        return parts

    def _render_batch(self, encoder: Encoder, rows: Sequence[SessionRow], cache: _FormatCache) -> list[list[bytes]]:
        """Render ``rows`` through ``encoder`` at once; return each row's lines, one bytes per family."""
        ends: list[list[int]] = []
        families = self._sessions.session_families(rows, ends)
        text = encoder(_Families(families))
        headers: list[bytes] = []
        samples: list[list[bytes]] = []
        for line in text.splitlines(keepends=True):
            if line.startswith(b"# HELP "):
                headers.append(line)
                samples.append([])
            elif line.startswith(b"#"):  # TYPE, UNIT; the EOF marker is added once, by render()
                if line != OPENMETRICS_EOF:
                    headers[-1] += line
            else:
                samples[-1].append(line)  # one sample is one line: label values escape their newlines
        cache.headers = headers
        per_row: list[list[bytes]] = [[] for _ in rows]
        for family_samples, family_ends in zip(samples, ends, strict=True):
            start = 0
            for row_index, end in enumerate(family_ends):
                per_row[row_index].append(b"".join(family_samples[start:end]))
                start = end
        return per_row
