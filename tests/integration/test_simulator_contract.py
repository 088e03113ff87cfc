"""Every response of the simulator holds to botocore's service model for emr-serverless.

The real boto3 client drives each operation; a ``before-parse`` hook captures the raw bodies, which are
then checked recursively against the operation's output shape (or the error's shape)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_serverless_simulator import JOB_RUN_STATES, Fault, JobRunLifecycle, Simulator, Store, build_scenario
from tests.helpers.service_model import MADE_UP_STATE, MODEL, validate
from tests.helpers.support import simulator_client

ALL_OPERATIONS = {
    "ListApplications",
    "GetApplication",
    "ListSessions",
    "GetSession",
    "StartSession",
    "TerminateSession",
    "ListTagsForResource",
    "ListJobRuns",
    "GetJobRun",
    "StartJobRun",
    "CancelJobRun",
    "ListJobRunAttempts",
}
UTIL = {"vCPUHour": 1.5, "memoryGBHour": 6.0, "storageGBHour": 20.0}
ROLE = "arn:aws:iam::123456789012:role/r"
DRIVER = {"sparkSubmit": {"entryPoint": "s3://bucket/job.py", "entryPointArguments": ["--day", "1"],
                          "sparkSubmitParameters": "--conf spark.executor.cores=4"}}


class Recorder:
    """Raw responses, as they came over the wire, by operation."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, int, dict[str, str], bytes]] = []

    def __call__(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        self.responses.append(
            (operation_model.name, response_dict["status_code"], dict(response_dict["headers"]), response_dict["body"])
        )

    def problems(self) -> list[str]:
        found: list[str] = []
        for operation, status, headers, body in self.responses:
            document = json.loads(body)
            if status < 300:
                shape = MODEL.operation_model(operation).output_shape
                assert shape is not None
                found += [f"{operation}: {p}" for p in validate(shape, document)]
            else:
                code = headers.get("x-amzn-errortype", "")
                if code in MODEL.shape_names:
                    found += [f"{operation} {code}: {p}" for p in validate(MODEL.shape_for(code), document)]
                elif set(document) != {"message"} or not isinstance(document["message"], str):
                    found.append(f"{operation} {code}: unexpected error body {document!r}")
        return found

    def operations(self) -> set[str]:
        return {operation for operation, status, _, _ in self.responses if status == 200}


def make_client(url: str, recorder: Recorder | None = None, attempts: int = 1) -> Any:
    client = simulator_client(url, attempts)
    if recorder is not None:
        client.meta.events.register("before-parse.emr-serverless", recorder)
    return client


def full_store() -> tuple[Store, str, str, str]:
    """An application with a session in each state, one with every optional field and one with none, and job
    runs likewise (see add_job_runs)."""
    store = Store(account_id="123456789012", region="us-east-1", clock=time.time)
    now = time.time()
    app = store.add_application(
        name="contract", tags={"team": "x"},
        maximum_capacity={"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"},
        initial_capacity={"Driver": {"workerCount": 1, "workerConfiguration": {
            "cpu": "4 vCPU", "memory": "16 GB", "disk": "200 GB", "diskType": "SHUFFLE_OPTIMIZED"}}},
        max_concurrent_runs=3, queue_timeout_minutes=30,
    )
    add_job_runs(store, app, now)
    store.add_application(name=None, state="CREATING", architecture=None, tags=None, auto_start=False,
                          auto_stop_minutes=None)
    full = store.add_session(
        app,
        name="every field",
        state="IDLE",
        created_at=now - 600,
        started_at=now - 550,
        idle_since=now - 60.123456,
        idle_timeout_minutes=120,
        tags={"aws:cloudformation:stack-name": "s", "k.e-y": 'q"uote\\back ünï ✓', "empty": ""},
        total_utilization=UTIL,
        billed_utilization=UTIL,
        execution_duration_seconds=550,
        created_by="arn:aws:sts::123456789012:assumed-role/Role/bob",
        execution_role_arn="arn:aws:iam::123456789012:role/custom",
        release_label="emr-7.1.0",
    )
    bare = store.add_session(app, state="SUBMITTED", idle_timeout_minutes=None)
    for state in ("STARTING", "STARTED", "BUSY", "FAILED", "TERMINATING", "TERMINATED", MADE_UP_STATE):
        store.add_session(app, name=f"in {state}", state=state, created_at=now - 300, total_utilization=UTIL)
    return store, app, full, bare


def add_job_runs(store: Store, app: str, now: float) -> tuple[str, str, str]:
    """Job runs in every state (static), one with every optional field, one with none, and lifecycle ones:
    three holding the application's slots, one QUEUED behind them, a streaming run on its 7th attempt."""
    full = store.add_job_run(
        app, name="every field", state="RUNNING", mode="STREAMING", created_at=now - 900, started_at=now - 850,
        tags={"aws:cloudformation:stack-name": "s", "team": "data-eng", "empty": ""},
        total_utilization=UTIL, billed_utilization=UTIL, execution_duration_seconds=850,
        created_by="arn:aws:sts::123456789012:assumed-role/airflow/worker", execution_role_arn=ROLE,
        release_label="emr-7.1.0", attempt=3, attempt_created_at=now - 100.5, queued_duration_ms=1234,
        execution_timeout_minutes=0, retry_policy={"maxFailedAttemptsPerHour": 5}, job_driver=DRIVER,
        network_configuration={"subnetIds": ["subnet-0123"], "securityGroupIds": ["sg-0123"]},
        configuration_overrides={"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.executor.cores": "4"}}],
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs/"}}},
    )
    bare = store.add_job_run(app, state="SUBMITTED", mode=None, attempt=None)
    store.update_job_run(app, bare, type=None)  # added runs take the application's type
    for state in (*JOB_RUN_STATES, MADE_UP_STATE):
        store.add_job_run(app, name=f"in {state}", state=state, created_at=now - 300, total_utilization=UTIL,
                          job_driver={"hive": {"query": "SELECT 1"}} if state == "QUEUED" else None)
    for n in range(4):
        store.add_job_run(app, name=f"slot {n}", lifecycle=JobRunLifecycle(
            created_at=now - 600 + n, running_seconds=3600, failed_attempts=1, failed_attempt_seconds=60))
    streaming = store.add_job_run(app, name="stream", mode="STREAMING", lifecycle=JobRunLifecycle(
        created_at=now - 3600, running_seconds=None, failed_attempts=None, failed_attempt_seconds=480,
        admitted_at=now - 3598))
    return full, bare, streaming


