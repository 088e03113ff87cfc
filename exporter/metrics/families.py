"""The metrics of SPEC section 4, declared once as data.

A session or application metric is one ``Family`` row: name, type, help, extra label names and how
its samples are read from the API object, the way kube-state-metrics declares families over objects.
The tables are pure (object, collection time -> samples); ``Labels`` gives each object's label values.
Two writers read them: ``exporter.render.series`` / ``exporter.render.exposition``, which write the lines directly
and keep each session's until it changes, and ``EmrServerlessCollector``, prometheus-client's generic
path, which the tests hold byte for byte equal to the first.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import boto3
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter import __version__
from exporter.collect.target import CollectionRunner, TargetIdentity, TargetResult
from exporter.common.logs import warn_once
from exporter.config.schema import APPLICATION_STATES, SESSION_STATES, MetricsConfig, tag_label_name
from exporter.metrics.prices import Price, PriceTable
from exporter.model.session import (
    Application,
    ApplicationDetail,
    InitialCapacity,
    Resources,
    ResourceUtilization,
    Session,
    epoch,
)

log = logging.getLogger(__name__)

Obj = TypeVar("Obj")
LabelValues = tuple[str, ...]
# One sample of a family for one object: the values of the family's extra labels, and the value.
ObjSample = tuple[LabelValues, float]

TARGET_LABELS = ("target", "region", "account_id")
APPLICATION_LABELS = (*TARGET_LABELS, "application_id", "application_name")
SESSION_LABELS = (*APPLICATION_LABELS, "session_id", "session_name")


@dataclass(frozen=True)
class Family(Generic[Obj]):
    name: str
    type: Literal["gauge", "counter"]
    help: str
    samples: Callable[[Obj, float], Iterable[ObjSample]]  # (API object, collection time) -> samples
    extra_labels: tuple[str, ...] = ()
    # OpenMetrics' UNIT: the unit suffix of the name (``seconds``, ``byte_seconds``), written in OpenMetrics only.
    unit: str = ""


# --- how values are read from the API --------------------------------------------------------------


def value(read: Callable[[Obj, float], float | None]) -> Callable[[Obj, float], Iterable[ObjSample]]:
    """One sample with no extra labels; absent when ``read`` gives None (AWS returned no value)."""

    def samples(obj: Obj, now: float) -> Iterable[ObjSample]:
        result = read(obj, now)
        return () if result is None else (((), float(result)),)

    return samples


def info(read: Callable[[Obj], LabelValues]) -> Callable[[Obj, float], Iterable[ObjSample]]:
    return lambda obj, now: ((read(obj), 1.0),)


def state_set(
    states: Sequence[str], read: Callable[[Obj], str], kind: str
) -> Callable[[Obj, float], Iterable[ObjSample]]:
    """One series per known state, 1 for the current one; a state AWS adds later is exported as-is."""

    def samples(obj: Obj, now: float) -> Iterable[ObjSample]:
        current = read(obj)
        result = [((state,), 1.0 if state == current else 0.0) for state in states]
        if current not in states:
            warn_once(f"unknown {kind} state exported as-is", state=current)
            result.append(((current,), 1.0))
        return result

    return samples


# AWS's "GB" in EMR Serverless is 2^30 bytes: worker memory is set in the same GB as Spark's
# spark.executor.memory "27g" (a GiB) and AWS's sizing guide puts 27 GB + 10 % overhead in a 30 GB worker;
# the minimum overhead is Spark's 384 MB (MiB). README "Units" says more.
BYTES_PER_GB = 2**30


def hours_as_seconds(
    group: Callable[[Session], ResourceUtilization | None],
    hours: Callable[[ResourceUtilization], float | None],
    factor: float = 1.0,
) -> Callable[[Session, float], float | None]:
    """AWS's vCPU-hours / GB-hours as vCPU-seconds / byte-seconds (``factor`` bytes per GB), so rate()
    gives what is in use now in base units."""

    def read(session: Session, now: float) -> float | None:
        utilization = group(session)
        value = hours(utilization) if utilization is not None else None
        return value * 3600 * factor if value is not None else None

    return read


def idle_seconds(session: Session, now: float) -> float:
    if session.state != "IDLE" or session.idle_since is None:
        return 0.0
    return max(0.0, now - session.idle_since.timestamp())


def idle_timeout_seconds(session: Session, now: float) -> float | None:
    minutes = session.idle_timeout_minutes
    return minutes * 60 if minutes is not None else None


def _used(session: Session) -> ResourceUtilization | None:
    return session.used


def _billed(session: Session) -> ResourceUtilization | None:
    return session.billed


# --- the tables --------------------------------------------------------------------------------------

SESSION_FAMILIES: tuple[Family[Session], ...] = (
    Family(
        "emr_serverless_session_info", "gauge", "Information about the session; always 1.",
        info(lambda s: (s.arn, s.release_label, s.execution_role_arn, s.created_by)),
        ("arn", "release_label", "execution_role_arn", "created_by"),
    ),
    Family(
        "emr_serverless_session_state", "gauge", "Current state of the session: 1 for the current state.",
        state_set(SESSION_STATES, lambda s: s.state, "session"), ("state",),
    ),
    Family(
        "emr_serverless_session_idle_seconds", "gauge",
        "Seconds since the session became idle while it is IDLE, else 0.", value(idle_seconds),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_idle_timeout_seconds", "gauge",
        "Idle time after which AWS stops the session.", value(idle_timeout_seconds),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_created_timestamp_seconds", "gauge",
        "When the session was created, in Unix seconds.", value(lambda s, now: s.created),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_started_timestamp_seconds", "gauge",
        "When the session started, in Unix seconds.", value(lambda s, now: epoch(s.started_at)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_ended_timestamp_seconds", "gauge",
        "When the session ended, in Unix seconds.", value(lambda s, now: s.ended),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_execution_duration_seconds", "gauge",
        "Total execution duration of the session.",
        value(lambda s, now: s.execution_seconds),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_vcpu_seconds_total", "counter",
        "vCPU-seconds the session used (AWS totalResourceUtilization.vCPUHour x 3600).",
        value(hours_as_seconds(_used, lambda u: u.vcpu_hours)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_memory_byte_seconds_total", "counter",
        "Byte-seconds of memory the session used (totalResourceUtilization.memoryGBHour x 3600 x 2^30).",
        value(hours_as_seconds(_used, lambda u: u.memory_gb_hours, BYTES_PER_GB)),
        unit="byte_seconds",
    ),
    Family(
        "emr_serverless_session_storage_byte_seconds_total", "counter",
        "Byte-seconds of storage the session used (totalResourceUtilization.storageGBHour x 3600 x 2^30).",
        value(hours_as_seconds(_used, lambda u: u.storage_gb_hours, BYTES_PER_GB)),
        unit="byte_seconds",
    ),
    Family(
        "emr_serverless_session_billed_vcpu_seconds_total", "counter",
        "vCPU-seconds AWS bills for the session (billedResourceUtilization.vCPUHour x 3600).",
        value(hours_as_seconds(_billed, lambda u: u.vcpu_hours)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_session_billed_memory_byte_seconds_total", "counter",
        "Byte-seconds of memory AWS bills for the session "
        "(billedResourceUtilization.memoryGBHour x 3600 x 2^30).",
        value(hours_as_seconds(_billed, lambda u: u.memory_gb_hours, BYTES_PER_GB)),
        unit="byte_seconds",
    ),
    Family(
        "emr_serverless_session_billed_storage_byte_seconds_total", "counter",
        "Byte-seconds of storage AWS bills for the session "
        "(billedResourceUtilization.storageGBHour x 3600 x 2^30).",
        value(hours_as_seconds(_billed, lambda u: u.storage_gb_hours, BYTES_PER_GB)),
        unit="byte_seconds",
    ),
)


@dataclass(frozen=True)
class ApplicationView:
    """An application with the sessions exported for it (for the per-state session count)."""

    summary: Application
    session_states: Mapping[str, int]
    price: Price | None = None  # for the target's region and the application's architecture
    detail: ApplicationDetail | None = None  # GetApplication's answer, None until a valid one came


def price_per_second(per_hour: Callable[[Price], float], factor: float = 1.0) -> Callable[
        [ApplicationView, float], Iterable[ObjSample]]:
    """A price per vCPU-hour / GB-hour as per vCPU-second / byte-second, the units of the usage counters,
    so that usage x price is money; absent where no price is known."""

    def samples(app: ApplicationView, now: float) -> Iterable[ObjSample]:
        price = app.price
        return () if price is None else (((price.currency,), per_hour(price) / 3600 / factor),)

    return samples


def maximum(read: Callable[[Resources], float | None]) -> Callable[[ApplicationView, float], Iterable[ObjSample]]:
    """One sample of the application's maximum capacity; absent when AWS sets no maximum."""

    def sample(app: ApplicationView, now: float) -> float | None:
        capacity = app.detail.maximum_capacity if app.detail else None
        return read(capacity) if capacity else None

    return value(sample)


