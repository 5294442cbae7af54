"""Resource-based policies (issue 16 item 2): checking a document, and RAM's combination rule.

Each rule is tested against Alibaba Cloud's documentation: "How RAM evaluates policies"
(https://www.alibabacloud.com/help/en/ram/policy-evaluation-process: deny by default, an
explicit Deny wins over any Allow) and the KMS key policy overview
(https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies:
inside the key's account "any Allow is sufficient", the resource policy or the RAM policy;
for other accounts' RAM users and roles both must allow), and OSS's bucket policy page
(https://www.alibabacloud.com/help/en/oss/configure-bucket-policies-to-authorize-other-users-to-access-oss-resources:
a bucket policy grants other accounts and RAM users access to the bucket and its objects).
"""

from __future__ import annotations

from typing import Any

import pytest

from mandate.domain.common.errors import InvalidInput
from mandate.domain.policy.decisions import Path, Subject, SubjectKind
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
)
from mandate.domain.policy.resource_policies import (
    ResourcePolicy,
    covering_keys,
    decide_with_resource,
    parse_resource_policy,
)

A = "1000000000000001"  # owns the bucket
B = "2000000000000002"  # another account
BUCKET = f"acs:oss:*:{A}:photos"
OBJECT = f"acs:oss:cn-hangzhou:{A}:photos/cat.jpg"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def grant(principal: Any, effect: str = "Allow", action: str = "oss:GetObject") -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": action,
        "Resource": f"acs:oss:*:{A}:photos/*",
        "Principal": principal,
    }


def identity(*statements: dict[str, Any]) -> PolicySet:
    compiled = compile_policy(
        parse_policy_document(doc(*statements)),
        PolicySource(Layer.IDENTITY, "Custom", "Mine", "v1", None),
    )
    return PolicySet.of([compiled], Layer.IDENTITY)


def user(account: str, name: str, *statements: dict[str, Any]) -> Subject:
    layer = identity(*statements) if statements else None
    return Subject(account, f"acs:ram::{account}:user/{name}", SubjectKind.USER, identity=layer)


def reads(account: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{account}:*"}


def policy(*statements: dict[str, Any]) -> ResourcePolicy:
    return parse_resource_policy(doc(*statements), BUCKET, A)


GET = AccessRequest.make("oss:GetObject", OBJECT)


# --- checking a document --------------------------------------------------------------------


def test_principal_is_required_in_every_statement() -> None:
    """A resource-based policy names who it speaks for: ``Principal`` is the element
    resource-based policies carry, and an OSS bucket policy has it in every statement.
    https://www.alibabacloud.com/help/en/ram/policy-elements
    https://www.alibabacloud.com/help/en/object-storage-service/latest/examples"""
    statement = grant("*")
    del statement["Principal"]
    with pytest.raises(InvalidInput) as refused:
        policy(statement)
    assert refused.value.errors[0].field == "Statement[0].Principal"


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        B,
        [B, f"acs:ram::{B}:user/bob"],
        {"RAM": [f"acs:ram::{B}:role/reader", f"acs:ram::{B}:root"]},
        f"acs:ram::{B}:assumed-role/reader/s1",
    ],
)
def test_principal_forms_accepted(principal: Any) -> None:
    """``*``, an account UID, RAM users and roles, as a string, a list or ``{"RAM": …}`` (the
    trust-policy form): https://www.alibabacloud.com/help/en/ram/policy-elements,
    https://www.alibabacloud.com/help/en/object-storage-service/latest/examples"""
    assert policy(grant(principal)).grants


@pytest.mark.parametrize(
    "principal",
    ["bob", [], f"acs:ram::{B}:group/ops", {"Service": "ecs.aliyuncs.com"}, [7]],
)
def test_principal_forms_refused(principal: Any) -> None:
    """A group is not a principal, nor is anything but RAM's names (``Principal``,
    https://www.alibabacloud.com/help/en/ram/policy-elements)."""
    with pytest.raises(InvalidInput) as refused:
        policy(grant(principal))
    assert refused.value.errors[0].field.startswith("Statement[0].Principal")


