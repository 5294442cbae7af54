"""Resource Directory invitations over RPC: ResourceManager 2020-03-31's handshakes.

InviteAccountToResourceDirectory (the management account, ``TargetType=Account`` only; it is
authorised on the directory, ``acs:resourcemanager::<account>:*``) makes a ``Pending``
handshake; the invited account's AcceptHandshake makes it a member, in the root folder, and
DeclineHandshake refuses it; the inviter's CancelHandshake withdraws it. Each is authorised
as ``resourcemanager:<Action>`` on the handshake in the caller's own account
(``…:handshake/h-…``), so only the invited account (its root, or a RAM user of it granted
AcceptHandshake) can make it a member. GetHandshake answers the inviter or the invited
account; anyone else is told 404 ``EntityNotExists.Handshake``, as for an id that does not
exist. ListHandshakesForAccount lists the caller's invitations, ListHandshakesForResource
Directory its directory's. A handshake lapses 14 days after it was made (``ExpireTime``):
shown ``Expired`` from then on, and answering it, or any handshake no longer pending, is 409
``HandshakeStatusMismatch`` (RM's code); a second invitation to an account with one pending is
409 ``Duplicate.Handshake``. ``TargetType=Email`` is 400 ``InvalidParameter.TargetType`` with
RM's message: Mandate's accounts have no logon email to find one by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import Field

from mandate.api.rpc.answers import rpc_time
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import RpcParams
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import RESOURCE_MANAGER, RpcContext, rpc_action
from mandate.api.rpc.rm_directory import (
    RM_CODES,
    PageParams,
    directory_of,
    resource_directory_id,
)
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.results import Written
from mandate.domain.permissions.directory_paths import directory_arn
from mandate.domain.permissions.handshakes import (
    current_status,
    expires_at,
    handshake_arn,
    handshake_clock,
)
from mandate.projections.decisions.directory_events import HandshakeView

__all__: list[str] = []

_CODES: Final[dict[str, str]] = {
    **RM_CODES,
    "EntityNotExist.Handshake": "EntityNotExists.Handshake",
    "InvalidStatus.Handshake": "HandshakeStatusMismatch",
}

_TARGET_TYPE: Final = "The TargetType is invalid."
"""RM's message for ``InvalidParameter.TargetType`` (InviteAccountToResourceDirectory)."""


def _body(ctx: RpcContext, view: HandshakeView) -> dict[str, Any]:
    management = view.management_account
    now = handshake_clock()
    body: dict[str, Any] = {
        "HandshakeId": view.handshake,
        "ResourceDirectoryId": resource_directory_id(management),
        "MasterAccountId": management,
        "TargetEntity": view.target_account,
        "TargetType": "Account",
        "Status": current_status(view.status, view.invited_at, now),
        "CreateTime": rpc_time(view.invited_at),
        "ExpireTime": rpc_time(expires_at(view.invited_at)),
        "ModifyTime": rpc_time(view.modified_at),
    }
    account = ctx.runtime.index.account(management)
    if account is not None:
        body["MasterAccountName"] = account.name
    if view.note is not None:
        body["Note"] = view.note
    return body


def _found(ctx: RpcContext, handshake: str) -> HandshakeView:
    """The handshake, if the caller's account invited or was invited (404 otherwise)."""
    for view in ctx.runtime.index.handshakes_of(ctx.account_id):
        if view.handshake == handshake:
            return view
    raise RpcError(404, "EntityNotExists.Handshake", "The handshake does not exist.")


class InviteParams(RpcParams):
    target_entity: str = Field(max_length=64)
    target_type: str
    note: str | None = None


