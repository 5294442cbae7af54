"""As-of decisions under control policies equal the live rule replayed up to T (issue 16 item 3).

The oracle (as in ``test_temporal_oracle``) builds a brand-new ``DecisionIndex`` from the
events whose ledger time is at most T; the temporal index must answer the same for a member
account's RAM user, its root (exempt) and the management account's user (exempt) while the
directory grows, the member moves between folders, and control policies are created,
attached and detached — deny-list (a Deny beside FullAliyunAccess) and allow-list
(FullAliyunAccess detached, an Allow attached) — at every ledger time and one microsecond
before each.

Pages: control policies bound a member's RAM users and roles, level by level from the root
folder, never its root or the management account:
https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview,
https://www.alibabacloud.com/help/en/oss/user-guide/control-policy (evaluation principles),
https://www.alibabacloud.com/help/en/ram/policy-evaluation-process
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import root_arn, user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Layer
from mandate.projections.history.access_review import logged_events, review_access
from tests.directory_joining import join
from tests.integration.runtimes import running
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary

WAIT = 10.0
ACTOR = AuditContext(actor="mandate:admin", request_id="req-control-oracle")
NO_ECS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
NO_OSS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "oss:*", "Resource": "*"}]}
ONLY_OSS = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def _requests(account: str, at: object) -> list[AccessRequest]:
    now = {"acs:currenttime": at}
    return [
        AccessRequest.make("ecs:RunInstances", f"acs:ecs:*:{account}:instance/*", now),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/o", now),
        AccessRequest.make("ram:ListUsers", f"acs:ram::{account}:user/*", now),
    ]


def test_a_scripted_directory_history_answers_as_the_oracle(runtime: Runtime) -> None:
    ledger = runtime.ledger
    with acting_as(ACTOR):
        management = ledger.open_account("Management").account_id
        member = ledger.open_account("Member").account_id
        for account in (management, member):
            ledger.create_user(account, "dev", None)
            ledger.attach_policy(account, "user", "dev", "System", "AdministratorAccess")
        root = ledger.enable_resource_directory(management).node_id
        prod = ledger.create_folder(management, root, "prod").node_id
        team = ledger.create_folder(management, prod, "team").node_id
        join(ledger, management, member, team)
        ledger.create_control_policy(management, "NoEcs", NO_ECS)
        ledger.attach_control_policy(management, "NoEcs", prod)
        ledger.create_control_policy(management, "OnlyOss", ONLY_OSS)
        ledger.attach_control_policy(management, "OnlyOss", team)
        ledger.detach_control_policy(management, "FullAliyunAccess", team)
        ledger.detach_control_policy(management, "NoEcs", prod)
        ledger.move_account(management, member, prod)
        last = ledger.detach_control_policy(management, "FullAliyunAccess", member)
    assert runtime.follower.wait_for(last.position, WAIT)
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    principals = [
        (user_arn(member, "dev"), member),
        (root_arn(member), member),
        (user_arn(management, "dev"), management),
    ]
    compared, outcomes = 0, set()
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        for arn, account in principals:
            expected = oracle.principal_for_arn(arn)
            found, _reason = runtime.as_of.principal_for_arn(arn, at)
            assert (found is None) == (expected is None), f"{arn} at {at.isoformat()}"
            if found is None or expected is None:
                continue
            for request in _requests(account, at):
                want = oracle.decide(expected[1], request, memo_key=expected[0])
                got = runtime.as_of.decide(found, request)
                assert _summary(got) == _summary(want), f"{arn} {request.action} at {at}"
                layers = {m.layer for m in want.decision.matched}
                outcomes.add(
                    (arn == user_arn(member, "dev"), want.decision.kind, Layer.CONTROL in layers)
                )
                compared += 1
    assert compared > 100
    # the member's user meets a control Deny, a control gap and control Allows; the
    # exempt principals are never shown a control statement
    assert (True, DecisionKind.EXPLICIT_DENY, True) in outcomes
    assert (True, DecisionKind.IMPLICIT_DENY, True) in outcomes
    assert (True, DecisionKind.ALLOW, True) in outcomes
    assert not {o for o in outcomes if not o[0] and o[2]}


def test_live_answers_name_the_control_layer_and_the_level_missing(runtime: Runtime) -> None:
    """A control Deny shows ``layer: control``; a level that allows nothing is named.
    https://www.alibabacloud.com/help/en/oss/user-guide/control-policy (evaluation principles)
    """
    ledger = runtime.ledger
    with acting_as(ACTOR):
        management = ledger.open_account("Management").account_id
        member = ledger.open_account("Member").account_id
        ledger.create_user(member, "dev", None)
        ledger.attach_policy(member, "user", "dev", "System", "AdministratorAccess")
        root = ledger.enable_resource_directory(management).node_id
        folder = ledger.create_folder(management, root, "prod").node_id
        join(ledger, management, member, folder)
        ledger.create_control_policy(management, "NoEcs", NO_ECS)
        ledger.attach_control_policy(management, "NoEcs", root)
        last = ledger.detach_control_policy(management, "FullAliyunAccess", folder)
    assert runtime.follower.wait_for(last.position, WAIT)
    index = runtime.index
    found = index.principal_for_arn(user_arn(member, "dev"))
    assert found is not None
    key, subject = found
    ecs = AccessRequest.make("ecs:RunInstances", f"acs:ecs:*:{member}:instance/*")
    oss = AccessRequest.make("oss:GetObject", f"acs:oss:*:{member}:b/o")
    denied = index.decide(subject, ecs, memo_key=key)
    assert denied.decision.kind is DecisionKind.EXPLICIT_DENY
    assert [(m.layer, m.policy_name, m.via) for m in denied.decision.matched] == [
        (Layer.CONTROL, "NoEcs", root)
    ]
    gap = index.decide(subject, oss, memo_key=key)
    assert gap.decision.kind is DecisionKind.IMPLICIT_DENY
    assert f"none attached at {folder} allows it" in gap.reason
    with acting_as(ACTOR):
        last = ledger.attach_control_policy(management, "FullAliyunAccess", folder)
    assert runtime.follower.wait_for(last.position, WAIT)
    assert index.decide(subject, oss, memo_key=key).allowed


def test_an_access_review_closes_a_users_interval_while_a_control_policy_denies(
    runtime: Runtime,
) -> None:
    """Access review: a member's user reaches R only while its account's control policies
    allow; its root is exempt and keeps reaching R throughout."""
    ledger = runtime.ledger
    with acting_as(ACTOR):
        management = ledger.open_account("Management").account_id
        member = ledger.open_account("Member").account_id
        ledger.create_user(member, "dev", None)
        attached = ledger.attach_policy(member, "user", "dev", "System", "AliyunOSSFullAccess")
        root = ledger.enable_resource_directory(management).node_id
        join(ledger, management, member, root)
        ledger.create_control_policy(management, "NoOss", NO_OSS)
        denied = ledger.attach_control_policy(management, "NoOss", root)
        lifted = ledger.detach_control_policy(management, "NoOss", root)
    head = runtime.head()
    times = {position: at for position, at, _ in _log(runtime)}
    review = review_access(
        logged_events(ledger, head),
        runtime.hasher,
        account_id=member,
        resource=f"acs:oss:*:{member}:bucket/x",
        action="oss:GetObject",
        start=times[1],
        end=times[head] + timedelta(seconds=1),
        position=head,
    )
    found = {item.principal: [(i.start, i.end) for i in item.intervals] for item in review.items}
    dev = user_arn(member, "dev")
    assert found[dev] == [
        (times[attached.position], times[denied.position]),
        (times[lifted.position], times[head] + timedelta(seconds=1)),
    ]
    assert len(found[root_arn(member)]) == 1


def test_updated_and_deleted_control_policies_answer_as_the_oracle(runtime: Runtime) -> None:
    """As of T a control policy's document is the version live at T: UpdateControlPolicy's
    NewPolicyDocument and NewPolicyName take effect from their event on, a deleted (detached)
    policy and a deleted folder bound nothing after; before each, the older state answers.
    https://www.alibabacloud.com/help/en/resource-management/api-updatecontrolpolicy
    https://www.alibabacloud.com/help/en/resource-management/api-deletecontrolpolicy
    https://www.alibabacloud.com/help/en/resource-management/api-deletefolder
    """
    ledger = runtime.ledger
    with acting_as(ACTOR):
        management = ledger.open_account("Management").account_id
        member = ledger.open_account("Member").account_id
        ledger.create_user(member, "dev", None)
        ledger.attach_policy(member, "user", "dev", "System", "AdministratorAccess")
        root = ledger.enable_resource_directory(management).node_id
        prod = ledger.create_folder(management, root, "prod").node_id
        spare = ledger.create_folder(management, prod, "spare").node_id
        join(ledger, management, member, prod)
        ledger.create_control_policy(management, "Guard", NO_ECS, "no ECS")
        ledger.attach_control_policy(management, "Guard", prod)
        ledger.attach_control_policy(management, "Guard", spare)
        swapped = ledger.update_control_policy(management, "Guard", document=NO_OSS)
        ledger.rename_folder(management, spare, "unused")
        ledger.delete_folder(management, spare)
        ledger.update_control_policy(management, "Guard", new_policy_name="NoStorage")
        ledger.detach_control_policy(management, "NoStorage", prod)
        last = ledger.delete_control_policy(management, "NoStorage")
    assert runtime.follower.wait_for(last.position, WAIT)
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    times = {position: at for position, at, _ in log}
    dev = user_arn(member, "dev")
    compared, denied_by = 0, set()
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        expected = oracle.principal_for_arn(dev)
        found, _reason = runtime.as_of.principal_for_arn(dev, at)
        assert (found is None) == (expected is None), at.isoformat()
        if found is None or expected is None:
            continue
        for request in _requests(member, at):
            want = oracle.decide(expected[1], request, memo_key=expected[0])
            got = runtime.as_of.decide(found, request)
            assert _summary(got) == _summary(want), f"{request.action} at {at}"
            compared += 1
            if want.decision.kind is DecisionKind.EXPLICIT_DENY:
                names = {m.policy_name for m in want.decision.matched if m.layer is Layer.CONTROL}
                denied_by.add((request.action, *sorted(names), at >= times[swapped.position]))
    assert compared > 50
    # ECS denied by the first document before the update, OSS by the second after it, and
    # under the new name once renamed; nothing denies once the policy is gone
    assert ("ecs:RunInstances", "Guard", False) in denied_by
    assert ("oss:GetObject", "Guard", True) in denied_by
    assert ("oss:GetObject", "NoStorage", True) in denied_by
    assert ("ecs:RunInstances", "Guard", True) not in denied_by
    live = runtime.index.principal_for_arn(dev)
    assert live is not None
    for request in _requests(member, times[last.position]):
        assert runtime.index.decide(live[1], request, memo_key=live[0]).allowed


def test_the_control_policy_feature_disabled_and_enabled_answers_as_the_oracle(
    runtime: Runtime,
) -> None:
    """As of T the decision knows whether control policies were in force then: disabled,
    every policy is detached and the member's user is bounded by none (a folder made and a
    move while disabled attach nothing); enabled again, ``FullAliyunAccess`` alone is on every
    folder and member until a custom policy is attached by hand. The temporal index equals
    the replayed live index at every instant and one microsecond before each.
    https://www.alibabacloud.com/help/en/resource-management/api-disablecontrolpolicy
    https://www.alibabacloud.com/help/en/resource-management/latest/disable-the-control-policy-feature
    """
    ledger = runtime.ledger
    with acting_as(ACTOR):
        management = ledger.open_account("Management").account_id
        member = ledger.open_account("Member").account_id
        ledger.create_user(member, "dev", None)
        ledger.attach_policy(member, "user", "dev", "System", "AdministratorAccess")
        root = ledger.enable_resource_directory(management).node_id
        prod = ledger.create_folder(management, root, "prod").node_id
        join(ledger, management, member, prod)
        ledger.create_control_policy(management, "NoEcs", NO_ECS)
        ledger.attach_control_policy(management, "NoEcs", prod)
        ledger.create_control_policy(management, "OnlyOss", ONLY_OSS)
        ledger.attach_control_policy(management, "OnlyOss", member)
        ledger.detach_control_policy(management, "FullAliyunAccess", member)  # allow-list
        off = ledger.disable_control_policy(management)
        late = ledger.create_folder(management, prod, "late").node_id
        ledger.move_account(management, member, late)
        on = ledger.enable_control_policy(management)
        ledger.attach_control_policy(management, "NoEcs", late)
        gone = ledger.remove_cloud_account(management, member)  # RemoveCloudAccount
        back = join(ledger, management, member)  # invited again: the root folder, NoEcs-free
        last = ledger.attach_control_policy(management, "NoEcs", root)
    assert runtime.follower.wait_for(last.position, WAIT)
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    times = {position: at for position, at, _ in log}
    dev = user_arn(member, "dev")
    compared, seen = 0, set()
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        expected = oracle.principal_for_arn(dev)
        found, _reason = runtime.as_of.principal_for_arn(dev, at)
        assert (found is None) == (expected is None), at.isoformat()
        if found is None or expected is None:
            continue
        eras = [("before", off.position), ("off", on.position), ("on", gone.position)]
        eras += [("removed", back), ("back", last.position), ("last", 1 << 62)]
        era = next(name for name, until in eras if at < times.get(until, at + timedelta(1)))
        for request in _requests(member, at):
            want = oracle.decide(expected[1], request, memo_key=expected[0])
            got = runtime.as_of.decide(found, request)
            assert _summary(got) == _summary(want), f"{request.action} at {at}"
            control = sorted(
                {m.policy_name for m in want.decision.matched if m.layer is Layer.CONTROL}
            )
            seen.add((era, request.action, want.decision.kind, *control))
            compared += 1
    assert compared > 50
    # in force before: NoEcs denies ECS, the allow-list leaves RAM without a control Allow
    assert ("before", "ecs:RunInstances", DecisionKind.EXPLICIT_DENY, "NoEcs") in seen
    assert ("before", "ram:ListUsers", DecisionKind.IMPLICIT_DENY) in seen
    # disabled: nothing bounds the member's user, no control statement is shown
    assert {s for s in seen if s[0] == "off"} == {
        ("off", action, DecisionKind.ALLOW)
        for action in ("ecs:RunInstances", "oss:GetObject", "ram:ListUsers")
    }
    # enabled again: FullAliyunAccess allows, then NoEcs (attached by hand) denies ECS
    assert ("on", "ram:ListUsers", DecisionKind.ALLOW, "FullAliyunAccess") in seen
    assert ("on", "ecs:RunInstances", DecisionKind.EXPLICIT_DENY, "NoEcs") in seen
    # removed: bounded by nothing; back in the root folder, by FullAliyunAccess, then NoEcs
    assert {s for s in seen if s[0] == "removed"} == {
        ("removed", action, DecisionKind.ALLOW)
        for action in ("ecs:RunInstances", "oss:GetObject", "ram:ListUsers")
    }
    assert ("back", "ecs:RunInstances", DecisionKind.ALLOW, "FullAliyunAccess") in seen
    assert ("last", "ecs:RunInstances", DecisionKind.EXPLICIT_DENY, "NoEcs") in seen
    live = runtime.index.principal_for_arn(dev)
    assert live is not None
    ecs = _requests(member, times[last.position])[0]
    assert runtime.index.decide(live[1], ecs, memo_key=live[0]).decision.kind is (
        DecisionKind.EXPLICIT_DENY
    )
