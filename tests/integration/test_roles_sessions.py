"""Roles and AssumeRole end to end, on each store (docs/design.md §2, §3.3, §5).

Commands run through ``Runtime.write`` as the API runs them (as an actor, answering once this
process's index has applied the write); credentials are authenticated and decisions made by the
decision index exactly as the API's own-credentials path does. Every refusal is checked to write
nothing: the log's head does not move.

The helpers here (``World``, the document builders) are shared with
``test_session_lineage_live.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import assumed_role_arn, role_arn, root_arn, user_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted
from mandate.domain.ledger.application import IssuedKey, IssuedSession, OpenedAccount
from mandate.domain.policy.decisions import Answer, SubjectKind
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Effect, Layer
from mandate.domain.sts.roles import Role
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential
from mandate.projections.decisions.index import DecisionIndex
from tests.integration.runtimes import running

ADMIN = AuditContext(actor="mandate:admin", request_id="req-roles", source_ip="127.0.0.1")
ASSUME = "AliyunSTSAssumeRoleAccess"


# --- documents -------------------------------------------------------------------------------


def document(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(actions: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def deny(actions: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resource}


def trust(*principals: str, condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"RAM": list(principals)},
    }
    if condition is not None:
        statement["Condition"] = condition
    return document(statement)


# --- the world the tests act in --------------------------------------------------------------


@dataclass
class World:
    """One runtime, driven as the API drives it."""

    runtime: Runtime

    @property
    def index(self) -> DecisionIndex:
        return self.runtime.index

    def head(self) -> int:
        return int(self.runtime.ledger.recorder.max_notification_id() or 0)

    def events_since(self, after: int) -> list[Any]:
        recorder = self.runtime.ledger.recorder
        notifications = recorder.select_notifications(after, 10_000, inclusive_of_start=False)
        return [self.runtime.ledger.mapper.to_domain_event(n) for n in notifications]

    def names_since(self, after: int) -> list[str]:
        return [type(e).__name__ for e in self.events_since(after)]

    def do(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """Run a ledger command as the admin; answer once the index has applied it."""
        method = getattr(self.runtime.ledger, command)
        result = self.runtime.write(ADMIN, lambda: method(*args, **kwargs))
        assert self.index.position >= result.position
        return result

    def account(self, name: str = "Acme") -> str:
        opened: OpenedAccount = self.do("open_account", name)
        return opened.account_id

    def root_key(self, name: str = "Acme") -> tuple[str, IssuedKey]:
        opened: OpenedAccount = self.do("open_account", name)
        return opened.account_id, opened.root_key

    def user(self, account: str, name: str, *system_policies: str) -> Credential:
        """A RAM user with one AccessKey and the given System policies, authenticated."""
        self.do("create_user", account, name, None)
        for policy in system_policies:
            self.do("attach_policy", account, "user", name, "System", policy)
        key: IssuedKey = self.do("create_access_key", account, name)
        return self.index.authenticate(key.access_key_id, key.access_key_secret)

    def role(
        self,
        account: str,
        name: str,
        trust_document: Mapping[str, Any],
        *,
        custom: Mapping[str, Any] | None = None,
        system: tuple[str, ...] = (),
        max_session_duration: int | None = None,
    ) -> str:
        """A role with a custom policy ``<name>Policy`` and/or System policies; its ARN."""
        self.do(
            "create_role",
            account,
            name,
            trust_document,
            max_session_duration=max_session_duration,
        )
        if custom is not None:
            self.do("create_policy", account, f"{name}Policy", custom)
            self.do("attach_policy", account, "role", name, "Custom", f"{name}Policy")
        for policy in system:
            self.do("attach_policy", account, "role", name, "System", policy)
        return role_arn(account, name)

    def role_id(self, account: str, name: str) -> UUID:
        view = self.index.role_by_name(account, name)
        assert view is not None, f"role {name} is not in the index"
        return view.id

    def assume(
        self, caller: Credential, arn: str, session_name: str = "s-1", **params: Any
    ) -> IssuedSession:
        """AssumeRole as ``caller`` (as the STS router calls it)."""
        assuming = self.index.assuming_caller(caller)
        audit = AuditContext(actor=caller.arn, credential=caller.access_key_id, request_id="r")
        issued: IssuedSession = self.runtime.write(
            audit,
            lambda: self.runtime.ledger.assume_role(
                assuming, role_arn=arn, role_session_name=session_name, **params
            ),
        )
        return issued

    def session(self, issued: IssuedSession, now: datetime | None = None) -> Credential:
        return self.index.authenticate_session(
            issued.access_key_id, issued.access_key_secret, issued.security_token, now=now
        )

    def decide(
        self,
        credential: Credential,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
    ) -> Answer:
        answer: Answer = self.index.decide_for(
            credential, AccessRequest.make(action, resource, context)
        )
        return answer

    def decide_session(self, issued: IssuedSession, action: str, resource: str) -> Answer:
        """Authenticate the session afresh (as every request does), then decide."""
        return self.decide(self.session(issued), action, resource)

    def refused(
        self, error: type[DomainError], command: Any, *, match: str | None = None
    ) -> DomainError:
        """``command()`` raises ``error`` and writes no event; the raised error."""
        before = self.head()
        with pytest.raises(error, match=match) as raised:
            command()
        assert self.head() == before, "a refused command wrote an event"
        assert self.runtime.follower.catch_up() == before
        return raised.value


@pytest.fixture
def world(store_url: str) -> Iterator[World]:
    with running(store_url) as runtime:
        yield World(runtime)


def layers_of(answer: Answer) -> list[tuple[Layer, Effect]]:
    return sorted((m.layer, m.effect) for m in answer.decision.matched)


# --- roles: create, update, trust, delete ----------------------------------------------------


def test_role_lifecycle_writes_one_event_per_change(world: World) -> None:
    """Create, update, replace the trust, attach, refuse a delete, delete with detach."""
    account = world.account()
    app = user_arn(account, "app")
    start = world.head()
    world.do("create_role", account, "photos", trust(app), description="photo uploads")
    assert world.names_since(start) == ["NameClaimed", "RoleCreated"]
    created = world.events_since(start)[1]
    assert (created.role_name, created.max_session_duration) == ("photos", 3600)
    view = world.index.role_by_name(account, "photos")
    assert view is not None
    assert (view.description, view.max_session_duration) == ("photo uploads", 3600)
    assert app in view.trust_policy

    start = world.head()
    world.do("update_role", account, "photos", description="uploads", max_session_duration=7200)
    assert world.names_since(start) == ["RoleUpdated"]
    assert (view.description, view.max_session_duration) == ("uploads", 7200)
    # The same values again change nothing and record nothing.
    world.do("update_role", account, "photos", description="uploads", max_session_duration=7200)
    assert world.head() == start + 1

    start = world.head()
    world.do("update_role", account, "photos", assume_role_policy_document=trust(root_arn(account)))
    assert world.names_since(start) == ["RoleTrustPolicyUpdated"]
    view = world.index.role_by_name(account, "photos")
    assert view is not None
    assert root_arn(account) in view.trust_policy
    assert app not in view.trust_policy  # replaced, not merged
    assert (view.description, view.max_session_duration) == ("uploads", 7200)
    stored: object = world.runtime.ledger.repository.get(view.id)
    assert isinstance(stored, Role)
    assert stored.trust_policy == view.trust_policy

    world.do("attach_policy", account, "role", "photos", "System", "AliyunOSSFullAccess")
    error = world.refused(
        Conflict, lambda: world.runtime.ledger.delete_role(account, "photos"), match="detach"
    )
    assert error.code == "DeleteConflict.Role.Policy"
    assert world.index.role_by_name(account, "photos") is not None

    start = world.head()
    world.do("delete_role", account, "photos", detach=True)
    assert world.names_since(start) == ["PolicyDetached", "RoleDeleted", "NameReleased"]
    assert world.index.role_by_name(account, "photos") is None
    assert view.id not in world.index.roles
    world.refused(NotFound, lambda: world.runtime.ledger.delete_role(account, "photos"))


def test_a_role_without_policies_is_deleted_without_detach(world: World) -> None:
    account = world.account()
    world.do("create_role", account, "empty", trust(root_arn(account)))
    start = world.head()
    world.do("delete_role", account, "empty")
    assert world.names_since(start) == ["RoleDeleted", "NameReleased"]


@pytest.mark.parametrize("limit", [3600, 43200])
def test_max_session_duration_accepts_its_bounds(world: World, limit: int) -> None:
    account = world.account()
    world.do("create_role", account, "r", trust(root_arn(account)), max_session_duration=limit)
    view = world.index.role_by_name(account, "r")
    assert view is not None
    assert view.max_session_duration == limit


@pytest.mark.parametrize("value", [3599, 43201, 0, -3600, 900, True, 3600.0, "3600"])
def test_max_session_duration_out_of_range_is_refused(world: World, value: Any) -> None:
    """Create and update answer InvalidParameter.MaxSessionDuration and write nothing."""
    account = world.account()
    ledger = world.runtime.ledger
    error = world.refused(
        InvalidInput,
        lambda: ledger.create_role(
            account, "r", trust(root_arn(account)), max_session_duration=value
        ),
    )
    assert error.code == "InvalidParameter.MaxSessionDuration"
    assert isinstance(error, InvalidInput)
    assert [e.field for e in error.errors] == ["max_session_duration"]
    assert world.index.role_by_name(account, "r") is None

    world.do("create_role", account, "r", trust(root_arn(account)))
    error = world.refused(
        InvalidInput, lambda: ledger.update_role(account, "r", max_session_duration=value)
    )
    assert error.code == "InvalidParameter.MaxSessionDuration"
    view = world.index.role_by_name(account, "r")
    assert view is not None
    assert view.max_session_duration == 3600


SOMEONE = {"RAM": ["acs:ram::1234567890123456:root"]}
MALFORMED_TRUSTS: dict[str, tuple[Any, str]] = {
    "bad_effect": (
        document(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": SOMEONE},
            {"Effect": "Maybe", "Action": "sts:AssumeRole", "Principal": SOMEONE},
        ),
        "assume_role_policy_document.Statement[1].Effect",
    ),
    "resource_instead_of_principal": (
        document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        "assume_role_policy_document.Statement[0]",
    ),
    "unknown_condition_operator": (
        document(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": SOMEONE,
                "Condition": {"StringEqualz": {"sts:ExternalId": "x"}},
            }
        ),
        "assume_role_policy_document.Statement[0].Condition",
    ),
    "not_json": ("{not json", "assume_role_policy_document"),
}


@pytest.mark.parametrize("case", list(MALFORMED_TRUSTS), ids=list(MALFORMED_TRUSTS))
def test_a_malformed_trust_policy_is_refused_naming_the_path(world: World, case: str) -> None:
    """Create and trust replacement both name the JSON path of the fault; nothing is written."""
    raw, path = MALFORMED_TRUSTS[case]
    account = world.account()
    ledger = world.runtime.ledger
    error = world.refused(InvalidInput, lambda: ledger.create_role(account, "r", raw))
    assert isinstance(error, InvalidInput)
    assert error.errors
    assert all(e.field.startswith(path) for e in error.errors), error.errors
    assert all(e.reason for e in error.errors)

    world.do("create_role", account, "r", trust(root_arn(account)))
    error = world.refused(
        InvalidInput, lambda: ledger.update_role(account, "r", assume_role_policy_document=raw)
    )
    assert isinstance(error, InvalidInput)
    assert all(e.field.startswith(path) for e in error.errors), error.errors


def test_an_identity_policy_is_not_a_trust_policy(world: World) -> None:
    """A document naming a Resource and no Principal is refused as a trust policy."""
    account = world.account()
    error = world.refused(
        InvalidInput,
        lambda: world.runtime.ledger.create_role(account, "r", document(allow("oss:*", "*"))),
    )
    assert isinstance(error, InvalidInput)
    fields = {e.field for e in error.errors}
    assert "assume_role_policy_document.Statement[0].Principal" in fields


def test_a_recreated_role_is_a_new_role_and_old_sessions_stay_dead(world: World) -> None:
    """Deleting and re-creating a role's name kills its sessions for good."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    photos = f"acs:oss:*:{account}:photos/a.jpg"
    arn = world.role(account, "photos", trust(app.arn), system=("AliyunOSSFullAccess",))
    old_id = world.role_id(account, "photos")
    old = world.assume(app, arn)
    assert world.decide_session(old, "oss:GetObject", photos).allowed

    world.do("delete_role", account, "photos", detach=True)
    with pytest.raises(AuthenticationFailed, match=f"role {arn} was deleted"):
        world.session(old)

    world.role(account, "photos", trust(app.arn), system=("AliyunOSSFullAccess",))
    new_view = world.index.role_by_name(account, "photos")
    assert new_view is not None
    assert new_view.id != old_id
    with pytest.raises(AuthenticationFailed, match="was deleted"):
        world.session(old)
    assert world.index.live_sessions_of(new_view.id) == []
    assert world.index.live_sessions_of(old_id) == []

    new = world.assume(app, arn)
    assert new.assumed_role_id.startswith(str(new_view.id))
    assert world.decide_session(new, "oss:GetObject", photos).allowed
    assert [r.access_key_id for r in world.index.live_sessions_of(new_view.id)] == [
        new.access_key_id
    ]


