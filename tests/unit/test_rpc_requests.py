"""Reading an RPC call (api/rpc/requests.py) and its typed parameters (api/rpc/params.py)."""

from __future__ import annotations

import pytest

from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import JsonDocument, MaxItems, RpcBool, RpcInt, RpcParams, parse_params
from mandate.api.rpc.requests import FORM_TYPE, RpcCall, call_from_parts

RAM = "2015-05-01"


def read(
    query: str = "",
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    method: str = "POST",
) -> RpcCall:
    return call_from_parts(method, "/", query, headers or [("host", "h")], body)


def refusal(
    query: str = "", *, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> RpcError:
    with pytest.raises(RpcError) as caught:
        read(query, headers=headers, body=body)
    return caught.value


def test_the_query_is_read_with_form_semantics_and_blank_values_kept() -> None:
    call = read(
        "Action=CreateUser&Version=2015-05-01&DisplayName=Alice+Liddell%2A%7E&SignatureType="
        "&Comments=a%2Bb"
    )
    assert call.action == "CreateUser"
    assert call.version == RAM
    assert call.params["DisplayName"] == "Alice Liddell*~"  # + is a space, escapes decoded
    assert call.params["Comments"] == "a+b"  # an escaped + is a plus
    assert call.params["SignatureType"] == ""  # sdk-core signs it empty: kept
    assert ("SignatureType", "") in call.query


def test_action_and_version_come_from_the_x_acs_headers_under_v3() -> None:
    call = read(
        "UserName=alice",
        headers=[("host", "h"), ("x-acs-action", "GetUser"), ("x-acs-version", RAM)],
    )
    assert (call.action, call.version, call.params) == ("GetUser", RAM, {"UserName": "alice"})


def test_parameter_and_header_must_agree_and_both_may_not_be_missing() -> None:
    error = refusal(
        "Action=GetUser&Version=2015-05-01",
        headers=[("x-acs-action", "DeleteUser")],
    )
    assert (error.http_status, error.code) == (400, "InvalidParameter.Action")
    error = refusal("Version=2015-05-01")
    assert (error.http_status, error.code) == (400, "MissingAction")
    assert error.message == "Action is mandatory for this action."
    error = refusal("Action=GetUser")
    assert (error.http_status, error.code) == (400, "MissingVersion")


def test_a_form_body_adds_its_parameters_to_the_querys() -> None:
    call = read(
        "Action=AddUserToGroup&Version=2015-05-01",
        headers=[("content-type", FORM_TYPE + "; charset=UTF-8")],
        body=b"GroupName=dev+ops&UserName=alice",
    )
    assert call.params == {
        "Action": "AddUserToGroup",
        "Version": RAM,
        "GroupName": "dev ops",
        "UserName": "alice",
    }
    assert call.form == (("GroupName", "dev ops"), ("UserName", "alice"))
    # a body of another type is not read as parameters (V3 hashes it whole)
    other = read(
        "Action=GetUser&Version=2015-05-01",
        headers=[("content-type", "application/json")],
        body=b'{"UserName": "x"}',
    )
    assert "UserName" not in other.params


def test_a_parameter_given_twice_is_refused() -> None:
    error = refusal("Action=GetUser&Version=2015-05-01&UserName=a&UserName=b")
    assert (error.http_status, error.code) == (400, "InvalidParameter.UserName")
    error = refusal(
        "Action=GetUser&Version=2015-05-01&UserName=a",
        headers=[("content-type", FORM_TYPE)],
        body=b"UserName=b",
    )
    assert error.code == "InvalidParameter.UserName"


def test_text_that_is_not_utf8_is_refused() -> None:
    error = refusal("Action=GetUser&Version=2015-05-01&UserName=%FF")
    assert (error.http_status, error.code) == (400, "InvalidParameter")


class Sample(RpcParams):
    user_name: str
    max_items: MaxItems = 100
    set_as_default: RpcBool = False
    duration_seconds: RpcInt | None = None
    policy_document: JsonDocument | None = None


@pytest.mark.parametrize(("text", "value"), [("True", True), ("true", True), ("FALSE", False)])
def test_booleans_in_any_case(text: str, value: bool) -> None:
    parsed = parse_params(Sample, {"UserName": "a", "SetAsDefault": text})
    assert parsed.set_as_default is value


def test_parameters_are_read_from_their_pascal_case_names_and_extras_ignored() -> None:
    parsed = parse_params(
        Sample,
        {
            "UserName": "alice",
            "MaxItems": "10",
            "DurationSeconds": "1800",
            "PolicyDocument": '{"Version": "1", "Statement": []}',
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureType": "",
        },
    )
    assert (parsed.user_name, parsed.max_items, parsed.duration_seconds) == ("alice", 10, 1800)
    assert parsed.policy_document == '{"Version": "1", "Statement": []}'


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingUserName"),
        ({"UserName": ""}, "MissingUserName"),  # blank is absent
        ({"UserName": "a", "MaxItems": "0"}, "InvalidParameter.MaxItems"),
        ({"UserName": "a", "MaxItems": "1001"}, "InvalidParameter.MaxItems"),
        ({"UserName": "a", "MaxItems": "ten"}, "InvalidParameter.MaxItems"),
        ({"UserName": "a", "MaxItems": "1.5"}, "InvalidParameter.MaxItems"),
        ({"UserName": "a", "SetAsDefault": "yes"}, "InvalidParameter.SetAsDefault"),
        ({"UserName": "a", "SetAsDefault": "1"}, "InvalidParameter.SetAsDefault"),
        ({"UserName": "a", "PolicyDocument": "{not json"}, "InvalidParameter.PolicyDocument"),
    ],
)
def test_a_missing_or_invalid_parameter_is_rams_refusal(params: dict[str, str], code: str) -> None:
    with pytest.raises(RpcError) as caught:
        parse_params(Sample, params)
    assert (caught.value.http_status, caught.value.code) == (400, code)
    name = code.removeprefix("Missing").removeprefix("InvalidParameter.")
    assert name in caught.value.message
