"""Basic auth for the web configuration's ``basic_auth_users``: bcrypt hashes, checked at most once per
credential that passed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

# bcrypt of "fakepassword" (exporter-toolkit's): an unknown user costs what a known one does, so the
# answer time does not tell which users exist.
_UNKNOWN_USER_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
BCRYPT_HASH = re.compile(r"\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}")
# Verified credentials remembered, so that a scrape does not pay bcrypt (~70 ms at cost 10) each time.
AUTH_CACHE_SIZE = 100


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
