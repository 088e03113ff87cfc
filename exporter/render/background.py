"""Background collection: targets are collected on their own schedule, and every result is rendered and
compressed once, in each variant (format and encoding) scrapers ask for, so that a scrape costs a look-up.

This decouples Prometheus' scrape timeout from AWS's latency and quota: a scrape answers in
milliseconds whatever AWS does, and any number of scrapers (an HA pair, a debugging curl) cost AWS
nothing more. The price is data up to one interval old; ``emr_serverless_last_collection_timestamp_seconds``
says how old, and the alert rules watch it.

Only the variants asked for lately are pre-rendered: Prometheus asks for OpenMetrics with gzip, and a
render plus a gzip of a variant nobody reads is CPU and memory for nothing (docs/performance.md).
Another variant is rendered on demand from what is known (no AWS call; scrapes that ask at the same
time share one render), kept until the next collection, and pre-rendered from then on while it is
still asked for. HEAD is answered from what is rendered and renders nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from exporter.collect.runner import CollectionRunner
from exporter.render.exposition import Exposition, Format, gzip_parts
from exporter.render.lineformat import Syntax
from exporter.render.renderings import ACCEPT, Rendered, Renderings, Variant, render, variant_of

log = logging.getLogger(__name__)

# Pre-rendered before anyone asks: what Prometheus 2 and 3 (and the agents built on their scrape code) ask.
FIRST_VARIANTS: tuple[Variant, ...] = (("openmetrics", True),)
# A variant not asked for this long (and for two intervals) is no longer pre-rendered: longer than any
# usual scrape interval, so that a scraper keeps its variant and a one-off curl costs one interval or so.
REMEMBER_SECONDS = 600.0
GZIP_LEVEL = 6  # compressed once per collection and served to every scrape: worth the smaller body
GENERIC_GZIP_LEVEL = 1  # a format only the generic path writes is rendered for each request: cheap, as on scrape


class BackgroundRenderer:
    """Collects every ``interval`` seconds in a thread of its own and keeps the latest results rendered
    in the variants asked for lately."""

    def __init__(self, runner: CollectionRunner, exposition: Exposition, interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._exposition = exposition
        self._interval = interval_seconds
        self._remember = max(REMEMBER_SECONDS, 2 * interval_seconds)
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._renderings: Renderings | None = None  # None until the first collection ends
        self._asked: dict[Variant, float] = dict.fromkeys(FIRST_VARIANTS, clock())  # when last asked for
        self._thread = threading.Thread(target=self._loop, name="background-collection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def get(self, negotiated: Format, gzip: bool) -> Rendered | None:
        """The latest rendering in this format, or None before the first collection ends. A variant not
        pre-rendered is rendered now from what is known (no AWS call; scrapes that ask meanwhile share
        that render), kept until the next collection and pre-rendered from then on."""
        variant = variant_of(negotiated, gzip)
        with self._lock:
            if negotiated.direct:  # a format only the generic path writes is rendered each time, never ahead
                self._asked[variant] = self._clock()
            current = self._renderings
        if current is None:
            return None
        level = GZIP_LEVEL if negotiated.direct else GENERIC_GZIP_LEVEL
        rendered = current.get(variant, lambda: render(self._exposition, negotiated, gzip, level),
                               keep=negotiated.direct)
        return rendered.answering(negotiated)

    def cached(self, negotiated: Format, gzip: bool) -> Rendered | None:
        """The latest rendering in this format if there is one; nothing is rendered, nor remembered as
        asked for (HEAD)."""
        with self._lock:
            current = self._renderings
        rendered = current.cached(variant_of(negotiated, gzip)) if current is not None else None
        return rendered.answering(negotiated) if rendered is not None else None

    def refresh(self) -> None:
        """One collection, then one rendering per format asked for lately, in the encodings asked for."""
        self._runner.collect()
        now = self._clock()
        with self._lock:
            self._asked = {variant: at for variant, at in self._asked.items() if now - at <= self._remember}
            wanted = set(self._asked)
        rendered: dict[Variant, Rendered] = {}
        for syntax in ACCEPT:
            encodings = {gzip for asked, gzip in wanted if asked == syntax}
            if encodings:
                rendered.update(self._prerender(syntax, encodings))
        with self._lock:
            self._renderings = Renderings(rendered)

    def _prerender(self, syntax: Syntax, encodings: set[bool]) -> dict[Variant, Rendered]:
        """One rendering of ``syntax``, in each encoding asked (True: gzip)."""
        parts, content_type = self._exposition.render_parts(ACCEPT[syntax])
        rendered: dict[Variant, Rendered] = {}
        if False in encodings:
            rendered[(syntax, False)] = Rendered(content_type, tuple(parts), gzip=False)
        if True in encodings:
            rendered[(syntax, True)] = Rendered(content_type, (b"".join(gzip_parts(parts, GZIP_LEVEL)),), gzip=True)
        return rendered

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # a bug must not end background collection for good: log it, go on
                log.exception("background collection failed")
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))
