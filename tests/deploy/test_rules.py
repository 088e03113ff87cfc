"""The Prometheus alerting and recording rules (deploy/prometheus/): promtool accepts them, their unit
tests pass, every alert has a firing and a non-firing unit test, and every alert carries what a
responder needs."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "deploy/prometheus/emr-serverless-exporter.rules.yaml"
CHART_RULES_FILE = ROOT / "deploy/helm/emr-serverless-exporter/files/emr-serverless-exporter.rules.yaml"
RULES_TEST_FILE = ROOT / "deploy/prometheus/tests/alerts_test.yaml"
PROMTOOL = "/usr/bin/promtool"
SEVERITIES = {"critical", "warning", "info"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules_of(kind: str) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES_FILE)["groups"] for rule in group["rules"] if kind in rule]


ALERTS = rules_of("alert")
RECORDS = rules_of("record")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), f"{PROMTOOL} is missing: install prometheus (Debian: apt-get install prometheus)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_rules_file_is_the_chart_copy() -> None:
    # One source of truth: deploy/prometheus holds a symlink to the chart's file, not a second copy.
    assert RULES_FILE.is_symlink()
    assert RULES_FILE.resolve() == CHART_RULES_FILE.resolve()


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS) + len(RECORDS)} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", str(RULES_TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_load_the_rules_file() -> None:
    rule_files = load_yaml(RULES_TEST_FILE)["rule_files"]
    assert [(RULES_TEST_FILE.parent / path).resolve() for path in rule_files] == [RULES_FILE.resolve()]


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for case in load_yaml(RULES_TEST_FILE)["tests"]:
        for check in case.get("alert_rule_test") or []:
            expected = check.get("exp_alerts") or []
            if expected:
                firing[check["alertname"]] += 1
                for alert in expected:
                    # A firing case pins down the labels and annotations a responder sees.
                    assert alert.get("exp_labels"), f"{case['name']}: exp_labels missing"
                    assert alert.get("exp_annotations"), f"{case['name']}: exp_annotations missing"
            else:
                quiet[check["alertname"]] += 1
    names = {alert["alert"] for alert in ALERTS}
    assert not names - set(firing), f"alerts without a firing test: {sorted(names - set(firing))}"
    assert not names - set(quiet), f"alerts without a non-firing test: {sorted(names - set(quiet))}"
    unknown = (set(firing) | set(quiet)) - names
    assert not unknown, f"tests of alerts that do not exist: {sorted(unknown)}"


def test_every_recording_rule_has_a_unit_test_or_is_evaluated_live() -> None:
    # Recording rules are evaluated against demo data in test_observability_live.py; the ones with
    # exact arithmetic are pinned down here.
    tested = {
        check["expr"] for case in load_yaml(RULES_TEST_FILE)["tests"] for check in case.get("promql_expr_test") or []
    }
    assert tested <= {rule["record"] for rule in RECORDS}
    assert tested, "no recording rule is unit-tested"


@pytest.mark.parametrize("alert", ALERTS, ids=[alert["alert"] for alert in ALERTS])
def test_alert_has_severity_summary_and_description(alert: dict[str, Any]) -> None:
    assert alert["alert"].startswith("EMRServerless")
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    assert annotations.get("summary"), "summary missing"
    assert annotations.get("description"), "description missing"


@pytest.mark.parametrize("alert", ALERTS, ids=[alert["alert"] for alert in ALERTS])
def test_alert_description_names_the_labels_a_responder_needs(alert: dict[str, Any]) -> None:
    expr = alert["expr"]
    text = alert["annotations"]["summary"] + " " + alert["annotations"]["description"]
    used = set(re.findall(r"\$labels\.(\w+)", text))
    kinds = set(re.findall(r"emr_serverless_(session|job_run)_", expr))
    if "by (job, instance)" in expr:  # one exporter pod, every target together
        needed = {"instance", "job"}
    elif re.search(r"emr_serverless_(stale_objects|oldest_\w+_age_seconds|invalid_objects_total)\b", expr):
        needed = {"target", "kind"}  # the exporter's own, per kind of object
    elif kinds and "sum by" not in expr:  # one session or job run
        needed = {"target", "application_name", "application_id"} | {f"{kind}_id" for kind in kinds}
    elif kinds or re.search(r"\bapplication:|emr_serverless_application_", expr):  # aggregated per application
        needed = {"target", "application_name", "application_id"}
    elif "emr_serverless_" in expr:
        needed = {"target"}
    else:  # the exporter's own scrape job
        needed = {"instance"} if "absent(" not in expr else set()
    assert needed <= used, f"annotations do not name {sorted(needed - used)}"


def test_rule_names_follow_conventions() -> None:
    for rule in RECORDS:
        # level:metric:operations (https://prometheus.io/docs/practices/rules/)
        assert re.fullmatch(r"[a-z_]+:emr_serverless_[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
    names = [rule.get("alert") or rule["record"] for rule in ALERTS + RECORDS]
    assert len(names) == len(set(names)), "duplicate rule names"


def test_no_recording_rule_reads_another() -> None:
    # tests/e2e/test_dashboard_intervals.py backfills the recording rules in one pass (promtool tsdb
    # create-blocks-from rules), which only sees the scraped series; Prometheus needs no group order.
    recorded = {rule["record"] for rule in RECORDS}
    for rule in RECORDS:
        read = set(re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["expr"]))
        assert not read & recorded, f"{rule['record']} reads {sorted(read & recorded)}"


def test_windows_hold_four_samples_at_a_two_minute_scrape() -> None:
    for rule in RECORDS:
        for window in re.findall(r"\[(\d+)m\]", rule["expr"]):
            assert int(window) >= 8, f"{rule['record']}: [{window}m] holds fewer than 4 samples at a 2m scrape"


def test_the_docs_name_only_recording_rules_that_exist() -> None:
    recorded = {rule["record"] for rule in RECORDS}
    chart_readme = ROOT / "deploy/helm/emr-serverless-exporter/README.md"
    for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), chart_readme):
        named = set(re.findall(r"\b[a-z_]+:emr_serverless_[a-z0-9_:]+", page.read_text()))
        assert named <= recorded, f"{page.name} names recording rules that do not exist: {named - recorded}"
