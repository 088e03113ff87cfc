"""TLS for the web configuration: ``tls_server_config`` as settings, what Go's names mean to Python's
ssl, the server's ``ssl.SSLContext`` (its files read when it is made) and exporter-toolkit's
``client_allowed_sans`` check."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.web.webconfig.files import WebConfigError, read_text

# exporter-toolkit's client_auth_type values, and what Python's ssl can make of them.
VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    # Go asks for a certificate and never checks it; asking without checking changes nothing for access.
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNSUPPORTED_CLIENT_AUTH = ("RequireAnyClientCert", "RequireClientCert")  # RequireClientCert: Go's old alias

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's crypto/tls CipherSuites() names -> OpenSSL names. TLS 1.3 suites are not configurable in Go
# either (its tls.Config ignores them), so they are accepted and map to nothing.
CIPHER_SUITES = {
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

CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}


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
    cert_text = read_text(tls.cert_file, name=name, key="tls_server_config.cert_file") if tls.cert_file else tls.cert
    key_text = read_text(tls.key_file, name=name, key="tls_server_config.key_file") if tls.key_file else tls.key
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

    context.verify_mode = VERIFY_MODES[tls.client_auth_type]
    if context.verify_mode != ssl.CERT_NONE:
        ca_key = "client_ca_file" if tls.client_ca_file else "client_ca"
        try:
            if tls.client_ca_file:
                ca_text = read_text(tls.client_ca_file, name=name, key="tls_server_config.client_ca_file")
                context.load_verify_locations(cadata=ca_text)
            elif tls.client_ca:
                context.load_verify_locations(cadata=tls.client_ca)
            else:  # as Go: without a client CA, the system's roots verify client certificates
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise WebConfigError(f"{prefix}.{ca_key}: no usable PEM CA certificate: {reason}") from None

    tls12_ciphers = [CIPHER_SUITES[suite] for suite in tls.cipher_suites if CIPHER_SUITES[suite]]
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
        context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
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
