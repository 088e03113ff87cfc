"""Application capacity from GetApplication: the capacity strings, the metrics, and the API cost (asked
when an application is new or its updatedAt changed, never in a steady state), against the simulator
through the real boto3 client."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import datetime, timezone
from typing import Any

import botocore.session
import msgspec
import pytest
import yaml
from botocore.parsers import create_parser
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.collect.inventory import Applications
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import MetricsConfig, parse_config
from exporter.metrics.applications import APPLICATION_FAMILIES, ApplicationView
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.families import BYTES_PER_GB
from exporter.model.session import Application, ApplicationDetail, InvalidObject, Resources, convert, quantity
from exporter.render.exposition import Exposition
from tests.helpers.support import collecting

MODEL = botocore.session.get_session().get_service_model("emr-serverless")
NOW = 1_764_000_000.0
APP_ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00fabc"
MAXIMUM = {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"}
FULL_APPLICATION_WIRE = {
    "applicationId": "00fabc", "name": "analytics", "arn": APP_ARN, "releaseLabel": "emr-7.2.0", "type": "Spark",
    "state": "STARTED", "createdAt": NOW - 86400, "updatedAt": NOW - 600, "architecture": "ARM64",
    "maximumCapacity": MAXIMUM,
    "initialCapacity": {
        "Driver": {"workerCount": 1, "workerConfiguration": {"cpu": "2 vCPU", "memory": "8 GB", "disk": "20 GB"}},
        "Executor": {"workerCount": 4, "workerConfiguration": {"cpu": "4", "memory": "16", "diskType": "STANDARD"}},
    },
    "autoStartConfiguration": {"enabled": False},
    "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 30},
    "schedulerConfiguration": {"maxConcurrentRuns": 15, "queueTimeoutMinutes": 360},
}
REQUIRED_ONLY = {key: FULL_APPLICATION_WIRE[key] for key in MODEL.shape_for("Application").required_members}


def detail(**overrides: Any) -> ApplicationDetail:
    """A GetApplication payload as the exporter sees it: through botocore's parser, then the model."""
    body = json.dumps({"application": {**FULL_APPLICATION_WIRE, **overrides}}).encode()
    shape = MODEL.operation_model("GetApplication").output_shape
    assert shape is not None
    raw = create_parser("rest-json").parse({"body": body, "headers": {}, "status_code": 200}, shape)
    return convert(raw["application"], ApplicationDetail)


def samples_of(view: ApplicationView) -> dict[str, dict[tuple[str, ...], float]]:
    return {family.name: dict(family.samples(view, NOW)) for family in APPLICATION_FAMILIES}


def summary(updated: float = NOW - 600, app_id: str = "00fabc") -> Application:
    return convert({"id": app_id, "arn": APP_ARN, "state": "STARTED", "createdAt": at(NOW - 86400),
                    "updatedAt": at(updated)}, Application)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


# --- capacity strings ----------------------------------------------------------------------------------


@given(
    number=st.integers(min_value=1, max_value=10**9),
    blank=st.sampled_from(["", " "]),  # the model's pattern: one optional blank (and at most 15 characters)
    unit=st.sampled_from(["GB", "gb", "gB", "Gb"]),
)
def test_capacity_strings_in_every_form_the_model_allows(number: int, blank: str, unit: str) -> None:
    raw = {"cpu": f"{number}{blank}vCPU", "memory": f"{number}{blank}{unit}", "disk": f"{number}{blank}{unit}"}
    resources = msgspec.convert(raw, Resources)
    assert resources.vcpus == number
    assert resources.memory_gb == number == resources.disk_gb


@given(st.text(max_size=20))
def test_any_capacity_string_is_a_positive_number_or_a_value_error(text: str) -> None:
    try:
        number = quantity(text, ("gb",), unit_required=False)
    except ValueError:
        return
    assert 0 < number < 1e13


@pytest.mark.parametrize("text", ["\u0664\u0660\u0660 vCPU", "400\u00a0vCPU", "\uff14\uff10\uff10"])
def test_capacity_numbers_are_ascii(text: str) -> None:
    with pytest.raises(ValueError):  # Arabic-Indic and full-width digits, a no-break space: not AWS's format
        quantity(text, ("vcpu",), unit_required=False)


