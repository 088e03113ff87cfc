"""The metrics of an application: its summary, per-state counts of each kind's exported objects, its
prices (``metrics.prices``) and its capacity (GetApplication)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.metrics.families import BYTES_PER_GB, Family, ObjSample, info, state_set, value
from exporter.metrics.prices import Price
from exporter.metrics.tables import KIND_TABLES
from exporter.model.kinds import APPLICATION_STATES, ObjectKind
from exporter.model.session import (
    Application,
    ApplicationDetail,
    InitialCapacity,
    Resources,
    SchedulerConfiguration,
)


@dataclass(frozen=True)
class ApplicationView:
    """An application with the objects exported for it (for the per-state counts)."""

    summary: Application
    # Per kind collected: its exported objects by state (a kind not collected has no count series).
    states: Mapping[ObjectKind[Any, Any], Mapping[str, int]]
    # Per kind collected, once the application was listed completely: objects seen ending, by final state.
    ended: Mapping[ObjectKind[Any, Any], Mapping[str, int]]
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


def ended_by_state(kind: ObjectKind[Any, Any]) -> Callable[[ApplicationView, float], Iterable[ObjSample]]:
    """Objects of ``kind`` seen ending, by final state, zeros included from the application's first complete
    listing on (so that ``increase()`` sees the first one end)."""

    def samples(app: ApplicationView, now: float) -> Iterable[ObjSample]:
        counts = app.ended.get(kind)
        if counts is None:
            return ()
        states = [*(s for s in kind.states if kind.is_final(s)), *sorted(set(counts) - kind.final_states)]
        return [((state,), float(counts.get(state, 0))) for state in states]

    return samples


def _scheduler(read: Callable[[SchedulerConfiguration], float | None]) -> Callable[
        [ApplicationView, float], float | None]:
    def sample(app: ApplicationView, now: float) -> float | None:
        scheduler = app.detail.scheduler if app.detail else None
        return read(scheduler) if scheduler else None

    return sample


def count_by_state(kind: ObjectKind[Any, Any]) -> Callable[[ApplicationView, float], Iterable[ObjSample]]:
    """The application's exported objects of ``kind`` by state: every known state, zeros included, then
    any state AWS added later."""

    def samples(app: ApplicationView, now: float) -> Iterable[ObjSample]:
        counts = app.states.get(kind)
        if counts is None:
            return ()
        states = [*kind.states, *sorted(set(counts) - set(kind.states))]
        return [((state,), float(counts.get(state, 0))) for state in states]

    return samples


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
    *(Family(table.count_family, "gauge", table.count_help, count_by_state(table.kind), ("state",))
      for table in KIND_TABLES),
    *(Family(table.ended_family, "counter", table.ended_help, ended_by_state(table.kind), ("state",))
      for table in KIND_TABLES if table.ended_family),
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
        "emr_serverless_application_max_concurrent_runs", "gauge",
        "Job runs the application runs at once at most; more wait QUEUED (schedulerConfiguration.maxConcurrentRuns).",
        value(_scheduler(lambda s: s.max_concurrent_runs)),
    ),
    Family(
        "emr_serverless_application_queue_timeout_seconds", "gauge",
        "Time a job run may wait QUEUED before it fails (schedulerConfiguration.queueTimeoutMinutes x 60).",
        value(_scheduler(lambda s: s.queue_timeout_minutes * 60 if s.queue_timeout_minutes is not None else None)),
        unit="seconds",
    ),
    Family(
        "emr_serverless_application_auto_stop_idle_timeout_seconds", "gauge",
        "Idle time after which the application stops by itself (absent when auto-stop is off).",
        value(_auto_stop_timeout),
        unit="seconds",
    ),
)
