"""Who signed a request: the one check behind every signed surface.

The RPC dialect at ``/``, ``/v1``'s ``Authorization: ACS3-HMAC-SHA256`` header and
``/v1/authorize``'s enforcement-point form (OSS signatures) all authenticate the same way,
here, in ``mandate.api.signing``'s order: an ``STS.`` key must carry its token; the secret is
looked up (``Runtime.secret_lookup``; unknown: ``InvalidAccessKeyId.NotFound``); the
``ReplayGuard`` checks clock, signature, then nonce; only then does the index decide, with
``authenticate_signed`` (Basic's refusals, without hashing the secret again: the signature
proved it), whether the key is active, its account open, its session token valid and
unexpired. Each surface renders the refusals its own way (RAM's JSON at
``/``, ``application/problem+json`` on ``/v1``). The secret only verifies: it is never
echoed, logged or kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from mandate.api.runtime import Runtime
from mandate.api.signing import (
    Headers,
    IncompleteSignature,
    Pairs,
    ReplayGuard,
    SignedRequest,
    SigningError,
    parse_oss_v1_header,
    parse_oss_v1_url,
    parse_oss_v4_header,
    parse_oss_v4_url,
)
from mandate.api.signing.canonical import header_lists
from mandate.api.signing.oss4 import ALGORITHM as OSS4
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential, Refusal

__all__ = [
    "STS_PREFIX",
    "MissingSecurityToken",
    "UnknownAccessKey",
    "authenticate_keys",
    "oss_request",
    "refusal_code",
    "signed_credential",
]

STS_PREFIX = "STS."


class UnknownAccessKey(SigningError):
    """No secret is known for the AccessKeyId the request names."""

    code: ClassVar[str] = "InvalidAccessKeyId.NotFound"
    http_status: ClassVar[int] = 404


class MissingSecurityToken(SigningError):
    """STS credentials signed a request without their security token."""

    code: ClassVar[str] = "MissingSecurityToken"
    http_status: ClassVar[int] = 400


def authenticate_keys(
    runtime: Runtime, access_key_id: str, secret: str, security_token: str | None
) -> Credential:
    """An AccessKey, or STS credentials (``STS.…`` with their security token)."""
    if security_token is not None:
        return runtime.index.authenticate_session(access_key_id, secret, security_token)
    if access_key_id.startswith(STS_PREFIX):
        raise AuthenticationFailed(
            "STS credentials need their security token (the X-Security-Token header)",
            reason=Refusal.TOKEN_REQUIRED,
        )
    return runtime.index.authenticate(access_key_id, secret)


def signed_credential(
    runtime: Runtime, guard: ReplayGuard, signed: SignedRequest, *, writes: bool = True
) -> Credential:
    """The credential that signed ``signed``, proven; else a ``SigningError`` (the signature,
    its time or nonce, an unknown key, a missing token) or ``AuthenticationFailed`` (the
    index refused the key or session whose signature held). A request that ``writes`` has
    its nonce claimed in the processes' shared store too (``ReplayGuard``)."""
    key_id = signed.access_key_id
    token = signed.security_token
    if key_id.startswith(STS_PREFIX) and token is None:
        raise MissingSecurityToken("SecurityToken is mandatory for STS credentials.")
    secret = runtime.secret_lookup.secret_for(key_id)
    if secret is None:
        raise UnknownAccessKey("Specified access key is not found.")
    guard.check(signed, secret, writes=writes)
    return runtime.index.authenticate_signed(key_id, token)


_NOT_FOUND = "InvalidAccessKeyId.NotFound"
_EXPIRED = "InvalidSecurityToken.Expired"
_CODES: dict[Refusal, str] = {
    Refusal.KEY_REFUSED: _NOT_FOUND,
    Refusal.KEY_DEAD: _NOT_FOUND,
    Refusal.KEY_INACTIVE: "InvalidAccessKeyId.Inactive",
    Refusal.ACCOUNT_CLOSED: _NOT_FOUND,
    Refusal.USER_DELETED: _NOT_FOUND,
    Refusal.TOKEN_REQUIRED: _NOT_FOUND,
    Refusal.SECRET_MISMATCH: _NOT_FOUND,
    Refusal.TOKEN_MALFORMED: "InvalidSecurityToken.Malformed",
    Refusal.TOKEN_MISMATCH: "InvalidSecurityToken.MismatchWithAccessKey",
    Refusal.TOKEN_UNVERIFIABLE: _EXPIRED,
    Refusal.SESSION_UNKNOWN: _EXPIRED,
    Refusal.SESSION_EXPIRED: _EXPIRED,
    Refusal.SESSION_INVALID: _EXPIRED,  # revoked, its role deleted… (as RAM answers)
}


def refusal_code(failure: AuthenticationFailed) -> str:
    """RAM's code for the index's refusal of a key whose signature held: from its typed
    ``reason``, never from the words of its message."""
    return _CODES[failure.reason]


_V1_URL_PARAMS = frozenset({"OSSAccessKeyId", "Expires", "Signature"})


def oss_request(
    method: str,
    bucket: str | None,
    key: str,
    params: Pairs,
    headers: Headers,
    *,
    region: str | None = None,
) -> SignedRequest:
    """An OSS request as an enforcement point received it, parsed by the scheme that signed
    it: the ``Authorization`` header's (``OSS4-HMAC-SHA256 …`` V4, else V1 ``OSS ak:sig``),
    or without one the URL's (``x-oss-signature-version``: V4, ``OSSAccessKeyId``…: V1).
    ``region``, when given, is the only one a V4 credential scope may name."""
    lists = header_lists(headers)  # read once, handed on to the scheme's parser
    param_pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    authorization = lists.get("authorization")
    if authorization:
        if authorization[0].startswith(OSS4 + " "):
            return parse_oss_v4_header(method, bucket, key, param_pairs, lists, region=region)
        return parse_oss_v1_header(method, bucket, key, param_pairs, lists)
    names = {name for name, _ in param_pairs}
    if "x-oss-signature-version" in names:
        return parse_oss_v4_url(method, bucket, key, param_pairs, lists, region=region)
    if names & _V1_URL_PARAMS:
        return parse_oss_v1_url(method, bucket, key, param_pairs, lists)
    raise IncompleteSignature(
        "The request is not signed: no Authorization header and no signed URL parameters."
    )
