"""Which path a complete request head asks for, as the HTTP server's selector loop reads it to send the
probes to workers of their own: a request with a body, or in a form other than a plain path, is None
(the pool's workers serve it, as any other request)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.web.server import request_path


@pytest.mark.parametrize(("head", "path"), [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"/healthz"),
    (b"HEAD /readyz?verbose=1 HTTP/1.0\r\n\r\n", b"/readyz"),
    (b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"/healthz"),  # blank lines before a request
    (b"GET /healthz HTTP/1.1\nHost: x\n\n", b"/healthz"),
    (b"GET / HTTP/1.1\r\nX-Note: content-length: 5\r\n\r\n", b"/"),  # not a field name
    # What follows the head (a pipelined request, or bytes) is not this request's.
    (b"GET /healthz HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"/healthz"),
    (b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", None),  # a body field, whatever its value
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\ncontent-LENGTH : 2\r\n\r\nok", None),
    (b"GET /healthz HTTP/1.1\nTransfer-Encoding: chunked\n\n", None),
    (b"GET http://x/healthz HTTP/1.1\r\n\r\n", None),  # absolute form
    (b"OPTIONS * HTTP/1.1\r\n\r\n", None),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", None),  # not complete
    (b"GET /healthz\r\n\r\n", None),  # HTTP/0.9
    (b"GET  /healthz HTTP/1.1\r\n\r\n", None),
    (b"", None),
])
def test_request_path(head: bytes, path: bytes | None) -> None:
    assert request_path(head) == path
    assert request_path(bytearray(head)) == path  # the selector loop's buffer


@given(st.binary(max_size=300))
def test_any_bytes_give_none_or_a_plain_path(ahead: bytes) -> None:
    path = request_path(ahead)
    assert path is None or (path.startswith(b"/") and not set(path) & set(b" ?#\r\n"))


FIELD_NAME = st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding"))
FIELD_VALUE = st.from_regex(r"[ -~]{0,40}", fullmatch=True)


@given(st.from_regex(r"/[A-Za-z0-9._~/%-]{0,30}", fullmatch=True), st.from_regex(r"[a-z=&]{0,20}", fullmatch=True),
       st.lists(st.tuples(FIELD_NAME, FIELD_VALUE), max_size=8), st.sampled_from([b"\r\n", b"\n"]))
def test_a_bodiless_head_gives_its_path(path: str, query: str, fields: list[tuple[str, str]], eol: bytes) -> None:
    target = path + (f"?{query}" if query else "")
    head = f"GET {target} HTTP/1.1".encode() + eol + b"".join(f"{n}: {v}".encode() + eol for n, v in fields) + eol
    assert request_path(head) == path.encode()
    assert request_path(head.replace(eol + eol, eol + b"Content-Length: 2" + eol + eol) + b"ok") is None
