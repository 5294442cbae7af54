"""AssumeRole's rules, without a store (docs/design.md §2, §3.3): parameters, trust, and the plan.

``check_parameters`` is RAM's parameter validation (with RAM's error codes), ``trust_admits``
reads a role's trust policy for one caller, and ``plan_session`` puts the checks in RAM's
order — the caller's own permission before anything about the role is revealed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from mandate.domain.common.arns import assumed_role_arn, role_arn, root_arn, user_arn
from mandate.domain.common.errors import InvalidInput, NotFound, NotPermitted
from mandate.domain.policy.decisions import Subject, SubjectKind
from mandate.domain.policy.document import DocumentKind, PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import Layer, PolicySet, PolicySource, compile_policy
from mandate.domain.sts.assume_role import (
    MAX_SESSION_POLICY_CHARS,
    AssumingCaller,
    ParentSession,
    RoleFacts,
    SessionPlan,
    check_parameters,
    plan_session,
    trust_admits,
)

A = "1837465920374651"  # the role's account
B = "2938475610293847"  # a partner account
C = "3049586721304958"  # an unrelated account
NOW = datetime(2026, 11, 28, 2, 41, 7, 654321, tzinfo=UTC)
ROLE_ARN = role_arn(A, "uploader")
GET_PHOTOS = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{A}:photos/*"}


# --- builders --------------------------------------------------------------------------------


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def layer(kind: Layer, *statements: dict[str, Any], via: str | None = None) -> PolicySet:
    compiled = compile_policy(
        parse_policy_document(document(*statements)),
        PolicySource(kind, "Custom", f"{kind.value}-policy", "v1", via),
    )
    return PolicySet.of([compiled], kind)


ASSUME_ANY = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}


def user(account: str = B, name: str = "app", *statements: dict[str, Any]) -> AssumingCaller:
    """A RAM user of ``account``; by default allowed ``sts:AssumeRole`` on every role."""
    identity = layer(Layer.IDENTITY, *(statements or (ASSUME_ANY,)))
    subject = Subject(account, user_arn(account, name), SubjectKind.USER, identity=identity)
    return AssumingCaller(subject, uuid4())


def session(
    account: str = A,
    role_name: str = "reader",
    *,
    expiration: datetime = NOW + timedelta(hours=1),
    session_statements: tuple[dict[str, Any], ...] | None = None,
) -> AssumingCaller:
    """A session of ``account``'s role ``role_name``, whose role may assume any role."""
    arn = assumed_role_arn(account, role_name, "s1")
    layers = [layer(Layer.ROLE, ASSUME_ANY, via=role_arn(account, role_name))]
    if session_statements is not None:
        layers.append(layer(Layer.SESSION, *session_statements))
    subject = Subject(account, arn, SubjectKind.SESSION, layers=tuple(layers))
    parent = ParentSession("STS.parent0000000000000", role_arn(account, role_name), expiration)
    return AssumingCaller(subject, uuid4(), parent)


def root(account: str = A) -> AssumingCaller:
    return AssumingCaller(Subject(account, root_arn(account), SubjectKind.ROOT), None)


def trust(*statements: dict[str, Any]) -> PolicyDocument:
    return parse_policy_document(document(*statements), kind=DocumentKind.TRUST)


def trusting(*names: str, effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": "sts:AssumeRole",
        "Principal": {"RAM": list(names)},
        **extra,
    }


def role(
    trust_policy: PolicyDocument | None = None,
    *,
    account: str = A,
    name: str = "uploader",
    max_session_duration: int = 3_600,
) -> RoleFacts:
    policy = trust_policy if trust_policy is not None else trust(trusting(B, root_arn(A)))
    return RoleFacts(uuid4(), account, name, policy, max_session_duration)


def plan(
    caller: AssumingCaller,
    target: RoleFacts | None,
    *,
    arn: str = ROLE_ARN,
    duration: int = 3_600,
    context: dict[str, Any] | None = None,
) -> SessionPlan:
    return plan_session(
        caller,
        target,
        role_arn_text=arn,
        role_session_name="phone-42",
        duration_seconds=duration,
        session_policy=None,
        context=context or {},
        now=NOW,
    )


def faults(error: InvalidInput) -> dict[str, str]:
    return {e.field: e.reason for e in error.errors}


# --- check_parameters ------------------------------------------------------------------------


