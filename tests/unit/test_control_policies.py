"""Control policies bound RAM identities of member accounts, as Resource Directory documents.

Each test cites the Alibaba Cloud page whose rule it checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions.resource_directory import ResourceDirectory, directory_id
from mandate.domain.policy.control import (
    FULL_ALIYUN_ACCESS,
    FULL_ALIYUN_ACCESS_DOCUMENT,
    MAX_FOLDER_DEPTH,
    ControlLevel,
    compile_control_policy,
    decide_with_control,
)
from mandate.domain.policy.decisions import Subject, SubjectKind
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    DecisionKind,
    Effect,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
)

ACCOUNT = "1000000000000001"
MANAGEMENT = "1000000000000009"
ECS = AccessRequest.make("ecs:RunInstances", f"acs:ecs:cn-hangzhou:{ACCOUNT}:instance/*")
OSS = AccessRequest.make("oss:GetObject", f"acs:oss:*:{ACCOUNT}:bucket/b/key")


def document(effect: str, action: str) -> Mapping[str, Any]:
    return {"Version": "1", "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]}


def level(node: str, *policies: tuple[str, Mapping[str, Any]], full: bool = True) -> ControlLevel:
    compiled = [
        compile_control_policy(parse_policy_document(doc), name, node) for name, doc in policies
    ]
    if full:
        compiled.insert(
            0, compile_control_policy(FULL_ALIYUN_ACCESS_DOCUMENT, FULL_ALIYUN_ACCESS, node)
        )
    return ControlLevel(node, tuple(compiled))


def user(account: str = ACCOUNT, action: str = "*") -> Subject:
    identity = PolicySet.of(
        [
            compile_policy(
                parse_policy_document(document("Allow", action)),
                PolicySource(Layer.IDENTITY, "System", "AdministratorAccess", "v1", None),
            )
        ],
        Layer.IDENTITY,
    )
    return Subject(account, f"acs:ram::{account}:user/alice", SubjectKind.USER, identity=identity)


def test_deny_list_mode_a_deny_on_a_parent_folder_bounds_every_account_beneath() -> None:
    """FullAliyunAccess is attached by default and a folder's policy applies to its subfolders
    and their members; an explicit Deny at any level denies at once.
    https://www.alibabacloud.com/help/en/resource-management/resource-directory/user-guide/attach-a-custom-access-control-policy
    https://www.alibabacloud.com/help/en/oss/user-guide/control-policy (evaluation principles)
    """
    levels = [
        level("r-root"),
        level("fd-prod", ("NoEcs", document("Deny", "ecs:*"))),
        level("fd-team"),
        level(ACCOUNT),
    ]
    answer = decide_with_control(user(), levels, ECS, management_account=MANAGEMENT)
    assert answer.decision.kind is DecisionKind.EXPLICIT_DENY
    [match] = answer.decision.matched
    assert (match.layer, match.policy_name, match.effect, match.via) == (
        Layer.CONTROL,
        "NoEcs",
        Effect.DENY,
        "fd-prod",
    )
    assert "fd-prod" in answer.reason
    allowed = decide_with_control(user(), levels, OSS, management_account=MANAGEMENT)
    assert allowed.allowed
    layers = {m.layer for m in allowed.decision.matched}
    assert layers == {Layer.IDENTITY, Layer.CONTROL}
    # the control allows shown are one per level, the default FullAliyunAccess
    vias = [m.via for m in allowed.decision.matched if m.layer is Layer.CONTROL]
    assert vias == ["r-root", "fd-prod", "fd-team", ACCOUNT]


def test_allow_list_mode_needs_an_allow_at_every_level_and_names_the_level_missing() -> None:
    """Allow-list mode: FullAliyunAccess detached and Allow policies attached; a level with no
    matching Allow denies (default deny), so levels intersect.
    https://www.alibabacloud.com/help/en/oss/user-guide/control-policy (evaluation principles)
    https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview
    """
    levels = [
        level("r-root"),
        level("fd-prod", ("OnlyOss", document("Allow", "oss:*")), full=False),
        level(ACCOUNT, ("OssAndEcs", document("Allow", "*")), full=False),
    ]
    denied = decide_with_control(user(), levels, ECS, management_account=MANAGEMENT)
    assert denied.decision.kind is DecisionKind.IMPLICIT_DENY
    assert {m.layer for m in denied.decision.matched} == {Layer.CONTROL}
    assert "none attached at fd-prod allows it" in denied.reason
    assert decide_with_control(user(), levels, OSS, management_account=MANAGEMENT).allowed


def test_a_level_with_nothing_attached_denies_everything() -> None:
    """Detaching every policy from a node leaves nothing that allows at that level.
    https://www.alibabacloud.com/help/en/oss/user-guide/control-policy (default deny)
    """
    levels = [level("r-root"), ControlLevel("fd-empty", ()), level(ACCOUNT)]
    answer = decide_with_control(user(), levels, OSS, management_account=MANAGEMENT)
    assert answer.decision.kind is DecisionKind.IMPLICIT_DENY
    assert "fd-empty" in answer.reason


def test_control_policies_grant_nothing() -> None:
    """A control policy defines a boundary but does not grant permissions: RAM still must.
    https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview
    """
    levels = [level("r-root"), level(ACCOUNT)]
    only_oss = user(action="oss:*")
    answer = decide_with_control(only_oss, levels, ECS, management_account=MANAGEMENT)
    assert answer.decision.kind is DecisionKind.IMPLICIT_DENY
    assert answer.reason == "no statement allows this request"


def test_the_member_root_and_the_management_account_are_exempt() -> None:
    """Control policies bound the RAM users and roles of member accounts; they do not apply to
    the management account, nor to a member's Alibaba Cloud account itself.
    https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview
    """
    levels = [level("r-root", ("NoEcs", document("Deny", "ecs:*")))]
    root = Subject(ACCOUNT, f"acs:ram::{ACCOUNT}:root", SubjectKind.ROOT)
    assert decide_with_control(root, levels, ECS, management_account=MANAGEMENT).allowed
    manager = user(MANAGEMENT)
    request = AccessRequest.make("ecs:RunInstances", f"acs:ecs:*:{MANAGEMENT}:instance/*")
    assert decide_with_control(manager, levels, request, management_account=MANAGEMENT).allowed
    assert not decide_with_control(user(), levels, ECS, management_account=MANAGEMENT).allowed


def test_an_account_in_no_directory_is_decided_as_before() -> None:
    """No resource directory, no control layer: the answer is ``decide``'s, unchanged."""
    answer = decide_with_control(user(), [], ECS)
    assert answer.allowed
    assert {m.layer for m in answer.decision.matched} == {Layer.IDENTITY}


