"""The web configuration of ``--web.config.file``: TLS, mutual TLS, basic auth and response headers.

The format and semantics are the Prometheus exporter-toolkit's (docs/web-configuration.md), which
node_exporter and every official exporter read and ``promtool check web-config`` checks. The file is
read and checked once at start (every mistake is a ``WebConfigError``: one line naming the file and
the key); ``WebConfigWatcher`` then picks up changed files (a renewed certificate, a new password
hash) without a restart, as exporter-toolkit does.

Where Python's ``ssl`` module cannot do what Go's crypto/tls does, the setting is refused with a
clear reason instead of being silently weakened: ``RequireAnyClientCert`` (Python cannot ask for a
certificate without verifying it) and more than one entry in ``curve_preferences``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import ssl
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import bcrypt
import yaml

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20  # a web config, a certificate or a key is a few KB; /dev/zero is not one

# exporter-toolkit's client_auth_type values, and what Python's ssl can make of them.
_VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    # Go asks for a certificate and never checks it; asking without checking changes nothing for access.
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNSUPPORTED_CLIENT_AUTH = ("RequireAnyClientCert", "RequireClientCert")  # RequireClientCert: Go's old alias

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's crypto/tls CipherSuites() names -> OpenSSL names. TLS 1.3 suites are not configurable in Go
# either (its tls.Config ignores them), so they are accepted and map to nothing.
_CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}

# The only response headers exporter-toolkit lets a web config set, with their allowed values (None: any).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# bcrypt of "fakepassword" (exporter-toolkit's): an unknown user costs what a known one does, so the
# answer time does not tell which users exist.
_UNKNOWN_USER_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}")
# Verified credentials remembered, so that a scrape does not pay bcrypt (~70 ms at cost 10) each time.
AUTH_CACHE_SIZE = 100

_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class WebConfigError(Exception):
    """A web configuration problem; ``str()`` is one line: ``FILE: KEY: reason``."""


# --- the configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSServerConfig:
    """``tls_server_config``; relative file names are already resolved against the file's directory."""

    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    client_ca_file: str | None = None
    client_ca: str | None = field(default=None, repr=False)
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(path for path in (self.cert_file, self.key_file, self.client_ca_file) if path)


@dataclass(frozen=True)
class RateLimit:
    interval_seconds: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """A checked web configuration. ``tls`` is None when it does not turn TLS on (plain HTTP)."""

    name: str  # the file name as the user gave it, for messages
    tls: TLSServerConfig | None = None
    headers: tuple[tuple[str, str], ...] = ()
    users: Mapping[str, str] = field(default_factory=dict, repr=False)  # user name -> bcrypt hash
    rate_limit: RateLimit | None = None
    http2: bool = True  # accepted for compatibility; the server speaks HTTP/1.1

    @property
    def files(self) -> tuple[str, ...]:
        return self.tls.files if self.tls else ()


def load_web_config(path: str) -> WebConfig:
    """Read, parse and check ``path``, including the certificate, key and CA files it names."""
    config = parse_web_config(_read_text(path, name=path, key=None), name=path, base_dir=Path(path).parent)
    if config.tls:
        build_ssl_context(config.tls, name=path)  # every file readable, the key matching the certificate
    return config


