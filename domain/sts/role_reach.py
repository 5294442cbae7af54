"""Could P do it through a role? — one rule for the live index and for any instant T.

P (a RAM user) could act through a role of the resource's account when its own policies allow
``sts:AssumeRole`` on the role's ARN and the role would admit it: for an ordinary role its trust
policy names P (``domain.sts.assume_role.trust_admits``); for a managed role P is a user of the
trustee, the contract is active and a live delegation under it reaches P. The answer is the one
a session of that role without a session policy would get — chain ``[P, role]``, or ``[P,
delegation, entrustment, role]`` per delegation. One hop is enough: a chained session keeps
every layer of its parent (docs/design.md §3.3), so P → R1 → R2 never allows what P → R1 alone
does not.

The roles tried are the resource's account's, then every role of another open account that a
resource policy covering the resource names by its ARN (``acs:ram::<b>:role/<r>``): a session
of that role acts on the resource through the policy. The session's request is decided as a
live session's is (``decide_with_resource_and_control``): control policies over the role's
account first, then its own layers with the covering resource policies — OR inside the
resource's account, AND across accounts, an explicit Deny naming the role (or ``*``, or its
account from outside) winning. A role reached only through a policy naming ``*`` or an account
is not enumerated (every role of every account would be).

Like ``session_lineage``, the rule reads its facts through a port (``RoleReachFacts``) that
the live index implements for now and the temporal index for any T, so that "could P" as of T
is by construction what the live index replayed to T answers.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Protocol
from uuid import UUID

from mandate.domain.common.arns import account_of_resource, role_arn
from mandate.domain.policy.control import ControlLevel, decide_with_control
from mandate.domain.policy.decisions import Answer, Path, Subject, SubjectKind
from mandate.domain.policy.document import Effect, PolicyDocument
from mandate.domain.policy.evaluation import AccessRequest, ContextValue, PolicySet
from mandate.domain.policy.resource_policies import (
    ResourcePolicy,
    decide_with_resource_and_control,
)
from mandate.domain.policy.resource_tags import with_resource_tags, without_resource_tags
from mandate.domain.sts.assume_role import AssumingCaller, own_role_tags, trust_admits
from mandate.domain.sts.session_lineage import DelegationState, EntrustmentState

__all__ = [
    "AssumableRole",
    "RoleReachFacts",
    "answer_through_roles",
    "named_role_arns",
    "paths_into",
]

_ASSUME_ROLE = "sts:AssumeRole"


@dataclass(frozen=True, slots=True)
class AssumableRole:
    """A role as "could P assume it?" needs it at one instant; managed: its contract."""

    role_id: UUID
    account_id: str
    arn: str
    trust: PolicyDocument | None
    """An ordinary role's trust policy (a managed role's is computed from its delegations)."""
    entrustment: EntrustmentState | None = None
    trust_position: int | None = None
    """The position of the event that wrote the trust (``domain.sts.assume_role.name_binds``)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Its tags (``acs:ResourceTag/<key>`` of P's ``sts:AssumeRole`` on it, ``own_role_tags``)."""

    @classmethod
    def of(
        cls,
        role_id: UUID,
        account_id: str,
        role_name: str,
        trust: PolicyDocument | None,
        entrustment: EntrustmentState | None = None,
        trust_position: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> AssumableRole:
        arn = role_arn(account_id, role_name)
        return cls(role_id, account_id, arn, trust, entrustment, trust_position, tags or {})


class RoleReachFacts(Protocol):
    """One store's facts about roles, at the instant being decided."""

    def account_open(self, account_id: str) -> bool: ...

    def roles_in(self, account_id: str) -> Iterable[AssumableRole]:
        """The account's roles (managed ones included), by name."""
        ...

    def role_named(self, account_id: str, role_name: str) -> AssumableRole | None:
        """The account's role of that name (managed or not), None when there is none."""
        ...

    def resource_policies(self, resource: str) -> tuple[ResourcePolicy, ...]:
        """The resource policies covering ``resource`` (``covering_keys``' order)."""
        ...

    def assumable_role_layer(self, role: AssumableRole) -> PolicySet:
        """The role's policies; a managed role's is its entrustment's scope."""
        ...

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        """As ``LineageFacts.delegations``: the live ones reaching the user, oldest first."""
        ...

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet: ...

    def control(self, account_id: str) -> tuple[tuple[ControlLevel, ...], str | None]:
        """The control levels over the account and its management account (none: no
        resource directory; ``domain.policy.control``)."""
        ...


def moment_of(context: Mapping[str, object]) -> datetime:
    """The instant a request is decided at: its ``acs:CurrentTime``, else now."""
    moment = context.get("acs:currenttime")
    return moment if isinstance(moment, datetime) else datetime.now(UTC)


def paths_into(
    caller: AssumingCaller,
    role: AssumableRole,
    context: Mapping[str, ContextValue],
    facts: RoleReachFacts,
    *,
    optimistic: bool = False,
) -> tuple[Path, ...]:
    """The paths through which the caller (a RAM user, ``source_user_id`` its id) could act
    as ``role``; none when it could not.

    ``optimistic`` (access reviews): whether *some* request context could let it in.
    """
    subject, user_id, arn = caller.subject, caller.source_user_id, role.arn
    tags = own_role_tags(subject, role.account_id, role.tags)
    asked = AccessRequest(_ASSUME_ROLE, arn, with_resource_tags(context, tags))
    levels, management = facts.control(subject.account_id)
    may = decide_with_control(
        subject, levels, asked, management_account=management, optimistic=optimistic
    )
    if not may.allowed:
        return ()
    terms = role.entrustment
    if terms is None:
        if role.trust is None:
            return ()
        written_at = role.trust_position
        admits = trust_admits(
            role.trust, caller, context, optimistic=optimistic, written_at=written_at
        )
        if not admits[0]:
            return ()
        return (Path((facts.assumable_role_layer(role),), (subject.arn, arn)),)
    now = moment_of(context)
    if (
        user_id is None
        or subject.account_id != terms.trustee_account_id
        or terms.dead_reason(now) is not None
    ):
        return ()
    live, _ = facts.delegations(terms, user_id, now)
    if not live:
        return ()
    scope = facts.assumable_role_layer(role)
    return tuple(
        Path((scope, facts.delegation_layer((d,))), (subject.arn, d.arn, terms.arn, arn))
        for d in live
    )


def named_role_arns(covering: Iterable[ResourcePolicy], resource_account: str) -> list[str]:
    """The roles of other accounts that an Allow statement of ``covering`` names, by ARN."""
    return sorted(
        {
            name
            for policy in covering
            for grant in policy.grants
            if any(s.effect is Effect.ALLOW for s in grant.policy.statements)
            for name in grant.principals
            if ":role/" in name and name.split(":")[3] != resource_account
        }
    )


def _named_roles(
    covering: tuple[ResourcePolicy, ...], resource_account: str, facts: RoleReachFacts
) -> Iterator[AssumableRole]:
    """The roles ``named_role_arns`` names that exist, of open accounts."""
    for arn in named_role_arns(covering, resource_account):
        account, name = arn.split(":")[3], arn.split("/", 1)[1]
        if facts.account_open(account) and (role := facts.role_named(account, name)):
            yield role


def answer_through_roles(
    subject: Subject,
    user_id: UUID | None,
    request: AccessRequest,
    facts: RoleReachFacts,
    *,
    optimistic: bool = False,
    roles: Iterable[AssumableRole] | None = None,
    named_of: Container[str] | None = None,
) -> Answer | None:
    """The first answer that allows ``request`` through a role ``subject`` may assume.

    The resource's account's roles are tried in name order (``roles`` replaces them when the
    caller already holds the list), then the roles of other accounts a covering resource
    policy names (module docstring), by ARN — only those of ``named_of``'s accounts when it
    is given (a reader who may not be shown a path through a third account's role is
    answered as if its policy did not name it).
    """
    if subject.kind is not SubjectKind.USER:
        return None
    resource_account = account_of_resource(request.resource)
    if resource_account is None or not facts.account_open(resource_account):
        return None
    # the request's resource tags are its resource's, not the role's: assuming the role is
    # decided on the role's ARN without them
    context = without_resource_tags(request.context)
    caller = AssumingCaller(subject, user_id)
    covering = facts.resource_policies(request.resource)
    own = facts.roles_in(resource_account) if roles is None else roles
    named = _named_roles(covering, resource_account, facts)
    if named_of is not None:
        named = (role for role in named if role.account_id in named_of)
    for role in chain(own, named):
        paths = paths_into(caller, role, context, facts, optimistic=optimistic)
        if not paths:
            continue
        as_role = Subject(
            role.account_id,
            role.arn,
            SubjectKind.SESSION,
            layers=paths[0].layers,
            chain=paths[0].chain,
            paths=paths,
        )
        levels, management = facts.control(role.account_id)
        answer = decide_with_resource_and_control(
            as_role, levels, management, covering, request, optimistic=optimistic
        )
        if answer.allowed:
            return answer
    return None
