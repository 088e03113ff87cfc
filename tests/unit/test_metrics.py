"""The metric table against GetSession / ListApplications payloads with every field of the API."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.parsers import create_parser
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from exporter.aws.calls import ApiError
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import MetricsConfig, parse_config
from exporter.metrics.applications import APPLICATION_FAMILIES
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.sessions import SESSION_FAMILIES, SESSION_TABLE, session_clock
from exporter.metrics.targets import TARGET_FAMILIES
from exporter.model.kinds import SESSIONS
from exporter.model.session import Application, Session, convert, label_safe
from exporter.render.exposition import Exposition

MODEL = botocore.session.get_session().get_service_model("emr-serverless")
NOW = 1_764_000_000.0
ACCOUNT = "123456789012"
APP_ARN = f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/00fabc"

# Every member of the Session shape, as the wire carries it (timestamps as epoch seconds).
FULL_SESSION_WIRE = {
    "applicationId": "00fabc",
    "sessionId": "00sess1",
    "arn": f"{APP_ARN}/sessions/00sess1",
    "name": "notebook-1",
    "state": "IDLE",
    "stateDetails": "Session is idle",
    "releaseLabel": "emr-7.2.0",
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/emr-exec",
    "createdBy": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "createdAt": NOW - 3600,
    "updatedAt": NOW - 60,
    "startedAt": NOW - 3500,
    "endedAt": NOW - 10,
    "idleSince": NOW - 300,
    "configurationOverrides": {
        "runtimeConfiguration": [{"classification": "spark-defaults", "properties": {"spark.executor.cores": "4"}}]
    },
    "networkConfiguration": {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]},
    "idleTimeoutMinutes": 30,
    "tags": {"team": "data", "aws:cloudformation:stack-name": "stack-1"},
    "totalResourceUtilization": {"vCPUHour": 1.5, "memoryGBHour": 6.25, "storageGBHour": 20.0},
    "billedResourceUtilization": {"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 0.5},
    "totalExecutionDurationSeconds": 3480,
}
REQUIRED_ONLY = {key: FULL_SESSION_WIRE[key] for key in MODEL.shape_for("Session").required_members}
APPLICATION_WIRE = {
    "id": "00fabc", "name": "analytics", "arn": APP_ARN, "releaseLabel": "emr-7.2.0", "type": "Spark",
    "state": "STARTED", "stateDetails": "", "createdAt": NOW - 86400, "updatedAt": NOW - 600,
    "architecture": "ARM64",
}


def parse(operation: str, body: dict[str, Any]) -> Any:
    """The payload as boto3 hands it to the exporter, through botocore's own rest-json parser."""
    parser = create_parser("rest-json")
    response = {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}
    shape = MODEL.operation_model(operation).output_shape
    assert shape is not None
    return parser.parse(response, shape)


def session(**overrides: Any) -> Session:
    """A GetSession payload as the exporter sees it: through botocore's parser, then the model."""
    return convert(parse("GetSession", {"session": {**FULL_SESSION_WIRE, **overrides}})["session"], Session)


def application(**overrides: Any) -> Application:
    raw = parse("ListApplications", {"applications": [{**APPLICATION_WIRE, **overrides}]})["applications"][0]
    return convert(raw, Application)


def result(sessions: list[Any], *, errors: list[ApiError] | None = None, apps: list[Any] | None = None) -> TargetResult:
    return TargetResult(
        identity=TargetIdentity(name="prod", region="us-east-1", account_id=ACCOUNT),
        applications=[application()] if apps is None else apps,
        objects={SESSIONS: sessions},
        errors=errors or [],
        started_at=NOW - 2,
        finished_at=NOW,
        last_success=NOW if not errors else NOW - 60,
        api_calls={("GetSession", "ok"): 3, ("ListSessions", "ThrottlingException"): 1},
    )


class FixedRunner(CollectionRunner):
    def __init__(self, results: list[TargetResult]) -> None:
        super().__init__([], timeout_seconds=1)
        self.latest = results


