"""OSS signature V1 (HMAC-SHA1): the ``Authorization: OSS`` header and the presigned URL.

As oss2 2.19 signs (``oss2/auth.py``, ``ProviderAuth``)::

    Authorization: OSS <AccessKeyId>:<base64 hmac-sha1(secret, string to sign)>
    string to sign = VERB \\n Content-MD5 \\n Content-Type \\n Date \\n
                     CanonicalizedOSSHeaders + CanonicalizedResource

``Date`` is the ``x-oss-date`` header when present, else ``Date``; for a presigned URL it is the
``Expires`` parameter (seconds since the epoch). CanonicalizedOSSHeaders: every ``x-oss-*``
header, ``name:value\\n``, names lower-cased, sorted. CanonicalizedResource:
``/<bucket>/<key>`` (the key decoded, as the client named it; ``/`` alone without a bucket)
followed by the sub-resources among the query parameters (the set below, oss2's), sorted,
``name=value`` (``name`` alone when the value is empty), unencoded, after ``?`` joined by
``&``. The URL's ``OSSAccessKeyId``, ``Expires`` and ``Signature`` are not signed; its
``security-token`` is (it is a sub-resource).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from mandate.api.signing.canonical import (
    Headers,
    Pairs,
    Received,
    header_lists,
    hmac_sha1_base64,
    http_date,
    joined_header,
    one_header,
    one_param,
    pairs,
    same,
)
from mandate.api.signing.errors import (
    OSS_SIGNATURE_MISMATCH,
    IncompleteSignature,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
)

SUBRESOURCES = frozenset(
    {
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "logging",
        "response-content-encoding",
        "acl",
        "uploadId",
        "uploads",
        "partNumber",
        "group",
        "link",
        "delete",
        "website",
        "location",
        "objectInfo",
        "objectMeta",
        "response-expires",
        "response-content-disposition",
        "cors",
        "lifecycle",
        "restore",
        "qos",
        "referer",
        "stat",
        "bucketInfo",
        "append",
        "position",
        "security-token",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "x-oss-process",
        "symlink",
        "callback",
        "callback-var",
        "tagging",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-traffic-limit",
        "qosInfo",
        "asyncFetch",
        "x-oss-request-payer",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
        "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask",
        "x-oss-ac-vpc-id",
        "x-oss-ac-forward-allow",
        "resourceGroup",
        "style",
        "styleName",
        "x-oss-async-process",
        "regionList",
        "x-oss-write-get-object-response",
        "bucketArchiveDirectRead",
        "httpsConfig",
        "redundancyTransition",
        "x-oss-target-redundancy-type",
        "x-oss-redundancy-transition-taskid",
        "accessPoint",
        "accessPointPolicy",
        "publicAccessBlock",
        "x-oss-access-point-name",
        "requesterQosInfo",
        "qosRequester",
        "resourcePoolInfo",
        "resourcePool",
        "resourcePoolBuckets",
    }
)
"""The query parameters oss2 2.19 signs in V1 (``ProviderAuth._subresource_key_set``)."""

_URL_PARAMS = ("OSSAccessKeyId", "Expires", "Signature")


class OssV1Request(NamedTuple):
    """An OSS request (header or presigned URL) signed with V1, parsed (a NamedTuple, as
    ``Acs3Request`` is: one is built per request)."""

    method: str
    content_md5: str
    content_type: str
    date: str
    """The Date line as signed: the header's text, or the URL's ``Expires``."""
    oss_headers: tuple[tuple[str, str], ...]
    resource: str
    signature: str
    access_key_id: str
    security_token: str | None
    timestamp: datetime | None
    expires: datetime | None
    nonce: str | None = None

    def string_to_sign(self) -> str:
        headers = "".join([f"{name}:{value}\n" for name, value in self.oss_headers])
        return (
            f"{self.method}\n{self.content_md5}\n{self.content_type}\n{self.date}\n"
            f"{headers}{self.resource}"
        )

    def verify(self, secret: str) -> None:
        expected = self.string_to_sign()
        if not same(self.signature, hmac_sha1_base64(secret, expected)):
            raise SignatureDoesNotMatch(expected, reason=OSS_SIGNATURE_MISMATCH)


def parse_oss_v1_header(
    method: str, bucket: str | None, key: str, params: Pairs, headers: Headers
) -> OssV1Request:
    """Read a request with ``Authorization: OSS <AccessKeyId>:<signature>``.

    ``bucket`` and ``key`` are the request's (decoded; the bucket from the host or the path),
    ``params`` its decoded query. Raises ``IncompleteSignature`` for a malformed header,
    ``InvalidTimeStampFormat`` when neither ``x-oss-date`` nor ``Date`` is an HTTP date.
    """
    lists = header_lists(headers)
    authorization = one_header(lists, "authorization") or ""
    scheme, _, credential = authorization.partition(" ")
    access_key_id, colon, signature = credential.strip().rpartition(":")
    if scheme != "OSS" or not colon or not access_key_id or not signature:
        raise IncompleteSignature("Authorization must be 'OSS <AccessKeyId>:<Signature>'.")
    date = one_header(lists, "x-oss-date") or one_header(lists, "date")
    if not date:
        raise InvalidTimeStampFormat("The request has neither a Date nor an x-oss-date header.")
    return _request(
        Received(method, bucket, key, pairs(params), lists),
        date=date,
        signature=signature,
        access_key_id=access_key_id,
        security_token=one_header(lists, "x-oss-security-token"),
        timestamp=http_date(date, "Date"),
        expires=None,
    )


def parse_oss_v1_url(
    method: str, bucket: str | None, key: str, params: Pairs, headers: Headers
) -> OssV1Request:
    """Read a V1 presigned URL (``OSSAccessKeyId``, ``Expires``, ``Signature`` parameters)."""
    items = pairs(params)
    found = {name: one_param(items, name) for name in _URL_PARAMS}
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise IncompleteSignature(f"The URL is not signed: {', '.join(missing)} missing.")
    expires = found["Expires"] or ""
    try:
        if not expires.isdigit():
            raise ValueError(expires)
        ends = datetime.fromtimestamp(int(expires), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidTimeStampFormat(
            f"Expires {expires[:20]!r} is not seconds since the epoch."
        ) from None
    rest = [(k, v) for k, v in items if k not in _URL_PARAMS]
    return _request(
        Received(method, bucket, key, rest, header_lists(headers)),
        date=expires,
        signature=(found["Signature"] or "").replace(" ", "+"),
        access_key_id=found["OSSAccessKeyId"] or "",
        security_token=one_param(items, "security-token"),
        timestamp=None,
        expires=ends,
    )


def _request(
    received: Received,
    *,
    date: str,
    signature: str,
    access_key_id: str,
    security_token: str | None,
    timestamp: datetime | None,
    expires: datetime | None,
) -> OssV1Request:
    method, bucket, key, items, lists = received
    subresources = sorted([(k, v) for k, v in items if k in SUBRESOURCES]) if items else ()
    query = "&".join([f"{k}={v}" if v else k for k, v in subresources])
    resource = (f"/{bucket}/{key}" if bucket else "/") + (f"?{query}" if query else "")
    oss_headers = tuple(
        sorted(
            [
                (name, joined_header(values))
                for name, values in lists.items()
                if name.startswith("x-oss-")
            ]
        )
    )
    return OssV1Request(
        method=method.upper(),
        content_md5=one_header(lists, "content-md5") or "",
        content_type=one_header(lists, "content-type") or "",
        date=date,
        oss_headers=oss_headers,
        resource=resource,
        signature=signature,
        access_key_id=access_key_id,
        security_token=security_token or None,
        timestamp=timestamp,
        expires=expires,
    )
