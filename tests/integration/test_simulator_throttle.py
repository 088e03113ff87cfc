"""The simulator throttles like AWS: a token bucket per operation, ``ThrottlingException`` (400) when empty."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_serverless_simulator import Fault, Simulator, Store, Throttle, TokenBucket
from emr_serverless_simulator.throttle import parse_throttle_spec
from tests.helpers.support import FakeClock, simulator_client


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def store(monotonic: FakeClock) -> Store:
    store = Store(monotonic=monotonic)
    app = store.add_application(name="a")
    store.add_session(app, session_id="00s1")
    return store


@pytest.fixture
def sim(store: Store) -> Iterator[Simulator]:
    with Simulator(store) as simulator:
        yield simulator


def admitted(store: Store, operation: str, requests: int) -> int:
    return sum(store.check_faults(operation, {})[1] is None for _ in range(requests))


# --- the bucket -------------------------------------------------------------------------------------


def test_bucket_admits_the_burst_then_the_rate(monotonic: FakeClock) -> None:
    bucket = TokenBucket(rate=4, burst=10, clock=monotonic)
    assert [bucket.take() for _ in range(12)] == [True] * 10 + [False] * 2
    monotonic.advance(0.5)  # 2 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    monotonic.advance(0.1)  # 0.4 of a token: not yet
    assert not bucket.take()
    monotonic.advance(0.15)  # 1.0 token
    assert bucket.take()
    # Over a long run, admitted = burst + rate x elapsed, whatever the request pattern.
    total = 0
    for _ in range(100):
        monotonic.advance(0.1)
        total += sum(bucket.take() for _ in range(3))
    assert total == 40
    monotonic.advance(3600)  # idle for an hour: the bucket holds the burst, no more
    assert sum(bucket.take() for _ in range(100)) == 10


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (float("nan"), 5), (float("inf"), 5), (1, 0.5)])
def test_bucket_refuses_nonsense(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_throttle_spec() -> None:
    assert parse_throttle_spec("GetSession:10:50") == Throttle("GetSession", 10.0, 50.0)
    assert parse_throttle_spec("*:2.5") == Throttle("*", 2.5, None)
    assert Throttle("GetSession", 10).capacity == 10 and Throttle("GetSession", 0.5).capacity == 1
    for bad in ("GetSession", "GetSession:ten", ":1", "GetSession:1:2:3", "GetSession:0", "GetSession:1:0"):
        with pytest.raises(ValueError):
            parse_throttle_spec(bad)


# --- the store ----------------------------------------------------------------------------------------


def test_store_throttles_per_operation(store: Store, monotonic: FakeClock) -> None:
    store.set_throttle("GetSession", rate=2, burst=3)
    assert admitted(store, "GetSession", 5) == 3
    assert admitted(store, "ListSessions", 50) == 50  # other operations have their own (no) limit
    monotonic.advance(1.0)
    assert admitted(store, "GetSession", 5) == 2
    assert store.throttled == Counter({"GetSession": 5})
    _, error = store.check_faults("GetSession", {})
    assert error is not None
    assert (error.code, error.status, error.message) == ("ThrottlingException", 400, "Rate exceeded")


def test_star_gives_each_operation_its_own_bucket_and_an_own_limit_wins(store: Store) -> None:
    store.set_throttle("*", rate=1, burst=2)
    store.set_throttle("GetSession", rate=1, burst=5)
    assert admitted(store, "ListApplications", 10) == 2
    assert admitted(store, "ListSessions", 10) == 2
    assert admitted(store, "GetSession", 10) == 5
    store.clear_throttles()
    assert admitted(store, "GetSession", 10) == 10


def test_set_throttle_again_starts_a_full_bucket(store: Store) -> None:
    store.set_throttle("GetSession", rate=1, burst=2)
    assert admitted(store, "GetSession", 5) == 2
    store.set_throttle("GetSession", rate=1, burst=4)
    assert admitted(store, "GetSession", 5) == 4


def test_constructor_takes_throttles(monotonic: FakeClock) -> None:
    store = Store(throttles=[Throttle("ListApplications", 1, 2)], monotonic=monotonic)
    assert store.throttles() == [Throttle("ListApplications", 1, 2)]
    assert admitted(store, "ListApplications", 4) == 2


def test_the_rate_limit_comes_before_random_faults(store: Store) -> None:
    store.add_fault(Fault(operation="GetSession", error_code="InternalServerException"))
    store.set_throttle("GetSession", rate=1, burst=1)
    codes = [error.code for _, error in (store.check_faults("GetSession", {}) for _ in range(3)) if error]
    assert codes == ["InternalServerException", "ThrottlingException", "ThrottlingException"]


# --- over HTTP ----------------------------------------------------------------------------------------


def test_boto3_sees_a_client_error_with_code_throttling_exception(store: Store, sim: Simulator) -> None:
    store.set_throttle("GetSession", rate=1, burst=2)
    app = store.application_ids()[0]
    client = simulator_client(sim.url)
    for _ in range(2):
        assert client.get_session(applicationId=app, sessionId="00s1")["session"]["sessionId"] == "00s1"
    with pytest.raises(ClientError) as caught:
        client.get_session(applicationId=app, sessionId="00s1")
    error: Any = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["Error"]["Message"] == "Rate exceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Not in the emr-serverless model: no modelled exception class, a plain ClientError.
    assert type(caught.value) is ClientError
    assert client.list_applications()["applications"]  # other operations are not throttled
    assert store.calls["GetSession"] == 3 and store.throttled["GetSession"] == 1


def test_the_error_has_aws_common_shape_on_the_wire(store: Store, sim: Simulator) -> None:
    store.set_throttle("ListApplications", rate=1, burst=1)
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        statuses = []
        for _ in range(2):
            connection.request("GET", "/applications")
            response = connection.getresponse()
            body = response.read()
            statuses.append(response.status)
        assert statuses == [200, 400]
        assert response.getheader("x-amzn-ErrorType") == "ThrottlingException"
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("x-amzn-RequestId")
        assert json.loads(body) == {"message": "Rate exceeded"}
    finally:
        connection.close()


def test_request_times_are_recorded_per_operation(store: Store, sim: Simulator, monotonic: FakeClock) -> None:
    store.set_throttle("GetSession", rate=1, burst=1)
    app = store.application_ids()[0]
    client = simulator_client(sim.url)
    client.list_applications()
    monotonic.advance(0.25)
    for _ in range(3):
        with contextlib.suppress(ClientError):
            client.get_session(applicationId=app, sessionId="00s1")
        monotonic.advance(0.5)
    assert store.call_times("ListApplications") == [1000.0]
    assert store.call_times("GetSession") == [1000.25, 1000.75, 1001.25]  # throttled ones included
    assert store.throttled["GetSession"] == 1  # 1000.75: half a token; 1001.25: one again
    store.reset_calls()
    assert store.call_times("GetSession") == [] and not store.throttled


# --- the command line ---------------------------------------------------------------------------------


def test_cli_throttle_flag() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emr_serverless_simulator", "--port", "0", "--scenario", "scale", "--applications", "1",
         "--sessions-per-application", "1", "--throttle", "ListApplications:0.001:2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert match, first
        client = simulator_client(match[1])
        client.list_applications()
        client.list_applications()
        with pytest.raises(ClientError) as caught:
            client.list_applications()  # a token every 1000 s: the third is refused
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and "Traceback" not in stderr
    for bad in ("GetSession", "GetSession:fast", "GetSession:0"):
        result = subprocess.run([sys.executable, "-m", "emr_serverless_simulator", "--throttle", bad],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2, bad
        assert "--throttle" in result.stderr and "Traceback" not in result.stderr
    assert "OP:RATE[:BURST]" in subprocess.run(
        [sys.executable, "-m", "emr_serverless_simulator", "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