def per_worker_type(
    read: Callable[[InitialCapacity], float | None],
) -> Callable[[ApplicationView, float], Iterable[ObjSample]]:
    """One sample per worker type of the application's initial capacity (none without one)."""

    def samples(app: ApplicationView, now: float) -> Iterable[ObjSample]:
        workers = app.detail.initial_capacity if app.detail else {}
        found = ((worker_type, read(initial)) for worker_type, initial in workers.items())
        return [((worker_type,), float(result)) for worker_type, result in found if result is not None]

    return samples


def worker(read: Callable[[Resources], float | None]) -> Callable[[InitialCapacity], float | None]:
    """``read`` of a worker type's workerConfiguration; None where AWS gives none."""
    return lambda initial: read(initial.worker) if initial.worker else None


def gigabytes(read: Callable[[Resources], float | None]) -> Callable[[Resources], float | None]:
    """AWS's GB (an optional member: None stays None) in bytes."""

    def in_bytes(resources: Resources) -> float | None:
        gb = read(resources)
        return gb * BYTES_PER_GB if gb is not None else None

    return in_bytes


def _auto_start(app: ApplicationView, now: float) -> float | None:
    auto_start = app.detail.auto_start if app.detail else None
    return float(auto_start.enabled) if auto_start else None


def _auto_stop(app: ApplicationView, now: float) -> float | None:
    auto_stop = app.detail.auto_stop if app.detail else None
    return float(auto_stop.enabled) if auto_stop else None


