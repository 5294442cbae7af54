"""One entity's relations at an instant: ``GET /v1/accounts/{a}/as-of/…?as_of=``.

The audit console put at T shows the lists of T (``point_in_time``); these are the details
beside them, read from the temporal index (``projections.history.as_of_details``) after it
reached the head of the log observed when the request arrived, each authorised as its live
counterpart is, on the same ARN — so an instant reveals nothing the caller could not read now:

* ``…/as-of/{users,groups,roles}/{name}/policies``: the attached policies then
  (``ram:ListPoliciesFor{User,Group,Role}``), each with the policy's default version then;
* ``…/as-of/groups/{group_name}/members``: the group's members then (``ram:ListUsersForGroup``);
* ``…/as-of/roles/{role_name}``: the role then with its trust policy then (``ram:GetRole``);
  a contract's managed role's computed from the delegations alive then;
* ``…/as-of/policies/{policy_name}/entities``: the users, groups and roles the policy was
  attached to then, with its default version and versions then (``ram:ListEntitiesForPolicy``).

A name is the entity's that had it at T; none then is RAM's ``EntityNotExist.*`` (404).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NoReturn

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, Field

from mandate.api.deps import Caller, CallerDep, RuntimeDep, check_account_id
from mandate.api.presenters import rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import authorize_read
from mandate.api.routers.history import check_instant, reach_temporal_head
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import (
    PrincipalKind,
    group_arn,
    policy_arn,
    principal_arn,
    role_arn,
    user_arn,
)
from mandate.domain.common.errors import NotFound
from mandate.domain.common.instants import EPOCH_REFUSED
from mandate.projections.history.as_of_details import (
    attachments_at,
    holders_at,
    members_at,
    role_at,
)

router = APIRouter(
    prefix="/v1/accounts/{account_id}/as-of",
    tags=["point in time"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)

AsOf = Annotated[datetime | None, EPOCH_REFUSED]


class _AtInstant(BaseModel):
    as_of: str = Field(description="The instant read (RFC 3339, UTC)")
    position: int = Field(description="The log's head the temporal index had reached")


class AttachedPolicyAt(BaseModel):
    policy_type: Literal["System", "Custom"]
    policy_name: str
    version: str = Field(description="The policy's default version then ('' if it was gone)")


class AttachedPoliciesAt(_AtInstant):
    """``ListPoliciesFor{User,Group,Role}`` as it would have answered at ``as_of``."""

    arn: str
    items: list[AttachedPolicyAt]
    next_cursor: None = None


class NamedAt(BaseModel):
    id: str
    name: str
    arn: str


class GroupMembersAt(_AtInstant):
    """``ListUsersForGroup`` as it would have answered at ``as_of``, by user name."""

    group_id: str
    arn: str
    items: list[NamedAt]
    next_cursor: None = None


class RoleAtInstant(_AtInstant):
    """``GetRole`` as it would have answered at ``as_of``: the trust policy then."""

    role_id: str
    role_name: str
    arn: str
    managed_by: str | None = Field(description="The contract, for a contract's managed role")
    description: str | None
    max_session_duration: int | None
    assume_role_policy_document: dict[str, Any]
    sessions_revoked_before: str | None


class PolicyEntitiesAt(_AtInstant):
    """``ListEntitiesForPolicy`` as it would have answered at ``as_of``, each kind by name."""

    policy_type: Literal["System", "Custom"]
    policy_name: str
    arn: str
    default_version: str
    versions: list[str] = Field(description="The policy's versions then")
    users: list[NamedAt]
    groups: list[NamedAt]
    roles: list[NamedAt]


async def _read_at(
    runtime: Runtime, caller: Caller, account_id: str, action: str, arn: str, as_of: AsOf
) -> tuple[datetime, int]:
    """Each detail's preamble: the caller may make the live read's ``action`` on ``arn``;
    then the instant (default now), and the temporal index's position once it has caught up
    with the log, which the answer names."""
    check_account_id(account_id)
    authorize_read(runtime, caller, account_id, action, arn)
    at = check_instant(as_of) if as_of is not None else datetime.now(UTC)
    return at, await reach_temporal_head(runtime)


def _not_then(what: str, at: datetime, code: str) -> NoReturn:
    """RAM's ``EntityNotExist.*``: nothing had the name at the instant."""
    raise NotFound(f"{what} did not exist at {rfc3339(at)}", code=code)


