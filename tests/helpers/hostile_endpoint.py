"""A programmable, hostile EMR Serverless endpoint on loopback, for tests and benchmarks.

It speaks enough of EMR Serverless' REST-JSON wire protocol for the unchanged boto3 client
(``endpoint_url`` and dummy credentials): ListApplications (``GET /applications``), GetApplication
(``GET /applications/{id}``), ListSessions (``GET /applications/{id}/sessions``) and GetSession
(``GET /applications/{id}/sessions/{sid}``).
It serves a good baseline ``World`` (two applications, sessions in several states, JSON shaped as
botocore's service model says) and lets a test spoil exactly one thing:

    with HostileEndpoint() as endpoint:
        endpoint.respond("GetSession", Response(200, b"<html>oops</html>"), match={"sessionId": BAD_SESSION})
        endpoint.mutate_session(BAD_SESSION, lambda s: s.update(state=42))
        endpoint.endless_pages("ListSessions", "repeat", match={"applicationId": BAD_APP})

Rules apply in order: a matching ``respond`` rule answers with raw status, bytes and headers, as is;
otherwise the baseline payload is built and every matching ``transform`` rule may rewrite it (any
JSON-able value, NaN and Infinity included) before it is serialized. Unlike the simulator, it checks
nothing and is wrong on purpose. It is bounded: a request log of fixed length, daemon handler threads,
and ``stop()`` closes keep-alive connections.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emr_serverless_simulator.api import parse_timestamp
from emr_serverless_simulator.errors import ApiError
from emr_serverless_simulator.httpd import BackgroundServer, KeepAliveHandler, TrackingServer, write_response

ACCOUNT = "123456789012"
REGION = "us-east-1"
GOOD_APP = "00goodapplication001"
BAD_APP = "00badapplication0002"
# Sessions of the good application: never touched by a case.
GOOD_IDLE, GOOD_BUSY, GOOD_ENDED = "00goodsessionidle001", "00goodsessionbusy002", "00goodsessionended03"
# Sessions of the application a case spoils: BAD_SESSION is the usual victim, BAD_SIBLING its neighbour.
BAD_SESSION, BAD_SIBLING = "00badsessionvictim01", "00badsessionsibling2"
GOOD_SESSIONS = frozenset({GOOD_IDLE, GOOD_BUSY, GOOD_ENDED})
BAD_APP_SESSIONS = frozenset({BAD_SESSION, BAD_SIBLING})
ALL_SESSIONS = GOOD_SESSIONS | BAD_APP_SESSIONS

# What ListSessions returns of a session (SessionSummary); GetSession returns all of it (Session).
SUMMARY_KEYS = (
    "applicationId", "sessionId", "arn", "name", "state", "stateDetails", "releaseLabel",
    "executionRoleArn", "createdBy", "createdAt", "updatedAt",
)
APPLICATION_KEYS = (
    "id", "name", "arn", "releaseLabel", "type", "state", "stateDetails", "createdAt", "updatedAt", "architecture",
)
LOG_LENGTH = 10_000
LARGE_BODY_BYTES = 64 * 1024

JsonObject = dict[str, Any]
Transform = Callable[["Request", Any], Any]


@dataclass(frozen=True)
class Request:
    operation: str
    params: Mapping[str, str]  # path parameters, then the last value of each query parameter
    query: Mapping[str, list[str]]
    received: float  # time.monotonic()


@dataclass(frozen=True)
class Response:
    """A raw answer, sent as is: any status, any bytes; ``chunked``: with no Content-Length, the body in
    chunks of that many bytes (Transfer-Encoding: chunked)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    chunked: int = 0


