"""Request bodies (pydantic): snake_case JSON; policy documents keep RAM's own keys.

Field rules here are the first line; the domain checks again and has the last word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.instants import Instant
from mandate.domain.common.validation import ENTITY_NAME_PATTERN

__all__ = [
    "AmendEntrustment",
    "AnswerBody",
    "AssumeRoleBody",
    "AuthorizeBody",
    "ClientCredentials",
    "CreateGroup",
    "CreatePolicy",
    "CreatePolicyVersion",
    "CreateRole",
    "CreateUser",
    "GrantDelegation",
    "GrantEntrustment",
    "MatchedStatementBody",
    "OpenAccount",
    "Revocation",
    "RevokeRoleSessions",
    "SetDefaultVersion",
    "SetTrustPolicy",
    "SignedRequestBody",
    "SimulateBody",
    "TagResource",
    "UpdateAccessKey",
    "UpdateRole",
    "UpdateUser",
    "field_path",
    "parse_body",
]

EntityName = Field(pattern=ENTITY_NAME_PATTERN, min_length=1, max_length=64)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenAccount(_Body):
    name: str = Field(min_length=1, max_length=128)


class CreateUser(_Body):
    user_name: str = EntityName
    display_name: str | None = Field(default=None, max_length=128)


class TagResource(_Body):
    """``PUT …/users/{u}/tags`` and ``…/roles/{r}/tags``: tags to add (RAM's TagResources).

    The keys and values are checked by the domain (``domain.common.tags``: 1 to 20 tags, a
    key of 1 to 128 characters not starting with ``aliyun`` or ``acs:``, …), which names
    each bad one as ``tags.<key>``."""

    tags: dict[str, Any]


class UpdateUser(_Body):
    new_user_name: str | None = Field(
        default=None, pattern=ENTITY_NAME_PATTERN, min_length=1, max_length=64
    )
    new_display_name: str | None = Field(default=None, max_length=128)


class UpdateAccessKey(_Body):
    status: Literal["Active", "Inactive"]


class CreateGroup(_Body):
    group_name: str = EntityName
    comments: str | None = Field(default=None, max_length=128)


PolicyDocumentField = dict[str, Any] | str


class CreatePolicy(_Body):
    policy_name: str = EntityName
    policy_document: PolicyDocumentField
    description: str | None = Field(default=None, max_length=1024)


class CreatePolicyVersion(_Body):
    policy_document: PolicyDocumentField
    set_as_default: bool = False


class SetDefaultVersion(_Body):
    version_id: str = Field(pattern=r"^v[1-9][0-9]*$")


class CreateRole(_Body):
    role_name: str = EntityName
    assume_role_policy_document: PolicyDocumentField
    max_session_duration: int | None = None
    description: str | None = Field(default=None, max_length=1024)
    tags: dict[str, Any] | None = None
    """Tags recorded with the role (RAM's CreateRole ``Tag``; ``ram:TagResources`` too)."""


class UpdateRole(_Body):
    description: str | None = Field(default=None, max_length=1024)
    max_session_duration: int | None = None
    assume_role_policy_document: PolicyDocumentField | None = None


class SetTrustPolicy(_Body):
    assume_role_policy_document: PolicyDocumentField


class RevokeRoleSessions(_Body):
    issued_before: Instant | None = None
    reason: str | None = Field(default=None, max_length=1024)


class Revocation(_Body):
    reason: str | None = Field(default=None, max_length=1024)


class AssumeRoleBody(_Body):
    """STS AssumeRole; the ranges are checked by the domain, which names RAM's error codes."""

    role_arn: str = Field(max_length=2048)
    role_session_name: str = Field(max_length=256)
    duration_seconds: int | None = None
    policy: PolicyDocumentField | None = None
    external_id: str | None = Field(default=None, max_length=2048)


class GrantEntrustment(_Body):
    trustee_account_id: str = Field(pattern=r"^[0-9]{16}$")
    scope: dict[str, Any] | str
    contract_ref: str = Field(min_length=1, max_length=128)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    description: str | None = Field(default=None, max_length=1024)
    role_name: str | None = Field(
        default=None, pattern=ENTITY_NAME_PATTERN, min_length=1, max_length=64
    )


class AmendEntrustment(_Body):
    scope: dict[str, Any] | str


class GrantDelegation(_Body):
    entrustment_id: UUID
    grantee: str = Field(min_length=1, max_length=512)
    scope: dict[str, Any] | str
    ends_at: Instant | None = None


class ClientCredentials(_Body):
    """A client's AccessKey with its secret: for trusted in-process callers only. An
    enforcement point that receives signed requests sends ``signed`` instead, and never
    holds its clients' secrets."""

    access_key_id: str = Field(min_length=1, max_length=128)
    access_key_secret: str = Field(min_length=1, max_length=256)
    security_token: str | None = None


NamedValues = dict[str, str] | list[tuple[str, str]]
"""Headers or query parameters: an object, or ``[name, value]`` pairs when a name repeats."""


class SignedRequestBody(_Body):
    """An OSS request as an enforcement point received it, signed by its client: OSS V1
    (``Authorization: OSS <AccessKeyId>:<signature>``, or a presigned URL's
    ``OSSAccessKeyId``/``Expires``/``Signature``) or V4 (``OSS4-HMAC-SHA256 …``, or the
    URL's ``x-oss-signature-version``/``x-oss-credential``/``x-oss-date``/``x-oss-expires``/
    ``x-oss-signature``), with STS credentials' ``x-oss-security-token`` header or
    ``security-token``/``x-oss-security-token`` parameter. Mandate finds the scheme itself,
    verifies the signature, the clock (±15 minutes) or the URL's expiry, then the key or
    session, and decides for it: the secret never leaves Mandate."""

    method: str = Field(pattern=r"^[A-Za-z]{1,16}$", description="The HTTP method, e.g. GET")
    bucket: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The bucket (from the host or the path); none for a service request",
    )
    key: str = Field(default="", max_length=4096, description="The object key, decoded")
    params: NamedValues = Field(
        default_factory=dict,
        description="The query parameters, decoded (sub-resources, a URL's signature)",
    )
    headers: NamedValues = Field(
        default_factory=dict,
        description="The headers the client sent: Authorization, Date or x-oss-date, "
        "Content-MD5, Content-Type, every x-oss-* one (and V4's additional headers)",
    )
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="V4: the only region the credential scope may name (e.g. cn-hangzhou)",
    )

    @field_validator("params", "headers")
    @classmethod
    def _bounded(cls, values: NamedValues) -> NamedValues:
        if len(values) > 128:
            raise PydanticCustomError("too_many", "at most 128 names")
        return values


