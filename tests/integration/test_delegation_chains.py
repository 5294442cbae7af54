"""Properties of delegation chains, generated (docs/design.md §2 "layers intersect", §3.2).

Scopes are drawn from a small vocabulary of actions and resources with wildcards, for the
entrustment (A → B), several delegations (B → ravi, a group ravi is in, another user, a group
ravi is not in) and a session policy. For every request of the vocabulary:

(a) a session's Allow ⇒ the entrustment's scope alone allows it AND some live delegation that
    reaches the session's user allows it (AND the session policy does): a delegate never
    holds more than its delegator;
(b) after one delegation is revoked, a request is allowed iff some remaining live delegation
    reaching the user is a path for it — scope ∩ that delegation ∩ the session policy
    (UCAN-style path semantics); with none left, the session is refused;
(c) after the entrustment is revoked, nothing is allowed through it any more.

Through the ledger, the user also leaves the group a delegation names: the paths through that
group's delegations go with it, at the next request (no remembered credential outlives it).

Two levels: the lineage rule itself (``resolve_session`` over in-memory facts, the real
layers and evaluator), with many examples and Deny statements everywhere; and the real ledger,
follower and decision index on SQLite and PostgreSQL, a runtime per example, a handful of
examples. There, delegation scopes hold Allow statements only: with a Deny in one delegation,
the delegations reaching a user are evaluated as one layer, so that Deny also cuts the other
delegations' paths (see ``test_entrustments.test_a_deny_in_one_delegation_…``).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.domain.common.arns import account_of_resource, group_arn, role_arn, user_arn
from mandate.domain.common.errors import NotPermitted
from mandate.domain.policy.decisions import decide
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)
from mandate.domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    LineageFacts,
    RoleState,
    SessionInvalid,
    SessionRecord,
    delegation_layer,
    resolve_session,
    scope_layer,
    session_policy_layer,
)
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running
from tests.integration.test_entrustments import dead, delegate, grant, revoke
from tests.integration.test_roles_sessions import ASSUME, World
from tests.integration.test_session_lineage_live import user_subject

Document = dict[str, Any]

ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:ListObjects", "ecs:StartInstance"]
ACTION_PATTERNS = [*ACTIONS, "oss:*", "oss:Get*", "*", "oss:?utObject", "*:*Object*"]
RESOURCES = [
    "acs:oss:cn-hangzhou:{A}:photos/1",
    "acs:oss:cn-hangzhou:{A}:photos/22",
    "acs:oss:cn-hangzhou:{A}:docs/1",
    "acs:ecs:cn-hangzhou:{A}:instance/i-1",
]
RESOURCE_PATTERNS = [
    *(r.replace("cn-hangzhou", "*") for r in RESOURCES),
    "acs:oss:*:{A}:photos/*",
    "acs:oss:*:{A}:photos/?",
    "acs:*:*:{A}:*",
    "*",
]
OUTSIDE = "acs:oss:cn-hangzhou:{B}:photos/1"
"""A resource of the trustee itself: never reached through A's role."""
REQUESTS = [*itertools.product(ACTIONS, [*RESOURCES, OUTSIDE])]

GRANTEES = ["ravi", "ravi-group", "mia", "mia-group"]
"""Who a delegation names: ravi (the session's user), a group ravi is in, and two that do
not reach ravi (another user, a group ravi is not in)."""
REACHES_RAVI = frozenset({"ravi", "ravi-group"})


def statements(*, denies: bool) -> st.SearchStrategy[Document]:
    return st.fixed_dictionaries(
        {
            "Effect": st.sampled_from(["Allow", "Allow", "Deny"] if denies else ["Allow"]),
            "Action": st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2),
            "Resource": st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2),
        }
    )


def documents(*, denies: bool) -> st.SearchStrategy[Document]:
    return st.lists(statements(denies=denies), min_size=1, max_size=3).map(
        lambda s: {"Version": "1", "Statement": s}
    )


@dataclass(frozen=True)
class Chains:
    """One generated contract: its scope, its delegations and a session policy (templates)."""

    scope: Document
    delegations: list[tuple[str, Document]]
    session_policy: Document | None
    revoked: int
    """Which delegation is revoked for (b) (an index, modulo their number)."""


def chains(*, delegation_denies: bool) -> st.SearchStrategy[Chains]:
    return st.builds(
        Chains,
        scope=documents(denies=True),
        delegations=st.lists(
            st.tuples(st.sampled_from(GRANTEES), documents(denies=delegation_denies)),
            min_size=1,
            max_size=4,
        ),
        session_policy=st.one_of(st.none(), documents(denies=True)),
        revoked=st.integers(min_value=0, max_value=3),
    )


def fill(template: Any, a: str, b: str) -> Any:
    """A template with its account placeholders filled in."""
    text = json.dumps(template).replace("{A}", a).replace("{B}", b)
    return json.loads(text)


def layer(document: Document, kind: Layer) -> PolicySet:
    compiled = compile_policy(
        parse_policy_document(document), PolicySource(kind, "Inline", "X", None, None)
    )
    return PolicySet.of([compiled], kind)