# --- AssumeRole ------------------------------------------------------------------------------


def test_assume_role_issues_a_session_recording_no_secret(world: World) -> None:
    """A user allowed sts:AssumeRole and named by the trust gets credentials; one event."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "photos", trust(app.arn), system=("AliyunOSSFullAccess",))
    role_id = world.role_id(account, "photos")

    start = world.head()
    before = datetime.now(UTC)
    issued = world.assume(app, arn, "phone-42", duration_seconds=900)
    assert world.names_since(start) == ["SessionIssued"]
    assert issued.position == world.head()
    assert issued.access_key_id.startswith("STS.")
    assert issued.arn == assumed_role_arn(account, "photos", "phone-42")
    assert issued.assumed_role_id == f"{role_id}:phone-42"
    assert timedelta(seconds=898) <= issued.expiration - before <= timedelta(seconds=901)

    (event,) = world.events_since(start)
    assert event.access_key_id == issued.access_key_id
    assert (event.account_id, event.role_id, event.role_name) == (account, role_id, "photos")
    assert (event.source_arn, event.source_account_id) == (app.arn, account)
    assert event.source_user_id == app.user_id
    assert event.parent_access_key_id is None
    assert event.session_policy is None
    assert event.expiration == issued.expiration
    state = vars(event)
    assert issued.access_key_secret not in repr(state)
    assert issued.security_token not in repr(state)
    assert world.runtime.hasher.verify(issued.access_key_secret, event.secret_hash)
    assert event.audit["actor"] == app.arn

    credential = world.session(issued)
    assert credential.kind is SubjectKind.SESSION
    assert credential.arn == issued.arn
    assert credential.account_id == account
    assert credential.subject is not None
    assert credential.subject.chain == (app.arn, arn, issued.arn)


def test_a_trust_naming_the_account_root_admits_its_users(world: World) -> None:
    account = world.account()
    arn = world.role(account, "ops", trust(root_arn(account)), system=("AliyunECSFullAccess",))
    anyone = world.user(account, "anyone", ASSUME)
    issued = world.assume(anyone, arn)
    answer = world.decide_session(issued, "ecs:StartInstance", f"acs:ecs:*:{account}:instance/1")
    assert answer.allowed
    assert answer.chain == (anyone.arn, arn, issued.arn)


def _assume_refusals(world: World) -> dict[str, tuple[type[DomainError], Any, str | None]]:
    """Every way an AssumeRole in one account is refused: (error, command, code)."""
    account, root = world.root_key()
    app = world.user(account, "app", ASSUME)
    trusted_without_policy = world.user(account, "trusted")
    untrusted = world.user(account, "stranger", ASSUME)
    narrow = world.user(account, "narrow")
    world.do(
        "create_policy",
        account,
        "OnlyOther",
        document(allow("sts:AssumeRole", role_arn(account, "other"))),
    )
    world.do("attach_policy", account, "user", "narrow", "Custom", "OnlyOther")
    root_credential = world.index.authenticate(root.access_key_id, root.access_key_secret)
    arn = world.role(
        account,
        "photos",
        trust(app.arn, trusted_without_policy.arn, narrow.arn),
        system=("AliyunOSSFullAccess",),
    )
    denied = world.role(
        account,
        "guarded",
        document(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [root_arn(account)]},
            },
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"RAM": [app.arn]}},
        ),
    )
    return {
        "root_cannot_assume": (NotPermitted, lambda: world.assume(root_credential, arn), None),
        "no_own_sts_policy": (
            NotPermitted,
            lambda: world.assume(trusted_without_policy, arn),
            "NoPermission",
        ),
        "own_policy_names_another_role": (NotPermitted, lambda: world.assume(narrow, denied), None),
        "trust_does_not_name_the_caller": (
            NotPermitted,
            lambda: world.assume(untrusted, arn),
            "NoPermission",
        ),
        "trust_denies_the_caller": (NotPermitted, lambda: world.assume(app, denied), None),
        "unknown_role": (
            NotFound,
            lambda: world.assume(app, role_arn(account, "nope")),
            "EntityNotExist.Role",
        ),
        "longer_than_the_role_allows": (
            InvalidInput,
            lambda: world.assume(app, arn, duration_seconds=3601),
            "InvalidParameter.DurationSeconds",
        ),
        "shorter_than_900_seconds": (
            InvalidInput,
            lambda: world.assume(app, arn, duration_seconds=899),
            "InvalidParameter.DurationSeconds",
        ),
        "bad_session_name": (
            InvalidInput,
            lambda: world.assume(app, arn, "has space"),
            "InvalidParameter.RoleSessionName",
        ),
        "not_a_role_arn": (
            InvalidInput,
            lambda: world.assume(app, user_arn(account, "app")),
            "InvalidParameter.RoleArn",
        ),
        "malformed_session_policy": (
            InvalidInput,
            lambda: world.assume(
                app, arn, policy=document({"Effect": "Maybe", "Action": "*", "Resource": "*"})
            ),
            "InvalidParameter.Policy",
        ),
    }


REFUSAL_CASES = [
    "root_cannot_assume",
    "no_own_sts_policy",
    "own_policy_names_another_role",
    "trust_does_not_name_the_caller",
    "trust_denies_the_caller",
    "unknown_role",
    "longer_than_the_role_allows",
    "shorter_than_900_seconds",
    "bad_session_name",
    "not_a_role_arn",
    "malformed_session_policy",
]


@pytest.mark.parametrize("case", REFUSAL_CASES)
def test_a_refused_assume_role_writes_no_event(world: World, case: str) -> None:
    """Each refusal raises RAM's error, writes nothing, and no session appears."""
    refusals = _assume_refusals(world)
    assert sorted(refusals) == sorted(REFUSAL_CASES)
    error_type, command, code = refusals[case]
    sessions_before = dict(world.index.sessions)
    error = world.refused(error_type, command)
    if code is not None:
        assert error.code == code
    assert world.index.sessions == sessions_before


