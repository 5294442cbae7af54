"""The built-in System policies are exactly the documents of docs/design.md §1."""

from __future__ import annotations

from typing import Any

import pytest

from mandate.domain.policy.evaluation import (
    AccessRequest,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)
from mandate.domain.policy.system_policies import SYSTEM_POLICIES, SystemPolicy

A = "1837465920374651"


def allow(action: Any) -> dict[str, Any]:
    return {"Version": "1", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


EXPECTED = {
    "AdministratorAccess": allow("*"),
    "ReadOnlyAccess": allow(["*:Get*", "*:List*", "*:Describe*", "*:Query*", "*:BatchGet*"]),
    "AliyunOSSFullAccess": allow("oss:*"),
    "AliyunOSSReadOnlyAccess": allow(["oss:Get*", "oss:List*"]),
    "AliyunECSFullAccess": allow("ecs:*"),
    "AliyunRAMFullAccess": allow("ram:*"),
    "AliyunSTSAssumeRoleAccess": allow("sts:AssumeRole"),
}


def test_the_catalogue_names_exactly_the_designed_policies_in_order() -> None:
    """The catalogue holds the seven designed policies, in the design's order."""
    assert list(SYSTEM_POLICIES) == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_document_is_the_designed_one(name: str) -> None:
    """Each System policy's document is exactly the designed document."""
    policy = SYSTEM_POLICIES[name]
    assert policy.document.as_dict() == EXPECTED[name]


@pytest.mark.parametrize("policy", list(SYSTEM_POLICIES.values()), ids=list(SYSTEM_POLICIES))
def test_each_policy_is_a_described_system_v1(policy: SystemPolicy) -> None:
    """Every System policy has a description, version v1 and type System."""
    assert policy.description
    assert policy.version == "v1"
    assert policy.policy_type == "System"


@pytest.mark.parametrize(
    ("name", "action", "allowed"),
    [
        ("AdministratorAccess", "ram:DeleteUser", True),
        ("ReadOnlyAccess", "ecs:DescribeInstances", True),
        ("ReadOnlyAccess", "oss:BatchGetObjects", True),
        ("ReadOnlyAccess", "oss:PutObject", False),
        ("AliyunOSSFullAccess", "oss:DeleteBucket", True),
        ("AliyunOSSFullAccess", "ecs:StartInstance", False),
        ("AliyunOSSReadOnlyAccess", "oss:ListObjects", True),
        ("AliyunOSSReadOnlyAccess", "oss:PutObject", False),
        ("AliyunECSFullAccess", "ecs:StartInstance", True),
        ("AliyunRAMFullAccess", "ram:CreateUser", True),
        ("AliyunSTSAssumeRoleAccess", "sts:AssumeRole", True),
        ("AliyunSTSAssumeRoleAccess", "sts:GetCallerIdentity", False),
    ],
)
def test_system_policies_decide_as_their_names_say(name: str, action: str, allowed: bool) -> None:
    """Each System policy allows what its name promises and nothing else."""
    policy = SYSTEM_POLICIES[name]
    source = PolicySource(Layer.IDENTITY, policy.policy_type, name, policy.version, None)
    layer = PolicySet.of([compile_policy(policy.document, source)], Layer.IDENTITY)
    decision = evaluate([layer], AccessRequest.make(action, f"acs:oss:cn-hangzhou:{A}:b/o"))
    assert decision.allowed is allowed