@router.get("/{kind}/{name}/policies")
async def attached_as_of(
    account_id: str,
    kind: Literal["users", "groups", "roles"],
    name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    as_of: AsOf = None,
) -> AttachedPoliciesAt:
    """The policies the principal named ``name`` held attached at ``as_of`` (default now)."""
    principal = PrincipalKind.from_plural(kind)
    arn = principal_arn(account_id, principal, name)
    at, position = await _read_at(
        runtime, caller, account_id, f"ram:ListPoliciesFor{principal.noun}", arn, as_of
    )
    facts = runtime.as_of.facts
    found = await anyio.to_thread.run_sync(
        attachments_at, facts, account_id, principal.value, name, at
    )
    if found is None:
        _not_then(f"{principal.value} {name!r}", at, f"EntityNotExist.{principal.noun}")
    items = [
        AttachedPolicyAt.model_validate(
            {"policy_type": a.policy_type, "policy_name": a.policy_name, "version": a.version}
        )
        for a in found
    ]
    return AttachedPoliciesAt(arn=arn, items=items, as_of=rfc3339(at), position=position)


@router.get("/groups/{group_name}/members")
async def members_as_of(
    account_id: str,
    group_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    as_of: AsOf = None,
) -> GroupMembersAt:
    """The users in the group named ``group_name`` at ``as_of`` (default now)."""
    arn = group_arn(account_id, group_name)
    at, position = await _read_at(runtime, caller, account_id, "ram:ListUsersForGroup", arn, as_of)
    facts = runtime.as_of.facts
    group = await anyio.to_thread.run_sync(members_at, facts, account_id, group_name, at)
    if group is None:
        _not_then(f"group {group_name!r}", at, "EntityNotExist.Group")
    group_id, members = group
    items = [NamedAt(id=i, name=n, arn=user_arn(account_id, n)) for i, n in members]
    return GroupMembersAt(
        group_id=group_id, arn=arn, items=items, as_of=rfc3339(at), position=position
    )


@router.get("/roles/{role_name}")
async def role_as_of(
    account_id: str,
    role_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    as_of: AsOf = None,
) -> RoleAtInstant:
    """The role named ``role_name`` at ``as_of`` (default now), with its trust policy then."""
    arn = role_arn(account_id, role_name)
    at, position = await _read_at(runtime, caller, account_id, "ram:GetRole", arn, as_of)
    found = await anyio.to_thread.run_sync(role_at, runtime.as_of.facts, account_id, role_name, at)
    if found is None:
        _not_then(f"role {role_name!r}", at, "EntityNotExist.Role")
    horizon = found.sessions_revoked_before
    return RoleAtInstant(
        role_id=found.role_id,
        role_name=role_name,
        arn=arn,
        managed_by=found.managed_by,
        description=found.description,
        max_session_duration=found.max_session_duration,
        assume_role_policy_document=found.trust_policy,
        sessions_revoked_before=rfc3339(horizon) if horizon else None,
        as_of=rfc3339(at),
        position=position,
    )


@router.get("/policies/{policy_name}/entities")
async def entities_as_of(
    account_id: str,
    policy_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    as_of: AsOf = None,
    policy_type: Literal["System", "Custom"] = "Custom",
) -> PolicyEntitiesAt:
    """The account's users, groups and roles the policy was attached to at ``as_of``."""
    arn = policy_arn(account_id, policy_name)
    at, position = await _read_at(
        runtime, caller, account_id, "ram:ListEntitiesForPolicy", arn, as_of
    )
    found = await anyio.to_thread.run_sync(
        holders_at, runtime.as_of.facts, account_id, policy_type, policy_name, at
    )
    if found is None:
        _not_then(f"{policy_type} policy {policy_name!r}", at, "EntityNotExist.Policy")

    def named(entries: list[tuple[str, str]], arn_of: Any) -> list[NamedAt]:
        return [NamedAt(id=i, name=n, arn=arn_of(account_id, n)) for i, n in entries]

    return PolicyEntitiesAt(
        policy_type=policy_type,
        policy_name=policy_name,
        arn=arn,
        default_version=found.default_version,
        versions=found.versions,
        users=named(found.users, user_arn),
        groups=named(found.groups, group_arn),
        roles=named(found.roles, role_arn),
        as_of=rfc3339(at),
        position=position,
    )