def exposition(results: list[TargetResult], config: MetricsConfig | None = None) -> dict[str, list[Any]]:
    """The samples as /metrics serves them, which are byte for byte the generic path's."""
    runner, config = FixedRunner(results), config or MetricsConfig()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EmrServerlessCollector(runner, config))
    body, _ = Exposition(runner, CollectorRegistry(auto_describe=False), config).render()
    assert body == generate_latest(registry)
    text = body.decode()
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def one(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    matching = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, f"{name} {labels}: {matching}"
    return float(matching[0].value)


def test_every_session_metric_from_a_full_get_session_payload() -> None:
    samples = exposition([result([session()])])
    labels = {"target": "prod", "region": "us-east-1", "account_id": ACCOUNT, "application_id": "00fabc",
              "application_name": "analytics", "session_id": "00sess1", "session_name": "notebook-1"}
    info = samples["emr_serverless_session_info"][0]
    assert info.labels == {**labels, "arn": FULL_SESSION_WIRE["arn"], "release_label": "emr-7.2.0",
                           "execution_role_arn": FULL_SESSION_WIRE["executionRoleArn"],
                           "created_by": FULL_SESSION_WIRE["createdBy"]}
    assert info.value == 1
    states = {s.labels["state"]: s.value for s in samples["emr_serverless_session_state"]}
    assert states == {state: (1.0 if state == "IDLE" else 0.0) for state in SESSIONS.states}
    assert one(samples, "emr_serverless_session_idle_seconds") == 300
    assert one(samples, "emr_serverless_session_idle_timeout_seconds") == 30 * 60
    assert one(samples, "emr_serverless_session_created_timestamp_seconds") == NOW - 3600
    assert one(samples, "emr_serverless_session_started_timestamp_seconds") == NOW - 3500
    assert one(samples, "emr_serverless_session_ended_timestamp_seconds") == NOW - 10
    assert one(samples, "emr_serverless_session_execution_duration_seconds") == 3480
    assert one(samples, "emr_serverless_session_vcpu_seconds_total") == 1.5 * 3600
    # AWS's GB is 2^30 bytes (exporter.metrics.families.BYTES_PER_GB)
    assert one(samples, "emr_serverless_session_memory_byte_seconds_total") == 6.25 * 3600 * 2**30
    assert one(samples, "emr_serverless_session_storage_byte_seconds_total") == 20.0 * 3600 * 2**30
    assert one(samples, "emr_serverless_session_billed_vcpu_seconds_total") == 2.0 * 3600
    assert one(samples, "emr_serverless_session_billed_memory_byte_seconds_total") == 8.0 * 3600 * 2**30
    assert one(samples, "emr_serverless_session_billed_storage_byte_seconds_total") == 0.5 * 3600 * 2**30
    for name in ("emr_serverless_session_vcpu_seconds_total", "emr_serverless_session_idle_seconds"):
        assert samples[name][0].labels == labels


def test_absent_fields_give_absent_series_not_zeros() -> None:
    minimal = convert(parse("GetSession", {"session": REQUIRED_ONLY})["session"], Session)
    samples = exposition([result([minimal])])
    for name in (
        "emr_serverless_session_idle_timeout_seconds",
        "emr_serverless_session_started_timestamp_seconds",
        "emr_serverless_session_ended_timestamp_seconds",
        "emr_serverless_session_execution_duration_seconds",
        "emr_serverless_session_vcpu_seconds_total",
        "emr_serverless_session_billed_storage_byte_seconds_total",
    ):
        assert name not in samples, name
    # IDLE without idleSince, and states other than IDLE, are 0 idle seconds.
    assert one(samples, "emr_serverless_session_idle_seconds") == 0
    busy = exposition([result([session(state="BUSY")])])
    assert one(busy, "emr_serverless_session_idle_seconds") == 0
    assert one(samples, "emr_serverless_session_info", session_name="") == 1


def test_partial_utilization_exports_only_what_aws_gave() -> None:
    samples = exposition([result([session(totalResourceUtilization={"vCPUHour": 0.25})])])
    assert one(samples, "emr_serverless_session_vcpu_seconds_total") == 900
    assert "emr_serverless_session_memory_byte_seconds_total" not in samples


def test_unknown_future_state_is_exported_as_is_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    results = [result([session(state="HIBERNATING"), session(sessionId="00sess2", state="HIBERNATING")])]
    samples = exposition(results)
    exposition(results)
    states = [(s.labels["session_id"], s.labels["state"], s.value) for s in samples["emr_serverless_session_state"]]
    assert ("00sess1", "HIBERNATING", 1.0) in states
    assert len([s for s in states if s[0] == "00sess1"]) == len(SESSIONS.states) + 1
    assert sum(1 for s in states if s[0] == "00sess1" and s[2] == 1.0) == 1
    counts = {s.labels["state"]: s.value for s in samples["emr_serverless_application_sessions"]}
    assert counts["HIBERNATING"] == 2 and counts["IDLE"] == 0
    warnings = [r for r in caplog.records if "unknown session state" in r.getMessage()]
    assert len(warnings) == 1


def test_application_metrics_count_sessions_by_state_with_zeros() -> None:
    sessions = [session(), session(sessionId="s2", state="BUSY"), session(sessionId="s3", state="BUSY")]
    empty_app = application(id="00empty", name="empty", state="STOPPED", arn=f"{APP_ARN}x")
    samples = exposition([result(sessions, apps=[application(), empty_app])])
    counts = {(s.labels["application_id"], s.labels["state"]): s.value
              for s in samples["emr_serverless_application_sessions"]}
    assert counts[("00fabc", "BUSY")] == 2 and counts[("00fabc", "IDLE")] == 1
    assert counts[("00fabc", "FAILED")] == 0
    assert all(counts[("00empty", state)] == 0 for state in SESSIONS.states)
    assert len(counts) == 2 * len(SESSIONS.states)
    info = one(samples, "emr_serverless_application_info", application_id="00fabc", type="Spark",
               release_label="emr-7.2.0", architecture="ARM64", application_name="analytics")
    assert info == 1
    app_states = {(s.labels["application_id"], s.labels["state"]): s.value
                  for s in samples["emr_serverless_application_state"]}
    assert app_states[("00empty", "STOPPED")] == 1 and app_states[("00empty", "STARTED")] == 0
    assert len(app_states) == 2 * 7


def test_self_metrics() -> None:
    failed = result([], errors=[ApiError("GetSession", "InternalServerException", "boom")])
    samples = exposition([failed])
    assert one(samples, "emr_serverless_up", target="prod") == 0
    assert one(samples, "emr_serverless_collection_duration_seconds") == 2
    assert one(samples, "emr_serverless_last_success_timestamp_seconds") == NOW - 60
    assert one(samples, "emr_serverless_api_requests_total", operation="GetSession", outcome="ok") == 3
    assert one(samples, "emr_serverless_api_requests_total", operation="ListSessions",
               outcome="ThrottlingException") == 1
    build = samples["emr_serverless_build_info"][0]
    assert set(build.labels) == {"version", "python_version", "boto3_version"}
    assert one(exposition([result([])]), "emr_serverless_up") == 1


def test_tag_labels_and_the_tags_info_metric(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    tagged = session(tags={"aws:cloudformation:stack-name": "s", "team": "data", "a-b": "first", "a.b": "second"})
    untagged = session(sessionId="s2", tags={})
    config = MetricsConfig(tag_labels=("team", "aws:cloudformation:stack-name"))
    samples = exposition([result([tagged, untagged])], config)
    idle = {s.labels["session_id"]: s.labels for s in samples["emr_serverless_session_idle_seconds"]}
    assert idle["00sess1"]["tag_team"] == "data"
    assert idle["00sess1"]["tag_aws_cloudformation_stack_name"] == "s"
    assert idle["s2"]["tag_team"] == ""  # SPEC: an empty value where the session lacks the tag
    assert set(idle["00sess1"]) == {*SESSION_TABLE.label_names, "tag_team", "tag_aws_cloudformation_stack_name"}
    tags = {s.labels["session_id"]: s.labels for s in samples["emr_serverless_session_tags"]}
    assert tags["00sess1"]["tag_a_b"] == "first"  # "a-b" sorts before "a.b": first wins
    assert tags["00sess1"]["tag_team"] == "data"
    assert set(tags["s2"]) == {"target", "region", "account_id", "application_id", "session_id"}
    exposition([result([tagged])], config)
    assert len([r for r in caplog.records if "collide" in r.getMessage()]) == 1
    no_info = exposition([result([tagged])], MetricsConfig(tags_info_metric=False))
    assert "emr_serverless_session_tags" not in no_info


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "back\\slash", "two\nlines", "Zürich 東京 🚀", "trailing\\", '\\"both\\"', ""],
)
def test_awkward_tag_values_survive_a_prometheus_parse(value: str) -> None:
    tags = {"team": value, "name with spaces": value}
    samples = exposition([result([session(tags=tags, name=value)])], MetricsConfig(tag_labels=("team",)))
    info = samples["emr_serverless_session_info"][0]
    safe = label_safe(value)  # quotes, backslashes, a line feed as they are; other controls U+FFFD
    assert info.labels.get("tag_team", "") == safe
    assert info.labels.get("session_name", "") == safe
    tag_sample = samples["emr_serverless_session_tags"][0]
    assert tag_sample.labels.get("tag_name_with_spaces", "") == safe


