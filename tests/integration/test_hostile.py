"""The exporter against a hostile EMR Serverless endpoint (issue 7): every case spoils one response or
one object, and the exporter must still serve every scrape.

For each case the exporter runs as a real process against ``tests.helpers.hostile_endpoint`` with a 3 s
collection timeout and is scraped three times. Every scrape answers 200 within the collection timeout
plus one second; its body passes ``promtool check metrics`` and has no duplicate series; ``/readyz``
turns 200; the bad call or object is visible in ``emr_serverless_api_requests_total`` (outcome
``InvalidResponse``, ``PageLimitExceeded``, ``ResponseTooLarge`` or ``Other``) or
``emr_serverless_invalid_objects_total`` (a GetSession answer that is an invalid response is both: the call
counted, its one session dropped);
the untouched application and sessions are still exported; the log has no traceback and a bounded
number of lines; nothing calls the endpoint after the last scrape has been answered.

The cases run in parallel (one exporter process each) in one module-scoped fixture, so the whole
matrix costs about as much as its slowest few cases; each parametrized test reads its own outcome.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.hostile_endpoint import (
    ALL_SESSIONS,
    BAD_APP,
    BAD_SESSION,
    BAD_SIBLING,
    GOOD_APP,
    GOOD_BUSY,
    GOOD_IDLE,
    GOOD_SESSIONS,
    HostileEndpoint,
    JsonObject,
    Request,
    Response,
    error_response,
)
from tests.helpers.service_model import MODEL, validate
from tests.helpers.support import MAX_LABEL_LENGTH, aws_env, free_port, sanitized

COLLECTION_TIMEOUT = 3.0
SCRAPES = 3
# Collections in one case: the one at start-up (for /readyz) and one per scrape.
COLLECTIONS = 1 + SCRAPES
# Start-up and shutdown lines, then at most 2 per collection (one per problem, one per incomplete run).
MAX_LOG_LINES = 4 + 2 * COLLECTIONS
PARALLEL_CASES = 6
# Characters of Unicode category Cc; only the line ends of the format itself may be in a body.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
OUTCOME_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
HTML = b"<!DOCTYPE html><html><head><title>502</title></head><body><h1>Gateway</h1></body></html>"
LONG_CODE_WITH_NEWLINE = "Boom" + "x" * 2048 + "\nInjected: header"



# --- what a case expects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calls:
    """``api_requests_total{operation, outcome}`` > 0: a failed call; ``up`` is 0."""

    operation: str
    outcome: str


@dataclass(frozen=True)
class Dropped:
    """``invalid_objects_total{kind}`` > 0: a malformed object dropped; alone it leaves ``up`` at 1."""

    kind: str


@dataclass(frozen=True)
class DroppedCall:
    """A GetSession answer that is an invalid response: counted as ``InvalidResponse`` and, being the one
    session, dropped as an invalid object: ``up`` stays 1 (the lead's rule, commit "GetSession: a response
    botocore cannot parse is one malformed session, dropped and counted, not a target down")."""

    operation: str = "GetSession"
    outcome: str = "InvalidResponse"
    kind: str = "session"


@dataclass(frozen=True)
class Clean:
    """Nothing to drop and no failed call: odd but valid data, exported (with sanitized labels)."""


Signal = Calls | Dropped | DroppedCall | Clean
Spoil = Callable[[HostileEndpoint], None]


@dataclass(frozen=True)
class Case:
    id: str
    spoil: Spoil
    signal: Signal
    exported: frozenset[str] = ALL_SESSIONS  # sessions that must be exported on the last scrape
    absent: frozenset[str] = frozenset()  # sessions that must not be
    applications: frozenset[str] = frozenset({GOOD_APP, BAD_APP})  # applications that must be exported
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # session id -> session_info labels
    tag_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # session id -> session_tags labels
    config: Mapping[str, Any] = field(default_factory=dict)  # merged into the `aws` section
    max_calls: Mapping[str, int] = field(default_factory=dict)  # operation -> calls over the whole case


# --- spoilers ------------------------------------------------------------------------------------------


def respond(operation: str, response: Response) -> Spoil:
    match = {"ListSessions": {"applicationId": BAD_APP}, "GetSession": {"sessionId": BAD_SESSION},
             "GetApplication": {"applicationId": BAD_APP}}.get(operation)
    return lambda endpoint: endpoint.respond(operation, response, match=match)


def session(mutate: Callable[[JsonObject], object], operations: tuple[str, ...] = ("ListSessions", "GetSession"),
            ) -> Spoil:
    return lambda endpoint: endpoint.mutate_session(BAD_SESSION, mutate, operations=operations)


def application(mutate: Callable[[JsonObject], object]) -> Spoil:
    return lambda endpoint: endpoint.mutate_application(BAD_APP, mutate)


def capacity(mutate: Callable[[JsonObject], object]) -> Spoil:
    """Spoil what only GetApplication returns of the bad application."""
    return lambda endpoint: endpoint.mutate_application(BAD_APP, mutate, operations=("GetApplication",))


def setter(**values: Any) -> Callable[[JsonObject], object]:
    return lambda obj: obj.update(values)


def dropper(key: str) -> Callable[[JsonObject], object]:
    return lambda obj: obj.pop(key, None)


def utilization(value: float | str) -> Callable[[JsonObject], object]:
    return lambda obj: obj["totalResourceUtilization"].update(vCPUHour=value)


def tag(value: Any) -> Callable[[JsonObject], object]:
    return lambda obj: obj["tags"].update(team=value)


def raw_bytes(operation: str, placeholder: str, raw: bytes) -> Callable[[HostileEndpoint], None]:
    """Put bytes no JSON encoder writes (invalid UTF-8) where ``placeholder`` is in the body."""
    return lambda endpoint: endpoint.filter_body(
        operation, lambda request, body: body.replace(placeholder.encode(), raw)
    )


def both(*spoils: Spoil) -> Spoil:
    def apply(endpoint: HostileEndpoint) -> None:
        for spoil in spoils:
            spoil(endpoint)

    return apply


def answer_for_sibling(endpoint: HostileEndpoint) -> None:
    """GetSession of the victim answers with its sibling: the id is not the one asked for."""
    sibling = endpoint.world.find_session(BAD_SIBLING)
    assert sibling is not None

    def swap(request: Request, payload: Any) -> Any:
        return {"session": dict(sibling)}

    endpoint.transform("GetSession", swap, match={"sessionId": BAD_SESSION})


def endless(operation: str, mode: str) -> Spoil:
    match = {"applicationId": BAD_APP} if operation == "ListSessions" else None
    return lambda endpoint: endpoint.endless_pages(operation, mode, match=match)


# --- the matrix -----------------------------------------------------------------------------------------

GS_ONLY = ("GetSession",)  # a field only GetSession returns
NOT_BAD_APP = GOOD_SESSIONS  # a failed listing of the bad application leaves the good one's sessions
NOT_VICTIM = ALL_SESSIONS - {BAD_SESSION}
NAME_CR = "line one\rline two"
NAME_NUL = "nul\x00inside"
NAME_SURROGATE = "lone \udc80 surrogate"
NAME_CONTROLS = "tab\tnewline\nescape\x1bdel\x7fnel\x85end"
NAME_LONG = "long-" + "界" * 3000
NAME_AT_BOUND = "界" * 256  # the model's bound for a session's name
HUGE = "x" * 10_000_000
TAG_CR = "team\rx"
TAG_NUL = "te\x00am"
WHOLE_RESPONSES: dict[str, Response] = {
    "invalid-json": Response(200, b'{"applications": [{"id": '),
    "empty-200": Response(200, b""),
    "array-200": Response(200, b'[{"id": "00badapplication0002"}]'),
    "html-200": Response(200, HTML, content_type="text/html"),
    "invalid-utf8-200": Response(200, b'{"applications": [], "sessions": [], "session": {"name": "\xff\xfe"}}'),
}
MISSING_KEY = {"ListApplications": "applications", "ListSessions": "sessions", "GetSession": "session"}
OPERATION_SCOPE = {
    # operation -> (sessions still exported, applications still exported) when that call fails
    "ListApplications": (frozenset[str](), frozenset[str]()),
    "ListSessions": (NOT_BAD_APP, frozenset({GOOD_APP, BAD_APP})),
    "GetSession": (NOT_VICTIM, frozenset({GOOD_APP, BAD_APP})),
    "GetApplication": (ALL_SESSIONS, frozenset({GOOD_APP, BAD_APP})),  # only its capacity is missing
}


def failed_call(case_id: str, operation: str, spoil: Spoil, outcome: str = "InvalidResponse", **kw: Any) -> Case:
    exported, applications = OPERATION_SCOPE[operation]
    if operation == "GetSession" and outcome == "InvalidResponse":
        # The response is the one session: an invalid session, dropped; the target stays up.
        return Case(case_id, spoil, DroppedCall(), exported=exported, applications=applications,
                    absent=frozenset({BAD_SESSION}), **kw)
    return Case(case_id, spoil, Calls(operation, outcome), exported=exported, applications=applications, **kw)


def dropped_session(case_id: str, spoil: Spoil, **kw: Any) -> Case:
    return Case(case_id, spoil, Dropped("session"), exported=NOT_VICTIM, absent=frozenset({BAD_SESSION}), **kw)


def dropped_application(case_id: str, spoil: Spoil) -> Case:
    # The bad application is dropped, and with it its sessions: nothing lists them.
    return Case(case_id, spoil, Dropped("application"), exported=GOOD_SESSIONS, absent=frozenset({BAD_SESSION}),
                applications=frozenset({GOOD_APP}))


def listing_bound(operation: str, pages: int) -> dict[str, int]:
    """Calls of a listing over a case when each listing of the spoiled one stops within ``pages``:
    ListApplications once per collection; ListSessions at most 3 listings per application per
    collection (active ones, a creation-time window, a look-back), the good application's in one page."""
    if operation == "ListApplications":
        return {operation: COLLECTIONS * pages}
    return {operation: COLLECTIONS * 3 * (pages + 1)}


def build_cases() -> list[Case]:
    cases = [Case("baseline", lambda endpoint: None, Clean())]
    for operation in ("ListApplications", "ListSessions", "GetSession"):
        short = {"ListApplications": "la", "ListSessions": "ls", "GetSession": "gs"}[operation]
        for name, response in WHOLE_RESPONSES.items():
            cases.append(failed_call(f"{short}-{name}", operation, respond(operation, response)))
        missing = Response(200, b"{}")
        missing_id = f"{short}-missing-{MISSING_KEY[operation]}-key"
        cases.append(failed_call(missing_id, operation, respond(operation, missing)))
        wrong = Response(200, json.dumps({MISSING_KEY[operation]: "not a list or an object"}).encode())
        cases.append(failed_call(f"{short}-wrong-top-level-type", operation, respond(operation, wrong)))

    cases += [
        # Error codes: bounded outcome values, whatever AWS (or a proxy) says.
        failed_call("gs-2kb-error-code-with-newline", "GetSession",
                    respond("GetSession", error_response(LONG_CODE_WITH_NEWLINE, in_header=False)), outcome="Other"),
        failed_call("ls-2kb-error-code-in-header", "ListSessions",
                    respond("ListSessions", error_response("Q" * 2048)), outcome="Other"),
        failed_call("gs-unknown-error-code", "GetSession",
                    respond("GetSession", error_response("BrandNewFancyException")), outcome="Other"),
        # Endless pages: a repeated token ends the listing as an invalid response; a page limit as its own.
        failed_call("la-repeated-next-token", "ListApplications", endless("ListApplications", "repeat"),
                    max_calls=listing_bound("ListApplications", pages=3)),
        failed_call("ls-repeated-next-token", "ListSessions", endless("ListSessions", "repeat"),
                    max_calls=listing_bound("ListSessions", pages=3)),
        failed_call("ls-next-token-cycle", "ListSessions", endless("ListSessions", "cycle"),
                    max_calls=listing_bound("ListSessions", pages=5)),
        failed_call("la-ever-new-next-token", "ListApplications", endless("ListApplications", "new"),
                    outcome="PageLimitExceeded", config={"max_pages": 20},
                    max_calls=listing_bound("ListApplications", pages=21)),
        failed_call("ls-ever-new-next-token", "ListSessions", endless("ListSessions", "new"),
                    outcome="PageLimitExceeded", config={"max_pages": 20},
                    max_calls=listing_bound("ListSessions", pages=21)),
        # Malformed applications: dropped, the other one exported.
        dropped_application("app-state-number", application(setter(state=42))),
        dropped_application("app-state-object", application(setter(state={"name": "STARTED"}))),
        dropped_application("app-state-null", application(setter(state=None))),
        dropped_application("app-missing-arn", application(dropper("arn"))),
        dropped_application("app-missing-id", application(dropper("id"))),
        dropped_application("app-missing-updatedAt", application(dropper("updatedAt"))),
        dropped_application("app-name-number", application(setter(name=7))),
        # botocore cannot parse it: the whole listing is an invalid response.
        failed_call("app-createdAt-garbage", "ListApplications", application(setter(createdAt="yesterday"))),
        # Malformed sessions: dropped, counted, the rest exported, up stays 1.
        dropped_session("session-state-number", session(setter(state=3))),
        dropped_session("session-state-object", session(setter(state={"value": "IDLE"}))),
        dropped_session("session-state-null", session(setter(state=None))),
        dropped_session("session-tags-list", session(setter(tags=["team", "data"]), GS_ONLY)),
        dropped_session("session-tag-value-number", session(tag(42), GS_ONLY)),
        dropped_session("session-name-number", session(setter(name=12))),
        dropped_session("session-missing-arn", session(dropper("arn"))),
        dropped_session("session-missing-sessionId", session(dropper("sessionId"))),
        dropped_session("session-missing-updatedAt", session(dropper("updatedAt"))),
        dropped_session("session-vCPUHour-string", session(utilization("a lot"), GS_ONLY)),
        dropped_session("session-idleTimeoutMinutes-string", session(setter(idleTimeoutMinutes="soon"), GS_ONLY)),
        dropped_session("session-utilization-negative", session(utilization(-1.5), GS_ONLY)),
        dropped_session("session-utilization-nan", session(utilization(math.nan), GS_ONLY)),
        dropped_session("session-utilization-infinity", session(utilization(math.inf), GS_ONLY)),
        dropped_session("session-createdAt-year-5138", session(setter(createdAt=1e11))),
        dropped_session("gs-answers-for-another-session", answer_for_sibling),
        # Malformed GetApplication answers: the capacity is dropped and counted; the application (from its
        # summary) and its sessions are exported and the target stays up. A failed call is a failed call.
        Case("ga-html-200", respond("GetApplication", Response(200, HTML, content_type="text/html")),
             DroppedCall("GetApplication", "InvalidResponse", "application")),
        failed_call("ga-unknown-error-code", "GetApplication",
                    respond("GetApplication", error_response("BrandNewFancyException")), outcome="Other"),
        Case("ga-cpu-garbage", capacity(lambda a: a["maximumCapacity"].update(cpu="lots")), Dropped("application")),
        Case("ga-memory-in-mb", capacity(lambda a: a["maximumCapacity"].update(memory="3000 MB")),
             Dropped("application")),
        Case("ga-worker-count-negative", capacity(lambda a: a["initialCapacity"]["Driver"].update(workerCount=-1)),
             Dropped("application")),
        Case("ga-initial-capacity-list", capacity(setter(initialCapacity=[{"workerCount": 1}])),
             Dropped("application")),
        Case("ga-10000-worker-types", capacity(setter(initialCapacity={
            f"Worker{i}": {"workerCount": 1} for i in range(10_000)})), Dropped("application")),
        Case("ga-answers-for-another-application", capacity(setter(applicationId=GOOD_APP)),
             Dropped("application")),
        # Timestamps botocore itself cannot parse: the call is an invalid response.
        failed_call("session-createdAt-garbage", "ListSessions", session(setter(createdAt="last tuesday"))),
        failed_call("session-createdAt-1e20", "ListSessions", session(setter(createdAt=1e20))),
        failed_call("session-startedAt-minus-1e12", "GetSession", session(setter(startedAt=-1e12), GS_ONLY)),
        # Label values: any string from AWS, sanitized, never an invalid exposition.
        Case("session-name-carriage-return", session(setter(name=NAME_CR)), Clean(),
             labels={BAD_SESSION: {"session_name": sanitized(NAME_CR)}}),
        Case("session-name-nul", session(setter(name=NAME_NUL)), Clean(),
             labels={BAD_SESSION: {"session_name": sanitized(NAME_NUL)}}),
        Case("session-name-lone-surrogate", session(setter(name=NAME_SURROGATE)), Clean(),
             labels={BAD_SESSION: {"session_name": sanitized(NAME_SURROGATE)}}),
        Case("session-name-c0-c1-del", session(setter(name=NAME_CONTROLS)), Clean(),
             labels={BAD_SESSION: {"session_name": sanitized(NAME_CONTROLS)}}),
        # Longer than botocore's model allows (a name at most 256 characters): an invalid session.
        dropped_session("session-name-3000-chars", session(setter(name=NAME_LONG))),
        Case("tag-value-carriage-return", session(tag(TAG_CR), GS_ONLY), Clean(),
             labels={BAD_SESSION: {"tag_team": sanitized(TAG_CR)}},
             tag_labels={BAD_SESSION: {"tag_team": sanitized(TAG_CR)}}),
        Case("tag-value-nul", session(tag(TAG_NUL), GS_ONLY), Clean(),
             labels={BAD_SESSION: {"tag_team": sanitized(TAG_NUL)}},
             tag_labels={BAD_SESSION: {"tag_team": sanitized(TAG_NUL)}}),
        Case("tag-key-with-newline", session(lambda s: s["tags"].update({"cost\ncenter": "42"}), GS_ONLY),
             Clean(), tag_labels={BAD_SESSION: {"tag_cost_center": "42"}}),
        Case("app-name-carriage-return", application(setter(name="etl\r\nprod")), Clean(),
             labels={BAD_SESSION: {"application_name": sanitized("etl\r\nprod")}}),
        # Invalid UTF-8 bytes cannot be decoded at all: the call that carries them is an invalid response.
        failed_call("session-name-invalid-utf8", "ListSessions",
                    both(session(setter(name="RAW-NAME")), raw_bytes("ListSessions", "RAW-NAME", b"bad\xc3\x28name"))),
        failed_call("tag-value-invalid-utf8", "GetSession",
                    both(session(tag("RAW-TAG"), GS_ONLY), raw_bytes("GetSession", "RAW-TAG", b"\xed\xa0\x80"))),
        # The service model's length bounds: at the bound exported, one over it an invalid object.
        Case("session-name-at-the-bound", session(setter(name=NAME_AT_BOUND)), Clean(),
             labels={BAD_SESSION: {"session_name": NAME_AT_BOUND}}),
        dropped_session("session-name-over-the-bound", session(setter(name=NAME_AT_BOUND + "x"))),
        dropped_session("tag-value-over-the-bound", session(tag("v" * 257), GS_ONLY)),
        dropped_session("session-stateDetails-over-the-bound", session(setter(stateDetails="d" * 1025))),
        dropped_application("app-stateDetails-over-the-bound", application(setter(stateDetails="d" * 257))),
        # 10 MB of stateDetails: the body is over the bound on what one response may allocate.
        failed_call("la-10mb-stateDetails", "ListApplications", application(setter(stateDetails=HUGE)),
                    outcome="ResponseTooLarge"),
        failed_call("ls-10mb-stateDetails", "ListSessions",
                    session(setter(stateDetails=HUGE), ("ListSessions",)), outcome="ResponseTooLarge"),
        Case("gs-10mb-stateDetails", session(setter(stateDetails=HUGE), GS_ONLY),
             DroppedCall("GetSession", "ResponseTooLarge", "session"), exported=NOT_VICTIM,
             absent=frozenset({BAD_SESSION})),
        Case("gs-10mb-chunked", respond("GetSession", Response(200, b'{"session": "' + HUGE.encode() + b'"}',
                                                              chunked=64 * 1024)),
             DroppedCall("GetSession", "ResponseTooLarge", "session"), exported=NOT_VICTIM,
             absent=frozenset({BAD_SESSION})),
        Case("ga-10mb-stateDetails", capacity(setter(stateDetails=HUGE)),
             DroppedCall("GetApplication", "ResponseTooLarge", "application")),
    ]
    return cases


CASES = build_cases()
CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES), "case ids must be unique"


