"""Injected faults: a seeded share of the matching calls of one operation fails, is delayed, or both."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from emr_serverless_simulator.errors import ApiError

Match: TypeAlias = Mapping[str, str] | Callable[[Mapping[str, str]], bool] | None


@dataclass
class Fault:
    """One fault rule.

    ``operation`` is an operation name (``GetSession``) or ``*`` for all. ``match`` narrows it to calls
    whose request parameters (path parameters such as ``applicationId``/``sessionId``, query parameters,
    top-level string members of a JSON body) equal every item of a mapping, or for which a predicate is
    true. Each matching call is hit with probability ``fraction``, drawn from this rule's own RNG seeded
    with ``seed``, so a sequence of calls is reproducible. A hit call waits ``delay_ms``, then, when
    ``error_code`` is set, is answered with that error (``status`` overrides the code's usual status).
    """

    operation: str
    error_code: str | None = "InternalServerException"
    fraction: float = 1.0
    delay_ms: float = 0.0
    match: Match = None
    seed: int = 0
    message: str | None = None
    status: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be within [0, 1], got {self.fraction}")
        if self.delay_ms < 0:
            raise ValueError(f"delay_ms must not be negative, got {self.delay_ms}")
        if self.error_code is None and self.delay_ms == 0:
            raise ValueError("a fault needs an error_code, a delay_ms, or both")
        self._rng = random.Random(self.seed)

    def matches(self, operation: str, params: Mapping[str, str]) -> bool:
        if self.operation not in ("*", operation):
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(params))
        return all(params.get(key) == value for key, value in self.match.items())

    def hit(self) -> bool:
        """Draw for one matching call; the caller serialises calls (the store's lock)."""
        return self._rng.random() < self.fraction

    def error(self) -> ApiError | None:
        if self.error_code is None:
            return None
        return ApiError(self.error_code, self.message, self.status)


def parse_fault_spec(spec: str) -> Fault:
    """``OP:CODE:FRACTION[:DELAY_MS]`` from the command line; an empty CODE means delay only."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[0]:
        raise ValueError(f"expected OP:CODE:FRACTION[:DELAY_MS], got {spec!r}")
    try:
        fraction = float(parts[2])
        delay_ms = float(parts[3]) if len(parts) == 4 else 0.0
    except ValueError:
        raise ValueError(f"FRACTION and DELAY_MS must be numbers in {spec!r}") from None
    return Fault(operation=parts[0], error_code=parts[1] or None, fraction=fraction, delay_ms=delay_ms)
