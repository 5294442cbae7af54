"""Control policies bound RAM identities of member accounts, as Resource Directory documents.

Each test cites the Alibaba Cloud page whose rule it checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
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
from tests.directory_joining import join

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
    """No resource directory, no control layer: the answer is ``decide``'s, unchanged ("if no
    control policies exist, this step is skipped",
    https://www.alibabacloud.com/help/en/ram/policy-evaluation-process)."""
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
    """A member belongs to one resource directory; the management account is not a member, and
    control policies do not bound it
    (https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview;
    https://www.alibabacloud.com/help/en/ram/policy-evaluation-process)."""
    first = ledger.open_account("M1").account_id
    second = ledger.open_account("M2").account_id
    member = ledger.open_account("A").account_id
    root1 = ledger.enable_resource_directory(first).node_id
    root2 = ledger.enable_resource_directory(second).node_id
    join(ledger, first, member)
    head = _head(ledger)
    # MoveAccount moves members only: another directory's member, a management account, an
    # account that does not exist are refused alike (no existence oracle), nothing written
    for outsider, management, root in (
        (member, second, root2),
        (second, first, root1),
        ("1999999999999999", first, root1),
        (first, first, root1),
    ):
        refused = _error(partial(ledger.move_account, management, outsider, root), NotFound)
        assert refused.code == "EntityNotExist.Account"
    # an invitation to a member of another directory, or to a management account, is taken
    # (it reveals nothing) but cannot be accepted
    to_member = ledger.invite_account(second, member).node_id
    to_manager = ledger.invite_account(first, second).node_id
    head = _head(ledger)
    with pytest.raises(Conflict, match="member of a resource directory"):
        ledger.accept_handshake(member, to_member)
    with pytest.raises(Conflict, match="management account"):
        ledger.accept_handshake(second, to_manager)
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
    join(ledger, management, member)
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


def _error(call: Any, kind: type[Exception]) -> Any:
    with pytest.raises(kind) as raised:
        call()
    return raised.value


def test_a_folder_is_deleted_only_while_it_holds_no_folder_and_no_member(ledger: Ledger) -> None:
    """DeleteFolder: "make sure that the folder does not contain any member accounts or child
    folders" (409 DeleteConflict.Folder.SubFolder, DeleteConflict.Folder.Account).
    https://www.alibabacloud.com/help/en/resource-management/api-deletefolder
    """
    management = ledger.open_account("M").account_id
    member = ledger.open_account("A").account_id
    root = ledger.enable_resource_directory(management).node_id
    prod = ledger.create_folder(management, root, "prod").node_id
    team = ledger.create_folder(management, prod, "team").node_id
    join(ledger, management, member, team)
    head = _head(ledger)
    refusals = [
        (lambda: ledger.delete_folder(management, prod), "DeleteConflict.Folder.SubFolder"),
        (lambda: ledger.delete_folder(management, team), "DeleteConflict.Folder.Account"),
        (lambda: ledger.delete_folder(management, "fd-missing"), "EntityNotExist.Folder"),
    ]
    for call, code in refusals:
        assert _error(call, Conflict if "Conflict" in code else NotFound).code == code
    root_refused = _error(lambda: ledger.delete_folder(management, root), InvalidInput)
    assert [e.field for e in root_refused.errors] == ["folder_id"]
    assert _head(ledger) == head
    ledger.move_account(management, member, root)
    ledger.delete_folder(management, team)
    ledger.delete_folder(management, prod)
    directory = _directory(ledger, management)
    assert directory.parents == {root: None}
    assert set(directory.attached) == {root, member}
    assert ledger.create_folder(management, root, "prod").node_id != prod  # the name is free


def test_a_folder_is_renamed_to_a_name_unique_in_the_directory(ledger: Ledger) -> None:
    """UpdateFolder (NewFolderName, 1 to 24 characters); Mandate keeps names unique in the
    whole directory, as CreateFolder does here.
    https://www.alibabacloud.com/help/en/resource-management/api-updatefolder
    """
    management = ledger.open_account("M").account_id
    root = ledger.enable_resource_directory(management).node_id
    prod = ledger.create_folder(management, root, "prod").node_id
    ledger.create_folder(management, root, "dev")
    head = _head(ledger)
    taken = _error(lambda: ledger.rename_folder(management, prod, "dev"), Conflict)
    assert taken.code == "Duplicate.FolderName"
    long = _error(lambda: ledger.rename_folder(management, prod, "x" * 25), InvalidInput)
    assert [e.field for e in long.errors] == ["new_folder_name"]
    assert _error(lambda: ledger.rename_folder(management, root, "top"), InvalidInput).errors
    assert _head(ledger) == head
    ledger.rename_folder(management, prod, "prod")  # its own name is no clash
    ledger.rename_folder(management, prod, "production")
    assert _directory(ledger, management).folder_names[prod] == "production"
    ledger.create_folder(management, root, "prod")  # the old name is free again


NO_ECS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
NO_OSS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "oss:*", "Resource": "*"}]}


