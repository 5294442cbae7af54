"""Role sessions as of any instant (docs/design.md §3.3, §4): temporal index vs the live rule.

A scripted history of roles and STS sessions — a session policy, a chained session, a
cross-account session, a new default version of a role's policy, a revoked session, a role
whose policy is detached and which is then deleted and re-created under its name, a
``RoleSessionsRevoked`` horizon, a deleted source user — is written through the ledger on each
store. Then, at every ledger time of the history and one microsecond before it, and at each
session's expiration and one microsecond before it, ``AsOfReader.session_at`` must answer as a
brand-new ``DecisionIndex`` replayed up to that instant answers for
``DecisionIndex.session_subject``: the same verdict and reason, the same layers (policies and
versions), the same chain and the same decisions with the same explanations. The story's
turning points are also asserted by name, so a failure reads as what broke.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import assumed_role_arn, group_arn, role_arn, root_arn, user_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import DomainError
from mandate.domain.common.identifiers import account_aggregate_id
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.events import EVENT_CLASSES
from mandate.domain.ledger.application import IssuedKey, IssuedSession, Positioned
from mandate.domain.policy.decisions import Subject, decide
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind
from mandate.domain.sts.session_lineage import SessionInvalid
from mandate.domain.sts.sessions import session_aggregate_id
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.history.as_of import PrincipalAt
from mandate.projections.history.as_of_facts import AT_PAIRS_POSTGRES, AT_PAIRS_SQLITE, LATEST_AT
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.sql_projection import ProjectionWorker, open_copy
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary

WAIT = 10.0
ADMIN = AuditContext(actor="mandate:admin", request_id="req-temporal-sessions")
ASSUME = "AliyunSTSAssumeRoleAccess"
MICRO = timedelta(microseconds=1)


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def _trust(*principals: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def _document(*statements: tuple[str, list[str], str]) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": effect, "Action": actions, "Resource": resource}
            for effect, actions, resource in statements
        ],
    }


@dataclass
class Story:
    """The history, with the ledger time of each named turning point."""

    runtime: Runtime
    a: str = ""
    b: str = ""
    sessions: dict[str, IssuedSession] = field(default_factory=dict)
    labels: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    at: dict[str, datetime] = field(default_factory=dict)

    def do(
        self,
        command: Callable[[], Positioned],
        label: str | None = None,
        event: str | None = None,
        *,
        reason: str | None = None,
    ) -> Any:
        """Run a ledger command as the admin; answer once the live index has applied it.

        ``label`` names the instant of the command's first event, or of its ``event``;
        ``reason`` is the request's (recorded in each event's audit context).
        """
        before = self.runtime.head()
        audit = ADMIN if reason is None else dataclasses.replace(ADMIN, reason=reason)
        result = self.runtime.write(audit, command)
        if label is not None:
            self.labels[label] = (before, result.position, event)
        return result

    def user(self, account: str, name: str) -> Credential:
        ledger = self.runtime.ledger
        self.do(lambda: ledger.create_user(account, name, None))
        self.do(lambda: ledger.attach_policy(account, "user", name, "System", ASSUME))
        key: IssuedKey = self.do(lambda: ledger.create_access_key(account, name))
        return self.runtime.index.authenticate(key.access_key_id, key.access_key_secret)

    def assume(
        self, caller: Credential, account: str, role: str, name: str, **params: Any
    ) -> IssuedSession:
        assuming = self.runtime.index.assuming_caller(caller)
        arn = role_arn(account, role)
        issued: IssuedSession = self.do(
            lambda: self.runtime.ledger.assume_role(
                assuming, role_arn=arn, role_session_name=name, **params
            ),
            f"issued {name}",
        )
        self.sessions[name] = issued
        return issued

    def credential(self, name: str) -> Credential:
        issued = self.sessions[name]
        return self.runtime.index.authenticate_session(
            issued.access_key_id, issued.access_key_secret, issued.security_token
        )

    def key(self, name: str) -> str:
        return self.sessions[name].access_key_id

    def settle(self) -> None:
        """Let the temporal index reach the head; name each turning point's ledger time."""
        assert self.runtime.temporal.wait_for(self.runtime.head(), WAIT)
        log = _log(self.runtime)
        for label, (before, last, name) in self.labels.items():
            self.at[label] = next(
                moment
                for position, moment, e in log
                if before < position <= last and name in (None, type(e).__name__)
            )

    def session_at(self, name: str, at: datetime) -> tuple[PrincipalAt | None, str]:
        return self.runtime.as_of.session_at(self.key(name), at)

    def decision(self, name: str, at: datetime, action: str, resource: str) -> DecisionKind:
        found, why = self.session_at(name, at)
        assert found is not None, f"{name} at {at.isoformat()}: {why}"
        request = AccessRequest.make(action, resource, {"acs:currenttime": at})
        return self.runtime.as_of.decide(found, request).decision.kind


