"""How read-model records look on the wire, and cursor pagination of lists."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from mandate.domain.common.arns import (
    PrincipalKind,
    delegation_arn,
    entrustment_arn,
    group_arn,
    parse_principal_arn,
    policy_arn,
    role_arn,
    user_arn,
)
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.contracts.entrustments import EntrustmentStatus, entrustment_status
from mandate.domain.ledger.results import IssuedSession
from mandate.domain.permissions.attachments import Attachment
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import DecisionKind
from mandate.domain.policy.patterns import has_wildcard
from mandate.domain.sts.assume_role import name_binds
from mandate.domain.sts.session_lineage import SessionRecord
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.views import (
    AccessKeyView,
    DelegationView,
    EntrustmentView,
    GroupView,
    PolicyVersionView,
    PolicyView,
    RoleView,
    UserView,
)

__all__ = [
    "answer_json",
    "attachment_json",
    "decode_position_cursor",
    "encode_position_cursor",
    "group_json",
    "issued_session_json",
    "key_json",
    "page",
    "policy_json",
    "refusal_json",
    "rfc3339",
    "user_json",
    "version_json",
]

T = TypeVar("T")


def issued_session_json(issued: IssuedSession) -> dict[str, Any]:
    """A new session's ``credentials`` and ``assumed_role_user``, as ``POST /v1/sts/assume-role``
    and ``…/assume-role-with-oidc`` both answer (the secret shown this once)."""
    return {
        "credentials": {
            "access_key_id": issued.access_key_id,
            "access_key_secret": issued.access_key_secret,
            "security_token": issued.security_token,
            "expiration": rfc3339(issued.expiration),
        },
        "assumed_role_user": {"arn": issued.arn, "assumed_role_id": issued.assumed_role_id},
    }


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        value = ""
    if not value:
        raise InvalidInput(FieldError("cursor", "is not a cursor this API issued"))
    return value


def answer_json(answer: Answer) -> dict[str, Any]:
    """A decision's explanation (docs/design.md §5): what does not depend on when it was asked."""
    decision = answer.decision
    return {
        "decision": decision.kind.value,
        "allowed": decision.kind is DecisionKind.ALLOW,
        "matched": [m.as_dict() for m in decision.matched],
        "chain": list(answer.chain),
        "billed_account": answer.billed_account,
        "reason": answer.reason,
    }


def refusal_json(reason: str) -> dict[str, Any]:
    """A question that could not reach the evaluator (unknown principal, refused key): denied."""
    return {
        "decision": DecisionKind.IMPLICIT_DENY.value,
        "allowed": False,
        "matched": [],
        "chain": [],
        "billed_account": None,
        "reason": reason,
    }


def encode_position_cursor(position: int) -> str:
    return _encode_cursor(f"p{position}")


def decode_position_cursor(cursor: str) -> int:
    """A cursor over ledger positions (the audit trail pages by position)."""
    value = _decode_cursor(cursor)
    digits = value[1:]
    # ASCII digits that fit a SQL bigint: neither int()'s limit nor the store's is reachable.
    if not value.startswith("p") or not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        raise InvalidInput(FieldError("cursor", "is not a cursor this API issued"))
    return int(value[1:])


