"""From a configuration to the running parts: one API and one collector per target, the runner that
collects them, and the exposition that serves them. ``exporter.cli`` only chooses the mode."""

from __future__ import annotations

import time

import boto3
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from exporter.aws.calls import RateLimitRegistry, connect
from exporter.collect.discovery import Shard
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import Clock, TargetCollector
from exporter.common.redaction import add_secret
from exporter.config.schema import Config, ConfigError, duplicate_target, region_problem
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.selection import check_selection
from exporter.metrics.targets import ExpositionSizes
from exporter.render.exposition import Exposition


def build_runner(
    config: Config, *, session: boto3.Session | None = None, shard: Shard | None = None, clock: Clock = time.time
) -> CollectionRunner:
    """Clients and collectors for every configured target, the configuration's secrets registered for
    redaction; ``clock`` is the collections' wall clock (tests replay the simulator's controllable clock)."""
    for secret in config.secrets():  # from here on, no log line or error text shows them
        add_secret(secret)
    session = session or boto3.Session()
    duplicate = duplicate_target(config.targets, default_region=session.region_name)
    if duplicate:  # a target without a region and one that names the default region
        raise ConfigError(f"targets{duplicate}")
    collectors = []
    rate_limits = RateLimitRegistry(config.aws.rate_limits)  # one set of buckets per AWS quota, for this runner
    for index, target in enumerate(config.targets):
        region = target.region or session.region_name
        if not region:
            raise ConfigError(
                f"targets[{index}].region: not set, and no default region in the environment "
                "(AWS_DEFAULT_REGION or the shared config file)"
            )
        problem = region_problem(region)
        if problem:  # the environment's default region: the configuration's own were checked at load
            raise ConfigError(f"targets[{index}].region: {'' if target.region else 'the default region '}{problem}")
        api = connect(config.aws, target, region=region, session=session,
                      deadline_seconds=config.collection.timeout_seconds, label=target.name or f"{region}#{index}",
                      rate_limits=rate_limits)
        collectors.append(
            TargetCollector(api, region=region, name=target.name, discovery=config.discovery, shard=shard, clock=clock)
        )
    return CollectionRunner(
        collectors,
        timeout_seconds=config.collection.timeout_seconds,
        # In the background the schedule is interval_seconds and scrapes never collect: no floor to apply.
        min_interval_seconds=0.0 if config.collection.interval_seconds else config.collection.min_interval_seconds,
        clock=clock,
    )


def _registry_with_defaults(machine: bool = True) -> CollectorRegistry:
    # A private registry with its own default collectors, so nothing else in the process leaks in.
    registry = CollectorRegistry(auto_describe=False)
    if machine:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def check_config(config: Config) -> None:
    """What the configuration's schema cannot check itself: that ``metrics.allowlist`` / ``denylist`` name
    families that exist (raises ConfigError naming the key and the entry)."""
    check_selection(config.metrics)


def build_registry(
    runner: CollectionRunner, config: Config, *, sizes: ExpositionSizes | None = None
) -> CollectorRegistry:
    """Every metric through prometheus-client's generic path (the reference the fast path must equal);
    ``sizes``: an exposition's (``Exposition.sizes``), so that both report the same body sizes."""
    registry = _registry_with_defaults()
    registry.register(EmrServerlessCollector(runner, config.metrics, sizes))
    return registry


def build_exposition(runner: CollectionRunner, config: Config, *, machine: bool = True) -> Exposition:
    """What /metrics serves: prometheus-client's default collectors (``machine``: the process, platform
    and GC ones), and the exporter's families written directly."""
    return Exposition(runner, _registry_with_defaults(machine), config.metrics)
