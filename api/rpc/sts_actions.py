"""STS 2015-04-01 over RPC: AssumeRole and GetCallerIdentity, in STS's shapes and codes.

AssumeRole is the very ``ledger.assume_role`` command ``POST /v1/sts/assume-role`` runs: the
same checks (``domain.sts.assume_role``: the caller's own policies allow ``sts:AssumeRole``
on the role, its trust policy admits the caller, the duration fits the role), the same
``SessionIssued`` event and the same token. What differs is only the dialect: parameters are
``RoleArn``, ``RoleSessionName``, ``DurationSeconds``, ``Policy`` (the session policy, as
text), ``ExternalId``; the answer is ``Credentials`` (``Expiration`` as ``…Z``, the only form
alibabacloud-credentials parses) and ``AssumedRoleUser``; refusals carry STS's codes and
documented messages (``InvalidParameter.PolicyGrammar`` where the engine says
``InvalidParameter.Policy``; ``EntityNotExist.Role`` naming the ARN; ``NoPermission`` with
STS's sentence). ``SourceIdentity`` is refused: Mandate records none for a session.

GetCallerIdentity needs no permission (as on STS): it says who signed the call.
"""

from __future__ import annotations

from typing import Any, Final

from mandate.api.assume_role import issue_assumed_session
from mandate.api.rpc.answers import issued_credentials
from mandate.api.rpc.errors import RpcError, as_rpc_error
from mandate.api.rpc.params import NoParams, RpcInt, RpcParams
from mandate.api.rpc.registry import STS, RpcContext, rpc_action
from mandate.domain.common.errors import DomainError, NotFound, NotPermitted
from mandate.domain.policy.decisions import SubjectKind

__all__ = ["STS_MESSAGES"]

STS_MESSAGES: Final[dict[str, str]] = {
    "NoPermission": "You are not authorized to do this action. You should be authorized by RAM.",
    "InvalidParameter.RoleSessionName": "The parameter RoleSessionName is wrongly formed.",
    "InvalidParameter.PolicyGrammar": "The parameter Policy has not passed grammar check.",
    "InvalidParameter.RoleArn": "The parameter RoleArn is wrongly formed.",
}
"""STS's documented messages; the engine's reason follows them (it never holds a secret)."""

_ROOT_REFUSAL: Final = "Roles may not be assumed by root accounts."

_IDENTITY_TYPES: Final[dict[SubjectKind, str]] = {
    SubjectKind.ROOT: "Account",
    SubjectKind.USER: "RAMUser",
    SubjectKind.SESSION: "AssumedRoleUser",
}


class AssumeRoleParams(RpcParams):
    role_arn: str
    role_session_name: str
    duration_seconds: RpcInt | None = None
    policy: str | None = None
    external_id: str | None = None
    source_identity: str | None = None


def _sts_error(error: DomainError, role_arn: str, root: bool) -> RpcError:
    """The engine's refusal of an AssumeRole, as STS words it (same check, same moment)."""
    if isinstance(error, NotFound) and error.code == "EntityNotExist.Role":
        return RpcError(404, "EntityNotExist.Role", f"The specified Role not exists: {role_arn}")
    if isinstance(error, NotPermitted):
        if root:
            return RpcError(403, "NoPermission", _ROOT_REFUSAL)
        return RpcError(403, "NoPermission", f"{STS_MESSAGES['NoPermission']} {error.detail}")
    rpc = as_rpc_error(error)
    assert rpc is not None  # every DomainError has an RPC form
    code = "InvalidParameter.PolicyGrammar" if rpc.code == "InvalidParameter.Policy" else rpc.code
    documented = STS_MESSAGES.get(code)
    if documented is None:
        return rpc if code == rpc.code else RpcError(rpc.http_status, code, rpc.message)
    reason = rpc.message.split(": ", 1)[-1]  # the engine's words after 'is incorrect: '
    return RpcError(rpc.http_status, code, f"{documented} ({reason.rstrip('.')})")


@rpc_action("AssumeRole", STS, AssumeRoleParams)
def assume_role(ctx: RpcContext, p: AssumeRoleParams) -> dict[str, Any]:
    if p.source_identity is not None:
        raise RpcError(
            400,
            "InvalidParameter.SourceIdentity",
            'The parameter - "SourceIdentity" is not supported: Mandate records no source '
            "identity for a session.",
        )
    caller, runtime = ctx.caller, ctx.runtime
    credential = caller.credential
    if credential is None:  # the platform admin never signs RPC calls
        raise RpcError(403, "NoPermission")
    try:
        issued = issue_assumed_session(caller, runtime, credential, p)
    except DomainError as refused:
        raise _sts_error(refused, p.role_arn, credential.kind is SubjectKind.ROOT) from None
    return issued_credentials(issued)


@rpc_action("GetCallerIdentity", STS, NoParams)
def get_caller_identity(ctx: RpcContext, _: NoParams) -> dict[str, Any]:
    """Who signed: ``UserId`` for an account (its id) or a RAM user, ``RoleId`` for a role
    session, whose ``PrincipalId`` is ``<RoleId>:<RoleSessionName>`` as STS answers."""
    credential = ctx.caller.credential
    if credential is None:  # the platform admin never signs RPC calls
        raise RpcError(403, "NoPermission")
    account_id = credential.account_id
    answer: dict[str, Any] = {
        "IdentityType": _IDENTITY_TYPES[credential.kind],
        "AccountId": account_id,
        "Arn": credential.arn,
    }
    if credential.kind is SubjectKind.SESSION:
        record = credential.session
        assert record is not None
        answer["PrincipalId"] = f"{record.role_id}:{record.role_session_name}"
        answer["RoleId"] = str(record.role_id)
    else:
        user_id = str(credential.user_id) if credential.user_id is not None else account_id
        answer["PrincipalId"] = answer["UserId"] = user_id
    return answer
