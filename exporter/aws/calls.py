"""The EMR Serverless API as the exporter uses it: read-only calls, every page within bounds, every
attempt counted, every response checked (``exporter.model.session``) before anything else sees it.

Errors are told apart by their AWS error code, never by HTTP status (``ThrottlingException`` is not in
the emr-serverless model, so boto3 has no exception class for it). Retries are ours, not botocore's,
so that each one waits for the rate limit, backs off with jitter, and never outlives the deadline.
Every request sent is counted once: by its outcome, or as ``Timeout`` when the collection's deadline
passed while it was in flight. A response body larger than ``MAX_RESPONSE_BYTES`` is not read whole.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore
import botocore.config
import botocore.handlers
import botocore.session
import botocore.utils
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

from exporter import __version__
from exporter.common.deadline import Deadline
from exporter.common.logs import warn_once
from exporter.common.redaction import redact
from exporter.common.tokenbucket import RateLimits, TokenBucket
from exporter.config.schema import AwsConfig, RateLimitsConfig, TargetConfig
from exporter.model.kinds import DetailT, ObjectKind, SummaryT
from exporter.model.session import Application, ApplicationDetail, InvalidObject, convert, object_id

if TYPE_CHECKING:
    from mypy_boto3_emr_serverless import EMRServerlessClient

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
INVALID_RESPONSE = "InvalidResponse"
PAGE_LIMIT = "PageLimitExceeded"
RESPONSE_TOO_LARGE = "ResponseTooLarge"
TIMEOUT = "Timeout"  # a request in flight when the collection's deadline passed: abandoned
OTHER = "Other"
ROLE_SESSION_NAME = "emr-serverless-exporter"

# Codes worth retrying: throttling (botocore's list) and transient server or network trouble.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
TRANSIENT_CODES = frozenset({
    "RequestTimeout", "RequestTimeoutException", "InternalServerException", "InternalFailure",
    "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
    "ConnectionError", "HTTPClientError", "ProxyConnectionError",
})
# Every value the `outcome` label can take: what the emr-serverless and STS models and AWS's common
# errors define, botocore's own failures, and ours. Anything else is `Other` (bounded cardinality).
KNOWN_OUTCOMES = THROTTLING_CODES | TRANSIENT_CODES | frozenset({
    "ok", INVALID_RESPONSE, PAGE_LIMIT, RESPONSE_TOO_LARGE, TIMEOUT,
    "ResourceNotFoundException", "ValidationException", "ConflictException", "ServiceQuotaExceededException",
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
    "ExpiredTokenException", "ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch",
    "IncompleteSignature", "MissingAuthenticationToken", "RequestExpired", "OptInRequired",
    "NotAuthorized", "UnauthorizedOperation", "RegionDisabledException", "MalformedPolicyDocument",
    "PackedPolicyTooLarge", "IDPRejectedClaim", "InvalidIdentityToken", "IDPCommunicationError",
    "NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "SSLError",
    "UnknownEndpointError", "NoRegionError", "ParamValidationError", "InvalidEndpointConfigurationError",
})
MAX_MESSAGE_CHARS = 300
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 5.0
# A rate-limit slot is only taken if it leaves the call this long to finish before the deadline.
CALL_ROOM_SECONDS = 0.5
# The most bytes one response body may have. The largest answer the model allows for what the exporter reads,
# a ListSessions page of 50 summaries with every member at its bound, is ~350 KB of ASCII (~650 KB with every
# name and stateDetails character \u-escaped); a real GetSession or GetApplication is a few KB. Past it the
# body is not read on: a hostile or broken endpoint cannot make one call allocate more than about twice this.
MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
# botocore's model bounds a page token; a longer one is not a token AWS sends (and each one is kept).
MAX_TOKEN_CHARS = 1024

T = TypeVar("T")
Problem = tuple[str, str]  # (outcome, reason) of a response that is not what the model says


class ApiError(Exception):
    """A failed call, after retries: ``code`` is a bounded outcome (see KNOWN_OUTCOMES)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        message = clean_message(message)
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


