"""The Control Policy feature of a resource directory, disabled and enabled again (in-memory
store): the aggregate's invariants, checked before any event exists.

Pages: DisableControlPolicy (every control policy detached from folders and members, none
deleted, none attachable again while disabled),
https://www.alibabacloud.com/help/en/resource-management/api-disablecontrolpolicy;
enabling it (``FullAliyunAccess`` attached to every folder and member, and to each new one;
custom policies attached again by hand),
https://www.alibabacloud.com/help/en/resource-management/latest/disable-the-control-policy-feature,
https://www.alibabacloud.com/help/en/resource-management/resource-directory/user-guide/enable-the-control-policy-feature
"""

from __future__ import annotations

from typing import Any

import pytest

from mandate.domain.common.errors import Conflict, NotFound
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions.resource_directory import ResourceDirectory, directory_id
from mandate.domain.policy.control import FULL_ALIYUN_ACCESS
from tests.directory_joining import join

NO_ECS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def _directory(ledger: Ledger, management: str) -> ResourceDirectory:
    found: Any = ledger.repository.get(directory_id(management))
    assert isinstance(found, ResourceDirectory)
    return found


def _setup(ledger: Ledger) -> tuple[str, str, str, str]:
    management = ledger.open_account("Management").account_id
    member = ledger.open_account("Member").account_id
    root = ledger.enable_resource_directory(management).node_id
    prod = ledger.create_folder(management, root, "prod").node_id
    join(ledger, management, member, prod)
    ledger.create_control_policy(management, "NoEcs", NO_ECS)
    ledger.attach_control_policy(management, "NoEcs", prod)
    ledger.detach_control_policy(management, FULL_ALIYUN_ACCESS, member)
    return management, member, root, prod


def test_disabling_detaches_every_policy_and_nothing_bounds_a_member(ledger: Ledger) -> None:
    management, member, root, prod = _setup(ledger)
    assert _directory(ledger, management).levels(member)
    ledger.disable_control_policy(management)
    directory = _directory(ledger, management)
    assert directory.control_enabled is False
    assert directory.attached == {root: [], prod: [], member: []}
    assert directory.policies.keys() == {"NoEcs"}  # detached, not deleted
    assert directory.levels(member) == []  # no control step for the member's identities


def test_while_disabled_nothing_is_attached_and_new_nodes_start_bare(ledger: Ledger) -> None:
    management, member, _, prod = _setup(ledger)
    ledger.disable_control_policy(management)
    head = _head(ledger)
    for policy, target in (("NoEcs", prod), (FULL_ALIYUN_ACCESS, member)):
        with pytest.raises(Conflict) as refused:
            ledger.attach_control_policy(management, policy, target)
        assert refused.value.code == "InvalidStatus.ControlPolicy.Disabled"
    assert _head(ledger) == head  # refused, wrote nothing
    late = ledger.create_folder(management, prod, "late").node_id
    other = ledger.open_account("Other").account_id
    join(ledger, management, other, late)
    directory = _directory(ledger, management)
    assert directory.attached[late] == []
    assert directory.attached[other] == []
    # the policies themselves are still managed: updated, and (attached nowhere) deleted
    ledger.update_control_policy(management, "NoEcs", description="no ECS")
    ledger.delete_control_policy(management, "NoEcs")


def test_enabling_attaches_full_aliyun_access_everywhere_and_custom_ones_by_hand(
    ledger: Ledger,
) -> None:
    management, member, root, prod = _setup(ledger)
    ledger.disable_control_policy(management)
    late = ledger.create_folder(management, prod, "late").node_id
    ledger.enable_control_policy(management)
    directory = _directory(ledger, management)
    assert directory.control_enabled is True
    full = [FULL_ALIYUN_ACCESS]
    assert directory.attached == {root: full, prod: full, late: full, member: full}
    assert [names for _, names in directory.levels(member)] == [full, full, full]
    ledger.attach_control_policy(management, "NoEcs", prod)
    newer = ledger.create_folder(management, prod, "newer").node_id
    assert _directory(ledger, management).attached[newer] == full


def test_switching_to_the_state_it_is_in_writes_nothing(ledger: Ledger) -> None:
    management, *_ = _setup(ledger)
    head = _head(ledger)
    assert ledger.enable_control_policy(management).position == head
    assert _head(ledger) == head
    ledger.disable_control_policy(management)
    head = _head(ledger)
    assert ledger.disable_control_policy(management).position == head
    assert _head(ledger) == head


def test_an_account_without_a_directory_is_refused(ledger: Ledger) -> None:
    lonely = ledger.open_account("Lonely").account_id
    head = _head(ledger)
    with pytest.raises(NotFound) as refused:
        ledger.disable_control_policy(lonely)
    assert refused.value.code == "EntityNotExist.ResourceDirectory"
    assert _head(ledger) == head
