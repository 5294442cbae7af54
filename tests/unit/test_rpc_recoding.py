"""``api.rpc.recoding``: the engine's generic refusal codes become RAM's on the RPC surface only.

The domain error itself is unchanged (it is what /v1 answers); the RPC action sees RAM's code,
the same HTTP status and RAM's message. Codes outside the mapping pass through untouched.
"""

from __future__ import annotations

import pytest

from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.recoding import attachment_codes, ram_error, recoded
from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
)


@pytest.mark.parametrize(
    ("kind", "error", "status", "code"),
    [
        (
            PrincipalKind.USER,
            Conflict("attached", code="EntityAlreadyExists.Policy.Attachment"),
            409,
            "EntityAlreadyExists.User.Policy",
        ),
        (
            PrincipalKind.GROUP,
            NotFound("not attached", code="EntityNotExist.Policy.Attachment"),
            404,
            "EntityNotExist.Group.Policy",
        ),
        (
            PrincipalKind.ROLE,
            LimitExceeded("too many", code="LimitExceeded.Policy.Attachment"),
            409,
            "LimitExceeded.Role.Policy",
        ),
    ],
)
def test_attachment_refusals_name_the_principal_kind(
    kind: PrincipalKind, error: Exception, status: int, code: str
) -> None:
    with pytest.raises(RpcError) as caught, recoded(attachment_codes(kind)):
        raise error
    assert (caught.value.http_status, caught.value.code) == (status, code)
    assert caught.value.message.startswith("The ")  # RAM's sentence, not the engine's detail


def test_codes_outside_the_mapping_pass_through_unchanged() -> None:
    original = NotFound("user 'x' does not exist", code="EntityNotExist.User")
    with pytest.raises(NotFound) as caught, recoded(attachment_codes(PrincipalKind.USER)):
        raise original
    assert caught.value is original


def test_a_fault_in_the_named_document_is_malformed_policy_document() -> None:
    fault = InvalidInput(FieldError("policy_document.Statement", "must be a list"))
    with pytest.raises(RpcError) as caught, recoded({}, document="policy_document"):
        raise fault
    assert (caught.value.http_status, caught.value.code) == (400, "MalformedPolicyDocument")
    assert "must be a list" in caught.value.message
    # a coded fault (a bad name) and a fault in another field keep their own code
    named = InvalidInput(FieldError("role_name", "bad"), code="InvalidParameter.RoleName")
    with pytest.raises(InvalidInput) as kept, recoded({}, document="policy_document"):
        raise named
    assert kept.value is named
    other = InvalidInput(FieldError("description", "too long"))
    with pytest.raises(InvalidInput), recoded({}, document="policy_document"):
        raise other


def test_ram_error_carries_rams_message() -> None:
    error = ram_error(409, "DeleteConflict.Policy.Group")
    assert error.message == (
        "The policy CAN NOT been attached to any group while deleting the policy."
    )
    with pytest.raises(RpcError) as caught, recoded({"DeleteConflict.Policy.Version": "X.Y"}):
        raise PreconditionFailed("versions", code="DeleteConflict.Policy.Version")
    assert (caught.value.http_status, caught.value.code) == (409, "X.Y")