def test_valid_parameters_come_back_checked_with_the_default_duration() -> None:
    """Without duration_seconds the session lasts 3,600 s; without a policy there is none."""
    assert check_parameters(ROLE_ARN, "phone-42", None, None) == (
        ROLE_ARN,
        "phone-42",
        3_600,
        None,
    )


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 64, "user@example.com", "A.b_c-d@9", "--", ".."],
)
def test_a_session_name_is_two_to_sixty_four_of_the_allowed_characters(name: str) -> None:
    """Letters, digits and . @ _ - from 2 to 64 characters are a valid RoleSessionName."""
    assert check_parameters(ROLE_ARN, name, None, None)[1] == name


@pytest.mark.parametrize(
    "name",
    ["", "a", "a" * 65, "a b", "a/b", "a:b", "ab\n", "\u00e9\u00e9", "ab*", None, 42, ["ab"]],
)
def test_a_bad_session_name_is_refused_with_its_code(name: object) -> None:
    """Too short, too long, another character (a trailing newline too) or not text: refused."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters(ROLE_ARN, name, None, None)
    assert raised.value.code == "InvalidParameter.RoleSessionName"
    assert list(faults(raised.value)) == ["role_session_name"]


@pytest.mark.parametrize("duration", [900, 901, 3_600, 43_199, 43_200])
def test_a_duration_from_900_to_43200_seconds_is_accepted(duration: int) -> None:
    """Both bounds are inclusive."""
    assert check_parameters(ROLE_ARN, "ab", duration, None)[2] == duration


@pytest.mark.parametrize("duration", [899, 43_201, 0, -3_600, True, False, 3_600.0, "3600"])
def test_a_duration_out_of_range_or_not_an_integer_is_refused(duration: object) -> None:
    """899 and 43,201 are out of range; booleans, floats and strings are not integers."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters(ROLE_ARN, "ab", duration, None)
    assert raised.value.code == "InvalidParameter.DurationSeconds"
    assert list(faults(raised.value)) == ["duration_seconds"]


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "uploader",
        user_arn(A, "app"),
        root_arn(A),
        assumed_role_arn(A, "uploader", "s1"),
        f"acs:ram::{A}:group/ops",
        "acs:ram::183746592037465:role/uploader",  # 15 digits
        f"acs:ram::{A}:role/",
        f"acs:ram::{A}:role/a b",
        f"ACS:ram::{A}:role/uploader",
        None,
        42,
    ],
)
def test_anything_but_a_role_arn_is_refused_as_role_arn(arn: object) -> None:
    """A user, root, group or session ARN, a malformed ARN or not text: InvalidParameter.RoleArn."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters(arn, "ab", None, None)
    assert raised.value.code == "InvalidParameter.RoleArn"
    assert list(faults(raised.value)) == ["role_arn"]


def test_every_fault_is_reported_at_once_under_the_first_faults_code() -> None:
    """A bad ARN, name, duration and policy are four faults; the code is the ARN's."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters("nope", "a", 899, {"Version": "2", "Statement": [GET_PHOTOS]})
    assert raised.value.code == "InvalidParameter.RoleArn"
    assert set(faults(raised.value)) == {
        "role_arn",
        "role_session_name",
        "duration_seconds",
        "policy.Version",
    }


def test_a_session_policy_comes_back_as_canonical_json_from_text_or_object() -> None:
    """An object and its JSON text give the same canonical text, which parses to the same."""
    as_object = document(GET_PHOTOS)
    from_object = check_parameters(ROLE_ARN, "ab", None, as_object)[3]
    from_text = check_parameters(ROLE_ARN, "ab", None, json.dumps(as_object, indent=2))[3]
    assert from_object == from_text
    assert from_object is not None
    assert json.loads(from_object) == as_object
    assert parse_policy_document(from_object).canonical_json() == from_object


def test_a_session_policy_over_2048_characters_is_refused() -> None:
    """The limit is 2,048 characters (not the 6,144 of a custom policy), as text or object."""
    statement = {**GET_PHOTOS, "Resource": f"acs:oss:*:{A}:photos/" + "x" * 1_900}
    text = json.dumps(document(statement))
    padded = text + " " * (MAX_SESSION_POLICY_CHARS - len(text))
    assert check_parameters(ROLE_ARN, "ab", None, padded)[3] is not None
    for too_long in (padded + " ", document(statement, statement)):
        with pytest.raises(InvalidInput) as raised:
            check_parameters(ROLE_ARN, "ab", None, too_long)
        assert raised.value.code == "InvalidParameter.Policy"
        assert list(faults(raised.value)) == ["policy"]
        assert "2048" in faults(raised.value)["policy"]


