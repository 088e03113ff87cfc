"""The HTTP(S) server: cheroot (CherryPy's WSGI server), hardened for a port that faces the network.

cheroot brings HTTP/1.1 parsing, keep-alive, limits on request sizes, a fixed pool of worker threads
and TLS through Python's ssl. What it leaves open is closed here, each by a small override:

- The TLS handshake and the request head are read in the selector loop, without blocking, as their
  bytes arrive; a connection goes to a worker only once its head is complete. cheroot does the
  handshake in its accept loop, where one client that connects and sends nothing freezes the whole
  server for a socket timeout (cherrypy/cheroot#748), and hands a connection to a worker as soon as
  it is readable, where a client that sends half a head and goes silent, or trickles a byte a
  second, holds the worker until a deadline: 50 of them stalled a scrape 10 s. Workers now wait only
  for the application and the response, and silent connections cost no thread.
- At most ``max_connections`` are open; at the limit the longest-idle one is closed to make room (as
  nginx reuses keep-alive connections), so idle connections cannot lock Prometheus out.
- Deadlines that cheroot's per-operation socket timeout cannot give: the request head (and the TLS
  handshake) must arrive within ``header_timeout`` of the connection's first byte, and the response
  must be written within ``write_timeout``. A connection past its deadline is shut down, which frees
  a worker at once or, in the selector, closes it.
- cheroot's diagnostics go to this module's logger, one line each, without tracebacks.
- When a request arrived (its head complete, on ``time.monotonic``) is in the WSGI environ under
  ``ARRIVED_KEY``: a request that queued for a worker can be told what happened while it waited.
- The probe paths (``probe_paths``: /healthz and /readyz) have workers of their own. A pool's worker
  may wait for as long as a collection takes (every scrape waits on the one in flight), render, or
  write to a slow client; a probe's answer is a few bytes known at once, so it must not queue behind
  them, or the kubelet restarts a healthy exporter whose scrapes wait on a slow collection. The selector
  loop, which has the whole head, sends a probe without a body to that lane.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from cheroot import connections, server, wsgi
from cheroot.makefile import StreamReader, StreamWriter
from cheroot.ssl import Adapter

from exporter.web.webconfig.tls import client_san_allowed

log = logging.getLogger(__name__)

WSGIApp = Callable[..., Any]
TLSSettings = Callable[[], tuple[ssl.SSLContext, tuple[str, ...]]]  # the context, the allowed client SANs

# The environ key of when the request's head was complete (time.monotonic()), before it queued for a worker.
ARRIVED_KEY = "exporter.request_arrived"
# What ends a request head: cheroot wants CRLF; a bare LF head goes to it too, to be answered 400.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
_RECV_BYTES = 64 * 1024
_PLAIN_HTTP_TO_TLS = (  # Go's net/http answer to the same mistake
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)
# A request line in origin form (blank lines before it are allowed); the path without its query.
_REQUEST_LINE = re.compile(rb"(?:\r?\n)*[!#$%&'*+.^_`|~0-9A-Za-z-]+ (/[^ ?#\r\n]*)(?:\?[^ #\r\n]*)? HTTP/[0-9.]+\r?\n")
# A body is read after the answer (cheroot reads what it did not use, for keep-alive): not in the probe lane.
_BODY_FIELD = re.compile(rb"\n(?:content-length|transfer-encoding)[ \t]*:", re.IGNORECASE)


@dataclass(frozen=True)
class ServerLimits:
    threads: int = 8  # workers: scrapes share one collection, so a few serve several Prometheus servers
    probe_threads: int = 2  # workers of the probe paths alone: their answers never wait
    # A probe's answer is a few hundred bytes: one not written by then goes to a client that reads nothing.
    probe_write_timeout_seconds: float = 1.0
    max_connections: int = 512
    idle_timeout_seconds: int = 10  # a kept-alive or silent connection; also each socket read or write
    header_timeout_seconds: float = 10.0  # from the first byte to the whole request head (TLS handshake included)
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


class _ReadAhead(socket.SocketIO):
    """The socket's bytes, after those the selector loop has already read (``ahead``)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, "rb")
        self.ahead = bytearray()

    def readinto(self, buffer: Any) -> int | None:
        if not self.ahead:
            return super().readinto(buffer)
        size = min(len(buffer), len(self.ahead))
        buffer[:size] = self.ahead[:size]
        del self.ahead[:size]
        return size


class _Reader(StreamReader):
    """cheroot's reader over ``_ReadAhead``."""

    raw: _ReadAhead

    def __init__(self, sock: socket.socket, bufsize: int) -> None:
        super(StreamReader, self).__init__(_ReadAhead(sock), bufsize)
        self.bytes_read = 0

    def has_data(self) -> bool:
        if super().has_data() or self.raw.ahead:  # type: ignore[no-untyped-call]
            return True
        sock = self.raw._sock  # type: ignore[attr-defined]
        # Bytes TLS has decrypted but nobody read: the selector would never see them.
        with contextlib.suppress(OSError, ValueError):
            return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        return False

    def take_buffered(self) -> bytes:
        """What cheroot's buffer holds past the last request (a pipelined one), removed from it."""
        buffered = bytes(self._read_buf[self._read_pos:])  # type: ignore[attr-defined]
        self._reset_read_buf()  # type: ignore[attr-defined]
        return buffered


