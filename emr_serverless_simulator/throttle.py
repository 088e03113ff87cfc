"""Rate limits as AWS applies them: a token bucket per operation, ``ThrottlingException`` when empty.

AWS publishes per-account, per-region quotas as a sustained rate (requests per second) and a burst
(e.g. ListJobRuns 1 TPS burst 25, GetJobRun 10 TPS burst 50). A bucket holds up to ``burst`` tokens,
refills at ``rate`` tokens a second, and a request that finds less than one token is refused with
``ThrottlingException`` (status 400, AWS's common error shape), whatever else is going on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; starts full. Not thread-safe on its own: the
    store's lock serialises it."""

    rate: float
    burst: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number, got {self.rate}")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"burst must be at least 1, got {self.burst}")
        self.tokens = self.burst
        self.updated = self.clock()

    def take(self) -> bool:
        """One request: True if admitted (a token taken), False if it is to be throttled."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class Throttle:
    """A rate limit for one operation (``*``: every operation, each with a bucket of its own)."""

    operation: str
    rate: float
    burst: float | None = None  # default: one second's worth of requests, at least 1

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.rate)


def parse_throttle_spec(spec: str) -> Throttle:
    """``OP:RATE[:BURST]`` from the command line, e.g. ``GetSession:10:50``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"expected OP:RATE[:BURST], got {spec!r}")
    try:
        rate = float(parts[1])
        burst = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise ValueError(f"RATE and BURST must be numbers in {spec!r}") from None
    throttle = Throttle(parts[0], rate, burst)
    TokenBucket(throttle.rate, throttle.capacity)  # the same checks, with the same messages
    return throttle


# The quotas AWS documents for EMR Serverless per account and region that matter to a reader of job runs
# and applications (the job submitters share them): Store.apply_aws_quotas() and --aws-quotas set them.
AWS_QUOTAS = (
    Throttle("ListJobRuns", 1.0, 25.0),
    Throttle("GetJobRun", 10.0, 50.0),
    Throttle("ListApplications", 10.0, 50.0),
    Throttle("GetApplication", 10.0, 50.0),
)
