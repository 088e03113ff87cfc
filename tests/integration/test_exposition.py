"""The direct exposition is byte for byte prometheus-client's generic path, in text and OpenMetrics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from emr_serverless_simulator import Simulator, Store, build_scenario
from exporter.config.schema import parse_config
from exporter.wiring import build_exposition, build_registry, build_runner

FORMATS: dict[str, tuple[str, Any, Any]] = {
    "text": ("", generate_latest, parse_text),
    "openmetrics": ("application/openmetrics-text; version=1.0.0", generate_openmetrics, parse_openmetrics),
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> Iterator[tuple[Store, Clock, Any, Any, Any]]:
    clock = Clock()
    store = build_scenario("scale", applications=4, sessions_per_application=30, active_fraction=0.3, seed=7,
                           clock=clock)
    app = store.application_ids()[0]
    store.add_session(app, name='odd "name"\\', state="IDLE",
                      tags={"team": "a\nb", "aws:cloudformation:stack-name": "Zürich", "team.x": "dup"})
    with Simulator(store, port=0) as sim:
        config = parse_config(yaml.safe_dump({
            "targets": [{"region": "us-east-1", "endpoint_url": sim.url, "name": "sim"}],
            "metrics": {"tag_labels": ["team"]},
            "collection": {"min_interval_seconds": 0},  # each collect() collects
            "discovery": {"job_runs": False},  # none here: their listings would wait for the rate limit
        }))
        runner = build_runner(config)
        try:
            exposition = build_exposition(runner, config)
            yield store, clock, runner, build_registry(runner, config, sizes=exposition.sizes), exposition
        finally:
            runner.close()


def emr_part(body: bytes) -> bytes:
    """The exporter's own families: all after prometheus-client's process, platform and GC collectors,
    whose values differ between any two renders."""
    return body[body.index(b"# HELP emr") :]


def emr_samples(parse: Any, body: bytes) -> Counter[tuple[str, tuple[tuple[str, str], ...], float]]:
    return Counter(
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in parse(body.decode())
        if family.name.startswith("emr_serverless_")
        for sample in family.samples
    )


def rendered_sessions(parts: list[bytes], previous: list[bytes], families: int) -> int:
    """Sessions with a line that is not the very bytes object of the previous render: rendered again.
    ``parts`` is each family's header followed by one line per session, family after family."""
    kept = {id(part) for part in previous}
    sessions = len(parts) // families - 1
    return sum(
        any(id(parts[family * (sessions + 1) + 1 + index]) not in kept for family in range(families))
        for index in range(sessions)
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_direct_exposition_equals_the_generic_path(fmt: str, world: Any) -> None:
    store, clock, runner, registry, exposition = world
    accept, generic, parse = FORMATS[fmt]
    series = exposition.stores[0]  # the sessions'
    previous: list[bytes] = []  # kept alive, so that no id() of its lines is reused
    for step in range(4):
        runner.collect()
        fast, content_type = exposition.render(accept)
        reference = generic(registry)
        assert emr_part(fast) == emr_part(reference), f"step {step}"
        assert emr_samples(parse, fast) == emr_samples(parse, reference)
        assert (fast.endswith(b"# EOF\n") and fast.count(b"# EOF") == 1) == (fmt == "openmetrics")
        assert content_type.startswith(OPENMETRICS.split(";")[0] if fmt == "openmetrics" else "text/plain")
        parts = series.parts("openmetrics" if fmt == "openmetrics" else "text")
        rendered_now = rendered_sessions(parts, previous, len(series.headers["text"]))
        previous = parts
        exported = fast.count(b"\nemr_serverless_session_info{")
        if step == 0:
            assert rendered_now == exported
        else:
            # Final sessions come from memory unchanged: only the others are rendered again.
            assert 0 < rendered_now < exported
        # Change the world: time passes, a session ends, one disappears with its application's listing.
        clock.now += 120
        app = store.application_ids()[step % 4]
        active = [sid for sid in store.session_ids(app) if store.session(app, sid).state in ("IDLE", "BUSY")]
        if active:
            store.set_session_state(app, active[0], "TERMINATED", ended_at=clock.now)
        store.remove_session(app, store.session_ids(app)[-1])


# What Prometheus 3 sends by default, and what other clients send; the first falls back to the
# generic path (escaping that renames the exporter's names), the rest are written directly.
ACCEPT_HEADERS = [
    ("application/openmetrics-text;version=1.0.0;escaping=dots", False),
    ("text/plain;version=1.0.0;escaping=values", True),  # values leaves legacy names as they are
    ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
     "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,"
     "*/*;q=0.2", True),
    ("application/openmetrics-text; version=1.0.0", True),
    ("application/openmetrics-text", True),
    ("text/plain;version=1.0.0;escaping=underscores", True),
    ("text/plain; version=0.0.4", True),
    ("*/*", True),
    ("", True),
]


@pytest.mark.parametrize(("accept", "direct"), ACCEPT_HEADERS)
def test_every_accept_header_gets_the_generic_paths_bytes(
    accept: str, direct: bool, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, runner, registry, exposition = world
    runner.collect()
    encoder, content_type = choose_encoder(accept)
    series = exposition.stores[0]
    updates: list[object] = []
    update = series.update

    def counted_update(results: Any) -> None:
        updates.append(results)
        update(results)

    monkeypatch.setattr(series, "update", counted_update)
    body, served_type = exposition.render(accept)
    assert served_type == content_type
    assert emr_part(body) == emr_part(encoder(registry))
    assert bool(updates) == direct  # the direct writer reads the series stores; the generic path does not


def test_the_store_follows_discovery(world: Any) -> None:
    store, _, runner, _, exposition = world
    runner.collect()
    exposition.render("")
    assert len(exposition.stores[0]) > 0
    for app in store.application_ids():
        store.remove_application(app)
    runner.collect()
    body, _ = exposition.render("")
    assert b"emr_serverless_session_info{" not in body
    assert b"# HELP emr_serverless_session_info " in body
    assert len(exposition.stores[0]) == 0
