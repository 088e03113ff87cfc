"""Reading the files a web configuration names (the file itself, certificates, keys, CAs), and the one
error every web configuration problem is."""

from __future__ import annotations

import os
import stat

MAX_FILE_BYTES = 1 << 20  # a web config, a certificate or a key is a few KB; /dev/zero is not one


class WebConfigError(Exception):
    """A web configuration problem; ``str()`` is one line: ``FILE: KEY: reason``."""


def read_text(path: str, *, name: str, key: str | None) -> str:
    """A regular, readable, small text file (a FIFO would hang the start, /dev/zero would never end)."""

    def fail(reason: str) -> WebConfigError:
        return WebConfigError(f"{name}: {key}: {reason}" if key else f"{name}: {reason}")

    shown = f"{path!r}: " if key else ""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise fail(f"{shown}cannot read: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise fail(f"{shown}cannot read: larger than {MAX_FILE_BYTES} bytes")
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail(f"{shown}file not found") from None
    except OSError as err:
        raise fail(f"{shown}cannot read: {err.strerror or err}") from None
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise fail(f"{shown}not UTF-8 text") from None