def page(
    items: Sequence[T],
    sort_key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    *,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """``{items, next_cursor}``: items after the cursor, in key order, at most ``limit``."""
    after = _decode_cursor(cursor) if cursor else None
    selected = [i for i in items if after is None or sort_key(i) > after]
    chunk = selected[:limit]
    next_cursor = _encode_cursor(sort_key(chunk[-1])) if len(selected) > limit and chunk else None
    return {"items": [render(i) for i in chunk], "next_cursor": next_cursor}


def user_json(user: UserView) -> dict[str, Any]:
    """A user; once the account's personal data was erased, ``display_name`` is null and
    ``personal_data`` says ``erased`` (the key is absent otherwise)."""
    body = {
        "user_id": str(user.id),
        "user_name": user.user_name,
        "display_name": user.display_name,
        "arn": user_arn(user.account_id, user.user_name),
        "create_date": rfc3339(user.created_at),
        "update_date": rfc3339(user.updated_at),
    }
    if user.display_name_erased:
        body["personal_data"] = "erased"
    return body


def role_json(role: RoleView, index: DecisionIndex | None = None) -> dict[str, Any]:
    trust: Any = json.loads(role.trust_policy)
    managed_by = None
    if role.entrustment_id is not None and index is not None:
        entrustment = index.entrustment(role.entrustment_id)
        assert entrustment is not None  # the index never forgets a contract
        managed_by = entrustment_arn(entrustment.account_id, entrustment.id)
        now = datetime.now(UTC)
        delegations = index.delegations_under(entrustment)
        # a revoked, ended or not yet started contract admits no one, whatever its delegations
        contract_live = entrustment.state().dead_reason(now) is None
        grantees = sorted(
            {
                d.grantee_arn
                for d in delegations
                if contract_live and not d.revoked and (d.ends_at is None or d.ends_at > now)
            }
        )
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": grantees},
                    "Comment": f"computed from the live delegations under {managed_by}",
                }
            ]
            if grantees
            else [],
        }
    return {
        "managed_by": managed_by,
        "role_id": str(role.id),
        "role_name": role.role_name,
        "arn": role_arn(role.account_id, role.role_name),
        "description": role.description,
        "assume_role_policy_document": trust,
        "max_session_duration": role.max_session_duration,
        "sessions_revoked_before": (
            rfc3339(role.sessions_revoked_before) if role.sessions_revoked_before else None
        ),
        "create_date": rfc3339(role.created_at),
        "update_date": rfc3339(role.updated_at),
        **({"trust_bindings": trust_bindings(role, index)} if managed_by is None else {}),
    }


def trust_bindings(role: RoleView, index: DecisionIndex | None) -> list[dict[str, Any]]:
    """Which entity each user or role the trust allows by exact ARN is bound to.

    Names are claims (``domain.sts.assume_role.name_binds``): such a name admits only the
    entity that held it before ``trust_position``. For the role's own account the answer names it
    (``entity_id``, null when no entity holding the name now is that one); another
    account's entities are never looked up — that would tell whether they exist.
    """
    names: list[str] = []
    for statement in role.trust.statements:
        principal = statement.principal
        if statement.effect.value != "Allow" or principal is None:
            continue
        names += [n for n in principal.ram or () if not has_wildcard(n) and n not in names]
    bindings = []
    for name in names:
        try:
            parsed = parse_principal_arn(name)
        except InvalidInput:
            continue
        if parsed.kind is not PrincipalKind.USER and parsed.kind is not PrincipalKind.ROLE:
            continue
        binding: dict[str, Any] = {"principal": name, "bound_before_position": role.trust_position}
        if index is not None and parsed.account_id == role.account_id:
            binding["entity_id"] = _bound_entity(index, parsed.kind, role, parsed.name or "")
        bindings.append(binding)
    return bindings


def _bound_entity(
    index: DecisionIndex, kind: PrincipalKind, role: RoleView, name: str
) -> str | None:
    """The id of the entity of the role's account the exact name admits now, or None."""
    if kind is PrincipalKind.USER:
        user = index.user_by_name(role.account_id, name)
        held = (user.id, user.named_at) if user is not None else None
    else:
        other = index.role_by_name(role.account_id, name)
        held = (other.id, other.named_at) if other is not None else None
    if held is None or not name_binds(held[1], role.trust_position):
        return None
    return str(held[0])


def entrustment_json(entrustment: EntrustmentView, index: DecisionIndex) -> dict[str, Any]:
    now = datetime.now(UTC)
    state = entrustment.state()
    status = state.status(now)
    return {
        "entrustment_id": str(entrustment.id),
        "arn": state.arn,
        "account_id": entrustment.account_id,
        "trustee_account_id": entrustment.trustee_account_id,
        "role_name": entrustment.role_name,
        "role_arn": role_arn(entrustment.account_id, entrustment.role_name),
        "contract_ref": entrustment.contract_ref,
        "scope": json.loads(entrustment.scope),
        "scope_policies": entrustment.scope_policies,
        "starts_at": rfc3339(entrustment.starts_at) if entrustment.starts_at else None,
        "ends_at": rfc3339(entrustment.ends_at) if entrustment.ends_at else None,
        "description": entrustment.description,
        "status": status.value,
        "revoked": entrustment.revoked,
        "delegations": [delegation_json(d, index) for d in index.delegations_under(entrustment)],
        "create_date": rfc3339(entrustment.created_at),
        "update_date": rfc3339(entrustment.updated_at),
    }


