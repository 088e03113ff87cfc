"""Which applications a target collects: the filter around ListApplications, unit by unit."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from exporter.aws.calls import account_id_from_arn
from exporter.collect.discovery import (
    LISTING_OVERLAP_SECONDS,
    ApplicationFilter,
    ListingWindows,
    Shard,
)
from exporter.config.schema import DiscoveryConfig
from exporter.model.kinds import JOB_RUNS, SESSIONS
from exporter.model.session import Application, convert

ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/"
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = 1_764_000_000.0
application_ids = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20)


def app(app_id: str, name: str = "") -> Application:
    return convert({"id": app_id, "arn": ARN + app_id, "state": "STARTED", "createdAt": WHEN, "updatedAt": WHEN,
                    "name": name or app_id}, Application)


@given(st.sets(application_ids, max_size=50), st.integers(min_value=1, max_value=7))
def test_shards_split_every_set_of_applications_exactly_once(ids: set[str], total: int) -> None:
    filters = [ApplicationFilter(DiscoveryConfig(), Shard(index, total)) for index in range(total)]
    for app_id in ids:
        owners = [index for index, f in enumerate(filters) if f.wanted(app(app_id))]
        assert len(owners) == 1, (app_id, owners)


def test_ids_name_and_shard_must_all_agree() -> None:
    config = DiscoveryConfig(application_ids=("a1", "a2", "a3"), application_name_regex="etl-.*")
    keep = ApplicationFilter(config)
    assert keep.wanted(app("a1", "etl-nightly"))
    assert not keep.wanted(app("a1", "adhoc"))  # name
    assert not keep.wanted(app("a1", "xetl-nightly"))  # the regex matches the whole name
    assert not keep.wanted(app("b9", "etl-nightly"))  # id
    shard_of_a1 = next(index for index in range(2) if Shard(index, 2).owns("a1"))
    assert ApplicationFilter(config, Shard(shard_of_a1, 2)).wanted(app("a1", "etl-x"))
    assert not ApplicationFilter(config, Shard(1 - shard_of_a1, 2)).wanted(app("a1", "etl-x"))


def test_no_filter_wants_everything() -> None:
    assert ApplicationFilter(DiscoveryConfig()).wanted(app("anything", "any name"))


def test_account_id_from_arn_only_takes_twelve_digits() -> None:
    assert account_id_from_arn(ARN + "x") == "123456789012"
    assert account_id_from_arn("arn:aws:iam::210987654321:role/scraper") == "210987654321"
    assert account_id_from_arn("arn:aws:iam::12345:role/short") == ""
    assert account_id_from_arn("not an arn") == ""


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def test_first_listing_looks_back_for_restarts_and_every_state() -> None:
    config = DiscoveryConfig(terminated_session_max_age_seconds=3600, session_lookback_seconds=86400)
    windows = ListingWindows(SESSIONS, config)
    active, windowed = windows.listings("app1", NOW)
    assert active.states == SESSIONS.active_states and active.created_after is None and active.every_active
    # No state filter: a state AWS adds later is listed too; a day back: a session that ran 3 hours and
    # ended 10 minutes before a restart is found although it was created before the 1-hour window.
    assert windowed.states == () and windowed.created_after == at(NOW - 86400)
    assert not windowed.every_active and windows.never_listed("app1")


def test_the_lookback_is_never_shorter_than_the_terminated_window() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig(terminated_session_max_age_seconds=7200,
                                                       session_lookback_seconds=60))
    assert windows.listings("app1", NOW)[1].created_after == at(NOW - 7200)


def test_after_a_complete_listing_only_active_ones_and_what_is_new_are_listed() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig())
    windows.listed(app("app1"), NOW)
    active, new = windows.listings("app1", NOW + 30)
    assert active.states == SESSIONS.active_states and active.created_after is None  # fresh states, always
    assert new.states == () and new.created_after == at(NOW - LISTING_OVERLAP_SECONDS)
    assert not windows.never_listed("app1") and windows.never_listed("app2")
    assert windows.listings("app2", NOW + 30)[1].created_after == at(NOW + 30 - 86400)  # never completed


def test_an_application_discovered_again_looks_back_again() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig())
    windows.listed(app("app1"), NOW)
    windows.listed(app("app2"), NOW)
    windows.keep(["app2"], NOW)  # app1 left the discovery (deleted, or another shard's now)
    assert windows.listings("app1", NOW + 30)[1].created_after == at(NOW + 30 - 86400)
    assert windows.listings("app2", NOW + 30)[1].created_after == at(NOW - LISTING_OVERLAP_SECONDS)


def test_the_oldest_listing_age_counts_from_each_applications_last_complete_listing() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig())
    windows.listed(app("app1"), NOW)
    windows.listed(app("app2"), NOW + 40)
    assert windows.oldest_listing(["app1", "app2"], NOW + 60) == 60
    assert windows.oldest_listing(["app3"], NOW + 60) == 0  # never discovered either: nothing to be behind on
    windows.keep(["app1", "app2", "app3"], NOW + 10)
    assert windows.oldest_listing(["app1", "app2", "app3"], NOW + 100) == 100  # app1 listed at NOW
    windows.keep(["app3"], NOW + 20)
    assert windows.oldest_listing(["app3"], NOW + 100) == 90  # never listed: behind since its discovery
    assert windows.oldest_listing([], NOW) == 0


def test_a_quiet_application_is_not_listed_again_until_it_changes() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig())
    stopped = convert({"id": "app1", "arn": ARN + "app1", "state": "STOPPED", "createdAt": WHEN, "updatedAt": WHEN},
                      Application)
    stopped_at = WHEN.timestamp()
    # Never listed: it may hold what ended before the start, inside the keep window (3600 s by default).
    assert not windows.quiet(stopped, stopped_at + 3599)
    windows.listed(stopped, NOW)
    assert windows.quiet(stopped, NOW)
    restarted = convert({"id": "app1", "arn": ARN + "app1", "state": "STARTED", "createdAt": WHEN,
                         "updatedAt": at(NOW + 5)}, Application)
    assert not windows.quiet(restarted, NOW + 10)
    assert not windows.quiet(app("app2"), NOW)  # STARTED: it may run something any time


def test_an_application_stopped_before_the_keep_window_is_not_listed_even_once() -> None:
    # What ran on it ended before it stopped, too long ago to be exported: nothing to list.
    windows = ListingWindows(JOB_RUNS, DiscoveryConfig(terminated_job_run_max_age_seconds=600))
    for state in ("STOPPED", "CREATED"):
        idle = convert({"id": "app1", "arn": ARN + "app1", "state": state, "createdAt": WHEN, "updatedAt": WHEN},
                       Application)
        assert windows.quiet(idle, WHEN.timestamp() + 601) and not windows.quiet(idle, WHEN.timestamp() + 599)
    started = convert({"id": "app1", "arn": ARN + "app1", "state": "STARTED", "createdAt": WHEN, "updatedAt": WHEN},
                      Application)
    assert not windows.quiet(started, WHEN.timestamp() + 86400)


def test_the_least_recently_listed_go_first_and_the_busiest_among_equals() -> None:
    windows = ListingWindows(SESSIONS, DiscoveryConfig())
    windows.listed(app("old"), NOW - 60)
    windows.listed(app("recent"), NOW)
    order = windows.order([app("recent"), app("old"), app("quiet"), app("busy")], busy={"busy": 3, "quiet": 0})
    assert [a.id for a in order] == ["busy", "quiet", "old", "recent"]


def test_a_single_job_run_mode_is_sent_as_the_listing_filter() -> None:
    from exporter.model.kinds import JOB_RUNS

    only_streaming = ListingWindows(JOB_RUNS, DiscoveryConfig(job_run_modes=("STREAMING",)))
    assert all(listing.extra == (("mode", "STREAMING"),) for listing in only_streaming.listings("app1", NOW))
    both = ListingWindows(JOB_RUNS, DiscoveryConfig(job_run_modes=("BATCH", "STREAMING")))
    assert all(listing.extra == () for listing in both.listings("app1", NOW))
    assert all(listing.extra == () for listing in ListingWindows(SESSIONS, DiscoveryConfig()).listings("app1", NOW))