def drive(client: Any, store: Store) -> None:
    """Call every read operation over everything in the store, following every page."""
    apps = [a for page in client.get_paginator("list_applications").paginate(PaginationConfig={"PageSize": 1})
            for a in page["applications"]]
    assert {a["id"] for a in apps} == set(store.application_ids())
    client.list_applications(states=["STARTED", "STOPPED"])
    for app in apps:
        assert client.get_application(applicationId=app["id"])["application"]["applicationId"] == app["id"]
        client.list_tags_for_resource(resourceArn=app["arn"])
        sessions = [s for page in client.get_paginator("list_sessions").paginate(
            applicationId=app["id"], PaginationConfig={"PageSize": 7}) for s in page["sessions"]]
        client.list_sessions(applicationId=app["id"], states=["IDLE", "BUSY", "TERMINATED"], maxResults=50)
        for summary in sessions[:60]:
            session = client.get_session(applicationId=app["id"], sessionId=summary["sessionId"])["session"]
            assert session["sessionId"] == summary["sessionId"]
        for summary in sessions[:3]:
            client.list_tags_for_resource(resourceArn=summary["arn"])
        runs = [r for page in client.get_paginator("list_job_runs").paginate(
            applicationId=app["id"], PaginationConfig={"PageSize": 7}) for r in page["jobRuns"]]
        assert {r["id"] for r in runs} == set(store.job_run_ids(app["id"]))
        client.list_job_runs(applicationId=app["id"], states=["RUNNING", "QUEUED", "SUCCESS", "FAILED"], maxResults=50)
        client.list_job_runs(applicationId=app["id"], mode="STREAMING")
        for summary in runs[:60]:
            run = client.get_job_run(applicationId=app["id"], jobRunId=summary["id"])["jobRun"]
            assert run["jobRunId"] == summary["id"]
            if summary.get("attempt", 1) > 1:
                attempts = client.list_job_run_attempts(applicationId=app["id"], jobRunId=summary["id"])
                assert len(attempts["jobRunAttempts"]) == summary["attempt"]
                client.get_job_run(applicationId=app["id"], jobRunId=summary["id"], attempt=1)
        for summary in runs[:3]:
            client.list_tags_for_resource(resourceArn=summary["arn"])


@pytest.fixture
def full() -> Iterator[tuple[Simulator, Store, str, str, str]]:
    store, app, full_id, bare_id = full_store()
    with Simulator(store) as sim:
        yield sim, store, app, full_id, bare_id