def delegation_json(
    delegation: DelegationView, index: DecisionIndex | None = None
) -> dict[str, Any]:
    """``ended`` once its own end passed or its contract was revoked or ended (with ``index``)."""
    now = datetime.now(UTC)
    ended = delegation.ends_at is not None and delegation.ends_at <= now
    contract = index.entrustment(delegation.entrustment_id) if index is not None else None
    if contract is not None:
        contract_status = entrustment_status(
            revoked=contract.revoked is not None,
            ended=contract.ended,
            starts_at=None,
            ends_at=contract.ends_at,
            at=now,
        )
        ended = ended or contract_status in (EntrustmentStatus.REVOKED, EntrustmentStatus.ENDED)
    return {
        "delegation_id": str(delegation.id),
        "arn": delegation_arn(delegation.account_id, delegation.id),
        "account_id": delegation.account_id,
        "entrustment_id": str(delegation.entrustment_id),
        "entrustment_arn": entrustment_arn(
            delegation.entrustment_account_id, delegation.entrustment_id
        ),
        "grantee": delegation.grantee_arn,
        # the entity it was granted to: a user or group re-created under the name is not it
        "grantee_id": str(delegation.grantee_id),
        "scope": json.loads(delegation.scope),
        "ends_at": rfc3339(delegation.ends_at) if delegation.ends_at else None,
        "status": "revoked" if delegation.revoked else "ended" if ended else "active",
        "create_date": rfc3339(delegation.created_at),
    }


def session_json(record: SessionRecord, revoked: str | None = None) -> dict[str, Any]:
    """A session as its owners see it: never its secret, never its token."""
    return {
        "access_key_id": record.access_key_id,
        "arn": record.arn,
        "role_arn": record.role_arn,
        "role_session_name": record.role_session_name,
        "source_arn": record.source_arn,
        "parent_access_key_id": record.parent_access_key_id,
        "policy": json.loads(record.session_policy) if record.session_policy else None,
        "issued_at": rfc3339(record.issued_at),
        "expiration": rfc3339(record.expiration),
        "revoked": revoked,
    }


def key_json(key: AccessKeyView) -> dict[str, Any]:
    return {
        "access_key_id": key.access_key_id,
        "status": key.status,
        "create_date": rfc3339(key.created_at),
    }


def group_json(group: GroupView, index: DecisionIndex) -> dict[str, Any]:
    return {
        "group_id": str(group.id),
        "group_name": group.group_name,
        "comments": group.comments,
        "arn": group_arn(group.account_id, group.group_name),
        "create_date": rfc3339(group.created_at),
        "members": index.member_names(group),
    }


def version_json(policy: PolicyView, version: PolicyVersionView) -> dict[str, Any]:
    return {
        "version_id": version.version_id,
        "is_default_version": version.version_id == policy.default_version,
        "policy_document": json.loads(version.document),
        "create_date": rfc3339(version.created_at),
    }


def policy_json(policy: PolicyView, *, with_document: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "policy_type": "Custom",
        "policy_name": policy.policy_name,
        "description": policy.description,
        "arn": policy_arn(policy.account_id, policy.policy_name),
        "default_version": policy.default_version,
        "create_date": rfc3339(policy.created_at),
        "update_date": rfc3339(policy.updated_at),
    }
    if with_document:
        default = policy.versions[policy.default_version]
        body["default_policy_version"] = version_json(policy, default)
    return body


def attachment_json(attachment: Attachment, index: DecisionIndex) -> dict[str, Any]:
    version = "v1"
    if attachment.policy_id is not None:
        policy = index.policy(attachment.policy_id)
        version = policy.default_version if policy else ""
    return {
        "policy_type": attachment.policy_type.value,
        "policy_name": attachment.policy_name,
        "version": version,
    }