class _Step:
    READY = "ready"  # a complete request head: to a worker
    WAIT = "wait"  # more to come: back to the selector
    CLOSED = "closed"  # the client left, or broke the rules: close it


class _Connection(server.HTTPConnection):
    server: HardenedServer
    rfile: _Reader

    def __init__(self, srv: HardenedServer, sock: socket.socket, makefile: Any = None) -> None:
        super().__init__(srv, sock, makefile)
        self.rfile = _Reader(sock, self.rbufsize)
        self.accepted = False  # False until first handed back to the selector
        self.head_started = False  # the current request's first byte (or handshake) has arrived
        self.handshake_pending = isinstance(sock, ssl.SSLSocket)
        self.arrived: float | None = None  # time.monotonic() when the current request's head was complete
        self.probe = False  # the current request is in the probe lane

    def read_ahead(self) -> str:
        """Read what has arrived, without blocking; say whether the head is complete (a ``_Step``)."""
        sock = self.socket
        if not self.head_started:
            self.head_started = True
            self.server.deadlines.set(self, self.server.limits.header_timeout_seconds)
        ahead = self.rfile.raw.ahead
        ahead[:0] = self.rfile.take_buffered()
        timeout = sock.gettimeout()
        sock.settimeout(0)
        try:
            if self.handshake_pending:
                step = self._handshake_step()
                if step != _Step.READY or self.handshake_pending:  # not done yet, failed, or left to a worker
                    return step
            searched = 0
            while not self._head_complete(searched):
                searched = max(0, len(ahead) - 3)
                try:
                    data = sock.recv(_RECV_BYTES)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return _Step.WAIT
                except OSError:  # a reset, a TLS error, a shutdown by the deadline
                    return _Step.CLOSED
                if not data:  # the client left before its head was complete
                    return _Step.CLOSED
                ahead += data
            return _Step.READY
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(timeout)

    def _head_complete(self, searched: int) -> bool:
        ahead = self.rfile.raw.ahead
        if len(ahead) > self.server.limits.max_header_bytes:
            return True  # too long: cheroot answers it
        return any(ahead.find(end, searched) >= 0 for end in _HEAD_ENDS)

    def communicate(self) -> bool:
        self.head_started = False  # the next request's head is timed from its own first byte
        self.server.deadlines.set(self, self.server.limits.header_timeout_seconds)  # the head is there
        try:
            if self.handshake_pending and not self._handshake():
                return False
            return bool(super().communicate())  # type: ignore[no-untyped-call]
        finally:
            self.server.deadlines.clear(self)

    def _handshake_step(self) -> str:
        """One step of a non-blocking TLS handshake. A handshake that must wait to write (the client
        does not read) is left to a worker, where the deadline bounds it."""
        sock = self.socket
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            return _Step.WAIT
        except ssl.SSLWantWriteError:
            return _Step.READY
        except (ssl.SSLError, OSError) as err:
            self._handshake_failed(err)
            return _Step.CLOSED
        self.handshake_pending = False
        return _Step.READY if self._client_allowed() else _Step.CLOSED

    def _handshake(self) -> bool:
        """A blocking TLS handshake, in a worker."""
        self.handshake_pending = False
        sock = self.socket
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except (ssl.SSLError, OSError) as err:  # OSError: a timeout, a reset, a shutdown by the deadline
            self._handshake_failed(err)
            return False
        return self._client_allowed()

    def _handshake_failed(self, err: OSError) -> None:
        if isinstance(err, ssl.SSLError) and err.reason == "HTTP_REQUEST":
            with contextlib.suppress(OSError):
                socket.socket.sendall(self.socket, _PLAIN_HTTP_TO_TLS)
        reason = err.reason if isinstance(err, ssl.SSLError) and err.reason else str(err)
        log.debug("TLS handshake failed", extra={"fields": {"client": self.remote_addr, "err": reason}})

    def _client_allowed(self) -> bool:
        sock = self.socket
        assert isinstance(sock, ssl.SSLSocket)
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
    time it takes, bounded elsewhere), the write deadline once the response starts. Tells the
    application when the request arrived (``ARRIVED_KEY``)."""

    def __init__(self, req: Any) -> None:
        req.server.deadlines.clear(req.conn)
        super().__init__(req)
        conn = req.conn
        # A head the selector did not read (a TLS handshake left to this worker) arrived just now.
        self.env[ARRIVED_KEY] = conn.arrived if conn.arrived is not None else time.monotonic()
        conn.arrived = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        limits = self.req.server.limits
        timeout = limits.probe_write_timeout_seconds if self.req.conn.probe else limits.write_timeout_seconds
        self.req.server.deadlines.set(self.req.conn, timeout)
        return super().start_response(status, headers, exc_info)


def request_path(ahead: bytes | bytearray) -> bytes | None:
    """The path (without its query) that the complete request head at the start of ``ahead`` asks for,
    when it is in origin form and announces no body; None otherwise."""
    line = _REQUEST_LINE.match(ahead)
    if line is None:
        return None
    # Each head end begins with the request line's own line end.
    ends = [at for end in _HEAD_ENDS if (at := ahead.find(end, line.end() - len(end) // 2)) >= 0]
    if not ends or _BODY_FIELD.search(ahead, line.end() - 1, min(ends) + 1):
        return None
    return bytes(line.group(1))


class _ProbeLane:
    """The probe paths' own workers: they take connections whose head is complete and answer them as
    cheroot's pool workers do."""

    def __init__(self, srv: HardenedServer, threads: int) -> None:
        self._server = srv
        self._queue: queue.SimpleQueue[_Connection | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"http-probe-{index}", daemon=True)
                         for index in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def put(self, conn: _Connection) -> None:
        self._queue.put(conn)

    def _serve(self) -> None:
        while (conn := self._queue.get()) is not None:
            try:
                if conn.communicate():
                    self._server.put_conn(conn)
                else:
                    conn.close()
            except Exception as err:  # as cheroot's workers do: one line, and the worker serves on
                self._server.error_log(f"probe from {conn.remote_addr}: {err!r}", level=logging.ERROR)
                conn.close()

    def stop(self, grace: float) -> None:
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))


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
        selector = self._selector  # type: ignore[attr-defined]
        for conn in self.server.deadlines.pop_expired():
            log.debug("connection closed: deadline passed", extra={"fields": {"client": conn.remote_addr}})
            try:
                selector.unregister(conn.socket.fileno())
            except (KeyError, ValueError, OSError):  # not in the selector: a worker has it
                _shut_down(conn.socket)
            else:  # a head still arriving
                conn.close()

    def wait_for(self, conn: _Connection) -> None:
        """Back into the selector until more of its request arrives; ``last_used`` stays as it was, so
        a client that trickles bytes does not count as active."""
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)  # type: ignore[attr-defined]

    def forget(self, conn: _Connection) -> None:
        with self.open_lock:
            self.open.discard(conn)


