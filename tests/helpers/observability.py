"""What the shipped dashboard and rules ask of Prometheus: their queries, variables, rules and selectors.

Read by the tests that evaluate them against a real Prometheus (tests/e2e/test_observability_live.py on a
live demo, tests/e2e/test_dashboard_intervals.py on a backfilled history at 15 s and 60 s)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "deploy/prometheus/emr-serverless-exporter.rules.yaml"
PROMTOOL = "/usr/bin/promtool"
# Grafana's values for a 15 s data source and "All" selected: $__rate_interval is
# max(4 x 15 s, $__interval + 15 s) = 1m; $__range is the time picker's span.
GRAFANA_15S_VARIABLES = {
    "target": ".*", "application": ".*", "session": ".*",
    "__rate_interval": "1m", "__interval": "15s", "__range": "1h",
}
DASHBOARD_FILE = ROOT / "deploy/grafana/emr-serverless-exporter.json"
# Metric selectors in alert expressions that demo data does not produce (the demo has no API errors).
ALLOWED_EMPTY_SELECTORS = {
    'emr_serverless_api_requests_total{outcome="ThrottlingException"}',
    'emr_serverless_api_requests_total{outcome!~"ok|ThrottlingException|ResourceNotFoundException"}',
}
# What the rules and the dashboard read that the exporter does not export yet: job runs, and the
# kind-generic self-metrics that replace the session ones (issue 18). A panel, recording rule or alert
# selector that reads only these may come back empty; everything else must still have data. Empty
# this set once the exporter exports them: tests/e2e/test_dashboard_intervals.py fails until then.
NOT_YET_EXPORTED = frozenset({
    "emr_serverless_job_run_state",
    "emr_serverless_job_run_info",
    "emr_serverless_job_run_created_timestamp_seconds",
    "emr_serverless_job_run_started_timestamp_seconds",
    "emr_serverless_job_run_ended_timestamp_seconds",
    "emr_serverless_job_run_queued_duration_seconds",
    "emr_serverless_job_run_execution_duration_seconds",
    "emr_serverless_job_run_execution_timeout_seconds",
    "emr_serverless_job_run_attempt",
    "emr_serverless_job_run_billed_vcpu_seconds_total",
    "emr_serverless_job_run_billed_memory_byte_seconds_total",
    "emr_serverless_job_run_billed_storage_byte_seconds_total",
    "emr_serverless_job_run_tags",
    "emr_serverless_application_job_runs",
    "emr_serverless_application_job_runs_ended_total",
    "emr_serverless_application_max_concurrent_runs",
    "emr_serverless_application_queue_timeout_seconds",
    "emr_serverless_stale_objects",
    "emr_serverless_oldest_object_data_age_seconds",
    "emr_serverless_oldest_listing_age_seconds",
})


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in dashboard_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(name, selector, label) of every label_values() variable."""
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: not a label_values() query: {query}"
        found.append((variable["name"], match.group(1), match.group(2)))
    return found


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


# A metric name the rules and the dashboard read: the exporter's, a recorded one (level:metric:operation), up.
METRIC = r"(?:(?:[a-z_]+:)?emr_serverless_\w+(?::\w+)?|up)"


def selectors(expr: str) -> list[str]:
    """The metric selectors (name and label matchers) of a PromQL expression."""
    return re.findall(rf"\b{METRIC}(?:\{{[^}}]*\}})?(?=\s*[\[\)\s/*+\-<>=!]|$)", expr)


def substitute(expr: str, variables: dict[str, str]) -> str:
    """``expr`` with Grafana's variables (``$name``, ``${name}``, ``${name:format}``) filled in from ``variables``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"unknown dashboard variable ${name} in {expr!r}"
        return variables[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, expr)


def metrics_read(expr: str) -> set[str]:
    """The metrics an expression reads, through the recording rules it reads (by their expressions)."""
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    found: set[str] = set()
    for name in re.findall(rf"\b{METRIC}(?![\w:])", expr):
        found |= metrics_read(recorded[name]) if name in recorded else {name}
    return found


def not_yet_exported(expr: str) -> bool:
    """Whether an empty answer from ``expr`` (a query, a rule's expression or one selector) is expected: everything it
    reads is not exported yet, but for the prices that only turn what it reads into money."""
    read = {name for name in metrics_read(expr) if not name.startswith("emr_serverless_application_price_per_")}
    return bool(read) and read <= NOT_YET_EXPORTED
