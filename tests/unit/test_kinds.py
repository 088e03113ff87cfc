"""A kind is a declaration: a made-up third kind ("widget") runs through the same inventory, listing windows
and series store as sessions do, with nothing written for it but its structs, its declaration and its table."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collect.discovery import ListingWindows
from exporter.collect.inventory import DUE, NEW, NEW_FINAL, Inventory
from exporter.collect.target import TargetIdentity, TargetResult
from exporter.config.schema import DiscoveryConfig, MetricsConfig
from exporter.metrics.families import Family, KindTable, state_set, value
from exporter.metrics.tables import KIND_TABLES
from exporter.model.kinds import KINDS, ObjectKind
from exporter.model.session import Application, convert
from exporter.render.series import SeriesStore

NOW = 1_764_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class WidgetSummary(msgspec.Struct):
    id: str
    application_id: str = msgspec.field(name="applicationId")
    state: str = ""
    created_at: datetime = msgspec.field(default=at(NOW), name="createdAt")
    updated_at: datetime = msgspec.field(default=at(NOW), name="updatedAt")

    @property
    def updated(self) -> float:
        return self.updated_at.timestamp()


class Widget(WidgetSummary):
    name: str = ""
    tags: dict[str, str] = {}
    size: float = 0.0

    @property
    def ended(self) -> float | None:
        return None


WIDGETS: ObjectKind[WidgetSummary, Widget] = ObjectKind(
    name="widget", states=("MAKING", "DONE"), final_states=frozenset({"DONE"}),
    list_operation="ListWidgets", list_key="widgets", summary=WidgetSummary,
    get_operation="GetWidget", get_id_param="widgetId", get_key="widget", detail=Widget,
    enabled_key="sessions", max_age_key="terminated_session_max_age_seconds", lookback_key="session_lookback_seconds",
    max_terminated_key="max_terminated_sessions_per_application",
)
WIDGET_TABLE: KindTable[Widget] = KindTable(
    kind=WIDGETS, id_label="widget_id", name_label="widget_name",
    families=(
        Family("emr_serverless_widget_state", "gauge", "State.", state_set(WIDGETS.states, lambda w: w.state, "widget"),
               ("state",)),
        Family("emr_serverless_widget_size", "gauge", "Size.", value(lambda w, now: w.size)),
    ),
    tags_family="emr_serverless_widget_tags", tags_help="Tags.",
    count_family="emr_serverless_application_widgets", count_help="Widgets by state.",
)


def widget(wid: str, state: str = "MAKING", size: float = 1.0) -> Widget:
    return Widget(id=wid, application_id="app1", state=state, name=f"w-{wid}", tags={"team": "t"}, size=size)


def test_a_third_kind_is_planned_listed_and_rendered_by_the_shared_pipeline() -> None:
    inventory = Inventory(WIDGETS, DiscoveryConfig())
    inventory.keep_applications(["app1"])
    inventory.begin_collection()
    plan = inventory.plan("app1", [WidgetSummary("w1", "app1", "MAKING"), WidgetSummary("w2", "app1", "DONE")], NOW)
    assert [(r.kind, r.object_id, r.priority[0]) for r in plan] == [(WIDGETS, "w1", NEW), (WIDGETS, "w2", NEW_FINAL)]
    inventory.refreshed(widget("w1"), NOW)
    inventory.refreshed(widget("w2", "DONE"), NOW)
    inventory.begin_collection()
    replan = inventory.plan("app1", [WidgetSummary("w1", "app1", "MAKING")], NOW + 30)
    assert [(r.object_id, r.priority[0]) for r in replan] == [("w1", DUE)]  # P = 1; the final one: never again

    active, windowed = ListingWindows(WIDGETS, DiscoveryConfig()).listings("app1", NOW)
    assert active.kind is WIDGETS and active.states == ("MAKING",) and windowed.states == ()

    store = SeriesStore(WIDGET_TABLE, MetricsConfig(tag_labels=("team",)))
    app = convert({"id": "app1", "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/app1",
                   "state": "STARTED", "createdAt": at(NOW), "updatedAt": at(NOW), "name": "etl"}, Application)
    result = TargetResult(identity=TargetIdentity("prod", "us-east-1", "123456789012"), applications=[app],
                          objects={WIDGETS: [k.obj for k in inventory.objects(NOW)]}, errors=[],
                          started_at=NOW, finished_at=NOW, last_success=NOW)
    store.update([result])
    samples = {(s.name, tuple(sorted(s.labels.items())), s.value)
               for family in text_string_to_metric_families(b"".join(store.parts("text")).decode())
               for s in family.samples}
    target = (("account_id", "123456789012"), ("region", "us-east-1"), ("target", "prod"))
    app1 = (("application_id", "app1"), ("application_name", "etl"))
    assert ("emr_serverless_widget_size",
            tuple(sorted((*target, *app1, ("widget_id", "w1"), ("widget_name", "w-w1"), ("tag_team", "t")))),
            1.0) in samples
    assert ("emr_serverless_widget_tags",
            tuple(sorted((*target, ("application_id", "app1"), ("widget_id", "w2"), ("tag_team", "t")))),
            1.0) in samples
    assert sum(name == "emr_serverless_widget_state" for name, _, _ in samples) == 4  # two states, two widgets


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_names_configuration_keys_that_exist(kind: ObjectKind[Any, Any]) -> None:
    keys = {f.name: f.type for f in dataclasses.fields(DiscoveryConfig)}
    assert keys[kind.enabled_key] == "bool"
    assert keys[kind.max_age_key] == keys[kind.lookback_key] == "float"
    assert keys[kind.max_terminated_key] == "int"


def test_every_kind_has_one_metric_table() -> None:
    assert [table.kind for table in KIND_TABLES] == list(KINDS)
    for table in KIND_TABLES:
        assert all(f.name.startswith(f"emr_serverless_{table.kind.name}_") for f in table.families)
        assert table.id_label == f"{table.kind.name}_id" and table.name_label == f"{table.kind.name}_name"
