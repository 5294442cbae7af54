"""Point in time: as-of decisions and effective permissions, from the temporal index.

Both first let the temporal index reach the head of the log observed when the request
arrived (bounded; 503 with Retry-After otherwise), so an answer about T never misses an
event committed before the question was asked. The SQL reads run in the threadpool.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter

from mandate.api.abuse import spend_read_budget
from mandate.api.deps import (
    STS_PREFIX,
    CallerDep,
    RuntimeDep,
    check_account_id,
    reach_projection_head,
)
from mandate.api.presenters import answer_json, refusal_json, rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import authorize_read
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import parse_principal_arn
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.common.instants import EPOCH_REFUSED
from mandate.domain.common.instants import check_instant as check_domain_instant
from mandate.domain.policy.decisions import SubjectKind
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.sts.session_lineage import SessionRecord
from mandate.projections.decisions.credentials import Credential
from mandate.projections.history.as_of import PrincipalAt

router = APIRouter(tags=["point in time"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)


def with_zone(moment: datetime, field: str) -> datetime:
    """An instant with a zone (RFC 3339), representable and in range, in UTC."""
    return check_domain_instant(field, moment)


def check_instant(as_of: datetime, field: str = "as_of") -> datetime:
    """An instant with a zone, not in the future, in UTC."""
    moment = with_zone(as_of, field)
    if moment > datetime.now(UTC):
        raise InvalidInput(FieldError(field, "is in the future"))
    return moment


async def reach_temporal_head(runtime: Runtime) -> int:
    return await reach_projection_head(runtime, runtime.temporal)


def principal_of_credential(
    runtime: Runtime, credential: Credential | None, at: datetime
) -> tuple[PrincipalAt | None, str]:
    """Who a verified AccessKey belongs to, as that principal was at ``at``."""
    if credential is None:
        raise InvalidInput(
            FieldError(
                "principal",
                "the platform admin holds no permissions of its own: pass credentials or principal",
            )
        )
    if credential.kind is SubjectKind.SESSION:
        return runtime.as_of.session_at(credential.access_key_id, at)
    if credential.user_id is None:
        return runtime.as_of.root_of(credential.account_id, at)
    return runtime.as_of.principal_for_user(credential.user_id, at)


def session_record(runtime: Runtime, access_key_id: str) -> SessionRecord | None:
    """What a session was (its accounts, role, ARN), from the live index or, for one it has
    long forgotten, from the temporal index (call in the threadpool: it may query SQL)."""
    view = runtime.index.session(access_key_id)
    if view is not None:
        return view.record
    return runtime.as_of.session_record(access_key_id)


def answer_as_of(
    runtime: Runtime,
    found: tuple[PrincipalAt | None, str],
    action: str,
    resource: str,
    context: dict[str, Any],
    at: datetime,
    position: int,
    *,
    could: bool = False,
    named_of: Container[str] | None = None,
) -> dict[str, Any]:
    """The decision at ``at`` in the shape of a live one, plus ``as_of``.

    ``could``: "could P do it?", also through the roles P could assume then (call it in the
    threadpool: it reads SQL), of a resource policy's named roles only ``named_of``'s
    accounts' when given (``decision_access.named_roles_shown``).
    """
    principal, why_not = found
    common = {
        "as_of": rfc3339(at),
        "evaluated_at": rfc3339(datetime.now(UTC)),
        "position": position,
    }
    if principal is None:
        return {**refusal_json(why_not), **common}
    request = AccessRequest.make(action, resource, {**context, "acs:currenttime": at})
    reader = runtime.as_of
    if could:
        answer = reader.could(principal, request, named_of)
    else:
        answer = reader.decide(principal, request)
    return {**answer_json(answer), **common}


@router.get("/v1/accounts/{account_id}/effective-permissions")
async def effective_permissions(
    account_id: str,
    principal: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    as_of: Annotated[datetime | None, EPOCH_REFUSED] = None,
) -> dict[str, Any]:
    """Every statement that applied to ``principal`` at ``as_of`` (default: now), and how;
    and the roles a RAM user could assume then (``assumable_roles``), now and as of T alike."""
    check_account_id(account_id)
    spend_read_budget(runtime, caller.arn, "effective permissions")
    is_session = principal.startswith(STS_PREFIX)
    if not is_session:
        parsed = parse_principal_arn(principal)
        if parsed.account_id != account_id:
            raise InvalidInput(
                FieldError("principal", f"is not a principal of account {account_id}")
            )
    at = check_instant(as_of) if as_of is not None else datetime.now(UTC)
    if is_session:
        position = await reach_temporal_head(runtime)
        record = await anyio.to_thread.run_sync(session_record, runtime, principal)
        if record is None or record.account_id != account_id:
            # decided before anything is said about the session (existence does not leak)
            authorize_read(runtime, caller, account_id, "ram:GetEffectivePermissions", principal)
            raise NotFound(
                f"no session {principal} of account {account_id} is known",
                code="EntityNotExist.Session",
            )
        authorize_read(runtime, caller, account_id, "ram:GetEffectivePermissions", record.arn)
        found, why_not = await anyio.to_thread.run_sync(runtime.as_of.session_at, principal, at)
    else:
        authorize_read(runtime, caller, account_id, "ram:GetEffectivePermissions", principal)
        position = await reach_temporal_head(runtime)
        found, why_not = await anyio.to_thread.run_sync(
            runtime.as_of.principal_for_arn, principal, at
        )
    if found is None:
        raise NotFound(f"{principal}: {why_not}", code="EntityNotExist.Principal")
    statements = runtime.as_of.effective_permissions(found)
    assumable = await anyio.to_thread.run_sync(runtime.as_of.assumable_roles, found, at)
    return {
        "principal": found.subject.arn,
        "chain": list(found.subject.chain or (found.subject.arn,)),
        "as_of": rfc3339(at),
        "position": position,
        "root": found.subject.kind is SubjectKind.ROOT,
        "statements": [s.as_dict() for s in statements],
        "assumable_roles": [r.as_dict() for r in assumable],
    }
