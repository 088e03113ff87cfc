"""``redact``: what botocore, urllib3 and the exporter write at debug level, without the secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.redaction import REDACTED, add_secret, forget_secrets, redact

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEPT//////////wEaDLq+token/with=padding=="


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # botocore.parsers: the STS AssumeRole response body
        (f"Response body:\nb'<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>{SECRET}"
         f"</SecretAccessKey><SessionToken>{TOKEN}</SessionToken></Credentials>'",
         f"Response body:\nb'<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>{REDACTED}"
         f"</SecretAccessKey><SessionToken>{REDACTED}</SessionToken></Credentials>'"),
        # parsed responses and request parameters, as Python reprs and JSON
        (f"{{'AccessKeyId': 'ASIAX', 'SecretAccessKey': '{SECRET}', 'SessionToken': '{TOKEN}'}}",
         f"{{'AccessKeyId': 'ASIAX', 'SecretAccessKey': '{REDACTED}', 'SessionToken': '{REDACTED}'}}"),
        ("'body': {'Action': 'AssumeRole', 'ExternalId': 'ext-\\'quoted\\'-42', 'RoleArn': 'arn'}",
         f"'body': {{'Action': 'AssumeRole', 'ExternalId': '{REDACTED}', 'RoleArn': 'arn'}}"),
        (f'{{"SecretAccessKey": "{SECRET}", "Expiration": "2030"}}',
         f'{{"SecretAccessKey": "{REDACTED}", "Expiration": "2030"}}'),
        # botocore.endpoint: request headers, values as bytes
        (f"headers={{'X-Amz-Date': b'20240101T000000Z', 'X-Amz-Security-Token': b'{TOKEN}', "
         "'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIAX/20240101/us-east-1/emr-serverless/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=abc123'}",
         f"headers={{'X-Amz-Date': b'20240101T000000Z', 'X-Amz-Security-Token': b'{REDACTED}', "
         f"'Authorization': b'{REDACTED}'}}"),
        # botocore.auth: the canonical request, one header per line
        (f"CanonicalRequest:\nGET\n/applications\nmaxResults=50\nhost:127.0.0.1\nx-amz-security-token:{TOKEN}\n",
         f"CanonicalRequest:\nGET\n/applications\nmaxResults=50\nhost:127.0.0.1\nx-amz-security-token:{REDACTED}\n"),
        ("Authorization: Basic dXNlcjpwYXNz\nnext line", f"Authorization: {REDACTED}\nnext line"),
        # configuration and environment forms
        (f"aws_secret_access_key = {SECRET}", f"aws_secret_access_key = {REDACTED}"),
        ("external_id=abc123 name=prod", f"external_id={REDACTED} name=prod"),
        # URLs: userinfo always, query values unless harmless
        ('Could not connect to the endpoint URL: "http://user:p%40ss@127.0.0.1:1/applications?maxResults=50"',
         f'Could not connect to the endpoint URL: "http://{REDACTED}@127.0.0.1:1/applications?maxResults=50"'),
        ("{'Endpoint': 'https://u:pa@ss@host.example:8443'}", f"{{'Endpoint': 'https://{REDACTED}@host.example:8443'}}"),
        (f"https://bucket.s3.amazonaws.com/k?X-Amz-Credential=ASIAX&X-Amz-Security-Token={TOKEN}&X-Amz-Signature=ab",
         f"https://bucket.s3.amazonaws.com/k?X-Amz-Credential={REDACTED}&X-Amz-Security-Token={REDACTED}"
         f"&X-Amz-Signature={REDACTED}"),
        ("GET /metrics?password=hunter2&debug HTTP/1.1", f"GET /metrics?password={REDACTED}&debug HTTP/1.1"),
        ("/applications/a1/sessions?maxResults=50&states=IDLE&nextToken=abc",
         "/applications/a1/sessions?maxResults=50&states=IDLE&nextToken=abc"),
        # nothing to redact
        ("Found credentials in environment variables.", "Found credentials in environment variables."),
        ("collection of target incomplete: ListSessions: ThrottlingException: Rate exceeded",
         "collection of target incomplete: ListSessions: ThrottlingException: Rate exceeded"),
        ("nextToken=abc sessionTokenCount=3 mytoken: 5", "nextToken=abc sessionTokenCount=3 mytoken: 5"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_secrets_known_at_run_time_are_redacted_in_any_context() -> None:
    add_secret(SECRET)
    add_secret(TOKEN)
    add_secret("ab")  # too short to redact without mangling every log line; patterns still apply
    text = f"odd place {SECRET}, encoded {TOKEN.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D')} ab"
    assert redact(text) == f"odd place {REDACTED}, encoded {REDACTED} ab"


def test_a_secret_that_contains_another_is_redacted_whole() -> None:
    add_secret("user:longpassword")
    add_secret("longpassword")
    assert redact("user:longpassword") == REDACTED
