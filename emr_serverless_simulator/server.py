"""HTTP for the simulator: routing, query strings, JSON bodies, AWS error responses, injected latency.

Responses are HTTP/1.1 keep-alive with a Content-Length, written in a single send on a TCP_NODELAY
socket, so Nagle's algorithm and delayed ACKs add no 40 ms stalls: the simulator itself adds ~no
latency, only what ``latency_ms`` and delay faults ask for.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emr_serverless_simulator import api
from emr_serverless_simulator.errors import ApiError
from emr_serverless_simulator.httpd import BackgroundServer, KeepAliveHandler, TrackingServer, write_response
from emr_serverless_simulator.store import Store

log = logging.getLogger(__name__)

Query = Mapping[str, Sequence[str]]
Operation = Callable[[Store, Mapping[str, str], Query, "api.JsonObject"], "api.JsonObject"]


def _get(fn: Callable[[Store, Mapping[str, str], Query], api.JsonObject]) -> Operation:
    return lambda store, path, query, body: fn(store, path, query)


OPERATIONS: dict[str, Operation] = {
    "ListApplications": _get(api.list_applications),
    "GetApplication": _get(api.get_application),
    "ListSessions": _get(api.list_sessions),
    "GetSession": _get(api.get_session),
    "TerminateSession": _get(api.terminate_session),
    "ListTagsForResource": _get(api.list_tags_for_resource),
    "StartSession": lambda store, path, query, body: api.start_session(store, path, body),
    "ListJobRuns": _get(api.list_job_runs),
    "GetJobRun": _get(api.get_job_run),
    "CancelJobRun": _get(api.cancel_job_run),
    "ListJobRunAttempts": _get(api.list_job_run_attempts),
    "StartJobRun": lambda store, path, query, body: api.start_job_run(store, path, body),
}


def route(method: str, segments: list[str]) -> tuple[str, dict[str, str]] | None:
    """(operation name, path parameters) for a request, from the model's requestUri templates."""
    n = len(segments)
    if n >= 2 and segments[0] == "tags" and method == "GET":
        # The ARN holds "/": botocore percent-encodes it, but accept it unencoded as well.
        return "ListTagsForResource", {"resourceArn": "/".join(segments[1:])}
    if n == 0 or segments[0] != "applications":
        return None
    if n == 1 and method == "GET":
        return "ListApplications", {}
    if n == 2 and method == "GET":
        return "GetApplication", {"applicationId": segments[1]}
    if n == 3 and segments[2] == "sessions":
        if method == "GET":
            return "ListSessions", {"applicationId": segments[1]}
        if method == "POST":
            return "StartSession", {"applicationId": segments[1]}
    if n == 4 and segments[2] == "sessions":
        params = {"applicationId": segments[1], "sessionId": segments[3]}
        if method == "GET":
            return "GetSession", params
        if method == "DELETE":
            return "TerminateSession", params
    if n == 3 and segments[2] == "jobruns":
        if method == "GET":
            return "ListJobRuns", {"applicationId": segments[1]}
        if method == "POST":
            return "StartJobRun", {"applicationId": segments[1]}
    if n == 4 and segments[2] == "jobruns":
        params = {"applicationId": segments[1], "jobRunId": segments[3]}
        if method == "GET":
            return "GetJobRun", params
        if method == "DELETE":
            return "CancelJobRun", params
    if n == 5 and segments[2] == "jobruns" and segments[4] == "attempts" and method == "GET":
        return "ListJobRunAttempts", {"applicationId": segments[1], "jobRunId": segments[3]}
    return None


# "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/emr-serverless/aws4_request, ..."
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class _Handler(KeepAliveHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _handle(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        store, simulator = self.server.store, self.server.simulator
        signed_by = _SIGV4_CREDENTIAL.search(self.headers.get("Authorization", ""))
        if signed_by:
            store.record_access_key(signed_by.group(1))
        try:
            if simulator.require_auth and not self.headers.get("Authorization"):
                raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")
            status, payload = 200, self._dispatch(store, raw_body, started)
            error_code = None
        except ApiError as err:
            status, payload, error_code = err.status, {"message": err.message}, err.code
        except Exception:
            log.exception("simulator: unexpected error answering %s %s", self.command, self.path)
            status, payload = 500, {"message": "An internal error occurred."}
            error_code = "InternalServerException"
        self._send(status, payload, error_code)

    def _dispatch(self, store: Store, raw_body: bytes, started: float) -> api.JsonObject:
        parts = urlsplit(self.path)
        segments = [unquote(segment) for segment in parts.path.split("/") if segment]
        resolved = route(self.command, segments)
        if resolved is None:
            self._wait(started, 0.0)
            raise ApiError("UnknownOperationException", f"No operation matches {self.command} {parts.path}")
        operation, path = resolved
        store.record_call(operation)
        query = parse_qs(parts.query, keep_blank_values=True)
        body: api.JsonObject = {}
        if raw_body:
            try:
                loaded = json.loads(raw_body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError("ValidationException", "The request body is not valid JSON") from None
            if not isinstance(loaded, dict):
                raise ApiError("ValidationException", "The request body must be a JSON object")
            body = loaded
        # Faults match on path parameters first, then query parameters and string body members.
        params = {key: str(value) for key, value in body.items() if isinstance(value, (str, int, float))}
        params.update({key: values[-1] for key, values in query.items() if values})
        params.update(path)
        delay, error = store.check_faults(operation, params)
        self._wait(started, delay)
        if error is not None:
            raise error
        return OPERATIONS[operation](store, path, query, body)

    def _wait(self, started: float, extra: float) -> None:
        remaining = self.server.simulator.latency_ms / 1000 + extra - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)

    def _send(self, status: int, payload: api.JsonObject, error_code: str | None) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = [
            f"Date: {formatdate(usegmt=True)}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"x-amzn-RequestId: {uuid.uuid4()}",
        ]
        if error_code is not None:
            headers.append(f"x-amzn-ErrorType: {error_code}")
        if self.close_connection:
            headers.append("Connection: close")
        write_response(self, status, headers, body)


class _Server(TrackingServer):
    request_queue_size = 1024  # the exporter opens dozens of connections at once

    def __init__(self, address: tuple[str, int], store: Store, simulator: Simulator) -> None:
        self.store = store
        self.simulator = simulator
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


class Simulator(BackgroundServer):
    """Serves a ``Store`` over HTTP on a background thread; ``port=0`` picks a free port."""

    thread_name = "emr-simulator"

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        *,
        require_auth: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.store = store
        self.latency_ms = latency_ms  # may be changed while serving
        self.require_auth = require_auth  # answer requests without an Authorization header with 403

    def make_server(self, address: tuple[str, int]) -> TrackingServer:
        server_class = _Server6 if ":" in self.host else _Server
        return server_class(address, self.store, self)