@dataclass(frozen=True)
class Oracle:
    """The rule of docs/design.md §3.2, path by path, from the documents alone."""

    account: str
    scope: PolicySet
    delegations: dict[int, PolicySet]
    session: PolicySet | None

    @classmethod
    def of(cls, chain: Chains, a: str, b: str) -> Oracle:
        return cls(
            a,
            layer(fill(chain.scope, a, b), Layer.ENTRUSTMENT),
            {
                i: layer(fill(d, a, b), Layer.DELEGATION)
                for i, (_, d) in enumerate(chain.delegations)
            },
            None
            if chain.session_policy is None
            else layer(fill(chain.session_policy, a, b), Layer.SESSION),
        )

    def alone(self, policy: PolicySet | None, request: AccessRequest) -> bool:
        return policy is None or evaluate((policy,), request).allowed

    def through(
        self, live: Sequence[int], request: AccessRequest, *, with_session: bool = True
    ) -> bool:
        """Whether some live delegation is a path: scope ∩ it ∩ the session policy allow
        (and the resource is A's: a role session acts only inside its role's account)."""
        if account_of_resource(request.resource) != self.account:
            return False
        session = (self.session,) if with_session and self.session is not None else ()
        return any(
            evaluate((self.scope, self.delegations[i], *session), request).allowed for i in live
        )

    def check_bounded(self, allowed: bool, live: Sequence[int], request: AccessRequest) -> None:
        """(a): an Allow is within the scope, some live delegation and the session policy."""
        if not allowed:
            return
        assert account_of_resource(request.resource) == self.account, request
        assert self.alone(self.scope, request), f"beyond the entrustment: {request}"
        assert any(self.alone(self.delegations[i], request) for i in live), (
            f"beyond every live delegation reaching the user: {request}"
        )
        assert self.alone(self.session, request), f"beyond the session policy: {request}"


def requests_for(a: str, b: str) -> list[AccessRequest]:
    return [AccessRequest.make(action, fill(resource, a, b)) for action, resource in REQUESTS]


# --- the lineage rule, over in-memory facts -----------------------------------------------------

A, B = "1837465920374651", "5550001112223334"
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=5)
RAVI = uuid4()


@dataclass
class ContractFacts(LineageFacts):
    """One session of a managed role, its contract and the delegations under it."""

    record: SessionRecord
    role_state: RoleState
    grants: list[tuple[DelegationState, bool]]
    """Each delegation and whether it reaches ravi."""
    revoked: set[UUID] = field(default_factory=set)

    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        return (self.record, None) if access_key_id == self.record.access_key_id else (None, None)

    def role(self, role_id: UUID) -> RoleState | None:
        return self.role_state if role_id == self.role_state.role_id else None

    def user_exists(self, user_id: UUID) -> bool:
        return user_id == RAVI

    def account_open(self, account_id: str) -> bool:
        return True

    def role_layer(self, role: RoleState) -> PolicySet:
        assert role.entrustment is not None
        return scope_layer(role.entrustment, role.arn)

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        live = tuple(
            d for d, reaches in self.grants if reaches and d.delegation_id not in self.revoked
        )
        return live, "every delegation reaching the user was revoked"

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        return delegation_layer(delegations)

    def session_layer(self, record: SessionRecord) -> PolicySet | None:
        return session_policy_layer(record)


def contract_facts(chain: Chains) -> ContractFacts:
    entrustment = EntrustmentState(
        uuid4(), A, B, "MSA-1", json.dumps(fill(chain.scope, A, B)), None, None, None, False
    )
    role = RoleState(entrustment.entrustment_id, A, "MSA-1", None, (), entrustment)
    grants = [
        (
            DelegationState(uuid4(), B, f"acs:ram::{B}:user/x", json.dumps(fill(d, A, B)), None),
            grantee in REACHES_RAVI,
        )
        for grantee, d in chain.delegations
    ]
    policy = chain.session_policy
    record = SessionRecord(
        "STS.k1",
        A,
        role.role_id,
        role.role_name,
        "s-1",
        user_arn(B, "ravi"),
        B,
        RAVI,
        None,
        None if policy is None else json.dumps(fill(policy, A, B)),
        T0,
        T0 + timedelta(hours=1),
    )
    return ContractFacts(record, role, grants)


def reaching(chain: Chains) -> list[int]:
    return [i for i, (grantee, _) in enumerate(chain.delegations) if grantee in REACHES_RAVI]


@settings(max_examples=200, deadline=None)
@given(chain=chains(delegation_denies=True))
def test_a_session_never_exceeds_the_scope_or_its_live_delegations(chain: Chains) -> None:
    """(a), with Deny statements in every layer."""
    facts = contract_facts(chain)
    oracle = Oracle.of(chain, A, B)
    live = reaching(chain)
    if not live:
        with pytest.raises(SessionInvalid, match="no live delegation"):
            resolve_session("STS.k1", AT, facts)
        return
    subject = resolve_session("STS.k1", AT, facts)
    for request in requests_for(A, B):
        oracle.check_bounded(decide(subject, request).allowed, live, request)


