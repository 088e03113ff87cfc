"""``redact``: what botocore, urllib3 and the exporter write at debug level, without the secrets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.common.redaction import MIN_SECRET_LENGTH, REDACTED, add_secret, forget_secrets, redact

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
    assert redact(expected) == expected  # redacting twice changes nothing


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


# Pieces of the forms redact knows, to be put together in every odd order.
FRAGMENTS = ["http://", "u:p@", "h", "/", "?", "a=b", "&", "maxResults=1", "'", '"', "b'", "SessionToken",
             "external_id", "Authorization", ": ", ":", "=", "<SessionToken>", "</SessionToken>", "<", ">",
             "\\", " ", "\n", "x"]
texts = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))


@settings(max_examples=200, deadline=None)
@given(before=texts, after=texts, secret=st.text(min_size=MIN_SECRET_LENGTH, max_size=20))
def test_a_known_secret_never_survives_and_redacting_twice_changes_nothing(
    before: str, after: str, secret: str
) -> None:
    forget_secrets()
    add_secret(secret)
    once = redact(before + secret + after)
    assert secret not in once or secret in REDACTED
    assert redact(once) == once


ADVERSARIAL = {  # each took redact minutes or more with a careless pattern
    "backslashes": "'password': '" + "\\\\" * 50_000,
    "dotted words": "a." * 50_000,
    "schemes": "a://" * 30_000,
    "at signs": "http://" + "@" * 50_000,
    "open tags": "<SessionToken>" * 20_000,
    "parameters": "/x?" + "a=b&" * 30_000,
    "field names": "password=" * 20_000,
    "open quotes": "'SessionToken': '" * 10_000,
}


def test_redact_is_linear_on_adversarial_text() -> None:
    # In a process of its own, so that a regression fails instead of hanging the suite.
    script = "import sys; from exporter.common.redaction import redact; [redact(t) for t in eval(sys.stdin.read())]"
    subprocess.run([sys.executable, "-c", script], input=repr(list(ADVERSARIAL.values())), text=True,
                   timeout=120, check=True)