# --- running a case -------------------------------------------------------------------------------------


@dataclass
class Scrape:
    status: int | None  # None: no HTTP answer at all (connection closed, timeout)
    seconds: float
    body: str
    error: str = ""


@dataclass
class Outcome:
    case: Case
    exit_code_at_start: int | None = None  # the process died before serving
    ready_before_scrapes: bool = False
    ready_after_scrapes: bool = False
    scrapes: list[Scrape] = field(default_factory=list)
    alive_at_end: bool = False
    exit_code: int | None = None
    stderr: str = ""
    promtool: list[str] = field(default_factory=list)  # findings per scrape ("" when clean)
    calls: dict[str, int] = field(default_factory=dict)
    calls_after_last_scrape: int = 0


def http_get(url: str, timeout: float) -> tuple[int | None, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace"), ""
    except (urllib.error.URLError, OSError) as err:  # refused, reset, closed without answer, timed out
        return None, "", f"{type(err).__name__}: {err}"


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def promtool(text: str) -> str:
    result = subprocess.run(["promtool", "check", "metrics"], input=text.encode("utf-8", "surrogateescape"),
                            capture_output=True, timeout=30, check=False)
    findings = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    return findings if findings or result.returncode == 0 else f"exit {result.returncode}"


def run_case(case: Case, workdir: Path) -> Outcome:
    outcome = Outcome(case)
    with HostileEndpoint() as endpoint:
        case.spoil(endpoint)
        config = {
            "targets": [{"region": "us-east-1", "endpoint_url": endpoint.url, "name": "hostile"}],
            "metrics": {"tag_labels": ["team"]},
            "aws": {"max_attempts": 1, "connect_timeout_seconds": 1, "read_timeout_seconds": 2, **case.config},
            "collection": {"timeout_seconds": COLLECTION_TIMEOUT},
        }
        config_path = workdir / f"{case.id}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--config.file", str(config_path),
             "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json"],
            # faulthandler: a crash in native code (exit -11) leaves the Python stacks in the log.
            env=aws_env(PYTHONFAULTHANDLER="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            errors="replace",
        )
        try:
            serving = wait_until(lambda: process.poll() is not None or http_get(f"{url}/healthz", 2)[0] == 200, 30)
            if not serving or process.poll() is not None:
                outcome.exit_code_at_start = process.poll()
                return outcome
            outcome.ready_before_scrapes = wait_until(
                lambda: http_get(f"{url}/readyz", 2)[0] == 200, COLLECTION_TIMEOUT + 3
            )
            for _ in range(SCRAPES):
                started = time.monotonic()
                status, body, error = http_get(f"{url}/metrics", COLLECTION_TIMEOUT + 1)
                outcome.scrapes.append(Scrape(status, time.monotonic() - started, body, error))
            last_answer = time.monotonic()
            outcome.ready_after_scrapes = http_get(f"{url}/readyz", 2)[0] == 200
            # Nothing may run on once the last scrape is answered: no listing, no queued call.
            time.sleep(max(0.0, last_answer + 0.3 - time.monotonic()))
            settled = sum(endpoint.calls.values())
            time.sleep(0.7)
            outcome.calls_after_last_scrape = sum(endpoint.calls.values()) - settled
            outcome.alive_at_end = process.poll() is None
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                _, outcome.stderr = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                _, outcome.stderr = process.communicate()
            outcome.exit_code = process.returncode
            outcome.calls = dict(endpoint.calls)
    outcome.promtool = [promtool(scrape.body) if scrape.status == 200 else "" for scrape in outcome.scrapes]
    return outcome


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Iterator[dict[str, Outcome]]:
    """Every selected case, run once, in parallel."""
    selected: set[str] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if isinstance(item, pytest.Function) and item.module is sys.modules[__name__] and callspec is not None:
            case_id = callspec.params.get("case_id")
            if isinstance(case_id, str):
                selected.add(case_id)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(PARALLEL_CASES) as pool:
        futures = {case_id: pool.submit(run_case, CASES_BY_ID[case_id], Path(tmp)) for case_id in sorted(selected)}
        yield {case_id: future.result() for case_id, future in futures.items()}