def test_validator_catches_what_it_should() -> None:
    # The contract below is only as good as this checker: it must reject each kind of mistake.
    session = MODEL.shape_for("Session")
    good = {
        "applicationId": "00abc", "sessionId": "00def",
        "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00abc/sessions/00def",
        "state": "IDLE", "stateDetails": "idle", "releaseLabel": "emr-7.2.0",
        "executionRoleArn": "arn:aws:iam::123456789012:role/r", "createdBy": "arn:aws:iam::123456789012:user/a",
        "createdAt": 1.5, "updatedAt": 2, "tags": {"k": "v"}, "idleTimeoutMinutes": 3,
        "totalResourceUtilization": {"vCPUHour": 1.0},
    }
    assert validate(session, good) == []
    bad_cases = [
        {k: v for k, v in good.items() if k != "stateDetails"},  # required member missing
        {**good, "surprise": 1},  # unknown member
        {**good, "state": "SLEEPING"},  # not in the enum
        {**good, "createdAt": "2024-01-01T00:00:00Z"},  # timestamp not a number
        {**good, "idleTimeoutMinutes": 1.5},  # long not an integer
        {**good, "idleTimeoutMinutes": True},
        {**good, "totalResourceUtilization": {"vCPUHour": "1"}},  # double as a string
        {**good, "tags": {"k": 1}},
        {**good, "tags": {"": "v"}},  # key shorter than min 1
        {**good, "stateDetails": ""},
        {**good, "arn": "arn:too-short"},
        {**good, "tags": ["k"]},
    ]
    for case in bad_cases:
        assert validate(session, case), case


def test_every_operation_matches_the_model(full: tuple[Simulator, Store, str, str, str]) -> None:
    sim, store, app, full_id, _bare_id = full
    recorder = Recorder()
    client = make_client(sim.url, recorder)
    drive(client, store)
    started = client.start_session(
        applicationId=app, executionRoleArn="arn:aws:iam::123456789012:role/r", name="new", tags={"a": "b"},
        idleTimeoutMinutes=30,
    )
    client.get_session(applicationId=app, sessionId=started["sessionId"])
    client.terminate_session(applicationId=app, sessionId=started["sessionId"])
    client.terminate_session(applicationId=app, sessionId=full_id)
    for mode in ("BATCH", "STREAMING"):
        run = client.start_job_run(
            applicationId=app, executionRoleArn=ROLE, jobDriver=DRIVER, name=f"new {mode}", mode=mode,
            tags={"a": "b"}, executionTimeoutMinutes=60, retryPolicy={"maxAttempts": 2},
            configurationOverrides={"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://l/"}}},
        )
        client.get_job_run(applicationId=app, jobRunId=run["jobRunId"])
        client.list_job_run_attempts(applicationId=app, jobRunId=run["jobRunId"])
        client.cancel_job_run(applicationId=app, jobRunId=run["jobRunId"])
        client.get_job_run(applicationId=app, jobRunId=run["jobRunId"])
    assert recorder.operations() == ALL_OPERATIONS
    assert recorder.problems() == []


def test_optional_fields_present_when_set_and_absent_when_not(
    full: tuple[Simulator, Store, str, str, str],
) -> None:
    sim, _store, app, full_id, bare_id = full
    recorder = Recorder()
    client = make_client(sim.url, recorder)
    client.get_session(applicationId=app, sessionId=full_id)
    client.get_session(applicationId=app, sessionId=bare_id)
    client.list_sessions(applicationId=app)
    full_body = json.loads(recorder.responses[0][3])["session"]
    bare_body = json.loads(recorder.responses[1][3])["session"]
    optional = {
        "name", "startedAt", "idleSince", "idleTimeoutMinutes", "tags", "totalResourceUtilization",
        "billedResourceUtilization", "totalExecutionDurationSeconds",
    }
    assert optional <= set(full_body)
    assert "endedAt" not in full_body  # IDLE: not ended
    assert not (optional | {"endedAt"}) & set(bare_body)
    assert full_body["idleSince"] == pytest.approx(time.time() - 60.123, abs=5)
    assert full_body["totalResourceUtilization"] == UTIL
    assert full_body["tags"]["k.e-y"] == 'q"uote\\back ünï ✓'
    summaries = json.loads(recorder.responses[2][3])["sessions"]
    assert all("tags" not in s and "totalResourceUtilization" not in s for s in summaries)
    assert {s["state"] for s in summaries} >= {MADE_UP_STATE, "SUBMITTED", "TERMINATED"}
    assert recorder.problems() == []