class DeadlineReached(ApiError):
    """The collection's deadline came before this call could be made or finished."""

    def __init__(self, operation: str, reason: str = "deadline reached before the call finished") -> None:
        super().__init__(operation, TIMEOUT, reason)


class ResponseTooLarge(Exception):
    """A response body longer than the bound: not read on, its connection closed."""


class Deferred(Exception):
    """The rate limit has no token for this call before the deadline: it waits for a later collection."""


def outcome(code: str) -> str:
    return code if code in KNOWN_OUTCOMES else OTHER


def clean_message(message: str) -> str:
    """One short line with no secrets (URL userinfo, tokens, known secrets): error texts reach logs,
    metrics' neighbours and the unauthenticated landing page."""
    return redact(" ".join(str(message).split()))[:MAX_MESSAGE_CHARS]


@dataclass
class ListingProgress:
    """How far a listing got: the items of its pages so far, and the token of the next page. A listing the
    budget cut short resumes from here next collection instead of starting over (a first listing can be
    more pages than one collection's ListJobRuns budget, and would otherwise never finish)."""

    items: list[Any] = field(default_factory=list)
    seen_tokens: set[str] = field(default_factory=set)
    token: str | None = None

    def clear(self) -> None:
        self.items.clear()
        self.seen_tokens.clear()
        self.token = None


def deferral(error: BaseException) -> bool:
    """Out of budget, ours (rate limit, deadline) or AWS's (throttling after the retries): no error."""
    return isinstance(error, (Deferred, DeadlineReached)) or (
        isinstance(error, ApiError) and error.code in THROTTLING_CODES
    )


class ApiCallCounter:
    """Cumulative API requests sent by (operation, outcome) and dropped invalid objects by kind.

    A request is counted once: when its answer (or failure) comes, or, if the deadline of the collection
    that sent it passes first, as ``Timeout`` at the next snapshot; an answer that comes after that is not
    counted again (the collection that wanted it has given up on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._invalid: Counter[str] = Counter()
        self._in_flight: dict[int, tuple[str, Deadline]] = {}
        self._tickets = itertools.count()

    def add(self, operation: str, result: str) -> None:
        with self._lock:
            self._counts[(operation, outcome(result))] += 1

    def sent(self, operation: str, deadline: Deadline) -> int:
        """A request is about to be sent; ``answered`` counts it, with the ticket this returns."""
        ticket = next(self._tickets)
        with self._lock:
            self._in_flight[ticket] = (operation, deadline)
        return ticket

    def answered(self, ticket: int, operation: str, result: str) -> None:
        """Count the request's outcome, unless it was counted as ``Timeout`` already."""
        with self._lock:
            if self._in_flight.pop(ticket, None) is not None:
                self._counts[(operation, outcome(result))] += 1

    def add_invalid(self, kind: str) -> None:
        with self._lock:
            self._invalid[kind] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            for ticket, (operation, deadline) in list(self._in_flight.items()):
                if deadline.passed:  # abandoned: the collection that sent it has ended
                    del self._in_flight[ticket]
                    self._counts[(operation, TIMEOUT)] += 1
            return dict(self._counts)

    def invalid_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._invalid)


# --- clients -----------------------------------------------------------------------------------------


class _AssumedRoleProvider(CredentialProvider):
    METHOD = "assume-role"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def assume_role_session(
    base: boto3.Session,
    *,
    region: str,
    role_arn: str,
    external_id: str | None,
    time_fetcher: Callable[[], datetime] | None = None,
) -> boto3.Session:
    """A session acting as ``role_arn``; botocore refreshes the credentials before they expire.

    The source credentials are ``base``'s (environment, IRSA, instance role...), themselves refreshable.
    """
    extra_args = {"RoleSessionName": ROLE_SESSION_NAME}
    if external_id:
        extra_args["ExternalId"] = external_id
    sts_session = botocore.session.get_session()

    def create_sts_client(service: str, **kwargs: Any) -> Any:
        return sts_session.create_client(service, region_name=region, **kwargs)  # the regional STS endpoint

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=create_sts_client,
        source_credentials=base.get_credentials(),
        role_arn=role_arn,
        extra_args=extra_args,
    )
    credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials,
        method="assume-role",
        **({"time_fetcher": time_fetcher} if time_fetcher else {}),  # tests move time forward
    )
    session = botocore.session.get_session()
    session.register_component("credential_provider", CredentialResolver([_AssumedRoleProvider(credentials)]))
    return boto3.Session(botocore_session=session, region_name=region)