@pytest.mark.parametrize(
    "maximum",
    [
        {"cpu": "400 GB", "memory": "3000 GB"},  # the wrong unit
        {"cpu": "400 vCPU", "memory": "3000 MB"},
        {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000"},  # disk's unit is required
        {"cpu": "0 vCPU", "memory": "1 GB"},
        {"cpu": "NaN", "memory": "1 GB"},
        {"cpu": "-4", "memory": "1 GB"},
        {"cpu": "1e400", "memory": "1 GB"},
        {"cpu": "", "memory": "1 GB"},
        {"cpu": "4 vCPU"},  # memory is required
    ],
)
def test_malformed_capacity_fails_at_the_boundary(maximum: dict[str, str]) -> None:
    raw = {"applicationId": "00fabc", "updatedAt": datetime.now(timezone.utc), "maximumCapacity": maximum}
    with pytest.raises(InvalidObject, match="maximumCapacity"):
        convert(raw, ApplicationDetail)


# --- the metrics -------------------------------------------------------------------------------------------


def test_every_capacity_metric_from_a_full_get_application_payload() -> None:
    got = samples_of(ApplicationView(summary(), {}, {}, detail=detail()))
    gb = float(BYTES_PER_GB)
    assert got["emr_serverless_application_maximum_capacity_vcpus"] == {(): 400.0}
    assert got["emr_serverless_application_maximum_capacity_memory_bytes"] == {(): 3000 * gb}
    assert got["emr_serverless_application_maximum_capacity_disk_bytes"] == {(): 20000 * gb}
    assert got["emr_serverless_application_initial_capacity_workers"] == {("Driver",): 1.0, ("Executor",): 4.0}
    assert got["emr_serverless_application_initial_capacity_worker_vcpus"] == {("Driver",): 2.0, ("Executor",): 4.0}
    assert got["emr_serverless_application_initial_capacity_worker_memory_bytes"] == {
        ("Driver",): 8 * gb, ("Executor",): 16 * gb}
    # The Executor's disk is not given: its series is absent, not 0.
    assert got["emr_serverless_application_initial_capacity_worker_disk_bytes"] == {("Driver",): 20 * gb}
    assert got["emr_serverless_application_auto_start_enabled"] == {(): 0.0}
    assert got["emr_serverless_application_auto_stop_enabled"] == {(): 1.0}
    assert got["emr_serverless_application_auto_stop_idle_timeout_seconds"] == {(): 1800.0}
    assert got["emr_serverless_application_max_concurrent_runs"] == {(): 15.0}
    assert got["emr_serverless_application_queue_timeout_seconds"] == {(): 21600.0}


def test_capacity_series_are_absent_when_aws_gives_none() -> None:
    capacity = [f.name for f in APPLICATION_FAMILIES
                if any(word in f.name for word in ("capacity", "auto_st", "max_concurrent", "queue_timeout"))]
    bare = samples_of(ApplicationView(summary(), {}, {}, detail=detail(**{k: None for k in FULL_APPLICATION_WIRE
                                                                if k not in REQUIRED_ONLY})))
    unknown = samples_of(ApplicationView(summary(), {}, {}, detail=None))  # GetApplication has not answered (yet)
    for name in capacity:
        assert bare[name] == {} and unknown[name] == {}, name
    stop_off = samples_of(ApplicationView(summary(), {}, {}, detail=detail(autoStopConfiguration={"enabled": False})))
    assert stop_off["emr_serverless_application_auto_stop_enabled"] == {(): 0.0}
    assert stop_off["emr_serverless_application_auto_stop_idle_timeout_seconds"] == {}


def test_both_writers_agree_and_promtool_finds_nothing() -> None:
    app = summary()
    result = TargetResult(
        identity=TargetIdentity(name="prod", region="us-east-1", account_id="123456789012"),
        applications=[app, summary(app_id="00bare")], objects={}, errors=[], started_at=NOW - 1, finished_at=NOW,
        last_success=NOW, application_details={app.id: detail()},
    )
    runner = CollectionRunner([], timeout_seconds=1)
    runner.latest = [result]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EmrServerlessCollector(runner, MetricsConfig()))
    body, _ = Exposition(runner, CollectorRegistry(auto_describe=False), MetricsConfig()).render()
    assert body == generate_latest(registry)  # the direct line writer is byte for byte the generic path
    assert b'emr_serverless_application_initial_capacity_workers{' in body
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, check=False)
    assert lint.returncode == 0 and not lint.stdout and not lint.stderr, lint


# --- memory: when to ask -------------------------------------------------------------------------------------


def test_an_application_is_described_when_new_or_changed_only() -> None:
    memory = Applications()
    memory.discovered([summary()])
    assert [app.id for app in memory.to_describe()] == ["00fabc"]  # new
    memory.described(summary(), detail())
    assert memory.to_describe() == []  # steady state: nothing to ask
    memory.discovered([summary(updated=NOW - 5)])
    assert [app.id for app in memory.to_describe()] == ["00fabc"]  # its updatedAt moved
    memory.described(summary(updated=NOW - 5), None)  # a malformed answer: not asked again until it changes
    assert memory.to_describe() == [] and memory.details == {"00fabc": None}
    memory.discovered([])
    assert memory.details == {}  # gone with its application


# --- against the simulator ------------------------------------------------------------------------------------


