"""The exporter's boto3 client against the simulator: one attempt per call with none of botocore's retry
work, and wire timestamps as UTC datetimes of the same instant."""

from __future__ import annotations

from datetime import timezone
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emr_serverless_simulator import Fault, Simulator, Store
from exporter import __version__
from exporter.aws.calls import make_client, utc_timestamp
from exporter.config.schema import AwsConfig


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
