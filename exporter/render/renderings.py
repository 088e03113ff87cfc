"""Renderings shared between scrapes: each variant (format, gzip or not) of one collection's results is
rendered once, however many scrapes ask for it at the same time or after.

A render of 10,000 sessions takes a second or more of CPU; an HA pair, or a scrape storm, asking for
the same variant of the same collection would otherwise render it once each. The first scrape to ask
renders; those that ask meanwhile wait for that render and get the same bytes; those that ask later
get it from the cache until the results change. ``OnScrapeRenderer`` serves the scrapes that collect
themselves; ``exporter.render.background.BackgroundRenderer`` builds on ``Renderings`` as well.

The body differs between two renders of the same results only in prometheus-client's own figures
(process CPU and memory), read when it is rendered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace

from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_ACCEPT

from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetResult
from exporter.render.exposition import Exposition, Format, gzip_parts
from exporter.render.lineformat import Syntax

# A format the direct writer writes, by syntax, or the generic path's, by Content-Type; gzip-compressed or not.
Variant = tuple[Syntax | str, bool]
# An Accept header per syntax: what a variant the direct writer writes is rendered with. Every Accept
# header whose format the direct writer serves (Prometheus 3's escaping=allow-utf-8 as well as 2's
# underscores: our names are legacy names either way) gets the same bytes; only its Content-Type is its own.
ACCEPT: dict[Syntax, str] = {"openmetrics": OPENMETRICS_ACCEPT, "text": ""}
SCRAPE_GZIP_LEVEL = 1  # a body rendered for few scrapes: half the CPU of level 6 for 10 % more bytes


@dataclass(frozen=True)
class Rendered:
    content_type: str
    # Identity: the pieces as rendered, the session store's own lines, shared, not a joined copy (two
    # formats joined cost 115 MB more at 10,000 sessions). Gzip: one compressed piece.
    body: tuple[bytes, ...]
    gzip: bool

    @property
    def length(self) -> int:
        return sum(len(part) for part in self.body)


    def answering(self, negotiated: Format) -> Rendered:
        """This rendering under the Content-Type of the format negotiated (the bytes are the same)."""
        if self.content_type == negotiated.content_type:
            return self
        return replace(self, content_type=negotiated.content_type)


def variant_of(negotiated: Format, gzip: bool) -> Variant:
    return (negotiated.syntax if negotiated.direct else negotiated.content_type), gzip


def render(exposition: Exposition, negotiated: Format, gzip: bool, level: int) -> Rendered:
    """One rendering in ``negotiated``'s format, compressed at ``level`` when ``gzip``."""
    accept = ACCEPT[negotiated.syntax] if negotiated.direct else negotiated.content_type
    parts, content_type = exposition.render_parts(accept)
    if gzip:
        return Rendered(content_type, (b"".join(gzip_parts(parts, level)),), gzip=True)
    return Rendered(content_type, tuple(parts), gzip=False)


class Renderings:
    """The renderings of one generation of results, by variant. A variant asked for while it is being
    rendered is not rendered again: the callers wait for the render under way and share its result."""

    def __init__(self, rendered: dict[Variant, Rendered] | None = None) -> None:
        self._lock = threading.Lock()
        self._done: dict[Variant, Rendered] = dict(rendered or {})
        self._under_way: dict[Variant, Future[Rendered]] = {}

    @property
    def variants(self) -> set[Variant]:
        with self._lock:
            return set(self._done)

    def cached(self, variant: Variant) -> Rendered | None:
        with self._lock:
            return self._done.get(variant)

    def get(self, variant: Variant, render: Callable[[], Rendered], *, keep: bool = True) -> Rendered:
        """The rendering of ``variant``: kept from before, under way (waited for), or rendered now by
        ``render`` and kept for later callers when ``keep`` (else shared only with those who wait)."""
        with self._lock:
            done = self._done.get(variant)
            if done is not None:
                return done
            under_way = self._under_way.get(variant)
            if under_way is None:
                mine: Future[Rendered] = Future()
                self._under_way[variant] = mine
        if under_way is not None:
            return under_way.result()
        try:
            rendered = render()
        except BaseException as err:  # the callers waiting get the same error
            with self._lock:
                del self._under_way[variant]
            mine.set_exception(err)
            raise
        with self._lock:
            del self._under_way[variant]
            if keep:
                self._done[variant] = rendered
        mine.set_result(rendered)
        return rendered


class OnScrapeRenderer:
    """The renderings of the latest collection, for scrapes that run (or join) the collection
    themselves: a new collection's results start a new generation."""

    def __init__(self, runner: CollectionRunner, exposition: Exposition) -> None:
        self._runner = runner
        self._exposition = exposition
        self._lock = threading.Lock()
        self._results: list[TargetResult] | None = None
        self._renderings = Renderings()

    def _current(self) -> Renderings:
        with self._lock:
            latest = self._runner.latest
            if latest is not self._results:
                self._results, self._renderings = latest, Renderings()
            return self._renderings

    def get(self, negotiated: Format, gzip: bool) -> Rendered:
        """The latest results in ``negotiated``'s format, rendered now or shared with other scrapes. A
        format only the generic path writes is not kept: its body is one piece as large as the text."""
        rendered = self._current().get(variant_of(negotiated, gzip),
                                       lambda: render(self._exposition, negotiated, gzip, SCRAPE_GZIP_LEVEL),
                                       keep=negotiated.direct)
        return rendered.answering(negotiated)

    def cached(self, negotiated: Format, gzip: bool) -> Rendered | None:
        """The latest results' rendering in this variant if there is one, without rendering (HEAD)."""
        rendered = self._current().cached(variant_of(negotiated, gzip))
        return rendered.answering(negotiated) if rendered is not None else None
