"""The EMR Serverless operations: request validation, pagination and the JSON shapes of botocore's
service model, independent of HTTP. Timestamps go out as epoch seconds (rest-json's default)."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from emr_serverless_simulator.errors import ApiError, not_found, validation
from emr_serverless_simulator.job_runs import JOB_RUN_MODES, JOB_RUN_STATES
from emr_serverless_simulator.store import Application, JobRunView, SessionView, Store

JsonObject = dict[str, Any]

SESSION_STATES = ("SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY", "FAILED", "TERMINATING", "TERMINATED")
APPLICATION_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
MAX_RESULTS = 50

_ID = re.compile(r"[0-9a-z]{1,64}")
_ARN = re.compile(
    r"arn:aws[a-zA-Z0-9-]*:emr-serverless:(?P<region>[^:]+):(?P<account>\d{12}):/applications/"
    r"(?P<app>[0-9a-zA-Z]+)(?:/(?P<kind>sessions|jobruns)/(?P<child>[0-9a-zA-Z]+))?"
)
# ISO 8601 as botocore writes a querystring timestamp (2024-05-01T12:00:00Z, or with .%f), plus offsets.
_ISO8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _ts(value: float) -> float | int:
    # Millisecond precision, like AWS; whole seconds as integers keep the JSON tidy.
    rounded = round(value, 3)
    return int(rounded) if rounded == int(rounded) else rounded


def parse_timestamp(name: str, raw: str) -> float:
    match = _ISO8601.fullmatch(raw.strip())
    if match is None:
        try:
            return float(raw)  # epoch seconds: lenient, AWS accepts them in some services
        except ValueError:
            raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: invalid timestamp") from None
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    try:
        offset = timedelta(0)
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone(offset)
        )
    except ValueError:
        raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: invalid timestamp") from None
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)


# ----- pagination tokens -----------------------------------------------------------------------


def encode_token(key: tuple[float, str]) -> str:
    """An opaque cursor: the sort key of the last item sent, so concurrent changes shift no page."""
    raw = json.dumps([key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str) -> tuple[float, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], (int, float))
            and isinstance(value[1], str)
        ):
            return float(value[0]), value[1]
    except (ValueError, UnicodeError, binascii.Error):
        pass
    raise validation("Invalid pagination token")


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def _decode_cursor(token: str) -> list[Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise validation("Invalid pagination token") from None
    if not isinstance(value, list):
        raise validation("Invalid pagination token")
    return value


def encode_job_run_token(group: str, key: tuple[float, str]) -> str:
    """ListJobRuns' cursor: the state group of the last run sent ("" without a states filter) and its key."""
    return _encode_cursor([group, key[0], key[1]])


def decode_job_run_token(token: str) -> tuple[str, tuple[float, str]]:
    value = _decode_cursor(token)
    if (
        len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
        and isinstance(value[2], str)
    ):
        return value[0], (float(value[1]), value[2])
    raise validation("Invalid pagination token")


# ----- request parameters ----------------------------------------------------------------------


def _single(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise validation(f"Parameter '{name}' given more than once")
    return values[-1]


def _max_results(query: Mapping[str, Sequence[str]]) -> int:
    raw = _single(query, "maxResults")
    if raw is None:
        return MAX_RESULTS
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"Value '{raw}' at 'maxResults' failed to satisfy constraint: not an integer") from None
    if not 1 <= value <= MAX_RESULTS:
        raise validation(
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value between 1 and {MAX_RESULTS}"
        )
    return value


