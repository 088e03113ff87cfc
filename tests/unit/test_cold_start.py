"""A cold start's listings, unit by unit: the active listing is taken in collections before the look-back is
in, so what that listing shows may be stale by then."""

from __future__ import annotations

from exporter.collect.inventory import Inventory
from exporter.model.job_run import JobRun, JobRunSummary
from tests.helpers.job_runs import NOW, at, inventory, run, summary


def fetch(runs: Inventory[JobRunSummary, JobRun], now: float) -> None:
    """The detail calls a collection makes of what the inventory asks for: the run ended at NOW + 10."""
    for refresh in runs.fallback("app1"):
        runs.refreshed(run(refresh.object_id, "SUCCESS", NOW + 10, endedAt=at(NOW + 10)), now)


def test_a_run_that_ended_and_aged_out_is_not_brought_back_by_the_stale_active_listing() -> None:
    runs = inventory(terminated_job_run_max_age_seconds=60)
    active_listing = [summary("going", "RUNNING")]  # the cold start's, kept until the look-back is in
    runs.take_in("app1", active_listing)
    runs.refreshed(run("going", "RUNNING"), NOW)
    fetch(runs, NOW + 10)  # it ended: counted
    assert runs.objects(NOW + 100) == []  # aged out
    runs.take_in("app1", active_listing)  # the look-back was cut short again
    assert runs.objects(NOW + 100) == []  # not exported as running again
    fetch(runs, NOW + 110)
    runs.plan("app1", active_listing, NOW + 120)  # the look-back is in; the active listing is still that one
    assert runs.objects(NOW + 120) == []
    fetch(runs, NOW + 120)
    assert runs.ended == {"app1": {"SUCCESS": 1}}  # once, not once per stale listing


def test_a_run_gone_at_its_detail_call_is_not_brought_back_by_the_stale_active_listing() -> None:
    runs = inventory()
    active_listing = [summary("gone", "RUNNING")]
    runs.take_in("app1", active_listing)
    runs.vanished("gone")  # GetJobRun: ResourceNotFoundException
    runs.take_in("app1", active_listing)
    assert runs.objects(NOW) == [] and runs.fallback("app1") == []
    runs.plan("app1", active_listing, NOW + 30)
    assert runs.objects(NOW) == [] and runs.fallback("app1") == []
    # The next complete listing begins after it was gone: one that shows it again is believed.
    assert [r.object_id for r in runs.plan("app1", active_listing, NOW + 60)] == ["gone"]
    runs.vanished("gone")  # listed completely since: every listing begins in the collection it ends in, as before
    assert [r.object_id for r in runs.plan("app1", active_listing, NOW + 90)] == ["gone"]


def test_a_stale_active_listing_does_not_take_a_run_back_to_an_older_state() -> None:
    runs = inventory()
    active_listing = [summary("streaming", "RUNNING", NOW - 600)]  # days old: the look-back does not list it
    runs.take_in("app1", active_listing)
    runs.refreshed(run("streaming", "CANCELLING", NOW - 30), NOW)  # GetJobRun, after the listing
    runs.plan("app1", active_listing, NOW + 30)  # the look-back is in; the active listing is still that one
    [known] = runs.objects(NOW + 30)
    assert known.obj.state == "CANCELLING"
