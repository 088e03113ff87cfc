"""HTTP serving: the telemetry path, a landing page, /healthz and /readyz, as a WSGI application.

A scrape runs (or joins) one collection bounded by the scrape's own timeout header, unless one finished
after the scrape arrived (in background mode it takes the latest instead), then gets its rendering in the
format its Accept header asks for (``exporter.render.exposition.negotiate``), gzip-compressed when
Accept-Encoding prefers it; concurrent scrapes share one render (``exporter.render.renderings``). HEAD
answers the same headers without collecting or rendering. AWS failures never turn into an HTTP error: they
show in ``emr_serverless_up`` and the API error counters. A scrape's own headers can cause one error only:
406, for an Accept-Encoding that refuses both gzip and identity.

With a web configuration (``--web.config.file``), every response carries its headers and everything
but the probes needs basic auth when users are configured: /healthz and /readyz stay open so that the
kubelet (or any load balancer) can probe without credentials, and they say nothing but ok or ready.
``exporter.web.server`` serves this application, the probes (``PROBE_PATHS``) on workers of their own:
they answer while every other worker holds a scrape waiting on a collection.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter import __version__
from exporter.collect.runner import CollectionRunner
from exporter.common.tokenbucket import TokenBucket
from exporter.model.kinds import KINDS
from exporter.render.background import BackgroundRenderer
from exporter.render.exposition import Exposition, chunks, header_items, negotiate
from exporter.render.renderings import OnScrapeRenderer, Rendered
from exporter.web.server import ARRIVED_KEY
from exporter.web.webconfig.schema import RateLimit
from exporter.web.webconfig.watcher import LoadedWebConfig

log = logging.getLogger(__name__)

# Leave Prometheus time to receive and parse the answer before its own timeout ends the scrape.
SCRAPE_TIMEOUT_MARGIN_SECONDS = 0.5
# The least a scrape's timeout header can leave a collection. A collection cut sooner ends before AWS's
# first answers (a page takes a round trip or two): every target would be `up` 0 with nothing new, though
# the scraper that asked so little has given up already. The collection it started still serves the
# next scrape, and the configured collection.timeout_seconds bounds it as always.
MIN_SCRAPE_TIMEOUT_SECONDS = 1.0
TEXT = "text/plain; charset=utf-8"
# Answered at once, without credentials.
PROBE_PATHS = ("/healthz", "/readyz")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass(frozen=True)
class WebContext:
    runner: CollectionRunner
    exposition: Exposition
    telemetry_path: str
    demo: bool = False
    background: BackgroundRenderer | None = None  # background mode: scrapes serve its latest renderings


@dataclass
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: Sequence[bytes] = ()
    # HEAD on the telemetry path answers without rendering: the length is known only when a rendering is.
    length_known: bool = True


def text_response(status: str, text: str, *headers: tuple[str, str]) -> Response:
    return Response(status, [("Content-Type", TEXT), *headers], [text.encode()])


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9865`` -> ("", 9865); ``[::1]:9865`` -> ("::1", 9865); raises ValueError with the reason."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("expected HOST:PORT or :PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def choose_encoding(accept_encoding: str) -> str | None:
    """Accept-Encoding negotiation (RFC 9110 section 12.5.3): "gzip", "identity", or None when the
    client refuses both (answered 406).

    gzip when it is acceptable (listed as gzip or x-gzip, or covered by ``*``, with q > 0) and not less
    preferred than an identity the client lists explicitly; ``gzip;q=0`` or ``*;q=0`` rule it out.
    identity is acceptable unless ``identity;q=0``, or ``*;q=0`` without an entry for identity."""
    qualities: dict[str, float] = {}
    for coding, _, quality in header_items(accept_encoding):
        if coding:
            qualities[coding] = max(qualities.get(coding, 0.0), quality)
    if "gzip" in qualities or "x-gzip" in qualities:
        gzip_q = max(qualities.get("gzip", 0.0), qualities.get("x-gzip", 0.0))
    else:
        gzip_q = qualities.get("*", 0.0)
    identity_q = qualities.get("identity", qualities.get("*", 1.0))
    if gzip_q > 0 and gzip_q >= qualities.get("identity", 0.0):
        return "gzip"
    return "identity" if identity_q > 0 else None


class ExporterApp:
    """The WSGI application. ``web_config`` gives the web configuration in force (None: plain HTTP,
    no auth, no extra headers)."""

    def __init__(self, context: WebContext, web_config: Callable[[], LoadedWebConfig] | None = None) -> None:
        self.context = context
        self._web_config = web_config
        self._on_scrape = OnScrapeRenderer(context.runner, context.exposition)
        self._rate_limit: tuple[RateLimit, TokenBucket] | None = None  # the limit in force and its bucket

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        response = self._respond(environ, method, path)
        headers = response.headers
        if self._web_config is not None:
            headers.extend(self._web_config().config.headers)
        if response.length_known:
            headers.append(("Content-Length", str(sum(len(part) for part in response.body))))
        start_response(response.status, headers)
        log.debug("http request", extra={"fields": {"client": environ.get("REMOTE_ADDR", ""), "method": method,
                                                    "path": path, "status": response.status[:3]}})
        return [] if method == "HEAD" else chunks(response.body)

    def _respond(self, environ: Environ, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            return text_response("405 Method Not Allowed", "method not allowed\n", ("Allow", "GET, HEAD"))
        context = self.context
        if path == "/healthz":
            return text_response("200 OK", "ok\n")
        if path == "/readyz":
            if context.runner.ready.is_set():
                return text_response("200 OK", "ready\n")
            return text_response("503 Service Unavailable", "the first collection has not finished\n")
        refused = self._refused(environ)
        if refused is not None:
            return refused
        if path == context.telemetry_path:
            return self._metrics(environ, method)
        if path == "/":
            return Response("200 OK", [("Content-Type", "text/html; charset=utf-8")], [landing_page(context).encode()])
        return text_response("404 Not Found", "not found\n")

    def _refused(self, environ: Environ) -> Response | None:
        """429 past the rate limit, 401 without valid credentials; None when the request may go on."""
        if self._web_config is None:
            return None
        loaded = self._web_config()
        limit = loaded.config.rate_limit
        if limit is not None:
            if self._rate_limit is None or self._rate_limit[0] != limit:  # the first request, or a reloaded config
                self._rate_limit = (limit, TokenBucket(1 / limit.interval_seconds, limit.burst))
            if not self._rate_limit[1].try_acquire():
                return text_response("429 Too Many Requests", "too many requests\n")
        if loaded.auth.enabled and not loaded.auth.check(environ.get("HTTP_AUTHORIZATION")):
            return text_response("401 Unauthorized", "unauthorized\n",
                                 ("WWW-Authenticate", 'Basic realm="emr-serverless-exporter"'))
        return None

    def _metrics(self, environ: Environ, method: str) -> Response:
        vary = ("Vary", "Accept, Accept-Encoding")
        encoding = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if encoding is None:
            return text_response("406 Not Acceptable", "not acceptable: the body is sent as gzip or identity\n", vary)
        gzip = encoding == "gzip"
        negotiated = negotiate(environ.get("HTTP_ACCEPT", ""))
        context = self.context
        rendered: Rendered | None = None
        if method == "HEAD":  # what a GET would get, without rendering it, or collecting (no AWS call)
            source = context.background or self._on_scrape
            rendered = source.cached(negotiated, gzip)
        else:
            if context.background is not None:
                rendered = context.background.get(negotiated, gzip)
            else:
                # When it arrived, not when a worker took it: a collection that finished meanwhile serves it.
                context.runner.collect(timeout=scrape_timeout(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")),
                                       arrived=environ.get(ARRIVED_KEY))
            # Before the first background collection ends, what is known (nothing yet) is rendered: no AWS call.
            if rendered is None:
                rendered = self._on_scrape.get(negotiated, gzip)
        headers = [("Content-Type", negotiated.content_type), vary]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        if rendered is None:
            return Response("200 OK", headers, length_known=False)
        return Response("200 OK", headers, rendered.body)


def scrape_timeout(header: str | None) -> float | None:
    """The collection's bound for a scrape that sent ``X-Prometheus-Scrape-Timeout-Seconds: header``:
    None (the configured timeout alone) unless it is a finite number of seconds above 0."""
    try:
        seconds = float(header) if header else math.nan
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return max(MIN_SCRAPE_TIMEOUT_SECONDS, seconds - SCRAPE_TIMEOUT_MARGIN_SECONDS)


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