def parse_web_config(text: str, *, name: str, base_dir: Path) -> WebConfig:
    """The configuration in ``text``; files it names are resolved but not read."""
    reader = _Reader(name)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise WebConfigError(f"{name}: invalid YAML{where}: {problem}") from None
    top = reader.mapping(root, "", ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"))
    tls = _parse_tls(reader, top.get("tls_server_config"), base_dir)
    http = reader.mapping(top.get("http_server_config"), "http_server_config", ("http2", "headers"))
    headers = _parse_headers(reader, http.get("headers"))
    users = _parse_users(reader, top.get("basic_auth_users"))
    return WebConfig(
        name=name,
        tls=tls,
        headers=headers,
        users=users,
        rate_limit=_parse_rate_limit(reader, top.get("rate_limit")),
        http2=reader.boolean(http.get("http2"), "http_server_config.http2", default=True),
    )


def _parse_tls(reader: _Reader, node: yaml.Node | None, base_dir: Path) -> TLSServerConfig | None:
    keys = ("cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
            "client_allowed_sans", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
            "curve_preferences")
    section = reader.mapping(node, "tls_server_config", keys)
    text = {key: reader.string(section.get(key), f"tls_server_config.{key}") or None
            for key in ("cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
                        "min_version", "max_version")}

    def path_of(key: str) -> str | None:
        value = text[key]
        return str(base_dir / value) if value and not os.path.isabs(value) else value

    def version(key: str, default: ssl.TLSVersion) -> ssl.TLSVersion:
        value = text[key]
        if value is None:
            return default
        if value not in _TLS_VERSIONS:
            reader.fail(f"tls_server_config.{key}", f"unknown TLS version {value!r}, expected one of "
                        + ", ".join(_TLS_VERSIONS))
        return _TLS_VERSIONS[value]

    tls = TLSServerConfig(
        cert_file=path_of("cert_file"),
        key_file=path_of("key_file"),
        cert=text["cert"],
        key=text["key"],
        client_ca_file=path_of("client_ca_file"),
        client_ca=text["client_ca"],
        client_auth_type=text["client_auth_type"] or "NoClientCert",
        client_allowed_sans=reader.strings(section.get("client_allowed_sans"), "tls_server_config.client_allowed_sans"),
        min_version=version("min_version", ssl.TLSVersion.TLSv1_2),
        max_version=version("max_version", ssl.TLSVersion.TLSv1_3),
        cipher_suites=reader.strings(section.get("cipher_suites"), "tls_server_config.cipher_suites"),
        prefer_server_cipher_suites=reader.boolean(section.get("prefer_server_cipher_suites"),
                                                   "tls_server_config.prefer_server_cipher_suites", default=True),
        curve_preferences=reader.strings(section.get("curve_preferences"), "tls_server_config.curve_preferences"),
    )
    _check_names(reader, tls)
    # exporter-toolkit: without a certificate, key or client auth setting, TLS is off (plain HTTP).
    if not any(text[key] for key in ("cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type",
                                     "client_ca_file")):
        return None
    _check_tls(reader, tls)
    return tls


def _check_names(reader: _Reader, tls: TLSServerConfig) -> None:
    """What Go checks while reading the YAML, TLS on or off: cipher and curve names."""
    prefix = "tls_server_config"
    for name in tls.cipher_suites:
        if name not in _CIPHER_SUITES:
            reader.fail(f"{prefix}.cipher_suites", f"unknown cipher {name!r} (Go's crypto/tls names, e.g. "
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
    for name in tls.curve_preferences:
        if name not in _CURVES:
            reader.fail(f"{prefix}.curve_preferences", f"unknown curve {name!r}, expected one of " + ", ".join(_CURVES))


def _check_tls(reader: _Reader, tls: TLSServerConfig) -> None:
    """What makes a TLS configuration usable."""
    prefix = "tls_server_config"
    auth = tls.client_auth_type
    if auth in _UNSUPPORTED_CLIENT_AUTH:
        reader.fail(f"{prefix}.client_auth_type", f"{auth} is not supported: Python's ssl module cannot require a "
                    "client certificate without verifying it; use RequireAndVerifyClientCert with client_ca_file")
    if auth not in _VERIFY_MODES:
        reader.fail(f"{prefix}.client_auth_type", f"unknown value {auth!r}, expected one of "
                    + ", ".join([*_VERIFY_MODES, *_UNSUPPORTED_CLIENT_AUTH[:1]]))
    if (tls.client_ca_file or tls.client_ca) and _VERIFY_MODES[auth] == ssl.CERT_NONE:
        key = "client_ca_file" if tls.client_ca_file else "client_ca"
        reader.fail(f"{prefix}.{key}", f"a client CA is set but client_auth_type is {auth}, which checks no "
                    "client certificate; set client_auth_type: RequireAndVerifyClientCert")
    if tls.client_allowed_sans and _VERIFY_MODES[auth] == ssl.CERT_NONE:
        reader.fail(f"{prefix}.client_allowed_sans", f"needs a verified client certificate, but client_auth_type is "
                    f"{auth}; set client_auth_type: RequireAndVerifyClientCert")
    for key in ("cert", "key", "client_ca"):
        if getattr(tls, key) and getattr(tls, f"{key}_file"):
            reader.fail(f"{prefix}.{key}", f"set either {key} or {key}_file, not both")
    if not (tls.cert_file or tls.cert):
        reader.fail(f"{prefix}.cert_file", "missing: TLS needs cert_file (or cert) and key_file (or key)")
    if not (tls.key_file or tls.key):
        reader.fail(f"{prefix}.key_file", "missing: TLS needs cert_file (or cert) and key_file (or key)")
    if tls.min_version > tls.max_version:
        reader.fail(f"{prefix}.min_version", "is above max_version")
    if tls.cipher_suites and not any(_CIPHER_SUITES[name] for name in tls.cipher_suites) \
            and tls.max_version < ssl.TLSVersion.TLSv1_3:
        reader.fail(f"{prefix}.cipher_suites", "lists only TLS 1.3 suites, but max_version is below TLS13")
    if len(tls.curve_preferences) > 1:
        reader.fail(f"{prefix}.curve_preferences", "Python's ssl module can restrict the key exchange to one curve "
                    "only; list one")


def _parse_headers(reader: _Reader, node: yaml.Node | None) -> tuple[tuple[str, str], ...]:
    headers = []
    for name, value in reader.string_map(node, "http_server_config.headers").items():
        key = f"http_server_config.headers.{name}"
        if name not in ALLOWED_HEADERS:
            reader.fail(key, "this header can not be configured; allowed: " + ", ".join(ALLOWED_HEADERS))
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and value not in allowed:
            reader.fail(key, f"invalid value {value!r}, expected one of {', '.join(allowed)}")
        if "\r" in value or "\n" in value:
            reader.fail(key, "a header value cannot contain a line break")
        if value:  # exporter-toolkit: unset if blank
            headers.append((name, value))
    return tuple(headers)


def _parse_users(reader: _Reader, node: yaml.Node | None) -> dict[str, str]:
    users = reader.string_map(node, "basic_auth_users")
    for user, hashed in users.items():
        match = _BCRYPT_HASH.fullmatch(hashed)
        if not match:
            reader.fail(f"basic_auth_users.{user}", "not a bcrypt hash ($2y$10$ followed by 53 characters; "
                        "make one with htpasswd -nBC 10 \"\" or Python's bcrypt.hashpw)")
        if not 4 <= int(match.group(1)) <= 31:
            reader.fail(f"basic_auth_users.{user}", f"bcrypt cost {match.group(1)} is outside 4 to 31")
    return users


def _parse_rate_limit(reader: _Reader, node: yaml.Node | None) -> RateLimit | None:
    section = reader.mapping(node, "rate_limit", ("interval", "burst"))
    interval_node = section.get("interval")
    interval = 0.0
    if interval_node is not None and not reader.is_null(interval_node):
        if not isinstance(interval_node, yaml.ScalarNode):
            reader.fail("rate_limit.interval", "expected a duration like 1s or 500ms")
        if interval_node.tag.endswith(":int"):
            interval = int(reader.value(interval_node)) * 1e-9  # a bare integer is nanoseconds, as in Go
        else:
            parsed = parse_go_duration(interval_node.value)
            if parsed is None:
                reader.fail("rate_limit.interval", f"invalid duration {interval_node.value!r}, "
                            "expected e.g. 1s or 500ms")
            interval = parsed
    burst = reader.integer(section.get("burst"), "rate_limit.burst", default=0)
    if interval < 0 or burst < 0:
        reader.fail("rate_limit", "interval and burst must not be negative")
    if interval == 0:
        return None  # exporter-toolkit: an interval of 0 turns the limiter off
    if burst < 1:
        reader.fail("rate_limit.burst", "must be at least 1 when interval is set, or every request is refused")
    return RateLimit(interval_seconds=interval, burst=burst)


def parse_go_duration(text: str) -> float | None:
    """Go's time.ParseDuration for non-negative durations: ``1m30s`` -> 90.0; None when invalid."""
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) and text else None


class _Reader:
    """Typed access to the YAML node tree, with the error naming the file and the key.

    Scalars become strings as they are written (``X-XSS-Protection: 0`` is "0"), as in Go's yaml.v2;
    lists and mappings where a scalar belongs, unknown keys and duplicate keys are errors."""

    _constructor = yaml.constructor.SafeConstructor()

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, key: str, reason: str) -> NoReturn:
        raise WebConfigError(f"{self.name}: {key}: {reason}" if key else f"{self.name}: {reason}")

    @staticmethod
    def is_null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"

    def value(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node)

    def _kind(self, node: yaml.Node) -> str:
        """What the node is, never its value: a misplaced value may be a key or a password."""
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        kinds = {"bool": "a boolean", "int": "an integer", "float": "a number", "null": "nothing"}
        return kinds.get(node.tag.rsplit(":", 1)[-1], "a string")

    def _entries(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node]]:
        if node is None or self.is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            self.fail(key, f"expected a mapping, got {self._kind(node)}")
        entries: list[tuple[str, yaml.Node]] = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or self.is_null(key_node):
                self.fail(key, "keys must be strings")
            name = key_node.value
            if name in seen:
                self.fail(f"{key}.{name}" if key else name, "duplicate key")
            seen.add(name)
            entries.append((name, value_node))
        return entries

    def mapping(self, node: yaml.Node | None, key: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        entries = dict(self._entries(node, key))
        for name in entries:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else name, "unknown key, expected one of " + ", ".join(allowed))
        return entries

    def string(self, node: yaml.Node | None, key: str) -> str | None:
        if node is None or self.is_null(node):
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.fail(key, f"expected a string, got {self._kind(node)}")
        value: str = node.value
        return value

    def strings(self, node: yaml.Node | None, key: str) -> tuple[str, ...]:
        if node is None or self.is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.fail(key, f"expected a list of strings, got {self._kind(node)}")
        return tuple(self.string(item, f"{key}[{index}]") or "" for index, item in enumerate(node.value))

    def string_map(self, node: yaml.Node | None, key: str) -> dict[str, str]:
        return {name: self.string(value, f"{key}.{name}") or "" for name, value in self._entries(node, key)}

    def boolean(self, node: yaml.Node | None, key: str, *, default: bool) -> bool:
        if node is None or self.is_null(node):
            return default
        if not (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool"):
            self.fail(key, f"expected true or false, got {self._kind(node)}")
        return bool(self.value(node))

    def integer(self, node: yaml.Node | None, key: str, *, default: int) -> int:
        if node is None or self.is_null(node):
            return default
        if not (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int"):
            self.fail(key, f"expected an integer, got {self._kind(node)}")
        return int(self.value(node))


def _read_text(path: str, *, name: str, key: str | None) -> str:
    """A regular, readable, small text file (a FIFO would hang the start, /dev/zero would never end)."""

    def fail(reason: str) -> WebConfigError:
        return WebConfigError(f"{name}: {key}: {reason}" if key else f"{name}: {reason}")

    shown = f"{path!r}: " if key else ""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise fail(f"{shown}cannot read: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise fail(f"{shown}cannot read: larger than {MAX_FILE_BYTES} bytes")
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail(f"{shown}file not found") from None
    except OSError as err:
        raise fail(f"{shown}cannot read: {err.strerror or err}") from None
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise fail(f"{shown}not UTF-8 text") from None


# --- TLS ------------------------------------------------------------------------------------------------


def _no_passphrase() -> bytes:
    # Without this, OpenSSL would prompt on the terminal for the passphrase of an encrypted key.
    return b""


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """A file name for inline PEM text: ssl loads keys from files only. In memory where Linux allows."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("pem")
        try:
            os.write(fd, text.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="web-config-")  # private: mode 0700
    path = os.path.join(directory, "pem")
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(text)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def build_ssl_context(tls: TLSServerConfig, *, name: str) -> ssl.SSLContext:
    """The server-side SSLContext for ``tls``, reading its files now."""
    prefix = f"{name}: tls_server_config"
    cert_text = _read_text(tls.cert_file, name=name, key="tls_server_config.cert_file") if tls.cert_file else tls.cert
    key_text = _read_text(tls.key_file, name=name, key="tls_server_config.key_file") if tls.key_file else tls.key
    cert_key = "cert_file" if tls.cert_file else "cert"
    key_key = "key_file" if tls.key_file else "key"
    assert cert_text is not None and key_text is not None  # _check_tls
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise WebConfigError(f"{prefix}.{cert_key}: no PEM certificate found")
    if "PRIVATE KEY-----" not in key_text:
        raise WebConfigError(f"{prefix}.{key_key}: no PEM private key found")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    try:
        context.minimum_version = tls.min_version
        context.maximum_version = tls.max_version
    except ValueError as err:
        raise WebConfigError(f"{prefix}.min_version: not supported here: {err}") from None
    with contextlib.ExitStack() as files:
        cert_path = tls.cert_file or files.enter_context(_pem_file(cert_text))
        key_path = tls.key_file or files.enter_context(_pem_file(key_text))
        try:
            context.load_cert_chain(cert_path, key_path, password=_no_passphrase)
        except ssl.SSLError as err:
            if "ENCRYPTED" in key_text:
                raise WebConfigError(f"{prefix}.{key_key}: encrypted private keys are not supported") from None
            if err.reason == "KEY_VALUES_MISMATCH":
                raise WebConfigError(f"{prefix}.{key_key}: the private key does not match the certificate "
                                     f"in {cert_key}") from None
            raise WebConfigError(f"{prefix}.{cert_key}: cannot load the certificate and key: "
                                 f"{err.reason or err}") from None
        except OSError as err:
            raise WebConfigError(f"{prefix}.{cert_key}: cannot load the certificate and key: {err}") from None

    context.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    if context.verify_mode != ssl.CERT_NONE:
        ca_key = "client_ca_file" if tls.client_ca_file else "client_ca"
        try:
            if tls.client_ca_file:
                ca_text = _read_text(tls.client_ca_file, name=name, key="tls_server_config.client_ca_file")
                context.load_verify_locations(cadata=ca_text)
            elif tls.client_ca:
                context.load_verify_locations(cadata=tls.client_ca)
            else:  # as Go: without a client CA, the system's roots verify client certificates
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise WebConfigError(f"{prefix}.{ca_key}: no usable PEM CA certificate: {reason}") from None

    tls12_ciphers = [_CIPHER_SUITES[suite] for suite in tls.cipher_suites if _CIPHER_SUITES[suite]]
    if tls12_ciphers:
        try:
            context.set_ciphers(":".join(str(cipher) for cipher in tls12_ciphers))
        except ssl.SSLError:
            raise WebConfigError(f"{prefix}.cipher_suites: none of them is available in this OpenSSL") from None
    elif tls.cipher_suites:
        context.minimum_version = ssl.TLSVersion.TLSv1_3  # only TLS 1.3 suites: nothing left for 1.2 and below
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.curve_preferences:
        context.set_ecdh_curve(_CURVES[tls.curve_preferences[0]])
    return context


def client_san_allowed(peer_certificate: Mapping[str, Any], allowed: tuple[str, ...]) -> bool:
    """exporter-toolkit's client_allowed_sans: a DNS name, e-mail, IP address or URI of the verified
    client certificate equals an entry of the list (IP addresses compared as addresses)."""
    wanted_ips = set()
    for entry in allowed:
        with contextlib.suppress(ValueError):
            wanted_ips.add(ipaddress.ip_address(entry))
    for kind, value in peer_certificate.get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(value.strip()) in wanted_ips:
                    return True
        elif value in allowed:
            return True
    return False


# --- basic auth -----------------------------------------------------------------------------------------


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes; remembers credentials that passed.

    The cache is keyed by an HMAC (with a key made at start) of user, hash and password, never the
    password itself, holds only successes (so failed guesses cannot push out the real scraper's entry),
    and is bounded. A changed hash is a new key, so an old password stops working at once."""

    def __init__(self, users: Mapping[str, str], cache_size: int = AUTH_CACHE_SIZE) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_key = os.urandom(32)
        self._bcrypt_lock = threading.Lock()  # bcrypt is CPU-bound: one at a time, as exporter-toolkit does
        self.bcrypt_calls = 0

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check(self, authorization: str | None) -> bool:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = user in self._users
        hashed = self._users.get(user, _UNKNOWN_USER_HASH)
        digest = hmac.new(self._cache_key, digestmod=hashlib.sha256)
        for part in (user.encode(), hashed, password):
            digest.update(len(part).to_bytes(8, "big") + part)
        key = digest.digest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
        with self._bcrypt_lock:
            self.bcrypt_calls += 1
            try:
                matches = bcrypt.checkpw(password, hashed)
            except ValueError:  # e.g. a password longer than bcrypt's 72 bytes
                matches = False
        if not (matches and known):
            return False
        with self._cache_lock:
            self._cache[key] = None
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return True


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode(), password) if sep else None
    except (ValueError, UnicodeDecodeError):
        return None


# --- picking up changes --------------------------------------------------------------------------------


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