def test_a_role_session_of_a_member_account_is_bounded_too() -> None:
    """RAM roles (their sessions) of member accounts are bounded like RAM users.
    https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview
    """
    role = PolicySet.of(
        [
            compile_policy(
                parse_policy_document(document("Allow", "*")),
                PolicySource(Layer.ROLE, "System", "AdministratorAccess", "v1", None),
            )
        ],
        Layer.ROLE,
    )
    arn = f"acs:ram::{ACCOUNT}:assumed-role/ops/s1"
    session = Subject(ACCOUNT, arn, SubjectKind.SESSION, layers=(role,), chain=(arn,))
    levels = [level("r-root", ("NoEcs", document("Deny", "ecs:*")))]
    denied = decide_with_control(session, levels, ECS, management_account=MANAGEMENT)
    assert denied.decision.kind is DecisionKind.EXPLICIT_DENY
    assert decide_with_control(session, levels, OSS, management_account=MANAGEMENT).allowed


# -- the directory on the ledger: its guards refuse before any event exists -----------------


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _directory(ledger: Ledger, management: str) -> ResourceDirectory:
    found = ledger.repository.get(directory_id(management))
    assert isinstance(found, ResourceDirectory)
    return found


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def test_folders_nest_five_levels_below_the_root_at_most(ledger: Ledger) -> None:
    """Resource Directory's limit: a folder tree at most five levels below the root folder.
    https://www.alibabacloud.com/help/doc-detail/150781.htm (Create a folder)
    """
    management = ledger.open_account("M").account_id
    parent = ledger.enable_resource_directory(management).node_id
    for level in range(MAX_FOLDER_DEPTH):
        parent = ledger.create_folder(management, parent, f"level-{level + 1}").node_id
    head = _head(ledger)
    with pytest.raises(Conflict, match="at most 5 levels"):
        ledger.create_folder(management, parent, "too-deep")
    assert _head(ledger) == head
    with pytest.raises(NotFound):
        ledger.create_folder(management, "fd-missing", "x")
    assert _head(ledger) == head


