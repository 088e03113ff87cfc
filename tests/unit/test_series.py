"""The session store: a session's lines follow its version, and only its version."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import MetricsConfig
from exporter.metrics.collector import EmrServerlessCollector
from exporter.metrics.sessions import SESSION_TABLE
from exporter.model.kinds import SESSIONS
from exporter.model.session import Application, Session, convert
from exporter.render.exposition import Exposition
from exporter.render.series import SeriesStore

NOW = 1_764_000_000.0
IDENTITY = TargetIdentity(name="prod", region="us-east-1", account_id="123456789012")
CONFIG = MetricsConfig(tag_labels=("team",))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def session(session_id: str = "00s1", **fields: Any) -> Session:
    wire = {
        "applicationId": "00app", "sessionId": session_id, "arn": f"arn:aws:emr-serverless:::{session_id}",
        "state": "IDLE", "createdAt": at(NOW - 600), "updatedAt": at(NOW - 60), "idleSince": at(NOW - 60),
        "name": "notebook", "tags": {"team": "data", "owner": "alice"},
        "totalResourceUtilization": {"vCPUHour": 1.0},
    }
    return convert({**wire, **fields}, Session)


def result(sessions: list[Session], now: float = NOW, app_name: str = "analytics") -> TargetResult:
    app = convert({"id": "00app", "arn": "arn:app", "state": "STARTED", "name": app_name,
                   "createdAt": at(NOW - 86400), "updatedAt": at(NOW - 86400)}, Application)
    return TargetResult(identity=IDENTITY, applications=[app], objects={SESSIONS: sessions}, errors=[],
                        started_at=now - 1, finished_at=now, last_success=now)


class FixedRunner(CollectionRunner):
    def __init__(self) -> None:
        super().__init__([], timeout_seconds=1)


@pytest.fixture
def served() -> tuple[FixedRunner, Exposition, CollectorRegistry]:
    runner = FixedRunner()
    exposition = Exposition(runner, CollectorRegistry(auto_describe=False), CONFIG)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EmrServerlessCollector(runner, CONFIG, exposition.sizes))  # the same body sizes reported
    return runner, exposition, registry


def serve(served: tuple[FixedRunner, Exposition, CollectorRegistry], results: list[TargetResult]) -> bytes:
    """The body for ``results``, checked byte for byte against the generic path."""
    runner, exposition, registry = served
    runner.latest = results
    body, _ = exposition.render()
    assert body == generate_latest(registry)
    return body


def test_a_session_is_rendered_again_only_when_its_version_changes(served: Any) -> None:
    store = served[1].stores[0]
    final = session("00f1", state="TERMINATED", idleSince=None, endedAt=at(NOW - 30))
    busy = session("00b1", state="BUSY", idleSince=None)
    idle = session("00i1")
    serve(served, [result([final, busy, idle])])
    before = store.parts("text")
    # A collection later: equal sessions as new objects, the time moved on. Only the IDLE one reads it, and
    # of its lines only its idle seconds change: every other line is the very bytes object kept from before.
    body = serve(served, [result([session("00f1", state="TERMINATED", idleSince=None, endedAt=at(NOW - 30)),
                                  session("00b1", state="BUSY", idleSince=None), session("00i1")], NOW + 30)])
    rendered = [line for line, old in zip(store.parts("text"), before, strict=True) if line is not old]
    assert len(rendered) == 1 and rendered[0].startswith(b"emr_serverless_session_idle_seconds{")
    assert b'emr_serverless_session_idle_seconds{account_id="123456789012",application_id="00app"' in body
    assert b'session_id="00i1",session_name="notebook",tag_team="data",target="prod"} 90.0\n' in body


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "renamed"}, b'session_name="renamed"'),
        ({"tags": {"team": "ml", "owner": "alice"}}, b'tag_team="ml"'),
        ({"tags": {"team": "data", "owner": "bob"}}, b'tag_owner="bob"'),
        ({"state": "BUSY"}, b'state="BUSY",tag_team="data",target="prod"} 1.0'),
        ({"totalResourceUtilization": {"vCPUHour": 2.0}}, b"} 7200.0\n"),
    ],
)
def test_every_change_reaches_every_line_it_touches(served: Any, change: dict[str, Any], expected: bytes) -> None:
    serve(served, [result([session()])])
    body = serve(served, [result([session(**change)])])  # the generic path is the reference
    assert expected in body


def test_labels_from_outside_the_session_are_part_of_the_version(served: Any) -> None:
    serve(served, [result([session(state="BUSY", idleSince=None)])])
    body = serve(served, [result([session(state="BUSY", idleSince=None)], app_name="renamed-app")])
    assert b'application_name="analytics"' not in body
    assert b'application_name="renamed-app"' in body.split(b"emr_serverless_session_info{")[1]


def test_unchanged_families_of_a_changed_session_keep_their_lines() -> None:
    store = SeriesStore(SESSION_TABLE, CONFIG)
    store.update([result([session(state="BUSY", idleSince=None)])])
    before = store.parts("text")
    store.update([result([session(state="BUSY", idleSince=None, totalResourceUtilization={"vCPUHour": 3.0})])])
    after = store.parts("text")
    kept = [a for a, b in zip(after, before, strict=True) if a is b and b"session_id" in a]
    changed = [a for a, b in zip(after, before, strict=True) if a != b]
    assert len(changed) == 1 and b"vcpu_seconds_total" in changed[0]
    assert any(b"session_info{" in line for line in kept) and any(b"session_tags{" in line for line in kept)


def test_sessions_no_longer_exported_leave_the_store(served: Any) -> None:
    store = served[1].stores[0]
    serve(served, [result([session("00a"), session("00b")])])
    assert len(store) == 2
    body = serve(served, [result([session("00b")])])
    assert len(store) == 1 and b'session_id="00a"' not in body
    serve(served, [])
    assert len(store) == 0


def test_the_same_session_id_in_two_targets_is_two_sessions(served: Any) -> None:
    other = TargetIdentity(name="staging", region="eu-west-1", account_id="210987654321")
    second = result([session()])
    second.identity = other
    body = serve(served, [result([session()]), second])
    assert body.count(b"emr_serverless_session_info{") == 2
    assert len(served[1].stores[0]) == 2
