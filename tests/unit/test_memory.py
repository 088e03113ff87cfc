"""The inventory of one kind (sessions here), unit by unit: no threads, no sleeps, no AWS; every method is
given ``now``."""

from __future__ import annotations

import itertools
import math
import random
from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.collect.inventory import (
    CHANGED,
    DUE,
    NEW,
    NEW_FINAL,
    STALEST,
    Inventory,
    Refresh,
)
from exporter.config.schema import DiscoveryConfig
from exporter.model.kinds import SESSIONS
from exporter.model.session import Application, Session, SessionSummary, convert

NOW = 1_764_000_000.0
ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def app(app_id: str = "app1") -> Application:
    return convert({"id": app_id, "arn": ARN + app_id, "state": "STARTED", "createdAt": at(NOW - 9e5),
                    "updatedAt": at(NOW - 9e5), "name": app_id}, Application)


def session(sid: str, state: str = "IDLE", app_id: str = "app1", **extra: Any) -> Session:
    raw = {"applicationId": app_id, "sessionId": sid, "arn": f"{ARN}{app_id}/sessions/{sid}", "state": state,
           "createdAt": at(NOW - 7200), "updatedAt": at(NOW - 60), **extra}
    return convert(raw, Session)


def summary(sid: str, state: str, updated: float, app_id: str = "app1") -> SessionSummary:
    return convert({"applicationId": app_id, "sessionId": sid, "state": state, "createdAt": at(updated - 10),
                    "updatedAt": at(updated)}, SessionSummary)


def memory(**discovery: Any) -> Inventory[SessionSummary, Session]:
    mem = Inventory(SESSIONS, DiscoveryConfig(**discovery))
    mem.keep_applications(["app1", "app2"])
    return mem


def ids(refreshes: list[Refresh]) -> list[str]:
    return [r.object_id for r in refreshes]


def test_listed_sessions_worth_a_call() -> None:
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.refreshed(session("known", updatedAt=at(NOW - 60)), NOW - 5)
    listed = [
        summary("new", "BUSY", NOW),
        summary("endedrecently", "TERMINATED", NOW - 600),
        summary("endedlongago", "FAILED", NOW - 4000),  # aged out already: never fetched
        summary("invented", "HIBERNATING", NOW - 4000),  # not final: wanted
        summary("known", "IDLE", NOW - 60),  # unchanged: refreshed last, as the stalest budget allows
    ]
    plan = mem.plan("app1", listed, NOW)
    assert ids(plan) == ["new", "invented", "endedrecently", "known"]  # active before ended, in listing order
    assert [r.priority[0] for r in plan] == [NEW, NEW, NEW_FINAL, STALEST] and plan[3].priority[1] == NOW - 5


def test_a_changed_state_is_exported_from_the_listing_and_fetched_before_the_unchanged() -> None:
    mem = memory()
    mem.refreshed(session("quiet", updatedAt=at(NOW - 600)), NOW - 900)  # stalest, but unchanged
    mem.refreshed(session("busy", updatedAt=at(NOW - 600)), NOW - 10)
    mem.refreshed(session("ended", updatedAt=at(NOW - 600)), NOW - 10)
    plan = mem.plan("app1", [summary("quiet", "IDLE", NOW - 600), summary("busy", "BUSY", NOW - 5)], NOW)
    # "ended" left the active listing: its final state is worth a call as much as "busy"'s new one.
    assert ids(plan) == ["busy", "ended", "quiet"] or ids(plan) == ["ended", "busy", "quiet"]
    assert [r.priority[0] for r in plan] == [CHANGED, CHANGED, STALEST]
    states = {k.obj.session_id: k.obj.state for k in mem.objects(NOW)}
    assert states["busy"] == "BUSY"  # fresh from the listing before any GetSession


def test_refresh_order_is_stalest_first_and_final_sessions_are_never_refetched() -> None:
    mem = memory()
    mem.refreshed(session("fresh"), NOW)
    mem.refreshed(session("old"), NOW - 300)
    mem.refreshed(session("done", state="TERMINATED", endedAt=at(NOW - 10)), NOW - 900)
    listed = [summary(sid, "IDLE", NOW - 60) for sid in ("fresh", "old")]
    assert ids(mem.plan("app1", listed, NOW)) == ["old", "fresh"]
    mem.refreshed(session("other", app_id="app2"), NOW - 600)
    assert ids(mem.fallback("app2")) == ["other"]  # a failed listing: what memory knows, stalest first