def _auto_stop_timeout(app: ApplicationView, now: float) -> float | None:
    auto_stop = app.detail.auto_stop if app.detail else None
    minutes = auto_stop.idle_timeout_minutes if auto_stop and auto_stop.enabled else None
    return minutes * 60.0 if minutes is not None else None


def _session_counts(app: ApplicationView, now: float) -> Iterable[ObjSample]:
    states = [*SESSION_STATES, *sorted(set(app.session_states) - set(SESSION_STATES))]
    return [((state,), float(app.session_states.get(state, 0))) for state in states]


APPLICATION_FAMILIES: tuple[Family[ApplicationView], ...] = (
    Family(
        "emr_serverless_application_info", "gauge", "Information about the application; always 1.",
        info(lambda a: (a.summary.arn, a.summary.type, a.summary.release_label, a.summary.architecture)),
        ("arn", "type", "release_label", "architecture"),
    ),
    Family(
        "emr_serverless_application_state", "gauge", "Current state of the application: 1 for the current state.",
        state_set(APPLICATION_STATES, lambda a: a.summary.state, "application"), ("state",),
    ),
    Family(
        "emr_serverless_application_sessions", "gauge", "Exported sessions of the application by state.",
        _session_counts, ("state",),
    ),
    # Prices (metrics.prices): billed use x price is money, e.g. billed_vcpu_seconds_total x this.
    Family(
        "emr_serverless_application_price_per_vcpu_second", "gauge",
        "Price of one vCPU-second for the application's region and architecture (metrics.prices).",
        price_per_second(lambda p: p.vcpu_hour), ("currency",),
    ),
    Family(
        "emr_serverless_application_price_per_memory_byte_second", "gauge",
        "Price of one byte-second of memory for the application's region and architecture (metrics.prices).",
        price_per_second(lambda p: p.memory_gb_hour, BYTES_PER_GB), ("currency",),
    ),
    Family(
        "emr_serverless_application_price_per_storage_byte_second", "gauge",
        "Price of one byte-second of storage for the application's region and architecture (metrics.prices).",
        price_per_second(lambda p: p.storage_gb_hour, BYTES_PER_GB), ("currency",),
    ),
    # From GetApplication, asked when the application is first seen or its updatedAt changes.
    Family(
        "emr_serverless_application_maximum_capacity_vcpus", "gauge",
        "vCPUs the application's workers may use together at most (maximumCapacity.cpu).",
        maximum(lambda capacity: capacity.vcpus),
    ),
    Family(
        "emr_serverless_application_maximum_capacity_memory_bytes", "gauge",
        "Memory the application's workers may use together at most (maximumCapacity.memory).",
        maximum(lambda capacity: capacity.memory_gb * BYTES_PER_GB),
        unit="bytes",
    ),
    Family(
        "emr_serverless_application_maximum_capacity_disk_bytes", "gauge",
        "Disk the application's workers may use together at most (maximumCapacity.disk).",
        maximum(gigabytes(lambda capacity: capacity.disk_gb)),
        unit="bytes",
    ),
    Family(
        "emr_serverless_application_initial_capacity_workers", "gauge",
        "Pre-initialized workers of the application by worker type (initialCapacity.workerCount).",
        per_worker_type(lambda initial: initial.worker_count), ("worker_type",),
    ),
    Family(
        "emr_serverless_application_initial_capacity_worker_vcpus", "gauge",
        "vCPUs of each pre-initialized worker by worker type (initialCapacity.workerConfiguration.cpu).",
        per_worker_type(worker(lambda resources: resources.vcpus)), ("worker_type",),
    ),
    Family(
        "emr_serverless_application_initial_capacity_worker_memory_bytes", "gauge",
        "Memory of each pre-initialized worker by worker type (initialCapacity.workerConfiguration.memory).",
        per_worker_type(worker(lambda resources: resources.memory_gb * BYTES_PER_GB)), ("worker_type",),
        unit="bytes",
    ),
    Family(
        "emr_serverless_application_initial_capacity_worker_disk_bytes", "gauge",
        "Disk of each pre-initialized worker by worker type (initialCapacity.workerConfiguration.disk).",
        per_worker_type(worker(gigabytes(lambda resources: resources.disk_gb))), ("worker_type",),
        unit="bytes",
    ),
    Family(
        "emr_serverless_application_auto_start_enabled", "gauge",
        "1 if the application starts by itself when a job or session is submitted, else 0.", value(_auto_start),
    ),
    Family(
        "emr_serverless_application_auto_stop_enabled", "gauge",
        "1 if the application stops by itself after being idle, else 0.", value(_auto_stop),
    ),
    Family(
        "emr_serverless_application_auto_stop_idle_timeout_seconds", "gauge",
        "Idle time after which the application stops by itself (absent when auto-stop is off).",
        value(_auto_stop_timeout),
        unit="seconds",
    ),
)

