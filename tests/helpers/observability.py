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