def test_no_stale_series_for_sessions_no_longer_discovered() -> None:
    first = exposition([result([session(), session(sessionId="gone")])])
    assert {s.labels["session_id"] for s in first["emr_serverless_session_info"]} == {"00sess1", "gone"}
    second = exposition([result([session()])])
    assert {s.labels["session_id"] for s in second["emr_serverless_session_info"]} == {"00sess1"}


@pytest.mark.parametrize("state", [*SESSIONS.states, "HIBERNATING"])
@pytest.mark.parametrize("idle_since", [None, NOW - 300])
def test_samples_read_the_time_only_where_session_clock_says(state: str, idle_since: float | None) -> None:
    """The session store renders a session again only when its version changes, and the version holds
    the time only where ``session_clock`` says a sample reads it."""
    s = session(state=state, idleSince=idle_since)
    later = NOW + 3600
    if session_clock(s, NOW) is None:
        assert session_clock(s, later) is None
        for spec in SESSION_FAMILIES:
            assert list(spec.samples(s, NOW)) == list(spec.samples(s, later)), spec.name
    else:
        assert session_clock(s, later) == later


@pytest.mark.parametrize("family", [*SESSION_FAMILIES, *APPLICATION_FAMILIES, *TARGET_FAMILIES], ids=lambda f: f.name)
def test_every_family_with_a_unit_in_its_name_declares_it(family: Any) -> None:
    """OpenMetrics' # UNIT for every family whose name ends in a base unit, and for no other."""
    base = family.name.removesuffix("_total")
    expected = next((unit for unit in ("byte_seconds", "seconds", "bytes") if base.endswith("_" + unit)), "")
    assert family.unit == expected


