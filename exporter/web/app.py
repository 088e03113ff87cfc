"""HTTP serving: the telemetry path, a landing page, /healthz and /readyz, as a WSGI application.

A scrape runs (or joins) one collection bounded by the scrape's own timeout header, then renders it
(``exporter.render.exposition``: prometheus-client's encoders, text or OpenMetrics, gzip when asked). AWS
failures never turn into an HTTP error: they show in ``emr_serverless_up`` and the API error counters.

With a web configuration (``--web.config.file``), every response carries its headers and everything
but the probes needs basic auth when users are configured: /healthz and /readyz stay open so that the
kubelet (or any load balancer) can probe without credentials, and they say nothing but ok or ready.
``exporter.web.server`` serves this application.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from exporter import __version__
from exporter.collect.runner import CollectionRunner
from exporter.model.kinds import KINDS
from exporter.render.background import Snapshots
from exporter.render.exposition import Exposition, chunks, gzip_parts
from exporter.web.webconfig import LoadedWebConfig, RateLimit

log = logging.getLogger(__name__)

# Leave Prometheus time to receive and parse the answer before its own timeout ends the scrape.
SCRAPE_TIMEOUT_MARGIN_SECONDS = 0.5
PROBE_PATHS = ("/healthz", "/readyz")
TEXT = "text/plain; charset=utf-8"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass(frozen=True)
class WebContext:
    runner: CollectionRunner
    exposition: Exposition
    telemetry_path: str
    demo: bool = False
    snapshots: Snapshots | None = None  # background mode: scrapes serve the latest snapshot


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9865`` -> ("", 9865); ``[::1]:9865`` -> ("::1", 9865); raises ValueError with the reason."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("expected HOST:PORT or :PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def gzip_wanted(accept_encoding: str) -> bool:
    """Accept-Encoding negotiation (RFC 9110 section 12.5.3) between gzip and identity.

    gzip when it is acceptable (listed as gzip or x-gzip, or covered by ``*``, with q > 0) and not less
    preferred than an identity the client lists explicitly; ``gzip;q=0`` or ``*;q=0`` rule it out."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if coding:
            qualities[coding] = max(qualities.get(coding, 0.0), _quality(params))
    if "gzip" in qualities or "x-gzip" in qualities:
        gzip_q = max(qualities.get("gzip", 0.0), qualities.get("x-gzip", 0.0))
    else:
        gzip_q = qualities.get("*", 0.0)
    return gzip_q > 0 and gzip_q >= qualities.get("identity", 0.0)


