"""RPC answers and errors (api/rpc/answers.py, api/rpc/errors.py): RAM's shapes and codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from mandate.api.outages import StoreUnavailable
from mandate.api.problems import Forbidden
from mandate.api.rpc.answers import answer_response, error_body, error_response, paged, rpc_time
from mandate.api.rpc.errors import RpcError, as_rpc_error
from mandate.api.rpc.registry import RAM, STS, Registry
from mandate.api.signing import SignatureDoesNotMatch, SignatureNonceUsed
from mandate.domain.common.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
)


def test_times_are_utc_whole_seconds_with_a_z() -> None:
    at = datetime(2026, 12, 7, 17, 27, 5, 987654, tzinfo=timezone(timedelta(hours=8)))
    assert rpc_time(at) == "2026-12-07T09:27:05Z"
    assert rpc_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive is UTC


def test_an_error_body_has_rams_five_fields_and_its_status() -> None:
    error = RpcError(404, "EntityNotExist.User")
    assert error.message == "The user does not exist."
    response = error_response(error, "RID1", "127.0.0.1:8000", RAM)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = json.loads(bytes(response.body))
    assert body == {
        "RequestId": "RID1",
        "HostId": "127.0.0.1:8000",
        "Code": "EntityNotExist.User",
        "Message": "The user does not exist.",
        "Recommend": "https://api.aliyun.com/troubleshoot?q=EntityNotExist.User&product=Ram",
    }
    sts = error_body(RpcError(400, "InvalidParameter.DurationSeconds", "x"), "R", "", STS)
    assert sts["HostId"] == "sts.aliyuncs.com"
    assert sts["Recommend"].endswith("product=Sts")


def test_an_answer_leads_with_its_request_id() -> None:
    response = answer_response("RID2", {"User": {"UserName": "alice"}})
    assert response.status_code == 200
    body = json.loads(bytes(response.body))
    assert list(body) == ["RequestId", "User"]
    assert body["RequestId"] == "RID2"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            NotFound("user 'x' does not exist", code="EntityNotExist.User"),
            404,
            "EntityNotExist.User",
        ),
        (Conflict("exists", code="EntityAlreadyExists.Group"), 409, "EntityAlreadyExists.Group"),
        (
            PreconditionFailed("has members", code="DeleteConflict.Group"),
            409,
            "DeleteConflict.Group",
        ),
        (
            LimitExceeded("too many", code="LimitExceeded.User.AccessKey"),
            409,
            "LimitExceeded.User.AccessKey",
        ),
        (
            InvalidInput(FieldError("user_name", "must be 1 to 64 characters")),
            400,
            "InvalidParameter.UserName",
        ),
        (
            InvalidInput(FieldError("status", "bad"), code="InvalidParameter.Status"),
            400,
            "InvalidParameter.Status",
        ),
        (Forbidden("acs:ram::1:user/a is not allowed ram:CreateUser"), 403, "NoPermission"),
        (SignatureNonceUsed("used"), 400, "SignatureNonceUsed"),
        (StoreUnavailable("down"), 503, "ServiceUnavailable"),
    ],
)
def test_the_engines_errors_map_to_rams_codes(error: Exception, status: int, code: str) -> None:
    mapped = as_rpc_error(error)
    assert mapped is not None
    assert (mapped.http_status, mapped.code) == (status, code)
    assert mapped.message


def test_a_domain_message_is_rams_when_ram_documents_one_and_names_the_pascal_field() -> None:
    mapped = as_rpc_error(NotFound("user 'bob' does not exist", code="EntityNotExist.User"))
    assert mapped is not None
    assert mapped.message == "The user does not exist."
    invalid = as_rpc_error(InvalidInput(FieldError("new_user_name", "must be short")))
    assert invalid is not None
    assert invalid.message == 'The parameter - "NewUserName" is incorrect: must be short.'
    # the ledger's own RAM delete codes (require_detached) carry RAM's message unrecoded
    held = as_rpc_error(PreconditionFailed("held", code="DeleteConflict.Policy.Group"))
    assert held is not None
    assert (held.http_status, held.message) == (
        409,
        "The policy CAN NOT been attached to any group while deleting the policy.",
    )


def test_signature_does_not_match_keeps_the_string_to_sign_after_the_only_colon() -> None:
    mapped = as_rpc_error(SignatureDoesNotMatch("GET&%2F&Action%3DListUsers"))
    assert mapped is not None
    assert (mapped.http_status, mapped.code) == (400, "SignatureDoesNotMatch")
    assert mapped.message.split(":")[1] == "GET&%2F&Action%3DListUsers"


def test_an_unexpected_error_is_not_mapped() -> None:
    assert as_rpc_error(ZeroDivisionError()) is None


def test_the_registry_refuses_unknown_versions_and_actions_and_double_registration() -> None:
    registry = Registry()
    with pytest.raises(RpcError) as caught:
        registry.find("CreateUser", "2099-01-01")
    assert (caught.value.http_status, caught.value.code) == (400, "InvalidVersion")
    with pytest.raises(RpcError) as caught:
        registry.find("CreateUser", RAM)
    assert (caught.value.http_status, caught.value.code) == (404, "InvalidAction.NotFound")


def test_a_page_carries_is_truncated_a_marker_only_when_truncated_and_its_wrapper() -> None:
    names = ["carol", "alice", "bob"]
    first = paged(
        names,
        str,
        lambda n: {"UserName": n},
        marker=None,
        max_items=2,
        wrapper="Users",
        member="User",
    )
    assert first["IsTruncated"] is True
    assert [u["UserName"] for u in first["Users"]["User"]] == ["alice", "bob"]
    last = paged(
        names,
        str,
        lambda n: {"UserName": n},
        marker=first["Marker"],
        max_items=2,
        wrapper="Users",
        member="User",
    )
    assert last == {"IsTruncated": False, "Users": {"User": [{"UserName": "carol"}]}}
    empty = paged([], str, dict, marker=None, max_items=5, wrapper="Groups", member="Group")
    assert empty == {"IsTruncated": False, "Groups": {"Group": []}}
    with pytest.raises(RpcError) as caught:
        paged(names, str, dict, marker="@@", max_items=2, wrapper="Users", member="User")
    assert caught.value.code == "InvalidParameter.Marker"