def test_job_run_optional_fields_present_when_set_and_absent_when_not() -> None:
    store = Store(clock=time.time)
    app = store.add_application(name="runs")
    full_id, bare_id, streaming_id = add_job_runs(store, app, time.time())
    recorder = Recorder()
    with Simulator(store) as sim:
        client = make_client(sim.url, recorder)
        client.get_job_run(applicationId=app, jobRunId=full_id)
        client.get_job_run(applicationId=app, jobRunId=bare_id)
        client.list_job_runs(applicationId=app)
        client.get_job_run(applicationId=app, jobRunId=streaming_id)
        client.list_job_run_attempts(applicationId=app, jobRunId=streaming_id)
    full_body, bare_body, listing, streaming, attempts = (json.loads(body) for *_, body in recorder.responses)
    full_run, bare_run = full_body["jobRun"], bare_body["jobRun"]
    optional = {
        "name", "mode", "startedAt", "tags", "totalResourceUtilization", "billedResourceUtilization",
        "totalExecutionDurationSeconds", "networkConfiguration", "configurationOverrides", "retryPolicy", "attempt",
        "attemptCreatedAt", "attemptUpdatedAt", "queuedDurationMilliseconds",
    }
    assert optional <= set(full_run)
    assert "endedAt" not in full_run  # RUNNING: not ended
    assert not (optional | {"endedAt"}) & set(bare_run)
    assert bare_run["jobDriver"]["sparkSubmit"]["entryPoint"]  # required: a default when none was given
    assert full_run["jobDriver"] == DRIVER and full_run["attempt"] == 3
    assert full_run["attemptCreatedAt"] == pytest.approx(time.time() - 100.5, abs=5)
    summaries = {summary["id"]: summary for summary in listing["jobRuns"]}
    assert {"type", "mode", "attempt", "attemptCreatedAt"} <= set(summaries[full_id])
    assert not {"type", "mode", "attempt"} & set(summaries[bare_id])
    assert all("tags" not in s and "totalResourceUtilization" not in s for s in summaries.values())
    assert {s["state"] for s in summaries.values()} == {*JOB_RUN_STATES, MADE_UP_STATE}
    assert streaming["jobRun"]["attempt"] == len(attempts["jobRunAttempts"]) == 8  # 3600 s at 480 + 30 a go
    assert recorder.problems() == []


