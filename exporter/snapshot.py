"""Background collection: targets are collected on their own schedule, and every result is rendered and
compressed once, in each format Prometheus asks for, so that a scrape costs a look-up.

This decouples Prometheus' scrape timeout from AWS's latency and quota: a scrape answers in
milliseconds whatever AWS does, and any number of scrapers (an HA pair, a debugging curl) cost AWS
nothing more. The price is data up to one interval old; ``emr_serverless_last_collection_timestamp_seconds``
says how old, and the alert rules watch it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_ACCEPT

from exporter.collection import CollectionRunner
from exporter.exposition import Exposition, direct_kind, gzip_parts
from exporter.lineformat import Kind

log = logging.getLogger(__name__)

# The formats pre-rendered, each with an Accept header that asks for it. Every Accept header whose format
# the direct writer serves (Prometheus 3's escaping=allow-utf-8 as well as 2's underscores: our names are
# legacy names either way) gets the same bytes; only its Content-Type is its own.
PRERENDERED: dict[Kind, str] = {"openmetrics": OPENMETRICS_ACCEPT, "text": ""}
GZIP_LEVEL = 6  # compressed once per collection and served to every scrape: worth the smaller body


@dataclass(frozen=True)
class Rendered:
    content_type: str
    # The pieces as rendered: the session store's own lines, shared, not a joined copy (two formats
    # joined cost 115 MB more at 10,000 sessions, twice while the next snapshot is made).
    identity: tuple[bytes, ...]
    gzip: bytes


class Snapshots:
    """Collects every ``interval`` seconds in a thread of its own and keeps the last rendering."""

    def __init__(self, runner: CollectionRunner, exposition: Exposition, interval_seconds: float) -> None:
        self._runner = runner
        self._exposition = exposition
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rendered: dict[Kind, Rendered] = {}  # by format
        self._thread = threading.Thread(target=self._loop, name="background-collection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def get(self, accept_header: str) -> Rendered | None:
        """The latest rendering for this Accept header, or None before the first collection ends. An
        unusual Accept header is rendered now from what is known (no AWS call)."""
        encoder, content_type = choose_encoder(accept_header)
        kind = direct_kind(encoder)
        with self._lock:
            if not self._rendered:
                return None
            rendered = self._rendered.get(kind) if kind else None
        if rendered is None:
            return self._render(accept_header)
        return rendered if rendered.content_type == content_type else replace(rendered, content_type=content_type)

    def refresh(self) -> None:
        """One collection, then one rendering per pre-rendered format."""
        self._runner.collect()
        rendered = {kind: self._render(accept) for kind, accept in PRERENDERED.items()}
        with self._lock:
            self._rendered = rendered

    def _render(self, accept_header: str) -> Rendered:
        parts, content_type = self._exposition.render_parts(accept_header)
        return Rendered(content_type, tuple(parts), b"".join(gzip_parts(parts, GZIP_LEVEL)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # a bug must not end background collection for good: log it, go on
                log.exception("background collection failed")
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))