def make_client(
    aws: AwsConfig,
    *,
    region: str | None,
    endpoint_url: str | None,
    session: boto3.Session | None = None,
    deadline_seconds: float | None = None,
) -> EMRServerlessClient:
    """A client whose one attempt never outlives ``deadline_seconds`` (the collection timeout): a
    longer connect or read timeout would only pin a worker to a call whose answer comes too late."""
    limit = deadline_seconds or float("inf")
    config = botocore.config.Config(
        # One attempt per botocore call: EmrServerlessApi retries, so that every attempt is counted, waits
        # for the rate limit and stays inside the deadline (botocore's retry quota would also run dry
        # under sustained 5xx errors and silently stop retrying).
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=min(aws.connect_timeout_seconds, limit),
        read_timeout=min(aws.read_timeout_seconds, limit),
        # One pooled connection per request in flight, or urllib3 discards and reconnects.
        max_pool_connections=aws.max_concurrency,
        user_agent_extra=f"emr-serverless-exporter/{__version__}",
        # Our parameters are built here from validated ids, never from input: checking them again against
        # the service model costs CPU on every call.
        parameter_validation=False,
    )
    session = session or boto3.Session()
    # Epoch numbers (what EMR Serverless sends) as UTC datetimes: botocore's default makes them local-time
    # datetimes whose every utcoffset() (in parsing, and in each .timestamp()) is pure-Python dateutil.
    session._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
    client = session.client("emr-serverless", region_name=region, endpoint_url=endpoint_url, config=config)
    for event, handler, unique_id in UNNEEDED_HANDLERS:  # this client's copy of the hooks only
        client.meta.events.unregister(event, handler, unique_id=unique_id)
    endpoint = client._endpoint  # type: ignore[attr-defined]
    endpoint.http_session = BoundedBodies(endpoint.http_session, MAX_RESPONSE_BYTES)
    # botocore builds the User-Agent again after signing, only to add the SDK feature codes first used during
    # the call (telemetry for AWS, such as the credential source on a first call): a second build per call.
    # An older botocore (1.34, which pyproject allows) has neither the handler nor that telemetry.
    rebuild = getattr(getattr(client, "_user_agent_creator", None), "rebuild_and_replace_user_agent_handler", None)
    if rebuild is not None:
        client.meta.events.unregister("request-created.emr-serverless", rebuild)
    return client


# Hooks botocore runs on every call that these read-only, one-attempt calls do not need (unregistering
# one that a botocore version lacks is a no-op): retries are ours, so botocore's retry decision and its
# retry headers (a uuid4 per call) go; List/Get calls have no idempotency token; no Lambda recursion
# header; EMR Serverless has no API version header.
UNNEEDED_HANDLERS: tuple[tuple[str, Callable[..., Any] | None, str | None], ...] = (
    ("needs-retry.emr-serverless", None, "retry-config-emr-serverless"),
    ("request-created.emr-serverless", None, "seed-max-attempts-emr-serverless"),
    ("request-created", botocore.handlers.add_retry_headers, None),
    ("before-parameter-build", botocore.handlers.generate_idempotent_uuid, None),
    ("before-call", botocore.handlers.add_recursion_detection_header, None),
    ("before-call", botocore.handlers.inject_api_version_header_if_needed, None),
)


