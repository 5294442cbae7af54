"""OSS signatures V1 and V4, header and presigned URL: what oss2 2.19 signs verifies (through
``Auth``/``AuthV4``/``StsAuth`` on a prepared ``oss2.http.Request``, and ``Bucket.sign_url``);
any change, or a wrong secret, is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import oss2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oss2.http import Request

from mandate.api.signing import (
    IncompleteSignature,
    InvalidTimeStampFormat,
    OssV1Request,
    OssV4Request,
    SignatureDoesNotMatch,
    parse_oss_v1_header,
    parse_oss_v1_url,
    parse_oss_v4_header,
    parse_oss_v4_url,
)
from tests.unit.signing_sdk import AK, SECRET, TOKEN

ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
REGION = "cn-hangzhou"
BUCKET = "reports-7"
KEY = "2026/q1 sales ~*+é.csv"


@dataclass(frozen=True)
class Seen:
    """An OSS request as the enforcement point passes it on."""

    method: str
    bucket: str | None
    key: str
    params: list[tuple[str, str]]
    headers: list[tuple[str, str]]


def signed_request(
    auth: Any,
    *,
    method: str = "PUT",
    key: str = KEY,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    bucket: str | None = BUCKET,
) -> Seen:
    """oss2 signing a prepared request's headers (as ``Bucket`` does before sending)."""
    request = Request(
        method,
        f"https://{bucket}.oss-cn-hangzhou.aliyuncs.com/",
        params=dict(params or {}),
        headers=dict(headers or {}),
        region=REGION,
        product="oss",
    )
    auth._sign_request(request, bucket, key)
    sent = [(k, v) for k, v in request.headers.items() if v is not None]
    return Seen(method, bucket, key, list(request.params.items()), sent)


def signed_url(
    auth: Any,
    *,
    method: str = "GET",
    key: str = KEY,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    expires: int = 600,
) -> Seen:
    """``Bucket.sign_url``, then the URL read back as a server would."""
    bucket = oss2.Bucket(auth, ENDPOINT, BUCKET, region=REGION)
    url = bucket.sign_url(method, key, expires, headers=headers, params=params)
    split = urlsplit(url)
    assert split.hostname == f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com"
    query = parse_qsl(split.query, keep_blank_values=True)
    return Seen(method, BUCKET, unquote(split.path[1:]), query, list((headers or {}).items()))


def v1_header(seen: Seen) -> OssV1Request:
    return parse_oss_v1_header(seen.method, seen.bucket, seen.key, seen.params, seen.headers)


def v1_url(seen: Seen) -> OssV1Request:
    return parse_oss_v1_url(seen.method, seen.bucket, seen.key, seen.params, seen.headers)


def v4_header(seen: Seen) -> OssV4Request:
    return parse_oss_v4_header(
        seen.method, seen.bucket, seen.key, seen.params, seen.headers, region=REGION
    )


def v4_url(seen: Seen) -> OssV4Request:
    return parse_oss_v4_url(
        seen.method, seen.bucket, seen.key, seen.params, seen.headers, region=REGION
    )


HEADERS = {
    "Content-Type": "text/csv",
    "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
    "x-oss-meta-owner": "alice",
    "x-oss-object-acl": "private",
}
PARAMS = {"acl": "", "versionId": "v1", "partNumber": "3", "not-a-subresource": "x y"}


def test_v1_header_signed_by_oss2_verifies() -> None:
    request = v1_header(signed_request(oss2.Auth(AK, SECRET), params=PARAMS, headers=HEADERS))
    request.verify(SECRET)
    assert request.access_key_id == AK
    assert request.resource == f"/{BUCKET}/{KEY}?acl&partNumber=3&versionId=v1"
    assert request.timestamp is not None
    assert abs(request.timestamp - datetime.now(UTC)) < timedelta(minutes=5)


def test_v1_header_with_sts_token_and_without_bucket_verifies() -> None:
    auth = oss2.StsAuth(AK, SECRET, TOKEN)
    request = v1_header(signed_request(auth, method="GET", key="", bucket=None))
    request.verify(SECRET)
    assert request.security_token == TOKEN
    assert request.resource == "/"


def test_v1_url_signed_by_oss2_verifies() -> None:
    seen = signed_url(oss2.StsAuth(AK, SECRET, TOKEN), params=PARAMS, headers=HEADERS)
    request = v1_url(seen)
    request.verify(SECRET)
    assert request.security_token == TOKEN
    assert request.timestamp is None
    assert request.expires is not None
    assert timedelta(0) < request.expires - datetime.now(UTC) <= timedelta(seconds=601)


def test_v4_header_signed_by_oss2_verifies() -> None:
    auth = oss2.AuthV4(AK, SECRET)
    seen = signed_request(auth, params=PARAMS, headers={**HEADERS, "x-custom": "c"})
    request = v4_header(seen)
    request.verify(SECRET)
    assert (request.region, request.product) == (REGION, "oss")
    assert request.payload == "UNSIGNED-PAYLOAD"