@pytest.mark.parametrize(
    ("policy", "path"),
    [
        (document(GET_PHOTOS, {**GET_PHOTOS, "Effect": "Maybe"}), "policy.Statement[1].Effect"),
        (
            document({**GET_PHOTOS, "Condition": {"IpAddress": {"acs:SourceIp": "not-an-ip"}}}),
            "policy.Statement[0].Condition.IpAddress",
        ),
        (document({"Effect": "Allow", "Action": "oss:GetObject"}), "policy.Statement[0].Resource"),
        (
            document(trusting(root_arn(A)) | {"Resource": "*"}),
            "policy.Statement[0].Principal",
        ),
        ('{"Version": "1", "Statement": [', "policy"),
        ({"Version": "1", "Statement": []}, "policy.Statement"),
    ],
)
def test_a_malformed_session_policy_names_the_json_path_under_policy(
    policy: object, path: str
) -> None:
    """Each fault of the document is reported at its zero-based path, prefixed ``policy``."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters(ROLE_ARN, "ab", None, policy)
    assert raised.value.code == "InvalidParameter.Policy"
    assert any(field.startswith(path) for field in faults(raised.value)), faults(raised.value)
    assert all(field.startswith("policy") for field in faults(raised.value))


@pytest.mark.parametrize("policy", [42, ["Statement"], True, b"{}"])
def test_a_session_policy_that_is_not_a_document_is_refused(policy: object) -> None:
    """Only an object or its JSON text can be a policy."""
    with pytest.raises(InvalidInput) as raised:
        check_parameters(ROLE_ARN, "ab", None, policy)
    assert raised.value.code == "InvalidParameter.Policy"
    assert list(faults(raised.value)) == ["policy"]


# --- trust_admits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [user_arn(B, "app"), root_arn(B), B, f"acs:ram::{B}:user/*", f"acs:ram::{B}:*"],
    ids=["user-arn", "account-root", "account-id", "user-wildcard", "account-wildcard"],
)
def test_a_trust_naming_the_user_or_its_account_admits_the_user(name: str) -> None:
    """The user's ARN, its account's root ARN or bare id (or a matching pattern) admit it."""
    admitted, why = trust_admits(trust(trusting(name)), user(B, "app"), {})
    assert admitted, why
    assert why == "the role's trust policy admits the caller"


@pytest.mark.parametrize(
    "name",
    [
        root_arn(C),
        C,
        user_arn(B, "other"),
        user_arn(B, "APP"),  # resources and principals match case-sensitively
        user_arn(C, "app"),
        role_arn(B, "reader"),
    ],
    ids=["other-root", "other-id", "other-user", "other-case", "same-name-other-account", "role"],
)
def test_a_trust_naming_someone_else_does_not_admit_the_user(name: str) -> None:
    """Another account's root or id, another user, or a role do not name this user."""
    admitted, why = trust_admits(trust(trusting(name)), user(B, "app"), {})
    assert not admitted
    assert why == (f"the role's trust policy does not name {user_arn(B, 'app')} or its account")


def test_a_trust_naming_a_role_admits_sessions_of_that_role() -> None:
    """A role ARN in the trust admits a session of that role, not a session of another one."""
    policy = trust(trusting(role_arn(A, "reader")))
    assert trust_admits(policy, session(A, "reader"), {})[0]
    assert not trust_admits(policy, session(A, "writer"), {})[0]
    assert not trust_admits(policy, user(A, "reader"), {})[0]


def test_a_trust_naming_the_session_itself_or_its_account_admits_it() -> None:
    """A session is also named by its own assumed-role ARN and by its account's root or id."""
    caller = session(A, "reader")
    for name in (assumed_role_arn(A, "reader", "s1"), root_arn(A), A):
        assert trust_admits(trust(trusting(name)), caller, {})[0], name


