"""STS: AssumeRole, GetCallerIdentity, and revoking one session (beyond RAM).

AssumeRole's rules live in ``domain.sts.assume_role`` (the caller's own policies and the role's
trust, RAM's parameter errors); this router authenticates, hands the caller's subject and
lineage to the ledger, and shows the secret and the security token once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mandate.api.assume_role import issue_assumed_session
from mandate.api.deps import Caller, CallerDep, RuntimeDep, authorize_management
from mandate.api.presenters import issued_session_json, rfc3339, session_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.problems import Forbidden
from mandate.api.schemas import AssumeRoleBody, Revocation
from mandate.domain.common.errors import NotPermitted
from mandate.domain.policy.decisions import SubjectKind

router = APIRouter(
    prefix="/v1/sts", tags=["sts"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED
)

_IDENTITY_TYPES = {"root": "Account", "user": "RAMUser", "session": "AssumedRoleUser"}


@router.post("/assume-role", status_code=201)
def assume_role(body: AssumeRoleBody, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    credential = caller.credential
    if credential is None:
        raise NotPermitted("the platform admin holds no permissions and cannot assume roles")
    issued = issue_assumed_session(caller, runtime, credential, body)
    return {
        **issued_session_json(issued),
        "position": issued.position,
    }


@router.get("/caller-identity")
async def caller_identity(caller: CallerDep) -> dict[str, Any]:
    """Who the credentials of this request are (RAM's GetCallerIdentity)."""
    credential = caller.credential
    if credential is None:
        return {
            "account_id": None,
            "arn": caller.arn,
            "identity_type": "Admin",
            "principal_id": caller.arn,
        }
    answer: dict[str, Any] = {
        "account_id": credential.account_id,
        "arn": credential.arn,
        "identity_type": _IDENTITY_TYPES[credential.kind.value],
        "principal_id": credential.account_id,
    }
    if credential.kind is SubjectKind.USER:
        answer["principal_id"] = answer["user_id"] = str(credential.user_id)
    elif credential.kind is SubjectKind.SESSION:
        assert credential.session is not None
        assert credential.subject is not None
        record = credential.session
        answer["principal_id"] = f"{record.role_id}:{record.role_session_name}"
        answer["role_id"] = str(record.role_id)
        answer["role_arn"] = record.role_arn
        answer["access_key_id"] = record.access_key_id
        answer["expiration"] = rfc3339(record.expiration)
        answer["chain"] = list(credential.subject.chain)
    return answer


def _may_revoke(caller: Caller, runtime: RuntimeDep, account_id: str, arn: str, key: str) -> None:
    """The role's account decides (``ram:RevokeSession``); a session may also end itself."""
    if caller.credential is not None and caller.credential.access_key_id == key:
        return
    if caller.is_admin:
        raise Forbidden("the platform admin never writes inside an account")
    authorize_management(runtime, caller, account_id, "ram:RevokeSession", arn)


@router.post("/sessions/{access_key_id}/revoke")
def revoke_session(
    access_key_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: Revocation | None = None,
) -> dict[str, Any]:
    view = runtime.index.session(access_key_id)
    own = caller.credential is not None and caller.credential.access_key_id == access_key_id
    if view is None or (not own and view.record.account_id != caller.account_id):
        # an unknown id and another account's session are refused in the same words, which
        # name neither the session's account nor whether it exists (no existence oracle)
        raise Forbidden(f"{caller.arn} may not revoke session {access_key_id}")
    record = view.record
    _may_revoke(caller, runtime, record.account_id, record.arn, access_key_id)
    reason = body.reason if body is not None else None
    position = runtime.write(
        caller.audit(reason),
        lambda: runtime.ledger.revoke_session(access_key_id),
    ).position
    revoked = runtime.index.session(access_key_id)
    return {
        **session_json(record, revoked.revoked if revoked else "revoked"),
        "position": position,
    }
