"""The validation boundary: what the exporter accepts from the EMR Serverless API, declared once.

boto3 hands back whatever the endpoint sent (numbers as strings, ``null`` states, NaN, tags as
lists...). Every object is converted here, by msgspec, into a typed struct whose fields are checked:
ids match AWS's pattern, numbers are finite and in range, timestamps are sane, strings are no longer
than botocore's service model of emr-serverless allows (read from the model at import: every member the
exporter reads, and ``stateDetails``, free text it does not keep), and strings that become label values are
made safe for any exposition format. An object that fails is ``InvalidObject``, with one line saying where;
the caller drops and counts it. Nothing past this module sees raw API data.

Field names are Python's; ``name=`` says which wire member each one reads.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

import botocore.model
import botocore.session
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

_SERVICE_MODEL = botocore.session.get_session().get_service_model("emr-serverless")


def model_max_length(shape: str, member: str, fallback: int) -> int:
    """The most characters (entries, for a map) botocore's model of emr-serverless allows ``shape.member``
    (``shape`` itself where ``member`` is empty); ``fallback``, today's model's bound, where the installed
    botocore's model lacks it."""
    try:
        found = _SERVICE_MODEL.shape_for(shape)
        bounded = found.members[member] if member else found  # type: ignore[attr-defined]
        return int(bounded.metadata["max"])
    except (botocore.model.NoShapeFoundError, AttributeError, KeyError, TypeError, ValueError):
        return fallback


Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9a-z]+$")]
Text = Annotated[str, Meta(max_length=64 * 1024)]  # text the model does not bound; label values are cut later
State = Annotated[str, Meta(min_length=1, max_length=64)]  # an enum in the model: a new state is kept, not long
Short = Annotated[str, Meta(max_length=64)]  # an enum in the model (architecture)
# Bounds from the model; label values longer than MAX_LABEL_VALUE_CHARS are cut after these checks.
ApplicationArn = Annotated[str, Meta(max_length=model_max_length("ApplicationSummary", "arn", 1024))]
ApplicationName = Annotated[str, Meta(max_length=model_max_length("ApplicationSummary", "name", 64))]
EngineType = Annotated[str, Meta(max_length=model_max_length("ApplicationSummary", "type", 64))]
ReleaseLabel = Annotated[str, Meta(max_length=model_max_length("ApplicationSummary", "releaseLabel", 64))]
ApplicationStateDetails = Annotated[str, Meta(max_length=model_max_length("ApplicationSummary", "stateDetails", 256))]
SessionArn = Annotated[str, Meta(max_length=model_max_length("Session", "arn", 1024))]
SessionName = Annotated[str, Meta(max_length=model_max_length("Session", "name", 256))]
RoleArn = Annotated[str, Meta(max_length=model_max_length("Session", "executionRoleArn", 2048))]
CreatedBy = Annotated[str, Meta(max_length=model_max_length("Session", "createdBy", 2048))]
SessionStateDetails = Annotated[str, Meta(max_length=model_max_length("Session", "stateDetails", 1024))]
TagKey = Annotated[str, Meta(max_length=model_max_length("TagKey", "", 128))]
TagValue = Annotated[str, Meta(max_length=model_max_length("TagValue", "", 256))]
Tags = Annotated[dict[TagKey, TagValue], Meta(max_length=model_max_length("Session", "tags", 200))]
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