class AuthorizeBody(_Body):
    """``/v1/authorize``'s body: every check of its shape is here (``parse_body`` runs them on
    the hand-parsed hot path, and FastAPI's OpenAPI document is generated from this model)."""

    action: str = Field(min_length=1, max_length=256)
    resource: str = Field(min_length=1, max_length=2048)
    context: dict[str, Any] | None = None
    as_of: Instant | None = None
    min_position: int | None = Field(default=None, ge=0)
    credentials: ClientCredentials | None = None
    principal: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="An ARN or a session's key id; never together with credentials",
    )
    signed: SignedRequestBody | None = Field(
        default=None,
        description="An enforcement point's client request, signed (decided now, for whoever "
        "signed it); never with credentials, principal or as_of",
    )

    @field_validator("principal")
    @classmethod
    def _not_with_credentials(cls, principal: str | None, info: ValidationInfo) -> str | None:
        # ``credentials`` is declared (so validated) before ``principal``
        if principal is not None and info.data.get("credentials") is not None:
            raise PydanticCustomError("not_both", "give either credentials or principal, not both")
        return principal

    @field_validator("signed")
    @classmethod
    def _signed_alone(
        cls, signed: SignedRequestBody | None, info: ValidationInfo
    ) -> SignedRequestBody | None:
        if signed is None:
            return None
        if info.data.get("credentials") is not None or info.data.get("principal") is not None:
            raise PydanticCustomError(
                "not_both", "give one of credentials, principal or signed, not two"
            )
        if info.data.get("as_of") is not None:
            raise PydanticCustomError(
                "not_as_of", "a signature proves a request now: as_of is not taken with signed"
            )
        return signed


class MatchedStatementBody(BaseModel):
    """A statement that decided (``MatchedStatement.as_dict``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: Literal["root", "identity", "role", "entrustment", "delegation", "session"]
    policy_type: str
    policy_name: str
    version: str | None
    statement: int
    effect: Literal["Allow", "Deny"]
    via: str | None


class AnswerBody(BaseModel):
    """``/v1/authorize``'s answer (docs/design.md §5): what its OpenAPI entry documents. The
    route encodes it by hand (``decision_encoding``, ``presenters.answer_json``);
    tests/e2e/test_authorize_contract.py validates its answers against this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["Allow", "ExplicitDeny", "ImplicitDeny"]
    allowed: bool
    matched: list[MatchedStatementBody]
    chain: list[str]
    billed_account: str | None
    reason: str
    evaluated_at: str = Field(description="RFC 3339, UTC")
    position: int = Field(description="The ledger position the answer was decided at")
    as_of: str | None = Field(default=None, description="Only in an answer about the past")
    authenticated: bool | None = Field(
        default=None,
        description="Only when no principal could be decided for: false for refused "
        "credentials, null for an unknown principal",
    )


class SimulateBody(_Body):
    policies: list[PolicyDocumentField] = Field(min_length=1, max_length=50)
    action: str = Field(min_length=1, max_length=256)
    resource: str = Field(min_length=1, max_length=2048)
    context: dict[str, Any] | None = None


B = TypeVar("B", bound=BaseModel)


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as a request field path: ``policies[1].Statement``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def parse_body(model: type[B], raw: bytes) -> B:
    """Validate a JSON body outside FastAPI's machinery, with the same 400 it would give."""
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as invalid:
        raise InvalidInput(
            [FieldError(field_path(e["loc"]), e["msg"]) for e in invalid.errors()]
        ) from None
