"""The /metrics body, written directly, in pieces, in the format the scrape's Accept header asks for.

``negotiate`` chooses the format from the Accept header (media types by q-value; parameters in any
order and case): the text format 0.0.4 or 1.0.0, or OpenMetrics, with a name escaping scheme. Where
the escaping leaves this exporter's names as they are (``underscores``, ``allow-utf-8``, ``values``:
every name here is a legacy name; it is what Prometheus and curl ask for), the body is:

- prometheus-client's own collectors (process, platform, GC) through its encoder;
- each kind's families (sessions, job runs) from its ``exporter.render.series.SeriesStore``, which
  renders an object again only when it changed;
- the application and target families, small, written afresh by ``exporter.render.lineformat``;
- what the exposition costs (each target's series by kind, counted while writing the above, and the size
  of the last body), and the build;
- OpenMetrics' ``# EOF``.

Only the families ``metrics.allowlist`` / ``denylist`` export are in the stores and writers.

It is byte for byte what prometheus-client's ``generate_latest`` writes for the same registry with
``exporter.metrics.collector.EmrServerlessCollector`` (tests/integration/test_exposition.py). Only the
``dots`` escaping, which renames every name, is served through that generic path.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetResult
from exporter.config.schema import MetricsConfig
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.labels import Group, Labels, SeriesCounts
from exporter.metrics.targets import ExpositionSizes
from exporter.render.lineformat import OPENMETRICS_EOF, FamilyWriter, SharedLabels, Syntax
from exporter.render.series import SeriesStore

Encoder = Callable[[Collector], bytes]
# Escaping schemes under which prometheus-client writes legacy names unchanged.
DIRECT_ESCAPINGS = (openmetrics_format.UNDERSCORES, openmetrics_format.ALLOWUTF8, openmetrics_format.VALUES)
_ESCAPINGS = (*DIRECT_ESCAPINGS, openmetrics_format.DOTS)
OPENMETRICS_TYPE = "application/openmetrics-text"


@dataclass(frozen=True)
class Format:
    """What a scrape is answered with: the format, the name escaping and the Content-Type that says so."""

    syntax: Syntax
    escaping: str
    content_type: str

    @property
    def direct(self) -> bool:
        """Whether ``exporter.render.lineformat`` writes it (else prometheus-client's generic path does)."""
        return self.escaping in DIRECT_ESCAPINGS

    def encoder(self) -> Encoder:
        if self.syntax == "openmetrics":
            return functools.partial(openmetrics_format.generate_latest, escaping=self.escaping, version="1.0.0")
        return functools.partial(text_format.generate_latest, escaping=self.escaping)


TEXT_0_0_4 = Format("text", openmetrics_format.UNDERSCORES, text_format.CONTENT_TYPE_PLAIN_0_0_4)


def negotiate(accept_header: str) -> Format:
    """The format for an Accept header (RFC 9110 section 12.5.1): the acceptable media type with the
    highest q-value (the first listed of equals) among OpenMetrics, text/plain and wildcards; text 0.0.4
    when none is.

    OpenMetrics is answered as 1.0.0 whatever version is asked, and its Content-Type says 1.0.0: it is
    what the body is, and what Prometheus parses whether it asked for 0.0.1, 1.0.0 or a version to come
    (it chooses its parser by media type). The text format is 1.0.0 when asked for 1.0.0 or above (the
    same lines, a Content-Type that names the escaping), else 0.0.4."""
    best, best_quality = TEXT_0_0_4, 0.0
    for media_type, parameters, quality in header_items(accept_header):
        found = _format_of(media_type, parameters)
        if found is not None and quality > best_quality:
            best, best_quality = found, quality
    return best


def header_items(header: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """The items of an Accept-style header (``value;name=value;q=0.5, ...``): each value in lower case,
    its parameters (names in lower case, values unquoted) and its q-value. A q-value that is not a
    number from 0 to 1 makes the item unacceptable (0)."""
    for item in header.split(","):
        value, *parameter_items = item.split(";")
        parameters: dict[str, str] = {}
        for parameter in parameter_items:
            name, _, text = parameter.partition("=")
            parameters.setdefault(name.strip().lower(), text.strip().strip('"'))
        yield value.strip().lower(), parameters, _quality(parameters.get("q"))


def _quality(text: str | None) -> float:
    if text is None:
        return 1.0
    try:
        quality = float(text)
    except ValueError:
        return 0.0
    return quality if 0.0 <= quality <= 1.0 else 0.0


def _format_of(media_type: str, parameters: dict[str, str]) -> Format | None:
    version = parameters.get("version", "")
    escaping = parameters.get("escaping", "").lower()
    named_escaping = escaping in _ESCAPINGS
    if not named_escaping:
        escaping = openmetrics_format.UNDERSCORES  # as prometheus-client: an unknown scheme is the default
    if media_type == OPENMETRICS_TYPE:
        content_type = openmetrics_format.CONTENT_TYPE_LATEST
        if named_escaping or _at_least_1_0_0(version):  # prometheus-client's Content-Types for the usual headers
            content_type += f"; escaping={escaping}"
        return Format("openmetrics", escaping, content_type)
    if media_type == "text/plain":
        if _at_least_1_0_0(version):
            return Format("text", escaping, f"{text_format.CONTENT_TYPE_PLAIN_1_0_0}; escaping={escaping}")
        return TEXT_0_0_4
    if media_type in ("*/*", "text/*"):
        return TEXT_0_0_4
    return None


def _at_least_1_0_0(version: str) -> bool:
    parts = version.split(".")
    if not all(part.isdigit() for part in parts):
        return False
    return tuple(int(part) for part in parts) >= (1,)  # 1, 1.0 and 1.0.0 alike


class _Chain(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


class _GroupWriter:
    """Writes one group of families (applications, targets, build) afresh on each scrape."""

    def __init__(self, group: Group[Any]) -> None:
        self.shared = SharedLabels(group.label_names)
        self.writers = [
            FamilyWriter(f.name, f.type, f.help, self.shared, f.extra_labels, f.unit) for f in group.families
        ]

    def write(self, syntax: Syntax, group: Group[Any], series: SeriesCounts | None = None) -> bytes:
        """The group's families in ``syntax``; each row's samples counted in ``series`` under its
        target's name as ``group.counted_as``, when given."""
        out = [[writer.headers[syntax].decode()] for writer in self.writers]
        for labels, obj, now in group.rows:
            runs = self.shared.runs(labels)
            written = 0
            for spec, writer, lines in zip(group.families, self.writers, out, strict=True):
                samples = tuple(spec.samples(obj, now))
                written += len(samples)
                lines.append(writer.lines(runs, samples))
            if series is not None and group.counted_as:
                series.setdefault(labels[0], Counter())[group.counted_as] += written
        return "".join("".join(lines) for lines in out).encode()


class Exposition:
    def __init__(self, runner: CollectionRunner, registry: CollectorRegistry, metrics_config: MetricsConfig) -> None:
        """``registry``: prometheus-client's own collectors; the exporter's families are written here."""
        self._runner = runner
        self._registry = registry
        self._labels = labels = Labels(metrics_config)
        self._lock = threading.Lock()
        # A kind none of whose families is exported has no store: nothing of it is rendered.
        self.stores = [SeriesStore(table, metrics_config) for table in labels.tables if labels.exports_any(table)]
        self._group_writers = [_GroupWriter(group) for group in labels.per_target_groups([])]
        self._closing_writers = [_GroupWriter(group) for group in labels.closing_groups([], {}, {})]
        self.sizes = ExpositionSizes()
        self._generic = _Chain(registry, EmrServerlessCollector(runner, metrics_config, self.sizes))

    def render(self, accept_header: str = "") -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        parts, content_type = self.render_parts(accept_header)
        return b"".join(parts), content_type

    def render_parts(self, accept_header: str = "") -> tuple[list[bytes], str]:
        """The body as a list of pieces, to be written (or compressed) one by one: at 10,000 sessions
        the body is ~55 MB, which need not exist in one piece beside the stores it is made of."""
        negotiated = negotiate(accept_header)
        encoder, content_type, syntax = negotiated.encoder(), negotiated.content_type, negotiated.syntax
        if not negotiated.direct:
            body = encoder(self._generic)
            self.sizes.rendered(negotiated.syntax, len(body))
            return [body], content_type
        latest = self._runner.latest
        results = latest or []
        series: SeriesCounts = {}
        with self._lock:
            object_parts: list[bytes] = []
            for store in self.stores:
                store.update(results)
                object_parts += store.parts(syntax)
                for target, count in store.series.items():
                    series.setdefault(target, Counter())[store.kind_name] += count
        body = encoder(self._registry)
        eof = body.endswith(OPENMETRICS_EOF)
        if eof:  # OpenMetrics ends with one EOF marker, after everything
            body = body[: -len(OPENMETRICS_EOF)]
        parts = [body, *object_parts, self._others(syntax, results, series, self.sizes.reported(latest))]
        if eof:
            parts.append(OPENMETRICS_EOF)
        self.sizes.rendered(syntax, sum(map(len, parts)))
        return parts, content_type

    def _others(self, syntax: Syntax, results: Sequence[TargetResult], series: SeriesCounts,
                sizes: dict[str, int]) -> bytes:
        labels = self._labels
        groups = labels.per_target_groups(results)
        writers = zip(self._group_writers, groups, strict=True)
        written = [writer.write(syntax, group, series) for writer, group in writers]
        closing = labels.closing_groups(results, series, sizes)
        written += [writer.write(syntax, group) for writer, group in zip(self._closing_writers, closing, strict=True)]
        return b"".join(written)


# The body's many small pieces are compressed and sent in chunks of about this size.
WRITE_CHUNK_BYTES = 64 * 1024


def gzip_parts(parts: Iterable[bytes], level: int = 1) -> list[bytes]:
    """gzip, 64 KiB at a time (not piece by piece: 150,000 compress() calls cost a third more): the
    compressed body is ~15x smaller than the text, which is never joined whole. Level 1: half the CPU
    of level 6 for 10 % more bytes on this repetitive text (docs/performance.md); a body compressed once
    and served many times (background mode) can afford more."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: gzip header and trailer
    compressed = [compressor.compress(chunk) for chunk in chunks(parts)]
    compressed.append(compressor.flush())
    return [piece for piece in compressed if piece]


def chunks(parts: Iterable[bytes], size: int = WRITE_CHUNK_BYTES) -> Iterator[bytes]:
    """The pieces joined into chunks of about ``size`` bytes: one socket write per chunk, not per piece."""
    batch: list[bytes] = []
    length = 0
    for part in parts:
        batch.append(part)
        length += len(part)
        if length >= size:
            yield b"".join(batch)
            batch, length = [], 0
    if batch:
        yield b"".join(batch)