def test_v4_header_with_additional_headers_and_token_verifies() -> None:
    request_ = Request(
        "PUT",
        "https://x/",
        params={"uploads": ""},
        headers={"Range": "bytes=0-9", "x-custom": "c", "Content-Type": "a/b"},
        region=REGION,
        product="oss",
    )
    auth = oss2.StsAuth(AK, SECRET, TOKEN, auth_version="v4")
    auth._sign_request(request_, BUCKET, KEY)  # StsAuth takes no additional headers…
    oss2.AuthV4(AK, SECRET)._sign_request(request_, BUCKET, KEY, ["x-custom", "range"])
    headers = [(k, v) for k, v in request_.headers.items() if v is not None]
    assert "AdditionalHeaders=" in dict(headers)["authorization"]
    request = v4_header(Seen("PUT", BUCKET, KEY, list(request_.params.items()), headers))
    request.verify(SECRET)
    assert request.additional_headers == ("range", "x-custom")
    assert request.security_token == TOKEN


def test_v4_url_signed_by_oss2_verifies() -> None:
    auth = oss2.StsAuth(AK, SECRET, TOKEN, auth_version="v4")
    request = v4_url(signed_url(auth, params=PARAMS, headers=HEADERS, expires=900))
    request.verify(SECRET)
    assert request.security_token == TOKEN
    assert request.expires is not None
    assert request.expires - request.timestamp == timedelta(seconds=900)


