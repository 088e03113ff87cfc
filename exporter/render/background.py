"""Background collection: targets are collected on their own schedule, and every result is rendered and
compressed once, in each variant (format and encoding) scrapers ask for, so that a scrape costs a look-up.

This decouples Prometheus' scrape timeout from AWS's latency and quota: a scrape answers in
milliseconds whatever AWS does, and any number of scrapers (an HA pair, a debugging curl) cost AWS
nothing more. The price is data up to one interval old; ``emr_serverless_last_collection_timestamp_seconds``
says how old, and the alert rules watch it.

Only the variants asked for lately are pre-rendered: Prometheus asks for OpenMetrics with gzip, and a
render plus a gzip of a variant nobody reads is CPU and memory for nothing (docs/performance.md).
Another variant is rendered on demand from what is known (no AWS call), kept until the next
collection, and pre-rendered from then on while it is still asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_ACCEPT

from exporter.collect.runner import CollectionRunner
from exporter.render.exposition import Exposition, direct_kind, gzip_parts
from exporter.render.lineformat import Kind

log = logging.getLogger(__name__)

Variant = tuple[Kind, bool]  # a format, gzip-compressed or not
# An Accept header per format. Every Accept header whose format the direct writer serves (Prometheus 3's
# escaping=allow-utf-8 as well as 2's underscores: our names are legacy names either way) gets the same
# bytes; only its Content-Type is its own.
ACCEPT: dict[Kind, str] = {"openmetrics": OPENMETRICS_ACCEPT, "text": ""}
# Pre-rendered before anyone asks: what Prometheus 2 and 3 (and the agents built on their scrape code) ask.
FIRST_VARIANTS: tuple[Variant, ...] = (("openmetrics", True),)
# A variant not asked for this long (and for two intervals) is no longer pre-rendered: longer than any
# usual scrape interval, so that a scraper keeps its variant and a one-off curl costs one interval or so.
REMEMBER_SECONDS = 600.0
GZIP_LEVEL = 6  # compressed once per collection and served to every scrape: worth the smaller body
GENERIC_GZIP_LEVEL = 1  # a format only the generic path writes is rendered for each request: cheap, as on scrape


@dataclass(frozen=True)
class Rendered:
    content_type: str
    # Identity: the pieces as rendered, the session store's own lines, shared, not a joined copy (two
    # formats joined cost 115 MB more at 10,000 sessions). Gzip: one compressed piece.
    body: tuple[bytes, ...]
    gzip: bool


class Snapshots:
    """Collects every ``interval`` seconds in a thread of its own and keeps the last rendering."""

    def __init__(self, runner: CollectionRunner, exposition: Exposition, interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._exposition = exposition
        self._interval = interval_seconds
        self._remember = max(REMEMBER_SECONDS, 2 * interval_seconds)
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rendered: dict[Variant, Rendered] | None = None  # None until the first collection ends
        self._asked: dict[Variant, float] = dict.fromkeys(FIRST_VARIANTS, clock())  # when last asked for
        self.renders = 0  # formats rendered so far, pre-rendered or on demand (tests read it)
        self._thread = threading.Thread(target=self._loop, name="background-collection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    @property
    def prerendered(self) -> set[Variant]:
        """The variants the latest collection rendered (or a scrape since)."""
        with self._lock:
            return set(self._rendered or ())

    def get(self, accept_header: str, gzip: bool) -> Rendered | None:
        """The latest rendering for this Accept header, or None before the first collection ends. A variant
        not pre-rendered is rendered now from what is known (no AWS call), and pre-rendered from the next
        collection on."""
        encoder, content_type = choose_encoder(accept_header)
        kind = direct_kind(encoder)
        with self._lock:
            if kind is not None:
                self._asked[(kind, gzip)] = self._clock()
            current = self._rendered
            if current is None:
                return None
            rendered = current.get((kind, gzip)) if kind is not None else None
        if rendered is None:
            if kind is None:  # an unusual format (another escaping or version): the generic path, each time
                return self._render(accept_header, {gzip}, GENERIC_GZIP_LEVEL)[gzip]
            rendered = self._render(ACCEPT[kind], {gzip})[gzip]
            with self._lock:
                if self._rendered is current:  # kept for the next scrapes until the next collection
                    current.setdefault((kind, gzip), rendered)
        return rendered if rendered.content_type == content_type else replace(rendered, content_type=content_type)

    def refresh(self) -> None:
        """One collection, then one rendering per format asked for lately, in the encodings asked for."""
        self._runner.collect()
        now = self._clock()
        with self._lock:
            self._asked = {variant: at for variant, at in self._asked.items() if now - at <= self._remember}
            wanted = set(self._asked)
        rendered: dict[Variant, Rendered] = {}
        for kind in ACCEPT:
            encodings = {gzip for asked, gzip in wanted if asked == kind}
            if encodings:
                rendered.update(((kind, gz), r) for gz, r in self._render(ACCEPT[kind], encodings).items())
        with self._lock:
            self._rendered = rendered

    def _render(self, accept_header: str, encodings: set[bool], level: int = GZIP_LEVEL) -> dict[bool, Rendered]:
        """One rendering for ``accept_header``, in each encoding asked (True: gzip), by encoding."""
        parts, content_type = self._exposition.render_parts(accept_header)
        with self._lock:
            self.renders += 1
        rendered = {}
        if False in encodings:
            rendered[False] = Rendered(content_type, tuple(parts), gzip=False)
        if True in encodings:
            rendered[True] = Rendered(content_type, (b"".join(gzip_parts(parts, level)),), gzip=True)
        return rendered

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # a bug must not end background collection for good: log it, go on
                log.exception("background collection failed")
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))
