"""The exporter's own metrics: per target, how its last collection went and what it cost; and the build."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable

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
)

BUILD_INFO_NAME = "emr_serverless_build_info"
BUILD_INFO_HELP = "Version of the exporter and its main libraries; always 1."
BUILD_FAMILIES: tuple[Family[LabelValues], ...] = (
    Family(BUILD_INFO_NAME, "gauge", BUILD_INFO_HELP, info(lambda versions: versions),
           ("version", "python_version", "boto3_version")),
)


def build_versions() -> LabelValues:
    return (__version__, platform.python_version(), boto3.__version__)
