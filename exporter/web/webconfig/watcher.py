"""The web configuration in force: read again when its file, or a certificate, key or CA file it names,
changed; the last good one kept when a change does not load."""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.web.webconfig.basic_auth import BasicAuth
from exporter.web.webconfig.files import WebConfigError
from exporter.web.webconfig.schema import WebConfig, load_web_config
from exporter.web.webconfig.tls import build_ssl_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedWebConfig:
    config: WebConfig
    ssl_context: ssl.SSLContext | None
    auth: BasicAuth


def _signature(paths: tuple[str, ...]) -> tuple[tuple[int, int, int, int] | None, ...]:
    signature: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)  # follows the symlinks Kubernetes swaps when a Secret changes
            signature.append((info.st_mtime_ns, info.st_size, info.st_ino, info.st_dev))
        except OSError:
            signature.append(None)
    return tuple(signature)


class WebConfigWatcher:
    """The current web configuration: the file and the certificate, key and CA files it names are
    looked at (stat) at most once a second; when one changed, all are read again. A changed file that
    does not load is logged once and the last good configuration stays in force, so a half-written
    certificate never takes the exporter down. Whether TLS is on cannot change without a restart."""

    CHECK_INTERVAL_SECONDS = 1.0

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        config = load_web_config(path)
        self._current = self._load(config)
        self._signature = _signature((path, *config.files))
        self._failed_signature: tuple[Any, ...] | None = None
        self._checked_at = clock()

    @staticmethod
    def _load(config: WebConfig) -> LoadedWebConfig:
        context = build_ssl_context(config.tls, name=config.name) if config.tls else None
        return LoadedWebConfig(config, context, BasicAuth(config.users))

    def current(self) -> LoadedWebConfig:
        with self._lock:
            now = self._clock()
            if now - self._checked_at < self.CHECK_INTERVAL_SECONDS:
                return self._current
            self._checked_at = now
            signature = _signature((self._path, *self._current.config.files))
            if signature == self._signature or signature == self._failed_signature:
                return self._current
            try:
                config = load_web_config(self._path)
                loaded = self._load(config)
                if (config.tls is None) != (self._current.config.tls is None):
                    raise WebConfigError(f"{self._path}: tls_server_config: turning TLS on or off needs a restart")
            except WebConfigError as err:
                self._failed_signature = signature
                log.error("web config changed but cannot be used; keeping the last good one",
                          extra={"fields": {"err": str(err)}})
                return self._current
            if loaded.config.users == self._current.config.users:
                loaded = LoadedWebConfig(loaded.config, loaded.ssl_context, self._current.auth)  # keep its cache
            self._current = loaded
            self._signature = _signature((self._path, *config.files))
            self._failed_signature = None
            log.info("web config reloaded", extra={"fields": {"file": self._path, "tls": config.tls is not None,
                                                              "basic_auth_users": len(config.users)}})
            return self._current
