"""Structured logs on standard error: logfmt or JSON, one record per line, never a secret.

Call sites pass key/value context as ``extra={"fields": {...}}`` so both formats carry it as fields.
Every record, the AWS libraries' included, goes through ``exporter.common.redaction.redact``: message, fields
and error text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import traceback
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TextIO

from exporter.common.redaction import add_secret, redact

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
FORMATS = ("logfmt", "json")
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}

# Credentials the AWS libraries may read from the environment; redacted wherever they turn up.
SECRET_ENVIRONMENT_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)

# botocore's wire logs: request parameters and headers (ExternalId, X-Amz-Security-Token), canonical
# requests, and response bodies (AssumeRole's SecretAccessKey and SessionToken; GetSession's
# configurationOverrides, which may hold the user's own passwords in Spark properties). Redaction
# catches the credential fields, but no pattern can know every secret a body may carry, so these stay
# at info even with --log.level debug. botocore's other debug logs (endpoints, retries, credential
# sources, hooks) and urllib3's (connections, request lines) are shown, redacted.
WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.auth")


def _redacted(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _redacted(item) for key, item in value.items()}
    return redact(str(value))


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": redact(record.getMessage()),
    }
    fields.update((key, _redacted(value)) for key, value in getattr(record, "fields", {}).items())
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = redact(repr(record.exc_info[1]))
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


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own report prints the record's raw message and arguments: one redacted line instead.
        error = sys.exc_info()[1]
        with contextlib.suppress(OSError, ValueError):  # a closed stream: nowhere left to report it
            self.stream.write(f"logging error in a record of {record.name}: {redact(repr(error))}\n")


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Records at ``level`` and above to ``stream`` (standard error) in format ``fmt``, redacted."""
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # The AWS libraries log credential discovery at info and every request at debug: show them only
    # when the user asks for debug.
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    for wire in WIRE_LOGGERS:
        logging.getLogger(wire).setLevel(logging.INFO)
    for name in SECRET_ENVIRONMENT_VARIABLES:
        add_secret(os.environ.get(name))
    # An exception nobody caught would print a raw traceback: log it as one redacted record instead.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return
    text = "".join(traceback.format_exception(kind, error, trace))
    logging.getLogger("exporter").error(
        "uncaught exception", exc_info=(kind, error, trace), extra={"fields": {"traceback": text}}
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


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
