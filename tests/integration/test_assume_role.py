"""Cross-account targets: role assumption against a real STS endpoint on loopback (moto's server mode)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import boto3
import botocore.credentials
import moto.sts.models
import pytest
import yaml
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

from emr_serverless_simulator import Simulator, Store
from exporter.aws.calls import (
    ROLE_SESSION_NAME,
    ApiCallCounter,
    EmrServerlessApi,
    assume_role_session,
    make_client,
)
from exporter.common.deadline import Deadline
from exporter.config.schema import AwsConfig, parse_config
from exporter.wiring import build_registry, build_runner
from tests.helpers.support import free_port, samples_of, session_ids, value

ROLE_ACCOUNT = "210987654321"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/emr-serverless-exporter"


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", url)  # botocore's per-service endpoint override
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def role_account() -> Iterator[tuple[Store, Simulator]]:
    store = Store(account_id=ROLE_ACCOUNT)
    app = store.add_application(name="analytics")
    store.add_session(app, state="IDLE")
    with Simulator(store, port=0) as sim:
        yield store, sim


def assumed_roles() -> list[object]:
    return [role for backend in sts_backends[ROLE_ACCOUNT].values() for role in backend.assumed_roles]


def test_target_with_role_arn_collects_as_the_role(sts: str, role_account: tuple[Store, Simulator]) -> None:
    store, sim = role_account
    before = len(assumed_roles())
    config = parse_config(yaml.safe_dump({"targets": [
        {"region": "us-east-1", "endpoint_url": sim.url, "role_arn": ROLE_ARN, "external_id": "ext-42"}
    ]}))
    runner = build_runner(config)
    try:
        results = runner.collect()
        samples = samples_of(build_registry_text(runner, config))
    finally:
        runner.close()
    assert results[0].up, results[0].errors
    assert len(session_ids(samples)) == 1
    assert value(samples, "emr_serverless_up", target=f"{ROLE_ACCOUNT}/us-east-1", account_id=ROLE_ACCOUNT) == 1
    # Every request was signed with the assumed role's temporary key, not the source credentials.
    assert "testing" not in store.access_keys
    assert store.access_keys and all(key.startswith("ASIA") for key in store.access_keys)
    roles = assumed_roles()[before:]
    assert [(r.role_arn, r.external_id, r.session_name) for r in roles] == [  # type: ignore[attr-defined]
        (ROLE_ARN, "ext-42", ROLE_SESSION_NAME)
    ]


def build_registry_text(runner: object, config: object) -> str:
    from prometheus_client.exposition import generate_latest

    return generate_latest(build_registry(runner, config)).decode()  # type: ignore[arg-type]


def test_expired_credentials_are_refreshed(
    sts: str, role_account: tuple[Store, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sim = role_account
    before = len(assumed_roles())  # moto's backend is process-wide
    now = [datetime.now(timezone.utc)]
    # botocore's own refresh logic, with its clock (and STS's) moved forward: no hand-made timer involved.
    monkeypatch.setattr(botocore.credentials, "_local_now", lambda: now[0])
    monkeypatch.setattr(moto.sts.models, "utcnow", lambda: now[0].replace(tzinfo=None))
    session = assume_role_session(boto3.Session(), region="us-east-1", role_arn=ROLE_ARN, external_id=None,
                                  time_fetcher=lambda: now[0])
    api = EmrServerlessApi(make_client(AwsConfig(), region="us-east-1", endpoint_url=sim.url, session=session),
                           ApiCallCounter())
    api.list_applications(Deadline.after(30))
    api.list_applications(Deadline.after(30))
    first_keys = set(store.access_keys)
    assert len(first_keys) == 1 and len(assumed_roles()) == before + 1  # valid credentials are reused

    now[0] += timedelta(hours=2)  # past the role session's one-hour expiry
    api.list_applications(Deadline.after(30))
    assert len(assumed_roles()) == before + 2
    assert set(store.access_keys) - first_keys, "the request after expiry was not signed with fresh credentials"


def test_unreachable_sts_makes_only_that_target_down(monkeypatch: pytest.MonkeyPatch,
                                                      role_account: tuple[Store, Simulator]) -> None:
    _, sim = role_account
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{free_port()}")
    config = parse_config(yaml.safe_dump({
        "targets": [
            {"region": "us-east-1", "endpoint_url": sim.url, "role_arn": ROLE_ARN, "name": "cross"},
            {"region": "us-east-1", "endpoint_url": sim.url, "name": "direct"},
        ],
        "aws": {"max_attempts": 1, "connect_timeout_seconds": 1},
    }))
    runner = build_runner(config)
    try:
        runner.collect()
        samples = samples_of(build_registry_text(runner, config))
    finally:
        runner.close()
    assert value(samples, "emr_serverless_up", target="cross") == 0
    assert value(samples, "emr_serverless_up", target="direct") == 1
    outcomes = {(s.labels["operation"], s.labels["outcome"]) for s in samples["emr_serverless_api_requests_total"]
                if s.labels["target"] == "cross"}
    assert outcomes and all(outcome != "ok" for _, outcome in outcomes)