def test_a_statement_must_stay_within_the_resource_it_is_attached_to() -> None:
    """A bucket policy's ``Resource`` is the bucket or objects in it (OSS's bucket policy page,
    https://www.alibabacloud.com/help/en/oss/configure-bucket-policies-to-authorize-other-users-to-access-oss-resources)."""
    outside = grant("*")
    outside["Resource"] = [f"acs:oss:*:{A}:photos/*", f"acs:oss:*:{A}:other/*"]
    with pytest.raises(InvalidInput) as refused:
        policy(outside)
    (fault,) = refused.value.errors
    assert fault.field == "Statement[0].Resource[1]"
    assert "not within" in fault.reason
    assert BUCKET in fault.reason
    # a prefix that is not a path step is outside too: photos2 is not under photos
    sneaky = grant("*")
    sneaky["Resource"] = f"acs:oss:*:{A}:photos2/*"
    with pytest.raises(InvalidInput):
        policy(sneaky)


def test_an_account_attaches_policies_only_to_its_own_resources() -> None:
    """An account sets the policy of its own bucket only (OSS's bucket policy page,
    https://www.alibabacloud.com/help/en/oss/configure-bucket-policies-to-authorize-other-users-to-access-oss-resources)."""
    with pytest.raises(InvalidInput) as refused:
        parse_resource_policy(doc(grant("*")), BUCKET, B)
    assert refused.value.errors[0].field == "resource"
    assert "own resources" in refused.value.errors[0].reason


@pytest.mark.parametrize("arn", [f"acs:oss:*:{A}:*", f"acs:oss:*:{A}:", "photos", "acs:oss:*:*:x"])
def test_the_arn_must_be_literal(arn: str) -> None:
    """A policy is attached to one resource, named by its ARN (``acs:<service>:<region>:<uid>:
    <relative-id>``, https://www.alibabacloud.com/help/en/ram/policy-elements)."""
    with pytest.raises(InvalidInput):
        parse_resource_policy(doc(grant("*")), arn, A)


def test_the_policy_language_faults_are_the_identity_parsers() -> None:
    """The document is RAM's policy language, refused as any policy is
    (https://www.alibabacloud.com/help/en/ram/policy-structure-and-syntax)."""
    bad = grant("*")
    bad["Action"] = "GetObject"
    with pytest.raises(InvalidInput) as refused:
        policy(bad)
    assert refused.value.errors[0].field == "Statement[0].Action"


def test_a_bucket_policy_covers_its_objects() -> None:
    """OSS: a bucket policy speaks for the bucket and the objects in it
    (https://www.alibabacloud.com/help/en/object-storage-service/latest/examples)."""
    assert covering_keys(OBJECT) == (("oss", A, "photos/cat.jpg"), ("oss", A, "photos"))
    assert covering_keys(f"acs:oss:*:{A}:photos") == (("oss", A, "photos"),)
    assert covering_keys("*") == ()


# --- RAM's combination rule -----------------------------------------------------------------


def test_same_account_either_allow_is_enough() -> None:
    """KMS key policy overview: inside the owner's account, any Allow is sufficient
    (https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies)."""
    bucket = policy(grant(f"acs:ram::{A}:user/alice"))
    alice = user(A, "alice")  # no identity policy at all
    answer = decide_with_resource(alice, [bucket], GET)
    assert answer.allowed
    assert [m.layer for m in answer.decision.matched] == [Layer.RESOURCE]
    assert answer.decision.matched[0].as_dict()["layer"] == "resource"
    assert answer.decision.matched[0].policy_name == BUCKET
    # and an identity policy alone still allows, with the bucket policy silent for her
    carol = user(A, "carol", reads(A))
    assert decide_with_resource(carol, [bucket], GET).allowed


def test_same_account_account_principal_grants_no_user_more_than_its_identity() -> None:
    """Naming the own account admits its root only: users keep their identity bounds (the KMS
    key policy overview's account principal, read conservatively:
    https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies)."""
    bucket = policy(grant(A))
    assert not decide_with_resource(user(A, "alice"), [bucket], GET).allowed


def test_cross_account_needs_both_the_resource_policy_and_the_callers_policy() -> None:
    """KMS key policy overview: other accounts' users may use it only when both allow
    (https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies)."""
    bucket = policy(grant(f"acs:ram::{B}:user/bob"))
    bob_allowed = user(B, "bob", reads(A))
    answer = decide_with_resource(bob_allowed, [bucket], GET)
    assert answer.allowed
    assert answer.billed_account == A
    assert {m.layer for m in answer.decision.matched} == {Layer.IDENTITY, Layer.RESOURCE}
    bob_bare = user(B, "bob")
    refused = decide_with_resource(bob_bare, [bucket], GET)
    assert refused.decision.kind is DecisionKind.IMPLICIT_DENY
    assert "must allow it too" in refused.reason
    # without the resource policy naming him, his own Allow reaches nothing in A
    other = user(B, "eve", reads(A))
    assert not decide_with_resource(other, [bucket], GET).allowed