def test_a_control_policy_is_updated_and_its_attachments_follow_a_new_name(
    ledger: Ledger,
) -> None:
    """UpdateControlPolicy: NewPolicyName, NewPolicyDocument, NewDescription (1 to 1,024
    characters), each optional; the system policy is not a custom one to update.
    https://www.alibabacloud.com/help/en/resource-management/api-updatecontrolpolicy
    """
    management = ledger.open_account("M").account_id
    member = ledger.open_account("A").account_id
    ledger.enable_resource_directory(management)
    join(ledger, management, member)
    ledger.create_control_policy(management, "NoEcs", NO_ECS, "keeps ECS out")
    ledger.create_control_policy(management, "Other", NO_OSS)
    ledger.attach_control_policy(management, "NoEcs", member)
    head = _head(ledger)

    def update(name: str, **changes: Any) -> Any:
        return lambda: ledger.update_control_policy(management, name, **changes)

    refusals: list[tuple[Any, type[Exception], str]] = [
        (update(FULL_ALIYUN_ACCESS, description="x"), Conflict, "NoPermission.SystemControlPolicy"),
        (update("Missing", description="x"), NotFound, "EntityNotExist.Policy"),
        (update("NoEcs"), InvalidInput, "MissingParameter"),
        (update("NoEcs", new_policy_name="Other"), Conflict, "Duplicate.Policy"),
        (update("NoEcs", description="x" * 1025), InvalidInput, "InvalidParameter.Description"),
    ]
    for call, kind, code in refusals:
        assert _error(call, kind).code == code
    bad = _error(update("NoEcs", document={"Version": "1", "Statement": []}), InvalidInput)
    assert all(e.field.startswith("document") for e in bad.errors)
    assert _head(ledger) == head
    ledger.update_control_policy(management, "NoEcs", new_policy_name="NoCompute", document=NO_OSS)
    directory = _directory(ledger, management)
    assert directory.attached[member] == [FULL_ALIYUN_ACCESS, "NoCompute"]
    assert directory.policies["NoCompute"] == parse_policy_document(NO_OSS).canonical_json()
    assert "NoEcs" not in directory.policies
    assert directory.descriptions == {"NoCompute": "keeps ECS out"}
    ledger.update_control_policy(management, "NoCompute", description="keeps OSS out")
    assert _directory(ledger, management).descriptions == {"NoCompute": "keeps OSS out"}


def test_a_control_policy_is_deleted_only_while_attached_nowhere(ledger: Ledger) -> None:
    """DeleteControlPolicy: "If you want to delete a custom control policy that is attached to
    folders or member accounts, you must call the DetachControlPolicy operation to detach the
    policy before you delete it"; system control policies cannot be deleted. The page names no
    code for the refusal: Mandate's is 409 DeleteConflict.ControlPolicy.Attachment.
    https://www.alibabacloud.com/help/en/resource-management/api-deletecontrolpolicy
    """
    management = ledger.open_account("M").account_id
    root = ledger.enable_resource_directory(management).node_id
    folder = ledger.create_folder(management, root, "prod").node_id
    ledger.create_control_policy(management, "NoEcs", NO_ECS)
    ledger.attach_control_policy(management, "NoEcs", folder)
    head = _head(ledger)
    attached = _error(lambda: ledger.delete_control_policy(management, "NoEcs"), Conflict)
    assert attached.code == "DeleteConflict.ControlPolicy.Attachment"
    assert folder in attached.detail
    system = _error(lambda: ledger.delete_control_policy(management, FULL_ALIYUN_ACCESS), Conflict)
    assert system.code == "NoPermission.SystemControlPolicy"
    assert _error(lambda: ledger.delete_control_policy(management, "Gone"), NotFound)
    assert _head(ledger) == head
    ledger.detach_control_policy(management, "NoEcs", folder)
    ledger.delete_control_policy(management, "NoEcs")
    assert "NoEcs" not in _directory(ledger, management).policies
    ledger.create_control_policy(management, "NoEcs", NO_OSS)  # the name is free again


def test_a_folder_name_is_of_resource_managements_characters(ledger: Ledger) -> None:
    """CreateFolder/UpdateFolder's FolderName: 1 to 24 letters, digits, ``_``, ``.``, ``-``
    or Chinese characters (api-createfolder; ALIYUN::ResourceManager::Folder); other
    characters are 400 ``InvalidParameter.Folder.Name`` and write nothing."""
    management = ledger.open_account("M").account_id
    root = ledger.enable_resource_directory(management).node_id
    folder = ledger.create_folder(management, root, "生产_v1.0-a").node_id
    head = _head(ledger)
    for name in ("a b", "x/y", "<c>", "tab\t", "émigré"):
        refused = _error(partial(ledger.create_folder, management, root, name), InvalidInput)
        assert refused.code == "InvalidParameter.Folder.Name"
        renamed = partial(ledger.rename_folder, management, folder, name)
        assert _error(renamed, InvalidInput).code == "InvalidParameter.Folder.Name"
    assert _head(ledger) == head
