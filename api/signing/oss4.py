"""OSS signature V4 (OSS4-HMAC-SHA256): the Authorization header and the presigned URL.

As oss2 2.19 signs (``oss2/auth.py``, ``ProviderAuthV4``)::

    Authorization: OSS4-HMAC-SHA256 Credential=<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request,
                   Signature=<hex>[, AdditionalHeaders=<h1;h2>]      (parts in any order)
    canonical request = VERB \\n URI \\n query \\n headers \\n additional \\n payload
    string to sign    = "OSS4-HMAC-SHA256\\n" + x-oss-date + "\\n" + scope + "\\n"
                        + hex(sha256(canonical request))
    signing key       = hmac chain "aliyun_v4"+secret -> date -> region -> product
                        -> "aliyun_v4_request" (SHA-256)

URI: ``/<bucket>/<key>`` (``/`` without a bucket) with everything but ``A-Za-z0-9_-~.`` and
``/`` percent-encoded (upper-case hex). Query: every parameter (a URL's but
``x-oss-signature``), name and value encoded likewise ``/`` included, sorted by encoded name,
``name=value`` or ``name`` when empty. Headers: ``x-oss-*``, ``content-type``,
``content-md5`` and the additional ones present, ``name:value\\n``, sorted. Additional: the
additional names sorted, ``;``-joined. Payload: ``x-oss-content-sha256`` if sent, else
``UNSIGNED-PAYLOAD``. A URL carries ``x-oss-signature-version``, ``x-oss-credential``,
``x-oss-date``, ``x-oss-expires`` (seconds), ``x-oss-signature`` and maybe
``x-oss-additional-headers`` and ``x-oss-security-token``.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import NamedTuple

from mandate.api.signing.canonical import (
    Headers,
    Pairs,
    Received,
    compact_iso8601,
    header_lists,
    hex64,
    hmac_sha256,
    joined_header,
    one_header,
    one_param,
    pairs,
    percent_encode,
    same,
    sha256_hex,
)
from mandate.api.signing.errors import (
    OSS_SIGNATURE_MISMATCH,
    IncompleteSignature,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
)

ALGORITHM = "OSS4-HMAC-SHA256"
MAX_EXPIRES = 7 * 24 * 3600
_DEFAULT_SIGNED = ("content-type", "content-md5")


def v4_encode(text: str, *, keep_slash: bool) -> str:
    """oss2's ``__v4_uri_encode``: UTF-8 bytes, ``A-Za-z0-9_-~.`` kept, the rest ``%XX``
    (upper-case hex): exactly RFC 3986's ``percent_encode``."""
    return percent_encode(text, keep_slash=keep_slash)


def _signing_key(secret: str, date: str, region: str, product: str) -> bytes:
    """The V4 signing key: the HMAC chain from ``"aliyun_v4" + secret`` through the scope."""
    key = hmac_sha256(f"aliyun_v4{secret}".encode(), date)
    for part in (region, product, "aliyun_v4_request"):
        key = hmac_sha256(key, part)
    return key


_signing_keys = functools.lru_cache(maxsize=1024)(_signing_key)
"""``_signing_key``, remembered: a client's key for one day, region and product is the same
request after request, and four HMACs are most of a V4 verification. Like the opened secrets
(``Keyring.open_secret``) it only saves work: the secret it is derived from is handed out by
the index for a key or session it holds, which the index judges on every request anyway.
Bounded (``remember_signing_keys``), emptied with the keyring's opened secrets."""


def remember_signing_keys(size: int) -> None:
    """Remember at most ``size`` derived signing keys (0: none), forgetting those held."""
    global _signing_keys
    _signing_keys = functools.lru_cache(maxsize=max(size, 0))(_signing_key)


def forget_signing_keys() -> None:
    """Forget every derived signing key (on a rotation, with the opened secrets)."""
    _signing_keys.cache_clear()


class OssV4Request(NamedTuple):
    """An OSS request (header or presigned URL) signed with V4, parsed (a NamedTuple, as
    ``Acs3Request`` is: one is built per request)."""

    method: str
    uri: str
    query: str
    canonical_headers: str
    additional_headers: tuple[str, ...]
    payload: str
    date_time: str
    region: str
    product: str
    signature: str
    access_key_id: str
    security_token: str | None
    timestamp: datetime
    expires: datetime | None
    nonce: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.date_time[:8]}/{self.region}/{self.product}/aliyun_v4_request"

    def canonical_request(self) -> str:
        return (
            f"{self.method}\n{self.uri}\n{self.query}\n{self.canonical_headers}\n"
            f"{';'.join(self.additional_headers)}\n{self.payload}"
        )

    def string_to_sign(self) -> str:
        digest = sha256_hex(self.canonical_request().encode())
        return f"{ALGORITHM}\n{self.date_time}\n{self.scope}\n{digest}"

    def verify(self, secret: str) -> None:
        key = _signing_keys(secret, self.date_time[:8], self.region, self.product)
        expected = self.string_to_sign()
        if not same(self.signature, hmac_sha256(key, expected).hex()):
            raise SignatureDoesNotMatch(
                expected,
                reason=OSS_SIGNATURE_MISMATCH,
                canonical_request=self.canonical_request(),
            )