@settings(max_examples=200, deadline=None)
@given(chain=chains(delegation_denies=True))
def test_revoking_a_delegation_removes_exactly_the_paths_through_it(chain: Chains) -> None:
    """(b) and (c) over the lineage rule."""
    facts = contract_facts(chain)
    oracle = Oracle.of(chain, A, B)
    live = reaching(chain)
    if not live:
        return
    subject = resolve_session("STS.k1", AT, facts)
    for request in requests_for(A, B):
        assert decide(subject, request).allowed == oracle.through(live, request), request

    gone = chain.revoked % len(chain.delegations)
    facts.revoked.add(facts.grants[gone][0].delegation_id)
    remaining = [i for i in live if i != gone]
    if not remaining:
        with pytest.raises(SessionInvalid, match="no live delegation"):
            resolve_session("STS.k1", AT, facts)
    else:
        after = resolve_session("STS.k1", AT, facts)
        for request in requests_for(A, B):
            allowed = decide(after, request).allowed
            assert allowed == oracle.through(remaining, request), request
            oracle.check_bounded(allowed, remaining, request)

    # (c): the contract revoked, nothing is left
    entrustment = facts.role_state.entrustment
    assert entrustment is not None
    reason = "the entrustment was revoked"
    facts.role_state = RoleState(
        facts.role_state.role_id,
        A,
        "MSA-1",
        None,
        (),
        EntrustmentState(
            entrustment.entrustment_id, A, B, "MSA-1", entrustment.scope, None, None, reason, False
        ),
    )
    with pytest.raises(SessionInvalid, match=reason):
        resolve_session("STS.k1", AT, facts)


# --- the real ledger and decision index, on each store ----------------------------------------


def _through_the_ledger(url: str, chain: Chains) -> None:
    with running(url) as runtime:
        world = World(runtime)
        a, b = world.account("Alpha"), world.account("Beta")
        ravi = world.user(b, "ravi", ASSUME)
        world.user(b, "mia", ASSUME)
        for group, member in (("ravi-group", "ravi"), ("mia-group", "mia")):
            world.do("create_group", b, group)
            world.do("add_user_to_group", b, group, member)
        grantee_arns = {
            "ravi": user_arn(b, "ravi"),
            "mia": user_arn(b, "mia"),
            "ravi-group": group_arn(b, "ravi-group"),
            "mia-group": group_arn(b, "mia-group"),
        }
        contract = grant(world, a, b, fill(chain.scope, a, b), "MSA-GEN")
        ids = [
            delegate(world, contract, grantee_arns[grantee], fill(scope, a, b))[0]
            for grantee, scope in chain.delegations
        ]
        oracle = Oracle.of(chain, a, b)
        requests = requests_for(a, b)
        live = reaching(chain)
        arn = role_arn(a, contract.role_name)
        if not live:
            world.refused(NotPermitted, lambda: world.assume(ravi, arn), match="delegation")
            return
        policy = None if chain.session_policy is None else fill(chain.session_policy, a, b)
        issued = world.assume(ravi, arn, policy=policy)

        def check(remaining: list[int]) -> None:
            credential = world.session(issued)
            subject = user_subject(world, ravi)
            allowed_count = 0
            for request in requests:
                allowed = world.index.decide_for(credential, request).allowed
                allowed_count += allowed
                assert allowed == oracle.through(remaining, request), request
                oracle.check_bounded(allowed, remaining, request)
                # "could ravi do it?": through the managed role, without a session policy
                could = world.index.answer_through_roles(subject, request)
                expected = oracle.through(remaining, request, with_session=False)
                assert (could is not None) == expected, request
                if could is not None:
                    assert could.chain[2:] == (contract.arn, arn)
            shown = "some" if allowed_count else "no"
            event(f"{len(remaining)} reaching delegation(s), {shown} request allowed")

        check(live)
        gone = chain.revoked % len(ids)
        world.do("revoke_delegation", b, ids[gone])
        remaining = [i for i in live if i != gone]
        if remaining:
            check(remaining)
        else:
            dead(world, issued, "no live delegation", "was revoked")

        # ravi leaves its group: the paths through the group's delegations go with it
        world.do("remove_user_from_group", b, "ravi-group", "ravi")
        direct = [i for i in remaining if chain.delegations[i][0] == "ravi"]
        if direct:
            check(direct)
        else:
            dead(world, issued, "no live delegation")

        revoke(world, contract, "generated")
        dead(world, issued, "(contract MSA-GEN) was revoked: generated")
        subject = user_subject(world, ravi)
        assert all(world.index.answer_through_roles(subject, r) is None for r in requests)
        world.refused(NotPermitted, lambda: world.assume(ravi, arn, "late"), match="revoked")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chain=chains(delegation_denies=True))
def test_delegation_chains_through_the_ledger_on_sqlite(chain: Chains) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-chains-") as directory:
        _through_the_ledger(f"sqlite:///{Path(directory) / 'mandate.db'}", chain)


@pytest.mark.postgres
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chain=chains(delegation_denies=True))
def test_delegation_chains_through_the_ledger_on_postgres(postgres_dsn: str, chain: Chains) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _through_the_ledger(url, chain)
