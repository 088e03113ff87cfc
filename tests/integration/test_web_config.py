"""--web.config.file: the exporter-toolkit format, checked at start as promtool checks it; basic auth
with a bounded cache; certificates picked up without a restart."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.web.webconfig.basic_auth import BasicAuth
from exporter.web.webconfig.files import WebConfigError
from exporter.web.webconfig.schema import load_web_config, parse_go_duration, parse_web_config
from exporter.web.webconfig.tls import client_san_allowed
from exporter.web.webconfig.watcher import WebConfigWatcher
from tests.helpers.certs import make_authority
from tests.helpers.support import run_exporter

PASSWORD = "s3cret"
# Cost 4, the lowest bcrypt allows: these tests check logic, not bcrypt's slowness.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.crt/key, client.crt/key (signed by ca) and other-ca.crt in one directory."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_authority(directory, "ca")
    ca.issue("server", server=True)
    ca.issue("client", server=False)
    make_authority(directory, "other-ca")
    return directory


@pytest.fixture
def web_dir(tmp_path: Path, pki: Path) -> Path:
    """A directory with the certificates, where a web.yml can name them by relative paths."""
    for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key", "other-ca.crt"):
        shutil.copy(pki / name, tmp_path / name)
    return tmp_path


def write(directory: Path, text: str) -> str:
    path = directory / "web.yml"
    path.write_text(text)
    return str(path)


def promtool_accepts(path: str) -> bool:
    result = subprocess.run(["promtool", "check", "web-config", path], capture_output=True, text=True, check=False)
    return result.returncode == 0


TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"

# Configurations both we and promtool (Prometheus 2.42's, exporter-toolkit 0.9) accept.
GOOD = {
    "empty": "",
    "tls": TLS,
    "tls and auth": TLS + f"basic_auth_users:\n  prometheus: {HASH}\n",
    "mutual TLS": TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    "verify if given": TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
    "request client cert": TLS + "  client_auth_type: RequestClientCert\n",
    "versions and suites": TLS + "  min_version: TLS12\n  max_version: TLS13\n  cipher_suites:\n"
    "    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - TLS_AES_128_GCM_SHA256\n"
    "  prefer_server_cipher_suites: false\n",
    "one curve": TLS + "  curve_preferences: [X25519]\n",
    "headers": "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
    "    X-Content-Type-Options: nosniff\n    X-XSS-Protection: 0\n    Strict-Transport-Security: max-age=31536000\n",
    "auth only": f"basic_auth_users:\n  alice: {HASH}\n  1234: {HASH}\n",
    "no TLS setting that turns TLS on": "tls_server_config:\n  min_version: TLS13\n",
    "nulls": "tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n",
}

# Mistakes promtool also rejects: (text, the key our one line names, a word of the reason).
BAD = {
    "unknown top-level key": ("bogus: 1\n", "bogus", "unknown key"),
    "unknown TLS key": (TLS + "  certfile: x\n", "tls_server_config.certfile", "unknown key"),
    "junk": ("{{{\n", "", "invalid YAML"),
    "a list for a mapping": ("tls_server_config: [1]\n", "tls_server_config", "expected a mapping"),
    "a mapping for a string": (TLS.replace("server.key", "{a: 1}"), "tls_server_config.key_file", "expected a string"),
    "a string for a bool": ("http_server_config:\n  http2: 'yes'\n", "http_server_config.http2", "true or false"),
    "an int for a bool": ("http_server_config:\n  http2: 1\n", "http_server_config.http2", "true or false"),
    "a string for a list": (TLS + "  cipher_suites: TLS_AES_128_GCM_SHA256\n", "tls_server_config.cipher_suites",
                            "expected a list"),
    "missing key_file": ("tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file", "missing"),
    "missing cert_file": ("tls_server_config:\n  key_file: server.key\n", "tls_server_config.cert_file", "missing"),
    "cert file not found": (TLS.replace("server.crt", "nope.crt"), "tls_server_config.cert_file", "not found"),
    "key file not found": (TLS.replace("server.key", "nope.key"), "tls_server_config.key_file", "not found"),
    "key of another certificate": (TLS.replace("server.key", "client.key"), "tls_server_config.key_file",
                                   "does not match"),
    "key where the certificate goes": (TLS.replace("server.crt", "server.key"), "tls_server_config.cert_file",
                                       "no PEM certificate"),
    "client CA without client auth": (TLS + "  client_ca_file: ca.crt\n", "tls_server_config.client_ca_file",
                                      "client_auth_type"),
    "client CA file not found": (TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: no.crt\n",
                                 "tls_server_config.client_ca_file", "not found"),
    "unknown client auth": (TLS + "  client_auth_type: Always\n", "tls_server_config.client_auth_type",
                            "unknown value"),
    "unknown TLS version": (TLS + "  min_version: TLS14\n", "tls_server_config.min_version", "unknown TLS version"),
    "unknown cipher": (TLS + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "tls_server_config.cipher_suites",
                       "unknown cipher"),
    "unknown curve": (TLS + "  curve_preferences: [P256]\n", "tls_server_config.curve_preferences", "unknown curve"),
    "a header that cannot be set": ("http_server_config:\n  headers:\n    Server: nginx\n",
                                    "http_server_config.headers.Server", "can not be configured"),
    "a header value not allowed": ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                                   "http_server_config.headers.X-Frame-Options", "invalid value"),
    "not a bcrypt hash": ("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice", "not a bcrypt hash"),
    "a truncated bcrypt hash": (f"basic_auth_users:\n  alice: {HASH[:-20]}\n", "basic_auth_users.alice",
                                "not a bcrypt hash"),
    "a bcrypt cost out of range": (f"basic_auth_users:\n  alice: {HASH.replace('$04$', '$03$')}\n",
                                   "basic_auth_users.alice", "cost"),
    "a user twice": (f"basic_auth_users:\n  alice: {HASH}\n  alice: {HASH}\n", "basic_auth_users.alice",
                     "duplicate key"),
    "a list of users": (f"basic_auth_users:\n  - {HASH}\n", "basic_auth_users", "expected a mapping"),
}

# Refused here although promtool (exporter-toolkit) accepts them: Python's ssl cannot honour them as
# written, or they could never work, so the exporter says so at start instead of serving something
# weaker or failing later.
REFUSED_ON_PURPOSE = {
    "a hash one character short": (f"basic_auth_users:\n  alice: {HASH[:-1]}\n", "basic_auth_users.alice",
                                   "not a bcrypt hash"),
    "RequireAnyClientCert": (TLS + "  client_auth_type: RequireAnyClientCert\n", "tls_server_config.client_auth_type",
                             "not supported"),
    "two curves": (TLS + "  curve_preferences: [X25519, CurveP256]\n", "tls_server_config.curve_preferences",
                   "one curve"),
    "min above max": (TLS + "  min_version: TLS13\n  max_version: TLS12\n", "tls_server_config.min_version",
                      "above max_version"),
}


@pytest.mark.parametrize("text", GOOD.values(), ids=GOOD.keys())
def test_good_configurations_load_and_promtool_agrees(web_dir: Path, text: str) -> None:
    path = write(web_dir, text)
    config = load_web_config(path)
    assert promtool_accepts(path)
    if "cert_file" in text:
        assert config.tls is not None and config.tls.cert_file == str(web_dir / "server.crt")  # beside web.yml


@pytest.mark.parametrize(("text", "key", "reason"), BAD.values(), ids=BAD.keys())
def test_mistakes_are_one_line_naming_the_key_and_promtool_agrees(
    web_dir: Path, text: str, key: str, reason: str
) -> None:
    path = write(web_dir, text)
    with pytest.raises(WebConfigError) as raised:
        load_web_config(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: " if key else f"{path}: "), message
    assert reason in message
    assert not promtool_accepts(path), f"promtool accepts what we reject: {text!r}"


@pytest.mark.parametrize(("text", "key", "reason"), REFUSED_ON_PURPOSE.values(), ids=REFUSED_ON_PURPOSE.keys())
def test_settings_python_cannot_honour_are_refused_with_the_reason(
    web_dir: Path, text: str, key: str, reason: str
) -> None:
    with pytest.raises(WebConfigError, match=f"^{web_dir}/web.yml: {key}: .*{reason}"):
        load_web_config(write(web_dir, text))


def test_newer_exporter_toolkit_keys(web_dir: Path, pki: Path) -> None:
    """Inline PEM, client_allowed_sans and rate_limit (exporter-toolkit 0.10 and later)."""
    text = yaml.safe_dump({
        "tls_server_config": {
            "cert": (pki / "server.crt").read_text(),
            "key": (pki / "server.key").read_text(),
            "client_ca": (pki / "ca.crt").read_text(),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_allowed_sans": ["client.example.com"],
        },
        "rate_limit": {"interval": "100ms", "burst": 5},
    })
    config = load_web_config(write(web_dir, text))
    assert config.tls is not None and config.tls.client_allowed_sans == ("client.example.com",)
    assert config.rate_limit is not None and config.rate_limit.interval_seconds == pytest.approx(0.1)
    assert config.rate_limit.burst == 5
    with pytest.raises(WebConfigError, match=r"rate_limit\.burst: must be at least 1"):
        load_web_config(write(web_dir, "rate_limit:\n  interval: 1s\n"))
    with pytest.raises(WebConfigError, match=r"tls_server_config\.client_allowed_sans: needs a verified client"):
        load_web_config(write(web_dir, TLS + "  client_allowed_sans: [a]\n"))


def test_a_misplaced_secret_is_not_repeated_in_the_error(web_dir: Path) -> None:
    with pytest.raises(WebConfigError) as raised:
        load_web_config(write(web_dir, "tls_server_config: '-----BEGIN PRIVATE KEY-----secret'\n"))
    assert str(raised.value).endswith("tls_server_config: expected a mapping, got a string")
    with pytest.raises(WebConfigError) as raised:
        load_web_config(write(web_dir, "http_server_config:\n  http2: hunter2\n"))
    assert "hunter2" not in str(raised.value)


def test_files_that_would_hang_or_never_end_are_refused(web_dir: Path) -> None:
    fifo = web_dir / "fifo.yml"
    os.mkfifo(fifo)
    with pytest.raises(WebConfigError, match="not a regular file"):
        load_web_config(str(fifo))
    with pytest.raises(WebConfigError, match="not a regular file"):
        load_web_config("/dev/zero")
    with pytest.raises(WebConfigError, match="not a regular file"):
        load_web_config(str(web_dir))
    big = web_dir / "big.yml"
    big.write_text("#" * (2 << 20))
    with pytest.raises(WebConfigError, match="larger than"):
        load_web_config(str(big))


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(web_dir: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((web_dir / "server.key").read_bytes(), password=None)
    (web_dir / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    with pytest.raises(WebConfigError, match="key_file: encrypted private keys are not supported"):
        load_web_config(write(web_dir, TLS))


@pytest.mark.parametrize(
    ("flag_value", "text", "expected"),
    [
        ("web.yml", None, "web.yml: file not found"),
        ("web.yml", "tls_server_config:\n  cert_file: 5\n  key_file: server.key\n",
         "web.yml: tls_server_config.cert_file: '5': file not found"),
        ("web.yml", "basic_auth_users:\n  alice: hunter2\n", "web.yml: basic_auth_users.alice: not a bcrypt hash"),
        ("web.yml", "http_server_config: [headers]\n", "web.yml: http_server_config: expected a mapping"),
        ("web.yml", "tls_server_config:\n  cert: x\n  key_file: server.key\n  cert_file: server.crt\n",
         "web.yml: tls_server_config.cert: set either cert or cert_file"),
    ],
)
def test_the_command_line_exits_2_with_one_line(
    web_dir: Path, flag_value: str, text: str | None, expected: str
) -> None:
    if text is not None:
        write(web_dir, text)
    result = run_exporter(["--web.config.file", flag_value, "--web.listen-address", "127.0.0.1:0"],
                          cwd=str(web_dir), timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"emr-serverless-exporter: {expected}"), result.stderr
    assert "Traceback" not in result.stderr


# --- generated documents: never a traceback ---------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["server.crt", "server.key", "ca.crt", "TLS12", "TLS13", "RequireAndVerifyClientCert",
                     "NoClientCert", "RequireAnyClientCert", "deny", "nosniff", HASH, "1s", "-1s", "0",
                     "TLS_AES_128_GCM_SHA256", "X25519", "/dev/zero", ".", "web.yml"]),
)
_keys = st.sampled_from(["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit", "cert_file",
                         "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version",
                         "cipher_suites", "curve_preferences", "headers", "http2", "X-Frame-Options", "alice",
                         "interval", "burst", "cert", "key", "client_allowed_sans", "bogus"])
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(_keys, _documents, max_size=4))
def test_generated_documents_load_or_fail_with_one_line(web_dir: Path, document: dict[str, object]) -> None:
    path = write(web_dir, yaml.safe_dump(document))
    try:
        load_web_config(path)
    except WebConfigError as err:
        message = str(err)
        assert message.startswith(f"{path}: ") and "\n" not in message


# --- parts ----------------------------------------------------------------------------------------------


def test_go_durations() -> None:
    assert parse_go_duration("1s") == 1.0
    assert parse_go_duration("1m30s") == 90.0
    assert parse_go_duration("250ms") == pytest.approx(0.25)
    assert parse_go_duration("1.5h") == 5400.0
    assert parse_go_duration("0") == 0.0
    for bad in ("", "1", "s", "1 s", "-1s", "1d", "1s2"):
        assert parse_go_duration(bad) is None, bad


def test_client_allowed_sans() -> None:
    cert = {"subjectAltName": (("DNS", "client.example.com"), ("IP Address", "2001:DB8:0:0:0:0:0:1\n"),
                               ("URI", "spiffe://x/y"))}
    assert client_san_allowed(cert, ("client.example.com",))
    assert client_san_allowed(cert, ("2001:db8::1",))  # Go prints IPv6 short, Python long: compared as addresses
    assert client_san_allowed(cert, ("spiffe://x/y",))
    assert not client_san_allowed(cert, ("other.example.com", "10.0.0.1"))
    assert not client_san_allowed({}, ("client.example.com",))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth() -> None:
    auth = BasicAuth({"prometheus": HASH, "user:with:colons": HASH})
    assert auth.check(basic("prometheus", PASSWORD))
    assert auth.check("basic " + basic("prometheus", PASSWORD).split()[1])  # the scheme is case-insensitive
    assert auth.check(basic("prometheus", PASSWORD + ":x")) is False
    assert auth.check(basic("user:with:colons", PASSWORD)) is False  # the user name ends at the first colon
    for wrong in (None, "", "Basic", "Basic !!!", "Bearer x", basic("prometheus", "wrong"), basic("nobody", PASSWORD),
                  basic("prometheus", "x" * 100), "Basic " + base64.b64encode(b"no-colon").decode(),
                  "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        assert auth.check(wrong) is False, wrong


def test_basic_auth_pays_bcrypt_once_per_credential_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[bytes] = []  # the passwords bcrypt was asked to check
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checked.append(password)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    auth = BasicAuth({"prometheus": HASH}, cache_size=2)
    for _ in range(5):
        assert auth.check(basic("prometheus", PASSWORD))
    assert checked == [PASSWORD.encode()]
    for _ in range(3):  # failures are not remembered: each guess costs bcrypt, and the real entry stays
        assert not auth.check(basic("prometheus", "guess"))
    assert len(checked) == 4
    assert auth.check(basic("prometheus", PASSWORD)) and len(checked) == 4
    assert len(auth._cache) <= 2
    # A new hash for the user: the old password no longer passes, cached or not.
    rotated = BasicAuth({"prometheus": bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4)).decode()})
    assert not rotated.check(basic("prometheus", PASSWORD)) and rotated.check(basic("prometheus", "new"))


def test_a_config_without_tls_settings_is_plain_http() -> None:
    config = parse_web_config("basic_auth_users: {}\n", name="w.yml", base_dir=Path("."))
    assert config.tls is None and not config.users


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watched(web_dir: Path) -> Iterator[tuple[Path, WebConfigWatcher, Clock]]:
    clock = Clock()
    write(web_dir, TLS + f"basic_auth_users:\n  prometheus: {HASH}\n")
    yield web_dir, WebConfigWatcher(str(web_dir / "web.yml"), clock=clock), clock


def test_a_renewed_certificate_is_picked_up_and_a_broken_one_is_not(
    watched: tuple[Path, WebConfigWatcher, Clock], pki: Path
) -> None:
    web_dir, watcher, clock = watched
    first = watcher.current()
    assert watcher.current() is first
    renewed_ca = make_authority(web_dir, "renewed-ca")
    renewed = renewed_ca.issue("renewed", server=True)
    os.replace(renewed.cert, web_dir / "server.crt")
    os.replace(renewed.key, web_dir / "server.key")
    assert watcher.current() is first  # looked at no more than once a second
    clock.now += 1.5
    second = watcher.current()
    assert second is not first and second.ssl_context is not first.ssl_context
    assert second.auth is first.auth  # same users: the verified-credentials cache is kept
    # Half-written key: logged, and the renewed certificate stays in force.
    (web_dir / "server.key").write_text("-----BEGIN PRIVATE KEY-----\ntruncated")
    clock.now += 1.5
    assert watcher.current() is second
    clock.now += 1.5
    assert watcher.current() is second  # the same broken files are not tried again
    # A new password hash in web.yml applies without a restart.
    shutil.copy(pki / "server.key", web_dir / "server.key")
    shutil.copy(pki / "server.crt", web_dir / "server.crt")
    write(web_dir, TLS + "basic_auth_users:\n  other: " + HASH + "\n")
    clock.now += 1.5
    third = watcher.current()
    assert set(third.config.users) == {"other"} and third.auth is not first.auth


def test_turning_tls_off_needs_a_restart(watched: tuple[Path, WebConfigWatcher, Clock]) -> None:
    web_dir, watcher, clock = watched
    first = watcher.current()
    write(web_dir, f"basic_auth_users:\n  prometheus: {HASH}\n")
    clock.now += 1.5
    assert watcher.current() is first


# --- the documented example (docs/security.md) ------------------------------------------------------------


def documented_web_config() -> str:
    page = (Path(__file__).resolve().parents[2] / "docs/security.md").read_text()
    block = re.search(r"<!-- web-config-example:.*?-->\n```yaml\n(.*?)```\n<!-- /web-config-example -->", page, re.S)
    assert block, "docs/security.md lost its web-config-example markers"
    return block.group(1)


def test_the_documented_example_passes_promtool_and_loads(tmp_path: Path) -> None:
    text = documented_web_config()
    example = yaml.safe_load(text)
    tls = example["tls_server_config"]
    ca = make_authority(tmp_path, "client-ca")
    server = ca.issue("server", server=True)
    os.replace(server.cert, tmp_path / tls["cert_file"])
    os.replace(server.key, tmp_path / tls["key_file"])
    assert str(ca.cert_file) == str(tmp_path / tls["client_ca_file"])
    path = write(tmp_path, text)
    result = subprocess.run(["promtool", "check", "web-config", path], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_web_config(path)
    assert config.tls is not None and config.tls.client_auth_type == "RequireAndVerifyClientCert"
    user = next(iter(config.users))
    assert BasicAuth(config.users).check(basic(user, "change-me"))  # the password the docs name
