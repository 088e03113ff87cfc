"""Every dashboard panel and every rule has data at a 15 s and at a 60 s scrape interval.

A stock Grafana data source (scrape interval 15 s) makes ``$__rate_interval`` 1m, which holds one
sample at a 60 s scrape: panels built on ``rate(x[$__rate_interval])`` go blank. Waiting real minutes
for 60 s scrapes is too slow, so the demo is replayed on a simulated clock instead: the simulator and
the exporter share a clock that advances 15 s between collections over 45 minutes; the exporter's
OpenMetrics expositions (every one, or every fourth for 60 s) get the scrape's timestamp and the
labels Prometheus adds (job, instance), ``promtool tsdb create-blocks-from openmetrics`` turns them
into blocks, ``promtool tsdb create-blocks-from rules`` evaluates the recording rules over them at
the scrape interval (no rule reads another rule's series, so one pass is complete), and a real
Prometheus started on both answers every panel query at the end of the window, with Grafana's
variables as Grafana fills them for a 15 s data source.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml

from emr_serverless_simulator import Simulator, build_scenario
from exporter.config.schema import Config, parse_config
from exporter.wiring import build_exposition, build_runner
from tests.helpers import observability
from tests.helpers.observability import (
    ALLOWED_EMPTY_SELECTORS,
    PROMTOOL,
    RULES_FILE,
    dashboard_queries,
    rules,
    selectors,
    variable_queries,
)
from tests.helpers.prometheus_server import PrometheusServer

STEP_SECONDS = 15
WINDOW_SECONDS = 45 * 60
INTERVALS = {"15s": 1, "60s": 4}  # scrape interval: every how many 15 s expositions
JOB, INSTANCE = "emr-serverless-exporter", "demo:9865"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# Dashboards query between scrapes, not on them (in Prometheus 2 a range includes both ends: a query
# aligned with the scrapes would see two 60 s samples in [1m]).
QUERY_OFFSET_SECONDS = 23

VARIABLES = observability.GRAFANA_15S_VARIABLES


def substitute(expr: str) -> str:
    return observability.substitute(expr, VARIABLES)


class SimulatedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def demo_history() -> tuple[float, float, list[tuple[float, str]]]:
    """(start, end, [(time, OpenMetrics exposition)]): the demo every 15 s over the window."""
    end = float(int(time.time()) // 60 * 60 - 600)  # aligned, safely in the past
    start = end - WINDOW_SECONDS
    clock = SimulatedClock(start)
    store = build_scenario("demo", clock=clock)
    expositions = []
    with Simulator(store, port=0) as simulator:
        # 45 minutes replayed in seconds on the simulator's clock: the rate limits count real time, so they are off.
        no_limits = {operation: {"requests_per_second": 0} for operation in Config().aws.rate_limits.by_operation()}
        config = parse_config(yaml.safe_dump({"targets": [{"region": "us-east-1", "endpoint_url": simulator.url}],
                                              "aws": {"rate_limits": no_limits}}))
        session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")
        runner = build_runner(config, session=session, clock=clock)
        exposition = build_exposition(runner, config)
        try:
            for step in range(WINDOW_SECONDS // STEP_SECONDS + 1):
                clock.now = start + step * STEP_SECONDS
                results = runner.collect()
                assert all(result.up for result in results), [result.errors for result in results]
                body, _ = exposition.render(OPENMETRICS)
                expositions.append((clock.now, body.decode()))
        finally:
            runner.close()
    return start, end, expositions


def as_backfill(expositions: list[tuple[float, str]]) -> str:
    """One OpenMetrics text holding every exposition with its timestamp: each family once, each series'
    points together and in order, as ``create-blocks-from openmetrics`` wants them."""
    headers: dict[str, list[str]] = {"up": ["# TYPE up gauge"]}
    points: dict[str, dict[str, list[str]]] = {"up": {}}
    scrape_labels = f'instance="{INSTANCE}",job="{JOB}"'
    for at, body in expositions:
        points["up"].setdefault(f"up{{{scrape_labels}}}", []).append(f"1 {at:.3f}")
        family = ""
        for line in body.splitlines():
            if line.startswith("# "):
                family = line.split(" ", 3)[2] if line != "# EOF" else ""
                if family.startswith("emr_serverless_") and line not in headers.setdefault(family, []):
                    headers[family].append(line)
                continue
            if not family.startswith("emr_serverless_"):
                continue  # the process and Python collectors: no panel reads them
            series, value = line.rsplit(" ", 1)
            name, brace, labels = series.partition("{")
            series = f"{name}{{{scrape_labels}{',' + labels[:-1] if brace and labels != '}' else ''}}}"
            points.setdefault(family, {}).setdefault(series, []).append(f"{value} {at:.3f}")
    out = []
    for family, lines in headers.items():
        out += lines
        out += [f"{series} {point}" for series, values in points.get(family, {}).items() for point in values]
    return "\n".join([*out, "# EOF", ""])


def promtool(*args: str) -> None:
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module", params=list(INTERVALS))
def prom(
    request: pytest.FixtureRequest, demo_history: tuple[float, float, list[tuple[float, str]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, float, PrometheusServer]]:
    """A Prometheus on the demo's history at one scrape interval, recording rules backfilled."""
    interval: str = request.param
    start, end, expositions = demo_history
    work = tmp_path_factory.mktemp(f"backfill-{interval}")
    source = work / "scrapes.om"
    source.write_text(as_backfill(expositions[:: INTERVALS[interval]]))
    blocks = work / "blocks"
    promtool("tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(blocks))
    recorded = work / "recorded"
    with PrometheusServer(targets=[], scrape_interval="1m", tsdb=blocks) as raw:
        promtool("tsdb", "create-blocks-from", "rules", "--quiet", f"--url={raw.url}", f"--start={int(start)}",
                 f"--end={int(end)}", f"--eval-interval={interval}", f"--output-dir={recorded}", str(RULES_FILE))
    for block in recorded.iterdir():
        shutil.copytree(block, blocks / block.name)
    with PrometheusServer(targets=[], scrape_interval="1m", tsdb=blocks) as server:
        yield interval, end, server


def query(prom: tuple[str, float, PrometheusServer], expr: str) -> list[dict[str, Any]]:
    _, end, server = prom
    return server.query(expr, at=end + QUERY_OFFSET_SECONDS)


def test_every_dashboard_query_has_data(prom: tuple[str, float, PrometheusServer]) -> None:
    blank = [
        f"{title}: {substitute(expr)}"
        for title, expr in dashboard_queries()
        if not query(prom, substitute(expr))
    ]
    assert not blank, f"blank panels at a {prom[0]} scrape interval:\n" + "\n".join(blank)


def test_every_dashboard_variable_has_values(prom: tuple[str, float, PrometheusServer]) -> None:
    for name, selector, label in variable_queries():
        values = {sample["metric"].get(label) for sample in query(prom, substitute(selector))} - {None, ""}
        assert values, f"variable {name}: no {label} values at a {prom[0]} scrape interval"


@pytest.mark.parametrize("rule", rules(), ids=[rule.get("alert") or rule["record"] for rule in rules()])
def test_every_rule_has_data(prom: tuple[str, float, PrometheusServer], rule: dict[str, Any]) -> None:
    if "record" in rule:
        # Both the backfilled series (what dashboards read) and the expression evaluated now.
        recorded, evaluated = query(prom, rule["record"]), query(prom, rule["expr"])
        assert recorded, f"{rule['record']}: nothing recorded at a {prom[0]} scrape interval"
        assert evaluated, f"{rule['record']}: no data at a {prom[0]} scrape interval"
        return
    query(prom, rule["expr"])  # valid; the condition may rightly be false on demo data
    for selector in selectors(rule["expr"]):
        if selector not in ALLOWED_EMPTY_SELECTORS:
            assert query(prom, selector), f"{rule['alert']}: {selector} selects nothing"


def test_the_old_rate_interval_goes_blank_at_60s(prom: tuple[str, float, PrometheusServer]) -> None:
    # The harness sees the failure it guards against: rate() over Grafana's 1m holds one 60 s sample.
    blank = not query(prom, "rate(emr_serverless_session_vcpu_seconds_total[1m])")
    assert blank == (prom[0] == "60s")


def test_the_cost_panels_show_money(prom: tuple[str, float, PrometheusServer]) -> None:
    costs = {title: expr for title, expr in dashboard_queries() if "cost" in expr}
    assert len(costs) >= 4, sorted(costs)
    for title, expr in costs.items():
        samples = query(prom, substitute(expr))
        assert all(sample["metric"].get("currency") == "USD" for sample in samples), title
        assert all(float(sample["value"][1]) > 0 for sample in samples), title
