"""An account joins a resource directory only by accepting an invitation, over
ResourceManager 2020-03-31 by the real SDK (alibabacloud-resourcemanager20200331).

InviteAccountToResourceDirectory makes a ``Pending`` handshake; only the invited account's
AcceptHandshake makes it a member (its RAM users bounded by control policies from then on,
and as of then, never before); DeclineHandshake and the inviter's CancelHandshake end it.
MoveAccount moves members only: an account that is no member is refused alike whether it
exists, belongs to another directory or not at all (no existence oracle), and GetAccount
shows no non-member's display name. Every refusal writes nothing.

InviteAccountToResourceDirectory: https://www.alibabacloud.com/help/en/resource-management/api-inviteaccounttoresourcedirectory
AcceptHandshake: https://www.alibabacloud.com/help/en/resource-management/api-accepthandshake
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

import pytest
from alibabacloud_resourcemanager20200331 import models as rm
from Tea.exceptions import TeaException

from mandate.domain.permissions import handshakes
from tests.e2e.rpc_support import Key, RpcServer, rpc_serving
from tests.e2e.test_rpc_resource_manager import NO_ECS, _code_of, _member_with_admin, _rm


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def _key_of(headers: dict[str, str], account_id: str) -> Key:
    pair = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    key_id, secret = pair.split(":", 1)
    return Key(key_id, secret, account_id)


def _tick() -> datetime:
    time.sleep(0.002)
    at = datetime.now(UTC)
    time.sleep(0.002)
    return at


def test_an_account_joins_only_by_accepting_and_non_members_are_all_refused_alike(
    rpc: RpcServer,
) -> None:
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    other = rpc.open_account()
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root = client.get_resource_directory().body.resource_directory.root_folder_id
    client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="NoEcs", policy_document=json.dumps(NO_ECS))
    )
    # another directory's member, to be refused like an account that does not exist
    _rm(rpc, other).enable_resource_directory(rm.EnableResourceDirectoryRequest())
    ecs = {
        "principal": f"acs:ram::{member.account_id}:user/dev",
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member.account_id}:instance/*",
    }

    # no consent, no membership: MoveAccount, GetAccount, attaching refuse every non-member
    # with the same code, whether it exists (member, other's management account) or not
    head = rpc.head()
    for outsider in (member.account_id, other.account_id, "1" * 16):
        move = rm.MoveAccountRequest(account_id=outsider, destination_folder_id=root)
        assert _code_of(partial(client.move_account, move)) == (404, "EntityNotExists.Account")
        get = rm.GetAccountRequest(account_id=outsider)
        assert _code_of(partial(client.get_account, get)) == (404, "EntityNotExists.Account")
        attach = rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=outsider)
        refused = _code_of(partial(client.attach_control_policy, attach))
        assert refused == (404, "EntityNotExists.Target")
    assert rpc.head() == head
    assert client.list_accounts(rm.ListAccountsRequest()).body.total_count == 0

    # the invitation: pending, seen by both accounts, by no third one; no membership yet
    invite = rm.InviteAccountToResourceDirectoryRequest(
        target_entity=member.account_id, target_type="Account", note="join us"
    )
    handshake = client.invite_account_to_resource_directory(invite).body.handshake
    h = handshake.handshake_id
    assert (handshake.status, handshake.target_entity, handshake.note) == (
        "Pending",
        member.account_id,
        "join us",
    )
    invited = _rm(rpc, member)
    listed = invited.list_handshakes_for_account(rm.ListHandshakesForAccountRequest()).body
    assert [(x.handshake_id, x.master_account_id) for x in listed.handshakes.handshake] == [
        (h, management.account_id)
    ]
    mine = client.list_handshakes_for_resource_directory(
        rm.ListHandshakesForResourceDirectoryRequest()
    ).body
    assert [x.handshake_id for x in mine.handshakes.handshake] == [h]
    stranger = _rm(rpc, other)
    head = rpc.head()
    for call in (
        partial(stranger.get_handshake, rm.GetHandshakeRequest(handshake_id=h)),
        partial(stranger.accept_handshake, rm.AcceptHandshakeRequest(handshake_id=h)),
        partial(stranger.cancel_handshake, rm.CancelHandshakeRequest(handshake_id=h)),
        partial(client.accept_handshake, rm.AcceptHandshakeRequest(handshake_id=h)),
        partial(invited.accept_handshake, rm.AcceptHandshakeRequest(handshake_id="h-none")),
    ):
        assert _code_of(call) == (404, "EntityNotExists.Handshake")
    move = rm.MoveAccountRequest(account_id=member.account_id, destination_folder_id=root)
    assert _code_of(partial(client.move_account, move)) == (404, "EntityNotExists.Account")
    assert rpc.head() == head
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"

    # accepted by the invited account: a member in the root folder, bounded from then on
    before = _tick()
    accepted = invited.accept_handshake(rm.AcceptHandshakeRequest(handshake_id=h)).body
    assert accepted.handshake.status == "Accepted"
    account = client.get_account(rm.GetAccountRequest(account_id=member.account_id)).body
    assert (account.account.folder_id, account.account.display_name) == (root, "Acme")
    client.attach_control_policy(
        rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=member.account_id)
    )
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "ExplicitDeny"
    as_of = {**ecs, "as_of": before.isoformat()}
    assert rpc.api.authorize(member_headers, **as_of)["decision"] == "Allow"
    head = rpc.head()
    again = rm.AcceptHandshakeRequest(handshake_id=h)
    assert _code_of(partial(invited.accept_handshake, again)) == (409, "HandshakeStatusMismatch")
    assert rpc.head() == head


def test_an_invitation_is_declined_or_cancelled_and_an_accept_needs_the_action(
    rpc: RpcServer,
) -> None:
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    invited = _rm(rpc, member)

    def invite() -> str:
        request = rm.InviteAccountToResourceDirectoryRequest(
            target_entity=member.account_id, target_type="Account"
        )
        return str(client.invite_account_to_resource_directory(request).body.handshake.handshake_id)

    declined = invite()
    answer = invited.decline_handshake(rm.DeclineHandshakeRequest(handshake_id=declined))
    assert answer.body.handshake.status == "Declined"
    cancelled = invite()
    answer_c = client.cancel_handshake(rm.CancelHandshakeRequest(handshake_id=cancelled))
    assert answer_c.body.handshake.status == "Cancelled"
    head = rpc.head()
    for h in (declined, cancelled):
        accept = rm.AcceptHandshakeRequest(handshake_id=h)
        assert _code_of(partial(invited.accept_handshake, accept)) == (
            409,
            "HandshakeStatusMismatch",
        )
    # the invited account's RAM user needs resourcemanager:AcceptHandshake in its own account
    pending = invite()
    head = rpc.head()
    user_key = rpc.api.create_user(member.account_id, member_headers, "intern")
    head = rpc.head()
    intern = _rm(rpc, _key_of(user_key, member.account_id))
    accept = rm.AcceptHandshakeRequest(handshake_id=pending)
    assert _code_of(partial(intern.accept_handshake, accept)) == (403, "NoPermission")
    assert rpc.head() == head
    for bad, code in (
        (
            rm.InviteAccountToResourceDirectoryRequest(target_entity="x", target_type="Account"),
            "InvalidParameter.TargetEntity",
        ),
        (
            rm.InviteAccountToResourceDirectoryRequest(
                target_entity=management.account_id, target_type="Account"
            ),
            "InvalidParameter.TargetEntity",
        ),
        (
            rm.InviteAccountToResourceDirectoryRequest(
                target_entity="a@example.com", target_type="Email"
            ),
            "InvalidParameter.TargetType",
        ),
    ):
        assert _code_of(partial(client.invite_account_to_resource_directory, bad)) == (400, code)
    assert rpc.head() == head
    assert client.list_accounts(rm.ListAccountsRequest()).body.total_count == 0


def test_a_removed_member_is_bounded_by_nothing_from_then_on(rpc: RpcServer) -> None:
    """RemoveCloudAccount: the member's RAM user is bounded by no control policy from the
    removal on (as of before it, still); GetAccount is 404; a non-member is refused alike
    (404 ``EntityNotExists.Account``, nothing written); invited again, it may rejoin."""
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="NoEcs", policy_document=json.dumps(NO_ECS))
    )
    invited = _rm(rpc, member)

    def join() -> None:
        invite = rm.InviteAccountToResourceDirectoryRequest(
            target_entity=member.account_id, target_type="Account"
        )
        h = client.invite_account_to_resource_directory(invite).body.handshake.handshake_id
        invited.accept_handshake(rm.AcceptHandshakeRequest(handshake_id=h))

    join()
    client.attach_control_policy(
        rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=member.account_id)
    )
    ecs = {
        "principal": f"acs:ram::{member.account_id}:user/dev",
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member.account_id}:instance/*",
    }
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "ExplicitDeny"
    before = _tick()
    client.remove_cloud_account(rm.RemoveCloudAccountRequest(account_id=member.account_id))
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"
    as_of = {**ecs, "as_of": before.isoformat()}
    assert rpc.api.authorize(member_headers, **as_of)["decision"] == "ExplicitDeny"
    head = rpc.head()
    for outsider in (member.account_id, "1" * 16):
        gone = rm.RemoveCloudAccountRequest(account_id=outsider)
        refused = _code_of(partial(client.remove_cloud_account, gone))
        assert refused == (404, "EntityNotExists.Account")
        get = rm.GetAccountRequest(account_id=outsider)
        assert _code_of(partial(client.get_account, get)) == (404, "EntityNotExists.Account")
    assert rpc.head() == head
    join()
    accounts = client.list_accounts(rm.ListAccountsRequest()).body.accounts.account
    assert [a.account_id for a in accounts] == [member.account_id]
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"  # NoEcs went with it


class _Clock(datetime):
    """``datetime`` whose ``now`` is an instant the test sets: ``handshake_clock()``, by which
    the ledger answers handshakes and the API shows their status (events keep real time)."""

    at: ClassVar[datetime]

    @classmethod
    def now(cls, tz: Any = None) -> _Clock:
        return cls.fromtimestamp(cls.at.timestamp(), cls.at.tzinfo)


def _rpc_instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(TeaException) as caught:
        call()
    return caught.value.status_code, caught.value.code, caught.value.data["Message"]


def test_one_pending_invitation_per_account_and_email_is_refused_as_rm_refuses_it(
    rpc: RpcServer,
) -> None:
    """A second invitation to an account with one pending is 409 ``Duplicate.Handshake``;
    answered, the account may be invited again. ``TargetType=Email`` is RM's 400
    ``InvalidParameter.TargetType`` "The TargetType is invalid.". Refusals write nothing."""
    management = rpc.open_account()
    member = rpc.open_account()
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    invite = rm.InviteAccountToResourceDirectoryRequest(
        target_entity=member.account_id, target_type="Account"
    )
    first = client.invite_account_to_resource_directory(invite).body.handshake.handshake_id
    head = rpc.head()
    again = partial(client.invite_account_to_resource_directory, invite)
    assert _refusal(again)[:2] == (409, "Duplicate.Handshake")
    email = rm.InviteAccountToResourceDirectoryRequest(
        target_entity="someone@example.com", target_type="Email"
    )
    refused = _refusal(partial(client.invite_account_to_resource_directory, email))
    assert refused == (400, "InvalidParameter.TargetType", "The TargetType is invalid.")
    assert rpc.head() == head
    client.cancel_handshake(rm.CancelHandshakeRequest(handshake_id=first))
    second = client.invite_account_to_resource_directory(invite).body.handshake
    assert (second.status, second.handshake_id != first) == ("Pending", True)


def test_a_handshake_expires_14_days_after_it_was_made(
    rpc: RpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ExpireTime`` is ``CreateTime`` + 14 days; from then GetHandshake and both listings
    show ``Expired`` and accepting, declining or cancelling it is 409
    ``HandshakeStatusMismatch``, nothing written, no member; a new invitation may be made.
    The clock is moved, not waited for."""
    management = rpc.open_account()
    member = rpc.open_account()
    client = _rm(rpc, management)
    invited = _rm(rpc, member)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    invite = rm.InviteAccountToResourceDirectoryRequest(
        target_entity=member.account_id, target_type="Account"
    )
    made = client.invite_account_to_resource_directory(invite).body.handshake
    h = made.handshake_id
    created, expire_time = _rpc_instant(made.create_time), _rpc_instant(made.expire_time)
    assert expire_time == created + timedelta(days=14)
    # /v1 shows the instant to the microsecond: the clock is set on either side of it
    root = rpc.api.basic(member.access_key_id, member.secret)
    shown = rpc.api.get(f"/v1/accounts/{member.account_id}/handshakes/{h}", headers=root)
    expires = datetime.fromisoformat(shown.json()["expires_at"])
    assert expires - datetime.fromisoformat(shown.json()["created_at"]) == timedelta(days=14)
    assert expires.replace(microsecond=0) == expire_time

    def statuses() -> list[str]:
        got = invited.get_handshake(rm.GetHandshakeRequest(handshake_id=h)).body.handshake
        mine = invited.list_handshakes_for_account(rm.ListHandshakesForAccountRequest()).body
        theirs = client.list_handshakes_for_resource_directory(
            rm.ListHandshakesForResourceDirectoryRequest()
        ).body
        return [
            got.status,
            *(x.status for x in mine.handshakes.handshake if x.handshake_id == h),
            *(x.status for x in theirs.handshakes.handshake if x.handshake_id == h),
        ]

    monkeypatch.setattr(handshakes, "datetime", _Clock)
    _Clock.at = expires - timedelta(microseconds=1)  # its last instant
    assert statuses() == ["Pending"] * 3
    assert _refusal(partial(client.invite_account_to_resource_directory, invite))[:2] == (
        409,
        "Duplicate.Handshake",
    )
    _Clock.at = expires
    assert statuses() == ["Expired"] * 3
    head = rpc.head()
    for answer in (
        partial(invited.accept_handshake, rm.AcceptHandshakeRequest(handshake_id=h)),
        partial(invited.decline_handshake, rm.DeclineHandshakeRequest(handshake_id=h)),
        partial(client.cancel_handshake, rm.CancelHandshakeRequest(handshake_id=h)),
    ):
        assert _code_of(answer) == (409, "HandshakeStatusMismatch")
    assert rpc.head() == head
    assert client.list_accounts(rm.ListAccountsRequest()).body.total_count == 0
    renewed = client.invite_account_to_resource_directory(invite).body.handshake
    assert (renewed.status, renewed.handshake_id != h) == ("Pending", True)  # made later
    invited.accept_handshake(rm.AcceptHandshakeRequest(handshake_id=renewed.handshake_id))
    accounts = client.list_accounts(rm.ListAccountsRequest()).body.accounts.account
    assert [a.account_id for a in accounts] == [member.account_id]
    assert statuses() == ["Expired"] * 3  # the lapsed one stays lapsed
