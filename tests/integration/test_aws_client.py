"""The exporter's boto3 client against the simulator and the hostile endpoint: one attempt per call with none
of botocore's retry work, wire timestamps as UTC datetimes of the same instant, a bound on what one response
may allocate, and every request sent counted once (a request abandoned at the deadline as ``Timeout``)."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from datetime import timezone
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from emr_serverless_simulator import Fault, Simulator, Store
from exporter import __version__
from exporter.aws.calls import (
    MAX_RESPONSE_BYTES,
    ApiCallCounter,
    ApiError,
    EmrServerlessApi,
    ResponseTooLarge,
    make_client,
    utc_timestamp,
)
from exporter.common.deadline import Deadline
from exporter.config.schema import AwsConfig, parse_config
from exporter.model.kinds import SESSIONS
from exporter.wiring import build_runner
from tests.helpers.hostile_endpoint import (
    BAD_APP,
    BAD_SESSION,
    GOOD_APP,
    GOOD_IDLE,
    HostileEndpoint,
    Request,
    Response,
    error_response,
    make_session,
)


def client_for(simulator: Simulator) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return make_client(AwsConfig(), region="us-east-1", endpoint_url=simulator.url, session=session)


def test_one_attempt_per_call_without_botocore_retry_headers(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="a")
    session_id = store.add_session(app, created_at=1_764_000_000.25)
    client = client_for(simulator)
    sent: list[dict[str, Any]] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(dict(request.headers)))
    got = client.get_session(applicationId=app, sessionId=session_id)["session"]
    assert got["createdAt"].tzinfo is timezone.utc and got["createdAt"].timestamp() == 1_764_000_000.25
    assert "Authorization" in sent[0]  # still signed
    assert not {"amz-sdk-invocation-id", "amz-sdk-request"} & {name.lower() for name in sent[0]}
    # The User-Agent is built once per call: botocore's rebuild after signing is not run.
    assert f"emr-serverless-exporter/{__version__}" in sent[0]["User-Agent"].decode()
    built: list[str] = []
    creator = client._user_agent_creator
    build = creator.to_string

    def counted() -> str:
        built.append(build())
        return built[-1]

    creator.to_string = counted
    client.get_session(applicationId=app, sessionId=session_id)
    assert len(built) == 1
    store.add_fault(Fault(operation="GetSession", error_code="ThrottlingException"))
    calls = store.calls["GetSession"]
    with pytest.raises(ClientError):
        client.get_session(applicationId=app, sessionId=session_id)
    assert store.calls["GetSession"] == calls + 1  # retries are the exporter's own, never botocore's


def test_timestamps_other_than_epoch_numbers_parse_as_botocore_parses_them() -> None:
    assert utc_timestamp("2025-01-01T00:00:00Z").timestamp() == 1_735_689_600
    with pytest.raises((OverflowError, OSError, ValueError)):
        utc_timestamp(1e20)  # out of range: the response is invalid, as with botocore's parser


class _OlderUserAgent:
    """A client's User-Agent creator as botocore 1.34 has it (pyproject allows boto3>=1.34): no rebuild
    handler after signing (checked in botocore-1.34.162's client.py)."""

    def __init__(self, creator: Any) -> None:
        self._creator = creator

    def to_string(self) -> str:
        return str(self._creator.to_string())


def test_a_botocore_without_the_user_agent_rebuild_still_gets_a_client(
    store: Store, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = boto3.Session.client

    def client(self: boto3.Session, *args: Any, **kwargs: Any) -> Any:
        real = made(self, *args, **kwargs)
        real._user_agent_creator = _OlderUserAgent(real._user_agent_creator)
        return real

    monkeypatch.setattr(boto3.Session, "client", client)
    app = store.add_application(name="a")
    got = client_for(simulator).list_sessions(applicationId=app)  # was: AttributeError at start, a traceback
    assert got["sessions"] == []


# --- what one response may allocate ------------------------------------------------------------------------


def hostile_client(endpoint: HostileEndpoint) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return make_client(AwsConfig(), region="us-east-1", endpoint_url=endpoint.url, session=session)


def session_body(**extra: Any) -> bytes:
    """A GetSession answer for BAD_SESSION with ``extra`` members."""
    payload = {"session": make_session(BAD_APP, BAD_SESSION, "victim", "IDLE", time.time() - 60, **extra)}
    return json.dumps(payload).encode()


def peak_allocation(call: Any) -> tuple[int, BaseException | None]:
    """The most memory Python held at once during ``call()`` (beyond what it held before), and what it raised."""
    tracemalloc.start()
    try:
        call()
        error = None
    except Exception as err:
        error = err
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("chunked", [0, 64 * 1024], ids=["content-length", "chunked"])
def test_a_body_over_the_bound_is_not_read_whole(chunked: int) -> None:
    """A 10 MB stateDetails: the call fails as ResponseTooLarge having allocated about the bound at most (it
    read the whole body, then parsed it, before), and the client's next call works."""
    body = session_body(stateDetails="x" * 10_000_000)
    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", Response(200, body, chunked=chunked), match={"sessionId": BAD_SESSION})
        client = hostile_client(endpoint)
        client.get_session(applicationId=GOOD_APP, sessionId=GOOD_IDLE)  # a pooled connection, warmed up
        peak, error = peak_allocation(lambda: client.get_session(applicationId=BAD_APP, sessionId=BAD_SESSION))
        assert isinstance(error, ResponseTooLarge), error
        assert peak < 3 * MAX_RESPONSE_BYTES, peak
        got = client.get_session(applicationId=GOOD_APP, sessionId=GOOD_IDLE)["session"]
        assert got["sessionId"] == GOOD_IDLE


def test_a_body_under_the_bound_is_read_as_before() -> None:
    """Members the exporter does not read (a session's configuration) count toward the bound, not against
    the object: 900 KB of Spark properties is a valid session."""
    properties = {f"spark.conf.{i}": "v" * 80 for i in range(10_000)}
    body = session_body(configurationOverrides={"runtimeConfiguration": [
        {"classification": "spark-defaults", "properties": properties}]})
    assert 0.8 * MAX_RESPONSE_BYTES < len(body) < MAX_RESPONSE_BYTES
    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", Response(200, body, chunked=64 * 1024), match={"sessionId": BAD_SESSION})
        api = EmrServerlessApi(hostile_client(endpoint), ApiCallCounter(), max_attempts=1)
        session = api.get_object(SESSIONS, BAD_APP, BAD_SESSION, Deadline.after(10))
    assert session is not None and session.session_id == BAD_SESSION
    assert api.calls.snapshot() == {("GetSession", "ok"): 1}


def test_a_response_over_the_bound_is_a_counted_outcome() -> None:
    """GetSession: its one session dropped and counted invalid (as for any invalid response); a listing: the
    call fails. Each counted once as ResponseTooLarge, not retried, and logged once (``_drop``)."""
    big = b'{"sessions": [], "padding": "' + b"x" * (MAX_RESPONSE_BYTES + 1) + b'"}'
    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", Response(200, session_body(stateDetails="x" * 2_000_000)),
                         match={"sessionId": BAD_SESSION})
        endpoint.respond("ListSessions", Response(200, big, chunked=64 * 1024), match={"applicationId": BAD_APP})
        api = EmrServerlessApi(hostile_client(endpoint), ApiCallCounter(), max_attempts=5)
        assert api.get_object(SESSIONS, BAD_APP, BAD_SESSION, Deadline.after(10)) is None
        with pytest.raises(ApiError) as failed:
            api.list_objects(SESSIONS, BAD_APP, Deadline.after(10))
        assert failed.value.code == "ResponseTooLarge"
        calls = dict(endpoint.calls)
    assert api.calls.snapshot() == {("GetSession", "ResponseTooLarge"): 1, ("ListSessions", "ResponseTooLarge"): 1}
    assert api.calls.invalid_snapshot() == {"session": 1}
    assert calls == {"GetSession": 1, "ListSessions": 1}


def test_a_next_token_longer_than_the_model_allows_is_an_invalid_response() -> None:
    with HostileEndpoint() as endpoint:
        endpoint.transform("ListApplications", lambda request, payload: {**payload, "nextToken": "t" * 1025})
        api = EmrServerlessApi(hostile_client(endpoint), ApiCallCounter(), max_attempts=1)
        with pytest.raises(ApiError) as failed:
            api.list_applications(Deadline.after(10))
    assert failed.value.code == "InvalidResponse"


# --- every request sent is counted once ----------------------------------------------------------------------


def hanging(release: threading.Event) -> Any:
    """An answer that comes only once ``release`` is set (or after 30 s): then the usual one."""

    def answer(request: Request) -> Response | None:
        release.wait(30)
        return None

    return answer


def test_a_request_in_flight_at_the_deadline_is_counted_once_as_timeout() -> None:
    release = threading.Event()
    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", hanging(release))
        api = EmrServerlessApi(hostile_client(endpoint), ApiCallCounter(), max_attempts=1)
        deadline = Deadline.after(0.5)
        answers: list[Any] = []
        worker = threading.Thread(
            target=lambda: answers.append(api.get_object(SESSIONS, BAD_APP, BAD_SESSION, deadline)))
        worker.start()
        try:
            while endpoint.calls["GetSession"] == 0 or not deadline.passed:
                time.sleep(0.05)
            assert api.calls.snapshot() == {("GetSession", "Timeout"): 1}
        finally:
            release.set()
            worker.join(30)
        assert answers and answers[0] is not None  # the late answer reaches the caller, which ignores it
        assert api.calls.snapshot() == {("GetSession", "Timeout"): 1}  # and is not counted again


def test_every_request_sent_is_counted_in_the_collection_that_abandoned_it() -> None:
    """A collection whose GetSessions hang past its deadline: each one the endpoint received is counted as
    Timeout in that collection's own result; retries and later collections keep the sum of every outcome
    equal to the requests the endpoint received."""
    release = threading.Event()
    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", hanging(release))
        config = parse_config(yaml.safe_dump({
            "targets": [{"region": "us-east-1", "endpoint_url": endpoint.url, "name": "hostile"}],
            "aws": {"max_attempts": 3, "read_timeout_seconds": 30},
            "collection": {"timeout_seconds": 1.5, "min_interval_seconds": 0},
        }))
        runner = build_runner(config)
        try:
            first = runner.collect()[0]
            hung = endpoint.calls["GetSession"]
            assert hung > 0 and first.api_calls.get(("GetSession", "Timeout")) == hung, first.api_calls
            assert sum(first.api_calls.values()) == sum(endpoint.calls.values())
            assert not first.up  # calls that did not finish by the deadline fail the collection
            release.set()
            endpoint.clear()
            # Throttled twice, then answered: three requests sent, three counted.
            throttled = iter([error_response("ThrottlingException")] * 2)
            endpoint.respond("GetSession", lambda request: next(throttled, None), match={"sessionId": BAD_SESSION})
            second = runner.collect()[0]
        finally:
            release.set()
            runner.close()
        received = dict(endpoint.calls)
    assert second.up, second.errors
    assert second.api_calls.get(("GetSession", "ThrottlingException")) == 2
    assert sum(second.api_calls.values()) == sum(received.values()), (second.api_calls, received)


# --- a failed listing keeps nothing it listed -----------------------------------------------------------------


def test_a_failed_listing_keeps_nothing_it_listed() -> None:
    """The collection keeps a failed call's error (and, for a listing abandoned at the deadline, in a reference
    cycle until a full garbage collection): the error must not hold the summaries the listing had gathered.
    Three endless listings of 100 pages of 50 new sessions each held ~15,000 summaries (~5 MB) before."""
    with HostileEndpoint() as endpoint:
        endpoint.endless_pages("ListSessions", "new", match={"applicationId": BAD_APP}, page_size=50)
        api = EmrServerlessApi(hostile_client(endpoint), ApiCallCounter(), max_attempts=1, max_pages=100)
        kept: list[ApiError] = []
        with pytest.raises(ApiError):  # a first one warms up what lives on: the connection, botocore's caches
            api.list_objects(SESSIONS, BAD_APP, Deadline.after(60))
        tracemalloc.start()
        try:
            for _ in range(3):
                with pytest.raises(ApiError) as failed:
                    api.list_objects(SESSIONS, BAD_APP, Deadline.after(60))
                kept.append(failed.value)
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert [error.code for error in kept] == ["PageLimitExceeded"] * 3
    assert endpoint.calls["ListSessions"] == 4 * 100
    assert held < 1_000_000, f"{held / 1e6:.1f} MB held after three failed listings"
