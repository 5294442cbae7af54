"""Resource Directory invitations on ``/v1``: an account joins a directory only by accepting.

The management account invites (``POST …/resource-directory/handshakes``,
``resourcemanager:InviteAccountToResourceDirectory`` on its directory), lists its directory's
invitations and cancels a pending one (``DELETE …/resource-directory/handshakes/{id}``,
``resourcemanager:CancelHandshake``). The invited account lists its invitations
(``GET /v1/accounts/{account_id}/handshakes``) and accepts or declines one
(``POST …/handshakes/{id}/accept|decline``, ``resourcemanager:AcceptHandshake|Decline
Handshake`` on ``acs:resourcemanager::<account>:handshake/<id>`` in its own account): accepted,
it is a member in the root folder. A handshake is shown only to its two accounts; anyone else
is told 404, as for an id that does not exist. It lapses at ``expires_at`` (14 days on): shown
``Expired`` from then, and answering it is 409 ``InvalidStatus.Handshake``; a second invitation
while one to the account is pending is 409 ``Duplicate.Handshake``. Refusals are problem+json
and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import authorize_read
from mandate.domain.common.errors import NotFound
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

router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["resource-directory"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


class Invite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_account_id: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, min_length=1, max_length=1024)


def _json(view: HandshakeView) -> dict[str, Any]:
    now = handshake_clock()
    return {
        "handshake_id": view.handshake,
        "management_account_id": view.management_account,
        "target_account_id": view.target_account,
        "note": view.note,
        "status": current_status(view.status, view.invited_at, now),
        "created_at": view.invited_at.isoformat(),
        "modified_at": view.modified_at.isoformat(),
        "expires_at": expires_at(view.invited_at).isoformat(),
    }


def _found(runtime: RuntimeDep, account_id: str, handshake: str) -> HandshakeView:
    for view in runtime.index.handshakes_of(account_id):
        if view.handshake == handshake:
            return view
    raise NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")


@router.post("/resource-directory/handshakes", status_code=201)
def invite_account(
    account_id: str, body: Invite, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """A ``Pending`` invitation to the account (which joins only by accepting it)."""
    arn = directory_arn(account_id, "*")
    action = "resourcemanager:InviteAccountToResourceDirectory"
    made = manage(runtime, caller, account_id, action, arn).write(
        lambda ledger: ledger.invite_account(account_id, body.target_account_id, body.note)
    )
    return {**_json(_found(runtime, account_id, made.node_id)), "position": made.position}


@router.get("/resource-directory/handshakes")
async def list_directory_handshakes(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = directory_arn(account_id, "*")
    action = "resourcemanager:ListHandshakesForResourceDirectory"
    authorize_read(runtime, caller, account_id, action, arn)
    if runtime.index.resource_directory(account_id) is None:
        raise NotFound(
            f"account {account_id} has no resource directory",
            code="EntityNotExist.ResourceDirectory",
        )
    views = runtime.index.handshakes_of(account_id)
    views = [view for view in views if view.management_account == account_id]
    return {"handshakes": [_json(v) for v in views]}


def _answer(
    runtime: RuntimeDep,
    caller: CallerDep,
    account_id: str,
    handshake_id: str,
    action: str,
    answer: Callable[[Ledger, str, str], Written],
) -> dict[str, Any]:
    """Accept, decline or cancel: ``resourcemanager:<action>`` on the handshake in the
    caller's own account; the handshake now, with the position the answer landed at."""
    arn = handshake_arn(account_id, handshake_id)
    position = manage(runtime, caller, account_id, f"resourcemanager:{action}", arn).write_position(
        lambda ledger: answer(ledger, account_id, handshake_id)
    )
    return {**_json(_found(runtime, account_id, handshake_id)), "position": position}


@router.delete("/resource-directory/handshakes/{handshake_id}")
def cancel_handshake(
    account_id: str, handshake_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return _answer(
        runtime, caller, account_id, handshake_id, "CancelHandshake", Ledger.cancel_handshake
    )


@router.get("/handshakes")
async def list_account_handshakes(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The account's invitations, from any directory, oldest first."""
    arn = directory_arn(account_id, "*")
    authorize_read(runtime, caller, account_id, "resourcemanager:ListHandshakesForAccount", arn)
    views = runtime.index.handshakes_of(account_id)
    views = [view for view in views if view.target_account == account_id]
    return {"handshakes": [_json(v) for v in views]}


@router.get("/handshakes/{handshake_id}")
async def get_handshake(
    account_id: str, handshake_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = handshake_arn(account_id, handshake_id)
    authorize_read(runtime, caller, account_id, "resourcemanager:GetHandshake", arn)
    return _json(_found(runtime, account_id, handshake_id))


@router.post("/handshakes/{handshake_id}/accept")
def accept_handshake(
    account_id: str, handshake_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The invited account joins the directory, in its root folder."""
    return _answer(
        runtime, caller, account_id, handshake_id, "AcceptHandshake", Ledger.accept_handshake
    )


@router.post("/handshakes/{handshake_id}/decline")
def decline_handshake(
    account_id: str, handshake_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return _answer(
        runtime, caller, account_id, handshake_id, "DeclineHandshake", Ledger.decline_handshake
    )
