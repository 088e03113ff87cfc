"""The kinds of object the exporter collects per application, each declared once: its states, the API
operations that list and fetch it, the structs they return, and the configuration keys that bound it.

Everything below the listing (listing windows, the inventory and its refresh order, the series store,
stale and age accounting, cache hits) is written once and takes a kind; what differs between interactive
sessions and job runs is in these declarations and in each kind's metric table (``exporter.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from exporter.model.job_run import JobRun, JobRunSummary
from exporter.model.job_run import from_listing as job_run_from_listing
from exporter.model.session import Session, SessionSummary

APPLICATION_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
# An application in one of these states runs nothing: while ListApplications shows it unchanged since its
# last complete listing, nothing of it is listed again.
QUIET_APPLICATION_STATES = frozenset({"CREATED", "STOPPED"})
JOB_RUN_MODES = ("BATCH", "STREAMING")


class Summary(Protocol):
    """What a listing says of an object: enough to decide whether the detail call is worth making."""

    @property
    def id(self) -> str: ...
    @property
    def application_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def updated(self) -> float: ...


class Detail(Summary, Protocol):
    """What the detail call returns: the object as its metrics read it."""

    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> dict[str, str]: ...
    @property
    def ended(self) -> float | None: ...


SummaryT = TypeVar("SummaryT", bound=Summary)
DetailT = TypeVar("DetailT", bound=Detail)


@dataclass(frozen=True, eq=False)
class ObjectKind(Generic[SummaryT, DetailT]):
    """One kind of object an application runs. Compared by identity: there is one declaration per kind."""

    name: str  # the `kind` label's value, and the word in log lines
    states: tuple[str, ...]  # every state AWS documents, in its order (a state-set's series)
    final_states: frozenset[str]  # never left: an object in one is fetched once, then served from memory
    # The listing: operation, the response member holding the summaries, their struct.
    list_operation: str
    list_key: str
    summary: type[SummaryT]
    # The detail call: operation, the request member naming the object, the response member, its struct.
    get_operation: str
    get_id_param: str
    get_key: str
    detail: type[DetailT]
    # ``DiscoveryConfig`` keys: whether the kind is collected, how long a final object stays exported after
    # it ended, how far the first listing after a start looks back, and how many final objects an application
    # exports at most (the most recently ended).
    enabled_key: str
    max_age_key: str
    lookback_key: str
    max_terminated_key: str
    # A ``DiscoveryConfig`` key listing the modes to collect, sent as the listing's ``mode`` when it names one.
    modes_key: str | None = None
    # Members only the listing carries (a job run's ``type``): copied onto the detail call's answer.
    from_listing: tuple[str, ...] = ()
    # States whose reason (the detail's ``state_details``) is logged once, when an object is first seen in one.
    failed_states: frozenset[str] = frozenset()
    # What the listing says of an object, as its detail struct: exported until the detail call answers. None:
    # an object is exported once fetched (a session's summary lacks the labels its series need).
    from_summary: Callable[[SummaryT], DetailT] | None = None

    def is_final(self, state: str) -> bool:
        return state in self.final_states

    @property
    def active_states(self) -> tuple[str, ...]:
        """The known states an object can still leave: listed every collection."""
        return tuple(state for state in self.states if state not in self.final_states)


SESSIONS: ObjectKind[SessionSummary, Session] = ObjectKind(
    name="session",
    states=("SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY", "FAILED", "TERMINATING", "TERMINATED"),
    final_states=frozenset({"FAILED", "TERMINATED"}),
    list_operation="ListSessions",
    list_key="sessions",
    summary=SessionSummary,
    get_operation="GetSession",
    get_id_param="sessionId",
    get_key="session",
    detail=Session,
    enabled_key="sessions",
    max_age_key="terminated_session_max_age_seconds",
    lookback_key="session_lookback_seconds",
    max_terminated_key="max_terminated_sessions_per_application",
)

JOB_RUNS: ObjectKind[JobRunSummary, JobRun] = ObjectKind(
    name="job_run",
    states=("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "FAILED", "CANCELLING", "CANCELLED", "QUEUED"),
    final_states=frozenset({"SUCCESS", "FAILED", "CANCELLED"}),
    list_operation="ListJobRuns",
    list_key="jobRuns",
    summary=JobRunSummary,
    get_operation="GetJobRun",
    get_id_param="jobRunId",
    get_key="jobRun",
    detail=JobRun,
    enabled_key="job_runs",
    max_age_key="terminated_job_run_max_age_seconds",
    lookback_key="job_run_lookback_seconds",
    max_terminated_key="max_terminated_job_runs_per_application",
    modes_key="job_run_modes",
    from_listing=("type",),
    failed_states=frozenset({"FAILED"}),
    from_summary=job_run_from_listing,
)

KINDS: tuple[ObjectKind[Any, Any], ...] = (SESSIONS, JOB_RUNS)