@rpc_action("InviteAccountToResourceDirectory", RESOURCE_MANAGER, InviteParams)
def invite_account(ctx: RpcContext, p: InviteParams) -> dict[str, Any]:
    account_id = ctx.account_id
    action = "resourcemanager:InviteAccountToResourceDirectory"
    management = ctx.manage(action, directory_arn(account_id, "*"))
    if p.target_type != "Account":
        # RM's code and message for a TargetType it does not take: Mandate's accounts have no
        # logon email, so ``Email`` names no account (README, Resource Directory).
        raise RpcError(400, "InvalidParameter.TargetType", _TARGET_TYPE)
    directory_of(ctx)
    with recoded(_CODES):
        made = management.write(
            lambda ledger: ledger.invite_account(account_id, p.target_entity, p.note)
        )
    return {"Handshake": _body(ctx, _found(ctx, made.node_id))}


class HandshakeParams(RpcParams):
    handshake_id: str = Field(max_length=64)


def _answer(
    ctx: RpcContext,
    p: HandshakeParams,
    action: str,
    answer: Callable[[Ledger, str, str], Written],
) -> dict[str, Any]:
    """Accept, decline or cancel: ``resourcemanager:<action>`` on the handshake in the
    caller's own account (the invited one's, or the inviter's), then the handshake now."""
    account_id = ctx.account_id
    arn = handshake_arn(account_id, p.handshake_id)
    party = ctx.manage(f"resourcemanager:{action}", arn)
    with recoded(_CODES):
        party.write(lambda ledger: answer(ledger, account_id, p.handshake_id))
    return {"Handshake": _body(ctx, _found(ctx, p.handshake_id))}


@rpc_action("AcceptHandshake", RESOURCE_MANAGER, HandshakeParams)
def accept_handshake(ctx: RpcContext, p: HandshakeParams) -> dict[str, Any]:
    return _answer(ctx, p, "AcceptHandshake", Ledger.accept_handshake)


@rpc_action("DeclineHandshake", RESOURCE_MANAGER, HandshakeParams)
def decline_handshake(ctx: RpcContext, p: HandshakeParams) -> dict[str, Any]:
    return _answer(ctx, p, "DeclineHandshake", Ledger.decline_handshake)


@rpc_action("CancelHandshake", RESOURCE_MANAGER, HandshakeParams)
def cancel_handshake(ctx: RpcContext, p: HandshakeParams) -> dict[str, Any]:
    return _answer(ctx, p, "CancelHandshake", Ledger.cancel_handshake)


@rpc_action("GetHandshake", RESOURCE_MANAGER, HandshakeParams)
def get_handshake(ctx: RpcContext, p: HandshakeParams) -> dict[str, Any]:
    arn = handshake_arn(ctx.account_id, p.handshake_id)
    ctx.authorize_read("resourcemanager:GetHandshake", arn)
    return {"Handshake": _body(ctx, _found(ctx, p.handshake_id))}


def _page(ctx: RpcContext, p: PageParams, views: list[HandshakeView]) -> dict[str, Any]:
    return p.page(views, lambda v: _body(ctx, v), "Handshakes", "Handshake")


@rpc_action("ListHandshakesForAccount", RESOURCE_MANAGER, PageParams)
def list_for_account(ctx: RpcContext, p: PageParams) -> dict[str, Any]:
    """The caller's account's invitations, from any directory, oldest first."""
    account_id = ctx.account_id
    ctx.authorize_read("resourcemanager:ListHandshakesForAccount", directory_arn(account_id, "*"))
    views = ctx.runtime.index.handshakes_of(account_id)
    views = [view for view in views if view.target_account == account_id]
    return _page(ctx, p, views)


@rpc_action("ListHandshakesForResourceDirectory", RESOURCE_MANAGER, PageParams)
def list_for_directory(ctx: RpcContext, p: PageParams) -> dict[str, Any]:
    """The caller's directory's invitations, oldest first."""
    action = "resourcemanager:ListHandshakesForResourceDirectory"
    ctx.authorize_read(action, directory_arn(ctx.account_id, "*"))
    directory_of(ctx)  # 404 without a directory
    views = ctx.runtime.index.handshakes_of(ctx.account_id)
    return _page(ctx, p, [v for v in views if v.management_account == ctx.account_id])