@pytest.mark.parametrize("deny_first", [True, False], ids=["deny-first", "deny-last"])
def test_a_deny_naming_the_caller_wins_over_any_allow(deny_first: bool) -> None:
    """Whatever the statement order, a Deny that names the caller refuses it, and says which."""
    allow = trusting(root_arn(B))
    deny = trusting(user_arn(B, "app"), effect="Deny")
    statements = (deny, allow) if deny_first else (allow, deny)
    admitted, why = trust_admits(trust(*statements), user(B, "app"), {})
    assert not admitted
    index = 0 if deny_first else 1
    assert why == (f"statement {index} of the role's trust policy denies {user_arn(B, 'app')}")


def test_a_deny_for_someone_else_does_not_refuse_the_caller() -> None:
    """A Deny naming another user of the account leaves the account-wide Allow in force."""
    policy = trust(trusting(B), trusting(user_arn(B, "intruder"), effect="Deny"))
    assert trust_admits(policy, user(B, "app"), {})[0]


@pytest.mark.parametrize(
    ("key", "actions", "admitted"),
    [
        ("Action", "sts:*", True),
        ("Action", "STS:assumerole", True),
        ("Action", "*", True),
        ("Action", "sts:GetCallerIdentity", False),
        ("NotAction", "sts:AssumeRole", False),
        ("NotAction", "oss:*", True),
        ("NotAction", "sts:Assume*", False),
    ],
)
def test_a_trust_statement_applies_only_when_its_actions_admit_assume_role(
    key: str, actions: str, admitted: bool
) -> None:
    """Action matches sts:AssumeRole case-insensitively; NotAction applies to what it misses."""
    statement = {"Effect": "Allow", key: actions, "Principal": {"RAM": B}}
    assert trust_admits(trust(statement), user(B, "app"), {})[0] is admitted


def test_a_deny_with_not_action_that_misses_assume_role_refuses() -> None:
    """``Deny NotAction oss:*`` covers sts:AssumeRole, so it denies."""
    deny = {"Effect": "Deny", "NotAction": "oss:*", "Principal": {"RAM": B}}
    assert not trust_admits(trust(trusting(B), deny), user(B, "app"), {})[0]


@pytest.mark.parametrize(
    "principal",
    [
        {"Service": "ecs.aliyuncs.com"},
        {"Service": [user_arn(B, "app"), B]},  # a service named like the caller is still a service
        {"Service": "*"},
    ],
)
def test_service_principals_never_admit_an_api_caller(principal: dict[str, Any]) -> None:
    """A trust that names only services admits no user or session, whatever the names say."""
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}
    assert not trust_admits(trust(statement), user(B, "app"), {})[0]
    assert not trust_admits(trust(statement), session(B, "reader"), {})[0]


EXTERNAL_ID = {"StringEquals": {"sts:ExternalId": "contract-7731"}}


@pytest.mark.parametrize(
    ("context", "admitted"),
    [
        ({"sts:externalid": "contract-7731"}, True),
        ({"sts:externalid": "contract-0000"}, False),
        ({"sts:externalid": "CONTRACT-7731"}, False),
        ({}, False),
    ],
    ids=["met", "other-value", "other-case", "absent"],
)
def test_an_external_id_condition_admits_only_when_met(
    context: dict[str, Any], admitted: bool
) -> None:
    """The condition holds for the exact ExternalId; a wrong or missing one is said so."""
    policy = trust(trusting(B, Condition=EXTERNAL_ID))
    result, why = trust_admits(policy, user(B, "app"), context)
    assert result is admitted
    if not admitted:
        assert "Condition" in why
        assert "sts:ExternalId" in why
        assert user_arn(B, "app") in why


def test_a_deny_whose_condition_fails_does_not_refuse() -> None:
    """A conditional Deny refuses only when its condition holds."""
    deny = trusting(B, effect="Deny", Condition={"Bool": {"acs:SecureTransport": "false"}})
    policy = trust(trusting(B), deny)
    assert trust_admits(policy, user(B, "app"), {"acs:securetransport": True})[0]
    assert not trust_admits(policy, user(B, "app"), {"acs:securetransport": False})[0]


# --- plan_session ----------------------------------------------------------------------------


def test_a_permitted_and_trusted_user_gets_a_plan() -> None:
    """A user of B allowed sts:AssumeRole, trusted by A's role, gets a session of that role."""
    target = role(max_session_duration=7_200)
    caller = user(B, "app")
    planned = plan(caller, target, duration=7_200)
    assert planned.role is target
    assert planned.caller is caller
    assert planned.role_session_name == "phone-42"
    assert planned.session_policy is None
    assert planned.issued_at == NOW
    assert planned.expiration == (NOW + timedelta(seconds=7_200)).replace(microsecond=0)