def parse_oss_v4_header(
    method: str,
    bucket: str | None,
    key: str,
    params: Pairs,
    headers: Headers,
    *,
    region: str | None = None,
) -> OssV4Request:
    """Read a request with ``Authorization: OSS4-HMAC-SHA256 …``.

    ``bucket``/``key`` decoded, ``params`` the decoded query; ``region``, when given, is the
    only region accepted in the credential scope.
    """
    lists = header_lists(headers)
    authorization = one_header(lists, "authorization") or ""
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Authorization must start with {ALGORITHM}.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name not in ("Credential", "Signature", "AdditionalHeaders"):
            raise IncompleteSignature(f"Authorization part {part.strip()!r} is not understood.")
        if name in fields:
            raise IncompleteSignature(f"Authorization gives {name} twice.")
        fields[name] = value
    date_time = one_header(lists, "x-oss-date")
    if not date_time:
        raise InvalidTimeStampFormat("The x-oss-date header is missing.")
    return _request(
        Received(method, bucket, key, pairs(params), lists),
        credential=fields.get("Credential", ""),
        signature=fields.get("Signature", ""),
        additional=fields.get("AdditionalHeaders", ""),
        date_time=date_time,
        expires=None,
        security_token=one_header(lists, "x-oss-security-token"),
        region=region,
    )


def parse_oss_v4_url(
    method: str,
    bucket: str | None,
    key: str,
    params: Pairs,
    headers: Headers,
    *,
    region: str | None = None,
) -> OssV4Request:
    """Read a V4 presigned URL (``x-oss-signature-version=OSS4-HMAC-SHA256`` and the rest)."""
    items = pairs(params)
    version = one_param(items, "x-oss-signature-version")
    if version != ALGORITHM:
        raise IncompleteSignature(f"x-oss-signature-version must be {ALGORITHM}.")
    date_time = one_param(items, "x-oss-date") or ""
    seconds = one_param(items, "x-oss-expires") or ""
    if not seconds.isdigit() or not 0 < int(seconds) <= MAX_EXPIRES:
        raise InvalidTimeStampFormat(
            f"x-oss-expires {seconds!r} is not a number of seconds from 1 to {MAX_EXPIRES}."
        )
    signed_at = compact_iso8601(date_time, "x-oss-date")
    unsigned = [(k, v) for k, v in items if k != "x-oss-signature"]
    return _request(
        Received(method, bucket, key, unsigned, header_lists(headers)),
        credential=one_param(items, "x-oss-credential") or "",
        signature=one_param(items, "x-oss-signature") or "",
        additional=one_param(items, "x-oss-additional-headers") or "",
        date_time=date_time,
        expires=signed_at + timedelta(seconds=int(seconds)),
        security_token=one_param(items, "x-oss-security-token"),
        region=region,
    )


def _request(
    received: Received,
    *,
    credential: str,
    signature: str,
    additional: str,
    date_time: str,
    expires: datetime | None,
    security_token: str | None,
    region: str | None,
) -> OssV4Request:
    method, bucket, key, items, lists = received
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0] or parts[4] != "aliyun_v4_request":
        raise IncompleteSignature(
            "Credential must be <AccessKeyId>/<date>/<region>/<product>/aliyun_v4_request."
        )
    access_key_id, date, scope_region, product, _ = parts
    timestamp = compact_iso8601(date_time, "x-oss-date")
    if date != date_time[:8]:
        raise IncompleteSignature(f"The credential's date {date} is not x-oss-date's day.")
    if region is not None and scope_region != region:
        raise IncompleteSignature(f"The credential's region {scope_region!r} is not {region!r}.")
    if not hex64(signature):
        raise IncompleteSignature("Signature must be 64 lower-case hex digits.")
    names = sorted({n.strip().lower() for n in additional.split(";") if n.strip()})
    signed = [
        f"{name}:{joined_header(values)}\n"
        for name, values in sorted(lists.items())
        if name.startswith("x-oss-") or name in _DEFAULT_SIGNED or name in names
    ]
    encoded = sorted(
        [(v4_encode(k, keep_slash=False), v4_encode(v, keep_slash=False)) for k, v in items]
    )
    uri = v4_encode(f"/{bucket}/{key}", keep_slash=True) if bucket else "/"
    return OssV4Request(
        method=method.upper(),
        uri=uri,
        query="&".join([f"{k}={v}" if v else k for k, v in encoded]),
        canonical_headers="".join(signed),
        additional_headers=tuple(names),
        payload=one_header(lists, "x-oss-content-sha256") or "UNSIGNED-PAYLOAD",
        date_time=date_time,
        region=scope_region,
        product=product,
        signature=signature,
        access_key_id=access_key_id,
        security_token=security_token or None,
        timestamp=timestamp,
        expires=expires,
    )
