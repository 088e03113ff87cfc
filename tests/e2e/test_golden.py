"""The golden exposition, as node_exporter's end-to-end test keeps one: the demo at a fixed seed and a
fixed instant, byte for byte against the files in tests/e2e/golden/.

After a deliberate change of the exposition (a metric, a label, a help text, the demo scenario),
regenerate the files and read their diff before committing it:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/e2e/test_golden.py

- ``demo.prom``: ``--demo --once`` (the text format, one collection).
- ``demo.openmetrics.txt``: ``/metrics`` of a serving ``--demo`` asked for OpenMetrics once ready: its
  second collection (``collection.min_interval_seconds`` 0: the instant is fixed, so no time passes between
  the two), so the API counters and cache hits are those of a steady-state collection too.

``EMR_SERVERLESS_EXPORTER_DEMO_SEED`` and ``EMR_SERVERLESS_EXPORTER_DEMO_TIME`` (test-only, read only with
``--demo``) fix the simulator's seed and the instant both the simulator and the exporter read as now
(idle seconds, timestamps; collection durations are 0). At a fixed instant the exporter leaves out
prometheus-client's process and Python collectors, which describe the machine. The one value replaced
here is what the machine has installed: ``python_version`` and ``boto3_version`` of build_info.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.cli import DEMO_SEED_ENV, DEMO_TIME_ENV, UsageError, demo_settings
from tests.helpers.support import aws_env, get, run_exporter, samples_of, serving

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
DEMO_ENV = {DEMO_SEED_ENV: "1", DEMO_TIME_ENV: "1767225600"}  # 2026-01-01T00:00:00Z
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# build_info's labels that name what this machine has installed, and only those.
MACHINE_VALUES = re.compile(r'(?<=[{,])(python_version|boto3_version)="[^"]*"')


def normalized(body: str) -> str:
    return "".join(
        MACHINE_VALUES.sub(r'\1="<varies>"', line) if line.startswith("emr_serverless_build_info{") else line
        for line in body.splitlines(keepends=True)
    )


def check_golden(name: str, body: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(body)
    expected = path.read_text()
    if body != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), body.splitlines(keepends=True),
                                    f"tests/e2e/golden/{name}", "this run", n=1)
        pytest.fail(f"the exposition differs from tests/e2e/golden/{name} (if meant: UPDATE_GOLDEN=1 .venv/bin/pytest "
                    f"tests/e2e/test_golden.py, then read the diff):\n{''.join(diff)}", pytrace=False)


def test_demo_once_is_the_golden_text(tmp_path: Path) -> None:
    # tmp_path: no config.yaml there, so all defaults whatever the working directory holds.
    result = run_exporter(["--demo", "--once"], cwd=str(tmp_path), env=aws_env(**DEMO_ENV))
    assert result.returncode == 0, result.stderr
    body = normalized(result.stdout)
    check_golden("demo.prom", body)
    # The golden file is itself a clean exposition with every kind of series in it.
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stdout + lint.stderr, lint.stdout + lint.stderr
    samples = samples_of(body)
    assert {s.labels["state"] for s in samples["emr_serverless_session_state"] if s.value == 1} >= {
        "BUSY", "IDLE", "FAILED", "TERMINATED"}
    assert any(s.value > 0 for s in samples["emr_serverless_session_idle_seconds"])
    assert "process_cpu_seconds_total" not in body and "python_info" not in body


def test_served_openmetrics_is_the_golden_openmetrics(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("collection: {min_interval_seconds: 0}\n")
    with serving("--demo", cwd=tmp_path, env=aws_env(**DEMO_ENV)) as served:
        status, headers, raw = get(served.url + "/metrics", headers={"Accept": OPENMETRICS})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text"), headers
    body = normalized(raw.decode())
    check_golden("demo.openmetrics.txt", body)
    families = {f.name for f in parse_openmetrics(body)}  # type: ignore[no-untyped-call]  # valid OpenMetrics
    assert {"emr_serverless_session_state", "emr_serverless_api_requests", "emr_serverless_build_info"} <= families


@pytest.mark.parametrize(("name", "bad"), [(DEMO_TIME_ENV, "yesterday"), (DEMO_TIME_ENV, "nan"),
                                          (DEMO_TIME_ENV, "-1"), (DEMO_SEED_ENV, "1.5")])
def test_a_bad_demo_setting_names_the_variable(name: str, bad: str) -> None:
    with pytest.raises(UsageError, match=f"^{name}: "):
        demo_settings({**DEMO_ENV, name: bad})


def test_a_bad_demo_setting_exits_2_with_one_line() -> None:
    result = run_exporter(["--demo", "--once"], env=aws_env(**{**DEMO_ENV, DEMO_TIME_ENV: "yesterday"}))
    assert result.returncode == 2 and result.stdout == "", result
    expected = f"emr-serverless-exporter: {DEMO_TIME_ENV}: expected Unix seconds above 0, got 'yesterday'\n"
    assert result.stderr == expected
