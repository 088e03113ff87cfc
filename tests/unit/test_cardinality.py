"""Cardinality controls, unit by unit: which families metrics.allowlist / denylist export and which entries are
errors; the per-application cap on final objects in the inventory; and the series each target exports."""

from __future__ import annotations

import argparse
import dataclasses
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from exporter.cli import read_config
from exporter.collect.inventory import NEW, NEW_FINAL, Inventory
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import KindStats, TargetIdentity, TargetResult
from exporter.config.schema import ConfigError, DiscoveryConfig, MetricsConfig, parse_config
from exporter.metrics import labels as labels_module
from exporter.metrics import selection as selection_module
from exporter.metrics.applications import APPLICATION_FAMILIES
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.families import Family, value
from exporter.metrics.job_runs import JOB_RUN_TABLE
from exporter.metrics.selection import FamilySelection, selectable_names
from exporter.metrics.tables import KIND_TABLES
from exporter.metrics.targets import EXPORTED_KINDS, SELF_FAMILY_NAMES
from exporter.model.job_run import JobRun, JobRunSummary
from exporter.model.kinds import JOB_RUNS, SESSIONS
from exporter.model.session import Application, Session, convert
from exporter.render.exposition import Exposition
from exporter.wiring import check_config

NOW = 1_764_000_000.0
IDENTITY = TargetIdentity(name="prod", region="us-east-1", account_id="123456789012")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def summary(rid: str, state: str, updated: float = NOW - 60, app: str = "app1") -> JobRunSummary:
    return convert({"id": rid, "applicationId": app, "state": state, "createdAt": at(updated - 600),
                    "updatedAt": at(updated), "type": "Spark"}, JobRunSummary)


def run(rid: str, state: str, updated: float = NOW - 60, app: str = "app1", **extra: Any) -> JobRun:
    return convert({"jobRunId": rid, "applicationId": app, "arn": f"arn:aws:emr-serverless:::{rid}", "state": state,
                    "createdAt": at(updated - 600), "updatedAt": at(updated), "name": f"etl-{rid}",
                    "tags": {"team": "data"}, "attempt": 2, "totalResourceUtilization": {"vCPUHour": 1.0},
                    "startedAt": at(updated - 500), "attemptCreatedAt": at(updated - 500),
                    "retryPolicy": {"maxAttempts": 3},
                    **({"endedAt": at(updated)} if state in JOB_RUNS.final_states else {}), **extra}, JobRun)


def session(sid: str, state: str = "IDLE") -> Session:
    return convert({"applicationId": "app1", "sessionId": sid, "arn": f"arn:{sid}", "state": state,
                    "createdAt": at(NOW - 600), "updatedAt": at(NOW - 60), "idleSince": at(NOW - 60),
                    "name": "notebook", "tags": {"team": "data"}}, Session)


def result(runs: list[JobRun], sessions: Sequence[Session] = (), identity: TargetIdentity = IDENTITY,
           dropped: int = 0) -> TargetResult:
    app = convert({"id": "app1", "arn": "arn:app1", "state": "STARTED", "name": "etl",
                   "createdAt": at(NOW - 86400), "updatedAt": at(NOW - 86400)}, Application)
    return TargetResult(identity=identity, applications=[app], objects={SESSIONS: list(sessions), JOB_RUNS: runs},
                        errors=[], started_at=NOW - 1, finished_at=NOW, last_success=NOW,
                        stats={SESSIONS: KindStats(), JOB_RUNS: KindStats(dropped=dropped)})


class FixedRunner(CollectionRunner):
    def __init__(self) -> None:
        super().__init__([], timeout_seconds=1)


def served(config: MetricsConfig) -> tuple[FixedRunner, Exposition, CollectorRegistry]:
    runner = FixedRunner()
    exposition = Exposition(runner, CollectorRegistry(auto_describe=False), config)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EmrServerlessCollector(runner, config, exposition.sizes))
    return runner, exposition, registry


