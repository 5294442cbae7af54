"""The port through which the RPC surface gets the secret it needs to check a signature.

An HMAC is verified by recomputing it, so the server must hold the AccessKey's (or the STS
session's) secret itself — sealed at rest, unsealed only to verify. This module names only
what the adapter asks of whoever keeps them; ``Runtime.secret_lookup`` is the process's.
Until sealed storage is wired in, the runtime's lookup knows no secret and every signed
call is refused ``InvalidAccessKeyId.NotFound`` (the /v1 Basic surface is unaffected).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NoSecrets", "SecretLookup"]


class SecretLookup(Protocol):
    """``secret_for``: the secret of a live AccessKey id or ``STS.…`` session id, or None.

    None means "not known here": the caller is refused ``InvalidAccessKeyId.NotFound``. An
    answer is only the material to check the signature with; whether the key is active, its
    account open and its session token valid is decided afterwards by the index, exactly as
    for /v1 (``api.deps.authenticate_keys``).
    """

    def secret_for(self, access_key_id: str) -> str | None: ...


class NoSecrets:
    """A lookup that knows no secret (the default until sealed secrets are wired in)."""

    def secret_for(self, access_key_id: str) -> str | None:
        return None