def _states(query: Mapping[str, Sequence[str]], allowed: Sequence[str], most: int | None = None) -> list[str]:
    states = [value for raw in query.get("states", ()) for value in raw.split(",") if value]
    unknown = [state for state in states if state not in allowed]
    if unknown:
        raise validation(
            f"1 validation error detected: Value '{unknown[0]}' at 'states' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    most = len(allowed) if most is None else most
    if len(states) > most:
        raise validation(f"Member 'states' must have at most {most} items")
    return states


def _created_bounds(query: Mapping[str, Sequence[str]]) -> tuple[float | None, float | None]:
    raw_after, raw_before = _single(query, "createdAtAfter"), _single(query, "createdAtBefore")
    created_after = parse_timestamp("createdAtAfter", raw_after) if raw_after is not None else None
    created_before = parse_timestamp("createdAtBefore", raw_before) if raw_before is not None else None
    return created_after, created_before


def _int_param(query: Mapping[str, Sequence[str]], name: str, minimum: int | None = None) -> int | None:
    raw = _single(query, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: not an integer") from None
    if minimum is not None and value < minimum:
        raise validation(
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {minimum}"
        )
    return value


def _check_id(name: str, value: str) -> None:
    if not _ID.fullmatch(value):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [0-9a-z]+"
        )


# ----- JSON shapes -----------------------------------------------------------------------------


def _application_common(store: Store, app: Application) -> JsonObject:
    out: JsonObject = {"arn": store.application_arn(app.application_id)}
    if app.name is not None:
        out["name"] = app.name
    out.update(releaseLabel=app.release_label, type=app.type, state=app.state)
    if app.state_details:
        out["stateDetails"] = app.state_details
    out.update(createdAt=_ts(app.created_at), updatedAt=_ts(app.updated_at))
    if app.architecture is not None:
        out["architecture"] = app.architecture
    return out


def application_summary(store: Store, app: Application) -> JsonObject:
    return {"id": app.application_id, **_application_common(store, app)}


def application_detail(store: Store, app: Application) -> JsonObject:
    out: JsonObject = {"applicationId": app.application_id, **_application_common(store, app)}
    if app.tags is not None:
        out["tags"] = dict(app.tags)
    if app.initial_capacity is not None:
        out["initialCapacity"] = copy.deepcopy(app.initial_capacity)
    if app.maximum_capacity is not None:
        out["maximumCapacity"] = dict(app.maximum_capacity)
    out["autoStartConfiguration"] = {"enabled": app.auto_start}
    out["autoStopConfiguration"] = (
        {"enabled": True, "idleTimeoutMinutes": app.auto_stop_minutes}
        if app.auto_stop_minutes is not None
        else {"enabled": False}
    )
    out["interactiveConfiguration"] = {"studioEnabled": True, "livyEndpointEnabled": False, "sessionEnabled": True}
    if app.max_concurrent_runs is not None:
        out["schedulerConfiguration"] = {
            "queueTimeoutMinutes": app.queue_timeout_minutes,
            "maxConcurrentRuns": app.max_concurrent_runs,
        }
    return out


def session_summary(store: Store, view: SessionView) -> JsonObject:
    out: JsonObject = {
        "applicationId": view.application_id,
        "sessionId": view.session_id,
        "arn": store.session_arn(view.application_id, view.session_id),
    }
    if view.name is not None:
        out["name"] = view.name
    out.update(
        state=view.state,
        stateDetails=view.state_details,
        releaseLabel=view.release_label,
        executionRoleArn=view.execution_role_arn,
        createdBy=view.created_by,
        createdAt=_ts(view.created_at),
        updatedAt=_ts(view.updated_at),
    )
    return out


def session_detail(store: Store, view: SessionView) -> JsonObject:
    out = session_summary(store, view)
    for key, stamp in (("startedAt", view.started_at), ("endedAt", view.ended_at), ("idleSince", view.idle_since)):
        if stamp is not None:
            out[key] = _ts(stamp)
    if view.idle_timeout_minutes is not None:
        out["idleTimeoutMinutes"] = view.idle_timeout_minutes
    if view.tags is not None:
        out["tags"] = dict(view.tags)
    if view.total_utilization is not None:
        out["totalResourceUtilization"] = {k: float(v) for k, v in view.total_utilization.items()}
    if view.billed_utilization is not None:
        out["billedResourceUtilization"] = {k: float(v) for k, v in view.billed_utilization.items()}
    if view.execution_duration_seconds is not None:
        out["totalExecutionDurationSeconds"] = int(view.execution_duration_seconds)
    return out


def _job_run_common(store: Store, view: JobRunView) -> JsonObject:
    out: JsonObject = {"applicationId": view.application_id}
    if view.name is not None:
        out["name"] = view.name
    if view.mode is not None:
        out["mode"] = view.mode
    out.update(
        arn=store.job_run_arn(view.application_id, view.job_run_id),
        createdBy=view.created_by,
        createdAt=_ts(view.created_at),
        updatedAt=_ts(view.updated_at),
        executionRole=view.execution_role_arn,
        state=view.state,
        stateDetails=view.state_details,
        releaseLabel=view.release_label,
    )
    return out


def _attempt_fields(view: JobRunView) -> JsonObject:
    out: JsonObject = {}
    if view.attempt is not None:
        out["attempt"] = view.attempt
    for key, stamp in (("attemptCreatedAt", view.attempt_created_at), ("attemptUpdatedAt", view.attempt_updated_at)):
        if stamp is not None:
            out[key] = _ts(stamp)
    return out


def job_run_summary(store: Store, view: JobRunView) -> JsonObject:
    out: JsonObject = {"id": view.job_run_id, **_job_run_common(store, view)}
    if view.type is not None:
        out["type"] = view.type
    out.update(_attempt_fields(view))
    return out


def job_run_detail(store: Store, view: JobRunView) -> JsonObject:
    out: JsonObject = {"jobRunId": view.job_run_id, **_job_run_common(store, view)}
    if view.configuration_overrides is not None:
        out["configurationOverrides"] = copy.deepcopy(view.configuration_overrides)
    out["jobDriver"] = copy.deepcopy(view.job_driver)
    if view.tags is not None:
        out["tags"] = dict(view.tags)
    if view.total_utilization is not None:
        out["totalResourceUtilization"] = {k: float(v) for k, v in view.total_utilization.items()}
    if view.network_configuration is not None:
        out["networkConfiguration"] = copy.deepcopy(view.network_configuration)
    if view.execution_duration_seconds is not None:
        out["totalExecutionDurationSeconds"] = int(view.execution_duration_seconds)
    if view.execution_timeout_minutes is not None:
        out["executionTimeoutMinutes"] = int(view.execution_timeout_minutes)
    if view.billed_utilization is not None:
        out["billedResourceUtilization"] = {k: float(v) for k, v in view.billed_utilization.items()}
    if view.retry_policy is not None:
        out["retryPolicy"] = dict(view.retry_policy)
    out.update(_attempt_fields(view))
    for key, stamp in (("startedAt", view.started_at), ("endedAt", view.ended_at)):
        if stamp is not None:
            out[key] = _ts(stamp)
    if view.queued_duration_ms is not None:
        out["queuedDurationMilliseconds"] = int(view.queued_duration_ms)
    return out


def job_run_attempt_summary(store: Store, view: JobRunView) -> JsonObject:
    out: JsonObject = {"id": view.job_run_id, **_job_run_common(store, view)}
    out["jobCreatedAt"] = out["createdAt"]
    if view.attempt_created_at is not None:
        out["createdAt"] = _ts(view.attempt_created_at)
    if view.attempt_updated_at is not None:
        out["updatedAt"] = _ts(view.attempt_updated_at)
    if view.type is not None:
        out["type"] = view.type
    if view.attempt is not None:
        out["attempt"] = view.attempt
    return out


# ----- operations ------------------------------------------------------------------------------


def _application(store: Store, application_id: str) -> Application:
    _check_id("applicationId", application_id)
    app = store.application(application_id)
    if app is None:
        raise not_found(f"Application {application_id} does not exist")
    return app


def list_applications(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    states = set(_states(query, APPLICATION_STATES))
    limit = _max_results(query)
    token = _single(query, "nextToken")
    after = decode_token(token) if token is not None else None
    apps = [app for app in store.applications() if not states or app.state in states]
    if after is not None:
        apps = [app for app in apps if (-app.created_at, app.application_id) > after]
    out: JsonObject = {"applications": [application_summary(store, app) for app in apps[:limit]]}
    if len(apps) > limit:
        last = apps[limit - 1]
        out["nextToken"] = encode_token((-last.created_at, last.application_id))
    return out


def get_application(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    return {"application": application_detail(store, _application(store, path["applicationId"]))}


def list_sessions(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    states = _states(query, SESSION_STATES)
    limit = _max_results(query)
    token = _single(query, "nextToken")
    after = decode_token(token) if token is not None else None
    created_after, created_before = _created_bounds(query)
    application_id = path["applicationId"]
    _application(store, application_id)
    try:
        page, more = store.list_sessions(
            application_id,
            states=states,
            created_after=created_after,
            created_before=created_before,
            after_key=after,
            limit=limit,
        )
    except KeyError:
        raise not_found(f"Application {application_id} does not exist") from None
    out: JsonObject = {"sessions": [session_summary(store, view) for view in page]}
    if more and page:
        out["nextToken"] = encode_token((-page[-1].created_at, page[-1].session_id))
    return out


def _session_view(store: Store, path: Mapping[str, str]) -> SessionView:
    application_id, session_id = path["applicationId"], path["sessionId"]
    _check_id("sessionId", session_id)
    _application(store, application_id)
    view = store.session(application_id, session_id)
    if view is None:
        raise not_found(f"Session {session_id} does not exist in application {application_id}")
    return view


def get_session(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    return {"session": session_detail(store, _session_view(store, path))}


def terminate_session(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    view = _session_view(store, path)
    try:
        store.terminate_session(view.application_id, view.session_id)
    except KeyError:
        raise not_found(f"Session {view.session_id} does not exist") from None
    return {"applicationId": view.application_id, "sessionId": view.session_id}


def _start_members(body: JsonObject) -> tuple[str, str, Any, Any]:
    """What StartSession and StartJobRun both take, checked alike: (executionRoleArn, clientToken, name, tags)."""
    role = body.get("executionRoleArn")
    token = body.get("clientToken")
    if not isinstance(role, str) or len(role) < 20:
        raise validation("executionRoleArn is required and must be an IAM role ARN")
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise validation("clientToken is required")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 256):
        raise validation("name must be a string of 1 to 256 characters")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    ):
        raise validation("tags must map strings to strings")
    return role, token, name, tags


def start_session(store: Store, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    application_id = path["applicationId"]
    app = _application(store, application_id)
    role, token, name, tags = _start_members(body)
    idle = body.get("idleTimeoutMinutes")
    if idle is not None and (not isinstance(idle, int) or isinstance(idle, bool) or not 0 <= idle <= 1_000_000):
        raise validation("idleTimeoutMinutes must be an integer between 0 and 1000000")
    if app.state in ("CREATING", "STOPPING", "TERMINATED"):
        raise ApiError("ConflictException", f"Application {application_id} is in state {app.state}")
    if app.state in ("CREATED", "STOPPED"):
        store.set_application_state(application_id, "STARTED")  # autoStartConfiguration is enabled
    session_id = store.start_session(
        application_id, client_token=token, execution_role_arn=role, name=name, tags=tags, idle_timeout_minutes=idle
    )
    return {
        "applicationId": application_id,
        "sessionId": session_id,
        "arn": store.session_arn(application_id, session_id),
    }


# ----- job runs ----------------------------------------------------------------------------------


def _mode(query: Mapping[str, Sequence[str]]) -> str | None:
    mode = _single(query, "mode")
    if mode is not None and mode not in JOB_RUN_MODES:
        raise validation(
            f"1 validation error detected: Value '{mode}' at 'mode' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(JOB_RUN_MODES)}]"
        )
    return mode


def list_job_runs(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    states = _states(query, JOB_RUN_STATES, most=8)
    limit = _max_results(query)
    token = _single(query, "nextToken")
    after = decode_job_run_token(token) if token is not None else None
    created_after, created_before = _created_bounds(query)
    mode = _mode(query)
    application_id = path["applicationId"]
    _application(store, application_id)
    try:
        page, more = store.list_job_runs(
            application_id,
            states=states,
            created_after=created_after,
            created_before=created_before,
            mode=mode,
            after=after,
            limit=limit,
        )
    except KeyError:
        raise not_found(f"Application {application_id} does not exist") from None
    except ValueError:
        raise validation("Invalid pagination token") from None
    out: JsonObject = {"jobRuns": [job_run_summary(store, view) for view in page]}
    if more and page:
        last = page[-1]
        out["nextToken"] = encode_job_run_token(last.state if states else "", (-last.created_at, last.job_run_id))
    return out


def _job_run_path(store: Store, path: Mapping[str, str]) -> tuple[str, str]:
    application_id, job_run_id = path["applicationId"], path["jobRunId"]
    _check_id("jobRunId", job_run_id)
    _application(store, application_id)
    return application_id, job_run_id


def _no_job_run(application_id: str, job_run_id: str) -> ApiError:
    return not_found(f"Job run {job_run_id} does not exist in application {application_id}")


def get_job_run(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    application_id, job_run_id = _job_run_path(store, path)
    attempt = _int_param(query, "attempt", minimum=1)
    view = store.job_run(application_id, job_run_id, attempt)
    if view is None:
        if attempt is not None and store.job_run(application_id, job_run_id) is not None:
            raise not_found(f"Attempt {attempt} of job run {job_run_id} does not exist")
        raise _no_job_run(application_id, job_run_id)
    return {"jobRun": job_run_detail(store, view)}


def list_job_run_attempts(
    store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]
) -> JsonObject:
    application_id, job_run_id = _job_run_path(store, path)
    limit = _max_results(query)
    token = _single(query, "nextToken")
    after = 0
    if token is not None:
        value = _decode_cursor(token)
        if len(value) != 1 or not isinstance(value[0], int) or isinstance(value[0], bool) or value[0] < 1:
            raise validation("Invalid pagination token")
        after = value[0]
    attempts = store.job_run_attempts(application_id, job_run_id)
    if attempts is None:
        raise _no_job_run(application_id, job_run_id)
    rest = [view for view in attempts if (view.attempt or 1) > after]
    out: JsonObject = {"jobRunAttempts": [job_run_attempt_summary(store, view) for view in rest[:limit]]}
    if len(rest) > limit:
        out["nextToken"] = _encode_cursor([rest[limit - 1].attempt or 1])
    return out


def cancel_job_run(store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> JsonObject:
    application_id, job_run_id = _job_run_path(store, path)
    grace = _int_param(query, "shutdownGracePeriodInSeconds", minimum=0)
    try:
        cancelled = store.cancel_job_run(application_id, job_run_id, grace)
    except KeyError:
        raise _no_job_run(application_id, job_run_id) from None
    if not cancelled:
        view = store.job_run(application_id, job_run_id)
        state = view.state if view is not None else "a final state"
        raise validation(f"Job run {job_run_id} is in state {state} and cannot be cancelled")
    return {"applicationId": application_id, "jobRunId": job_run_id}


def _optional_int(body: JsonObject, name: str, minimum: int, maximum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise validation(f"{name} must be an integer between {minimum} and {maximum}")
    return value


def _job_driver(body: JsonObject) -> dict[str, Any]:
    driver = body.get("jobDriver")
    if not isinstance(driver, dict) or len(driver) != 1:
        raise validation("jobDriver is required and must set exactly one of sparkSubmit and hive")
    kind, spec = next(iter(driver.items()))
    required = {"sparkSubmit": "entryPoint", "hive": "query"}.get(kind)
    if required is None or not isinstance(spec, dict) or not isinstance(spec.get(required), str) or not spec[required]:
        raise validation("jobDriver must be {sparkSubmit: {entryPoint: ...}} or {hive: {query: ...}}")
    return driver


def _retry_policy(body: JsonObject) -> dict[str, int] | None:
    policy = body.get("retryPolicy")
    if policy is None:
        return None
    if not isinstance(policy, dict) or not set(policy) <= {"maxAttempts", "maxFailedAttemptsPerHour"} or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in policy.values()
    ):
        raise validation("retryPolicy takes maxAttempts and maxFailedAttemptsPerHour, integers of at least 1")
    return policy


def start_job_run(store: Store, path: Mapping[str, str], body: JsonObject) -> JsonObject:
    application_id = path["applicationId"]
    app = _application(store, application_id)
    role, token, name, tags = _start_members(body)
    mode = body.get("mode", "BATCH")
    if mode not in JOB_RUN_MODES:
        raise validation(f"mode must be one of {', '.join(JOB_RUN_MODES)}")
    overrides = body.get("configurationOverrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise validation("configurationOverrides must be an object")
    driver = _job_driver(body)
    timeout = _optional_int(body, "executionTimeoutMinutes", 0, 1_000_000)
    retry = _retry_policy(body)
    if app.state in ("CREATING", "STOPPING", "TERMINATED"):
        raise ApiError("ConflictException", f"Application {application_id} is in state {app.state}")
    if app.state in ("CREATED", "STOPPED"):
        if not app.auto_start:
            raise ApiError("ConflictException", f"Application {application_id} is {app.state} and auto-start is off")
        store.set_application_state(application_id, "STARTED")
    job_run_id = store.start_job_run(
        application_id,
        client_token=token,
        execution_role_arn=role,
        job_driver=driver,
        name=name,
        mode=mode,
        tags=tags,
        execution_timeout_minutes=timeout,
        retry_policy=retry,
        configuration_overrides=overrides,
    )
    return {
        "applicationId": application_id,
        "jobRunId": job_run_id,
        "arn": store.job_run_arn(application_id, job_run_id),
    }


def list_tags_for_resource(
    store: Store, path: Mapping[str, str], query: Mapping[str, Sequence[str]]
) -> JsonObject:
    arn = path["resourceArn"]
    match = _ARN.fullmatch(arn)
    if match is None or not 60 <= len(arn) <= 1024:
        raise validation(f"Value '{arn}' at 'resourceArn' failed to satisfy constraint: invalid ARN")
    if match["region"] != store.region or match["account"] != store.account_id:
        raise not_found(f"Resource {arn} does not exist")
    app = store.application(match["app"])
    if app is None:
        raise not_found(f"Resource {arn} does not exist")
    if match["kind"] is None:
        return {"tags": dict(app.tags or {})}
    child = (
        store.session(match["app"], match["child"]) if match["kind"] == "sessions"
        else store.job_run(match["app"], match["child"])
    )
    if child is None:
        raise not_found(f"Resource {arn} does not exist")
    return {"tags": dict(child.tags or {})}
