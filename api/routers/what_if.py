"""What-if before you revoke: ``POST /v1/accounts/{a}/what-if``.

The body names one change that has not happened — ``revoke_entrustment``,
``revoke_delegation``, ``detach_policy``, ``delete_user`` (as ``DELETE …?detach=true``),
``set_default_version``, ``put_resource_policy`` or ``delete_resource_policy`` (as
``PUT``/``DELETE …/resource-policies?resource=``), or in a management account's Resource
Directory ``attach_control_policy``, ``detach_control_policy`` or ``move_account`` — and the
answer is every principal, action pattern and resource pattern that would lose or gain
access, with the chains (resource policies' too), computed without writing anything:

1. the caller is authorised as for the change itself (``ram:RevokeEntrustment`` on the
   contract, ``ram:DetachPolicyFrom<Noun>`` on the principal, …; the platform admin, who
   never writes inside an account, may not ask) **and** for ``ram:GetEffectivePermissions``
   on the account's every entity (``acs:ram::<a>:*``): the answer lists the statements of
   the account's principals, which only that read shows. So what-if tells no one what they
   could neither do nor read; another account's caller is refused before anything is
   looked up. A directory change is authorised as its route (``resourcemanager:…`` on the
   node's ARN) and needs ``resourcemanager:GetResourceDirectory`` too: the answer lists the
   directory's control policies, per member account (``control_reach``);
2. the ledger runs the very command the change would run, rehearsed
   (``domain.ledger.rehearsal``): an unknown entrustment is a 404, a managed role's policy a
   409, exactly as for real, and its events are collected instead of saved;
3. the events are applied to a copy of this process's decision index, brought first to the
   head of the log (``projections.decisions.what_if``), and the reach of the account's world
   is diffed before and after. The log's head and the live index do not move.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mandate.api.deps import CallerDep, RuntimeDep, authorize_management, check_account_id
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.problems import PositionNotReached
from mandate.api.reads import authorize_read
from mandate.domain.common.arns import (
    PrincipalKind,
    delegation_arn,
    entrustment_arn,
    policy_arn,
    principal_arn,
    user_arn,
)
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.rehearsal import rehearse
from mandate.domain.permissions.directory_paths import directory_arn
from mandate.domain.policy.resource_policies import owned_resource_key
from mandate.projections.decisions.snapshots import snapshot_lock
from mandate.projections.decisions.what_if import what_if

router = APIRouter(tags=["what-if"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)

_CHANGES = (
    "revoke_entrustment",
    "revoke_delegation",
    "detach_policy",
    "delete_user",
    "set_default_version",
    "put_resource_policy",
    "delete_resource_policy",
    "attach_control_policy",
    "detach_control_policy",
    "move_account",
)
_DIRECTORY_CHANGES = {
    "attach_control_policy": "resourcemanager:AttachControlPolicy",
    "detach_control_policy": "resourcemanager:DetachControlPolicy",
    "move_account": "resourcemanager:MoveAccount",
}


class DetachPolicyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal_kind: Literal["user", "group", "role"]
    name: str
    policy_type: str
    policy_name: str


class SetDefaultVersionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy_name: str
    version_id: str


class DeleteResourcePolicyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource: str = Field(max_length=1024, description="an ARN of one of this account's resources")


class PutResourcePolicyChange(DeleteResourcePolicyChange):
    policy_document: dict[str, Any] | str = Field(
        description="as PUT …/resource-policies takes it: a Principal in every statement"
    )


class ControlPolicyChange(BaseModel):
    """As ``PUT``/``DELETE …/resource-directory/attachments/{target_id}/{policy_name}``."""

    model_config = ConfigDict(extra="forbid")
    target_id: str = Field(min_length=1, max_length=64, description="a folder or a member")
    policy_name: str = Field(min_length=1, max_length=128)


class MoveAccountChange(BaseModel):
    """As ``PUT …/resource-directory/accounts/{account_id}`` ``{folder_id}``."""

    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1, max_length=64, description="a member")
    folder_id: str = Field(min_length=1, max_length=64)


class WhatIfRequest(BaseModel):
    """Exactly one change that has not happened."""

    model_config = ConfigDict(extra="forbid")
    revoke_entrustment: UUID | None = Field(None, description="an entrustment of this account")
    revoke_delegation: UUID | None = Field(None, description="a delegation of this account")
    detach_policy: DetachPolicyChange | None = None
    delete_user: str | None = Field(None, description="a user, deleted with ?detach=true")
    set_default_version: SetDefaultVersionChange | None = None
    put_resource_policy: PutResourcePolicyChange | None = None
    delete_resource_policy: DeleteResourcePolicyChange | None = None
    attach_control_policy: ControlPolicyChange | None = Field(
        None, description="in this (management) account's Resource Directory"
    )
    detach_control_policy: ControlPolicyChange | None = None
    move_account: MoveAccountChange | None = None


class ReachItem(BaseModel):
    principal: str
    effect: str
    action: str | None = Field(
        description="a pattern; '!' before one written under NotAction; null: withheld"
    )
    resource: str | None = Field(
        description="a pattern; '!' before one written under NotResource; null: withheld"
    )
    chain: list[str]
    layer: str
    policy_type: str
    policy: str
    via: str | None
    condition: dict[str, Any] | None
    needs_own_allow: bool = Field(
        description="an Allow of another account's resource policy: grants only where the "
        "principal's own policies allow the same too"
    )
    statement: int | None = Field(
        None,
        description="set only on a statement of another account's resource policy: its index "
        "in that policy, as /v1/authorize's matched names it; its text (action, resource, "
        "condition) is that account's and withheld",
    )


class WhatIfAnswer(BaseModel):
    change: dict[str, Any]
    position: int = Field(description="the log position the answer was computed on")
    lose: list[ReachItem]
    gain: list[ReachItem]
    rerouted: list[ReachItem] = Field(
        description="entries that would go while the same access stays through another chain"
    )
    principals_affected: list[str]


def _change(account_id: str, body: WhatIfRequest) -> tuple[str, str, Callable[[Ledger], Any]]:
    """The action that authorises the change, its resource, and the command it would run."""
    named = [name for name in _CHANGES if getattr(body, name) is not None]
    if len(named) != 1:
        raise InvalidInput(FieldError("body", f"must name exactly one of {', '.join(_CHANGES)}"))
    a = account_id
    if body.revoke_entrustment is not None:
        e = body.revoke_entrustment
        return (
            "ram:RevokeEntrustment",
            entrustment_arn(a, e),
            lambda ledger: ledger.revoke_entrustment(a, e),
        )
    if body.revoke_delegation is not None:
        d = body.revoke_delegation
        return (
            "ram:RevokeDelegation",
            delegation_arn(a, d),
            lambda ledger: ledger.revoke_delegation(a, d),
        )
    if body.detach_policy is not None:
        p = body.detach_policy
        kind = PrincipalKind(p.principal_kind)
        return (
            f"ram:DetachPolicyFrom{kind.noun}",
            principal_arn(a, kind, p.name),
            lambda ledger: ledger.detach_policy(a, kind, p.name, p.policy_type, p.policy_name),
        )
    if body.delete_user is not None:
        u = body.delete_user
        return (
            "ram:DeleteUser",
            user_arn(a, u),
            lambda ledger: ledger.delete_user(a, u, detach=True),
        )
    if body.put_resource_policy is not None or body.delete_resource_policy is not None:
        return _resource_policy_change(a, body)
    if named[0] in _DIRECTORY_CHANGES:
        return _directory_change(a, body)
    assert body.set_default_version is not None
    v = body.set_default_version
    return (
        "ram:SetDefaultPolicyVersion",
        policy_arn(a, v.policy_name),
        lambda ledger: ledger.set_default_policy_version(a, v.policy_name, v.version_id),
    )


def _resource_policy_change(
    a: str, body: WhatIfRequest
) -> tuple[str, str, Callable[[Ledger], Any]]:
    """PUT or DELETE …/resource-policies?resource=: the ARN checked first (literal, ``a``'s),
    as the route does, and every fault named under the change's own field."""
    put = body.put_resource_policy
    change = put if put is not None else body.delete_resource_policy
    assert change is not None
    field = "put_resource_policy" if put is not None else "delete_resource_policy"
    try:
        owned_resource_key(change.resource, a)
    except InvalidInput as bad:
        raise bad.prefixed(field) from None
    arn = change.resource
    if put is None:
        return (
            "ram:DeleteResourcePolicy",
            arn,
            lambda ledger: ledger.delete_resource_policy(a, arn),
        )
    document = put.policy_document

    def command(ledger: Ledger) -> Any:
        try:
            return ledger.put_resource_policy(a, arn, document)
        except InvalidInput as bad:
            raise bad.prefixed(f"{field}.policy_document") from None

    return "ram:PutResourcePolicy", arn, command


def _directory_change(a: str, body: WhatIfRequest) -> tuple[str, str, Callable[[Ledger], Any]]:
    """Attach or detach a control policy, or move a member, in ``a``'s Resource Directory:
    authorised on the node's ARN as the real route is."""
    if body.move_account is not None:
        m = body.move_account
        return (
            _DIRECTORY_CHANGES["move_account"],
            directory_arn(a, m.account_id),
            lambda ledger: ledger.move_account(a, m.account_id, m.folder_id),
        )
    if body.attach_control_policy is not None:
        c = body.attach_control_policy
        return (
            _DIRECTORY_CHANGES["attach_control_policy"],
            directory_arn(a, c.target_id),
            lambda ledger: ledger.attach_control_policy(a, c.policy_name, c.target_id),
        )
    d = body.detach_control_policy
    assert d is not None
    return (
        _DIRECTORY_CHANGES["detach_control_policy"],
        directory_arn(a, d.target_id),
        lambda ledger: ledger.detach_control_policy(a, d.policy_name, d.target_id),
    )


@router.post("/v1/accounts/{account_id}/what-if")
def simulate_change(
    account_id: str, body: WhatIfRequest, caller: CallerDep, runtime: RuntimeDep
) -> WhatIfAnswer:
    """Who would lose or gain access if the change were made; writes nothing."""
    check_account_id(account_id)
    action, resource, command = _change(account_id, body)
    authorize_management(runtime, caller, account_id, action, resource)
    authorize_read(runtime, caller, account_id, "ram:GetEffectivePermissions")
    if any(getattr(body, name) is not None for name in _DIRECTORY_CHANGES):
        # the answer lists the directory's control policies, which only its read shows
        directory = directory_arn(account_id, "*")
        authorize_read(
            runtime, caller, account_id, "resourcemanager:GetResourceDirectory", directory
        )
    head = runtime.head()
    if not runtime.follower.wait_for(head, runtime.settings.min_position_timeout):
        raise PositionNotReached(head, runtime.index.position)
    ledger = runtime.ledger
    events = rehearse(lambda: command(ledger))
    # copied under the follower's apply lock, as index snapshots are: decisions go on
    lock = snapshot_lock(runtime.follower)
    found = what_if(runtime.index, account_id, events, datetime.now(UTC), lock)
    return WhatIfAnswer(
        change=body.model_dump(mode="json", exclude_none=True),
        position=found.position,
        lose=[ReachItem(**r.as_dict()) for r in found.lose],
        gain=[ReachItem(**r.as_dict()) for r in found.gain],
        rerouted=[ReachItem(**r.as_dict()) for r in found.rerouted],
        principals_affected=found.principals_affected,
    )