def test_v4_url_with_additional_headers_verifies() -> None:
    bucket = oss2.Bucket(oss2.AuthV4(AK, SECRET), ENDPOINT, BUCKET, region=REGION)
    headers = {"x-custom": "c", "Host": f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com"}
    url = bucket.sign_url("GET", KEY, 60, headers=headers, additional_headers=["x-custom", "host"])
    split = urlsplit(url)
    query = parse_qsl(split.query, keep_blank_values=True)
    assert dict(query)["x-oss-additional-headers"] == "host;x-custom"
    seen = Seen("GET", BUCKET, unquote(split.path[1:]), query, list(headers.items()))
    v4_url(seen).verify(SECRET)


SCHEMES = {
    "v1 header": (lambda **kw: signed_request(oss2.Auth(AK, SECRET), **kw), v1_header),
    "v1 url": (lambda **kw: signed_url(oss2.Auth(AK, SECRET), **kw), v1_url),
    "v4 header": (lambda **kw: signed_request(oss2.AuthV4(AK, SECRET), **kw), v4_header),
    "v4 url": (lambda **kw: signed_url(oss2.AuthV4(AK, SECRET), **kw), v4_url),
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize(
    "tamper", ["method", "bucket", "key", "subresource", "oss header", "content type", "secret"]
)
def test_any_change_is_refused(scheme: str, tamper: str) -> None:
    sign, parse = SCHEMES[scheme]
    seen: Seen = sign(params={"acl": ""}, headers=HEADERS)  # type: ignore[operator]
    secret = SECRET
    if tamper == "method":
        seen = Seen("DELETE", seen.bucket, seen.key, seen.params, seen.headers)
    elif tamper == "bucket":
        seen = Seen(seen.method, "other", seen.key, seen.params, seen.headers)
    elif tamper == "key":
        seen = Seen(seen.method, seen.bucket, seen.key + "x", seen.params, seen.headers)
    elif tamper == "subresource":
        seen = Seen(
            seen.method, seen.bucket, seen.key, [*seen.params, ("tagging", "")], seen.headers
        )
    elif tamper == "oss header":
        seen = Seen(
            seen.method, seen.bucket, seen.key, seen.params, [*seen.headers, ("x-oss-meta-x", "1")]
        )
    elif tamper == "content type":
        changed = [(k, "text/html" if k.lower() == "content-type" else v) for k, v in seen.headers]
        seen = Seen(seen.method, seen.bucket, seen.key, seen.params, changed)
    else:
        secret = "wrong"
    request = parse(seen)  # type: ignore[operator]
    with pytest.raises(SignatureDoesNotMatch) as caught:
        request.verify(secret)
    assert caught.value.string_to_sign == request.string_to_sign()
    assert caught.value.message.endswith(f"server string to sign is:{request.string_to_sign()}")


def test_a_non_subresource_parameter_is_not_signed_in_v1_but_is_in_v4() -> None:
    for sign, parse, signs_all in (
        (SCHEMES["v1 header"][0], v1_header, False),
        (SCHEMES["v4 header"][0], v4_header, True),
    ):
        seen: Seen = sign()  # type: ignore[operator]
        extended = Seen(seen.method, seen.bucket, seen.key, [("foo", "bar")], seen.headers)
        if signs_all:
            with pytest.raises(SignatureDoesNotMatch):
                parse(extended).verify(SECRET)
        else:
            parse(extended).verify(SECRET)


@pytest.mark.parametrize(
    "authorization",
    [None, "OSS nocolon", "OSS :sig", "OSS ak:", "AWS ak:sig"],
)
def test_v1_malformed_authorization_is_incomplete(authorization: str | None) -> None:
    seen = signed_request(oss2.Auth(AK, SECRET))
    headers = [(k, v) for k, v in seen.headers if k.lower() != "authorization"]
    if authorization:
        headers.append(("Authorization", authorization))
    with pytest.raises(IncompleteSignature):
        v1_header(Seen(seen.method, seen.bucket, seen.key, seen.params, headers))


def test_v1_bad_dates_are_format_errors() -> None:
    seen = signed_request(oss2.Auth(AK, SECRET))
    no_date = [(k, v) for k, v in seen.headers if k.lower() != "date"]
    with pytest.raises(InvalidTimeStampFormat, match="neither a Date"):
        v1_header(Seen(seen.method, seen.bucket, seen.key, seen.params, no_date))
    bad = [*no_date, ("Date", "tomorrow")]
    with pytest.raises(InvalidTimeStampFormat, match="HTTP date"):
        v1_header(Seen(seen.method, seen.bucket, seen.key, seen.params, bad))
    url = signed_url(oss2.Auth(AK, SECRET))
    for expires in ("soon", "-5", "9" * 40):
        params = [(k, expires if k == "Expires" else v) for k, v in url.params]
        with pytest.raises(InvalidTimeStampFormat):
            v1_url(Seen(url.method, url.bucket, url.key, params, url.headers))
    params = [(k, v) for k, v in url.params if k != "Signature"]
    with pytest.raises(IncompleteSignature, match="Signature missing"):
        v1_url(Seen(url.method, url.bucket, url.key, params, url.headers))


@pytest.mark.parametrize(
    ("change", "error", "complaint"),
    [
        (("Credential=", "Credential=x/"), IncompleteSignature, "Credential must be"),
        (("/oss/aliyun_v4_request", "/oss/aws4_request"), IncompleteSignature, "Credential must"),
        (("cn-hangzhou", "us-west-1"), IncompleteSignature, "region 'us-west-1'"),
        (("Signature=", "Signature=X"), IncompleteSignature, "64 lower-case hex"),
        ((", Signature=", ", Signature=0, Signature="), IncompleteSignature, "twice"),
        (("OSS4-HMAC-SHA256 ", "OSS4-HMAC-SHA1 "), IncompleteSignature, "must start"),
    ],
)
def test_v4_malformed_authorization_is_refused(
    change: tuple[str, str], error: type[Exception], complaint: str
) -> None:
    seen = signed_request(oss2.AuthV4(AK, SECRET))
    headers = [
        (k, v.replace(*change, 1) if k.lower() == "authorization" else v) for k, v in seen.headers
    ]
    with pytest.raises(error, match=complaint):
        v4_header(Seen(seen.method, seen.bucket, seen.key, seen.params, headers))


def test_v4_dates_must_agree_and_parse() -> None:
    seen = signed_request(oss2.AuthV4(AK, SECRET))
    stamp = dict(seen.headers)["x-oss-date"]
    other_day = (datetime.strptime(stamp, "%Y%m%dT%H%M%SZ") + timedelta(days=1)).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    for value, error in ((other_day, IncompleteSignature), ("2026-12-07", InvalidTimeStampFormat)):
        headers = [(k, value if k == "x-oss-date" else v) for k, v in seen.headers]
        with pytest.raises(error):
            v4_header(Seen(seen.method, seen.bucket, seen.key, seen.params, headers))
    url = signed_url(oss2.AuthV4(AK, SECRET))
    for expires in ("0", "604801", "x"):
        params = [(k, expires if k == "x-oss-expires" else v) for k, v in url.params]
        with pytest.raises(InvalidTimeStampFormat, match="x-oss-expires"):
            v4_url(Seen(url.method, url.bucket, url.key, params, url.headers))


keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda k: k.strip() and not k.startswith("?")
)
param_values = st.text(st.sampled_from([*"aZ09 ~*+%&=/?#-_.", "é", "😀"]), max_size=10)
param_names = st.sampled_from(
    sorted(["acl", "versionId", "response-content-type", "x-oss-process", "foo", "tagging"])
)


@settings(max_examples=40, deadline=None)
@given(
    scheme=st.sampled_from(list(SCHEMES)),
    key=keys,
    params=st.dictionaries(param_names, param_values, max_size=4),
    meta=st.dictionaries(
        st.sampled_from(["x-oss-meta-a", "x-oss-meta-b", "x-oss-tagging"]),
        st.text(st.sampled_from([*"az09 ~*+-_."]), max_size=8).map(str.strip),
        max_size=2,
    ),
)
def test_whatever_oss2_signs_verifies(
    scheme: str, key: str, params: dict[str, str], meta: dict[str, str]
) -> None:
    sign, parse = SCHEMES[scheme]
    seen: Seen = sign(key=key, params=params, headers=meta)  # type: ignore[operator]
    parse(seen).verify(SECRET)  # type: ignore[operator]
