"""ACS3-HMAC-SHA256: requests signed by alibabacloud-tea-openapi's own client verify; any
change to what was signed, or a wrong secret, is refused with the server's string to sign."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.api.signing import (
    Acs3Request,
    IncompleteSignature,
    InvalidTimeStampFormat,
    SignatureDoesNotMatch,
    parse_acs3,
)
from tests.unit.signing_sdk import AK, SECRET, TOKEN, Wire, capture, tea_call, wire

QUERY = {"UserName": "alice smith", "DisplayName": "Ålice ~*+ 100%", "Comments": ""}
BODY = {"Comments": "made by test", "Tag.1.Key": "a/b=c&d"}


def parse(w: Wire, **changes: object) -> Acs3Request:
    w = replace(w, **changes)  # type: ignore[arg-type]
    return parse_acs3(w.method, w.path, w.query, w.headers, body=w.body)


def set_header(w: Wire, name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k.lower() == name else v) for k, v in w.headers]


@pytest.fixture
def signed(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return tea_call(monkeypatch, query=QUERY, body=BODY)


def test_a_request_signed_by_the_sdk_verifies(signed: Wire) -> None:
    request = parse(signed)
    request.verify(SECRET)
    assert request.access_key_id == AK
    assert request.security_token is None
    assert request.nonce == dict(signed.headers)["x-acs-signature-nonce"]
    assert "user-agent" in request.signed_headers  # the SDK signs every header it sends


def test_the_product_clients_requests_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAM's and STS's generated clients (alibabacloud-ram20150501, -sts20150401), as shipped."""
    from alibabacloud_ram20150501 import models as ram_models
    from alibabacloud_ram20150501.client import Client as Ram
    from alibabacloud_sts20150401 import models as sts_models
    from alibabacloud_sts20150401.client import Client as Sts
    from alibabacloud_tea_openapi import client as openapi
    from alibabacloud_tea_openapi.utils_models import Config
    from darabonba.core import DaraCore

    def config(endpoint: str) -> Config:
        return Config(access_key_id=AK, access_key_secret=SECRET, endpoint=endpoint)

    ram = Ram(config("ram.aliyuncs.com"))
    sts = Sts(config("sts.aliyuncs.com"))
    calls = [
        lambda: ram.create_user(ram_models.CreateUserRequest(user_name="alice", comments="a b")),
        lambda: sts.assume_role(
            sts_models.AssumeRoleRequest(
                role_arn="acs:ram::1234567890123456:role/reader",
                role_session_name="s1",
                policy='{"Version": "1", "Statement": []}',
                duration_seconds=900,
            )
        ),
    ]
    for call in calls:
        w = wire(capture(monkeypatch, openapi.DaraCore, call), DaraCore.compose_url)
        parse(w).verify(SECRET)


def test_the_body_hash_is_taken_precomputed_too(signed: Wire) -> None:
    digest = hashlib.sha256(signed.body).hexdigest()
    parse_acs3(
        signed.method, signed.path, signed.query, signed.headers, body=None, body_sha256=digest
    ).verify(SECRET)
    with pytest.raises(ValueError, match="body"):
        parse_acs3(signed.method, signed.path, signed.query, signed.headers, body=None)


def test_a_security_token_travels_in_its_signed_header(monkeypatch: pytest.MonkeyPatch) -> None:
    w = tea_call(monkeypatch, query=QUERY, security_token=TOKEN)
    request = parse(w)
    request.verify(SECRET)
    assert request.security_token == TOKEN
    assert "x-acs-security-token" in request.signed_headers


def test_a_get_without_body_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    w = tea_call(monkeypatch, query=QUERY, method="GET", action="GetUser")
    assert w.body == b""
    parse(w).verify(SECRET)


def test_a_path_is_verified_as_sent_still_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    path = "/v1/users/alice%20smith/keys%2Fall~"
    w = tea_call(monkeypatch, query=QUERY, method="GET", pathname=path, style="ROA")
    assert w.path == path
    request = parse(w)
    request.verify(SECRET)
    with pytest.raises(SignatureDoesNotMatch):
        parse(w, path="/v1/users/alice smith/keys/all~").verify(SECRET)


def test_a_security_token_may_come_as_a_signed_parameter(signed: Wire) -> None:
    request = parse(signed, query=[*signed.query, ("SecurityToken", TOKEN)])
    assert request.security_token == TOKEN


def refused(request: Acs3Request, secret: str = SECRET) -> SignatureDoesNotMatch:
    with pytest.raises(SignatureDoesNotMatch) as caught:
        request.verify(secret)
    return caught.value


