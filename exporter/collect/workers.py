"""A fixed set of daemon threads serving calls in priority order, each call bounded by a deadline.

Why not ``ThreadPoolExecutor``: it serves in submission order (the stalest sessions must go first
whatever order listings arrive in), it runs queued work after the caller gave up (a timed-out
collection must leave nothing to run later), and interpreter exit joins its threads (a call stuck in
a socket read would hold up shutdown).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.common.deadline import Deadline


@dataclass(order=True)
class _Job:
    priority: tuple[float, ...]
    sequence: int
    deadline: Deadline = field(compare=False)
    call: Callable[[], Any] | None = field(compare=False)  # None: the worker stops
    done: Callable[[Any, BaseException | None], None] = field(compare=False)


class Expired(Exception):
    """The job's deadline passed before a worker reached it: it never ran."""


class WorkerPool:
    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True) for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self,
        priority: tuple[float, ...],
        deadline: Deadline,
        call: Callable[[], Any],
        done: Callable[[Any, BaseException | None], None],
    ) -> None:
        """Run ``call`` when a worker is free and nothing more urgent waits; then ``done(result, error)``.
        A job still queued at its deadline is not run: ``done(None, Expired())``."""
        if self._closed:
            done(None, Expired())
            return
        self._queue.put(_Job(priority, next(self._sequence), deadline, call, done))

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:  # after every queued job, each of which is now skipped
            self._queue.put(_Job((float("inf"),), next(self._sequence), Deadline(0), None, _ignore))
        # Workers stuck in a call finish it on their own; they are daemons and hold nothing.

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job.call is None:
                return
            if self._closed or job.deadline.passed:
                job.done(None, Expired())
                continue
            try:
                result = job.call()
            except BaseException as err:  # handed to the collection, which decides
                job.done(None, err)
            else:
                job.done(result, None)


def _ignore(result: Any, error: BaseException | None) -> None:
    pass