def test_prices_per_application_turn_billed_use_into_money() -> None:
    config = parse_config(yaml.safe_dump({"metrics": {"prices": {"currency": "EUR", "table": [
        {"region": "us-east-1", "architecture": "ARM64", "vcpu_hour": 0.036, "memory_gb_hour": 0.0036,
         "storage_gb_hour": 0.00036},
        {"region": "us-east-1", "architecture": "X86_64", "vcpu_hour": 1, "memory_gb_hour": 1, "storage_gb_hour": 1},
    ]}}})).metrics
    unpriced = application(id="00eu", name="elsewhere", arn=f"{APP_ARN}x", architecture="X86_64")
    no_arch = application(id="00na", name="default", arn=f"{APP_ARN}y", architecture=None)
    samples = exposition([result([session()], apps=[application(), no_arch])], config)
    # 2 billed vCPU-hours, 8 billed GB-hours of memory and 0.5 of storage at the ARM64 prices above.
    vcpu = one(samples, "emr_serverless_application_price_per_vcpu_second", application_id="00fabc", currency="EUR")
    memory = one(samples, "emr_serverless_application_price_per_memory_byte_second", application_id="00fabc")
    storage = one(samples, "emr_serverless_application_price_per_storage_byte_second", application_id="00fabc")
    billed = exposition([result([session()])])
    money = (one(billed, "emr_serverless_session_billed_vcpu_seconds_total") * vcpu
             + one(billed, "emr_serverless_session_billed_memory_byte_seconds_total") * memory
             + one(billed, "emr_serverless_session_billed_storage_byte_seconds_total") * storage)
    assert money == pytest.approx(2 * 0.036 + 8 * 0.0036 + 0.5 * 0.00036)
    # No architecture: AWS's default, X86_64.
    assert one(samples, "emr_serverless_application_price_per_vcpu_second", application_id="00na") == 1 / 3600
    # A region without a price: no price series rather than a made-up one.
    other_region = result([], apps=[unpriced])
    other_region = dataclasses.replace(
        other_region, identity=TargetIdentity(name="eu", region="eu-west-3", account_id=ACCOUNT))
    assert "emr_serverless_application_price_per_vcpu_second" not in exposition([other_region], config)
