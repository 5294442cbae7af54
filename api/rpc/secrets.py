"""The port through which the signed surfaces get the secret they need to check a signature.

An HMAC is verified by recomputing it, so the server must hold the AccessKey's (or the STS
session's) secret itself — sealed at rest (in the events and the decision index), unsealed
only to verify. ``SecretLookup`` names what the adapters ask; ``SealedSecrets`` is the
runtime's: the decision index's ``secret_for``, whose refusals become RAM's wording.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from mandate.api.signing import SigningError
from mandate.projections.decisions.credentials import SecretNotSealed
from mandate.projections.decisions.index import DecisionIndex

__all__ = ["KeyCannotSign", "SealedSecrets", "SecretLookup"]


class SecretLookup(Protocol):
    """``secret_for``: the secret of a live AccessKey id or ``STS.…`` session id, or None.

    None means "not known here": the caller is refused ``InvalidAccessKeyId.NotFound``. An
    answer is only the material to check the signature with; whether the key is active, its
    account open and its session token valid is decided afterwards by the index, exactly as
    for /v1 (``api.signed_requests.authenticate_keys``). A ``SigningError`` raised here
    refuses the call with its own code and message.
    """

    def secret_for(self, access_key_id: str) -> str | None: ...


class KeyCannotSign(SigningError):
    """The key exists but its secret cannot verify a signature (issued before secrets were
    sealed): RAM's "not found", with a message saying why and what to do."""

    code: ClassVar[str] = "InvalidAccessKeyId.NotFound"
    http_status: ClassVar[int] = 404


class SealedSecrets:
    """The runtime's lookup: secrets unsealed from the decision index on demand."""

    def __init__(self, index: DecisionIndex) -> None:
        self._index = index

    def secret_for(self, access_key_id: str) -> str | None:
        try:
            return self._index.secret_for(access_key_id)
        except SecretNotSealed as refused:
            raise KeyCannotSign(f"Specified access key cannot sign requests: {refused}.") from None