def error_response(code: str, message: str = "error", status: int = 400, *, in_header: bool = True) -> Response:
    """An AWS error in the common rest-json shape; the code in ``x-amzn-ErrorType`` or in ``__type``."""
    if in_header:
        return Response(status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": code})
    return Response(status, json.dumps({"__type": code, "message": message}).encode())


def _epoch(value: float) -> float | int:
    rounded = round(value, 3)
    return int(rounded) if rounded == int(rounded) else rounded


def arn(app_id: str, session_id: str | None = None) -> str:
    base = f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{app_id}"
    return f"{base}/sessions/{session_id}" if session_id else base


def make_application(app_id: str, name: str | None, created: float) -> JsonObject:
    """An application: ListApplications returns its APPLICATION_KEYS (ApplicationSummary), GetApplication
    the rest as well, with ``applicationId`` for ``id`` (name omitted when None)."""
    out: JsonObject = {
        "id": app_id, "name": name, "arn": arn(app_id), "releaseLabel": "emr-7.1.0", "type": "Spark",
        "state": "STARTED", "createdAt": _epoch(created), "updatedAt": _epoch(created + 60), "architecture": "X86_64",
        "maximumCapacity": {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"},
        "initialCapacity": {
            "Driver": {"workerCount": 1, "workerConfiguration": {"cpu": "4 vCPU", "memory": "16 GB", "disk": "20 GB"}},
        },
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15},
    }
    if name is None:
        del out["name"]
    return out


def make_session(
    app_id: str, session_id: str, name: str | None, state: str, created: float, **extra: Any
) -> JsonObject:
    """A Session as GetSession returns it (ListSessions returns its SUMMARY_KEYS); ``extra`` overrides."""
    age = max(0.0, time.time() - created)
    out: JsonObject = {
        "applicationId": app_id, "sessionId": session_id, "arn": arn(app_id, session_id), "name": name,
        "state": state, "stateDetails": f"Session is {state.lower()}", "releaseLabel": "emr-7.1.0",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/EMRServerlessSessionRole",
        "createdBy": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "createdAt": _epoch(created), "updatedAt": _epoch(max(created, time.time() - 30)),
        "startedAt": _epoch(created + 20), "idleTimeoutMinutes": 60,
        "tags": {"team": "data", "aws:cloudformation:stack-name": "stack-1"},
        "totalResourceUtilization": {"vCPUHour": 1.5, "memoryGBHour": 6.0, "storageGBHour": 20.0},
        "billedResourceUtilization": {"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 0.0},
        "totalExecutionDurationSeconds": int(age),
    }
    if name is None:
        del out["name"]
    out.update(extra)
    return out


@dataclass
class World:
    """The baseline data as JSON objects: applications (ApplicationSummary) and sessions (Session)."""

    applications: list[JsonObject]
    sessions: dict[str, list[JsonObject]]  # by application id, newest first

    @classmethod
    def baseline(cls, now: float | None = None) -> World:
        now = time.time() if now is None else now
        return cls(
            applications=[
                make_application(BAD_APP, "bad", now - 7200), make_application(GOOD_APP, "good", now - 86400)
            ],
            sessions={
                GOOD_APP: [
                    make_session(GOOD_APP, GOOD_IDLE, "idle-notebook", "IDLE", now - 600, idleSince=_epoch(now - 120)),
                    make_session(GOOD_APP, GOOD_BUSY, "busy-notebook", "BUSY", now - 1200),
                    make_session(GOOD_APP, GOOD_ENDED, "ended-notebook", "TERMINATED", now - 1800,
                                 endedAt=_epoch(now - 300), updatedAt=_epoch(now - 300)),
                ],
                BAD_APP: [
                    make_session(BAD_APP, BAD_SESSION, "victim", "IDLE", now - 300, idleSince=_epoch(now - 60)),
                    make_session(BAD_APP, BAD_SIBLING, "sibling", "STARTED", now - 900),
                ],
            },
        )

    def find_session(self, session_id: str) -> JsonObject | None:
        for sessions in self.sessions.values():
            for session in sessions:
                if session.get("sessionId") == session_id:
                    return session
        return None


@dataclass
class _Rule:
    operation: str
    match: Mapping[str, str] | Callable[[Request], bool] | None
    respond: Response | Callable[[Request], Response | None] | None = None
    transform: Transform | None = None
    filter_body: Callable[[Request, bytes], bytes] | None = None

    def matches(self, request: Request) -> bool:
        if self.operation not in ("*", request.operation):
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(request))
        return all(request.params.get(key) == value for key, value in self.match.items())


def route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    segments = [unquote(segment) for segment in path.split("/") if segment]
    if method != "GET" or not segments or segments[0] != "applications":
        return None
    if len(segments) == 1:
        return "ListApplications", {}
    if len(segments) == 2:
        return "GetApplication", {"applicationId": segments[1]}
    if len(segments) == 3 and segments[2] == "sessions":
        return "ListSessions", {"applicationId": segments[1]}
    if len(segments) == 4 and segments[2] == "sessions":
        return "GetSession", {"applicationId": segments[1], "sessionId": segments[3]}
    if len(segments) == 3 and segments[2] == "jobruns":
        return "ListJobRuns", {"applicationId": segments[1]}
    if len(segments) == 4 and segments[2] == "jobruns":
        return "GetJobRun", {"applicationId": segments[1], "jobRunId": segments[3]}
    return None


class HostileEndpoint(BackgroundServer):
    """The endpoint; ``port=0`` picks a free port. Rules may be added while it serves."""

    thread_name = "hostile-endpoint"

    def __init__(self, world: World | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.world = world or World.baseline()
        self.calls: Counter[str] = Counter()  # requests received per operation, answered or not
        self.log: deque[tuple[float, str, Mapping[str, str]]] = deque(maxlen=LOG_LENGTH)
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    # --- programming it -------------------------------------------------------------------------------

    def respond(
        self,
        operation: str,
        response: Response | Callable[[Request], Response | None],
        *,
        match: Mapping[str, str] | Callable[[Request], bool] | None = None,
    ) -> None:
        """Answer matching calls with ``response`` (or what the callable returns; None: not this rule)."""
        with self._lock:
            self._rules.append(_Rule(operation, match, respond=response))

    def transform(
        self,
        operation: str,
        transform: Transform,
        *,
        match: Mapping[str, str] | Callable[[Request], bool] | None = None,
    ) -> None:
        """Rewrite the baseline payload of matching calls: ``transform(request, payload) -> payload``."""
        with self._lock:
            self._rules.append(_Rule(operation, match, transform=transform))

    def filter_body(
        self,
        operation: str,
        filter_body: Callable[[Request, bytes], bytes],
        *,
        match: Mapping[str, str] | Callable[[Request], bool] | None = None,
    ) -> None:
        """Rewrite the serialized body of matching calls (after every transform): for bytes no JSON
        encoder writes, such as invalid UTF-8."""
        with self._lock:
            self._rules.append(_Rule(operation, match, filter_body=filter_body))

    def mutate_session(
        self,
        session_id: str,
        mutate: Callable[[JsonObject], object],
        *,
        operations: Iterable[str] = ("ListSessions", "GetSession"),
    ) -> None:
        """Change one session (in place, on a copy) wherever ``operations`` return it."""

        def apply(request: Request, payload: Any) -> Any:
            if request.operation == "GetSession":
                if payload["session"].get("sessionId") == session_id:
                    mutate(payload["session"])
                return payload
            for item in payload.get("sessions", []):
                if item.get("sessionId") == session_id:
                    mutate(item)
            return payload

        for operation in operations:
            self.transform(operation, apply)

    def mutate_application(
        self,
        application_id: str,
        mutate: Callable[[JsonObject], object],
        *,
        operations: Iterable[str] = ("ListApplications",),
    ) -> None:
        """Change one application (in place, on a copy) wherever ``operations`` return it."""

        def apply(request: Request, payload: Any) -> Any:
            if request.operation == "GetApplication":
                if payload["application"].get("applicationId") == application_id:
                    mutate(payload["application"])
                return payload
            for item in payload.get("applications", []):
                if item.get("id") == application_id:
                    mutate(item)
            return payload

        for operation in operations:
            self.transform(operation, apply)

    def endless_pages(
        self,
        operation: str,
        mode: str,
        *,
        match: Mapping[str, str] | Callable[[Request], bool] | None = None,
        cycle: int = 3,
        page_size: int = 0,
    ) -> None:
        """Every page of a listing says more follow: ``repeat`` the same token, a ``cycle`` of tokens,
        or an ever-``new`` one. Each page holds the baseline items again or, with ``page_size``, that
        many items never seen before (copies of the first baseline item under new ids), as a full page
        of a very large account would."""
        counter = itertools.count(1)
        fresh = itertools.count(1)

        def apply(request: Request, payload: Any) -> Any:
            if mode == "repeat":
                token = "sametokenagain"
            elif mode == "cycle":
                token = f"cycle{next(counter) % cycle}"
            elif mode == "new":
                token = f"page{next(counter)}"
            else:
                raise ValueError(f"unknown mode {mode!r}")
            if page_size:
                key, id_key = ("applications", "id") if "applications" in payload else ("sessions", "sessionId")
                template = payload[key][0] if payload.get(key) else self._template(request)
                if template is not None:
                    items = []
                    for _ in range(page_size):
                        item = dict(template)
                        item[id_key] = f"00endless{next(fresh):011d}"
                        if id_key == "sessionId":
                            item["arn"] = arn(item["applicationId"], item[id_key])
                        else:
                            item["arn"] = arn(item[id_key])
                        items.append(item)
                    payload = {**payload, key: items}
            return {**payload, "nextToken": token}

        self.transform(operation, apply, match=match)

    def _template(self, request: Request) -> JsonObject | None:
        """An item of the world for a listing whose baseline page is empty (e.g. filtered by creation time)."""
        with self._lock:
            if request.operation == "ListApplications":
                apps = self.world.applications
                return {k: apps[0][k] for k in APPLICATION_KEYS if k in apps[0]} if apps else None
            sessions = self.world.sessions.get(request.params.get("applicationId", ""), [])
            return {k: sessions[0][k] for k in SUMMARY_KEYS if k in sessions[0]} if sessions else None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def requests(self, operation: str | None = None) -> list[tuple[float, str, Mapping[str, str]]]:
        """(monotonic time, operation, params) of the last requests, oldest first."""
        with self._lock:
            return [entry for entry in self.log if operation is None or entry[1] == operation]

    # --- answering ------------------------------------------------------------------------------------

    def answer(self, method: str, target: str) -> Response:
        parts = urlsplit(target)
        resolved = route(method, parts.path)
        if resolved is None:
            return error_response("UnknownOperationException", f"No operation matches {method} {parts.path}", 404)
        operation, path_params = resolved
        query = parse_qs(parts.query, keep_blank_values=True)
        params = {key: values[-1] for key, values in query.items() if values}
        params.update(path_params)
        request = Request(operation, params, query, time.monotonic())
        with self._lock:
            self.calls[operation] += 1
            self.log.append((request.received, operation, params))
            rules = list(self._rules)
        for rule in rules:
            if rule.respond is not None and rule.matches(request):
                response = rule.respond(request) if callable(rule.respond) else rule.respond
                if response is not None:
                    return response
        try:
            payload: Any = self._baseline(request)
        except ApiError as err:
            return error_response(err.code, err.message, err.status)
        for rule in rules:
            if rule.transform is not None and rule.matches(request):
                payload = rule.transform(request, payload)
        # ASCII with \\u escapes: valid JSON even for lone surrogates; NaN and Infinity as bare literals.
        body = json.dumps(payload, allow_nan=True).encode("ascii")
        for rule in rules:
            if rule.filter_body is not None and rule.matches(request):
                body = rule.filter_body(request, body)
        return Response(200, body)

    def _baseline(self, request: Request) -> JsonObject:
        with self._lock:
            world = copy.deepcopy(self.world)
        query, params = request.query, request.params
        if request.operation == "ListApplications":
            states = {s for raw in query.get("states", ()) for s in raw.split(",") if s}
            apps = [app for app in world.applications if not states or app.get("state") in states]
            items, token = _page(apps, params)
            out: JsonObject = {"applications": [{k: app[k] for k in APPLICATION_KEYS if k in app} for app in items]}
        elif request.operation == "ListSessions":
            app_id = params["applicationId"]
            if app_id not in world.sessions:
                raise ApiError("ResourceNotFoundException", f"Application {app_id} does not exist")
            states = {s for raw in query.get("states", ()) for s in raw.split(",") if s}
            after = parse_timestamp("createdAtAfter", params["createdAtAfter"]) if "createdAtAfter" in params else None
            sessions = [
                s for s in world.sessions[app_id]
                if (not states or s.get("state") in states)
                and (after is None or not isinstance(s.get("createdAt"), (int, float)) or s["createdAt"] >= after)
            ]
            items, token = _page(sessions, params)
            out = {"sessions": [{k: s[k] for k in SUMMARY_KEYS if k in s} for s in items]}
        elif request.operation == "ListJobRuns":  # the world has no job runs: the sessions are what is spoiled
            if params["applicationId"] not in world.sessions:
                raise ApiError("ResourceNotFoundException", f"Application {params['applicationId']} does not exist")
            out = {"jobRuns": []}
            token = None
        elif request.operation == "GetJobRun":
            raise ApiError("ResourceNotFoundException", f"Job run {params['jobRunId']} does not exist")
        elif request.operation == "GetApplication":
            app = next((a for a in world.applications if a.get("id") == params["applicationId"]), None)
            if app is None:
                raise ApiError("ResourceNotFoundException", f"Application {params['applicationId']} does not exist")
            app = dict(app)
            app["applicationId"] = app.pop("id")
            return {"application": app}
        else:
            candidates = world.sessions.get(params["applicationId"], [])
            session = next((s for s in candidates if s.get("sessionId") == params["sessionId"]), None)
            if session is None:
                raise ApiError("ResourceNotFoundException", f"Session {params['sessionId']} does not exist")
            return {"session": session}
        if token:
            out["nextToken"] = token
        return out

    def make_server(self, address: tuple[str, int]) -> TrackingServer:
        return _Server(address, self)


def _page(items: list[JsonObject], params: Mapping[str, str]) -> tuple[list[JsonObject], str | None]:
    """A page of ``maxResults`` items; the token is the offset of the next one (an unknown token: 0)."""
    try:
        limit = max(1, min(50, int(params.get("maxResults", "50"))))
    except ValueError:
        limit = 50
    token = params.get("nextToken", "")
    start = int(token[3:]) if token.startswith("off") and token[3:].isdigit() else 0
    more = start + limit < len(items)
    return items[start:start + limit], f"off{start + limit}" if more else None


class _Handler(KeepAliveHandler):
    server: _Server

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        response = self.server.endpoint.answer(self.command, self.path)
        framing = "Transfer-Encoding: chunked" if response.chunked else f"Content-Length: {len(response.body)}"
        headers = [
            f"Content-Type: {response.content_type}",
            framing,
            "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        if not response.chunked and len(response.body) <= LARGE_BODY_BYTES:
            write_response(self, response.status, headers, response.body)
            return
        # A large body is written piece by piece from the bytes it is (no copy): a test measuring what the
        # client allocates shares this process.
        write_response(self, response.status, headers, b"")
        body = memoryview(response.body)
        size = response.chunked or LARGE_BODY_BYTES
        try:
            for start in range(0, len(body), size):
                piece = body[start:start + size]
                if response.chunked:
                    self.wfile.write(b"%x\r\n" % len(piece))
                self.wfile.write(piece)
                if response.chunked:
                    self.wfile.write(b"\r\n")
            if response.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: as it may
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(TrackingServer):
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], endpoint: HostileEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(address, _Handler)
