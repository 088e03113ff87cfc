"""HTTP serving: the telemetry path, a landing page, /healthz and /readyz.

A scrape runs (or joins) one collection bounded by the scrape's own timeout header, then renders it
(``exporter.exposition``: prometheus-client's encoders, text or OpenMetrics, gzip when asked). AWS
failures never turn into an HTTP error: they show in ``emr_serverless_up`` and the API error counters.
"""

from __future__ import annotations

import html
import logging
import socket
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from exporter import __version__
from exporter.collection import CollectionRunner
from exporter.exposition import Exposition

log = logging.getLogger(__name__)

# Leave Prometheus time to receive and parse the answer before its own timeout ends the scrape.
SCRAPE_TIMEOUT_MARGIN_SECONDS = 0.5


@dataclass(frozen=True)
class WebContext:
    runner: CollectionRunner
    exposition: Exposition
    telemetry_path: str
    demo: bool = False


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9865`` -> ("", 9865); ``[::1]:9865`` -> ("::1", 9865); raises ValueError with the reason."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("expected HOST:PORT or :PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], context: WebContext) -> None:
        self.context = context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ExporterRequestHandler)


class ExporterRequestHandler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    server_version = f"emr-serverless-exporter/{__version__}"

    def do_GET(self) -> None:
        context = self.server.context
        path = urlsplit(self.path).path
        if path == context.telemetry_path:
            self._metrics(context)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", landing_page(context).encode())
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/readyz":
            if context.runner.ready.is_set():
                self._send(200, "text/plain; charset=utf-8", b"ready\n")
            else:
                self._send(503, "text/plain; charset=utf-8", b"the first collection has not finished\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _metrics(self, context: WebContext) -> None:
        context.runner.collect(timeout=self._scrape_timeout())
        parts, content_type = context.exposition.render_parts(self.headers.get("Accept", ""))
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            parts = gzip_parts(parts)
            self._send(200, content_type, parts, {"Content-Encoding": "gzip"})
        else:
            self._send(200, content_type, parts)

    def _scrape_timeout(self) -> float | None:
        header = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
        try:
            seconds = float(header) if header else None
        except ValueError:
            return None
        return max(0.1, seconds - SCRAPE_TIMEOUT_MARGIN_SECONDS) if seconds else None

    def _send(
        self, status: int, content_type: str, body: bytes | list[bytes], headers: dict[str, str] | None = None
    ) -> None:
        parts = [body] if isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.writelines(parts)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http request", extra={"fields": {"client": self.client_address[0], "request": format % args}})


def gzip_parts(parts: list[bytes]) -> list[bytes]:
    """gzip, piece by piece: the compressed body is ~50x smaller than the text, which is never joined.
    Level 6 compresses this repetitive text as well as 9 in half the time."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: gzip header and trailer
    compressed = [compressor.compress(part) for part in parts]
    compressed.append(compressor.flush())
    return [piece for piece in compressed if piece]


def landing_page(context: WebContext) -> str:
    rows = []
    for result in context.runner.latest or []:
        outcome = "ok" if result.up else "; ".join(html.escape(str(err)) for err in result.errors[:3])
        rows.append(
            f"<tr><td>{html.escape(result.identity.name)}</td><td>{html.escape(result.identity.region)}</td>"
            f"<td>{len(result.applications)}</td><td>{len(result.sessions)}</td>"
            f"<td>{result.duration_seconds:.2f}s</td><td>{outcome}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="6">no collection has finished yet</td></tr>')
    demo = (
        "<p><strong>Demo mode:</strong> this data comes from the built-in EMR Serverless simulator, not AWS.</p>"
        if context.demo
        else ""
    )
    path = html.escape(context.telemetry_path)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EMR Serverless Exporter</title></head>
<body>
<h1>EMR Serverless Exporter</h1>
<p>Version {html.escape(__version__)}</p>
{demo}
<p><a href="{path}">Metrics</a></p>
<h2>Targets</h2>
<table border="1" cellpadding="4">
<tr><th>target</th><th>region</th><th>applications</th><th>sessions</th><th>last collection</th><th>result</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