@pytest.mark.parametrize("duration", [900, 1_000, 3_599, 3_600])
def test_an_expiration_has_whole_seconds_and_never_exceeds_the_duration(duration: int) -> None:
    """Expiration is truncated to the second: the token carries epoch seconds."""
    planned = plan(user(B, "app"), role(), duration=duration)
    assert planned.expiration.microsecond == 0
    lasts = planned.expiration - planned.issued_at
    assert timedelta(seconds=duration - 1) < lasts <= timedelta(seconds=duration)


def test_an_account_root_cannot_assume_a_role() -> None:
    """Even a role of its own account that trusts it: NotPermitted, code NoPermission."""
    for target in (role(trust(trusting(root_arn(A), A))), None):
        with pytest.raises(NotPermitted) as raised:
            plan(root(A), target)
        assert raised.value.code == "NoPermission"


@pytest.mark.parametrize(
    "statements",
    [
        ({"Effect": "Allow", "Action": "oss:*", "Resource": "*"},),
        ({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn(A, "other")},),
        (ASSUME_ANY, {"Effect": "Deny", "Action": "sts:*", "Resource": "acs:ram::*"}),
    ],
    ids=["other-service", "other-role", "denied"],
)
def test_a_caller_not_allowed_by_its_own_policies_is_refused_before_the_role_is_looked_at(
    statements: tuple[dict[str, Any], ...],
) -> None:
    """Refused with NoPermission whether the role exists, trusts it, or is missing in its account.

    A caller without ``sts:AssumeRole`` on the ARN must not learn whether the role exists:
    a missing role of its own account gives the same refusal, not EntityNotExist.Role.
    """
    own_role_arn = role_arn(B, "uploader")
    for caller_target, arn in (
        (role(trust(trusting(B))), ROLE_ARN),
        (None, ROLE_ARN),
        (None, own_role_arn),
    ):
        with pytest.raises(NotPermitted) as raised:
            plan(user(B, "app", *statements), caller_target, arn=arn)
        assert raised.value.code == "NoPermission"
        assert "by its own policies" in raised.value.detail
        assert "does not exist" not in raised.value.detail


def test_a_user_with_no_policies_at_all_is_refused() -> None:
    """No identity layer: nothing allows sts:AssumeRole."""
    caller = AssumingCaller(
        Subject(B, user_arn(B, "bare"), SubjectKind.USER, identity=None), uuid4()
    )
    with pytest.raises(NotPermitted):
        plan(caller, role())


def test_a_missing_role_of_the_callers_own_account_is_not_found() -> None:
    """Inside its own account a permitted caller learns that the role does not exist."""
    arn = role_arn(B, "ghost")
    with pytest.raises(NotFound) as raised:
        plan(user(B, "app"), None, arn=arn)
    assert raised.value.code == "EntityNotExist.Role"
    assert arn in raised.value.detail


def test_a_missing_role_of_another_account_is_not_permitted() -> None:
    """Outside its own account a missing role looks like one whose trust refuses the caller."""
    with pytest.raises(NotPermitted) as raised:
        plan(user(B, "app"), None, arn=role_arn(C, "ghost"))
    assert raised.value.code == "NoPermission"
    assert "does not exist or its trust policy does not admit" in raised.value.detail


def test_a_role_of_its_own_account_whose_trust_does_not_admit_the_caller_says_why() -> None:
    """Inside its own account the caller is told the trust's reason."""
    target = role(trust(trusting(root_arn(C))), account=B)
    with pytest.raises(NotPermitted) as raised:
        plan(user(B, "app"), target, arn=target.arn)
    assert raised.value.code == "NoPermission"
    assert raised.value.detail == (
        f"cannot assume {target.arn}: the role's trust policy does not name "
        f"{user_arn(B, 'app')} or its account"
    )


