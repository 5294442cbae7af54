"""Who may do what, where: the rules around the evaluator (docs/design.md §2).

``evaluate`` answers for policy layers; this module decides which layers apply to a
subject and a resource — identity policies only inside the subject's own account, the
root everything inside its own account and nothing outside it — and says why, with the
chain of principals the request travelled and the account that pays for it.
Every kind of decision (live, as-of, simulated, "could P do it?") ends up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from mandate.domain.common.arns import account_of_resource
from mandate.domain.policy.evaluation import (
    ROOT_ALLOW,
    AccessRequest,
    Decision,
    DecisionKind,
    PolicySet,
    evaluate,
)

__all__ = ["Answer", "Path", "Subject", "SubjectKind", "decide"]

ASSUME_ROLE_ACTION = "sts:assumerole"


class SubjectKind(StrEnum):
    ROOT = "root"
    USER = "user"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Path:
    """One chain a session acts through, and the layers that intersect along it."""

    layers: tuple[PolicySet, ...]
    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subject:
    """A principal as the decision sees it: its account, its ARN and its policy layers.

    A user has one layer, ``identity``. A role session has every layer of its lineage — its
    role's policies and its session policy, and those of its parent session when it was
    chained — which intersect; ``chain`` is the path of principals it acts through
    (``[caller, role, session]``, longer when chained).
    """

    account_id: str
    arn: str
    kind: SubjectKind
    identity: PolicySet | None = None
    layers: tuple[PolicySet, ...] = ()
    chain: tuple[str, ...] = ()
    paths: tuple[Path, ...] = ()
    """A session reached by several delegations has a path through each (docs/design.md §3.2: the
    union of the live delegations): allowed when any path allows, and then explained by
    that path. ``layers`` and ``chain`` are the first path's."""
    named_at: int | None = None
    """For a user: the log position since which it has held the name in ``arn`` (created or
    renamed into it). Names are claims: a trust policy naming it admits it only if that is
    older than the trust (``domain.sts.assume_role.name_binds``). None where no one tracked it."""


class Answer(NamedTuple):
    """A decision with the chain it travelled, who pays, and why (a tuple: made per request)."""

    decision: Decision
    chain: tuple[str, ...]
    billed_account: str | None
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision.kind is DecisionKind.ALLOW


_IMPLICIT_DENY = Decision(DecisionKind.IMPLICIT_DENY, (), False)

# Resources repeat far more than they vary; parsing one costs as much as half a decision. A
# caller can send unique resources: the cache holds at most ACCOUNT_CACHE_SIZE of them, none
# longer than ACCOUNT_CACHE_MAX_CHARS (a longer one is parsed every time), so about 9 MB.
ACCOUNT_CACHE_SIZE = 16_384
ACCOUNT_CACHE_MAX_CHARS = 256
_account_of = lru_cache(maxsize=ACCOUNT_CACHE_SIZE)(account_of_resource)


def decide(subject: Subject, request: AccessRequest, *, optimistic: bool = False) -> Answer:
    """Decide ``request`` for ``subject``: the one entry point of every decision.

    ``optimistic``: whether some request context could allow it (``evaluate``'s flag; for
    access reviews, never for a live decision).
    """
    resource = request.resource
    resource_account = (
        _account_of(resource)
        if len(resource) <= ACCOUNT_CACHE_MAX_CHARS
        else account_of_resource(resource)
    )
    chain = subject.chain or (subject.arn,)
    is_assume_role = request.action_key == ASSUME_ROLE_ACTION
    if subject.kind is SubjectKind.ROOT:
        if is_assume_role:
            return Answer(_IMPLICIT_DENY, chain, None, "an account root cannot call AssumeRole")
        if resource_account == subject.account_id:
            return Answer(
                ROOT_ALLOW,
                chain,
                resource_account,
                "the account root may do anything inside its own account",
            )
        return Answer(
            _IMPLICIT_DENY, chain, None, "the account root may do nothing outside its own account"
        )
    if resource_account != subject.account_id and not is_assume_role:
        if subject.kind is SubjectKind.SESSION:
            return Answer(
                _IMPLICIT_DENY,
                chain,
                None,
                f"a role session acts only on resources of its role's account "
                f"({subject.account_id})",
            )
        return Answer(
            _IMPLICIT_DENY,
            chain,
            None,
            "identity policies apply only to resources of the principal's own account; "
            "another account's resources are reached only through a role session",
        )
    if subject.kind is SubjectKind.SESSION:
        paths = subject.paths or (Path(subject.layers, chain),)
        denied: tuple[Decision, Path] | None = None
        consulted = False
        for path in paths:
            decision = (
                evaluate(path.layers, request, optimistic=True)
                if optimistic
                else evaluate(path.layers, request)
            )
            consulted = consulted or decision.context_dependent
            if decision.kind is DecisionKind.ALLOW:
                # a path that allows is enough (a delegate holding the permission through
                # another unbroken chain keeps it); memoisable only if no path asked context
                allowed = Decision(decision.kind, decision.matched, consulted)
                return Answer(
                    allowed, path.chain, resource_account, "allowed by the matched statements"
                )
            if denied is None:
                denied = (decision, path)
        assert denied is not None
        first, path = denied
        if consulted and not first.context_dependent:
            first = Decision(first.kind, first.matched, True)
        chain = path.chain
        decision = first
        if decision.kind is DecisionKind.IMPLICIT_DENY and decision.matched:
            # Asked layer by layer, not by kind: a chained session has a role layer per
            # generation, and one of them agreeing must not hide another that does not.
            missing = sorted(
                {
                    p.layer.value
                    for p in path.layers
                    if not evaluate((p,), request, optimistic=optimistic).allowed
                }
            )
            return Answer(
                decision,
                chain,
                None,
                f"every layer of the session must allow the request; no statement of the "
                f"{' and '.join(missing)} layer allows it",
            )
    else:
        layers = [subject.identity] if subject.identity is not None else []
        decision = (
            evaluate(layers, request, optimistic=True) if optimistic else evaluate(layers, request)
        )
    if decision.kind is DecisionKind.ALLOW:
        return Answer(decision, chain, resource_account, "allowed by the matched statements")
    if decision.kind is DecisionKind.EXPLICIT_DENY:
        return Answer(decision, chain, None, "an explicit Deny statement matched")
    return Answer(decision, chain, None, "no statement allows this request")
