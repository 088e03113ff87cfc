"""The HTTP(S) server: cheroot (CherryPy's WSGI server), hardened for a port that faces the network.

cheroot brings HTTP/1.1 parsing, keep-alive, limits on request sizes, a fixed pool of worker threads
and TLS through Python's ssl. What it leaves open is closed here, each by a small override:

- TLS handshakes run in a worker, not in cheroot's single accept loop, where one client that connects
  and sends nothing would freeze the whole server for a socket timeout (cherrypy/cheroot#748).
- A new connection waits in the selector until it sends something, as a kept-alive one does; cheroot
  hands new connections straight to a worker, so 1,000 silent connections would queue ahead of a scrape.
- At most ``max_connections`` are open; at the limit the longest-idle one is closed to make room (as
  nginx reuses keep-alive connections), so idle connections cannot lock Prometheus out.
- Deadlines that cheroot's per-operation socket timeout cannot give: the request head must arrive
  within ``header_timeout`` of the connection becoming readable (a client that trickles a byte every
  few seconds would otherwise hold a worker forever), and the response must be written within
  ``write_timeout``. A connection past its deadline is shut down, which frees its worker at once. One
  that waited in the queue for a worker gets only what is left of ``header_timeout``, at least
  ``QUEUED_GRACE_SECONDS``: a real client's request head has arrived by then, so a flood of stalled
  connections drains quickly and the scrape queued behind it is still served.
- cheroot's diagnostics go to this module's logger, one line each, without tracebacks.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cheroot import connections, server, wsgi
from cheroot.makefile import StreamReader, StreamWriter
from cheroot.ssl import Adapter

from exporter.web.webconfig import client_san_allowed

log = logging.getLogger(__name__)

WSGIApp = Callable[..., Any]
TLSSettings = Callable[[], tuple[ssl.SSLContext, tuple[str, ...]]]  # the context, the allowed client SANs

QUEUED_GRACE_SECONDS = 0.5
_PLAIN_HTTP_TO_TLS = (  # Go's net/http answer to the same mistake
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


@dataclass(frozen=True)
class ServerLimits:
    threads: int = 8  # workers: scrapes share one collection, so a few serve several Prometheus servers
    max_connections: int = 512
    idle_timeout_seconds: int = 10  # a kept-alive or silent connection; also each socket read or write
    header_timeout_seconds: float = 10.0  # from readable to the whole request head
    write_timeout_seconds: float = 60.0  # the whole response (a gzipped 10,000-session body is ~3 MB)
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 1024  # GET and HEAD only; a body is read and dropped


class _Deadlines:
    """When each busy connection must be done with its current phase; enforced by the selector loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[_Connection, float] = {}

    def set(self, conn: _Connection, seconds: float) -> None:
        with self._lock:
            self._due[conn] = time.monotonic() + seconds

    def clear(self, conn: _Connection) -> None:
        with self._lock:
            self._due.pop(conn, None)

    def pop_expired(self) -> list[_Connection]:
        now = time.monotonic()
        with self._lock:
            expired = [conn for conn, due in self._due.items() if due <= now]
            for conn in expired:
                del self._due[conn]
        return expired


