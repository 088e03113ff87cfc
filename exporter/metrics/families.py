"""Metric families declared as data: a ``Family`` row is name, type, help, extra label names and how
its samples are read from an API object, the way kube-state-metrics declares families over objects.
A ``KindTable`` is one kind's families (``exporter.metrics.sessions``, ...) with what its series share.

The tables are pure (object, collection time -> samples). Two writers read them:
``exporter.render.series`` / ``exporter.render.exposition``, which write the lines directly and keep each
object's until it changes, and ``exporter.metrics.collector``, prometheus-client's generic path, which
the tests hold byte for byte equal to the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from exporter.common.logs import warn_once
from exporter.model.kinds import ObjectKind
from exporter.model.session import ResourceUtilization

Obj = TypeVar("Obj")
LabelValues = tuple[str, ...]
# One sample of a family for one object: the values of the family's extra labels, and the value.
ObjSample = tuple[LabelValues, float]

TARGET_LABELS = ("target", "region", "account_id")
APPLICATION_LABELS = (*TARGET_LABELS, "application_id", "application_name")


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
# the minimum overhead is Spark's 384 MB (MiB). docs/metrics.md "Units" says more.
BYTES_PER_GB = 2**30


def hours_as_seconds(
    group: Callable[[Obj], ResourceUtilization | None],
    hours: Callable[[ResourceUtilization], float | None],
    factor: float = 1.0,
) -> Callable[[Obj, float], float | None]:
    """AWS's vCPU-hours / GB-hours as vCPU-seconds / byte-seconds (``factor`` bytes per GB), so rate()
    gives what is in use now in base units."""

    def read(obj: Obj, now: float) -> float | None:
        utilization = group(obj)
        value = hours(utilization) if utilization is not None else None
        return value * 3600 * factor if value is not None else None

    return read


def usage_families(
    prefix: str, noun: str, used: Callable[[Obj], ResourceUtilization | None],
    billed: Callable[[Obj], ResourceUtilization | None],
) -> tuple[Family[Obj], ...]:
    """The six use and billed-use counters of a kind whose detail carries AWS's totalResourceUtilization and
    billedResourceUtilization: ``prefix`` ``emr_serverless_session``, ``noun`` "session"."""
    families: list[Family[Obj]] = []
    groups = (("", "totalResourceUtilization", used), ("billed_", "billedResourceUtilization", billed))
    for billing, group, read in groups:
        verb = f"AWS bills for the {noun}" if billing else f"the {noun} used"
        families += [
            Family(f"{prefix}_{billing}vcpu_seconds_total", "counter",
                   f"vCPU-seconds {verb} ({'' if billing else 'AWS '}{group}.vCPUHour x 3600).",
                   value(hours_as_seconds(read, lambda u: u.vcpu_hours)), unit="seconds"),
            Family(f"{prefix}_{billing}memory_byte_seconds_total", "counter",
                   f"Byte-seconds of memory {verb} ({group}.memoryGBHour x 3600 x 2^30).",
                   value(hours_as_seconds(read, lambda u: u.memory_gb_hours, BYTES_PER_GB)), unit="byte_seconds"),
            Family(f"{prefix}_{billing}storage_byte_seconds_total", "counter",
                   f"Byte-seconds of storage {verb} ({group}.storageGBHour x 3600 x 2^30).",
                   value(hours_as_seconds(read, lambda u: u.storage_gb_hours, BYTES_PER_GB)), unit="byte_seconds"),
        ]
    return tuple(families)


def _no_clock(obj: Any, now: float) -> float | None:
    return None


@dataclass(frozen=True)
class KindTable(Generic[Obj]):
    """The metrics of one kind of object: one series set per exported object, labelled `A` + its id and
    name + one ``tag_<key>`` per ``metrics.tag_labels`` entry, an info metric of all its tags, and a count
    by state per application."""

    kind: ObjectKind[Any, Any]
    id_label: str  # session_id
    name_label: str  # session_name
    families: tuple[Family[Obj], ...]
    tags_family: str
    tags_help: str
    count_family: str  # per application, exported objects by state
    count_help: str
    # Per application, objects seen reaching each final state since the start (none: not exported).
    ended_family: str = ""
    ended_help: str = ""
    # The collection time as far as an object's samples read it, or None where none does: an object whose
    # samples read the time is rendered again at every collection. A family that reads ``now`` must say
    # so here (tests/unit/test_metrics.py checks the tables).
    clock: Callable[[Obj, float], float | None] = _no_clock

    @property
    def label_names(self) -> tuple[str, ...]:
        return (*APPLICATION_LABELS, self.id_label, self.name_label)


def labels_text(group: str, extra: Sequence[str]) -> str:
    """A label group and extra labels as the metric tables in the docs write them: "S + `state`"."""
    return " + ".join([group, ", ".join(f"`{name}`" for name in extra)]) if extra else group


def rows(group: str, families: Iterable[Family[Any]]) -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of each family, for the docs' metric table."""
    return [(f.name, f.type, labels_text(group, f.extra_labels), f.help) for f in families]
