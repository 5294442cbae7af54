"""RPC signature V1 (HMAC-SHA1): what aliyun-python-sdk-core, alibabacloud-tea-openapi
(``signature_algorithm='v2'``) and alibabacloud-credentials sign verifies; any change, or a
wrong secret, is refused with the string to sign aliyun-python-sdk-core compares with its own."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mandate.api.signing import (
    IncompleteSignature,
    InvalidTimeStampFormat,
    RpcRequest,
    SignatureDoesNotMatch,
    parse_rpc,
)
from mandate.api.signing.canonical import hmac_sha1_base64
from tests.unit.signing_sdk import AK, SECRET, TOKEN, capture, core_signed, tea_call

Params = list[tuple[str, str]]


def credentials_signed(
    monkeypatch: pytest.MonkeyPatch, session: str, policy: str | None = None
) -> Params:
    """alibabacloud-credentials' RAM-role-ARN provider asking STS for AssumeRole."""
    from alibabacloud_credentials.provider.ram_role_arn import RamRoleArnCredentialsProvider
    from Tea.core import TeaCore

    provider = RamRoleArnCredentialsProvider(
        access_key_id=AK,
        access_key_secret=SECRET,
        role_arn="acs:ram::1234567890123456:role/reader",
        role_session_name=session,
        policy=policy,
    )
    sent: Any = capture(monkeypatch, TeaCore, provider.get_credentials)
    assert sent.method == "GET"
    return parse_qsl(urlsplit(TeaCore.compose_url(sent)).query, keep_blank_values=True)


def test_aliyun_sdk_core_requests_verify() -> None:
    params, theirs = core_signed({"UserName": "alice"}, {"Comments": "made by test"})
    request = parse_rpc("POST", params)
    request.verify(SECRET)
    assert request.string_to_sign() == theirs
    assert request.access_key_id == AK
    assert request.security_token is None


def test_aliyun_sdk_core_sts_token_requests_verify() -> None:
    params, _ = core_signed({"UserName": "a b"}, {}, method="GET", token=TOKEN)
    request = parse_rpc("GET", params)
    request.verify(SECRET)
    assert request.security_token == TOKEN


def test_the_ram_and_sts_products_requests_verify() -> None:
    from aliyunsdkram.request.v20150501.CreateUserRequest import CreateUserRequest
    from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

    create = CreateUserRequest()
    create.set_UserName("alice")
    create.set_DisplayName("Alice Smith ~*")
    assume = AssumeRoleRequest()
    assume.set_RoleArn("acs:ram::1234567890123456:role/reader")
    assume.set_RoleSessionName("s 1")
    assume.set_Policy('{"Version": "1"}')
    for sdk_request in (create, assume):
        url = sdk_request.get_url("cn-hangzhou", AK, SECRET)
        params = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        params += parse_qsl(urlencode(sdk_request.get_body_params()), keep_blank_values=True)
        request = parse_rpc(sdk_request.get_method(), params)
        request.verify(SECRET)
        assert request.string_to_sign() == sdk_request.string_to_sign


def test_tea_openapi_v1_requests_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    w = tea_call(
        monkeypatch,
        query={"UserName": "alice smith", "DisplayName": "Å ~*+"},
        body={"Comments": "x y"},
        signature_algorithm="v2",
        security_token=TOKEN,
    )
    request = parse_rpc(w.method, w.query + w.form())
    request.verify(SECRET)
    assert request.security_token == TOKEN
    assert request.nonce == dict(w.query)["SignatureNonce"]


def test_alibabacloud_credentials_quote_plus_form_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*"}]}'
    params = credentials_signed(monkeypatch, "a session name", policy)
    request = parse_rpc("GET", params)
    request.verify(SECRET)
    # it is the second form that held: the standard one differs where there are spaces
    assert "%2B" in request.string_to_sign(plus_for_space=True)
    key = SECRET + "&"
    assert hmac_sha1_base64(key, request.string_to_sign()) != request.signature
    assert hmac_sha1_base64(key, request.string_to_sign(plus_for_space=True)) == request.signature


def refused(request: RpcRequest, secret: str = SECRET) -> SignatureDoesNotMatch:
    with pytest.raises(SignatureDoesNotMatch) as caught:
        request.verify(secret)
    return caught.value


@pytest.mark.parametrize("tamper", ["method", "value", "added", "removed", "secret"])
def test_any_change_is_refused_with_the_servers_string_to_sign(tamper: str) -> None:
    params, theirs = core_signed({"UserName": "alice"}, {"Comments": "c"})
    method, secret = "POST", SECRET
    if tamper == "method":
        method = "GET"
    elif tamper == "value":
        params = [(k, "mallory" if k == "UserName" else v) for k, v in params]
    elif tamper == "added":
        params = [*params, ("Extra", "1")]
    elif tamper == "removed":
        params = [(k, v) for k, v in params if k != "Comments"]
    else:
        secret = "wrong"
    request = parse_rpc(method, params)
    error = refused(request, secret)
    assert error.string_to_sign == request.string_to_sign()
    assert error.message.endswith(f"server string to sign is:{request.string_to_sign()}")
    # aliyun-python-sdk-core's test: equal means the client's secret is wrong
    assert (error.message.split(":")[1] == theirs) is (tamper == "secret")


