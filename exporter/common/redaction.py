"""Secrets never reach a log line, a metric or the landing page.

``redact(text)`` removes, wherever they appear in a text:

- URL userinfo: ``https://user:pass@host`` becomes ``https://<redacted>@host``;
- query parameter values in URLs and request lines (``?X-Amz-Security-Token=...``), except the
  harmless parameters of the exporter's own API calls, which are worth seeing when debugging;
- values of known secret fields in the forms botocore, urllib3 and configuration files write them:
  XML (``<SessionToken>v</SessionToken>``), Python repr or JSON (``'SecretAccessKey': 'v'``),
  ``key=value`` and header lines (``x-amz-security-token:v``, ``Authorization: AWS4-HMAC-SHA256 ...``);
- every secret known at run time (``add_secret``: the environment's AWS secret key and session token,
  configured external IDs, endpoint passwords), also in its URL-encoded forms.

Access key IDs are not secrets (AWS shows them in CloudTrail and error messages) and are kept: they
say which identity made a call.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"

# Shorter values would redact common words all over the logs; AWS secrets are 40 characters and more,
# session tokens hundreds, and an external ID this short protects nothing.
MIN_SECRET_LENGTH = 4

# Field names whose values are secrets, in any case, with or without ``aws_`` and underscores.
_SECRET_NAMES = (
    r"(?:aws_?)?secret_?access_?key|(?:aws_?)?session_?token|(?:aws_?)?security_?token"
    r"|x-amz-security-token|x-amz-signature|external_?id|(?:proxy-)?authorization|password|passwd"
    r"|client_?secret|private_?key"
)
_NAME = rf"(?<![\w-])(?:{_SECRET_NAMES})(?![\w-])"

# <SessionToken>v</SessionToken>
_XML_FIELD = re.compile(rf"(<({_NAME})>)[^<]*(</\2>)", re.IGNORECASE)
# 'SecretAccessKey': 'v'   "SessionToken": "v"   'X-Amz-Security-Token': b'v'
# (an escaped character, or any other but the quote: a backslash cannot match both ways, which would
# backtrack exponentially on a run of backslashes)
_QUOTED_FIELD = re.compile(rf"""(["']{_NAME}["']\s*:\s*b?)(["'])(?:\\.|(?!\2)[^\\])*\2""", re.IGNORECASE | re.DOTALL)
# Authorization: AWS4-HMAC-SHA256 Credential=..., Signature=...  (the whole rest of the line)
_AUTHORIZATION_LINE = re.compile(r"(?<![\w-])((?:proxy-)?authorization\s*:\s*)[^\r\n]+", re.IGNORECASE)
# external_id=v   x-amz-security-token:v   aws_secret_access_key = v
_PLAIN_FIELD = re.compile(rf"({_NAME}\s*[:=]\s*)[^\s&,;\"'<>]+", re.IGNORECASE)
# scheme://userinfo@ : greedy up to the last @ of the authority, as urllib.parse splits it
# (schemes are short: a bounded scheme keeps the scan linear in a long run of "a.a.a.a")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^/\s?#\"'<>\\]*@")
# the query of a URL (scheme://...?q) or of a request target ("GET /path?q HTTP/1.1")
_QUERY = re.compile(r"""((?:\b[a-z][a-z0-9+.-]{0,31}://|(?<![^\s"'(])/)[^\s?#"'<>]*\?)([^\s#"'<>\\]+)""", re.IGNORECASE)
# Parameters of the exporter's own API calls (and STS's form body) whose values are never secret.
_HARMLESS_QUERY_KEYS = frozenset(
    {"maxResults", "nextToken", "states", "createdAtAfter", "createdAtBefore", "Action", "Version"}
)

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def add_secret(value: str | None) -> None:
    """Redact this exact value (and its URL-encoded forms) from now on, wherever it appears."""
    global _secret_pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def forget_secrets() -> None:
    """Drop every value given to ``add_secret`` (for tests)."""
    global _secret_pattern
    with _lock:
        _secrets.clear()
        _secret_pattern = None


def redact(text: str) -> str:
    """``text`` without secrets: see the module docstring for what is removed."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    if "?" in text:
        text = _QUERY.sub(_redact_query, text)
    text = _XML_FIELD.sub(rf"\1{REDACTED}\3", text)
    text = _QUOTED_FIELD.sub(rf"\1\2{REDACTED}\2", text)
    text = _AUTHORIZATION_LINE.sub(rf"\1{REDACTED}", text)
    return _PLAIN_FIELD.sub(rf"\1{REDACTED}", text)


def _redact_query(match: re.Match[str]) -> str:
    parameters = []
    for parameter in match.group(2).split("&"):
        key, _, value = parameter.partition("=")
        parameters.append(parameter if not value or key in _HARMLESS_QUERY_KEYS else f"{key}={REDACTED}")
    return match.group(1) + "&".join(parameters)