def _pause() -> None:
    """Let the clock move, so that instants taken on either side are strictly ordered."""
    time.sleep(0.02)


def _tell(story: Story) -> Story:
    ledger = story.runtime.ledger
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = b = story.do(lambda: ledger.open_account("Partner")).account_id
    app = story.user(a, "app")
    ops = story.user(a, "ops")
    photos = f"acs:oss:*:{a}:photos/*"
    story.do(
        lambda: ledger.create_policy(
            a,
            "photos",
            _document(
                ("Allow", ["oss:GetObject", "oss:PutObject"], photos),
                ("Deny", ["oss:DeleteObject"], photos),
            ),
        )
    )
    story.do(lambda: ledger.create_role(a, "uploader", _trust(app.arn)))
    story.do(lambda: ledger.attach_policy(a, "role", "uploader", "Custom", "photos"))
    story.do(lambda: ledger.attach_policy(a, "role", "uploader", "System", ASSUME))
    story.do(lambda: ledger.create_role(a, "reader", _trust(role_arn(a, "uploader"))))
    story.do(lambda: ledger.attach_policy(a, "role", "reader", "System", "AliyunOSSReadOnlyAccess"))
    story.do(lambda: ledger.create_role(a, "temp", _trust(app.arn)))
    story.do(lambda: ledger.attach_policy(a, "role", "temp", "System", "AliyunOSSFullAccess"))
    story.do(lambda: ledger.create_role(b, "partner", _trust(app.arn, ops.arn)))
    story.do(
        lambda: ledger.attach_policy(b, "role", "partner", "System", "AliyunOSSReadOnlyAccess")
    )

    session_policy = _document(
        ("Allow", ["oss:GetObject", "oss:PutObject"], f"acs:oss:*:{a}:photos/u-42/*")
    )
    story.assume(app, a, "uploader", "phone-42", duration_seconds=900, policy=session_policy)
    story.assume(app, a, "uploader", "plain")
    story.assume(story.credential("plain"), a, "reader", "child")
    story.assume(app, a, "temp", "temp")
    story.assume(app, b, "partner", "partner")
    story.assume(ops, b, "partner", "ops", duration_seconds=900)

    story.do(
        lambda: ledger.update_role(a, "uploader", description="phones", max_session_duration=7200)
    )
    story.do(
        lambda: ledger.update_role(
            a, "uploader", assume_role_policy_document=_trust(app.arn, ops.arn)
        )
    )
    narrower = _document(("Allow", ["oss:GetObject"], photos))
    story.do(
        lambda: ledger.create_policy_version(a, "photos", narrower, set_as_default=True),
        "photos v2",
    )
    story.do(lambda: ledger.revoke_session(story.key("phone-42")), "revoked phone-42")
    story.do(
        lambda: ledger.detach_policy(a, "role", "temp", "System", "AliyunOSSFullAccess"),
        "temp detached",
    )
    story.do(lambda: ledger.revoke_session(story.key("plain")), "revoked plain")
    story.assume(app, a, "uploader", "before-horizon")
    _pause()
    story.do(lambda: ledger.revoke_role_sessions(a, "uploader"), "horizon")
    _pause()
    story.assume(app, a, "uploader", "after-horizon", duration_seconds=900)
    story.do(lambda: ledger.delete_role(a, "temp", detach=True), "temp deleted")
    story.do(lambda: ledger.create_role(a, "temp", _trust(app.arn)), "temp re-created")
    story.do(lambda: ledger.attach_policy(a, "role", "temp", "System", "AliyunOSSFullAccess"))
    story.do(lambda: ledger.delete_user(a, "app", detach=True), "app deleted", "UserDeleted")
    story.settle()
    return story


@pytest.fixture
def story(runtime: Runtime) -> Story:
    return _tell(Story(runtime))


# --- the story's turning points ---------------------------------------------------------------


def test_a_session_allows_until_its_revocation_then_is_refused_naming_it(story: Story) -> None:
    a, revoked = story.a, story.at["revoked phone-42"]
    own = f"acs:oss:*:{a}:photos/u-42/a.jpg"
    before_v2 = story.at["photos v2"] - MICRO
    assert story.decision("phone-42", before_v2, "oss:PutObject", own) is DecisionKind.ALLOW
    # the session policy narrows the role: another user's folder is not its own
    other = f"acs:oss:*:{a}:photos/u-7/b.jpg"
    assert story.decision("phone-42", before_v2, "oss:PutObject", other) is (
        DecisionKind.IMPLICIT_DENY
    )
    # the role's policy got a narrower default version: the session follows it at once
    after_v2 = story.at["photos v2"]
    assert story.decision("phone-42", after_v2, "oss:PutObject", own) is (
        DecisionKind.IMPLICIT_DENY
    )
    assert story.decision("phone-42", revoked - MICRO, "oss:GetObject", own) is DecisionKind.ALLOW
    found, why = story.session_at("phone-42", revoked)
    assert found is None
    assert why == f"the session {story.key('phone-42')} was revoked"
    found, why = story.session_at("phone-42", story.at["app deleted"] + timedelta(seconds=1))
    assert found is None
    assert why == f"the session {story.key('phone-42')} was revoked"


