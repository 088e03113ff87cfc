"""Structured logs on standard error: logfmt or JSON, one record per line.

Call sites pass key/value context as ``extra={"fields": {...}}`` so both formats carry it as fields.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timezone
from typing import Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
FORMATS = ("logfmt", "json")
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields.update(getattr(record, "fields", {}))
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = repr(record.exc_info[1])
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _record_fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_record_fields(record), default=str, ensure_ascii=False)


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(char in text for char in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # The AWS libraries log credential discovery at info and every request at debug: show them only
    # when the user asks for debug.
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


# Distinct problems remembered for warn_once; past this many, a process logs no new ones (memory bound).
MAX_WARNED = 10_000
_warned: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
_warned_lock = threading.Lock()
_warn_log = logging.getLogger("exporter")


def warn_once(message: str, **fields: str) -> None:
    """Log a data problem once per process, however many scrapes see it again."""
    key = (message, tuple(sorted(fields.items())))
    with _warned_lock:
        if key in _warned or len(_warned) >= MAX_WARNED:
            return
        _warned.add(key)
    _warn_log.warning(message, extra={"fields": fields})
