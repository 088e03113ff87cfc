"""The instant a collection must end by, on the monotonic clock: the worker pool drops what has not
started by then, and each AWS call checks it before every attempt and every wait."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """An instant on the monotonic clock past which no call starts and no wait lasts."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0