def test_before_its_issue_a_session_did_not_exist(story: Story) -> None:
    issued = story.at["issued ops"]
    found, why = story.session_at("ops", issued - MICRO)
    assert found is None
    assert why == f"the session {story.key('ops')} did not exist then"
    found, _ = story.session_at("ops", issued)
    assert found is not None
    found, why = story.runtime.as_of.session_at("STS.unknown", issued)
    assert found is None
    assert why == "the session STS.unknown did not exist then"


def test_a_detached_role_policy_leaves_an_empty_layer_then_the_deleted_role_refuses(
    story: Story,
) -> None:
    a = story.a
    archive = f"acs:oss:*:{a}:archive/x"
    detached = story.at["temp detached"]
    assert story.decision("temp", detached - MICRO, "oss:GetObject", archive) is (
        DecisionKind.ALLOW
    )
    found, _ = story.session_at("temp", detached)
    assert found is not None
    assert [layer.policies for layer in found.subject.layers] == [()]
    answer = story.runtime.as_of.decide(found, AccessRequest.make("oss:GetObject", archive))
    assert answer.decision.kind is DecisionKind.IMPLICIT_DENY
    assert story.runtime.as_of.effective_permissions(found) == []
    deleted = story.at["temp deleted"]
    for at in (deleted, story.at["temp re-created"], story.at["app deleted"]):
        found, why = story.session_at("temp", at)
        assert found is None
        assert why == f"the session's role {role_arn(a, 'temp')} was deleted"  # not revived


def test_a_chained_session_keeps_its_parents_layers_and_dies_with_its_parent(
    story: Story,
) -> None:
    a = story.a
    before = story.at["revoked plain"] - MICRO
    found, _ = story.session_at("child", before)
    assert found is not None
    assert found.session is not None
    assert found.session.parent_access_key_id == story.key("plain")
    assert found.subject.chain == (
        user_arn(a, "app"),
        role_arn(a, "uploader"),
        assumed_role_arn(a, "uploader", "plain"),
        role_arn(a, "reader"),
        assumed_role_arn(a, "reader", "child"),
    )
    # photos/* is in both roles' layers; archive/ only in the reader's
    photo, archive = f"acs:oss:*:{a}:photos/u-1/p.jpg", f"acs:oss:*:{a}:archive/x"
    assert story.decision("child", before, "oss:GetObject", photo) is DecisionKind.ALLOW
    assert story.decision("child", before, "oss:GetObject", archive) is (DecisionKind.IMPLICIT_DENY)
    permissions = [p.as_dict() for p in story.runtime.as_of.effective_permissions(found)]
    assert [(p["layer"], p["policy_name"], p["via"]) for p in permissions] == [
        ("role", "photos", role_arn(a, "uploader")),
        ("role", ASSUME, role_arn(a, "uploader")),
        ("role", "AliyunOSSReadOnlyAccess", role_arn(a, "reader")),
    ]
    assert {"policy_type", "policy_name", "version", "via", "statement_index", "statement"} <= set(
        permissions[0]
    )
    assert permissions[0]["version"] == "v2"
    found, why = story.session_at("child", story.at["revoked plain"])
    assert found is None
    plain = story.key("plain")
    assert why == (
        f"its parent session {plain} is no longer valid: the session {plain} was revoked"
    )


def test_the_roles_revocation_horizon_ends_only_older_sessions(story: Story) -> None:
    horizon = story.at["horizon"]
    found, _ = story.session_at("before-horizon", horizon - MICRO)
    assert found is not None
    found, why = story.session_at("before-horizon", horizon)
    assert found is None
    assert why.startswith(f"the sessions of role {role_arn(story.a, 'uploader')} issued before ")
    assert why.endswith(" were revoked")
    found, _ = story.session_at("after-horizon", story.at["issued after-horizon"])
    assert found is not None