def render(config: MetricsConfig, results: list[TargetResult]) -> dict[str, bytes]:
    """The body in both formats, each checked byte for byte against prometheus-client's generic path."""
    runner, exposition, registry = served(config)
    runner.latest = results
    bodies = {}
    for fmt, accept, generic in (("text", "", generate_latest), ("openmetrics", OPENMETRICS, generate_openmetrics)):
        body, _ = exposition.render(accept)
        assert body == generic(registry), fmt
        bodies[fmt] = body
    return bodies


def families(body: bytes) -> set[str]:
    return {line.split()[2].decode() for line in body.splitlines() if line.startswith(b"# TYPE ")}


def names(body: bytes) -> set[str]:
    return {line.split(b"{")[0].split()[0].decode() for line in body.splitlines() if line and not line.startswith(b"#")}


# --- metrics.allowlist / denylist ----------------------------------------------------------------------


def test_a_denylist_leaves_its_families_out_of_every_format_and_the_self_metrics_in() -> None:
    config = MetricsConfig(denylist=("emr_serverless_job_run_.*_timestamp_seconds", "emr_serverless_job_run_attempt",
                                     "emr_serverless_application_info"))
    every = render(MetricsConfig(), [result([run("r1", "RUNNING")])])
    some = render(config, [result([run("r1", "RUNNING")])])
    left_out = {"emr_serverless_job_run_created_timestamp_seconds", "emr_serverless_job_run_started_timestamp_seconds",
                "emr_serverless_job_run_attempt_created_timestamp_seconds", "emr_serverless_job_run_attempt",
                "emr_serverless_application_info"}
    for fmt in ("text", "openmetrics"):
        assert names(every[fmt]) - names(some[fmt]) == left_out, fmt
        assert b"emr_serverless_job_run_attempt " not in some[fmt]  # no header either: no bytes at all
        # The regular expression never matches the exporter's own timestamps.
        assert {"emr_serverless_last_success_timestamp_seconds", "emr_serverless_last_collection_timestamp_seconds",
                "emr_serverless_job_run_max_attempts"} <= names(some[fmt])


def test_an_allowlist_exports_what_it_names_and_every_self_metric() -> None:
    config = MetricsConfig(allowlist=("emr_serverless_job_run_state", "emr_serverless_job_run_(billed_)?vcpu_.*"))
    body = render(config, [result([run("r1", "RUNNING")], [session("s1")])])["text"]
    assert families(body) - SELF_FAMILY_NAMES == {
        "emr_serverless_job_run_state", "emr_serverless_job_run_vcpu_seconds_total",
        "emr_serverless_job_run_billed_vcpu_seconds_total"}
    assert families(body) >= SELF_FAMILY_NAMES  # every self-metric, though the allowlist names none
    assert b"emr_serverless_session_" not in body and b"emr_serverless_application_" not in body


def test_the_tags_family_can_be_left_out_on_its_own() -> None:
    body = render(MetricsConfig(denylist=("emr_serverless_job_run_tags",)), [result([run("r1", "SUCCESS")])])["text"]
    assert b"emr_serverless_job_run_tags" not in body and b"emr_serverless_job_run_info{" in body
    assert b"emr_serverless_session_tags" in body


def test_a_self_metric_is_dropped_only_by_its_exact_name() -> None:
    body = render(MetricsConfig(denylist=("emr_serverless_api_requests_total",)), [result([])])["text"]
    assert b"emr_serverless_api_requests" not in body and b"emr_serverless_up{" in body
    with pytest.raises(ConfigError, match=r"matches no metric family .*never match the exporter's own"):
        FamilySelection(MetricsConfig(denylist=("emr_serverless_api_.*",)))


def test_a_family_left_out_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def unread(obj: Any, now: float) -> float:
        raise AssertionError("a family left out was read")

    table = dataclasses.replace(JOB_RUN_TABLE, families=(
        *JOB_RUN_TABLE.families, Family("emr_serverless_job_run_costly", "gauge", "Costly.", value(unread))))
    application_family = Family[Any]("emr_serverless_application_costly", "gauge", "Costly.", value(unread))
    tables = (KIND_TABLES[0], table)
    for module in (labels_module, selection_module):
        monkeypatch.setattr(module, "KIND_TABLES", tables)
        monkeypatch.setattr(module, "APPLICATION_FAMILIES", (*APPLICATION_FAMILIES, application_family))
    config = MetricsConfig(denylist=(".*_costly",))
    render(config, [result([run("r1", "RUNNING"), run("r2", "SUCCESS")])])  # both paths, both formats
    with pytest.raises(AssertionError, match="left out was read"):
        render(MetricsConfig(), [result([run("r1", "RUNNING")])])


