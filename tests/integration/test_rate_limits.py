"""Client-side rate limits against the simulator: targets that spend one AWS quota (same credentials, region
and endpoint) share its token buckets, another runner (another configuration) shares nothing with them,
and a limit never refuses a call that it allows now, however close the deadline."""

from __future__ import annotations

from typing import Any

import yaml

from emr_serverless_simulator import Simulator, Store
from exporter.collect.runner import CollectionRunner
from exporter.config.schema import parse_config
from exporter.wiring import build_runner
from tests.helpers.support import collecting

# One ListApplications now, the next in 100 s: a target that finds the bucket empty is deferred at once
# (collection.timeout_seconds leaves no time to wait), so Store.calls counts the buckets' tokens.
ONE_LISTING = {"ListApplications": {"requests_per_second": 0.01, "burst": 1}}


def runner(url: str, *regions: str, **aws: Any) -> CollectionRunner:
    targets = [{"region": region, "endpoint_url": url, "name": f"t{i}"} for i, region in enumerate(regions)]
    config = parse_config(yaml.safe_dump({
        "targets": targets, "aws": {"rate_limits": ONE_LISTING, "max_attempts": 1, **aws},
        "collection": {"timeout_seconds": 1, "min_interval_seconds": 0},
    }))
    return build_runner(config)


def collect_once(built: CollectionRunner) -> None:
    try:
        built.collect()
    finally:
        built.close()


def test_targets_of_one_quota_share_its_buckets(store: Store, simulator: Simulator) -> None:
    store.add_application(name="analytics")
    collect_once(runner(simulator.url, "us-east-1", "us-east-1"))
    assert store.calls["ListApplications"] == 1  # the second target found the shared bucket empty


def test_targets_of_other_quotas_have_their_own(store: Store, simulator: Simulator) -> None:
    store.add_application(name="analytics")
    collect_once(runner(simulator.url, "us-east-1", "eu-west-1"))
    assert store.calls["ListApplications"] == 2


def test_each_runner_has_its_own_registry(store: Store, simulator: Simulator) -> None:
    # A module-global registry kept the first runner's buckets (and its configuration) for the next one.
    store.add_application(name="analytics")
    collect_once(runner(simulator.url, "us-east-1"))
    collect_once(runner(simulator.url, "us-east-1"))
    assert store.calls["ListApplications"] == 2
    collect_once(runner(simulator.url, "us-east-1", rate_limits={"ListApplications": {"requests_per_second": 0}}))
    collect_once(runner(simulator.url, "us-east-1", rate_limits={"ListApplications": {"requests_per_second": 0}}))
    assert store.calls["ListApplications"] == 4


def test_a_scrape_with_little_time_left_still_makes_the_calls_its_rate_limits_allow_now(
    store: Store, simulator: Simulator
) -> None:
    # Prometheus scraping every second sends a 1 s timeout: the collection has 0.5 s, less than the room a
    # call must leave before the deadline to wait for a token. A token free now is not a wait.
    app = store.add_application(name="analytics")
    store.add_session(app, state="IDLE")
    every_operation = ("ListApplications", "ListSessions", "GetSession", "GetApplication")
    built, _ = collecting(simulator.url, aws={
        "rate_limits": {operation: {"requests_per_second": 5, "burst": 25} for operation in every_operation}})
    try:
        for _ in range(3):
            assert all(result.up for result in built.collect(timeout=0.5))
    finally:
        built.close()
    assert store.calls["ListApplications"] == store.calls["GetSession"] == 3