def test_sessions_die_with_their_source_user_and_then_expire(story: Story) -> None:
    deleted = story.at["app deleted"]
    for name in ("after-horizon", "partner"):
        found, _ = story.session_at(name, deleted - MICRO)
        assert found is not None, name
        found, why = story.session_at(name, deleted)
        assert found is None
        assert why == f"the session's source user {user_arn(story.a, 'app')} was deleted"
    # a cross-account session acts in its role's account only
    partner_bucket = f"acs:oss:*:{story.b}:bucket/x"
    assert story.decision("partner", deleted - MICRO, "oss:GetObject", partner_bucket) is (
        DecisionKind.ALLOW
    )
    # past its expiration a session is refused for that (checked before the other links)
    expiration = story.sessions["after-horizon"].expiration
    found, why = story.session_at("after-horizon", expiration)
    assert found is None
    assert why.startswith("the session expired at ")
    # a session nothing ended lives until its expiration, and not a microsecond longer
    expiration = story.sessions["ops"].expiration
    assert story.decision("ops", expiration - MICRO, "oss:GetObject", partner_bucket) is (
        DecisionKind.ALLOW
    )
    found, why = story.session_at("ops", expiration)
    assert found is None
    assert why.startswith("the session expired at ")


def test_a_session_policy_is_a_layer_of_its_own(story: Story) -> None:
    found, _ = story.session_at("phone-42", story.at["issued phone-42"])
    assert found is not None
    permissions = [p.as_dict() for p in story.runtime.as_of.effective_permissions(found)]
    assert [(p["layer"], p["policy_type"], p["policy_name"]) for p in permissions] == [
        ("role", "Custom", "photos"),
        ("role", "Custom", "photos"),
        ("role", "System", ASSUME),
        ("session", "Inline", "SessionPolicy"),
    ]
    assert [p["statement_index"] for p in permissions] == [0, 1, 0, 0]


def test_a_sessions_record_is_known_whenever_it_was_issued(story: Story) -> None:
    reader = story.runtime.as_of
    record = reader.session_record(story.key("child"))
    assert record is not None
    assert record.parent_access_key_id == story.key("plain")
    assert record.account_id == story.a
    assert record.expiration == story.sessions["child"].expiration
    revoked = reader.session_record(story.key("phone-42"))
    assert revoked is not None
    assert revoked.session_policy is not None
    assert reader.session_record("STS.unknown") is None


def test_principal_for_arn_refuses_groups_roles_and_session_arns_clearly(story: Story) -> None:
    a, at = story.a, story.at["app deleted"]
    reader = story.runtime.as_of
    found, why = reader.principal_for_arn(group_arn(a, "g"), at)
    assert found is None
    assert "group does not act itself" in why
    found, why = reader.principal_for_arn(role_arn(a, "uploader"), at)
    assert found is None
    assert "role does not act itself" in why
    found, why = reader.principal_for_arn(assumed_role_arn(a, "partner", "ops"), at)
    assert found is None
    assert "AccessKey id" in why
    found, _ = reader.principal_for_arn(user_arn(a, "ops"), at)
    assert found is not None
    assert found.session is None
    assert not found.is_root
    root, _ = reader.principal_for_arn(root_arn(a), at)
    assert root is not None
    assert root.is_root


# --- as of every instant, as the live rule replayed to it ---------------------------------------