class TokenBucket:
    """exporter-toolkit's ``rate_limit``: one request per ``interval`` on average, bursts of ``burst``."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.limit.burst, self._tokens + (now - self._at) / self.limit.interval_seconds)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class ExporterApp:
    """The WSGI application. ``web_config`` gives the web configuration in force (None: plain HTTP,
    no auth, no extra headers)."""

    def __init__(self, context: WebContext, web_config: Callable[[], LoadedWebConfig] | None = None) -> None:
        self.context = context
        self._web_config = web_config
        self._bucket: TokenBucket | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        status, headers, body = self._respond(environ, method, path)
        if self._web_config is not None:
            headers.extend(self._web_config().config.headers)
        headers.append(("Content-Length", str(sum(len(part) for part in body))))
        start_response(status, headers)
        log.debug("http request", extra={"fields": {"client": environ.get("REMOTE_ADDR", ""), "method": method,
                                                    "path": path, "status": status[:3]}})
        return [] if method == "HEAD" else chunks(body)

    def _respond(self, environ: Environ, method: str, path: str) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", [("Content-Type", TEXT), ("Allow", "GET, HEAD")], [b"method not allowed\n"]
        context = self.context
        if path == "/healthz":
            return "200 OK", [("Content-Type", TEXT)], [b"ok\n"]
        if path == "/readyz":
            if context.runner.ready.is_set():
                return "200 OK", [("Content-Type", TEXT)], [b"ready\n"]
            return "503 Service Unavailable", [("Content-Type", TEXT)], [b"the first collection has not finished\n"]
        refused = self._refused(environ)
        if refused is not None:
            return refused
        if path == context.telemetry_path:
            return self._metrics(environ, method)
        if path == "/":
            return "200 OK", [("Content-Type", "text/html; charset=utf-8")], [landing_page(context).encode()]
        return "404 Not Found", [("Content-Type", TEXT)], [b"not found\n"]

    def _refused(self, environ: Environ) -> tuple[str, list[tuple[str, str]], list[bytes]] | None:
        """429 past the rate limit, 401 without valid credentials; None when the request may go on."""
        if self._web_config is None:
            return None
        loaded = self._web_config()
        limit = loaded.config.rate_limit
        if limit is not None:
            bucket = self._bucket
            if bucket is None or bucket.limit != limit:  # the first request, or a reloaded web config
                bucket = self._bucket = TokenBucket(limit)
            if not bucket.allow():
                return "429 Too Many Requests", [("Content-Type", TEXT)], [b"too many requests\n"]
        if loaded.auth.enabled and not loaded.auth.check(environ.get("HTTP_AUTHORIZATION")):
            return (
                "401 Unauthorized",
                [("Content-Type", TEXT), ("WWW-Authenticate", 'Basic realm="emr-serverless-exporter"')],
                [b"unauthorized\n"],
            )
        return None

    def _metrics(self, environ: Environ, method: str) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        context = self.context
        if context.snapshots is not None:
            snapshot = context.snapshots.get(environ.get("HTTP_ACCEPT", ""),
                                             gzip_wanted(environ.get("HTTP_ACCEPT_ENCODING", "")))
            if snapshot is not None:
                headers = [("Content-Type", snapshot.content_type), ("Vary", "Accept, Accept-Encoding")]
                if snapshot.gzip:
                    headers.append(("Content-Encoding", "gzip"))
                return "200 OK", headers, list(snapshot.body)
            # Before the first background collection ends: render what is known (nothing yet), no AWS call.
        elif method == "GET":  # HEAD answers from what is known: it never costs AWS calls
            context.runner.collect(timeout=scrape_timeout(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")))
        parts, content_type = context.exposition.render_parts(environ.get("HTTP_ACCEPT", ""))
        headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
        if gzip_wanted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            parts = gzip_parts(parts)
            headers.append(("Content-Encoding", "gzip"))
        return "200 OK", headers, parts


def scrape_timeout(header: str | None) -> float | None:
    """The collection's bound for a scrape that sent ``X-Prometheus-Scrape-Timeout-Seconds: header``."""
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None
    return max(0.1, seconds - SCRAPE_TIMEOUT_MARGIN_SECONDS) if seconds else None


def landing_page(context: WebContext) -> str:
    rows = []
    for result in context.runner.latest or []:
        outcome = "ok" if result.up else "; ".join(html.escape(str(err)) for err in result.errors[:3])
        rows.append(
            f"<tr><td>{html.escape(result.identity.name)}</td><td>{html.escape(result.identity.region)}</td>"
            f"<td>{len(result.applications)}</td>"
            + "".join(f"<td>{len(result.objects.get(kind, ()))}</td>" for kind in KINDS)
            + f"<td>{result.duration_seconds:.2f}s</td><td>{outcome}</td></tr>"
        )
    if not rows:
        rows.append(f'<tr><td colspan="{5 + len(KINDS)}">no collection has finished yet</td></tr>')
    demo = (
        "<p><strong>Demo mode:</strong> this data comes from the built-in EMR Serverless simulator, not AWS.</p>"
        if context.demo
        else ""
    )
    path = html.escape(context.telemetry_path)
    kind_headers = "".join(f"<th>{kind.name.replace('_', ' ')}s</th>" for kind in KINDS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EMR Serverless Exporter</title></head>
<body>
<h1>EMR Serverless Exporter</h1>
<p>Version {html.escape(__version__)}</p>
{demo}
<p><a href="{path}">Metrics</a></p>
<h2>Targets</h2>
<table border="1" cellpadding="4">
<tr><th>target</th><th>region</th><th>applications</th>{kind_headers}<th>last collection</th><th>result</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