def test_refusals_say_why(world: World) -> None:
    """The messages name the missing own permission, the trust, the root rule, the path."""
    refusals = _assume_refusals(world)
    reasons = {}
    for case in ("root_cannot_assume", "no_own_sts_policy", "trust_does_not_name_the_caller"):
        error_type, command, _ = refusals[case]
        with pytest.raises(error_type) as raised:
            command()
        reasons[case] = str(raised.value)
    assert "root cannot call AssumeRole" in reasons["root_cannot_assume"]
    assert "by its own policies" in reasons["no_own_sts_policy"]
    assert "trust policy does not name" in reasons["trust_does_not_name_the_caller"]
    _, command, _ = refusals["malformed_session_policy"]
    with pytest.raises(InvalidInput) as raised:
        command()
    assert [e.field for e in raised.value.errors] == ["policy.Statement[0].Effect"]


def test_external_id_condition_of_the_trust(world: World) -> None:
    """Without the ExternalId, or with another, the trust does not admit; with it, it does."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(
        account,
        "vendor",
        trust(app.arn, condition={"StringEquals": {"sts:ExternalId": "abcd-1234"}}),
        system=("AliyunOSSReadOnlyAccess",),
    )
    error = world.refused(NotPermitted, lambda: world.assume(app, arn), match="Condition")
    assert error.code == "NoPermission"
    world.refused(NotPermitted, lambda: world.assume(app, arn, external_id="abcd-9999"))
    bad = world.refused(InvalidInput, lambda: world.assume(app, arn, external_id="x"))
    assert bad.code == "InvalidParameter.ExternalId"
    issued = world.assume(app, arn, external_id="abcd-1234")
    assert world.decide_session(issued, "oss:GetObject", f"acs:oss:*:{account}:b/1").allowed


# --- across accounts -------------------------------------------------------------------------


def test_a_user_of_b_acts_on_a_resources_through_a_role_of_a(world: World) -> None:
    """B's user, trusted via B's root and allowed by B's policies, acts in A only; A pays."""
    a = world.account("Alpha")
    b = world.account("Beta")
    arn = world.role(
        a,
        "partner",
        trust(root_arn(b)),
        custom=document(allow(["oss:GetObject", "oss:PutObject"], f"acs:oss:*:{a}:shared/*")),
    )
    world.do("create_policy", b, "AssumePartner", document(allow("sts:AssumeRole", arn)))
    world.do("create_user", b, "bob", None)
    world.do("attach_policy", b, "user", "bob", "Custom", "AssumePartner")
    world.do("attach_policy", b, "user", "bob", "System", "AliyunOSSFullAccess")
    key = world.do("create_access_key", b, "bob")
    bob = world.index.authenticate(key.access_key_id, key.access_key_secret)

    # bob's own OSS policy never reaches A's resources directly
    direct = world.decide(bob, "oss:GetObject", f"acs:oss:*:{a}:shared/x")
    assert not direct.allowed

    start = world.head()
    issued = world.assume(bob, arn, "bob-batch")
    (event,) = world.events_since(start)
    assert (event.account_id, event.source_account_id, event.source_arn) == (a, b, bob.arn)

    session = world.session(issued)
    assert session.account_id == a
    inside = world.decide(session, "oss:PutObject", f"acs:oss:*:{a}:shared/x")
    assert inside.allowed
    assert inside.billed_account == a
    assert inside.chain == (bob.arn, arn, assumed_role_arn(a, "partner", "bob-batch"))
    assert {m.layer for m in inside.decision.matched} == {Layer.ROLE}
    outside = world.decide(session, "oss:GetObject", f"acs:oss:*:{b}:shared/x")
    assert not outside.allowed
    assert outside.billed_account is None
    assert "role's account" in outside.reason
    assert not world.decide(session, "oss:DeleteObject", f"acs:oss:*:{a}:shared/x").allowed

    # B's user without sts:AssumeRole is refused although B's root is trusted
    carol = world.user(b, "carol", "AliyunOSSFullAccess")
    world.refused(NotPermitted, lambda: world.assume(carol, arn), match="own policies")
    # a user of a third account, allowed by its own policies, is not trusted
    c = world.account("Gamma")
    eve = world.user(c, "eve", ASSUME)
    world.refused(NotPermitted, lambda: world.assume(eve, arn))
    # B's root can never assume
    _, root = world.root_key("Delta")
    root_credential = world.index.authenticate(root.access_key_id, root.access_key_secret)
    world.refused(NotPermitted, lambda: world.assume(root_credential, arn))


