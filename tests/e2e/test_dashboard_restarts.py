"""Whole-session and whole-run panels count each session and job run once across exporter restarts, and
team cost survives a session's team tag changing.

The dashboard's billing and cost panels sum each session's or job run's last value over the selected
range (``max_over_time``). A restarted exporter pod (an upgrade, a node drain) has a new ``instance``,
so every object it exported before and after is two series in that range: summing them counts the
object twice. Judged by promtool's PromQL engine over a session and a job run whose exporter restarted
halfway.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers import observability
from tests.helpers.observability import PROMTOOL, RULES_FILE, dashboard_queries


def substitute(expr: str) -> str:
    return observability.substitute(expr, observability.GRAFANA_15S_VARIABLES)

TARGET = 'target="prod/us-east-1", region="us-east-1", account_id="123456789012", application_id="00fabc"'
SESSION = f'{TARGET}, application_name="analytics", session_id="00fsess6", session_name="a"'
JOB_RUN = f'{TARGET}, application_name="analytics", job_run_id="00frun1", job_run_name="nightly-etl"'
VALUES = {"target": "prod/us-east-1", "application_name": "analytics", "session_id": "00fsess6",
          "session_name": "a", "job_run_id": "00frun1", "job_run_name": "nightly-etl", "currency": "USD",
          "tag_team": "data"}
# Billed in an hour: 1 vCPU-hour, 1 GB-hour of memory and of storage (2^30 bytes), exactly.
PER_MINUTE = {"vcpu_seconds": 60, "memory_byte_seconds": 60 * 2**30, "storage_byte_seconds": 60 * 2**30}
# 0.25 per vCPU-second and per 2^32 byte-seconds: 900 each, 2700 in all, exactly.
PRICES = {"vcpu_second": 0.25, "memory_byte_second": 2.0**-32, "storage_byte_second": 2.0**-32}
COST = 2700.0


def whole_session_queries() -> list[tuple[str, str]]:
    return [(name, expr) for name, expr in dashboard_queries() if "max_over_time(" in expr and "session" in expr]


def whole_run_queries() -> list[tuple[str, str]]:
    """The job-run panels that sum whole runs (a longest-run panel takes a max, which a restart cannot double)."""
    return [(name, expr) for name, expr in dashboard_queries()
            if "max_over_time(" in expr and "job_run" in expr and "sum by" in expr]


def restarted_exporter() -> list[dict[str, str]]:
    """The session's and the job run's series from pod "old" for 20 minutes, then from pod "new" (a restart)
    to 60."""
    series = []
    for instance, values in (("old:9865", "{start}+{step}x20"), ("new:9865", "_x21 {restart}+{step}x39")):
        own = f'instance="{instance}", job="emr-serverless-exporter"'
        for usage, step in PER_MINUTE.items():
            for kind, labels in (("session", SESSION), ("job_run", JOB_RUN)):
                series.append({
                    "series": f"emr_serverless_{kind}_billed_{usage}_total{{{labels}, {own}}}",
                    "values": values.format(start=0, step=step, restart=21 * step),
                })
        for price, value in PRICES.items():
            series.append({
                "series": f'emr_serverless_application_price_per_{price}{{{TARGET}, application_name="analytics", '
                          f'currency="USD", {own}}}',
                "values": f"{value!r}x60" if instance == "old:9865" else f"_x21 {value!r}x39",
            })
        series.append({
            "series": f'emr_serverless_session_tags{{{TARGET}, session_id="00fsess6", tag_team="data", {own}}}',
            "values": "1x20" if instance == "old:9865" else "_x21 1x39",
        })
    return series


def expected(expr: str) -> dict[str, object]:
    grouping = re.search(r"sum by \(([^)]*)\)", expr)
    assert grouping, f"not a sum by (...): {expr}"
    names = [name.strip() for name in grouping.group(1).split(",")]
    labels = ", ".join(f'{name}="{VALUES[name]}"' for name in names)
    return {"labels": f"{{{labels}}}", "value": COST if "cost" in expr else 1.0}


def test_the_dashboard_has_whole_session_and_whole_run_panels() -> None:
    assert len(whole_session_queries()) >= 6
    assert len(whole_run_queries()) >= 2


def test_a_restarted_exporter_does_not_count_a_session_or_a_run_twice(tmp_path: Path) -> None:
    tests = {
        "rule_files": [str(RULES_FILE)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": restarted_exporter(),
            "promql_expr_test": [
                {"expr": substitute(expr), "eval_time": "60m", "exp_samples": [expected(expr)]}
                for _, expr in whole_session_queries() + whole_run_queries()
            ],
        }],
    }
    path = tmp_path / "restart_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def team_series() -> list[dict[str, str]]:
    """The session (1 vCPU, 1 per vCPU-second) tagged team=old by pod "old" until minute 20, and team=new
    by pod "new" from minute 15: the tag changed, and both pods exported the session for a while."""
    series = [{
        "series": f'emr_serverless_application_price_per_vcpu_second{{{TARGET}, application_name="analytics", '
                  'currency="USD"}',
        "values": "1x60",
    }]
    pods = (("old:9865", "old", "0+60x20", "1x20"), ("new:9865", "new", "_x15 900+60x45", "_x15 1x45"))
    for instance, team, used, tagged in pods:
        own = f'instance="{instance}", job="emr-serverless-exporter"'
        series.append({"series": f"emr_serverless_session_billed_vcpu_seconds_total{{{SESSION}, {own}}}",
                       "values": used})
        series.append({"series": f'emr_serverless_session_tags{{{TARGET}, session_id="00fsess6", tag_team="{team}", '
                                 f'{own}}}', "values": tagged})
    return series


def test_a_session_whose_team_tag_changed_is_counted_once(tmp_path: Path) -> None:
    # A team join whose right side holds two tag_team values for one session is a many-to-many error:
    # the panel (tags over the whole range) and the rule (two pods at once) would fail entirely.
    panel = next(expr for _, expr in whole_session_queries() if "group_left (tag_team)" in expr)
    tests = {
        "rule_files": [str(RULES_FILE)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": team_series(),
            "promql_expr_test": [
                {"expr": f"sum({substitute(panel)})", "eval_time": "60m",
                 "exp_samples": [{"labels": "{}", "value": 3600}]},
                {"expr": "sum(team:emr_serverless_session_billed_cost:rate10m)", "eval_time": "60m",
                 "exp_samples": [{"labels": "{}", "value": 1}]},
            ],
        }],
    }
    path = tmp_path / "team_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