# --- reading an exposition ------------------------------------------------------------------------------


@dataclass
class Exposition:
    samples: list[tuple[str, dict[str, str], float]]
    problem: str = ""

    @classmethod
    def parse(cls, text: str) -> Exposition:
        try:
            return cls([(s.name, dict(s.labels), float(s.value))
                        for family in text_string_to_metric_families(text) for s in family.samples])
        except Exception as err:  # an invalid exposition is a finding of its own, reported below
            return cls([], f"unparseable: {type(err).__name__}: {err}")

    def select(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [(ls, v) for n, ls, v in self.samples if n == name and all(ls.get(k) == x for k, x in labels.items())]

    def total(self, name: str, **labels: str) -> float:
        return sum(v for _, v in self.select(name, **labels))

    def ids(self, name: str, label: str) -> set[str]:
        return {ls[label] for ls, _ in self.select(name) if label in ls}


def describe(outcome: Outcome) -> str:
    scrapes = [(s.status, round(s.seconds, 2), s.error) for s in outcome.scrapes]
    crashed = outcome.exit_code is not None and outcome.exit_code < 0
    tail = "\n".join(outcome.stderr.splitlines()[-40 if crashed else -6:])
    return (f"[{outcome.case.id}] start exit={outcome.exit_code_at_start} scrapes={scrapes} "
            f"alive at end={outcome.alive_at_end} exit={outcome.exit_code}\nstderr tail:\n{tail}")


# --- the tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_hostile_response(outcomes: dict[str, Outcome], case_id: str) -> None:
    outcome = outcomes[case_id]
    case = outcome.case
    info = describe(outcome)
    assert outcome.exit_code_at_start is None, f"the exporter did not start\n{info}"

    # Every scrape answers 200 within the collection timeout plus one second.
    assert len(outcome.scrapes) == SCRAPES, info
    for scrape in outcome.scrapes:
        assert scrape.status == 200, info
        assert scrape.seconds <= COLLECTION_TIMEOUT + 1, info
    assert outcome.ready_before_scrapes and outcome.ready_after_scrapes, f"/readyz never turned 200\n{info}"
    assert outcome.alive_at_end, info

    # A valid exposition: promtool has no finding, the parser reads it, no series twice.
    for index, (scrape, findings) in enumerate(zip(outcome.scrapes, outcome.promtool, strict=True)):
        assert not findings, f"promtool check metrics, scrape {index + 1}:\n{findings[:2000]}\n{info}"
        # promtool 2.42 lets a raw CR or NUL in a label value pass; parsers that split lines on CR do not.
        raw = RAW_CONTROL.search(scrape.body)
        context = scrape.body[max(0, raw.start() - 80):raw.end() + 20] if raw else ""
        assert raw is None, f"raw control character in scrape {index + 1}: {context!r}"
        parsed = Exposition.parse(scrape.body)
        assert not parsed.problem, parsed.problem
        keys = [(name, tuple(sorted(labels.items()))) for name, labels, _ in parsed.samples]
        duplicates = {key for key in keys if keys.count(key) > 1}
        assert not duplicates, f"duplicate series: {sorted(duplicates)[:3]}"
    last = Exposition.parse(outcome.scrapes[-1].body)

    # Bounded outcome values, whatever error code came back.
    outcomes_seen = {ls["outcome"] for ls, _ in last.select("emr_serverless_api_requests_total")}
    assert all(value == "ok" or OUTCOME_VALUE.fullmatch(value) for value in outcomes_seen), outcomes_seen

    # The bad call or object is visible, and `up` says what the contract says.
    up = [v for _, v in last.select("emr_serverless_up", target="hostile")]
    invalid_sessions = last.total("emr_serverless_invalid_objects_total", kind="session")
    invalid_applications = last.total("emr_serverless_invalid_objects_total", kind="application")
    signal = case.signal
    if isinstance(signal, Calls):
        counted = last.total("emr_serverless_api_requests_total", operation=signal.operation, outcome=signal.outcome)
        assert counted > 0, f"no {signal.operation} call counted as {signal.outcome}: {sorted(outcomes_seen)}\n{info}"
        assert up == [0.0], info
    elif isinstance(signal, DroppedCall):
        counted = last.total("emr_serverless_api_requests_total", operation=signal.operation, outcome=signal.outcome)
        assert counted > 0, f"no {signal.operation} call counted as {signal.outcome}: {sorted(outcomes_seen)}\n{info}"
        dropped = invalid_sessions if signal.kind == "session" else invalid_applications
        assert dropped > 0, f"no {signal.kind} counted as invalid\n{info}"
        assert up == [1.0], f"one malformed GetSession answer must not make the target down\n{info}"
    elif isinstance(signal, Dropped):
        assert last.select("emr_serverless_invalid_objects_total"), f"no invalid_objects_total series\n{info}"
        dropped = invalid_sessions if signal.kind == "session" else invalid_applications
        assert dropped > 0, f"no {signal.kind} counted as invalid\n{info}"
        assert up == [1.0], f"an invalid object alone must not make the target down\n{info}"
    else:
        assert up == [1.0], info
        assert invalid_sessions == 0 and invalid_applications == 0, "valid data counted as invalid"
        assert "InvalidResponse" not in outcomes_seen, outcomes_seen

    # What the spoiled response did not touch is still exported.
    sessions = last.ids("emr_serverless_session_info", "session_id")
    applications = last.ids("emr_serverless_application_info", "application_id")
    assert case.exported <= sessions, f"missing sessions {sorted(case.exported - sessions)}\n{info}"
    assert not case.absent & sessions, f"malformed sessions exported: {sorted(case.absent & sessions)}"
    assert case.applications <= applications, f"missing applications {sorted(case.applications - applications)}"
    if GOOD_BUSY in case.exported:
        assert last.total("emr_serverless_session_vcpu_seconds_total", session_id=GOOD_BUSY) == 1.5 * 3600
    capacity = "emr_serverless_application_maximum_capacity_vcpus"
    if GOOD_APP in case.applications:
        assert last.total(capacity, application_id=GOOD_APP) == 400, f"the good application's capacity\n{info}"
    if case.id.startswith("ga-"):
        assert not last.select(capacity, application_id=BAD_APP), "a capacity GetApplication did not give"
    for session_id, expected in case.labels.items():
        series = last.select("emr_serverless_session_info", session_id=session_id)
        assert len(series) == 1, f"{session_id}: {len(series)} session_info series\n{info}"
        for label, value in expected.items():
            assert series[0][0].get(label) == value, (label, series[0][0].get(label), value)
    for session_id, expected in case.tag_labels.items():
        series = last.select("emr_serverless_session_tags", session_id=session_id)
        assert len(series) == 1, f"{session_id}: {len(series)} session_tags series"
        for label, value in expected.items():
            assert series[0][0].get(label) == value, (label, series[0][0].get(label), value)
    for labels, _ in last.select("emr_serverless_session_info"):
        assert all(len(value) <= MAX_LABEL_LENGTH for value in labels.values())

    # Bounded work: no endless listing, and nothing still calling once the scrapes are answered.
    for operation, bound in case.max_calls.items():
        assert outcome.calls.get(operation, 0) <= bound, (operation, outcome.calls, bound)
    assert outcome.calls_after_last_scrape == 0, f"{outcome.calls_after_last_scrape} calls after the last scrape"

    # One log line per problem, no traceback, and the process stops cleanly.
    assert "Traceback" not in outcome.stderr, info
    lines = outcome.stderr.splitlines()
    assert len(lines) <= MAX_LOG_LINES, f"{len(lines)} log lines for {COLLECTIONS} collections\n{info}"
    for line in lines:
        json.loads(line)
    assert outcome.exit_code == 0, info


def test_the_baseline_world_holds_to_the_service_model() -> None:
    """The endpoint's good answers are what AWS would send, so every finding above is the spoil's doing."""
    with HostileEndpoint() as endpoint:
        answers = {
            "ListApplications": endpoint.answer("GET", "/applications?maxResults=50"),
            "ListSessions": endpoint.answer("GET", f"/applications/{BAD_APP}/sessions?maxResults=50"),
            "GetSession": endpoint.answer("GET", f"/applications/{GOOD_APP}/sessions/{GOOD_IDLE}"),
            "GetApplication": endpoint.answer("GET", f"/applications/{GOOD_APP}"),
        }
    for operation, answer in answers.items():
        assert answer.status == 200
        shape = MODEL.operation_model(operation).output_shape
        assert shape is not None
        assert validate(shape, json.loads(answer.body)) == [], operation
