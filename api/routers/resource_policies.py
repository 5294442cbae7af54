"""Resource-based policies on ``/v1`` (issue 16 item 2): one policy per resource of an account.

``PUT /v1/accounts/{a}/resource-policies?resource=<ARN>`` attaches (or replaces) the policy
of one of ``a``'s resources — an OSS bucket, a KMS key — with a ``Principal`` in each
statement; ``GET`` reads it back, ``DELETE`` removes it. They are authorised as
``ram:PutResourcePolicy``, ``ram:GetResourcePolicy`` and ``ram:DeleteResourcePolicy`` on the
resource's ARN (RAM has no such API: the names follow OSS's Put/Get/DeleteBucketPolicy,
authorised on the bucket, in RAM's namespace since Mandate holds the policy). The ARN is
checked first (literal, of account ``a``: 400), then the caller (403), then the document
(400); a refused call writes nothing. Live and as-of decisions then combine the policy
with the caller's own (``domain.policy.resource_policies``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from mandate.api.deps import CallerDep, RuntimeDep, check_account_id, manage
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import authorize_read
from mandate.domain.ledger.resource_policies import read_resource_policy
from mandate.domain.policy.resource_policies import owned_resource_key

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/accounts/{account_id}/resource-policies",
    tags=["resource-policies"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)

ResourceQuery = Query(
    max_length=1024, description="The resource's ARN: acs:<service>:<region>:<account>:<id>"
)


class PutResourcePolicyBody(BaseModel):
    """The policy document: RAM's policy language, a ``Principal`` in every statement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_document: dict[str, Any] | str = Field(
        description='{"Version": "1", "Statement": [{"Effect", "Action", "Resource", "Principal"}]}'
    )


def _checked(account_id: str, resource: str) -> str:
    """The ARN, if literal and ``account_id``'s (else 400 before any authorisation)."""
    check_account_id(account_id)
    owned_resource_key(resource, account_id)
    return resource


@router.put("")
def put_resource_policy(
    account_id: str,
    body: PutResourcePolicyBody,
    caller: CallerDep,
    runtime: RuntimeDep,
    resource: str = ResourceQuery,
) -> dict[str, Any]:
    arn = _checked(account_id, resource)
    position = manage(runtime, caller, account_id, "ram:PutResourcePolicy", arn).write_position(
        lambda ledger: ledger.put_resource_policy(account_id, arn, body.policy_document)
    )
    attached = read_resource_policy(runtime.ledger, account_id, arn)
    return {
        "resource": attached.resource_arn,
        "policy_document": attached.document,
        "version": f"v{attached.version}",
        "position": position,
    }


@router.get("")
def get_resource_policy(
    account_id: str, caller: CallerDep, runtime: RuntimeDep, resource: str = ResourceQuery
) -> dict[str, Any]:
    arn = _checked(account_id, resource)
    authorize_read(runtime, caller, account_id, "ram:GetResourcePolicy", arn)
    attached = read_resource_policy(runtime.ledger, account_id, arn)
    return {
        "resource": attached.resource_arn,
        "policy_document": attached.document,
        "version": f"v{attached.version}",
    }


@router.delete("")
def delete_resource_policy(
    account_id: str, caller: CallerDep, runtime: RuntimeDep, resource: str = ResourceQuery
) -> dict[str, Any]:
    arn = _checked(account_id, resource)
    position = manage(runtime, caller, account_id, "ram:DeleteResourcePolicy", arn).write_position(
        lambda ledger: ledger.delete_resource_policy(account_id, arn)
    )
    return {"position": position}
