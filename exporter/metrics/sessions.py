"""The metrics of an interactive session: one series set per exported session (GetSession's answer)."""

from __future__ import annotations

from exporter.metrics.families import Family, KindTable, info, state_set, usage_families, value
from exporter.model.kinds import SESSIONS
from exporter.model.session import ResourceUtilization, Session, epoch


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


SESSION_FAMILIES: tuple[Family[Session], ...] = (
    Family(
        "emr_serverless_session_info", "gauge", "Information about the session; always 1.",
        info(lambda s: (s.arn, s.release_label, s.execution_role_arn, s.created_by)),
        ("arn", "release_label", "execution_role_arn", "created_by"),
    ),
    Family(
        "emr_serverless_session_state", "gauge", "Current state of the session: 1 for the current state.",
        state_set(SESSIONS.states, lambda s: s.state, "session"), ("state",),
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
    *usage_families("emr_serverless_session", "session", _used, _billed),
)


def session_clock(session: Session, now: float) -> float | None:
    """``now`` for an IDLE session with ``idleSince`` (its idle seconds grow), None for every other."""
    return now if session.state == "IDLE" and session.idle_since is not None else None


SESSION_TABLE: KindTable[Session] = KindTable(
    kind=SESSIONS,
    id_label="session_id",
    name_label="session_name",
    families=SESSION_FAMILIES,
    tags_family="emr_serverless_session_tags",
    tags_help="The session's AWS tags as labels tag_<key>; always 1.",
    count_family="emr_serverless_application_sessions",
    count_help="Exported sessions of the application by state.",
    clock=session_clock,
)