def scrape(registry: Any) -> dict[tuple[str, str], float]:
    """(metric, application_id or operation/outcome or kind) -> value."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            labels = sample.labels
            key = labels.get("application_id") or "/".join(
                labels[k] for k in ("operation", "outcome", "kind") if k in labels)
            found[(sample.name, key)] = sample.value
    return found


def test_get_application_only_for_new_or_changed_applications(store: Store, simulator: Simulator) -> None:
    capped = store.add_application(name="capped", maximum_capacity=MAXIMUM)
    plain = store.add_application(name="plain")
    runner, registry = collecting(simulator.url)
    try:
        assert runner.collect()[0].up
        assert store.calls["GetApplication"] == 2  # both are new
        metrics = scrape(registry)
        assert metrics[("emr_serverless_application_maximum_capacity_vcpus", capped)] == 400
        assert ("emr_serverless_application_maximum_capacity_vcpus", plain) not in metrics
        assert metrics[("emr_serverless_application_auto_stop_idle_timeout_seconds", plain)] == 900

        for _ in range(2):
            assert runner.collect()[0].up
        assert store.calls["GetApplication"] == 2  # steady state: no GetApplication at all

        store.configure_application(plain, maximum_capacity={"cpu": "64 vCPU", "memory": "256 GB"})
        assert runner.collect()[0].up
        assert store.calls["GetApplication"] == 3  # one, for the application whose updatedAt changed
        metrics = scrape(registry)
        assert metrics[("emr_serverless_application_maximum_capacity_vcpus", plain)] == 64
        assert metrics[("emr_serverless_application_maximum_capacity_memory_bytes", plain)] == 256 * BYTES_PER_GB
        assert metrics[("emr_serverless_api_requests_total", "GetApplication/ok")] == 3
    finally:
        runner.close()


def test_a_malformed_answer_is_counted_logged_once_and_not_asked_again(
    store: Store, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    broken = store.add_application(name="broken", maximum_capacity={"cpu": "lots", "memory": "1 GB"})
    fine = store.add_application(name="fine", maximum_capacity=MAXIMUM)
    runner, registry = collecting(simulator.url)
    try:
        for _ in range(2):
            assert runner.collect()[0].up  # one bad object does not call the target down
        assert store.calls["GetApplication"] == 2
        metrics = scrape(registry)
        assert metrics[("emr_serverless_invalid_objects_total", "application")] == 1
        assert ("emr_serverless_application_maximum_capacity_vcpus", broken) not in metrics
        assert metrics[("emr_serverless_application_info", broken)] == 1  # the summary is still exported
        assert metrics[("emr_serverless_application_maximum_capacity_vcpus", fine)] == 400
        dropped = [r for r in caplog.records if "invalid application dropped" in r.getMessage()]
        assert len(dropped) == 1 and not any(r.exc_info for r in caplog.records)
    finally:
        runner.close()


def test_a_failed_get_application_is_counted_and_asked_again(store: Store, simulator: Simulator) -> None:
    app = store.add_application(name="capped", maximum_capacity=MAXIMUM)
    store.add_fault(Fault("GetApplication", "AccessDeniedException", status=403))
    runner, registry = collecting(simulator.url, aws={"max_attempts": 1})
    try:
        assert not runner.collect()[0].up  # a failed call like any other
        metrics = scrape(registry)
        assert metrics[("emr_serverless_api_requests_total", "GetApplication/AccessDeniedException")] == 1
        assert ("emr_serverless_application_maximum_capacity_vcpus", app) not in metrics
        store.clear_faults()
        assert runner.collect()[0].up
        assert store.calls["GetApplication"] == 2
        assert scrape(registry)[("emr_serverless_application_maximum_capacity_vcpus", app)] == 400
    finally:
        runner.close()


def test_get_application_has_its_own_rate_limit() -> None:
    config = parse_config(yaml.safe_dump({"aws": {"rate_limits": {"GetApplication": {"requests_per_second": 1}}}}))
    assert config.aws.rate_limits.by_operation()["GetApplication"].requests_per_second == 1


def test_a_throttled_get_application_waits_for_the_next_collection(store: Store, simulator: Simulator) -> None:
    apps = {store.add_application(name=f"app{i}", maximum_capacity=MAXIMUM) for i in range(2)}
    store.set_throttle("GetApplication", 0.001, 1)  # one call, then ThrottlingException for a long while
    runner, registry = collecting(simulator.url, aws={"max_attempts": 1})
    try:
        assert runner.collect()[0].up  # out of AWS's budget is not a failure: the target stays up
        metrics = scrape(registry)
        assert metrics[("emr_serverless_api_requests_total", "GetApplication/ThrottlingException")] == 1
        described = {app for app in apps if ("emr_serverless_application_maximum_capacity_vcpus", app) in metrics}
        assert len(described) == 1
        store.set_throttle("GetApplication", 1000, 1000)
        assert runner.collect()[0].up
        assert store.calls["GetApplication"] == 3  # only the throttled one is asked again
        metrics = scrape(registry)
        assert all(metrics[("emr_serverless_application_maximum_capacity_vcpus", app)] == 400 for app in apps)
    finally:
        runner.close()