@pytest.mark.parametrize(
    "trust_policy",
    [
        trust(trusting(root_arn(C))),
        trust(trusting(B), trusting(user_arn(B, "app"), effect="Deny")),
        trust(trusting(B, Condition={"StringEquals": {"sts:ExternalId": "contract-7731"}})),
    ],
    ids=["not-named", "denied", "condition"],
)
def test_another_accounts_role_that_refuses_the_caller_looks_like_a_missing_one(
    trust_policy: PolicyDocument,
) -> None:
    """Across accounts a trust refusal says exactly what a missing role says: nothing leaks."""
    with pytest.raises(NotPermitted) as refused:
        plan(user(B, "app"), role(trust_policy))
    with pytest.raises(NotPermitted) as missing:
        plan(user(B, "app"), None)
    assert refused.value.code == missing.value.code == "NoPermission"
    assert refused.value.detail == missing.value.detail


def test_a_trust_condition_is_decided_with_the_request_context() -> None:
    """The ExternalId passed in the context decides a conditional trust."""
    cross = role(trust(trusting(B, Condition=EXTERNAL_ID)))
    plan(user(B, "app"), cross, context={"sts:externalid": "contract-7731"})
    with pytest.raises(NotPermitted):
        plan(user(B, "app"), cross, context={"sts:externalid": "guess"})
    own = role(trust(trusting(B, Condition=EXTERNAL_ID)), account=B)
    plan(user(B, "app"), own, arn=own.arn, context={"sts:externalid": "contract-7731"})
    with pytest.raises(NotPermitted, match=r"Condition \(e\.g\. sts:ExternalId\) is not met"):
        plan(user(B, "app"), own, arn=own.arn, context={})


def test_a_duration_above_the_roles_limit_is_refused_as_duration_seconds() -> None:
    """Up to the role's max_session_duration is accepted; one second more is refused."""
    target = role(max_session_duration=3_600)
    plan(user(B, "app"), target, duration=3_600)
    with pytest.raises(InvalidInput) as raised:
        plan(user(B, "app"), target, duration=3_601)
    assert raised.value.code == "InvalidParameter.DurationSeconds"
    assert list(faults(raised.value)) == ["duration_seconds"]
    assert "3600" in faults(raised.value)["duration_seconds"]


def test_a_session_may_assume_a_role_of_its_own_account() -> None:
    """Role chaining inside one account: trusted by its role's ARN, the session gets a plan."""
    caller = session(A, "reader", expiration=NOW + timedelta(hours=12))
    planned = plan(caller, role(trust(trusting(role_arn(A, "reader")))))
    assert planned.caller.parent is caller.parent
    assert planned.expiration == (NOW + timedelta(hours=1)).replace(microsecond=0)


def test_a_session_may_not_assume_a_role_of_another_account() -> None:
    """Even allowed by its layers and trusted by the other role: NoPermission."""
    caller = session(A, "reader")
    target = role(trust(trusting(root_arn(A), A, role_arn(A, "reader"))), account=B)
    for candidate in (target, None):
        with pytest.raises(NotPermitted) as raised:
            plan(caller, candidate, arn=target.arn)
        assert raised.value.code == "NoPermission"
        assert "only roles of its own account" in raised.value.detail


def test_a_session_policy_that_does_not_allow_assume_role_stops_the_chain() -> None:
    """The session's layers intersect: its role allows sts:AssumeRole, its policy does not."""
    caller = session(A, "reader", session_statements=(GET_PHOTOS,))
    with pytest.raises(NotPermitted, match="by its own policies"):
        plan(caller, role(trust(trusting(A))))


@pytest.mark.parametrize(
    ("parent_lasts", "duration", "expected"),
    [
        (timedelta(minutes=20), 3_600, NOW.replace(microsecond=0) + timedelta(minutes=20)),
        (timedelta(hours=2), 3_600, (NOW + timedelta(hours=1)).replace(microsecond=0)),
        (timedelta(hours=1), 3_600, NOW.replace(microsecond=0) + timedelta(hours=1)),
    ],
    ids=["parent-first", "child-first", "same-second"],
)
def test_a_chained_session_expires_no_later_than_its_parent(
    parent_lasts: timedelta, duration: int, expected: datetime
) -> None:
    """The child's expiration is min(now + duration, the parent's expiration)."""
    parent_expiration = NOW.replace(microsecond=0) + parent_lasts
    caller = session(A, "reader", expiration=parent_expiration)
    planned = plan(caller, role(trust(trusting(A))), duration=duration)
    assert planned.expiration == expected
    assert planned.expiration <= parent_expiration
    assert planned.expiration.microsecond == 0
