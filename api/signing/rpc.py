"""RPC signature V1 (HMAC-SHA1, ``SignatureVersion=1.0``): the parameters signed as a whole.

As aliyun-python-sdk-core 2.16 (``auth/composer/rpc_signature_composer.py``) and
alibabacloud-tea-openapi 0.4 (``Utils.get_rpcsignature``, used when the client's
``signature_algorithm`` is ``'v2'``) sign: every parameter of the query and the form body but
``Signature``, sorted by name, each name and value percent-encoded (RFC 3986: space ``%20``,
``*`` ``%2A``, ``~`` kept), joined ``name=value`` with ``&``; the string to sign is
``METHOD&%2F&`` + that string percent-encoded again; the key is ``secret + "&"``; the
signature is the HMAC-SHA1, base64.

alibabacloud-credentials 1.0 (``utils/parameter_helper.compose_string_to_sign``, used for
AssumeRole from a RAM-role-ARN provider) encodes with ``quote_plus`` instead: a space is
``+`` inside, ``%2B`` once encoded again. The two differ only when some name or value holds a
space, so only then is that second form tried.
"""

from __future__ import annotations

from dataclasses import dataclass

from mandate.api.signing.canonical import (
    Pairs,
    Signature,
    form_encode,
    hmac_sha1_base64,
    iso8601,
    one_param,
    pairs,
    percent_encode,
    same,
)
from mandate.api.signing.errors import IncompleteSignature, SignatureDoesNotMatch

SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"


@dataclass(frozen=True)
class RpcRequest(Signature):
    """An RPC request signed with V1, parsed; ``verify`` checks it with the secret."""

    method: str
    params: tuple[tuple[str, str], ...]
    """Every parameter but ``Signature``, sorted by name then value."""

    def string_to_sign(self, *, plus_for_space: bool = False) -> str:
        """The string the client signed (``plus_for_space``: alibabacloud-credentials' form)."""
        encode = form_encode if plus_for_space else percent_encode
        canonical = "&".join(f"{encode(k)}={encode(v)}" for k, v in self.params)
        return f"{self.method}&%2F&{encode(canonical)}"

    def verify(self, secret: str) -> None:
        """Raise ``SignatureDoesNotMatch`` unless the parameters were signed with ``secret``."""
        key = secret + "&"
        expected = self.string_to_sign()
        if same(self.signature, hmac_sha1_base64(key, expected)):
            return
        if any(" " in k or " " in v for k, v in self.params):
            variant = self.string_to_sign(plus_for_space=True)
            if same(self.signature, hmac_sha1_base64(key, variant)):
                return
        raise SignatureDoesNotMatch(expected)


def parse_rpc(method: str, params: Pairs) -> RpcRequest:
    """Read a V1-signed RPC request: ``params`` are the query's and the form body's together.

    Raises ``IncompleteSignature`` when a signing parameter is missing, repeated or of a
    method/version not supported, ``InvalidTimeStampFormat`` for an unreadable ``Timestamp``.
    """
    items = pairs(params)
    signature = _required(items, "Signature")
    access_key_id = _required(items, "AccessKeyId")
    signature_method = _required(items, "SignatureMethod")
    if signature_method != SIGNATURE_METHOD:
        raise IncompleteSignature(
            f"SignatureMethod {signature_method!r} is not supported: use {SIGNATURE_METHOD}."
        )
    version = _required(items, "SignatureVersion")
    if version != SIGNATURE_VERSION:
        raise IncompleteSignature(
            f"SignatureVersion {version!r} is not supported: use {SIGNATURE_VERSION}."
        )
    signature_type = one_param(items, "SignatureType")
    if signature_type:  # aliyun-python-sdk-core sends it empty; BEARERTOKEN is not ours
        raise IncompleteSignature(f"SignatureType {signature_type!r} is not supported.")
    timestamp = iso8601(_required(items, "Timestamp"), "Timestamp")
    nonce = _required(items, "SignatureNonce")
    token = one_param(items, "SecurityToken")
    signed = tuple(sorted((k, v) for k, v in items if k != "Signature"))
    return RpcRequest(
        method=method.upper(),
        params=signed,
        # A ``+`` sent unescaped in a query reads back as a space; base64 has no spaces.
        signature=signature.replace(" ", "+"),
        access_key_id=access_key_id,
        security_token=token or None,
        timestamp=timestamp,
        nonce=nonce,
    )


def _required(items: list[tuple[str, str]], name: str) -> str:
    value = one_param(items, name)
    if not value:
        raise IncompleteSignature(f"The request is not signed: {name} is missing.")
    return value