class BoundedBodies:
    """botocore's HTTP session, reading at most ``limit`` bytes of a response body.

    botocore reads every body whole inside its ``send``; here the request asks for the body as a stream,
    which is read in chunks and given up past the limit (its connection closed, not reused). Failures while
    reading are botocore's exceptions, as its ``send`` raises them."""

    def __init__(self, session: Any, limit: int) -> None:
        self._session = session
        self._limit = limit

    def send(self, request: Any) -> Any:
        streamed = request.stream_output
        request.stream_output = True  # the body is read below, within the limit
        response = self._session.send(request)
        if streamed:  # no such operation in this API; left as botocore does it
            return response
        raw = response.raw
        declared = str(response.headers.get("Content-Length", "")).strip()
        if declared.isdigit() and int(declared) > self._limit:
            _discard(raw)
            raise ResponseTooLarge(f"Content-Length {declared} is more than {self._limit} bytes")
        response.raw = _Read(self._read(raw, request.url))
        return response

    def _read(self, raw: Any, url: str) -> bytes:
        chunks, size = [], 0
        try:
            for chunk in raw.stream(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > self._limit:
                    _discard(raw)
                    raise ResponseTooLarge(f"the body is more than {self._limit} bytes")
                chunks.append(chunk)
        except ResponseTooLarge:
            raise
        except Urllib3SSLError as err:
            raise SSLError(endpoint_url=url, error=err) from None
        except Urllib3ReadTimeoutError as err:
            raise ReadTimeoutError(endpoint_url=url, error=err) from None
        except ProtocolError as err:
            raise ConnectionClosedError(error=err, endpoint_url=url) from None
        except Exception as err:
            raise HTTPClientError(error=err) from None
        return b"".join(chunks)

    def __getattr__(self, name: str) -> Any:  # close() and the rest: botocore's own
        return getattr(self._session, name)


class _Read:
    """A body already read, as ``AWSResponse.content`` streams it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._body


def _discard(raw: Any) -> None:
    """Close a connection whose body is left unread, and hand it back to the pool (which reconnects)."""
    raw.close()
    raw.release_conn()


def utc_timestamp(value: Any) -> datetime:
    """A wire timestamp: epoch seconds as a UTC datetime, anything else as botocore parses it. Out of
    range values raise, as botocore's parser does, and the response is invalid (``_attempt``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    return botocore.utils.parse_timestamp(value)


class RateLimitRegistry:
    """The token buckets of every AWS quota the exporter spends, one set per quota. Built once from the
    configuration (``exporter.wiring``) and handed to each target's ``connect``: targets with the same
    credentials, region and endpoint (the same account and region) get the same buckets, as AWS counts
    their calls together; another registry (another configuration) shares nothing with this one."""

    def __init__(self, limits: RateLimitsConfig) -> None:
        self._limits = {op: limit for op, limit in limits.by_operation().items() if limit.requests_per_second > 0}
        self._by_quota: dict[tuple[str, str, str], RateLimits] = {}
        self._lock = threading.Lock()

    def for_target(self, target: TargetConfig, region: str) -> RateLimits:
        """The buckets of the quota ``target`` spends in ``region``."""
        quota = (target.role_arn or "default credentials", region, target.endpoint_url or "")
        with self._lock:
            shared = self._by_quota.get(quota)
            if shared is None:
                buckets = {op: TokenBucket(rate.requests_per_second, rate.burst) for op, rate in self._limits.items()}
                shared = self._by_quota[quota] = RateLimits(buckets)
            return shared


def connect(
    aws: AwsConfig,
    target: TargetConfig,
    *,
    region: str,
    session: boto3.Session,
    deadline_seconds: float,
    label: str,
    rate_limits: RateLimitRegistry,
) -> EmrServerlessApi:
    """The API of one target: its credentials (the role it assumes, if any), its client, and the rate limits
    of the AWS quota it spends (from ``rate_limits``, built from ``aws.rate_limits``). Everything else
    ``aws`` configures is read here, ``max_concurrency`` included."""
    if target.role_arn:
        session = assume_role_session(session, region=region, role_arn=target.role_arn, external_id=target.external_id)
    client = make_client(aws, region=region, endpoint_url=target.endpoint_url, session=session,
                         deadline_seconds=deadline_seconds)
    return EmrServerlessApi(
        client, ApiCallCounter(), limits=rate_limits.for_target(target, region),
        max_attempts=aws.max_attempts, max_pages=aws.max_pages, max_concurrency=aws.max_concurrency, target=label,
        account_id=account_id_from_arn(target.role_arn or ""),
    )


def account_id_from_arn(arn: str) -> str:
    """``arn:aws:emr-serverless:us-east-1:123456789012:/applications/x`` -> ``123456789012``."""
    parts = arn.split(":", 5)
    account = parts[4] if len(parts) > 4 else ""
    return account if account.isdigit() and len(account) == 12 else ""


# --- the calls -----------------------------------------------------------------------------------------


class EmrServerlessApi:
    """The calls the exporter makes, each attempt counted in ``calls`` by operation and outcome.

    Its budget: at most ``max_concurrency`` calls in flight (the caller's worker pool reads it here) and
    the rate limits; ``account_id`` is the target's account as far as the credentials tell (a role's ARN)."""

    def __init__(
        self,
        client: EMRServerlessClient,
        calls: ApiCallCounter,
        *,
        limits: RateLimits | None = None,
        max_attempts: int = 5,
        max_pages: int = 1000,
        max_concurrency: int = 16,
        target: str = "",
        account_id: str = "",
    ) -> None:
        self._client = client
        self.calls = calls
        self.max_concurrency = max_concurrency
        self.account_id = account_id
        self._limits = limits or RateLimits({})
        self._max_attempts = max_attempts
        self._max_pages = max_pages
        self._target = target
        self._random = random.Random()

    def list_applications(self, deadline: Deadline, states: tuple[str, ...] = ()) -> list[Application]:
        params: dict[str, Any] = {"maxResults": 50}
        if states:
            params["states"] = list(states)
        return self._list("ListApplications", self._client.list_applications, params, deadline,
                          "applications", Application, "application")

    def rate_limited(self, operation: str) -> bool:
        return self._limits.limited(operation)

    def affordable(self, operation: str, seconds: float) -> float:
        """How many calls of ``operation`` the rate limit allows within ``seconds`` (infinite: no limit)."""
        return self._limits.affordable(operation, seconds)

    def list_objects(
        self,
        kind: ObjectKind[SummaryT, Any],
        application_id: str,
        deadline: Deadline,
        *,
        states: tuple[str, ...] = (),
        created_at_after: datetime | None = None,
        extra: Iterable[tuple[str, str]] = (),
        progress: ListingProgress | None = None,
    ) -> list[SummaryT]:
        """Every page of one application's listing of ``kind`` (ListSessions, ListJobRuns); ``extra``: more
        request members the kind's operation takes (a job-run ``mode``)."""
        params: dict[str, Any] = {"applicationId": application_id, "maxResults": 50, **dict(extra)}
        if states:
            params["states"] = list(states)
        if created_at_after is not None:
            params["createdAtAfter"] = created_at_after
        method = getattr(self._client, botocore.xform_name(kind.list_operation))
        summaries = self._list(kind.list_operation, method, params, deadline, kind.list_key, kind.summary, kind.name,
                               progress)
        return [s for s in summaries if self._belongs(kind, s.application_id, application_id, s.id)]

    def get_object(
        self, kind: ObjectKind[Any, DetailT], application_id: str, object_id: str, deadline: Deadline
    ) -> DetailT | None:
        """One object of ``kind`` (GetSession, GetJobRun), or None when AWS answered with an invalid one
        (dropped, counted, logged once). Raises Deferred when the rate limit has no token for it before the
        deadline."""
        params = {"applicationId": application_id, kind.get_id_param: object_id}
        method = getattr(self._client, botocore.xform_name(kind.get_operation))
        found = self._get_one(kind.get_operation, method, params, deadline, kind.get_key, kind.detail, object_id,
                              kind.name)
        if found is not None and (found.application_id, found.id) != (application_id, object_id):
            self._drop(kind.name, object_id, f"{kind.get_operation} answered for {found.application_id}/{found.id}")
            return None
        return found

    def get_application(self, application_id: str, deadline: Deadline) -> ApplicationDetail | None:
        """The application's capacity and auto-start/stop configuration, or None when AWS answered with an
        invalid one (dropped, counted, logged once). Raises Deferred as get_session does."""
        params = {"applicationId": application_id}
        detail = self._get_one("GetApplication", self._client.get_application, params, deadline, "application",
                               ApplicationDetail, application_id, "application")
        if detail is not None and detail.application_id != application_id:
            self._drop("application", application_id, f"GetApplication answered for {detail.application_id}")
            return None
        return detail

    # --- plumbing ------------------------------------------------------------------------------------

    def _belongs(self, kind: ObjectKind[Any, Any], found: str, asked: str, object_id: str) -> bool:
        if found == asked:
            return True
        self._drop(kind.name, object_id, f"listed under application {asked} but belongs to {found}")
        return False

    def _get_one(
        self, operation: str, method: Any, params: dict[str, Any], deadline: Deadline, key: str, kind: type[T],
        asked: str, kind_name: str,
    ) -> T | None:
        """The one object a Get* call returns under ``key``, or None when it is invalid (dropped and counted
        as ``kind_name``, e.g. "session")."""
        try:
            response = self._call(operation, method, params, deadline, _has(key, dict))
        except ApiError as err:
            if err.code not in (INVALID_RESPONSE, RESPONSE_TOO_LARGE):
                raise
            # The response is the one object: botocore's parser failing on it (tags as a list, a number
            # as text), or a body over the bound, is one malformed object, not a reason to call the whole
            # target down.
            self._drop(kind_name, asked, err.message)
            return None
        found = self._valid([response[key]], kind, kind_name)
        return found[0] if found else None

    def _valid(self, items: list[Any], kind: type[T], kind_name: str) -> list[T]:
        valid = []
        for raw in items:
            try:
                valid.append(convert(raw, kind))
            except InvalidObject as err:
                self._drop(kind_name, object_id(raw), str(err))
        return valid

    def _drop(self, kind: str, object_id: str, reason: str) -> None:
        self.calls.add_invalid(kind)
        warn_once(f"invalid {kind} dropped", target=self._target, id=object_id, reason=clean_message(reason))

    def _list(
        self, operation: str, method: Any, params: dict[str, Any], deadline: Deadline,
        key: str, kind: type[T], kind_name: str, progress: ListingProgress | None = None,
    ) -> list[T]:
        """Every page, within bounds: a repeated token or more than ``max_pages`` pages fails the listing.
        Each page is validated as it arrives, so a long listing holds compact structs, not botocore's dicts.
        With ``progress``, the listing resumes where a budget-deferred one stopped, and a deferral (the rate
        limit, the deadline, throttling) leaves what it gathered there for the next try."""
        progress = progress or ListingProgress()
        items: list[T] = progress.items
        seen_tokens = progress.seen_tokens
        has_items = _has(key, list)

        def valid_page(page: dict[str, Any]) -> Problem | None:
            token = page.get("nextToken")
            if (token is not None and not isinstance(token, str)) or token in seen_tokens:
                return INVALID_RESPONSE, "nextToken repeats an earlier one or is not a string"
            if token and len(token) > MAX_TOKEN_CHARS:
                return INVALID_RESPONSE, f"nextToken longer than {MAX_TOKEN_CHARS} characters"
            if token and len(seen_tokens) + 1 >= self._max_pages:
                # The last allowed page still points further: fail rather than follow an endless listing.
                return PAGE_LIMIT, f"more than {self._max_pages} pages (aws.max_pages)"
            return has_items(page)

        if progress.token:
            params = {**params, "nextToken": progress.token}
        page: dict[str, Any] = {}
        try:
            while True:
                page = self._call(operation, method, params, deadline, valid_page)
                items.extend(self._valid(page[key], kind, kind_name))
                token = page.get("nextToken")
                if not token:
                    found = list(items)
                    progress.clear()
                    return found
                seen_tokens.add(token)
                progress.token = token
                params = {**params, "nextToken": token}
        except BaseException as err:
            page = {}
            if not deferral(err):
                # The error's traceback holds this frame, and the collection keeps the error: drop what the
                # failed listing gathered, or it lives as long as the error does (a listing abandoned at the
                # deadline kept its tens of thousands of summaries in a reference cycle until a full GC).
                progress.clear()
            raise

    def _call(
        self,
        operation: str,
        method: Any,
        params: dict[str, Any],
        deadline: Deadline,
        valid: Callable[[dict[str, Any]], Problem | None],
    ) -> dict[str, Any]:
        """One call with retries: each attempt waits for the rate limit and is counted; throttling and
        transient failures back off with full jitter, as long as the deadline leaves room."""
        for attempt in range(1, self._max_attempts + 1):
            if deadline.passed:
                raise DeadlineReached(operation)
            if not self._limits.acquire(operation, deadline.at - CALL_ROOM_SECONDS):
                raise Deferred(operation)
            try:
                return self._attempt(operation, method, params, valid, deadline)
            except ApiError as err:
                retryable = err.code in THROTTLING_CODES or err.code in TRANSIENT_CODES
                if not retryable or attempt == self._max_attempts:
                    raise
                pause = self._random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
                if pause >= deadline.remaining():
                    raise  # the retry could not finish in time: fail now, and serve what is known
                time.sleep(pause)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _attempt(
        self, operation: str, method: Any, params: dict[str, Any], valid: Callable[[dict[str, Any]], Problem | None],
        deadline: Deadline,
    ) -> dict[str, Any]:
        ticket = self.calls.sent(operation, deadline)
        try:
            response = method(**params)
        except ResponseTooLarge as err:
            self.calls.answered(ticket, operation, RESPONSE_TOO_LARGE)
            raise ApiError(operation, RESPONSE_TOO_LARGE, str(err)) from None
        except ClientError as err:
            error = err.response.get("Error", {}) if isinstance(err.response, dict) else {}
            code = str(error.get("Code") or "Unknown")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code not in KNOWN_OUTCOMES and isinstance(status, int) and status >= 500:
                code = "InternalServerException" if status == 500 else "ServiceUnavailable"
            # A failed AssumeRole surfaces from inside the call that needed credentials: count it as itself.
            failed_operation = err.operation_name or operation
            self.calls.answered(ticket, failed_operation, code)
            raise ApiError(failed_operation, outcome(code), f"{code[:64]}: {error.get('Message', '')}") from None
        except BotoCoreError as err:
            # Connection failures and timeouts have no AWS code; the class name is stable and bounded.
            code = type(err).__name__
            self.calls.answered(ticket, operation, code)
            raise ApiError(operation, outcome(code), str(err)) from None
        except Exception as err:  # the boundary: botocore's parser chokes on hostile bodies
            # (invalid JSON or UTF-8, timestamps out of range...) with assorted exception types.
            self.calls.answered(ticket, operation, INVALID_RESPONSE)
            raise ApiError(operation, INVALID_RESPONSE, f"{type(err).__name__}: {err}") from None
        problem = valid(response) if isinstance(response, dict) else (INVALID_RESPONSE, "the response is not an object")
        if problem:
            code, reason = problem
            self.calls.answered(ticket, operation, code)
            raise ApiError(operation, code, reason)
        self.calls.answered(ticket, operation, "ok")
        return dict(response)


def _has(key: str, kind: type) -> Callable[[dict[str, Any]], Problem | None]:
    """A check that a response carries ``key`` as a ``kind`` (a list of items, an object)."""

    def check(response: dict[str, Any]) -> Problem | None:
        if isinstance(response.get(key), kind):
            return None
        return INVALID_RESPONSE, f"no `{key}` {kind.__name__} in the response"

    return check