def test_application_capacity_present_when_set_and_absent_when_not(
    full: tuple[Simulator, Store, str, str, str],
) -> None:
    sim, store, app, _full_id, _bare_id = full
    recorder = Recorder()
    client = make_client(sim.url, recorder)
    bare = next(other for other in store.application_ids() if other != app)
    before = client.get_application(applicationId=app)["application"]["updatedAt"]
    client.get_application(applicationId=bare)
    store.configure_application(app, maximum_capacity={"cpu": "8", "memory": "32"})
    after = client.get_application(applicationId=app)["application"]
    full_body, bare_body, changed = (json.loads(body)["application"] for *_, body in recorder.responses)
    assert full_body["maximumCapacity"] == {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"}
    assert full_body["initialCapacity"]["Driver"]["workerCount"] == 1
    assert full_body["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}
    assert "maximumCapacity" not in bare_body and "initialCapacity" not in bare_body
    assert full_body["schedulerConfiguration"] == {"maxConcurrentRuns": 3, "queueTimeoutMinutes": 30}
    assert "schedulerConfiguration" not in bare_body
    assert bare_body["autoStartConfiguration"] == {"enabled": False}
    assert bare_body["autoStopConfiguration"] == {"enabled": False}
    assert changed["maximumCapacity"] == {"cpu": "8", "memory": "32"}
    assert after["updatedAt"] > before  # UpdateApplication's effect: ListApplications shows the change
    assert recorder.problems() == []


@pytest.mark.parametrize("scenario", ["demo", "scale"])
def test_scenarios_match_the_model(scenario: str) -> None:
    store = build_scenario(scenario, applications=3, sessions_per_application=30, active_fraction=0.3, seed=7,
                           running_job_runs_per_application=10, ended_job_runs_per_application=20)
    recorder = Recorder()
    with Simulator(store) as sim:
        drive(make_client(sim.url, recorder), store)
    assert recorder.operations() >= {"ListApplications", "GetApplication", "ListSessions", "GetSession",
                                     "ListJobRuns", "GetJobRun", "ListJobRunAttempts"}
    assert len(recorder.responses) > 20
    assert recorder.problems() == []


@pytest.mark.parametrize(
    ("code", "status", "modeled"),
    [
        ("ResourceNotFoundException", 404, True),
        ("ValidationException", 400, True),
        ("InternalServerException", 500, True),
        ("ConflictException", 409, True),
        ("ThrottlingException", 400, False),
        ("AccessDeniedException", 403, False),
    ],
)
def test_injected_errors_parse_in_boto3(code: str, status: int, modeled: bool) -> None:
    store, app, full_id, _ = full_store()
    store.add_fault(Fault(operation="GetSession", error_code=code))
    recorder = Recorder()
    with Simulator(store) as sim:
        client = make_client(sim.url, recorder)
        with pytest.raises(ClientError) as caught:
            client.get_session(applicationId=app, sessionId=full_id)
    error = caught.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["Error"]["Message"]
    if modeled:
        assert isinstance(caught.value, getattr(client.exceptions, code))
    assert recorder.problems() == []


def test_real_errors_parse_in_boto3(full: tuple[Simulator, Store, str, str, str]) -> None:
    sim, store, app, _full_id, _ = full
    recorder = Recorder()
    client = make_client(sim.url, recorder)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_session(applicationId=app, sessionId="00nosuchsession")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_application(applicationId="00nosuchapp")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_sessions(applicationId="00nosuchapp")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(resourceArn=store.session_arn(app, "00nosuchsession"))
    with pytest.raises(client.exceptions.ValidationException):
        client.get_session(applicationId=app, sessionId="UPPER-case")
    with pytest.raises(client.exceptions.ValidationException):
        client.list_sessions(applicationId=app, states=["NAPPING"])
    store.set_application_state(app, "TERMINATED")
    with pytest.raises(client.exceptions.ConflictException):
        client.start_session(applicationId=app, executionRoleArn="arn:aws:iam::123456789012:role/r")
    assert len(recorder.responses) == 7
    assert recorder.problems() == []


def test_job_run_errors_parse_in_boto3(full: tuple[Simulator, Store, str, str, str]) -> None:
    sim, store, app, _full_id, _ = full
    recorder = Recorder()
    client = make_client(sim.url, recorder)
    unvalidated = simulator_client(sim.url, validate=False)  # sends what botocore would refuse
    unvalidated.meta.events.register("before-parse.emr-serverless", recorder)
    static = store.add_job_run(app, state="RUNNING")
    ended = store.add_job_run(app, state="SUCCESS")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_job_run(applicationId=app, jobRunId="00nosuchrun")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_job_run(applicationId=app, jobRunId=static, attempt=2)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_job_runs(applicationId="00nosuchapp")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_job_run_attempts(applicationId=app, jobRunId="00nosuchrun")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.cancel_job_run(applicationId=app, jobRunId="00nosuchrun")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_tags_for_resource(resourceArn=store.job_run_arn(app, "00nosuchrun"))
    with pytest.raises(client.exceptions.ValidationException):
        client.cancel_job_run(applicationId=app, jobRunId=ended)  # already final
    with pytest.raises(client.exceptions.ValidationException):
        client.get_job_run(applicationId=app, jobRunId="UPPER-case")
    with pytest.raises(client.exceptions.ValidationException):
        unvalidated.list_job_runs(applicationId=app, mode="INTERACTIVE")
    with pytest.raises(client.exceptions.ValidationException):
        unvalidated.start_job_run(applicationId=app, executionRoleArn=ROLE, jobDriver={})
    store.set_application_state(app, "TERMINATED")
    with pytest.raises(client.exceptions.ConflictException):
        client.start_job_run(applicationId=app, executionRoleArn=ROLE, jobDriver=DRIVER)
    assert len(recorder.responses) == 11
    assert recorder.problems() == []


def test_unknown_path_and_missing_authentication() -> None:
    store, _app, _, _ = full_store()
    with Simulator(store, require_auth=True) as sim:
        connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
        connection.request("GET", "/applications", headers={"Authorization": "AWS4-HMAC-SHA256 x"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["applications"]
        connection.request("GET", "/no/such/thing", headers={"Authorization": "x"})
        response = connection.getresponse()
        assert (response.status, response.getheader("x-amzn-ErrorType")) == (404, "UnknownOperationException")
        assert set(json.loads(response.read())) == {"message"}
        connection.request("GET", "/applications")  # same keep-alive connection, no Authorization
        response = connection.getresponse()
        assert (response.status, response.getheader("x-amzn-ErrorType")) == (
            403, "MissingAuthenticationTokenException")
        response.read()
        connection.close()
        # boto3 always signs, even with dummy credentials, so it gets through.
        assert make_client(sim.url).list_applications()["applications"]