def _shut_down(sock: socket.socket) -> None:
    """Make a worker blocked on ``sock`` return now. Called on the plain socket layer even for TLS: the
    TLS layer is in use by that worker, only the file descriptor is shared safely."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _LazyTLSAdapter(Adapter):
    """Wraps accepted sockets without a handshake; ``_Connection`` does it in a worker. The context is
    asked for at each connection, so a renewed certificate is used from the next handshake on."""

    def __init__(self, settings: TLSSettings) -> None:
        self.settings = settings
        self.context = None

    def bind(self, sock: socket.socket) -> socket.socket:
        return sock

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, str]]:
        context, _ = self.settings()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), {}

    def get_environ(self) -> dict[str, str]:
        return {}

    def makefile(self, sock: socket.socket, mode: str = "r", bufsize: int = -1) -> StreamReader | StreamWriter:
        size = bufsize if bufsize > 0 else 8192
        return StreamReader(sock, mode, size) if "r" in mode else StreamWriter(sock, mode, size)


class _Connection(server.HTTPConnection):
    server: HardenedServer

    def __init__(self, srv: HardenedServer, sock: socket.socket, makefile: Any = None) -> None:
        super().__init__(srv, sock, makefile)
        self.dispatched = False  # False until the client first sends something
        self.queued_at = 0.0  # when it was last handed to the workers' queue
        self.handshake_pending = isinstance(sock, ssl.SSLSocket)

    def communicate(self) -> bool:
        limits = self.server.limits
        waited = time.monotonic() - self.queued_at
        self.server.deadlines.set(self, max(limits.header_timeout_seconds - waited, QUEUED_GRACE_SECONDS))
        try:
            if self.handshake_pending and not self._handshake():
                return False
            return bool(super().communicate())  # type: ignore[no-untyped-call]
        finally:
            self.server.deadlines.clear(self)

    def _handshake(self) -> bool:
        self.handshake_pending = False
        sock = self.socket
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLError as err:
            if err.reason == "HTTP_REQUEST":
                with contextlib.suppress(OSError):
                    socket.socket.sendall(sock, _PLAIN_HTTP_TO_TLS)
            log.debug("TLS handshake failed", extra={"fields": {"client": self.remote_addr, "err": err.reason or err}})
            return False
        except OSError as err:  # a timeout, a reset, a shutdown by the deadline
            log.debug("TLS handshake failed", extra={"fields": {"client": self.remote_addr, "err": str(err)}})
            return False
        _, allowed_sans = self.server.tls_settings()
        if allowed_sans and not client_san_allowed(sock.getpeercert() or {}, allowed_sans):
            log.warning("client certificate refused: no allowed SAN (tls_server_config.client_allowed_sans)",
                        extra={"fields": {"client": self.remote_addr}})
            return False
        return True

    def close(self) -> None:
        self.server.connection_closed(self)
        super().close()


class _Gateway(wsgi.Gateway_10):
    """Moves a connection's deadline along: none while the application works (a collection takes the
    time it takes, bounded elsewhere), the write deadline once the response starts."""

    def __init__(self, req: Any) -> None:
        req.server.deadlines.clear(req.conn)
        super().__init__(req)

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.req.server.deadlines.set(self.req.conn, self.req.server.limits.write_timeout_seconds)
        return super().start_response(status, headers, exc_info)


class _ConnectionManager(connections.ConnectionManager):
    server: HardenedServer

    def __init__(self, srv: HardenedServer) -> None:
        super().__init__(srv)
        self.open: set[_Connection] = set()
        self.open_lock = threading.Lock()

    def _from_server_socket(self, server_socket: socket.socket) -> _Connection | None:
        # cheroot's stubs leave out its private methods and attributes, hence the ignores below.
        conn: _Connection | None = super()._from_server_socket(server_socket)  # type: ignore[misc]
        if conn is None:
            return None
        with self.open_lock:
            full = len(self.open) >= self.server.limits.max_connections
        if full and not self._close_longest_idle():
            log.debug("connection refused: too many open connections", extra={"fields": {"client": conn.remote_addr}})
            conn.close()
            return None
        with self.open_lock:
            self.open.add(conn)
        return conn

    def _close_longest_idle(self) -> bool:
        selector = self._selector  # type: ignore[attr-defined]
        idle = [(conn.last_used, fd, conn) for fd, conn in selector.connections if conn is not self.server]
        if not idle:
            return False
        _, fd, conn = min(idle, key=lambda entry: entry[0])
        selector.unregister(fd)
        conn.close()
        return True

    def _expire(self, threshold: float) -> None:
        super()._expire(threshold)  # type: ignore[misc]  # idle connections in the selector
        for conn in self.server.deadlines.pop_expired():  # busy ones past their deadline
            log.debug("connection closed: deadline passed", extra={"fields": {"client": conn.remote_addr}})
            _shut_down(conn.socket)

    def forget(self, conn: _Connection) -> None:
        with self.open_lock:
            self.open.discard(conn)


class HardenedServer(wsgi.Server):
    """cheroot's WSGI server with the overrides above. ``start()`` binds (OSError when it cannot) and
    serves in a background thread; ``stop(grace)`` returns within about ``grace`` seconds."""

    ConnectionClass = _Connection
    _connections: connections.ConnectionManager

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApp,
        *,
        limits: ServerLimits | None = None,
        tls_settings: TLSSettings | None = None,
        server_name: str = "",
    ) -> None:
        self.limits = limits or ServerLimits()
        # ":PORT" means every interface; cheroot 11 refuses the host "" itself, so it gets "::" (dual
        # stack) here and start() falls back to IPv4 when the host has no IPv6.
        self._any_interface = address[0] == ""
        super().__init__(
            ("::", address[1]) if self._any_interface else address,
            app,
            numthreads=self.limits.threads,
            max=self.limits.threads,
            server_name=server_name or None,
            request_queue_size=128,  # the listen backlog
            timeout=self.limits.idle_timeout_seconds,
            shutdown_timeout=1,
        )
        self.gateway = _Gateway
        self.max_request_header_size = self.limits.max_header_bytes
        self.max_request_body_size = self.limits.max_body_bytes
        self.keep_alive_conn_limit = self.limits.max_connections
        self.deadlines = _Deadlines()
        self.tls_settings: TLSSettings = tls_settings or _no_tls
        self.ssl_adapter = _LazyTLSAdapter(tls_settings) if tls_settings else None
        self._thread: threading.Thread | None = None

    # --- cheroot hooks --------------------------------------------------------------------------------

    def prepare(self) -> None:
        super().prepare()
        plain = self._connections
        self._connections = _ConnectionManager(self)  # registers the listening socket in its own selector
        plain._selector.close()  # type: ignore[attr-defined]

    def process_conn(self, conn: _Connection) -> None:
        if not conn.dispatched:
            # A new connection: into the selector until the client sends something (no worker meanwhile).
            conn.dispatched = True
            self._connections.put(conn)
            return
        conn.queued_at = time.monotonic()
        super().process_conn(conn)

    def connection_closed(self, conn: _Connection) -> None:
        self.deadlines.clear(conn)
        manager = getattr(self, "_connections", None)
        if isinstance(manager, _ConnectionManager):
            manager.forget(conn)

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # Client mistakes and dropped connections are cheroot's usual messages: debug. Its own errors
        # (an exception in the application) are errors, logged as one line.
        if level >= logging.ERROR:
            log.error("http server: %s", msg, exc_info=traceback)
        else:
            log.debug("http server: %s", msg)

    # --- running --------------------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        manager = getattr(self, "_connections", None)
        return len(manager.open) if isinstance(manager, _ConnectionManager) else 0

    def start(self) -> None:
        """Bind and serve in a background thread; ``:PORT`` (host "") listens on IPv6 and IPv4 when the
        host has IPv6, else on IPv4."""
        _, port = self.bind_addr
        if self._any_interface:
            self.bind_addr = ("::", port)
            try:
                self.prepare()
            except OSError as err:
                if _errno(err) == errno.EADDRINUSE:
                    raise
                self.bind_addr = ("0.0.0.0", port)
                self.prepare()
        else:
            self.prepare()
        self._thread = threading.Thread(target=self.serve, name="http-server", daemon=True)
        self._thread.start()

    def stop(self, grace: float = 2.0) -> bool:  # type: ignore[override]
        """Stop accepting, close idle connections, give requests in flight ``grace`` seconds to finish.
        Returns whether everything stopped in time; a worker stuck past that is left behind (the caller
        exits the process)."""
        self.shutdown_timeout = grace
        stopper = threading.Thread(target=super().stop, name="http-server-stop", daemon=True)
        stopper.start()
        stopper.join(grace + 1.0)  # cheroot's own steps take up to ~0.5 s besides the grace
        return not stopper.is_alive()


def _no_tls() -> tuple[ssl.SSLContext, tuple[str, ...]]:
    raise RuntimeError("TLS is not configured")


def _errno(err: OSError) -> int | None:
    """cheroot wraps bind errors in a new socket.error without errno; the cause has it."""
    cause = err.__cause__
    return err.errno or (cause.errno if isinstance(cause, OSError) else None)