def test_nothing_is_forgotten_until_a_complete_answer_says_so() -> None:
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.refreshed(session("a"), NOW)
    mem.refreshed(session("b", app_id="app2"), NOW)
    mem.refreshed(session("ended", state="FAILED", endedAt=at(NOW - 100)), NOW)
    assert {k.obj.session_id for k in mem.objects(NOW)} == {"a", "b", "ended"}
    # Time passes: the final session ages out one hour after it ended, the others stay.
    assert {k.obj.session_id for k in mem.objects(NOW + 3600)} == {"a", "b"}
    mem.vanished("a")  # GetSession: ResourceNotFoundException
    mem.keep_applications(["app1"])  # a complete ListApplications without app2
    assert mem.objects(NOW + 3600) == []
    mem.refreshed(session("c", app_id="app2"), NOW)  # a late answer for an undiscovered application
    assert mem.objects(NOW) == []


def test_a_final_session_without_ended_at_ages_out_by_updated_at() -> None:
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.refreshed(session("t", state="TERMINATED", updatedAt=at(NOW - 3000)), NOW)
    assert mem.objects(NOW)
    assert not mem.objects(NOW + 700)


def test_listed_but_not_fetched_sessions_stay_first_in_line_until_fetched() -> None:
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.refreshed(session("known"), NOW - 60)
    mem.plan("app1", [summary("late", "BUSY", NOW), summary("known", "IDLE", NOW - 60)], NOW)
    # Its GetSession was deferred; the next listing starts after it, so only memory remembers it.
    assert ids(mem.plan("app1", [summary("known", "IDLE", NOW - 60)], NOW + 15)) == ["late", "known"]
    assert ids(mem.fallback("app1")) == ["late", "known"]
    assert mem.unfetched == 1
    mem.refreshed(session("late"), NOW + 20)
    assert mem.unfetched == 0
    mem.plan("app1", [summary("ended", "TERMINATED", NOW)], NOW)
    assert mem.unfetched == 0  # ended, waiting for its one fetch: not an active object going stale
    assert "ended" in ids(mem.fallback("app1"))
    mem.objects(NOW + 3601)  # a final one never fetched ages out of memory as well
    assert "ended" not in ids(mem.fallback("app1"))


def test_the_export_order_does_not_depend_on_the_order_answers_came_in() -> None:
    mem = memory()
    order = [("app2", "s5"), ("app1", "s3"), ("app1", "s1"), ("app2", "s4"), ("app1", "s2")]
    for app_id, sid in order:
        mem.refreshed(session(sid, app_id=app_id), NOW)
    first = [(k.obj.application_id, k.obj.session_id) for k in mem.objects(NOW)]
    assert first == sorted(order)
    mem.refreshed(session("s9", app_id="app2"), NOW + 1)  # new ones: after the others, in order
    mem.refreshed(session("s0", app_id="app1"), NOW + 1)
    mem.refreshed(session("s3", "BUSY", app_id="app1"), NOW + 1)  # a known one: where it was
    mem.refreshed(session("s8", app_id="app1"), NOW + 1)
    mem.vanished("s8")  # gone before it was exported
    assert [(k.obj.application_id, k.obj.session_id) for k in mem.objects(NOW + 1)] == [
        *first[:3], ("app1", "s0"), *first[3:], ("app2", "s9")]


def test_each_application_plans_its_own_sessions_only() -> None:
    mem = memory()
    mem.refreshed(session("a1"), NOW - 60)
    mem.refreshed(session("b1", app_id="app2"), NOW - 600)
    mem.plan("app2", [summary("b1", "IDLE", NOW - 60), summary("b2", "BUSY", NOW, app_id="app2")], NOW)
    mem.plan("app1", [summary("a1", "IDLE", NOW - 60), summary("a2", "BUSY", NOW)], NOW)
    assert ids(mem.plan("app1", [summary("a1", "IDLE", NOW - 60)], NOW)) == ["a2", "a1"]
    assert ids(mem.fallback("app2")) == ["b2", "b1"]
    assert mem.unfetched == 2
    mem.vanished("b2")  # deleted between list and get
    assert mem.unfetched == 1 and ids(mem.fallback("app2")) == ["b1"]
    mem.keep_applications(["app1"])  # app2 is gone, with its sessions
    assert mem.unfetched == 1 and ids(mem.fallback("app2")) == []
    assert [k.obj.session_id for k in mem.objects(NOW)] == ["a1"]


