"""The call plumbing without a network: every request sent counted once, and the bound on a response body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from exporter.aws.calls import ApiCallCounter, BoundedBodies, ResponseTooLarge
from exporter.common.deadline import Deadline

PASSED = Deadline(0.0)  # on the monotonic clock, long ago
OPEN = Deadline(float("inf"))


def test_a_request_answered_is_counted_with_its_outcome() -> None:
    calls = ApiCallCounter()
    ticket = calls.sent("GetSession", OPEN)
    assert calls.snapshot() == {}  # in flight, its deadline still ahead: not counted yet
    calls.answered(ticket, "GetSession", "ThrottlingException")
    calls.answered(calls.sent("GetSession", OPEN), "GetSession", "BrandNewFancyException")
    assert calls.snapshot() == {("GetSession", "ThrottlingException"): 1, ("GetSession", "Other"): 1}


def test_a_request_in_flight_past_its_deadline_is_counted_once_as_timeout() -> None:
    calls = ApiCallCounter()
    abandoned = calls.sent("ListSessions", PASSED)
    pending = calls.sent("GetSession", OPEN)
    assert calls.snapshot() == {("ListSessions", "Timeout"): 1}
    calls.answered(abandoned, "ListSessions", "ok")  # the late answer: its collection gave up on it
    calls.answered(pending, "GetSession", "ok")
    assert calls.snapshot() == {("ListSessions", "Timeout"): 1, ("GetSession", "ok"): 1}


def test_an_answer_before_the_snapshot_wins_over_the_deadline() -> None:
    calls = ApiCallCounter()
    calls.answered(calls.sent("GetSession", PASSED), "GetSession", "ok")
    assert calls.snapshot() == {("GetSession", "ok"): 1}


# --- the bound on a body -------------------------------------------------------------------------------------


class FakeRaw:
    """urllib3's response as botocore streams it: chunks, then the end; or an exception part way."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.read = 0
        self.closed = self.released = False

    def stream(self, amount: int) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += len(chunk)
            yield chunk
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


class FakeRequest:
    url = "https://emr-serverless.us-east-1.amazonaws.com/applications"

    def __init__(self) -> None:
        self.stream_output = False


class FakeSession:
    """botocore's HTTP session: it reads the body itself unless the request asks for a stream."""

    def __init__(self, raw: FakeRaw, headers: dict[str, str]) -> None:
        self.raw = raw
        self.headers = headers

    def send(self, request: FakeRequest) -> AWSResponse:
        response = AWSResponse(request.url, 200, HTTPHeaders.from_dict(self.headers), self.raw)
        if not request.stream_output:
            response.content  # noqa: B018 - botocore reads the whole body here
        return response


def send(raw: FakeRaw, headers: dict[str, str] | None = None, limit: int = 100) -> AWSResponse:
    response: AWSResponse = BoundedBodies(FakeSession(raw, headers or {}), limit).send(FakeRequest())
    return response


def test_a_body_within_the_bound_is_the_body() -> None:
    raw = FakeRaw([b"x" * 60, b"y" * 40])
    assert send(raw, {"Content-Length": "100"}).content == b"x" * 60 + b"y" * 40
    assert not raw.closed


def test_a_declared_length_over_the_bound_is_refused_before_reading() -> None:
    raw = FakeRaw([b"x" * 60, b"y" * 60])
    with pytest.raises(ResponseTooLarge, match="Content-Length 120"):
        send(raw, {"Content-Length": "120"})
    assert raw.read == 0 and raw.closed and raw.released


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "10"}, {"Content-Length": "garbage"}])
def test_a_body_longer_than_the_bound_is_given_up_part_way(headers: dict[str, str]) -> None:
    raw = FakeRaw([b"x" * 60] * 1000)  # no length, a lying one, a bad one: counted as it streams
    with pytest.raises(ResponseTooLarge):
        send(raw, headers)
    assert raw.read == 120 and raw.closed and raw.released


@pytest.mark.parametrize(("error", "raised"), [
    (ProtocolError("reset"), ConnectionClosedError),
    (Urllib3ReadTimeoutError(None, "/", "read timed out"), ReadTimeoutError),  # type: ignore[arg-type]
])
def test_a_failure_while_reading_is_botocores_as_its_send_raises_it(error: Exception, raised: type[Any]) -> None:
    """So that it keeps its outcome (a retried transient error), not an invalid response."""
    with pytest.raises(raised):
        send(FakeRaw([b"x"], error))
