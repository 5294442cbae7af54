"""Verifying Alibaba Cloud request signatures, written from the algorithms (no SDK imported).

Pure functions over plain values (method, path, query pairs, headers, body hash), so the RPC
adapter at ``/`` and ``/v1`` can share them without this package knowing any web framework.
Each scheme is parsed first (``parse_*``: who signed, with which token, when, which nonce),
so the caller can look the AccessKey up (and answer ``InvalidAccessKeyId.NotFound`` itself);
then ``verify`` checks the signature with the secret, and ``ReplayGuard`` the clock and nonce
(only after the signature holds, so an unsigned request cannot burn someone's nonce)::

    request = parse_rpc(method, query_pairs + form_pairs)  # or parse_acs3 / parse_oss_*
    secret = lookup(request.access_key_id)  # the caller: InvalidAccessKeyId.NotFound
    guard.check(request, secret)  # clock, signature, then nonce
    # request.security_token, if any, is the caller's to check against the key

Every refusal is a ``SigningError`` with ``code``, ``http_status`` and ``message``.
"""

from mandate.api.signing.acs3 import Acs3Request, parse_acs3
from mandate.api.signing.canonical import Headers, Pairs, SignedRequest
from mandate.api.signing.errors import (
    IncompleteSignature,
    InvalidTimeStampExpired,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    SigningError,
)
from mandate.api.signing.oss import OssV1Request, parse_oss_v1_header, parse_oss_v1_url
from mandate.api.signing.oss4 import OssV4Request, parse_oss_v4_header, parse_oss_v4_url
from mandate.api.signing.replay import NonceCache, NonceCacheFull, NonceStore, ReplayGuard
from mandate.api.signing.rpc import RpcRequest, parse_rpc

__all__ = [
    "Acs3Request",
    "Headers",
    "IncompleteSignature",
    "InvalidTimeStampExpired",
    "InvalidTimeStampFormat",
    "NonceCache",
    "NonceCacheFull",
    "NonceStore",
    "OssV1Request",
    "OssV4Request",
    "Pairs",
    "ReplayGuard",
    "RpcRequest",
    "SignatureDoesNotMatch",
    "SignatureNonceUsed",
    "SignedRequest",
    "SigningError",
    "parse_acs3",
    "parse_oss_v1_header",
    "parse_oss_v1_url",
    "parse_oss_v4_header",
    "parse_oss_v4_url",
    "parse_rpc",
]
