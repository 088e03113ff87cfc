"""glibc's malloc arenas, limited to two before the first thread starts.

glibc gives threads up to 8 arenas per core, and memory freed into one arena is rarely returned to
the system while another thread's allocations land elsewhere. The exporter runs some 40 threads (the
API worker pool, HTTP requests, background collection) that allocate and free tens of MB a collection:
in the background at 10,000 sessions RSS crept up by ~8 MB a collection with the default (221 MB after
ten collections and still rising), and stays flat at ~185 MB with two arenas, for no measurable CPU
(Python allocates under the GIL, so the threads hardly ever contend for an arena). Two, not one: C
code that releases the GIL (zlib, TLS, sockets) still gets an arena of its own. docs/performance.md has
the runs. ``MALLOC_ARENA_MAX`` or a glibc tunable set by the operator wins; elsewhere (musl, macOS)
there is no such knob and nothing is done.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc's arenas to ``arenas``; True if it did. Call it before any thread starts: a thread
    keeps the arena it was given."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
