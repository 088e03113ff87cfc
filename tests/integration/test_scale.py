"""Many targets, HA scrapes and sharding, against simulators over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.exposition import generate_latest

from emr_serverless_simulator import Fault, Simulator, Store
from exporter.collect.discovery import Shard
from exporter.collect.runner import CollectionRunner
from exporter.config.schema import parse_config
from exporter.model.kinds import SESSIONS
from exporter.wiring import build_registry, build_runner
from tests.helpers.support import run_exporter, samples_of, session_ids, value


@pytest.fixture
def two_simulators() -> Iterator[tuple[tuple[Store, Simulator], tuple[Store, Simulator]]]:
    healthy, failing = Store(account_id="111111111111"), Store(account_id="222222222222")
    for store in (healthy, failing):
        app = store.add_application(name="analytics")
        for _ in range(3):
            store.add_session(app, state="IDLE")
    with Simulator(healthy, port=0) as a, Simulator(failing, port=0) as b:
        yield (healthy, a), (failing, b)


def runner_for(*sims: Simulator, **sections: Any) -> tuple[CollectionRunner, Any]:
    data: dict[str, Any] = {
        "targets": [{"region": "us-east-1", "endpoint_url": sim.url, "name": f"t{i}"} for i, sim in enumerate(sims)],
        "collection": {"min_interval_seconds": 0},  # each collect() collects, unless a test says otherwise
    }
    data.update(sections)
    config = parse_config(yaml.safe_dump(data))
    runner = build_runner(config)
    return runner, build_registry(runner, config)


def scrape(registry: Any) -> dict[str, list[Any]]:
    return samples_of(generate_latest(registry).decode())


def test_a_failing_target_does_not_touch_the_healthy_one(two_simulators: Any) -> None:
    (_, a), (failing, b) = two_simulators
    failing.add_fault(Fault(operation="ListApplications", error_code="AccessDeniedException"))
    runner, registry = runner_for(a, b, aws={"max_attempts": 1})
    try:
        runner.collect()
        samples = scrape(registry)
    finally:
        runner.close()
    assert value(samples, "emr_serverless_up", target="t0") == 1
    assert value(samples, "emr_serverless_up", target="t1") == 0
    assert {s.labels["account_id"] for s in samples["emr_serverless_session_info"]} == {"111111111111"}
    assert len(session_ids(samples)) == 3
    assert value(samples, "emr_serverless_api_requests_total", target="t1", operation="ListApplications",
                 outcome="AccessDeniedException") == 1


def test_a_slow_target_is_cut_at_the_deadline_and_serves_what_is_known(two_simulators: Any) -> None:
    (_, a), (slow, b) = two_simulators
    runner, registry = runner_for(a, b, aws={"read_timeout_seconds": 5})
    try:
        runner.collect()
        known = session_ids(scrape(registry))
        assert len(known) == 6
        slow.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=3000))
        results = runner.collect(timeout=1.0)
        samples = scrape(registry)
    finally:
        runner.close()
    by_target = {r.identity.name: r for r in results}
    assert by_target["t0"].up and not by_target["t1"].up
    assert [e.code for e in by_target["t1"].errors] == ["Timeout"]
    assert value(samples, "emr_serverless_up", target="t0") == 1
    assert value(samples, "emr_serverless_up", target="t1") == 0
    assert session_ids(samples) == known  # the slow target's sessions as last known
    assert by_target["t1"].duration_seconds < 3  # it did not wait for the slow call


def test_sessions_not_fetched_by_the_deadline_are_served_as_last_known(two_simulators: Any) -> None:
    (store, sim), _ = two_simulators
    runner, registry = runner_for(sim, aws={"read_timeout_seconds": 5})
    try:
        runner.collect()
        before = scrape(registry)
        slow = sorted(session_ids(before))[0]
        store.add_fault(Fault(operation="GetSession", error_code=None, delay_ms=3000, match={"sessionId": slow}))
        results = runner.collect(timeout=1.0)
        after = scrape(registry)
    finally:
        runner.close()
    assert [e.code for e in results[0].errors] == ["Timeout"]
    assert value(after, "emr_serverless_up", target="t0") == 0
    assert session_ids(after) == session_ids(before)  # the slow one as last known, the others fresh
    assert len(results[0].objects[SESSIONS]) == 3


def test_concurrent_scrapes_share_one_collection(two_simulators: Any) -> None:
    (store, sim), _ = two_simulators
    store.add_fault(Fault(operation="ListApplications", error_code=None, delay_ms=300))
    runner, _ = runner_for(sim)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def scrape_once() -> None:
        barrier.wait()
        results.append(runner.collect())

    try:
        threads = [threading.Thread(target=scrape_once) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        runner.close()
    assert store.calls["ListApplications"] == 1
    assert results[0] is results[1] is results[2]


def test_min_interval_reuses_the_last_collection(two_simulators: Any) -> None:
    (store, sim), _ = two_simulators
    runner, _ = runner_for(sim, collection={"min_interval_seconds": 60})
    try:
        first = runner.collect()
        second = runner.collect()
    finally:
        runner.close()
    assert second is first
    assert store.calls["ListApplications"] == 1


def test_shards_split_applications_with_no_overlap_and_no_gap() -> None:
    store = Store()
    for i in range(40):
        app = store.add_application(name=f"app-{i}")
        store.add_session(app, state="IDLE")
    with Simulator(store, port=0) as sim:
        # No job runs here: their listings would wait for the ListJobRuns rate limit until each deadline.
        config = parse_config(yaml.safe_dump({"targets": [{"region": "us-east-1", "endpoint_url": sim.url}],
                                              "discovery": {"job_runs": False}}))

        def exported(shard: Shard | None) -> set[str]:
            runner = build_runner(config, shard=shard)
            try:
                runner.collect()
                samples = scrape(build_registry(runner, config))
            finally:
                runner.close()
            return {s.labels["application_id"] for s in samples["emr_serverless_application_info"]}

        everything = exported(None)
        parts = [exported(Shard(index, 3)) for index in range(3)]
    assert len(everything) == 40
    assert set().union(*parts) == everything
    assert sum(len(part) for part in parts) == 40  # no application in two shards
    assert sum(1 for part in parts if part) >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3", "--total-shards", "3"], "--shard: must be from 0 to 2"),
        (["--total-shards", "0"], "--total-shards: must be at least 1"),
        (["--shard", "x"], "--shard: invalid int value"),
    ],
)
def test_bad_shard_flags_exit_2(args: list[str], message: str) -> None:
    result = run_exporter([*args, "--once"])
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1