@pytest.mark.parametrize(
    "tamper",
    ["method", "path", "query value", "query name", "extra query", "header", "body", "secret"],
)
def test_any_change_is_refused_with_the_servers_string_to_sign(signed: Wire, tamper: str) -> None:
    secret = SECRET
    changes: dict[str, object] = {}
    if tamper == "method":
        changes["method"] = "PUT"
    elif tamper == "path":
        changes["path"] = "/other"
    elif tamper == "query value":
        changes["query"] = [(k, v + "x") for k, v in signed.query]
    elif tamper == "query name":
        changes["query"] = [(k.lower(), v) for k, v in signed.query]
    elif tamper == "extra query":
        changes["query"] = [*signed.query, ("Extra", "1")]
    elif tamper == "header":
        changes["headers"] = set_header(signed, "x-acs-action", "DeleteUser")
    elif tamper == "body":
        # the header still names the old body's hash: refused before the HMAC is even tried
        changes["body"] = signed.body + b"&Evil=1"
    else:
        secret = SECRET + "x"
    request = parse(signed, **changes)
    error = refused(request, secret)
    assert error.string_to_sign == request.string_to_sign()
    assert error.string_to_sign.startswith("ACS3-HMAC-SHA256\n")
    assert error.code == "SignatureDoesNotMatch"
    assert error.message.endswith(f"server string to sign is:{error.string_to_sign}")
    # aliyun-python-sdk-core reads it back as message.split(':')[1]
    assert error.message.split(":")[1] == error.string_to_sign
    if tamper == "body":
        assert "x-acs-content-sha256" in error.message


def test_the_servers_string_to_sign_is_the_one_the_client_signed(signed: Wire) -> None:
    request = parse(signed)
    theirs = hmac.new(SECRET.encode(), request.string_to_sign().encode(), hashlib.sha256)
    assert theirs.hexdigest() == request.signature


@pytest.mark.parametrize(
    ("authorization", "complaint"),
    [
        (None, "Authorization header is missing"),
        ("ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=" + "0" * 64, "not supported"),
        ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host", "lacks Signature"),
        ("ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=0", "twice"),
        ("ACS3-HMAC-SHA256 Credential=a,Signed=host,Signature=0", "'Signed=host'"),
        ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=x-acs-date;host,Signature=0", "sorted"),
        ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=0", "lower-case"),
        ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=XYZ", "64 lower-case hex"),
    ],
)
def test_a_malformed_authorization_is_incomplete(
    signed: Wire, authorization: str | None, complaint: str
) -> None:
    headers = [(k, v) for k, v in signed.headers if k.lower() != "authorization"]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    with pytest.raises(IncompleteSignature, match=complaint) as caught:
        parse(signed, headers=headers)
    assert caught.value.code == "IncompleteSignature"


def test_an_unsigned_acs_header_or_content_type_is_refused(signed: Wire) -> None:
    with pytest.raises(IncompleteSignature, match="must be signed: x-acs-extra"):
        parse(signed, headers=[*signed.headers, ("X-Acs-Extra", "1")])
    auth = dict(signed.headers)["Authorization"]
    narrowed = auth.replace("content-type;", "")
    headers = [(k, narrowed if k == "Authorization" else v) for k, v in signed.headers]
    with pytest.raises(IncompleteSignature, match="must be signed: content-type"):
        parse(signed, headers=headers)


def test_a_signed_header_missing_from_the_request_is_refused(signed: Wire) -> None:
    headers = [(k, v) for k, v in signed.headers if k != "user-agent"]
    with pytest.raises(IncompleteSignature, match="user-agent is not in the request"):
        parse(signed, headers=headers)


@pytest.mark.parametrize(
    "name", ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"]
)
def test_a_missing_signing_header_is_named(signed: Wire, name: str) -> None:
    with pytest.raises(IncompleteSignature, match=f"The {name} header is missing"):
        parse(signed, headers=[(k, v) for k, v in signed.headers if k.lower() != name])


def test_a_repeated_signing_header_is_refused(signed: Wire) -> None:
    with pytest.raises(IncompleteSignature, match="x-acs-date header is given 2 times"):
        parse(signed, headers=[*signed.headers, ("x-acs-date", "2026-01-01T00:00:00Z")])


@pytest.mark.parametrize("date", ["2026-12-07 09:25:16", "2026-13-07T09:25:16Z", "yesterday"])
def test_an_unreadable_date_is_a_format_error(signed: Wire, date: str) -> None:
    with pytest.raises(InvalidTimeStampFormat) as caught:
        parse(signed, headers=set_header(signed, "x-acs-date", date))
    assert caught.value.code == "InvalidTimeStamp.Format"


def test_repeated_headers_are_canonicalised_sorted_and_trimmed() -> None:
    # Not an SDK case (it sends each header once) but the documented canonical form.
    request = Acs3Request(
        method="GET",
        path="/",
        query=(),
        signed_headers=("x-acs-multi",),
        header_values=("a,b",),
        content_sha256="0" * 64,
        body_sha256="0" * 64,
        signature="",
        access_key_id=AK,
        security_token=None,
        timestamp=None,  # type: ignore[arg-type]
        nonce="n",
    )
    assert "\nx-acs-multi:a,b\n\nx-acs-multi\n" in request.canonical_request()


names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=8
)
values = st.text(
    st.sampled_from([*"aZ09 ~*+%&=/?#-_.!'()", "é", "中", "😀"]), max_size=12
) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(names, values, max_size=6),
    body=st.dictionaries(names, values, max_size=4),
)
def test_whatever_the_sdk_signs_verifies(
    monkeypatch: pytest.MonkeyPatch, query: dict[str, str], body: dict[str, str]
) -> None:
    w = tea_call(monkeypatch, query=query or None, body=body or None)
    parse(w).verify(SECRET)
