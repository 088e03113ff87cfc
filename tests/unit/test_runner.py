"""The runner's sharing rules on a fake clock: a request is served the collection that finished after it
arrived, however late an HTTP worker takes it; otherwise min_interval, counted start to start, decides."""

from __future__ import annotations

from typing import cast

import pytest

from exporter.aws.calls import ApiError
from exporter.collect.runner import CollectionRunner
from exporter.collect.target import TargetCollector, TargetIdentity, TargetResult
from exporter.common.deadline import Deadline
from tests.helpers.support import FakeClock

MIN_INTERVAL = 5.0


class TimedTarget:
    """A target whose every collection takes ``seconds`` on the fake clock, counted."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.collections = 0

    def collect(self, deadline: Deadline) -> TargetResult:
        started = self.clock()
        self.clock.advance(self.seconds)
        self.collections += 1
        return self._result(started)

    def unfinished(self, error: ApiError) -> TargetResult:
        return self._result(self.clock(), [error])

    def close(self) -> None:
        pass

    def _result(self, started: float, errors: list[ApiError] | None = None) -> TargetResult:
        return TargetResult(identity=TargetIdentity("t", "us-east-1", "123456789012"), applications=[], objects={},
                            errors=errors or [], started_at=started, finished_at=self.clock(), last_success=None)


def runner_over(target: TimedTarget) -> CollectionRunner:
    # One fake clock for both: the wall clock of min_interval and the monotonic one of arrivals.
    return CollectionRunner(cast(list[TargetCollector], [target]), timeout_seconds=30,
                            min_interval_seconds=MIN_INTERVAL, clock=target.clock, monotonic=target.clock)


@pytest.mark.parametrize("arrived_after", [3.0, -1.0], ids=["during-it", "before-it-began"])
def test_a_request_is_served_the_collection_that_finished_after_it_arrived_however_late_it_is_handled(
    arrived_after: float,
) -> None:
    # 20 scrapers and 8 HTTP workers: a scrape queued behind a 9 s collection is handled after it ended,
    # past min_interval from its start. What ended after the scrape arrived is as fresh as it can want.
    clock = FakeClock()
    target = TimedTarget(clock, seconds=9)
    runner = runner_over(target)
    began = clock()
    try:
        first = runner.collect(arrived=began)
        clock.advance(1)  # a worker takes the queued request 10 s after the collection began
        assert clock() - began > MIN_INTERVAL
        queued = runner.collect(arrived=began + arrived_after)
    finally:
        runner.close()
    assert queued is first
    assert target.collections == 1


def test_a_request_that_arrived_after_the_last_collection_ended_collects_once_past_min_interval() -> None:
    clock = FakeClock()
    target = TimedTarget(clock, seconds=1)
    runner = runner_over(target)
    try:
        first = runner.collect(arrived=clock())  # from 0 to 1 s
        clock.advance(1)
        within = runner.collect(arrived=clock())  # 2 s after it began: min_interval shares it
        clock.advance(4)
        later = runner.collect(arrived=clock())  # 6 s after it began and after it ended: a new one
    finally:
        runner.close()
    assert within is first
    assert later is not first
    assert target.collections == 2


def test_without_an_arrival_min_interval_alone_decides() -> None:
    # The warm-up collection and the background loop know no request: start to start, as before.
    clock = FakeClock()
    target = TimedTarget(clock, seconds=9)
    runner = runner_over(target)
    try:
        first = runner.collect()
        clock.advance(1)
        second = runner.collect()
    finally:
        runner.close()
    assert second is not first
    assert target.collections == 2
