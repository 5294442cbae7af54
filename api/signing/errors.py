"""The refusals of signature checking, each carrying the code Alibaba Cloud answers with.

The adapter turns one into its wire form (RPC JSON, OSS XML); the message never holds a
secret. ``SignatureDoesNotMatch``'s message ends ``server string to sign is:<string>`` with no
other colon before it: aliyun-python-sdk-core 2.16 (``AcsClient._get_server_exception``)
compares ``message.split(':')[1]`` with the string it signed to tell a wrong secret from a
wrongly built request.
"""

from __future__ import annotations

from typing import ClassVar


class SigningError(Exception):
    """A request whose signature cannot be accepted; ``code`` and ``http_status`` as RAM's."""

    code: ClassVar[str] = "IncompleteSignature"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IncompleteSignature(SigningError):
    """The signature's parts are missing, malformed or of a kind not supported."""

    code = "IncompleteSignature"


class SignatureDoesNotMatch(SigningError):
    """The signature differs from the one computed with the secret.

    ``string_to_sign`` is what the server signed (echoed so a client can compare);
    ``canonical_request`` too for the schemes that have one (never shown unless asked).
    """

    code = "SignatureDoesNotMatch"

    def __init__(
        self, string_to_sign: str, *, reason: str = "", canonical_request: str | None = None
    ) -> None:
        lead = reason or "Specified signature does not match our calculation."
        super().__init__(f"{lead} server string to sign is:{string_to_sign}")
        self.string_to_sign = string_to_sign
        self.canonical_request = canonical_request


OSS_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided."
)
"""OSS's own wording of ``SignatureDoesNotMatch`` (V1 and V4 alike)."""


class InvalidTimeStampFormat(SigningError):
    """The request's time (``Timestamp``, ``x-acs-date``, ``Date``…) cannot be read."""

    code = "InvalidTimeStamp.Format"


class InvalidTimeStampExpired(SigningError):
    """The request's time is outside the accepted window, or a presigned URL has expired."""

    code = "InvalidTimeStamp.Expired"


class SignatureNonceUsed(SigningError):
    """The nonce was seen before within the window: a replay."""

    code = "SignatureNonceUsed"
