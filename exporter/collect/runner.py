"""The runner: collects every target in parallel within one deadline, and shares the collection in
flight (and, within ``collection.min_interval_seconds``, the last one) between concurrent callers, so
that however many scrapes arrive, AWS sees at most one collection per target at a time. A scrape that
waited for an HTTP worker is served the collection that finished while it waited, not a new one."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from exporter.collect.target import Clock, CollectionTimeout, TargetCollector, TargetResult
from exporter.common.deadline import Deadline

# How long past the deadline the runner waits for a target to hand in what it has.
DEADLINE_GRACE_SECONDS = 0.5


class CollectionRunner:
    """Runs collections of all targets in parallel; concurrent callers share the one in flight."""

    def __init__(
        self,
        targets: list[TargetCollector],
        *,
        timeout_seconds: float,
        min_interval_seconds: float = 0.0,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.targets = targets
        self._timeout = timeout_seconds
        self._min_interval = min_interval_seconds
        self._clock = clock
        self._monotonic = monotonic  # when requests arrived and collections finished: never set back
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="target")
        self._cond = threading.Condition()
        self._in_flight = False
        self._closed = False
        self._last_start: float | None = None  # on ``clock``, when the last collection began
        self._last_finish: float | None = None  # on ``monotonic``, when the last collection handed in results
        self.latest: list[TargetResult] | None = None
        self.ready = threading.Event()

    def collect(self, timeout: float | None = None, arrived: float | None = None) -> list[TargetResult]:
        """One collection, bounded by the configured timeout and ``timeout`` (the scrape's). A caller that
        joins a collection already running waits at most its own timeout, then gets what is known.

        ``arrived`` is when the request asking for it arrived, on ``monotonic``: a collection that finished
        since is as fresh as that request can want, however long it then waited for an HTTP worker."""
        limit = min(self._timeout, timeout or self._timeout)
        with self._cond:
            if self._in_flight or self._closed:
                self._cond.wait_for(lambda: not self._in_flight or self._closed, timeout=limit)
                if self.latest is None:  # the first collection is still running: up 0, not an empty exposition
                    self.latest = self._known()
                return self.latest
            if self.latest and arrived is not None and self._last_finish is not None and self._last_finish >= arrived:
                return self.latest
            # Start to start, so that one scrape per interval longer than min_interval still collects each
            # time however long the collection takes; a clock set back does not pin the last result.
            now = self._clock()
            if self.latest and self._last_start is not None and 0 <= now - self._last_start < self._min_interval:
                return self.latest
            self._in_flight = True
            self._last_start = now
        results: list[TargetResult] | None = None
        try:
            results = self._collect_all(limit)
            return results
        finally:
            with self._cond:
                self._in_flight = False
                if results is not None:
                    self.latest = results
                    self._last_finish = self._monotonic()
                    self.ready.set()
                self._cond.notify_all()

    def _known(self) -> list[TargetResult]:
        """The last results with up 0, or empty ones before the first: for a caller that cannot wait."""
        return [target.unfinished(CollectionTimeout(0, still_running=True)) for target in self.targets]

    def _collect_all(self, timeout: float) -> list[TargetResult]:
        deadline = Deadline.after(timeout)
        futures = [self._pool.submit(target.collect, deadline) for target in self.targets]
        # A target stuck past the deadline must not hold back the others' series.
        wait(futures, timeout=timeout + DEADLINE_GRACE_SECONDS)
        return [
            future.result() if future.done() else target.unfinished(CollectionTimeout(timeout))
            for target, future in zip(self.targets, futures, strict=True)
        ]

    def close(self) -> None:
        """Shut down: collections under way and callers waiting for them return within a second."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for target in self.targets:
            target.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
