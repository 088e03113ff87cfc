"""The validation boundary: what the exporter accepts from the EMR Serverless API, declared once.

boto3 hands back whatever the endpoint sent (numbers as strings, ``null`` states, NaN, tags as
lists...). Every object is converted here, by msgspec, into a typed struct whose fields are checked:
ids match AWS's pattern, numbers are finite and in range, timestamps are sane, strings that become
label values are made safe for any exposition format. An object that fails is ``InvalidObject``,
with one line saying where; the caller drops and counts it. Nothing past this module sees raw API data.

Field names are Python's; ``name=`` says which wire member each one reads.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct, field

# A label value longer than this is cut: a hostile endpoint must not make every series megabytes long.
MAX_LABEL_VALUE_CHARS = 1024
REPLACEMENT = "\ufffd"
# Sane timestamps: AWS launched EMR Serverless in 2022; far-future or negative ones are corrupt.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)

# Control characters but the line feed, and lone surrogates. Every exposition format escapes a line feed in a
# label value as ``\n`` and every parser reads it back; the others have no escape (a raw CR splits a line).
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9a-z]+$")]
Text = Annotated[str, Meta(max_length=64 * 1024)]  # label text; cut to MAX_LABEL_VALUE_CHARS after checks
State = Annotated[str, Meta(min_length=1, max_length=64)]
Hours = Annotated[float, Meta(ge=0, le=1e12)]  # NaN fails both bounds; so does infinity
Count = Annotated[float, Meta(ge=0, le=1e12)]

# A capacity string: a number, optional blanks, the unit ("400 vCPU", "3000 GB", "20GB", "16").
# botocore's model allows integers only; a fraction is accepted all the same (nothing to lose by it).
# ASCII digits and blanks only: "\u0664\u0660\u0660" (Arabic-Indic 400) is not AWS's format.
_QUANTITY = re.compile(r"\s*(\d{1,12}(?:\.\d{1,6})?)\s*([A-Za-z]*)\s*", re.ASCII)


class InvalidObject(ValueError):
    """An API object that does not hold what the model says; ``str()`` says which field and why."""


def label_safe(text: str) -> str:
    """``text`` as a valid label value in every format: control characters other than the line feed, and
    lone surrogates (invalid UTF-8 from the wire), become U+FFFD, and it is cut at ``MAX_LABEL_VALUE_CHARS``.
    A line feed is kept: the formats escape it as ``\\n``, so the value read back is the one AWS holds."""
    if len(text) > MAX_LABEL_VALUE_CHARS:
        text = text[:MAX_LABEL_VALUE_CHARS]
    return _UNSAFE.sub(REPLACEMENT, text) if _UNSAFE.search(text) else text


def _check_time(value: datetime | None, name: str) -> None:
    if value is None:
        return
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"`{name}` out of range: {value.isoformat()}")


def epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # botocore's parser gives aware datetimes; be exact either way
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


class ResourceUtilization(Struct, gc=False):
    vcpu_hours: Hours | None = field(default=None, name="vCPUHour")
    memory_gb_hours: Hours | None = field(default=None, name="memoryGBHour")
    storage_gb_hours: Hours | None = field(default=None, name="storageGBHour")


class Application(Struct, gc=False):
    """An ApplicationSummary from ListApplications."""

    id: Id
    arn: Text
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    name: Text = ""
    type: Text = ""
    release_label: Text = field(default="", name="releaseLabel")
    architecture: Text = ""

    def __post_init__(self) -> None:
        _check_time(self.created_at, "createdAt")
        _check_time(self.updated_at, "updatedAt")
        for attr in ("arn", "state", "name", "type", "release_label", "architecture"):
            setattr(self, attr, label_safe(getattr(self, attr)))


class SessionSummary(Struct, gc=False):
    """A SessionSummary from ListSessions: enough to decide whether GetSession is worth a call."""

    application_id: Id = field(name="applicationId")
    session_id: Id = field(name="sessionId")
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")

    def __post_init__(self) -> None:
        _check_time(self.created_at, "createdAt")
        _check_time(self.updated_at, "updatedAt")
        self.state = label_safe(self.state)

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()


class Session(Struct, gc=False):
    """A Session from GetSession, with the members the metrics read."""

    application_id: Id = field(name="applicationId")
    session_id: Id = field(name="sessionId")
    arn: Text
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    name: Text = ""
    release_label: Text = field(default="", name="releaseLabel")
    execution_role_arn: Text = field(default="", name="executionRoleArn")
    created_by: Text = field(default="", name="createdBy")
    started_at: datetime | None = field(default=None, name="startedAt")
    ended_at: datetime | None = field(default=None, name="endedAt")
    idle_since: datetime | None = field(default=None, name="idleSince")
    idle_timeout_minutes: Count | None = field(default=None, name="idleTimeoutMinutes")
    execution_seconds: Count | None = field(default=None, name="totalExecutionDurationSeconds")
    used: ResourceUtilization | None = field(default=None, name="totalResourceUtilization")
    billed: ResourceUtilization | None = field(default=None, name="billedResourceUtilization")
    tags: Annotated[dict[Text, Text], Meta(max_length=200)] = {}

    def __post_init__(self) -> None:
        for name, value in (("createdAt", self.created_at), ("updatedAt", self.updated_at),
                            ("startedAt", self.started_at), ("endedAt", self.ended_at),
                            ("idleSince", self.idle_since)):
            _check_time(value, name)
        for attr in ("arn", "state", "name", "release_label", "execution_role_arn", "created_by"):
            setattr(self, attr, label_safe(getattr(self, attr)))
        if self.tags:
            # In AWS's key order, so that of keys that collide (here, or on one label name later) the first
            # in sorted order wins, as SPEC section 3 says; the order of this dict is kept from here on.
            safe: dict[str, str] = {}
            for key in sorted(self.tags):
                safe.setdefault(label_safe(key), label_safe(self.tags[key]))
            self.tags = safe

    @property
    def created(self) -> float:
        return self.created_at.timestamp()

    @property
    def ended(self) -> float | None:
        return epoch(self.ended_at)

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()


def quantity(text: str, units: tuple[str, ...], *, unit_required: bool) -> float:
    """The number of a capacity string whose unit (any case) is one of ``units``, or absent when
    ``unit_required`` is false (the model's pattern makes the unit optional for cpu and memory)."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a capacity: {text[:32]!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit.lower() not in units and (unit or unit_required):
        raise ValueError(f"unit is not {' or '.join(units)}: {text[:32]!r}")
    if number <= 0:
        raise ValueError(f"capacity {text[:32]!r} is not positive")
    return number


CapacityText = Annotated[str, Meta(min_length=1, max_length=32)]


class Resources(Struct, gc=False):
    """AWS's MaximumAllowedResources / WorkerResourceConfig: capacities as text, checked and read here in
    AWS's units (vCPUs, GB; exporter.metrics.families turns GB into bytes)."""

    cpu: CapacityText
    memory: CapacityText
    disk: CapacityText | None = None

    def __post_init__(self) -> None:
        # Read once here, so that a malformed capacity fails at the boundary, not while rendering.
        _ = self.vcpus, self.memory_gb, self.disk_gb

    @property
    def vcpus(self) -> float:
        return quantity(self.cpu, ("vcpu",), unit_required=False)

    @property
    def memory_gb(self) -> float:
        return quantity(self.memory, ("gb",), unit_required=False)

    @property
    def disk_gb(self) -> float | None:
        return None if self.disk is None else quantity(self.disk, ("gb",), unit_required=True)


WorkerType = Annotated[str, Meta(min_length=1, max_length=64)]


class InitialCapacity(Struct, gc=False):
    """Pre-initialized workers of one type (Driver, Executor, TezTask...)."""

    worker_count: Annotated[int, Meta(ge=0, le=10_000_000)] = field(name="workerCount")
    worker: Resources | None = field(default=None, name="workerConfiguration")


class AutoStart(Struct, gc=False):
    enabled: bool = True  # AWS's default when the member is absent


class AutoStop(Struct, gc=False):
    enabled: bool = True
    idle_timeout_minutes: Annotated[int, Meta(ge=0, le=1_000_000)] | None = field(
        default=None, name="idleTimeoutMinutes"
    )


class ApplicationDetail(Struct, gc=False):
    """An Application from GetApplication: the capacity members its summary lacks."""

    application_id: Id = field(name="applicationId")
    updated_at: datetime = field(name="updatedAt")
    maximum_capacity: Resources | None = field(default=None, name="maximumCapacity")
    # At most 10 worker types in AWS's model; a few more are tolerated, not thousands (cardinality).
    initial_capacity: Annotated[dict[WorkerType, InitialCapacity], Meta(max_length=50)] = field(
        default={}, name="initialCapacity"
    )
    auto_start: AutoStart | None = field(default=None, name="autoStartConfiguration")
    auto_stop: AutoStop | None = field(default=None, name="autoStopConfiguration")

    def __post_init__(self) -> None:
        _check_time(self.updated_at, "updatedAt")
        if self.initial_capacity:
            safe: dict[str, InitialCapacity] = {}
            for worker_type in sorted(self.initial_capacity):
                safe.setdefault(label_safe(worker_type), self.initial_capacity[worker_type])
            self.initial_capacity = safe


Obj = TypeVar("Obj", Application, SessionSummary, Session, ApplicationDetail)


def convert(raw: Any, kind: type[Obj]) -> Obj:
    """``raw`` (one object of a boto3 response) as ``kind``; raises InvalidObject saying why."""
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as err:
        raise InvalidObject(str(err)) from None


def object_id(raw: Any) -> str:
    """A printable id for a log line about an object that failed validation (it may have none)."""
    if isinstance(raw, dict):
        for key in ("sessionId", "id", "applicationId"):
            value = raw.get(key)
            if isinstance(value, str):
                return label_safe(value)[:64]
    return "?"



def _build_type_info() -> None:
    """Have msgspec build each struct's type information now, in the importing thread. Built lazily on
    the first convert instead, it is built by several worker threads at once, and msgspec 0.22 can
    crash the process then (seen as SIGSEGV inside msgspec._utils.get_class_annotations)."""
    for kind in (ResourceUtilization, Application, SessionSummary, Session, Resources, InitialCapacity, AutoStart,
                 AutoStop, ApplicationDetail):
        # {} lacks the required fields: the error is expected, the type information is built all the same.
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, kind)


_build_type_info()