class HardenedServer(wsgi.Server):
    """cheroot's WSGI server with the overrides above. ``start()`` binds (OSError when it cannot) and
    serves in a background thread; ``stop(grace)`` returns within about ``grace`` seconds. Requests for
    ``probe_paths`` go to workers of their own (``ServerLimits.probe_threads``)."""

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
        probe_paths: Collection[str] = (),
    ) -> None:
        self.limits = limits or ServerLimits()
        self.probe_paths = frozenset(path.encode() for path in probe_paths)
        self._probe_lane = _ProbeLane(self, self.limits.probe_threads) if self.probe_paths else None
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
        if self._probe_lane is not None:
            self._probe_lane.start()

    def process_conn(self, conn: _Connection) -> None:
        """Called by the selector loop for a readable connection (and by a worker for one with bytes
        left over from its last request): a worker gets it only once its request head is complete."""
        if not conn.accepted:  # a new connection: into the selector until the client sends something
            conn.accepted = True
            self._connections.put(conn)
            return
        step = conn.read_ahead()
        if step == _Step.WAIT:
            manager = self._connections
            assert isinstance(manager, _ConnectionManager)  # prepare() put it there
            manager.wait_for(conn)
        elif step == _Step.CLOSED:
            conn.close()
        else:
            self.deadlines.clear(conn)  # a complete head may wait for a worker; it gets its deadline there
            conn.arrived = None if conn.handshake_pending else time.monotonic()
            lane = self._probe_lane
            conn.probe = lane is not None and request_path(conn.rfile.raw.ahead) in self.probe_paths
            if lane is not None and conn.probe:
                lane.put(conn)
            else:
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
        stopper = threading.Thread(target=self._stop_all, args=(grace,), name="http-server-stop", daemon=True)
        stopper.start()
        stopper.join(grace + 1.0)  # cheroot's own steps take up to ~0.5 s besides the grace
        return not stopper.is_alive()

    def _stop_all(self, grace: float) -> None:
        started = time.monotonic()
        super().stop()
        if self._probe_lane is not None:
            self._probe_lane.stop(max(0.0, grace - (time.monotonic() - started)))


def _no_tls() -> tuple[ssl.SSLContext, tuple[str, ...]]:
    raise RuntimeError("TLS is not configured")


def _errno(err: OSError) -> int | None:
    """cheroot wraps bind errors in a new socket.error without errno; the cause has it."""
    cause = err.__cause__
    return err.errno or (cause.errno if isinstance(cause, OSError) else None)
