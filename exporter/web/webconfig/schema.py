"""The web configuration file: parsed and checked as exporter-toolkit and ``promtool check web-config``
do, every mistake one ``WebConfigError`` line naming the file and the key."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from exporter.web.webconfig.basic_auth import BCRYPT_HASH
from exporter.web.webconfig.files import WebConfigError, read_text
from exporter.web.webconfig.tls import (
    CIPHER_SUITES,
    CURVES,
    TLS_VERSIONS,
    UNSUPPORTED_CLIENT_AUTH,
    VERIFY_MODES,
    TLSServerConfig,
    build_ssl_context,
)

# The only response headers exporter-toolkit lets a web config set, with their allowed values (None: any).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


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
    config = parse_web_config(read_text(path, name=path, key=None), name=path, base_dir=Path(path).parent)
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
        if value not in TLS_VERSIONS:
            reader.fail(f"tls_server_config.{key}", f"unknown TLS version {value!r}, expected one of "
                        + ", ".join(TLS_VERSIONS))
        return TLS_VERSIONS[value]

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
        if name not in CIPHER_SUITES:
            reader.fail(f"{prefix}.cipher_suites", f"unknown cipher {name!r} (Go's crypto/tls names, e.g. "
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
    for name in tls.curve_preferences:
        if name not in CURVES:
            reader.fail(f"{prefix}.curve_preferences", f"unknown curve {name!r}, expected one of " + ", ".join(CURVES))


def _check_tls(reader: _Reader, tls: TLSServerConfig) -> None:
    """What makes a TLS configuration usable."""
    prefix = "tls_server_config"
    auth = tls.client_auth_type
    if auth in UNSUPPORTED_CLIENT_AUTH:
        reader.fail(f"{prefix}.client_auth_type", f"{auth} is not supported: Python's ssl module cannot require a "
                    "client certificate without verifying it; use RequireAndVerifyClientCert with client_ca_file")
    if auth not in VERIFY_MODES:
        reader.fail(f"{prefix}.client_auth_type", f"unknown value {auth!r}, expected one of "
                    + ", ".join([*VERIFY_MODES, *UNSUPPORTED_CLIENT_AUTH[:1]]))
    if (tls.client_ca_file or tls.client_ca) and VERIFY_MODES[auth] == ssl.CERT_NONE:
        key = "client_ca_file" if tls.client_ca_file else "client_ca"
        reader.fail(f"{prefix}.{key}", f"a client CA is set but client_auth_type is {auth}, which checks no "
                    "client certificate; set client_auth_type: RequireAndVerifyClientCert")
    if tls.client_allowed_sans and VERIFY_MODES[auth] == ssl.CERT_NONE:
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
    if tls.cipher_suites and not any(CIPHER_SUITES[name] for name in tls.cipher_suites) \
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
        match = BCRYPT_HASH.fullmatch(hashed)
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