def test_cross_account_an_account_grant_admits_its_principals() -> None:
    """A bucket policy naming another account's UID admits that account's principals, each still
    needing its own account's Allow (OSS examples,
    https://www.alibabacloud.com/help/en/object-storage-service/latest/examples; the KMS key
    policy overview for the AND)."""
    bucket = policy(grant(B))
    assert decide_with_resource(user(B, "bob", reads(A)), [bucket], GET).allowed
    root = Subject(B, f"acs:ram::{B}:root", SubjectKind.ROOT)
    assert decide_with_resource(root, [bucket], GET).allowed


def test_an_explicit_deny_in_either_wins() -> None:
    """How RAM evaluates policies: an explicit Deny overrides any Allow
    (https://www.alibabacloud.com/help/en/ram/policy-evaluation-process)."""
    deny_in_bucket = policy(grant("*"), grant(f"acs:ram::{A}:user/alice", "Deny"))
    alice = user(A, "alice", reads(A))
    answer = decide_with_resource(alice, [deny_in_bucket], GET)
    assert answer.decision.kind is DecisionKind.EXPLICIT_DENY
    assert [m.layer for m in answer.decision.matched] == [Layer.RESOURCE]
    deny_in_identity = user(A, "dave", {**reads(A), "Effect": "Deny"})
    answer = decide_with_resource(deny_in_identity, [policy(grant("*"))], GET)
    assert answer.decision.kind is DecisionKind.EXPLICIT_DENY
    assert [m.layer for m in answer.decision.matched] == [Layer.IDENTITY]


def test_a_role_grant_covers_its_sessions_and_a_session_grant_only_itself() -> None:
    """A RAM role named as the principal covers the sessions assumed from it; one session's ARN
    names that session only (``Principal``, https://www.alibabacloud.com/help/en/ram/policy-elements;
    RAM roles in bucket policies, https://www.alibabacloud.com/help/en/object-storage-service/latest/examples)."""
    session_arn = f"acs:ram::{B}:assumed-role/reader/s1"
    role_layer = identity(reads(A))
    session = Subject(
        B,
        session_arn,
        SubjectKind.SESSION,
        layers=(role_layer,),
        chain=(session_arn,),
        paths=(Path((role_layer,), (session_arn,)),),
    )
    assert decide_with_resource(session, [policy(grant(f"acs:ram::{B}:role/reader"))], GET).allowed
    assert decide_with_resource(session, [policy(grant(session_arn))], GET).allowed
    other = policy(grant(f"acs:ram::{B}:assumed-role/reader/s2"))
    assert not decide_with_resource(session, [other], GET).allowed


def test_the_owner_root_is_not_bound_and_assume_role_is_not_a_resource_policys() -> None:
    """The bucket owner is not bound by a ``*`` statement without a condition (OSS examples,
    https://www.alibabacloud.com/help/en/object-storage-service/latest/examples); who may assume
    a role is its trust policy's business
    (https://www.alibabacloud.com/help/en/ram/user-guide/edit-the-trust-policy-of-a-ram-role)."""
    root = Subject(A, f"acs:ram::{A}:root", SubjectKind.ROOT)
    denying = policy(grant("*", "Deny"))
    assert decide_with_resource(root, [denying], GET).allowed
    bob = user(B, "bob", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    assume = AccessRequest.make("sts:AssumeRole", f"acs:ram::{A}:role/x")
    assert (
        decide_with_resource(bob, [policy(grant("*"))], assume).reason
        == decide_with_resource(bob, [], assume).reason
    )


def test_no_policy_naming_the_caller_is_the_plain_decision() -> None:
    """A resource policy that does not name the caller takes no part; the identity policies decide
    (https://www.alibabacloud.com/help/en/ram/policy-evaluation-process)."""
    bucket = policy(grant(f"acs:ram::{B}:user/bob"))
    alice = user(A, "alice", reads(A))
    answer = decide_with_resource(alice, [bucket], GET)
    assert answer.allowed
    assert [m.layer for m in answer.decision.matched] == [Layer.IDENTITY]
