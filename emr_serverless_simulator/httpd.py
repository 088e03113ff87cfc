"""HTTP plumbing the simulator shares with other test endpoints (tests/helpers/hostile_endpoint.py): a threading
server whose keep-alive connections can be closed on stop, served on a background thread, and a
response written in one piece."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

ServerT = TypeVar("ServerT", bound="BackgroundServer")


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive on a TCP_NODELAY socket: with ``write_response``, no 40 ms delayed-ACK stalls."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class TrackingServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that knows its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Keep-alive connections would otherwise outlive stop() in their handler threads."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class BackgroundServer:
    """Serves a ``TrackingServer`` (made by ``make_server``) on a background thread; ``port=0`` picks a
    free port. ``start``/``stop`` or ``with``."""

    thread_name = "http-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: TrackingServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self, address: tuple[str, int]) -> TrackingServer:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self: ServerT) -> ServerT:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._server = self.make_server((self.host, self.port))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self: ServerT) -> ServerT:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def write_response(handler: BaseHTTPRequestHandler, status: int, headers: Iterable[str], body: bytes) -> None:
    """Status line, ``headers`` ("Name: value") and body in one write: one segment, no Nagle stall."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    head = "\r\n".join((f"HTTP/1.1 {status} {phrase}", *headers)) + "\r\n\r\n"
    try:
        handler.wfile.write(head.encode("latin-1") + body)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up (a timeout, a cancelled collection): nothing to answer, nothing to report.
        handler.close_connection = True
