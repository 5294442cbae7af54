"""``GET /v1/accounts/{a}/as-of/{kind}?as_of=``: the account's entities as they stood at T.

The live listings (``…/users``, ``…/roles``, …) answer now; an access review or the audit
console's time slider needs the lists of a past instant. Each kind is read from the temporal
index (``projections.history.as_of_listing``) after it reached the head of the log observed
when the request arrived, and is authorised as its live listing is (``ram:ListUsers``,
``ram:ListGroups``, ``ram:ListRoles``, ``ram:ListPolicies``, ``ram:ListEntrustments``,
``ram:ListDelegations``; sessions, which have no live account-wide listing, as
``ram:ListSessions``), so the instant reveals nothing the caller could not list now.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import anyio
from fastapi import APIRouter

from mandate.api.deps import CallerDep, RuntimeDep, check_account_id
from mandate.api.presenters import rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read
from mandate.api.routers import point_in_time_details
from mandate.api.routers.history import check_instant, reach_temporal_head
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    entrustment_arn,
    group_arn,
    policy_arn,
    role_arn,
    user_arn,
)
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.instants import EPOCH_REFUSED
from mandate.domain.sts.oidc_providers import oidc_provider_arn
from mandate.projections.history.as_of_listing import Held, held_at, received_at

router = APIRouter(tags=["point in time"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)

Kind = Literal[
    "users",
    "groups",
    "roles",
    "policies",
    "entrustments",
    "delegations",
    "sessions",
    "oidc-providers",
]

_READ: Final[dict[str, tuple[str, str]]] = {
    "users": ("user", "ram:ListUsers"),
    "groups": ("group", "ram:ListGroups"),
    "roles": ("role", "ram:ListRoles"),
    "policies": ("policy", "ram:ListPolicies"),
    "entrustments": ("entrustment", "ram:ListEntrustments"),
    "delegations": ("delegation", "ram:ListDelegations"),
    "sessions": ("session", "ram:ListSessions"),
    "oidc-providers": ("oidc_provider", "ram:ListOIDCProviders"),
}
"""Each kind's fact kind in the temporal index, and the action its listing is allowed by."""


def _arn(account_id: str, held: Held) -> str:
    if held.kind == "user":
        return user_arn(account_id, held.name)
    if held.kind == "group":
        return group_arn(account_id, held.name)
    if held.kind == "role":
        return role_arn(account_id, held.name)
    if held.kind == "policy":
        return policy_arn(account_id, held.name)
    if held.kind == "entrustment":  # the grantor's (a received one's is another account's)
        return entrustment_arn(str(held.details.get("grantor_account_id") or account_id), held.id)
    if held.kind == "delegation":
        return delegation_arn(account_id, held.id)
    if held.kind == "oidc_provider":
        return oidc_provider_arn(account_id, held.name)
    return assumed_role_arn(account_id, str(held.details["role_name"]), held.name)


def _json(account_id: str, held: Held) -> dict[str, Any]:
    details = {
        name: rfc3339(value) if isinstance(value, datetime) else value
        for name, value in held.details.items()
    }
    if held.kind == "role":  # as the live role says it: managed by its contract, or null
        contract = details.pop("entrustment_id")
        details["managed_by"] = entrustment_arn(account_id, contract) if contract else None
    return {
        "id": held.id,
        "name": held.name,
        "arn": _arn(account_id, held),
        "status": held.status,
        "since": rfc3339(held.since),
        **details,
    }


def _with_lineage(runtime: Runtime, held: list[Held], at: datetime) -> list[Held]:
    """Sessions whose lineage had ended at T (role deleted or its sessions revoked, contract
    revoked, source user gone, parent session dead) marked ``ended``, with the reason; one
    expired or revoked (``ended_since``) says when (no lineage read: it was dead then
    whatever its lineage)."""
    shown = []
    for session in held:
        if session.status in ("expired", "revoked"):
            when = session.details.get("ended_at") or session.details["expiration"]
            reason = f"{session.status} at {rfc3339(when)}"
            shown.append(replace(session, details={**session.details, "ended_reason": reason}))
            continue
        found, why_not = runtime.as_of.session_at(session.id, at)
        if found is None:
            details = {**session.details, "ended_reason": why_not}
            session = replace(session, status="ended", details=details)
        shown.append(session)
    return shown


@router.get("/v1/accounts/{account_id}/as-of/{kind}")
async def listed_as_of(
    account_id: str,
    kind: Kind,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
    as_of: Annotated[datetime | None, EPOCH_REFUSED] = None,
    direction: Literal["granted", "received"] = "granted",
    ended_since: Annotated[datetime | None, EPOCH_REFUSED] = None,
) -> dict[str, Any]:
    """The account's ``kind`` alive at ``as_of`` (default: now), by name: each with its id,
    ARN, ``status`` then and ``since`` (its last change at or before T), paged
    ``{items, next_cursor}``; ``as_of`` and ``position`` say what was read. Entrustments
    ``direction=received``: the contracts others granted this account then (each with its
    ``grantor_account_id``); any other kind refuses it. Sessions ``ended_since=S``: also
    those that had expired or been revoked between S and T (``status`` ``expired`` or
    ``revoked``, ``ended_reason`` saying when), which "alive at T" leaves out; any other
    kind, or S after T, refuses it."""
    check_account_id(account_id)
    fact_kind, action = _READ[kind]
    authorize_read(runtime, caller, account_id, action)
    at = check_instant(as_of) if as_of is not None else datetime.now(UTC)
    position = await reach_temporal_head(runtime)
    store = runtime.as_of.store
    if direction == "received" and kind != "entrustments":
        raise InvalidInput(FieldError("direction", "only entrustments are received"))
    since = None
    if ended_since is not None:
        if kind != "sessions":
            raise InvalidInput(FieldError("ended_since", "only sessions are listed ended so"))
        since = check_instant(ended_since, "ended_since")
        if since > at:
            raise InvalidInput(FieldError("ended_since", "is after as_of"))
    if direction == "received":
        held = await anyio.to_thread.run_sync(received_at, store, account_id, at)
    else:
        held = await anyio.to_thread.run_sync(held_at, store, account_id, fact_kind, at, since)
    if kind == "sessions":
        held = await anyio.to_thread.run_sync(_with_lineage, runtime, held, at)
    listed = paging.page(held, lambda h: f"{h.name}\x00{h.id}", lambda h: _json(account_id, h))
    return {**listed, "kind": kind, "as_of": rfc3339(at), "position": position}


# one entity's relations at T (attachments, members, trust, holders), under the same prefix
router.include_router(point_in_time_details.router)