TARGET_FAMILIES: tuple[Family[TargetResult], ...] = (
    Family(
        "emr_serverless_up", "gauge", "1 if the last collection of the target completed without an error.",
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
        "EMR Serverless API calls made, by operation and outcome (ok or the AWS error code).",
        lambda t, now: (((op, outcome), float(count)) for (op, outcome), count in sorted(t.api_calls.items())),
        ("operation", "outcome"),
    ),
    Family(
        "emr_serverless_session_cache_hits_total", "counter",
        "GetSession calls saved by serving FAILED/TERMINATED sessions, which never change, from memory.",
        value(lambda t, now: float(t.cache_hits)),
    ),
    Family(
        "emr_serverless_invalid_objects_total", "counter",
        "Applications (or their GetApplication answer) and sessions dropped because the API returned them "
        "malformed, by kind.",
        # Both kinds from the start, so that the first dropped object is an increase() alerts can see.
        lambda t, now: (((kind,), float(t.invalid_objects.get(kind, 0))) for kind in ("application", "session")),
        ("kind",),
    ),
    Family(
        "emr_serverless_stale_sessions", "gauge",
        "Active sessions the last collection did not refresh (the rate limit, the deadline or a failed call): "
        "served as last known, or not yet at all when never fetched.",
        value(lambda t, now: float(t.stale_sessions)),
    ),
    Family(
        "emr_serverless_oldest_session_data_age_seconds", "gauge",
        "Age of the oldest active session data exported: seconds since it was last fetched.",
        value(lambda t, now: t.oldest_data_age),
        unit="seconds",
    ),
)

