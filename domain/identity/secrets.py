"""Credential material: generation, and the keyed hashes that are all the ledger keeps.

Secrets are long random strings, so a keyed hash (HMAC-SHA256) is enough — no slow KDF is
needed and verification stays in the microseconds the decision path allows. Each stored
hash names the id of the key that made it (``k1$<hex>``) so the hashing key can rotate:
old hashes verify under their own key id while new ones use the current key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["KeyedMacs", "SecretHasher", "new_access_key_id", "new_access_key_secret", "new_token"]

_ALNUM = string.ascii_letters + string.digits


def new_access_key_id(prefix: str = "LTAI") -> str:
    """An AccessKey id in Alibaba's shape: a fixed prefix and 20 random characters."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(20))


def new_access_key_secret() -> str:
    """A 30-character secret, shown once to the caller and never stored in clear."""
    return "".join(secrets.choice(_ALNUM) for _ in range(30))


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class KeyedMacs:
    """HMAC-SHA256 under each configured key id, for keys that rotate.

    Each key's HMAC state is prepared once and copied per use: on the authentication path
    that costs about half of a fresh ``hmac.digest`` (OpenSSL 3 re-fetches the digest on
    every call).
    """

    __slots__ = ("_prepared",)

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._prepared = {k: hmac.new(key, digestmod=hashlib.sha256) for k, key in keys.items()}

    def of(self, key_id: str, message: str) -> hmac.HMAC | None:
        """The MAC of ``message`` under ``key_id``; None when no such key is configured."""
        prepared = self._prepared.get(key_id)
        if prepared is None:
            return None
        mac = prepared.copy()
        mac.update(message.encode())
        return mac


@dataclass(frozen=True)
class SecretHasher:
    """Keyed hashes of secrets, verifiable under any key id still configured."""

    current_key_id: str
    keys: Mapping[str, bytes] = field(repr=False)
    _macs: KeyedMacs = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current_key_id not in self.keys:
            raise ValueError(f"hash key {self.current_key_id!r} is not configured")
        if "$" in self.current_key_id:
            raise ValueError("hash key ids may not contain '$'")
        object.__setattr__(self, "_macs", KeyedMacs(self.keys))

    def _digest(self, key_id: str, secret: str) -> str | None:
        mac = self._macs.of(key_id, secret)
        return None if mac is None else mac.hexdigest()

    def hash(self, secret: str) -> str:
        return f"{self.current_key_id}${self._digest(self.current_key_id, secret)}"

    def verify(self, secret: str, stored: str) -> bool:
        key_id, _, expected = stored.partition("$")
        digest = self._digest(key_id, secret)
        return digest is not None and hmac.compare_digest(digest, expected)