def safe_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags as label-safe keys and values, in AWS's key order, so that of keys that collide (here, or on one
    label name later) the first in sorted order wins, the documented rule; the order is kept from here on."""
    safe: dict[str, str] = {}
    for key in sorted(tags):
        safe.setdefault(label_safe(key), label_safe(tags[key]))
    return safe


def check_time(value: datetime | None, name: str) -> None:
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
    arn: ApplicationArn
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    name: ApplicationName = ""
    type: EngineType = ""
    release_label: ReleaseLabel = field(default="", name="releaseLabel")
    architecture: Short = ""
    state_details: ApplicationStateDetails | None = field(default=None, name="stateDetails")  # checked, not kept

    def __post_init__(self) -> None:
        self.state_details = None
        check_time(self.created_at, "createdAt")
        check_time(self.updated_at, "updatedAt")
        for attr in ("arn", "state", "name", "type", "release_label", "architecture"):
            setattr(self, attr, label_safe(getattr(self, attr)))


class SessionSummary(Struct, gc=False):
    """A SessionSummary from ListSessions: enough to decide whether GetSession is worth a call."""

    application_id: Id = field(name="applicationId")
    session_id: Id = field(name="sessionId")
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    state_details: SessionStateDetails | None = field(default=None, name="stateDetails")  # checked, not kept

    def __post_init__(self) -> None:
        self.state_details = None
        check_time(self.created_at, "createdAt")
        check_time(self.updated_at, "updatedAt")
        self.state = label_safe(self.state)

    @property
    def id(self) -> str:
        return self.session_id

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()


class Session(Struct, gc=False):
    """A Session from GetSession, with the members the metrics read."""

    application_id: Id = field(name="applicationId")
    session_id: Id = field(name="sessionId")
    arn: SessionArn
    state: State
    created_at: datetime = field(name="createdAt")
    updated_at: datetime = field(name="updatedAt")
    name: SessionName = ""
    release_label: ReleaseLabel = field(default="", name="releaseLabel")
    execution_role_arn: RoleArn = field(default="", name="executionRoleArn")
    created_by: CreatedBy = field(default="", name="createdBy")
    state_details: SessionStateDetails | None = field(default=None, name="stateDetails")  # checked, not kept
    started_at: datetime | None = field(default=None, name="startedAt")
    ended_at: datetime | None = field(default=None, name="endedAt")
    idle_since: datetime | None = field(default=None, name="idleSince")
    idle_timeout_minutes: Count | None = field(default=None, name="idleTimeoutMinutes")
    execution_seconds: Count | None = field(default=None, name="totalExecutionDurationSeconds")
    used: ResourceUtilization | None = field(default=None, name="totalResourceUtilization")
    billed: ResourceUtilization | None = field(default=None, name="billedResourceUtilization")
    tags: Tags = {}

    def __post_init__(self) -> None:
        self.state_details = None
        for name, value in (("createdAt", self.created_at), ("updatedAt", self.updated_at),
                            ("startedAt", self.started_at), ("endedAt", self.ended_at),
                            ("idleSince", self.idle_since)):
            check_time(value, name)
        for attr in ("arn", "state", "name", "release_label", "execution_role_arn", "created_by"):
            setattr(self, attr, label_safe(getattr(self, attr)))
        self.tags = safe_tags(self.tags)

    @property
    def id(self) -> str:
        return self.session_id

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


CpuSize = Annotated[str, Meta(min_length=1, max_length=model_max_length("CpuSize", "", 15))]
MemorySize = Annotated[str, Meta(min_length=1, max_length=model_max_length("MemorySize", "", 15))]
DiskSize = Annotated[str, Meta(min_length=1, max_length=model_max_length("DiskSize", "", 15))]


class Resources(Struct, gc=False):
    """AWS's MaximumAllowedResources / WorkerResourceConfig: capacities as text, checked and read here in
    AWS's units (vCPUs, GB; exporter.metrics.families turns GB into bytes)."""

    cpu: CpuSize
    memory: MemorySize
    disk: DiskSize | None = None

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


WorkerType = Annotated[str, Meta(min_length=1, max_length=model_max_length("WorkerTypeString", "", 50))]


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


class SchedulerConfiguration(Struct, gc=False):
    """How many job runs an application runs at once, and how long one may wait QUEUED."""

    max_concurrent_runs: Annotated[int, Meta(ge=0, le=1_000_000)] | None = field(default=None, name="maxConcurrentRuns")
    queue_timeout_minutes: Annotated[int, Meta(ge=0, le=1_000_000)] | None = field(
        default=None, name="queueTimeoutMinutes"
    )


class ApplicationDetail(Struct, gc=False):
    """An Application from GetApplication: the capacity members its summary lacks."""

    application_id: Id = field(name="applicationId")
    updated_at: datetime = field(name="updatedAt")
    maximum_capacity: Resources | None = field(default=None, name="maximumCapacity")
    initial_capacity: Annotated[
        dict[WorkerType, InitialCapacity], Meta(max_length=model_max_length("Application", "initialCapacity", 10))
    ] = field(default={}, name="initialCapacity")
    auto_start: AutoStart | None = field(default=None, name="autoStartConfiguration")
    auto_stop: AutoStop | None = field(default=None, name="autoStopConfiguration")
    scheduler: SchedulerConfiguration | None = field(default=None, name="schedulerConfiguration")
    state_details: ApplicationStateDetails | None = field(default=None, name="stateDetails")  # checked, not kept

    def __post_init__(self) -> None:
        self.state_details = None
        check_time(self.updated_at, "updatedAt")
        if self.initial_capacity:
            safe: dict[str, InitialCapacity] = {}
            for worker_type in sorted(self.initial_capacity):
                safe.setdefault(label_safe(worker_type), self.initial_capacity[worker_type])
            self.initial_capacity = safe


Obj = TypeVar("Obj")


def convert(raw: Any, kind: type[Obj]) -> Obj:
    """``raw`` (one object of a boto3 response) as ``kind``; raises InvalidObject saying why."""
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as err:
        raise InvalidObject(str(err)) from None


def object_id(raw: Any) -> str:
    """A printable id for a log line about an object that failed validation (it may have none)."""
    if isinstance(raw, dict):
        for key in ("sessionId", "jobRunId", "id", "applicationId"):
            value = raw.get(key)
            if isinstance(value, str):
                return label_safe(value)[:64]
    return "?"



def _build_type_info() -> None:
    """Have msgspec build each struct's type information now, in the importing thread. Built lazily on
    the first convert instead, it is built by several worker threads at once, and msgspec 0.22 can
    crash the process then (seen as SIGSEGV inside msgspec._utils.get_class_annotations)."""
    for kind in (ResourceUtilization, Application, SessionSummary, Session, Resources, InitialCapacity, AutoStart,
                 AutoStop, SchedulerConfiguration, ApplicationDetail):
        # {} lacks the required fields: the error is expected, the type information is built all the same.
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, kind)


_build_type_info()
