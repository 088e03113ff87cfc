"""The exporter's own metrics: per target, how its last collection went and what it cost (API calls, objects
dropped by the caps, series exported); the size of the last exposition; and the build."""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import boto3

from exporter import __version__
from exporter.collect.target import KindStats, TargetResult
from exporter.metrics.families import Family, LabelValues, ObjSample, info, value
from exporter.model.kinds import KINDS

INVALID_KINDS = ("application", *(kind.name for kind in KINDS))


def per_kind(read: Callable[[KindStats], float]) -> Callable[[TargetResult, float], Iterable[ObjSample]]:
    """One sample per kind collected, labelled ``kind``."""
    return lambda result, now: [((kind.name,), float(read(stats))) for kind, stats in result.stats.items()]


TARGET_FAMILIES: tuple[Family[TargetResult], ...] = (
    Family(
        "emr_serverless_up", "gauge",
        "1 if the last collection of the target completed without an error; a call AWS throttles or the rate "
        "limit defers is none (its objects are served as last known: see stale_objects and the age gauges).",
        value(lambda t, now: 1.0 if t.up else 0.0),
    ),
    Family(
        "emr_serverless_collection_duration_seconds", "gauge", "Wall time of the last collection of the target.",
        value(lambda t, now: t.duration_seconds),
        unit="seconds",
    ),
    Family(
        "emr_serverless_last_collection_timestamp_seconds", "gauge",
        "End of the last collection of the target, complete or not, in Unix seconds: how old the data is.",
        value(lambda t, now: t.finished_at),
        unit="seconds",
    ),
    Family(
        "emr_serverless_last_success_timestamp_seconds", "gauge",
        "End of the last complete collection of the target, in Unix seconds.",
        value(lambda t, now: t.last_success),
        unit="seconds",
    ),
    Family(
        "emr_serverless_api_requests_total", "counter",
        "EMR Serverless API requests sent, retries included, by operation and outcome (ok, the AWS error code, "
        "or the exporter's own: InvalidResponse, ResponseTooLarge, PageLimitExceeded, Timeout, Other).",
        lambda t, now: (((op, outcome), float(count)) for (op, outcome), count in sorted(t.api_calls.items())),
        ("operation", "outcome"),
    ),
    Family(
        "emr_serverless_invalid_objects_total", "counter",
        "Applications (or their GetApplication answer), sessions and job runs dropped because the API returned "
        "them malformed, by kind.",
        # Every kind from the start, so that the first dropped object is an increase() alerts can see.
        lambda t, now: (((kind,), float(t.invalid_objects.get(kind, 0))) for kind in INVALID_KINDS),
        ("kind",),
    ),
    Family(
        "emr_serverless_cache_hits_total", "counter",
        "Detail calls (GetSession, GetJobRun) saved by serving objects in a final state, which never change, "
        "from memory, by kind.",
        per_kind(lambda s: s.cache_hits), ("kind",),
    ),
    Family(
        "emr_serverless_stale_objects", "gauge",
        "Active objects the last collection did not refresh (the rate limit, AWS throttling, the deadline or a "
        "failed call), by kind: served as last known, or not yet at all when never fetched.",
        per_kind(lambda s: s.stale), ("kind",),
    ),
    Family(
        "emr_serverless_oldest_object_data_age_seconds", "gauge",
        "Age of the oldest active object data exported, by kind: seconds since it was last fetched.",
        per_kind(lambda s: s.oldest_data_age), ("kind",),
        unit="seconds",
    ),
    Family(
        "emr_serverless_oldest_listing_age_seconds", "gauge",
        "Seconds since the least recently listed application's last complete listing of that kind (the listing "
        "quota, throttling or failures hold it back).",
        per_kind(lambda s: s.oldest_listing_age), ("kind",),
        unit="seconds",
    ),
    Family(
        "emr_serverless_dropped_objects_total", "counter",
        "Objects in a final state not exported because their application had more of that kind than "
        "discovery.max_terminated_<kind>s_per_application (the least recently ended go); never fetched, by kind.",
        per_kind(lambda s: s.dropped), ("kind",),
    ),
)

# The kind label of emr_serverless_exported_series: each kind of object, the applications' families, and the
# target's own self-metrics (these series included).
EXPORTED_KINDS = (*(kind.name for kind in KINDS), "application", "target")


@dataclass(frozen=True)
class ExportedSeries:
    """A target's series in one exposition, by the kind label of ``EXPORTED_SERIES_FAMILIES``."""

    counts: Mapping[str, int]


EXPORTED_SERIES_FAMILIES: tuple[Family[ExportedSeries], ...] = (
    Family(
        "emr_serverless_exported_series", "gauge",
        "Series this exposition holds for the target, by kind: each kind of object's families, the "
        "applications' (application) and the exporter's own per target (target).",
        lambda exported, now: [((kind,), float(exported.counts.get(kind, 0))) for kind in EXPORTED_KINDS],
        ("kind",),
    ),
)

EXPOSITION_FAMILIES: tuple[Family[Mapping[str, int]], ...] = (
    Family(
        "emr_serverless_exposition_bytes", "gauge",
        "Size of the last body served in each format (text or openmetrics), uncompressed, rendered from an earlier "
        "collection than this one; absent until one was.",
        lambda sizes, now: [((fmt,), float(size)) for fmt, size in sorted(sizes.items())], ("format",),
        unit="bytes",
    ),
)


class ExpositionSizes:
    """What ``emr_serverless_exposition_bytes`` reports. The writers record each body's size; every rendering of
    one collection's results reports the sizes recorded before that collection was first rendered, so that the
    direct writer and the generic path write the same value for the same results."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}
        self._reported: dict[str, int] = {}
        self._results: Sequence[TargetResult] | None = None

    def reported(self, results: Sequence[TargetResult] | None) -> dict[str, int]:
        """The sizes to report for ``results``: the runner's latest, the very object (None before the first)."""
        with self._lock:
            if results is not self._results:  # a new collection: report what was rendered up to now
                self._results = results
                self._reported = dict(self._last)
            return self._reported

    def rendered(self, fmt: str, size: int) -> None:
        with self._lock:
            self._last[fmt] = size


BUILD_INFO_NAME = "emr_serverless_build_info"
BUILD_INFO_HELP = "Version of the exporter and its main libraries; always 1."
BUILD_FAMILIES: tuple[Family[LabelValues], ...] = (
    Family(BUILD_INFO_NAME, "gauge", BUILD_INFO_HELP, info(lambda versions: versions),
           ("version", "python_version", "boto3_version")),
)


def build_versions() -> LabelValues:
    return (__version__, platform.python_version(), boto3.__version__)


# The exporter's own metrics: never matched by metrics.allowlist / denylist's regular expressions, exported
# whatever the allowlist says; a denylist entry naming one exactly drops it, but for these two.
SELF_FAMILY_NAMES = frozenset(
    family.name for families in (TARGET_FAMILIES, EXPORTED_SERIES_FAMILIES, EXPOSITION_FAMILIES, BUILD_FAMILIES)
    for family in families
)
ALWAYS_EXPORTED = frozenset({"emr_serverless_up", BUILD_INFO_NAME})