def test_new_active_sessions_go_before_new_final_ones() -> None:
    # A cold start under a quota: the look-back lists many ended sessions; the running ones go first,
    # in listing order within each kind, and both before a known session whose state changed.
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.refreshed(session("known", updatedAt=at(NOW - 600)), NOW - 60)
    listed = [summary("ended1", "TERMINATED", NOW - 300), summary("busy", "BUSY", NOW - 30),
              summary("ended2", "FAILED", NOW - 200), summary("idle", "IDLE", NOW - 20),
              summary("known", "BUSY", NOW - 10)]
    assert ids(mem.plan("app1", listed, NOW)) == ["busy", "idle", "ended1", "ended2", "known"]
    assert ids(mem.fallback("app1")) == ["busy", "idle", "ended1", "ended2", "known"]


def test_due_sessions_go_before_changed_ones_and_changed_before_the_other_stalest() -> None:
    mem = memory(terminated_session_max_age_seconds=3600)
    mem.begin_collection()
    assert mem.period == math.inf  # nothing answered yet: no budget known, nothing due
    for sid in ("old", "changed", "quiet"):
        mem.refreshed(session(sid, updatedAt=at(NOW - 600)), NOW - 60)
    mem.begin_collection()
    assert mem.period == 1  # 3 answered for 3 active: all can be refreshed every collection
    mem.refreshed(session("changed", updatedAt=at(NOW - 600)), NOW - 30)
    mem.refreshed(session("quiet", updatedAt=at(NOW - 600)), NOW - 30)
    mem.begin_collection()  # 2 answered for 3 active: each can be refreshed every P = 2 collections
    assert mem.period == 2  # "old", last refreshed in collection 1, is due in 3
    listed = [summary("quiet", "IDLE", NOW - 600), summary("changed", "BUSY", NOW - 5),
              summary("old", "IDLE", NOW - 600), summary("ended", "TERMINATED", NOW - 5),
              summary("started", "STARTING", NOW - 5)]
    plan = mem.plan("app1", listed, NOW)
    assert ids(plan) == ["started", "old", "ended", "changed", "quiet"]
    assert [r.priority[0] for r in plan] == [NEW, DUE, NEW_FINAL, CHANGED, STALEST]
    # Only new active sessions go out before every listing is in: after a quota drop every session is due,
    # and due ones sent early would spend the budget before the other applications' new ones are known.
    assert [r.urgent for r in plan] == [True, False, False, False, False]
    # Without a listing nothing is known to have changed; the deadline still holds.
    assert [(r.object_id, r.priority[0]) for r in mem.fallback("app1")] == [
        ("started", NEW), ("old", DUE), ("ended", NEW_FINAL), ("changed", STALEST), ("quiet", STALEST)]


def test_a_collection_that_answered_nothing_keeps_the_last_budget() -> None:
    mem = memory()
    mem.begin_collection()
    for sid in ("a", "b", "c", "d"):
        mem.refreshed(session(sid), NOW)
    mem.begin_collection()
    assert mem.period == 1
    mem.refreshed(session("a"), NOW)
    mem.begin_collection()
    assert mem.period == 4  # 1 answered for 4 active
    mem.begin_collection()  # the previous one answered nothing (throttled, out of time)
    assert mem.period == 4  # not infinity: that would let churn starve the unchanged
    mem.vanished("d")  # ResourceNotFoundException spent the budget as well
    mem.begin_collection()
    assert mem.period == 3  # 3 active left, 1 answered


