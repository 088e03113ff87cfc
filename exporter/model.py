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

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # control characters and lone surrogates

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9a-z]+$")]
Text = Annotated[str, Meta(max_length=64 * 1024)]  # label text; cut to MAX_LABEL_VALUE_CHARS after checks
State = Annotated[str, Meta(min_length=1, max_length=64)]
Hours = Annotated[float, Meta(ge=0, le=1e12)]  # NaN fails both bounds; so does infinity
Count = Annotated[float, Meta(ge=0, le=1e12)]


class InvalidObject(ValueError):
    """An API object that does not hold what the model says; ``str()`` says which field and why."""


def label_safe(text: str) -> str:
    """``text`` as a valid label value in every format: control characters and lone surrogates
    (invalid UTF-8 from the wire) become U+FFFD, and it is cut at ``MAX_LABEL_VALUE_CHARS``."""
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


Obj = TypeVar("Obj", Application, SessionSummary, Session)


def convert(raw: Any, kind: type[Obj]) -> Obj:
    """``raw`` (one object of a boto3 response) as ``kind``; raises InvalidObject saying why."""
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as err:
        raise InvalidObject(str(err)) from None


def object_id(raw: Any) -> str:
    """A printable id for a log line about an object that failed validation (it may have none)."""
    if isinstance(raw, dict):
        for key in ("sessionId", "id"):
            value = raw.get(key)
            if isinstance(value, str):
                return label_safe(value)[:64]
    return "?"



def _build_type_info() -> None:
    """Have msgspec build each struct's type information now, in the importing thread. Built lazily on
    the first convert instead, it is built by several worker threads at once, and msgspec 0.22 can
    crash the process then (seen as SIGSEGV inside msgspec._utils.get_class_annotations)."""
    for kind in (ResourceUtilization, Application, SessionSummary, Session):
        # {} lacks the required fields: the error is expected, the type information is built all the same.
        with contextlib.suppress(msgspec.ValidationError):
            msgspec.convert({}, kind)


_build_type_info()