def test_a_foreign_role_is_refused_alike_whether_it_exists_or_not(world: World) -> None:
    """Another account's missing role and its untrusting role are refused the same way."""
    a = world.account("Alpha")
    c = world.account("Gamma")
    existing = world.role(a, "private", trust(root_arn(a)))
    eve = world.user(c, "eve", ASSUME)
    refusals = []
    for arn in (existing, role_arn(a, "missing")):
        error = world.refused(NotPermitted, lambda arn=arn: world.assume(eve, arn))
        refusals.append((type(error), error.code, str(error).replace(arn, "<role>")))
    assert refusals[0] == refusals[1], "the refusal tells whether another account's role exists"


# --- using a session -------------------------------------------------------------------------


@pytest.fixture
def photo_session(world: World) -> tuple[World, str, IssuedSession]:
    """A role allowing OSS on photos/ (denying photos/*/secret/*), a session narrowed to u-42."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(
        account,
        "photos",
        trust(app.arn),
        custom=document(
            allow("oss:*", f"acs:oss:*:{account}:photos/*"),
            deny("oss:GetObject", f"acs:oss:*:{account}:photos/*/secret/*"),
        ),
    )
    session_policy = document(
        allow(["oss:GetObject", "oss:PutObject", "ecs:*"], f"acs:*:*:{account}:photos/u-42/*"),
        deny("oss:PutObject", f"acs:oss:*:{account}:photos/u-42/readonly/*"),
    )
    issued = world.assume(app, arn, "phone-42", policy=session_policy)
    return world, account, issued


def test_a_session_is_the_intersection_of_role_and_session_policy(
    photo_session: tuple[World, str, IssuedSession],
) -> None:
    """Both layers must allow; a Deny in either wins; the explanation names each layer."""
    world, account, issued = photo_session
    photos = f"acs:oss:*:{account}:photos"
    session = world.session(issued)

    both = world.decide(session, "oss:GetObject", f"{photos}/u-42/a.jpg")
    assert both.allowed
    assert layers_of(both) == [(Layer.ROLE, Effect.ALLOW), (Layer.SESSION, Effect.ALLOW)]
    role_match = next(m for m in both.decision.matched if m.layer is Layer.ROLE)
    assert (role_match.policy_type, role_match.policy_name, role_match.version) == (
        "Custom",
        "photosPolicy",
        "v1",
    )
    assert both.billed_account == account

    only_role = world.decide(session, "oss:GetObject", f"{photos}/u-7/a.jpg")
    assert only_role.decision.kind is DecisionKind.IMPLICIT_DENY
    assert layers_of(only_role) == [(Layer.ROLE, Effect.ALLOW)]
    assert "session" in only_role.reason
    assert only_role.billed_account is None

    only_session = world.decide(session, "ecs:StartInstance", f"acs:ecs:*:{account}:photos/u-42/i")
    assert only_session.decision.kind is DecisionKind.IMPLICIT_DENY
    assert layers_of(only_session) == [(Layer.SESSION, Effect.ALLOW)]
    assert "role" in only_session.reason

    session_denies = world.decide(session, "oss:PutObject", f"{photos}/u-42/readonly/x")
    assert session_denies.decision.kind is DecisionKind.EXPLICIT_DENY
    assert (Layer.SESSION, Effect.DENY) in layers_of(session_denies)

    role_denies = world.decide(session, "oss:GetObject", f"{photos}/u-42/secret/x")
    assert role_denies.decision.kind is DecisionKind.EXPLICIT_DENY
    assert (Layer.ROLE, Effect.DENY) in layers_of(role_denies)

    neither = world.decide(session, "oss:DeleteObject", f"{photos}/u-42/a.jpg")
    assert not neither.allowed  # the role allows it, the session policy does not


def test_a_session_without_a_session_policy_has_the_role_layer_only(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSReadOnlyAccess",))
    session = world.session(world.assume(app, arn))
    assert session.subject is not None
    assert [layer.layer for layer in session.subject.layers] == [Layer.ROLE]
    read = world.decide(session, "oss:GetObject", f"acs:oss:*:{account}:b/1")
    assert read.allowed
    assert layers_of(read) == [(Layer.ROLE, Effect.ALLOW)]
    assert not world.decide(session, "oss:PutObject", f"acs:oss:*:{account}:b/1").allowed


def test_expired_credentials_are_refused_with_their_expiry(
    photo_session: tuple[World, str, IssuedSession],
) -> None:
    world, _, issued = photo_session
    world.session(issued, now=issued.expiration - timedelta(seconds=1))
    for after in (issued.expiration, issued.expiration + timedelta(minutes=5)):
        with pytest.raises(AuthenticationFailed, match="expired at"):
            world.session(issued, now=after)


def test_forged_or_altered_tokens_are_refused(
    photo_session: tuple[World, str, IssuedSession],
) -> None:
    """A later expiry, another key id, another signer, garbage: none verifies."""
    world, _, issued = photo_session
    key, secret, token = issued.access_key_id, issued.access_key_secret, issued.security_token
    version, key_id, prefix, random_part, expiry, signature = token.split(".")
    later = str(int(expiry) + 86_400)
    altered = ".".join([version, key_id, prefix, random_part, later, signature])
    forger = SessionTokenSigner("t1", {"t1": b"f" * 40})
    forged = forger.issue(key, issued.expiration + timedelta(days=1))
    unknown_key = SessionTokenSigner("zz", {"zz": b"z" * 40}).issue(key, issued.expiration)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    index = world.index
    for bad, reason in (
        (altered, "signature does not match"),
        (forged, "signature does not match"),
        (unknown_key, "unknown key"),
        (flipped, "signature does not match"),
        ("", "malformed"),
        ("v1.t1.garbage", "malformed"),
    ):
        with pytest.raises(AuthenticationFailed, match=reason):
            index.authenticate_session(key, secret, bad)
    # the genuine token still works
    assert index.authenticate_session(key, secret, token).arn == issued.arn


def test_a_wrong_secret_or_another_sessions_token_is_refused(
    photo_session: tuple[World, str, IssuedSession],
) -> None:
    world, account, issued = photo_session
    index = world.index
    with pytest.raises(AuthenticationFailed, match="secret does not match"):
        index.authenticate_session(issued.access_key_id, "x" * 30, issued.security_token)
    key = world.do("create_access_key", account, "app")
    user = index.authenticate(key.access_key_id, key.access_key_secret)
    other = world.assume(user, role_arn(account, "photos"), "other")
    with pytest.raises(AuthenticationFailed, match="another AccessKey"):
        index.authenticate_session(
            issued.access_key_id, issued.access_key_secret, other.security_token
        )
    with pytest.raises(AuthenticationFailed, match="secret does not match"):
        index.authenticate_session(
            other.access_key_id, issued.access_key_secret, other.security_token
        )
    # a session key is no AccessKey: the long-term path does not know it
    with pytest.raises(AuthenticationFailed):
        index.authenticate(issued.access_key_id, issued.access_key_secret)
    assert world.session(other).arn == assumed_role_arn(account, "photos", "other")
