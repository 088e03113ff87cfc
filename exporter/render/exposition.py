"""The /metrics body, written directly, in pieces.

prometheus-client chooses the format from the Accept header (``choose_encoder``): the text format
0.0.4 or 1.0.0, or OpenMetrics, with a name escaping scheme. Where that is text or OpenMetrics 1.0.0
with ``underscores`` or ``allow-utf-8`` escaping (which leave this exporter's names as they are; it is
what Prometheus and curl ask for), the body is:

- prometheus-client's own collectors (process, platform, GC) through its encoder;
- each kind's families (sessions, job runs) from its ``exporter.render.series.SeriesStore``, which
  renders an object again only when it changed;
- the application and target families, small, written afresh by ``exporter.render.lineformat``;
- what the exposition costs (each target's series by kind, counted while writing the above, and the size
  of the last body), and the build;
- OpenMetrics' ``# EOF``.

Only the families ``metrics.allowlist`` / ``denylist`` export are in the stores and writers.

It is byte for byte what prometheus-client's ``generate_latest`` writes for the same registry with
``exporter.metrics.collector.EmrServerlessCollector`` (tests/integration/test_exposition.py). Any other format
(``dots`` or ``values`` escaping, another OpenMetrics version) is served through that generic path.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import exposition as text_format
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetResult
from exporter.config.schema import MetricsConfig
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.labels import Group, Labels, SeriesCounts
from exporter.metrics.targets import ExpositionSizes
from exporter.render.lineformat import OPENMETRICS_EOF, FamilyWriter, Kind, SharedLabels
from exporter.render.series import SeriesStore

Encoder = Callable[[Collector], bytes]
# Escaping schemes under which prometheus-client writes legacy names unchanged.
DIRECT_ESCAPINGS = ("underscores", "allow-utf-8")


def direct_kind(encoder: Encoder) -> Kind | None:
    """The format ``exporter.render.lineformat`` writes for an encoder ``choose_encoder`` gave, or None."""
    function = getattr(encoder, "func", encoder)  # a functools.partial with the escaping, or the function
    options: dict[str, Any] = getattr(encoder, "keywords", {})
    if options.get("escaping", "underscores") not in DIRECT_ESCAPINGS:
        return None
    if function is text_format.generate_latest:
        return "text"
    if function is openmetrics_format.generate_latest and options.get("version", "1.0.0") == "1.0.0":
        return "openmetrics"
    return None


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

    def write(self, kind: Kind, group: Group[Any], series: SeriesCounts | None = None) -> bytes:
        """The group's families in the ``kind`` format; each row's samples counted in ``series`` under its
        target's name as ``group.counted_as``, when given."""
        out = [[writer.headers[kind].decode()] for writer in self.writers]
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
        encoder, content_type = choose_encoder(accept_header)
        kind = direct_kind(encoder)
        if kind is None:
            body = encoder(self._generic)
            self.sizes.rendered("openmetrics" if "openmetrics" in content_type else "text", len(body))
            return [body], content_type
        latest = self._runner.latest
        results = latest or []
        series: SeriesCounts = {}
        with self._lock:
            object_parts: list[bytes] = []
            for store in self.stores:
                store.update(results)
                object_parts += store.parts(kind)
                for target, count in store.series.items():
                    series.setdefault(target, Counter())[store.kind_name] += count
        body = encoder(self._registry)
        eof = body.endswith(OPENMETRICS_EOF)
        if eof:  # OpenMetrics ends with one EOF marker, after everything
            body = body[: -len(OPENMETRICS_EOF)]
        parts = [body, *object_parts, self._others(kind, results, series, self.sizes.reported(latest))]
        if eof:
            parts.append(OPENMETRICS_EOF)
        self.sizes.rendered(kind, sum(map(len, parts)))
        return parts, content_type

    def _others(self, kind: Kind, results: Sequence[TargetResult], series: SeriesCounts,
                sizes: dict[str, int]) -> bytes:
        labels = self._labels
        groups = labels.per_target_groups(results)
        written = [writer.write(kind, group, series) for writer, group in zip(self._group_writers, groups, strict=True)]
        closing = labels.closing_groups(results, series, sizes)
        written += [writer.write(kind, group) for writer, group in zip(self._closing_writers, closing, strict=True)]
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
