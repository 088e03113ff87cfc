"""The dashboard and the rules against a real Prometheus scraping the exporter in demo mode.

Every dashboard query (variables substituted as Grafana would), every variable query and every
rule expression is evaluated through Prometheus's HTTP API: an invalid query, a query that selects
nothing where the demo data has series, or a rule that fails at evaluation time fails the test."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import observability
from tests.helpers.observability import (
    ALLOWED_EMPTY_SELECTORS,
    DASHBOARD_FILE,
    METRIC,
    ROOT,
    RULES_FILE,
    dashboard_panels,
    dashboard_queries,
    rules,
    selectors,
    variable_queries,
)
from tests.helpers.prometheus_server import PrometheusServer
from tests.helpers.support import serving

SCRAPES_BEFORE_QUERYING = 6

# How Grafana would fill in the variables for "All" with a 1s scrape interval: multi-value variables
# use the allValue ".*" with =~; $__rate_interval is at least four scrape intervals.
VARIABLES = {
    "target": ".*",
    "application": ".*",
    "session": ".*",
    "__rate_interval": "5s",
    "__interval": "1s",
    "__range": "1m",
}

def substitute(expr: str) -> str:
    return observability.substitute(expr, VARIABLES)


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    with serving("--demo", cwd=ROOT) as served:
        yield served.address


@pytest.fixture(scope="module")
def prom(exporter: str) -> Iterator[PrometheusServer]:
    with PrometheusServer(targets=[exporter], scrape_interval="1s", rule_files=[RULES_FILE]) as server:
        server.wait_for(
            f'count_over_time(up{{job="emr-serverless-exporter"}}[1m]) >= {SCRAPES_BEFORE_QUERYING}', timeout=30
        )
        server.wait_for('up{job="emr-serverless-exporter"} == 1', timeout=10)
        yield server


DASHBOARD_QUERIES = dashboard_queries()
RULES = rules()


@pytest.mark.parametrize(("title", "expr"), DASHBOARD_QUERIES, ids=[title for title, _ in DASHBOARD_QUERIES])
def test_dashboard_query_has_data(prom: PrometheusServer, title: str, expr: str) -> None:
    result = prom.query(substitute(expr))
    assert result, f"{title}: no data for {substitute(expr)}"


@pytest.mark.parametrize(("name", "selector", "label"), variable_queries())
def test_dashboard_variable_has_values(prom: PrometheusServer, name: str, selector: str, label: str) -> None:
    result = prom.query(substitute(selector))
    values = {sample["metric"].get(label) for sample in result} - {None, ""}
    assert values, f"variable {name}: no {label} values from {selector}"


@pytest.mark.parametrize("rule", RULES, ids=[rule.get("alert") or rule["record"] for rule in RULES])
def test_rule_expression(prom: PrometheusServer, rule: dict[str, Any]) -> None:
    expr = rule["expr"]
    result = prom.query(expr)  # raises on an invalid expression
    if "record" in rule:
        assert result, f"recording rule {rule['record']} has no data on demo data"
        return
    # An alert's condition may rightly be false on demo data; each metric selector it uses must
    # still select series (a misspelt metric, label or value would select nothing, silently).
    for selector in selectors(expr):
        if selector in ALLOWED_EMPTY_SELECTORS:
            continue
        assert prom.query(selector), f"{rule['alert']}: {selector} selects nothing on demo data"


def test_selectors_are_found() -> None:
    # The selector extraction above must see every metric of every rule, or it checks nothing.
    for rule in RULES:
        metrics = set(re.findall(rf"\b({METRIC})(?![\w:])", rule["expr"]))
        assert {re.split(r"\{", found)[0] for found in selectors(rule["expr"])} == metrics, rule["expr"]


def test_rules_evaluate_without_errors(prom: PrometheusServer) -> None:
    # Prometheus evaluates the rules every second; runtime errors (e.g. many-to-many matching on
    # real label sets) show only here.
    deadline = time.monotonic() + 15
    while True:
        loaded = [rule for group in prom.rules() for rule in group["rules"]]
        if all(rule["health"] != "unknown" for rule in loaded) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(rule["name"] for rule in loaded) == sorted(rule.get("alert") or rule["record"] for rule in RULES)
    unhealthy = {rule["name"]: rule.get("lastError") for rule in loaded if rule["health"] != "ok"}
    assert not unhealthy


def test_demo_target_is_not_alerting_as_down(prom: PrometheusServer) -> None:
    assert prom.query("emr_serverless_up == 0") == []
    assert prom.query('ALERTS{alertname=~"EMRServerless(ExporterDown|ExporterAbsent|TargetDown)"}') == []


# --- the dashboard's structure (static) ----------------------------------------------------------------


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    assert dashboard["uid"] == "emr-serverless-exporter"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "target", "application", "session"]
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    for name in ("target", "application", "session"):
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] is True and variables[name]["includeAll"] is True
    panels = list(dashboard_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels), "duplicate panel ids"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]


# Series per application, or of job runs: filtered by target and application.
PER_APPLICATION = ("application:", "job_run", "emr_serverless_job_run_", "emr_serverless_application_job_runs")


def test_dashboard_queries_use_the_variables() -> None:
    for title, expr in DASHBOARD_QUERIES:
        # Rates come from the recording rules (10 minutes: never blank at scrapes up to 2 minutes,
        # tests/e2e/test_dashboard_intervals.py); a panel's own ranges are the dashboard's time range.
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window == "$__range", f"{title}: range [{window}]: use a recording rule or $__range"
        names = set(re.findall(rf"\b{METRIC}", expr))
        if any(name.startswith(("emr_serverless_session_", "session:")) for name in names):
            needed: tuple[str, ...] = ("$target", "$application", "$session")
        elif any(name.startswith(PER_APPLICATION) for name in names):
            needed = ("$target", "$application")  # per application, or job runs: a session filter cannot apply
        else:
            needed = ("$target",)
        for variable in needed:
            assert variable in expr, f"{title}: does not filter by {variable}"


def test_dashboard_panels_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