def simulate(sessions: int, budget: int, churn: float, seed: int, *, deadline: bool = True) -> tuple[int, int]:
    """Drive memory through collections as the collector does with a budget of ``budget`` GetSessions
    (the first of the plans of every application, merged by priority as the worker pool takes them),
    ``churn`` of the sessions changing updatedAt before each listing. Returns (the collection that had
    fetched every session once, the longest any went from then on between two refreshes, counting
    since the last one to the end of the run)."""
    rng = random.Random(seed)
    mem = memory()
    apps = ("app1", "app2")
    updated = {f"s{i}": NOW - 3600.0 for i in range(sessions)}
    app_of = {sid: apps[i % len(apps)] for i, sid in enumerate(updated)}
    fetched: dict[str, list[int]] = {sid: [] for sid in updated}
    cycle = math.ceil(sessions / budget)
    collections = 2 * cycle + 4 * (cycle + 1)
    for collection in range(1, collections + 1):
        now = NOW + 15.0 * collection
        for sid in rng.sample(sorted(updated), int(churn * sessions)):
            updated[sid] = now - 1
        mem.begin_collection()
        if not deadline:
            mem.period = math.inf  # the ordering before the deadline tier: new, changed, stalest
        plans = [r for a in apps
                 for r in mem.plan(a, [summary(sid, "IDLE", u, app_id=app_of[sid]) for sid, u in updated.items()
                                       if app_of[sid] == a], now)]
        for refresh in sorted(plans, key=lambda r: r.priority)[:budget]:
            sid = refresh.object_id
            mem.refreshed(session(sid, app_id=app_of[sid], updatedAt=at(updated[sid])), now)
            fetched[sid].append(collection)
    covered = max(seen[0] for seen in fetched.values())
    longest = 0
    for seen in fetched.values():
        after = [c for c in seen if c >= covered]
        longest = max(longest, collections - after[-1], *(b - a for a, b in itertools.pairwise(after)))
    return covered, longest


@settings(max_examples=40, deadline=None)
@given(sessions=st.integers(1, 240), ratio=st.integers(1, 8), churn=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_every_session_is_refreshed_within_the_bound_whatever_the_churn(
    sessions: int, ratio: int, churn: float, seed: int
) -> None:
    budget = max(1, sessions // ratio)
    covered, longest = simulate(sessions, budget, churn, seed)
    assert covered <= math.ceil(sessions / budget)  # the cold start: new sessions first, each once
    # The bound is ceil(N / B) + 1 (for a budget that dips, or new sessions taking it first);
    # with a steady budget the deadline tier keeps one collection inside it.
    assert longest <= math.ceil(sessions / budget)


def test_without_the_deadline_tier_churn_starves_the_unchanged() -> None:
    # The control: the same loop ranked new, changed, stalest (the order before the deadline tier). With
    # 10 % changing per collection and a budget of 14 % of the sessions, the stalest advance only 4 % a
    # collection: a session waits until it happens to change (10 collections on average) or ~25.
    sessions, budget = 200, 28
    bound = math.ceil(sessions / budget) + 1
    assert simulate(sessions, budget, 0.1, 7, deadline=False)[1] > bound
    assert simulate(sessions, budget, 0.1, 7)[1] <= bound


def test_a_session_the_listing_shows_ended_is_fetched_once_even_when_the_budget_ran_out() -> None:
    # Created within the listing window and ended since: the listing gives its final state, which is
    # exported at once; but its final GetSession (endedAt, last utilization) must still come, however many
    # collections it waits behind due, new and ended-before sessions.
    mem = memory()
    mem.begin_collection()
    mem.refreshed(session("short", "BUSY"), NOW - 30)
    mem.begin_collection()
    plan = mem.plan("app1", [summary("short", "TERMINATED", NOW - 5)], NOW)
    assert ids(plan) == ["short"]  # not answered in this collection: out of budget
    assert [k.obj.state for k in mem.objects(NOW)] == ["TERMINATED"]
    mem.begin_collection()
    assert ids(mem.plan("app1", [summary("short", "TERMINATED", NOW - 5)], NOW + 60)) == ["short"]
    assert ids(mem.fallback("app1")) == ["short"]
    mem.refreshed(session("short", "TERMINATED", endedAt=at(NOW - 5)), NOW + 61)
    mem.begin_collection()
    assert mem.plan("app1", [summary("short", "TERMINATED", NOW - 5)], NOW + 120) == []  # fetched final: never again