@pytest.mark.parametrize(
    ("tamper", "told"), [("secret", "InvalidAccessKeySecret"), ("value", "SignatureDoesNotMatch")]
)
def test_aliyun_sdk_core_reads_the_refusal_as_meant(tamper: str, told: str) -> None:
    """The SDK tells a wrong secret (its string to sign is the server's) from a bad request."""
    import json

    from aliyunsdkcore.client import AcsClient

    params, theirs = core_signed({"UserName": "alice"}, {})
    secret = "wrong" if tamper == "secret" else SECRET
    if tamper == "value":
        params = [(k, "mallory" if k == "UserName" else v) for k, v in params]
    with pytest.raises(SignatureDoesNotMatch) as caught:
        parse_rpc("POST", params).verify(secret)
    body = {"Code": caught.value.code, "Message": caught.value.message, "RequestId": "r-1"}
    client = AcsClient(AK, SECRET, "cn-hangzhou")
    error = client._get_server_exception(
        caught.value.http_status, json.dumps(body).encode(), "ram.aliyuncs.com", theirs
    )
    assert error.error_code == told


def test_a_plus_read_back_as_a_space_in_the_signature_still_verifies() -> None:
    params, _ = core_signed({"UserName": "alice"}, {})
    for n in range(200):  # find a signature with a '+' in it
        params, _ = core_signed({"UserName": f"alice{n}"}, {})
        if "+" in dict(params)["Signature"]:
            break
    else:
        pytest.fail("no signature with '+' in 200 tries")
    spaced = [(k, v.replace("+", " ") if k == "Signature" else v) for k, v in params]
    parse_rpc("POST", spaced).verify(SECRET)


@pytest.mark.parametrize(
    ("drop", "change", "error", "complaint"),
    [
        ("Signature", None, IncompleteSignature, "Signature is missing"),
        ("AccessKeyId", None, IncompleteSignature, "AccessKeyId is missing"),
        ("SignatureNonce", None, IncompleteSignature, "SignatureNonce is missing"),
        ("Timestamp", None, IncompleteSignature, "Timestamp is missing"),
        (None, ("SignatureMethod", "HMAC-SHA256"), IncompleteSignature, "not supported"),
        (None, ("SignatureVersion", "2.0"), IncompleteSignature, "not supported"),
        (None, ("SignatureType", "BEARERTOKEN"), IncompleteSignature, "not supported"),
        (None, ("Timestamp", "2026-12-07"), InvalidTimeStampFormat, "yyyy-MM-ddTHH:mm:ssZ"),
        (None, ("Timestamp", "2026-02-30T00:00:00Z"), InvalidTimeStampFormat, "not a valid"),
    ],
)
def test_a_malformed_request_is_refused_before_any_secret_is_needed(
    drop: str | None, change: tuple[str, str] | None, error: type[Exception], complaint: str
) -> None:
    params, _ = core_signed({"UserName": "alice"}, {})
    params = [(k, v) for k, v in params if k != drop]
    if change:
        params = [(k, change[1] if k == change[0] else v) for k, v in params]
    with pytest.raises(error, match=complaint):
        parse_rpc("POST", params)


def test_a_repeated_signing_parameter_is_refused() -> None:
    params, _ = core_signed({"UserName": "alice"}, {})
    with pytest.raises(IncompleteSignature, match="AccessKeyId parameter is given 2 times"):
        parse_rpc("POST", [*params, ("AccessKeyId", "other")])


def test_fractional_seconds_in_the_timestamp_are_read() -> None:
    params, _ = core_signed({"UserName": "alice"}, {})
    stamp = dict(params)["Timestamp"]
    params = [(k, stamp[:-1] + ".123Z" if k == "Timestamp" else v) for k, v in params]
    assert parse_rpc("POST", params).timestamp.isoformat() == stamp[:-1] + "+00:00"


keys = st.text(st.sampled_from([*"abcXYZ019._-~ *+é"]), min_size=1, max_size=8)
values = st.text(
    st.sampled_from([*"aZ09 ~*+%&=/?#-_.!'()", "é", "中", "😀"]), max_size=12
) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    query=st.dictionaries(keys, values, max_size=6), body=st.dictionaries(keys, values, max_size=4)
)
def test_whatever_aliyun_sdk_core_signs_verifies(
    query: dict[str, str], body: dict[str, str]
) -> None:
    # A name in both the query and the body is sent twice but signed once (the SDK merges
    # them into one dict), so no server can verify it: not a case to test.
    assume(not set(query) & set(body))
    params, theirs = core_signed(query, body)
    request = parse_rpc("POST", params)
    request.verify(SECRET)
    assert request.string_to_sign() == theirs


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(keys, values, max_size=5), body=st.dictionaries(keys, values, max_size=3)
)
def test_whatever_tea_openapi_signs_with_v1_verifies(
    monkeypatch: pytest.MonkeyPatch, query: dict[str, str], body: dict[str, str]
) -> None:
    assume(not set(query) & set(body))  # sent twice, signed once: see above
    w = tea_call(monkeypatch, query=query or None, body=body or None, signature_algorithm="v2")
    parse_rpc(w.method, w.query + w.form()).verify(SECRET)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(session=values.filter(bool), policy=st.none() | values.filter(bool))
def test_whatever_alibabacloud_credentials_signs_verifies(
    monkeypatch: pytest.MonkeyPatch, session: str, policy: str | None
) -> None:
    parse_rpc("GET", credentials_signed(monkeypatch, session, policy)).verify(SECRET)
