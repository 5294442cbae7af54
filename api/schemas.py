"""Request bodies (pydantic): snake_case JSON; policy documents keep RAM's own keys.

Field rules here are the first line; the domain checks again and has the last word.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.validation import ENTITY_NAME_PATTERN

__all__ = [
    "AuthorizeBody",
    "ClientCredentials",
    "CreateGroup",
    "CreatePolicy",
    "CreatePolicyVersion",
    "CreateUser",
    "OpenAccount",
    "SetDefaultVersion",
    "SimulateBody",
    "UpdateAccessKey",
    "UpdateUser",
]

EntityName = Field(pattern=ENTITY_NAME_PATTERN, min_length=1, max_length=64)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenAccount(_Body):
    name: str = Field(min_length=1, max_length=128)


class CreateUser(_Body):
    user_name: str = EntityName
    display_name: str | None = Field(default=None, max_length=128)


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


class ClientCredentials(_Body):
    access_key_id: str = Field(min_length=1, max_length=128)
    access_key_secret: str = Field(min_length=1, max_length=256)
    security_token: str | None = None


class AuthorizeBody(_Body):
    action: str = Field(min_length=1, max_length=256)
    resource: str = Field(min_length=1, max_length=2048)
    context: dict[str, Any] | None = None
    as_of: datetime | None = None
    min_position: int | None = Field(default=None, ge=0)
    credentials: ClientCredentials | None = None
    principal: str | None = Field(default=None, min_length=1, max_length=512)


class SimulateBody(_Body):
    policies: list[PolicyDocumentField] = Field(min_length=1, max_length=50)
    action: str = Field(min_length=1, max_length=256)
    resource: str = Field(min_length=1, max_length=2048)
    context: dict[str, Any] | None = None