TAGS_FAMILY_NAME = "emr_serverless_session_tags"
TAGS_FAMILY_HELP = "The session's AWS tags as labels tag_<key>; always 1."
BUILD_INFO_NAME = "emr_serverless_build_info"
BUILD_INFO_HELP = "Version of the exporter and its main libraries; always 1."
BUILD_FAMILIES: tuple[Family[LabelValues], ...] = (
    Family(BUILD_INFO_NAME, "gauge", BUILD_INFO_HELP, info(lambda versions: versions),
           ("version", "python_version", "boto3_version")),
)


def session_clock(session: Session, now: float) -> float | None:
    """The collection time as far as a session's samples read it: ``now`` for an IDLE session with
    ``idleSince`` (its idle seconds grow), None for every other, whose samples do not read the time.
    A new family that reads ``now`` must say so here (tests/unit/test_metrics.py checks the tables)."""
    return now if session.state == "IDLE" and session.idle_since is not None else None


def metric_table() -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of every metric, as the README's metric table lists them."""

    def labels(group: str, extra: Sequence[str]) -> str:
        return " + ".join([group, ", ".join(f"`{name}`" for name in extra)]) if extra else group

    rows: list[tuple[str, str, str, str]] = []
    groups: list[tuple[str, Sequence[Family[Any]]]] = [
        ("S", SESSION_FAMILIES), ("A", APPLICATION_FAMILIES), ("T", TARGET_FAMILIES)
    ]
    for group, families in groups:
        rows += [(f.name, f.type, labels(group, f.extra_labels), f.help) for f in families]
    tags_labels = "T + `application_id`, `session_id`, one `tag_<key>` per tag"
    rows.append((TAGS_FAMILY_NAME, "gauge", tags_labels, TAGS_FAMILY_HELP))
    rows.append((BUILD_INFO_NAME, "gauge", "`version`, `python_version`, `boto3_version`", BUILD_INFO_HELP))
    return rows


# --- label values -------------------------------------------------------------------------------------

# The objects of one group of families, each with its label values and the collection time.
Rows = list[tuple[LabelValues, Obj, float]]


@dataclass(frozen=True)
class Group(Generic[Obj]):
    """Families over one kind of object, which all carry the same labels first."""

    label_names: tuple[str, ...]
    families: tuple[Family[Obj], ...]
    rows: Rows[Obj]


