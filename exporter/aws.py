"""The EMR Serverless API as the exporter uses it: read-only calls, every page, every call counted.

Errors are told apart by their AWS error code, never by HTTP status (``ThrottlingException`` is not in
the emr-serverless model, so boto3 has no exception class for it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from exporter import __version__
from exporter.config import AwsConfig

if TYPE_CHECKING:
    from mypy_boto3_emr_serverless import EMRServerlessClient
    from mypy_boto3_emr_serverless.type_defs import (
        ApplicationSummaryTypeDef,
        SessionSummaryTypeDef,
        SessionTypeDef,
    )

NOT_FOUND = "ResourceNotFoundException"
ROLE_SESSION_NAME = "emr-serverless-exporter"


class ApiError(Exception):
    """A failed call, after botocore's retries: ``code`` is the AWS error code or the botocore error."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


class ApiCallCounter:
    """Cumulative calls by (operation, outcome), shared by the threads of one target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, operation: str, outcome: str) -> None:
        with self._lock:
            self._counts[(operation, outcome)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


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
) -> EMRServerlessClient:
    config = botocore.config.Config(
        # total_max_attempts counts the first try too, as AWS_MAX_ATTEMPTS does; max_attempts would not.
        retries={"mode": "adaptive", "total_max_attempts": aws.max_attempts},
        connect_timeout=aws.connect_timeout_seconds,
        read_timeout=aws.read_timeout_seconds,
        # One pooled connection per request in flight, or urllib3 discards and reconnects.
        max_pool_connections=aws.max_concurrency,
        user_agent_extra=f"emr-serverless-exporter/{__version__}",
    )
    session = session or boto3.Session()
    return session.client("emr-serverless", region_name=region, endpoint_url=endpoint_url, config=config)


class EmrServerlessApi:
    """The calls the exporter makes, each counted in ``calls`` by operation and outcome."""

    def __init__(self, client: EMRServerlessClient, calls: ApiCallCounter) -> None:
        self._client = client
        self.calls = calls

    def list_applications(self, states: tuple[str, ...] = ()) -> Iterator[ApplicationSummaryTypeDef]:
        params: dict[str, Any] = {"maxResults": 50}
        if states:
            params["states"] = list(states)
        for page in self._pages("ListApplications", self._client.list_applications, params):
            yield from page["applications"]

    def list_sessions(
        self,
        application_id: str,
        *,
        states: tuple[str, ...] = (),
        created_at_after: datetime | None = None,
    ) -> Iterator[SessionSummaryTypeDef]:
        params: dict[str, Any] = {"applicationId": application_id, "maxResults": 50}
        if states:
            params["states"] = list(states)
        if created_at_after is not None:
            params["createdAtAfter"] = created_at_after
        for page in self._pages("ListSessions", self._client.list_sessions, params):
            yield from page["sessions"]

    def get_session(self, application_id: str, session_id: str) -> SessionTypeDef:
        response = self._call(
            "GetSession", self._client.get_session, {"applicationId": application_id, "sessionId": session_id}
        )
        session: SessionTypeDef = response["session"]
        return session

    def _pages(self, operation: str, method: Any, params: dict[str, Any]) -> Iterator[Any]:
        while True:
            page = self._call(operation, method, params)
            yield page
            token = page.get("nextToken")
            if not token:
                return
            params = {**params, "nextToken": token}

    def _call(self, operation: str, method: Any, params: dict[str, Any]) -> Any:
        try:
            response = method(**params)
        except ClientError as err:
            error = err.response.get("Error", {})
            code = error.get("Code") or "Unknown"
            # A failed AssumeRole surfaces from inside the call that needed credentials: count it as itself.
            failed_operation = err.operation_name or operation
            self.calls.add(failed_operation, code)
            raise ApiError(failed_operation, code, error.get("Message", "")) from None
        except BotoCoreError as err:
            # Connection failures and timeouts have no AWS code; the class name is stable and bounded.
            code = type(err).__name__
            self.calls.add(operation, code)
            raise ApiError(operation, code, str(err)) from None
        self.calls.add(operation, "ok")
        return response
