"""glibc's arenas are limited before the threads start (exporter.common.malloc): with the default, the
exporter's ~40 threads spread what they free over up to 8 arenas per core and RSS creeps up."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys

import pytest

from exporter.common.malloc import ARENAS, limit_arenas

# Threads that allocate and free blocks too large for Python's own allocator, as the exporter's do
# (rendered lines, responses), then glibc's own account of its arenas on standard error.
CHILD = """
import ctypes, sys, threading
from exporter.common.malloc import limit_arenas
if sys.argv[1] == "limit":
    assert limit_arenas()
together = threading.Barrier(12)  # all alive at once: none hands its arena on to the next
def work():
    for _ in range(200):
        blocks = [bytes(2048) for _ in range(50)]
        del blocks
    together.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""

glibc = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_stats") or sys.platform != "linux",
                           reason="glibc only")


def arenas(mode: str, **env: str) -> int:
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True,
                          env={**environment, **env}, timeout=60)
    return len(re.findall(r"^Arena \d+:", done.stderr, flags=re.MULTILINE))


@glibc
def test_threads_share_two_arenas() -> None:
    assert arenas("limit") <= ARENAS
    assert arenas("default") > ARENAS  # what the limit changes (2 cores: up to 16 arenas)


@glibc
def test_the_operators_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_arenas()
