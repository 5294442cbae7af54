"""Security tokens of STS sessions: what binds a session's key id to its expiry, signed.

A token is ``v1.<key id>.<access_key_id>.<expiry, epoch seconds>.<HMAC-SHA256, base64url>``.
It carries no secret and no permission: the session's secret is still checked against its
keyed hash, and its permissions are still decided from the ledger. What the signature adds
is that a token cannot be forged or altered (a different key id, a later expiry) without the
signing key, which lives in the settings and never in an event, a log line or a response.

HMAC, not a public-key signature: the only verifiers are Mandate's own processes, which
share the key, and a MAC verifies in about a microsecond, inside the decision budget.
The key id names the key that signed, so the key can rotate while older tokens still verify.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mandate.domain.identity.secrets import KeyedMacs

__all__ = ["InvalidSessionToken", "SessionToken", "SessionTokenSigner"]

_VERSION = "v1"


class InvalidSessionToken(Exception):
    """The token is malformed, signed with an unknown key, or its signature does not match."""


@dataclass(frozen=True, slots=True)
class SessionToken:
    access_key_id: str
    expiration: datetime


@dataclass(frozen=True)
class SessionTokenSigner:
    current_key_id: str
    keys: Mapping[str, bytes] = field(repr=False)  # a logged signer must not print its keys
    _macs: KeyedMacs = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current_key_id not in self.keys:
            raise ValueError(f"token signing key {self.current_key_id!r} is not configured")
        for key_id, key in self.keys.items():
            if not key_id or "." in key_id or not key_id.isascii():
                raise ValueError("token signing key ids must be non-empty ASCII and contain no '.'")
            if len(key) < 32:
                raise ValueError(f"token signing key {key_id!r} must be at least 32 bytes")
        object.__setattr__(self, "_macs", KeyedMacs(self.keys))

    def _mac(self, key_id: str, signed: str) -> str | None:
        mac = self._macs.of(key_id, signed)
        if mac is None:
            return None
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def issue(self, access_key_id: str, expiration: datetime) -> str:
        # whole seconds first: a float timestamp with a fraction may round up a second
        expiry = int(expiration.replace(microsecond=0).timestamp())
        signed = f"{_VERSION}.{self.current_key_id}.{access_key_id}.{expiry}"
        return f"{signed}.{self._mac(self.current_key_id, signed)}"

    def verify(self, token: str) -> SessionToken:
        """The session a token names, or ``InvalidSessionToken`` saying why not."""
        # Every issued token is ASCII; anything else (a client's JSON may carry any text,
        # lone surrogates included) would make ``encode``/``compare_digest`` raise instead.
        if not token.isascii():
            raise InvalidSessionToken("the security token is malformed")
        signed, _, signature = token.rpartition(".")
        parts = signed.split(".")
        # access key ids are ``STS.<random>``: one dot of their own
        if len(parts) != 5 or parts[0] != _VERSION:
            raise InvalidSessionToken("the security token is malformed")
        _, key_id, prefix, random_part, expiry = parts
        expected = self._mac(key_id, signed)
        if expected is None:
            raise InvalidSessionToken("the security token was signed with an unknown key")
        if not hmac.compare_digest(expected, signature):
            raise InvalidSessionToken("the security token's signature does not match")
        try:
            expiration = datetime.fromtimestamp(int(expiry), UTC)
        except (ValueError, OverflowError):
            raise InvalidSessionToken("the security token is malformed") from None
        return SessionToken(f"{prefix}.{random_part}", expiration)