def _requests(a: str, b: str) -> list[AccessRequest]:
    oss = f"acs:oss:*:{a}"
    return [
        AccessRequest.make("oss:GetObject", f"{oss}:photos/u-42/a.jpg"),
        AccessRequest.make("oss:PutObject", f"{oss}:photos/u-42/a.jpg"),
        AccessRequest.make("oss:PutObject", f"{oss}:photos/u-7/b.jpg"),
        AccessRequest.make("oss:DeleteObject", f"{oss}:photos/u-42/a.jpg"),
        AccessRequest.make("oss:GetObject", f"{oss}:archive/x"),
        AccessRequest.make("oss:ListObjects", f"{oss}:bucket"),
        AccessRequest.make("ecs:StartInstance", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("sts:AssumeRole", role_arn(a, "reader")),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{b}:bucket/x"),
    ]


def _layers(subject: Subject) -> list[list[object]]:
    return [[policy.source for policy in layer.policies] for layer in subject.layers]


def _expected(oracle: DecisionIndex, key: str, at: datetime) -> Subject | str:
    try:
        return oracle.session_subject(key, at)[0]
    except SessionInvalid as dead:
        return str(dead)


def _assert_sessions_as_of_equal_the_replayed_rule(
    story: Story,
    requests: list[AccessRequest] | None = None,
    moments: Iterable[datetime] = (),
) -> int:
    """Compare every session of the story at every ledger time and one microsecond before
    it, and at each session's expiration and each of ``moments`` and one microsecond before
    (a contract's start or end: no event happens then)."""
    runtime = story.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    if requests is None:
        requests = _requests(story.a, story.b)
    bounds = {*(s.expiration for s in story.sessions.values()), *moments}
    instants = sorted({*_instants(log), *bounds, *(e - MICRO for e in bounds)})
    compared = 0
    for at in instants:
        oracle = _oracle(runtime, log, at)
        for name, issued in story.sessions.items():
            key = issued.access_key_id
            where = f"{name} at {at.isoformat()}"
            expected = _expected(oracle, key, at)
            found, why = runtime.as_of.session_at(key, at)
            if isinstance(expected, str):
                assert found is None, where
                if key in oracle.sessions:
                    assert why == expected, where
                else:
                    assert why == f"the session {key} did not exist then", where
                compared += 1
                continue
            assert found is not None, f"{where}: {why}"
            assert found.subject.chain == expected.chain, where
            assert _layers(found.subject) == _layers(expected), where
            for request in requests:
                timed = AccessRequest.make(
                    request.action, request.resource, {"acs:currenttime": at}
                )
                want = _summary(decide(expected, timed))
                got = _summary(runtime.as_of.decide(found, timed))
                assert got == want, f"{where}: {request.action} {request.resource}"
                compared += 1
    return compared


def test_sessions_as_of_every_instant_equal_the_live_rule_replayed_to_it(story: Story) -> None:
    compared = _assert_sessions_as_of_equal_the_replayed_rule(story)
    assert compared > 1_000


def test_a_closed_account_ends_its_roles_sessions_and_those_it_is_the_source_of(
    runtime: Runtime,
) -> None:
    story = Story(runtime)
    ledger = runtime.ledger
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = b = story.do(lambda: ledger.open_account("Partner")).account_id
    ops = story.user(a, "ops")
    story.do(lambda: ledger.create_role(a, "own", _trust(ops.arn)))
    story.do(lambda: ledger.attach_policy(a, "role", "own", "System", "AliyunOSSReadOnlyAccess"))
    story.do(lambda: ledger.create_role(b, "partner", _trust(ops.arn)))
    story.do(lambda: ledger.create_role(b, "peer", _trust(role_arn(b, "partner"))))
    story.do(lambda: ledger.attach_policy(b, "role", "partner", "System", ASSUME))
    story.assume(ops, a, "own", "own")
    story.assume(ops, b, "partner", "partner")
    story.assume(story.credential("partner"), b, "peer", "peer")
    story.do(lambda: ledger.close_account(a), "a closed")
    story.settle()
    closed = story.at["a closed"]
    for name, why in (
        ("own", f"the role's account {a} is closed"),
        ("partner", f"the source account {a} is closed"),
        (
            "peer",
            f"its parent session {story.key('partner')} is no longer valid: "
            f"the source account {a} is closed",
        ),
    ):
        found, _ = story.session_at(name, closed - MICRO)
        assert found is not None, name
        found, reason = story.session_at(name, closed)
        assert found is None
        assert reason == why
    assert _assert_sessions_as_of_equal_the_replayed_rule(story) > 100


# --- what the table holds, and how it is read ---------------------------------------------------


def test_no_secret_hash_enters_the_temporal_index_and_closed_sessions_mean_revoked(
    story: Story,
) -> None:
    store = story.runtime.temporal.store
    rows = store.query("SELECT kind, subject, payload, valid_to FROM {p}_facts")
    text = "\n".join(str(dict(row)) for row in rows)
    hashes = [
        event.secret_hash
        for _, _, event in _log(story.runtime)
        if getattr(event, "secret_hash", None) is not None
    ]
    assert len(hashes) > len(story.sessions)  # the sessions' and the AccessKeys'
    for secret_hash in hashes:
        assert secret_hash not in text
    for issued in story.sessions.values():
        assert issued.access_key_secret not in text
    sessions = {row["subject"]: row for row in rows if row["kind"] == "session"}
    assert set(sessions) == {s.access_key_id for s in story.sessions.values()}
    revoked = {story.key("phone-42"), story.key("plain")}
    assert {key for key, row in sessions.items() if row["valid_to"] is not None} == revoked
    payload = json.loads(sessions[story.key("child")]["payload"])
    assert "secret_hash" not in payload
    assert payload["parent_access_key_id"] == story.key("plain")
    assert payload["expiration"] == to_micros(story.sessions["child"].expiration)
    uploader = [
        (row["valid_to"], json.loads(row["payload"]))
        for row in rows
        if row["kind"] == "role" and json.loads(row["payload"])["description"] == "phones"
    ]
    assert len(uploader) == 3  # updated, trust replaced, sessions revoked
    last = next(payload for valid_to, payload in uploader if valid_to is None)
    assert last["max_session_duration"] == 7200
    assert user_arn(story.a, "ops") in last["trust_policy"]
    assert last["sessions_revoked_before"] is not None
    assert last["sessions_revoked_before"] <= to_micros(story.at["horizon"])


def test_only_one_fact_of_a_kind_is_alive_per_subject_at_any_instant(story: Story) -> None:
    rows = story.runtime.temporal.store.query(
        "SELECT kind, subject, valid_from, valid_to FROM {p}_facts"
    )
    by_subject: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    for row in rows:
        if row["kind"] == "policy_version":
            continue  # a policy has several versions at once: one fact per (policy, version)
        by_subject.setdefault((row["kind"], row["subject"]), []).append(
            (int(row["valid_from"]), row["valid_to"])
        )
    for key, intervals in by_subject.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert end is not None, key
            assert end <= start, key
    assert any(kind == "role" and len(v) > 2 for (kind, _), v in by_subject.items())


def _plan(store: ReadModelStore, statement: str, params: tuple[Any, ...]) -> str:
    with store.transaction(commit=False) as cursor:
        if store.dialect.is_postgres:
            cursor.execute("SET LOCAL enable_seqscan = off")
            rows = store.execute(cursor, "EXPLAIN " + statement, params).fetchall()
            return "\n".join(str(next(iter(dict(row).values()))) for row in rows)
        rows = store.execute(cursor, "EXPLAIN QUERY PLAN " + statement, params).fetchall()
        return "\n".join(str(dict(row)["detail"]) for row in rows)


def _assert_index_driven(store: ReadModelStore, plan: str) -> None:
    if store.dialect.is_postgres:
        assert "Index" in plan, plan
        assert "Sort" not in plan, plan
        assert "Seq Scan on" not in plan.replace('Seq Scan on "*VALUES*"', ""), plan
    else:
        facts = [line for line in plan.splitlines() if "_facts" in line]
        assert facts, plan
        assert all(line.startswith("SEARCH") for line in facts), plan
        assert "TEMP B-TREE" not in plan, plan


def test_the_lineage_lookups_take_one_index_step_per_link(story: Story) -> None:
    store = story.runtime.temporal.store
    template = AT_PAIRS_POSTGRES if store.dialect.is_postgres else AT_PAIRS_SQLITE
    pairs = template.replace("{values}", "(?, ?), (?, ?), (?, ?)")
    params = ("account", "a", "role", "r", "attachments", "r", 1, 1)
    _assert_index_driven(store, _plan(store, pairs, params))
    _assert_index_driven(store, _plan(store, LATEST_AT, ("session", "STS.x", 1)))
    # and a session's verdict costs a handful of statements, not a walk through history
    statements: list[str] = []
    original = store.execute

    def counting(cursor: Any, statement: str, params: Any = ()) -> Any:
        statements.append(statement)
        return original(cursor, statement, params)

    store.execute = counting  # type: ignore[method-assign]
    try:
        found, _ = story.session_at("partner", story.at["app deleted"] - MICRO)
        first_generation = len(statements)
        statements.clear()
        child, _ = story.session_at("child", story.at["revoked plain"] - MICRO)
        chained = len(statements)
    finally:
        del store.execute  # the class's method again
    assert found is not None
    assert child is not None
    assert first_generation <= 4, first_generation
    assert chained <= 8, chained


# --- the projection's memory of sessions --------------------------------------------------------


def _event(topic: str, **fields: Any) -> Any:
    """An event of the catalogue's class for ``topic`` (the projection dispatches by class)
    holding only ``fields``, which is all the projection reads."""
    made = object.__new__(EVENT_CLASSES[topic])
    for name, value in fields.items():
        object.__setattr__(made, name, value)
    return made


def _session_events(start: datetime) -> list[tuple[Any, datetime]]:
    """An account, a role, and sessions: one expires and is revoked long after; one is not."""
    account, role_id = "1234567890123456", uuid4()

    def issued(key: str, at: datetime, seconds: int) -> Any:
        return _event(
            "mandate:SessionIssued.v1",
            originator_id=session_aggregate_id(key),
            access_key_id=key,
            secret_hash="never-stored",
            account_id=account,
            role_id=role_id,
            role_name="r",
            role_session_name=key.lower(),
            source_arn=user_arn(account, "u"),
            source_account_id=account,
            source_user_id=UUID(int=1),
            parent_access_key_id=None,
            session_policy=None,
            issued_at=at,
            expiration=at + timedelta(seconds=seconds),
        )

    def revoked(key: str) -> Any:
        return _event("mandate:SessionRevoked.v1", originator_id=session_aggregate_id(key))

    hour = timedelta(hours=1)
    return [
        (
            _event(
                "mandate:AccountOpened.v1",
                originator_id=account_aggregate_id(account),
                account_id=account,
                name="Acme",
                root_access_key_id="LTAIroot",
            ),
            start,
        ),
        (
            _event(
                "mandate:RoleCreated.v1",
                originator_id=role_id,
                account_id=account,
                role_name="r",
                description=None,
                trust_policy="{}",
                max_session_duration=3600,
            ),
            start,
        ),
        (issued("STS.old", start, 900), start),
        (issued("STS.young", start + 3 * hour, 900), start + 3 * hour),
        # long after STS.old expired: its revocation changes nothing and is not recorded
        (revoked("STS.old"), start + 3 * hour),
        (revoked("STS.young"), start + 3 * hour + timedelta(minutes=5)),
    ]


def _apply_all(
    store: ReadModelStore, projection: TemporalIndexProjection, events: list[tuple[Any, datetime]]
) -> None:
    with store.transaction(commit=True) as cursor:
        for position, (event, at) in enumerate(events, start=1):
            projection.apply(event, position, at)
        projection.flush(store, cursor)
        store.execute(
            cursor,
            "INSERT INTO {p}_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            ("ledger_time", events[-1][1].isoformat()),
        )


def test_expired_sessions_are_forgotten_the_same_way_after_a_restart(runtime: Runtime) -> None:
    """A long-expired session leaves the projection's memory; a projection loaded from its
    table in between writes exactly what one that never stopped writes."""
    start = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    events = _session_events(start)
    env = runtime.store.env
    straight = open_copy(env, TemporalIndexProjection(), 21, create=True)
    resumed = open_copy(env, TemporalIndexProjection(), 22, create=True)
    try:
        projection = TemporalIndexProjection()
        _apply_all(straight, projection, events)
        assert ("session", "STS.old", "sts.old") not in projection._open
        first = TemporalIndexProjection()
        _apply_all(resumed, first, events[:3])
        second = TemporalIndexProjection()
        with resumed.transaction(commit=False) as cursor:
            second.load(resumed, cursor)
        assert ("session", "STS.old", "sts.old") in second._open  # not yet past the horizon
        with resumed.transaction(commit=True) as cursor:
            for position, (event, at) in enumerate(events[3:], start=4):
                second.apply(event, position, at)
            second.flush(resumed, cursor)
        dumps = []
        for store in (straight, resumed):
            rows = store.query(
                "SELECT kind, subject, payload, valid_from, valid_to FROM {p}_facts"
                " ORDER BY kind, subject, valid_from"
            )
            dumps.append([tuple(dict(row).values()) for row in rows])
        assert dumps[0] == dumps[1]
        closed = {row[1]: row[4] for row in dumps[0] if row[0] == "session"}
        assert closed["STS.old"] is None  # expired long before: the revocation is not recorded
        assert closed["STS.young"] is not None
        assert "never-stored" not in str(dumps[0])
        # a projection loading long after does not even read the long-expired session
        third = TemporalIndexProjection()
        with resumed.transaction(commit=True) as cursor:
            later = start + timedelta(days=3)
            resumed.execute(
                cursor,
                "UPDATE {p}_state SET value = ? WHERE key = ?",
                (later.isoformat(), "ledger_time"),
            )
            third.load(resumed, cursor)
        assert not any(key[0] == "session" for key in third._open)
    finally:
        straight.drop()
        resumed.drop()


def test_a_worker_resumed_midway_equals_a_clean_rebuild_with_sessions(story: Story) -> None:
    runtime = story.runtime
    head = runtime.head()
    env = runtime.store.env
    halted = open_copy(env, TemporalIndexProjection(), 23, create=True)
    clean = open_copy(env, TemporalIndexProjection(), 24, create=True)
    try:
        first = ProjectionWorker(runtime.ledger, halted, TemporalIndexProjection(), batch_size=7)
        for _ in range(5):
            first.run_batch()
        resumed = ProjectionWorker(runtime.ledger, halted, TemporalIndexProjection())
        assert resumed.catch_up() == head
        assert ProjectionWorker(runtime.ledger, clean, TemporalIndexProjection()).catch_up() == (
            head
        )
        query = "SELECT * FROM {p}_facts ORDER BY kind, subject, valid_from, opened_position"
        assert [tuple(dict(r).values()) for r in halted.query(query)] == [
            tuple(dict(r).values()) for r in clean.query(query)
        ]
    finally:
        halted.drop()
        clean.drop()


# --- generated histories ------------------------------------------------------------------------

ROLES = ("r0", "r1")
SOURCES = ("app", "ops")
ROLE_POLICIES = (("System", "AliyunOSSFullAccess"), ("System", ASSUME), ("Custom", "p"))

_assume = st.tuples(st.just("assume"), st.sampled_from(SOURCES), st.sampled_from(ROLES))
_chain = st.tuples(st.just("chain"), st.integers(0, 20), st.sampled_from(ROLES))
_generated_steps = st.one_of(
    _assume,
    _assume,
    _chain,
    _chain,
    st.tuples(st.just("revoke"), st.integers(0, 20)),
    st.tuples(st.just("horizon"), st.sampled_from(ROLES)),
    st.tuples(
        st.sampled_from(("attach", "detach")),
        st.sampled_from(ROLES),
        st.sampled_from(ROLE_POLICIES),
    ),
    st.tuples(st.just("recreate_role"), st.sampled_from(ROLES)),
    st.tuples(st.just("recreate_user"), st.sampled_from(SOURCES)),
    st.tuples(st.just("new_version"), st.booleans()),
)


@dataclass
class _Generated:
    story: Story
    users: dict[str, Credential]
    documents: list[dict[str, Any]]
    trust: dict[str, Any]

    def create_role(self, role: str) -> None:
        ledger, a = self.story.runtime.ledger, self.story.a
        self.story.do(lambda: ledger.create_role(a, role, self.trust))
        self.story.do(lambda: ledger.attach_policy(a, "role", role, "System", ASSUME))

    def step(self, step: tuple[Any, ...], name: str) -> None:
        story, ledger, a = self.story, self.story.runtime.ledger, self.story.a
        names = list(story.sessions)
        match step:
            case ("assume", source, role):
                story.assume(self.users[source], a, role, name)
            case ("chain", which, role) if names:
                story.assume(story.credential(names[which % len(names)]), a, role, name)
            case ("revoke", which) if names:
                key = story.key(names[which % len(names)])
                story.do(lambda: ledger.revoke_session(key))
            case ("horizon", role):
                story.do(lambda: ledger.revoke_role_sessions(a, role))
            case ("attach" | "detach" as verb, role, (policy_type, policy_name)):
                command = ledger.attach_policy if verb == "attach" else ledger.detach_policy
                story.do(lambda: command(a, "role", role, policy_type, policy_name))
            case ("recreate_role", role):
                story.do(lambda: ledger.delete_role(a, role, detach=True))
                self.create_role(role)
            case ("recreate_user", source):
                story.do(lambda: ledger.delete_user(a, source, detach=True))
                self.users[source] = story.user(a, source)
            case ("new_version", second):
                document = self.documents[1 if second else 0]
                story.do(
                    lambda: ledger.create_policy_version(a, "p", document, set_as_default=True)
                )
            case _:
                pass  # nothing to chain from or to revoke yet


def _generated_story(runtime: Runtime, steps: list[tuple[Any, ...]]) -> Story:
    story = Story(runtime)
    ledger = runtime.ledger
    story.a = story.b = a = story.do(lambda: ledger.open_account("Acme")).account_id
    users = {name: story.user(a, name) for name in SOURCES}
    names = [*(user_arn(a, name) for name in SOURCES), *(role_arn(a, r) for r in ROLES)]
    documents = [
        _document(("Allow", ["oss:GetObject"], f"acs:oss:*:{a}:photos/*")),
        _document(
            ("Allow", ["oss:*"], f"acs:oss:*:{a}:*"),
            ("Deny", ["oss:PutObject"], f"acs:oss:*:{a}:photos/*"),
        ),
    ]
    story.do(lambda: ledger.create_policy(a, "p", documents[0]))
    generated = _Generated(story, users, documents, _trust(*names))
    for role in ROLES:
        generated.create_role(role)
    # a session and a chained one to start from; the generated steps go on from there
    for number, step in enumerate([("assume", "app", "r0"), ("chain", 0, "r1"), *steps]):
        with contextlib.suppress(DomainError, AuthenticationFailed):  # refused: nothing written
            generated.step(step, f"s{number}")
        _pause_briefly()
    story.settle()
    return story


def _pause_briefly() -> None:
    time.sleep(0.002)


def _generated_history_answers_as_the_replayed_rule(url: str, steps: list[Any]) -> None:
    with running(url) as runtime:
        story = _generated_story(runtime, steps)
        compared = _assert_sessions_as_of_equal_the_replayed_rule(story)
        records = [runtime.index.sessions[s.access_key_id].record for s in story.sessions.values()]
        chained = sum(1 for record in records if record.parent_access_key_id is not None)
        event(f"chained sessions: {min(chained, 2)}+")
        event(f"sessions issued: {min(len(story.sessions), 5)}+")
        event(f"comparisons: {'0' if not compared else '1-499' if compared < 500 else '500+'}")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_generated_steps, min_size=4, max_size=20))
def test_generated_role_and_session_histories_answer_as_the_replayed_rule_on_sqlite(
    steps: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-temporal-sessions-") as directory:
        url = f"sqlite:///{Path(directory) / 'mandate.db'}"
        _generated_history_answers_as_the_replayed_rule(url, steps)


@pytest.mark.postgres
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_generated_steps, min_size=4, max_size=20))
def test_generated_role_and_session_histories_answer_as_the_replayed_rule_on_postgres(
    postgres_dsn: str, steps: list[tuple[Any, ...]]
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated_history_answers_as_the_replayed_rule(url, steps)
