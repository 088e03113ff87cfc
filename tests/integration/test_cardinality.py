"""Cardinality controls against the simulator: the cap on ended job runs costs no GetJobRun and is logged
once per application; a denylist holds in every format, on the generic path and in background mode."""

from __future__ import annotations

import gzip
import logging
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from emr_serverless_simulator import Simulator, Store, build_scenario
from exporter.config.schema import parse_config
from exporter.render.background import BackgroundRenderer
from exporter.render.exposition import negotiate
from exporter.wiring import build_exposition, build_registry, build_runner
from tests.helpers.support import promtool_check, samples_of, simulator_config, value

APPLICATIONS = 2
RUNNING, ENDED, CAP = 3, 12, 5


@pytest.fixture
def store() -> Store:
    return build_scenario("scale", applications=APPLICATIONS, sessions_per_application=0,
                          running_job_runs_per_application=RUNNING, ended_job_runs_per_application=ENDED, seed=3)


def test_the_cap_keeps_the_most_recently_ended_runs_and_fetches_no_other(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sections: dict[str, Any] = {"discovery": {"sessions": False, "max_terminated_job_runs_per_application": CAP}}
    with Simulator(store, port=0) as simulator:
        config = parse_config(simulator_config(simulator.url, **sections))
        runner = build_runner(config)
        exposition = build_exposition(runner, config, machine=False)
        try:
            with caplog.at_level(logging.WARNING, logger="exporter"):
                for _ in range(3):
                    runner.collect()
                    body = exposition.render("")[0].decode()
        finally:
            runner.close()
    samples = samples_of(body)
    exported: dict[str, list[float]] = {}
    for sample in samples["emr_serverless_job_run_ended_timestamp_seconds"]:
        exported.setdefault(sample.labels["application_id"], []).append(sample.value)
    for app in store.application_ids():
        ends = sorted((run.ended_at for run in (store.job_run(app, rid) for rid in store.job_run_ids(app))
                       if run is not None and run.ended_at is not None), reverse=True)
        assert sorted(exported[app], reverse=True) == pytest.approx(ends[:CAP])
    assert value(samples, "emr_serverless_dropped_objects_total", kind="job_run") == APPLICATIONS * (ENDED - CAP)
    assert {s.labels["kind"] for s in samples["emr_serverless_dropped_objects_total"]} == {"job_run"}
    capped = [getattr(r, "fields", {}) for r in caplog.records
              if "max_terminated_job_runs_per_application" in r.getMessage()]
    assert sorted(fields["application"] for fields in capped) == sorted(store.application_ids())  # once each


def test_left_out_runs_cost_no_get_job_run(store: Store) -> None:
    with Simulator(store, port=0) as simulator:
        for cap, expected in ((CAP, RUNNING + CAP), (0, RUNNING), (1000, RUNNING + ENDED)):
            store.reset_calls()
            discovery = {"sessions": False, "max_terminated_job_runs_per_application": cap}
            runner = build_runner(parse_config(simulator_config(simulator.url, discovery=discovery)))
            try:
                runner.collect()
                runner.collect()
            finally:
                runner.close()
            # Active runs are fetched each collection (their utilization moves); ended ones once, if kept.
            first = APPLICATIONS * expected
            assert store.calls["GetJobRun"] == first + APPLICATIONS * RUNNING, cap


def prerendered(snapshots: BackgroundRenderer, accept: str, gzipped: bool) -> tuple[bytes, ...]:
    served = snapshots.get(negotiate(accept), gzipped)
    assert served is not None
    return tuple(served.body)


DENYLIST = ["emr_serverless_job_run_.*_timestamp_seconds", "emr_serverless_job_run_attempt",
            "emr_serverless_application_info"]
LEFT_OUT = (b"emr_serverless_job_run_created_timestamp_seconds", b"emr_serverless_job_run_attempt{",
            b"emr_serverless_application_info", b"emr_serverless_job_run_attempt ")


def test_a_denylist_holds_on_every_path(store: Store) -> None:
    with Simulator(store, port=0) as simulator:
        config = parse_config(simulator_config(simulator.url, metrics={"denylist": DENYLIST}))
        runner = build_runner(config)
        exposition = build_exposition(runner, config)
        registry = build_registry(runner, config, sizes=exposition.sizes)
        snapshots = BackgroundRenderer(runner, exposition, interval_seconds=60)
        try:
            snapshots.refresh()
            bodies = {
                "direct text": exposition.render("")[0],
                "direct openmetrics": exposition.render(OPENMETRICS)[0],
                "generic (escaping=dots)": exposition.render("text/plain;version=1.0.0;escaping=dots")[0],
                "background openmetrics gzip": gzip.decompress(b"".join(prerendered(snapshots, OPENMETRICS, True))),
                "background text": b"".join(prerendered(snapshots, "", False)),
                "prometheus-client": generate_latest(registry),
            }
        finally:
            runner.close()
    for path, body in bodies.items():
        dotted = body.replace(b"__", b"_")  # the dots escaping doubles underscores
        assert b"emr_serverless_job_run_info{" in dotted, path
        assert not [name for name in LEFT_OUT if name in dotted], path
        assert b"emr_serverless_last_success_timestamp_seconds{" in dotted, path
    promtool_check(bodies["direct text"])