class Labels:
    """The label values of every series (SPEC section 4's `T`, `A` and `S`), from a collection's results."""

    def __init__(self, config: MetricsConfig) -> None:
        self.tag_keys = config.tag_labels
        self.tags_info_metric = config.tags_info_metric
        self.prices = PriceTable(config.prices)
        self.session_names = (*SESSION_LABELS, *(tag_label_name(key) for key in self.tag_keys))

    def sessions(self, result: TargetResult) -> Iterator[tuple[LabelValues, Session]]:
        names = application_names(result)
        for session in result.sessions:
            yield self.session(result.identity, names.get(session.application_id, ""), session), session

    def session(self, identity: TargetIdentity, application_name: str, session: Session) -> LabelValues:
        """A session's `S` label values: all it depends on is in the arguments."""
        tags = session.tags
        return (
            identity.name, identity.region, identity.account_id, session.application_id, application_name,
            session.session_id, session.name, *[tags.get(key, "") for key in self.tag_keys],
        )

    @staticmethod
    def tags(identity: TargetIdentity, session: Session) -> dict[str, str]:
        """The labels of a session's ``emr_serverless_session_tags`` series: one per tag."""
        labels = dict(zip(TARGET_LABELS, _target_values(identity), strict=True))
        labels.update(application_id=session.application_id, session_id=session.session_id)
        for key, tag_value in session.tags.items():  # sorted by AWS's key (exporter.model.session)
            name = tag_label_name(key)
            if name in labels:
                warn_once("tag keys collide on one label name; the first in sorted order is exported",
                          label=name, dropped_key=key)
                continue
            labels[name] = tag_value
        return labels

    def other_groups(self, results: Sequence[TargetResult]) -> list[Group[Any]]:
        """Everything but the sessions' families, in the order they are exposed."""
        applications: Rows[ApplicationView] = []
        for result in results:
            target = _target_values(result.identity)
            counts: dict[str, dict[str, int]] = {app.id: {} for app in result.applications}
            for session in result.sessions:
                by_state = counts.setdefault(session.application_id, {})
                by_state[session.state] = by_state.get(session.state, 0) + 1
            for app in result.applications:
                view = ApplicationView(app, counts[app.id], self.prices.get(result.identity.region, app.architecture),
                                       result.application_details.get(app.id))
                applications.append(((*target, app.id, app.name), view, result.finished_at))
        targets = [(_target_values(result.identity), result, result.finished_at) for result in results]
        return [
            Group(APPLICATION_LABELS, APPLICATION_FAMILIES, applications),
            Group(TARGET_LABELS, TARGET_FAMILIES, targets),
            Group((), BUILD_FAMILIES, [((), build_versions(), 0.0)]),
        ]


def application_names(result: TargetResult) -> dict[str, str]:
    return {app.id: app.name for app in result.applications}


def _target_values(identity: TargetIdentity) -> LabelValues:
    return (identity.name, identity.region, identity.account_id)


def build_versions() -> LabelValues:
    return (__version__, platform.python_version(), boto3.__version__)


# --- the generic path: prometheus-client families -------------------------------------------------------


def _new_family(spec: Family[Any], label_names: Sequence[str]) -> GaugeMetricFamily | CounterMetricFamily:
    labels = [*label_names, *spec.extra_labels]
    if spec.type == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels, unit=spec.unit)


def _fill(group: Group[Any]) -> list[Metric]:
    families = [_new_family(spec, group.label_names) for spec in group.families]
    for labels, obj, now in group.rows:
        for spec, family in zip(group.families, families, strict=True):
            for extra, sample_value in spec.samples(obj, now):
                family.add_metric([*labels, *extra], sample_value)
    return list[Metric](families)


class EmrServerlessCollector(Collector):
    """Every family of the exporter as prometheus-client objects, over the runner's latest results (it
    never calls AWS itself): the generic path. ``exporter.render.exposition`` writes the same bytes directly
    and keeps this for the formats it does not write itself; the tests hold the two equal."""

    def __init__(self, runner: CollectionRunner, metrics_config: MetricsConfig) -> None:
        self._runner = runner
        self._labels = Labels(metrics_config)

    def describe(self) -> Iterator[Metric]:
        # Declaring nothing keeps registration from running a collection against AWS.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        results = self._runner.latest or []
        labels = self._labels
        rows: Rows[Session] = [
            (values, session, result.finished_at) for result in results for values, session in labels.sessions(result)
        ]
        yield from _fill(Group(labels.session_names, SESSION_FAMILIES, rows))
        if labels.tags_info_metric:
            family = Metric(TAGS_FAMILY_NAME, TAGS_FAMILY_HELP, "gauge")
            for result in results:
                for session in result.sessions:  # label names differ from session to session
                    family.samples.append(Sample(TAGS_FAMILY_NAME, labels.tags(result.identity, session), 1.0))
            yield family
        for group in labels.other_groups(results):
            yield from _fill(group)