@pytest.mark.parametrize(("metrics", "message"), [
    ({"denylist": ["emr_serverless_job_run_state", "emr_serverless_jobrun_attempt"]},
     "metrics.denylist[1]: 'emr_serverless_jobrun_attempt' is no metric family of the exporter "
     "(did you mean 'emr_serverless_job_run_attempt'?)"),
    ({"denylist": ["emr_serverless_session_vcpu_seconds"]},
     "metrics.denylist[0]: 'emr_serverless_session_vcpu_seconds' is no metric family of the exporter (did you mean "
     "'emr_serverless_session_vcpu_seconds_total'?)"),
    ({"allowlist": ["emr_serverless_job_run_.*", "emr_serverless_jobs_.*"]},
     "metrics.allowlist[1]: 'emr_serverless_jobs_.*' matches no metric family"),
    ({"denylist": ["emr_serverless_up"]}, "metrics.denylist[0]: emr_serverless_up cannot be dropped"),
    ({"denylist": ["emr_serverless_build_info"]}, "metrics.denylist[0]: emr_serverless_build_info cannot be dropped"),
    ({"denylist": [".*_last_success_timestamp_seconds"]}, "metrics.denylist[0]: '.*_last_success_timestamp_seconds' "
     "matches no metric family"),
    ({"denylist": ["process_cpu_seconds_total"]}, "metrics.denylist[0]: 'process_cpu_seconds_total' is no metric "
     "family of the exporter"),
])
def test_an_entry_that_selects_nothing_is_an_error_naming_it(metrics: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_config(parse_config(f"metrics: {metrics}\n"))
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize(("text", "message"), [
    ("metrics: {allowlist: [emr_serverless_job_run_state], denylist: [emr_serverless_job_run_info]}",
     "metrics.denylist: cannot be set together with metrics.allowlist"),
    ("metrics: {denylist: [emr_serverless_job_run_info, 'emr_serverless_(job']}",
     "metrics.denylist[1]: invalid regular expression: missing ), unterminated subpattern"),
    ("metrics: {allowlist: ['']}", "metrics.allowlist[0]: must not be empty"),
    ("metrics: {denylist: emr_serverless_job_run_info}", "metrics.denylist: expected a list, got a string"),
    ("discovery: {max_terminated_job_runs_per_application: -1}",
     "discovery.max_terminated_job_runs_per_application: must be from 0 to 100000"),
    ("discovery: {max_terminated_sessions_per_application: 1.5}",
     "discovery.max_terminated_sessions_per_application: expected an integer, got a number"),
])
def test_the_schema_checks_what_it_can_itself(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_config(text + "\n")


def test_the_family_check_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text("metrics:\n  denylist: [emr_serverless_job_run_state, nope_.*]\n")
    with pytest.raises(ConfigError, match=rf"^{path}: metrics\.denylist\[1\]: 'nope_\.\*' matches no metric family"):
        read_config(argparse.Namespace(config_file=str(path)))


def test_regular_expressions_choose_among_object_and_application_families_only() -> None:
    selectable = set(selectable_names())
    assert not selectable & SELF_FAMILY_NAMES
    assert {"emr_serverless_session_tags", "emr_serverless_job_run_tags", "emr_serverless_application_job_runs",
            "emr_serverless_application_job_runs_ended_total"} <= selectable
    everything = FamilySelection(MetricsConfig(allowlist=(".*",)))
    assert all(everything.wanted(name) for name in selectable | SELF_FAMILY_NAMES)


# --- the cap on final objects per application ---------------------------------------------------------


def capped(cap: int) -> Inventory[JobRunSummary, JobRun]:
    runs = Inventory(JOB_RUNS, DiscoveryConfig(max_terminated_job_runs_per_application=cap))
    runs.keep_applications(["app1"])
    runs.begin_collection()
    return runs


def test_final_objects_past_the_cap_are_neither_fetched_nor_exported() -> None:
    runs = capped(2)
    listing = [summary("going", "RUNNING"), *(summary(f"done{i}", "SUCCESS", NOW - 600 + 60 * i) for i in range(5))]
    plan = runs.plan("app1", listing, NOW)
    # The two most recently ended, and the active one; done0..done2 cost no GetJobRun.
    assert [(r.object_id, r.priority[0]) for r in plan] == [("going", NEW), ("done3", NEW_FINAL), ("done4", NEW_FINAL)]
    assert runs.dropped == 3 and runs.newly_capped() == ["app1"]
    exported = {k.obj.id for k in runs.objects(NOW)}  # job runs are exported from their listing meanwhile
    assert exported == {"going", "done3", "done4"}
    # The same listing again (the listing window overlaps): nothing taken in again, counted again or logged again.
    runs.begin_collection()
    assert {r.object_id for r in runs.plan("app1", listing, NOW + 30)} == {"going", "done3", "done4"}
    assert runs.dropped == 3 and runs.newly_capped() == []


def test_newer_ends_push_the_least_recently_ended_out_and_active_objects_stay() -> None:
    runs = capped(2)
    runs.plan("app1", [summary(f"r{i}", "RUNNING") for i in range(4)], NOW)
    for i in range(4):
        runs.refreshed(run(f"r{i}", "RUNNING"), NOW)
    assert len(runs.objects(NOW)) == 4 and runs.dropped == 0
    # r0, r1, r2 end one after the other: the listing shows the first two, GetJobRun the third.
    runs.begin_collection()
    runs.plan("app1", [summary("r0", "SUCCESS", NOW + 10), summary("r1", "FAILED", NOW + 20),
                       summary("r2", "RUNNING"), summary("r3", "RUNNING")], NOW + 30)
    runs.refreshed(run("r2", "SUCCESS", NOW + 40), NOW + 40)
    exported = {k.obj.id: k.obj.state for k in runs.objects(NOW + 40)}
    assert exported == {"r1": "FAILED", "r2": "SUCCESS", "r3": "RUNNING"}
    assert runs.dropped == 1 and runs.ended["app1"] == {"SUCCESS": 2, "FAILED": 1}  # every end still counted
    # r0, left out, is not fetched again however often its listing shows it.
    runs.begin_collection()
    plan = runs.plan("app1", [summary("r0", "SUCCESS", NOW + 10), summary("r1", "FAILED", NOW + 20),
                              summary("r2", "SUCCESS", NOW + 40), summary("r3", "RUNNING")], NOW + 60)
    assert "r0" not in {r.object_id for r in plan}
    assert runs.dropped == 1 and runs.ended["app1"] == {"SUCCESS": 2, "FAILED": 1}


def test_a_cap_of_0_exports_active_objects_only_and_still_counts_their_ends() -> None:
    runs = capped(0)
    runs.plan("app1", [summary("old", "SUCCESS"), summary("going", "RUNNING")], NOW)
    runs.refreshed(run("going", "RUNNING"), NOW)
    runs.begin_collection()
    plan = runs.plan("app1", [summary("going", "FAILED", NOW + 10)], NOW + 30)
    assert plan == [] and [k.obj.id for k in runs.objects(NOW + 30)] == []
    assert runs.dropped == 2 and runs.ended["app1"] == {"FAILED": 1}


@pytest.mark.parametrize("cap", [0, 1, 3, 10])
def test_the_cap_holds_per_application_whatever_the_order_answers_come_in(cap: int) -> None:
    runs = Inventory(JOB_RUNS, DiscoveryConfig(max_terminated_job_runs_per_application=cap))
    runs.keep_applications(["app1", "app2"])
    shuffle = random.Random(cap).shuffle
    ended: dict[str, float] = {}
    for collection in range(4):
        now = NOW + collection * 60
        runs.begin_collection()
        for app in ("app1", "app2"):
            listing = [summary(f"{app}r{collection}x{i}", "SUCCESS", now - 10 * i, app=app) for i in range(4)]
            ended.update((s.id, s.updated) for s in listing)
            plan = runs.plan(app, listing, now)
            assert len(plan) <= cap  # nothing past the cap is fetched
            shuffle(plan)
            for refresh in plan:
                runs.refreshed(run(refresh.object_id, "SUCCESS", ended[refresh.object_id], app=app), now)
        exported = runs.objects(now + 10)
        for app in ("app1", "app2"):
            kept = sorted(k.obj.ended or 0.0 for k in exported if k.obj.application_id == app)
            every = sorted(end for rid, end in ended.items() if rid.startswith(app))
            assert kept == (every[-cap:] if cap else [])  # the most recently ended
        assert runs.dropped == 2 * max(0, 4 * (collection + 1) - cap)


# --- what the exposition costs -------------------------------------------------------------------------


def series_by_target_and_kind(body: bytes) -> Counter[tuple[str, str]]:
    """Every sample with a target label, by target and the kind label emr_serverless_exported_series uses."""
    self_names = SELF_FAMILY_NAMES
    counted: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            target = sample.labels.get("target")
            if target is None:
                continue
            name = family.name if family.type != "counter" else family.name + "_total"
            kind = ("target" if name in self_names or family.name in self_names else
                    "session" if name.startswith("emr_serverless_session_") else
                    "job_run" if name.startswith("emr_serverless_job_run_") else "application")
            counted[target, kind] += 1
    return counted


def exported_series(body: bytes) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "emr_serverless_exported_series":
            for sample in family.samples:
                found[sample.labels["target"], sample.labels["kind"]] = int(sample.value)
    return found


@pytest.mark.parametrize("metrics", [
    MetricsConfig(), MetricsConfig(tag_labels=("team",), tags_info_metric=False),
    MetricsConfig(denylist=("emr_serverless_job_run_state", "emr_serverless_session_.*",
                            "emr_serverless_application_info")),
    MetricsConfig(allowlist=("emr_serverless_job_run_info",)),
])
def test_exported_series_count_what_the_body_holds_per_target_and_kind(metrics: MetricsConfig) -> None:
    staging = TargetIdentity(name="staging", region="eu-west-1", account_id="210987654321")
    results = [result([run("r1", "RUNNING"), run("r2", "FAILED")], [session("s1"), session("s2", "TERMINATED")],
                      dropped=4),
               result([run("r3", "SUCCESS")], identity=staging)]
    body = render(metrics, results)["text"]
    counted = exported_series(body)
    assert set(counted) == {(target, kind) for target in ("prod", "staging") for kind in EXPORTED_KINDS}
    assert +counted == series_by_target_and_kind(body)


def test_dropped_objects_are_counted_per_kind_collected() -> None:
    body = render(MetricsConfig(), [result([], dropped=7)])["text"].decode()
    assert 'emr_serverless_dropped_objects_total{account_id="123456789012",kind="job_run",region="us-east-1",' \
           'target="prod"} 7.0' in body
    assert 'kind="session",region="us-east-1",target="prod"} 0.0' in body


def test_exposition_bytes_are_those_of_the_last_body_of_an_earlier_collection() -> None:
    runner, exposition, registry = served(MetricsConfig())
    runner.latest = [result([run("r1", "RUNNING")])]
    first, _ = exposition.render("")
    assert b"\nemr_serverless_exposition_bytes{" not in first  # nothing rendered before
    again, _ = exposition.render(OPENMETRICS)  # the same collection: still none, whatever was rendered since
    assert b"\nemr_serverless_exposition_bytes{" not in again
    runner.latest = [result([run("r1", "RUNNING"), run("r2", "RUNNING")])]  # a new collection
    body, _ = exposition.render("")
    assert f'emr_serverless_exposition_bytes{{format="text"}} {float(len(first))}\n'.encode() in body
    assert f'emr_serverless_exposition_bytes{{format="openmetrics"}} {float(len(again))}\n'.encode() in body
    assert body == generate_latest(registry)  # the generic path reports the same