def test_an_account_is_in_one_directory_and_a_management_account_in_none(ledger: Ledger) -> None:
    """A member belongs to one resource directory; the management account is not a member."""
    first = ledger.open_account("M1").account_id
    second = ledger.open_account("M2").account_id
    member = ledger.open_account("A").account_id
    root1 = ledger.enable_resource_directory(first).node_id
    root2 = ledger.enable_resource_directory(second).node_id
    ledger.move_account(first, member, root1)
    head = _head(ledger)
    with pytest.raises(Conflict, match="another resource directory"):
        ledger.move_account(second, member, root2)
    with pytest.raises(Conflict, match="management account"):
        ledger.move_account(first, second, root1)
    with pytest.raises(Conflict, match="already has a resource directory"):
        ledger.enable_resource_directory(first)
    with pytest.raises(Conflict, match="member of a resource directory"):
        ledger.enable_resource_directory(member)
    assert _head(ledger) == head
    # a move inside the same directory is allowed (the claim stays)
    folder = ledger.create_folder(first, root1, "prod").node_id
    ledger.move_account(first, member, folder)
    assert _directory(ledger, first).members == {member: folder}


def test_control_policies_are_checked_documents_attached_within_quota(ledger: Ledger) -> None:
    """A control policy is written in RAM's policy language (no Principal); at most 10 per
    node; FullAliyunAccess, the system policy, is attached to each new node and may be
    detached and attached again.
    https://www.alibabacloud.com/help/en/resource-management/resource-directory/user-guide/enable-the-control-policy-feature
    """
    management = ledger.open_account("M").account_id
    member = ledger.open_account("A").account_id
    root = ledger.enable_resource_directory(management).node_id
    ledger.move_account(management, member, root)
    directory = _directory(ledger, management)
    assert directory.attached == {root: [FULL_ALIYUN_ACCESS], member: [FULL_ALIYUN_ACCESS]}
    head = _head(ledger)
    with pytest.raises(InvalidInput):
        ledger.create_control_policy(management, "Bad", {"Version": "1", "Statement": []})
    with pytest.raises(NotFound):
        ledger.attach_control_policy(management, "Missing", root)
    with pytest.raises(Conflict):
        ledger.attach_control_policy(management, FULL_ALIYUN_ACCESS, root)
    assert _head(ledger) == head
    for number in range(9):
        deny = {"Effect": "Deny", "Action": f"svc{number}:*", "Resource": "*"}
        ledger.create_control_policy(
            management, f"P{number}", {"Version": "1", "Statement": [deny]}
        )
        ledger.attach_control_policy(management, f"P{number}", member)
    head = _head(ledger)
    ledger_policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    ledger.create_control_policy(management, "Eleventh", ledger_policy)
    with pytest.raises(Conflict, match="at most 10"):
        ledger.attach_control_policy(management, "Eleventh", member)
    assert _head(ledger) == head + 1
    ledger.detach_control_policy(management, FULL_ALIYUN_ACCESS, member)
    assert FULL_ALIYUN_ACCESS not in _directory(ledger, management).attached[member]
