"""The token bucket on a fake clock: burst, then rate, in reservation order, never past a deadline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.common.tokenbucket import RateLimits, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def bucket(rate: float, burst: int, time: FakeTime) -> TokenBucket:
    return TokenBucket(rate, burst, clock=time.clock, sleep=time.sleep)


def test_burst_then_rate() -> None:
    time = FakeTime()
    limited = bucket(10, 5, time)
    slots = [limited.reserve() for _ in range(8)]
    assert slots[:5] == pytest.approx([1000.0] * 5)
    assert slots[5:] == pytest.approx([1000.1, 1000.2, 1000.3])


def test_an_idle_bucket_refills_only_up_to_its_burst() -> None:
    time = FakeTime()
    limited = bucket(2, 3, time)
    for _ in range(3):
        limited.acquire()
    time.now += 3600
    assert [limited.reserve() for _ in range(4)] == pytest.approx([time.now] * 3 + [time.now + 0.5])


def test_no_slot_past_the_deadline_and_nothing_taken() -> None:
    time = FakeTime()
    limited = bucket(1, 1, time)
    assert limited.acquire(latest=time.now)
    assert not limited.acquire(latest=time.now + 0.5)  # the next slot is 1 s away
    assert time.now == 1000.0  # it did not wait
    assert limited.reserve() == pytest.approx(1001.0)  # the refused call took no slot


def test_operations_without_a_bucket_are_free() -> None:
    time = FakeTime()
    limits = RateLimits({"GetSession": bucket(1, 1, time)})
    assert limits.acquire("ListSessions", latest=time.now) and limits.acquire("ListSessions", latest=time.now)
    assert limits.acquire("GetSession", latest=time.now)
    assert not limits.acquire("GetSession", latest=time.now)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.5, 200), burst=st.integers(1, 100),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=300),
)
def test_never_faster_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    time = FakeTime()
    limited = bucket(rate, burst, time)
    start = time.now
    sent: list[float] = []
    for gap in gaps:
        time.now += gap
        limited.acquire()
        sent.append(time.now)
    # In any window [t0, t1] at most burst + rate * (t1 - t0) requests: the token bucket's promise.
    for i, first in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= burst + rate * (sent[j] - first) + 1e-6
    assert sent[0] >= start


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.1, max_value=50), burst=st.integers(min_value=1, max_value=30),
    used=st.integers(min_value=0, max_value=40), idle=st.floats(min_value=0, max_value=100),
    seconds=st.floats(min_value=0, max_value=60),
)
def test_affordable_is_what_reservations_would_get(
    rate: float, burst: int, used: int, idle: float, seconds: float
) -> None:
    # The listing planner asks how many calls fit before the deadline: as many as reserve() grants (one more or
    # less where the last slot falls on the horizon itself and rounding decides; a listing planned in excess
    # is deferred, no error).
    time = FakeTime()
    limited = bucket(rate, burst, time)
    for _ in range(used):
        limited.reserve()
    time.now += idle
    promised = limited.affordable(seconds)
    granted = 0
    while limited.reserve(latest=time.now + seconds) is not None:
        granted += 1
        assert granted <= burst + rate * (seconds + idle) + used + 1  # never endless
    assert abs(promised - granted) <= 1
    assert RateLimits({}).affordable("ListJobRuns", seconds) == float("inf")


def test_try_acquire_takes_a_free_token_or_refuses_at_once() -> None:
    # The web rate limit (exporter-toolkit's rate_limit: one request per interval, bursts of burst).
    time = FakeTime()
    limited = bucket(1 / 3600, 2, time)  # interval 1h, burst 2
    assert [limited.try_acquire() for _ in range(3)] == [True, True, False]
    assert time.now == 1000.0  # it never waits
    time.now += 3600
    assert [limited.try_acquire() for _ in range(2)] == [True, False]  # one interval: one token back


def test_a_token_free_now_is_taken_whatever_the_deadline() -> None:
    # A collection with less than CALL_ROOM_SECONDS left still makes the call a bucket allows at once, as it
    # would with no limit; only a wait for a later token is refused.
    time = FakeTime()
    limited = bucket(1, 2, time)
    assert limited.acquire(latest=time.now - 0.4)
    assert limited.acquire(latest=time.now - 0.4)
    assert not limited.acquire(latest=time.now - 0.4)  # the next token is 1 s away
    assert time.now == 1000.0
