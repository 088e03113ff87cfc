"""Rate limits: the exporter's one token bucket, and the AWS client's buckets per API operation.

AWS calls: one bucket per operation, shared by every target that spends the same AWS quota (quotas are
per account and region). A caller reserves the next free slot and sleeps until it; reservations are
served in the order they are made, so the stalest work, submitted first, is also sent first. A slot
past the caller's deadline is not reserved at all: the call is deferred to a later collection instead
of running late.

HTTP: the web configuration's ``rate_limit`` takes a token per request or refuses it (429) at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """``rate`` requests per second on average, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # GCRA, the token bucket as one number: the theoretical arrival time of the next request.
        self._interval = 1 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = clock()

    def reserve(self, latest: float | None = None) -> float | None:
        """Reserve one request; return when (on this bucket's clock) it may be sent, or None when that is
        after ``latest``, in which case nothing is taken. ``latest`` bounds a wait: a request the bucket
        allows now is never refused (no limit would not refuse it either)."""
        with self._lock:
            return self._reserve(self._clock(), latest)

    def try_acquire(self) -> bool:
        """Take a token if one is free now; False (taking none) when the caller would have to wait."""
        with self._lock:
            now = self._clock()
            return self._reserve(now, latest=now) is not None

    def _reserve(self, now: float, latest: float | None) -> float | None:
        send_at = max(now, self._tat - self._tolerance)
        if latest is not None and send_at > max(latest, now):
            return None
        self._tat = max(self._tat, send_at) + self._interval
        return send_at

    def affordable(self, seconds: float) -> int:
        """How many requests could be sent from now until ``seconds`` from now, none being reserved meanwhile."""
        with self._lock:
            now = self._clock()
            # The k-th next request may go at max(tat, now) + k x interval - tolerance (an idle bucket holds a
            # burst, no more).
            first = max(self._tat, now) - self._tolerance
        horizon = now + seconds
        # A request exactly at the horizon may fall either side of it by rounding: off by one at most.
        return 0 if first > horizon else int((horizon - first) / self._interval) + 1

    def acquire(self, latest: float | None = None) -> bool:
        """Wait for a token; False (at once, taking none) when none is free now or before ``latest``."""
        send_at = self.reserve(latest)
        if send_at is None:
            return False
        delay = send_at - self._clock()
        if delay > 0:
            self._sleep(delay)
        return True


class RateLimits:
    """The buckets of one quota (account and region), by operation; an operation without one is free."""

    def __init__(self, buckets: dict[str, TokenBucket]) -> None:
        self._buckets = buckets

    def acquire(self, operation: str, latest: float | None = None) -> bool:
        bucket = self._buckets.get(operation)
        return bucket.acquire(latest) if bucket is not None else True

    def affordable(self, operation: str, seconds: float) -> float:
        """How many calls of ``operation`` the limit allows within ``seconds`` (infinite: no limit)."""
        bucket = self._buckets.get(operation)
        return bucket.affordable(seconds) if bucket is not None else math.inf

    def limited(self, operation: str) -> bool:
        return operation in self._buckets
