"""AssumeRole's rules (docs/design.md §2, §3.3): who may assume a role, for how long, with what.

Pure functions over facts handed in: the caller as a decision subject (its own layers), the
role as the read side knows it, the request's parameters. ``plan_session`` either raises the
error RAM would (``InvalidParameter.DurationSeconds``, ``NoPermission``, …) or answers what
the new session is; the ledger then records it. Two checks must both pass, whichever account
the role is in: the caller's *own* policies allow ``sts:AssumeRole`` on the role's ARN, and
the role's trust policy names the caller (or its account's root).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind, parse_principal_arn, role_arn, root_arn
from mandate.domain.common.errors import FieldError, InvalidInput, NotFound, NotPermitted
from mandate.domain.policy.decisions import Subject, SubjectKind, decide
from mandate.domain.policy.document import DocumentKind, PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import AccessRequest, Effect, condition_may_hold
from mandate.domain.policy.patterns import PatternSet, has_wildcard
from mandate.domain.policy.resource_tags import with_resource_tags

__all__ = [
    "MAX_SESSION_POLICY_CHARS",
    "SESSION_DURATION_RANGE",
    "AssumingCaller",
    "EntrustmentTerms",
    "ParentSession",
    "RoleFacts",
    "SessionPlan",
    "check_trust_policy",
    "name_binds",
    "plan_session",
    "trust_admits",
]

SESSION_DURATION_RANGE = (900, 43_200)
DEFAULT_SESSION_DURATION = 3_600
MAX_SESSION_POLICY_CHARS = 2_048
_SESSION_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
_ASSUME_ROLE = "sts:AssumeRole"


@dataclass(frozen=True, slots=True)
class EntrustmentTerms:
    """A managed role's contract, as AssumeRole needs it now (docs/design.md §3.2)."""

    entrustment_id: UUID
    arn: str
    trustee_account_id: str
    inactive_reason: str | None
    """Why no one may assume it now (scheduled, ended, revoked), or None while active."""
    ends_at: datetime | None
    delegated_user_ids: frozenset[UUID]
    """The trustee's users a live delegation reaches now, directly or through a group."""
    delegations_reaching: Mapping[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    """For each of those users, the live delegations reaching it: a session's save is fenced
    on them (``domain.ledger.fences``)."""
    version: int | None = None
    """The entrustment aggregate's version these terms were read at (None: unknown)."""
    through_groups: frozenset[UUID] = frozenset()
    """The live delegations whose grantee is a group: they reach a user by its membership."""


@dataclass(frozen=True, slots=True)
class RoleFacts:
    """A live role as AssumeRole needs it; ``entrustment`` is set for a managed role."""

    role_id: UUID
    account_id: str
    role_name: str
    trust: PolicyDocument
    max_session_duration: int
    entrustment: EntrustmentTerms | None = None
    trust_position: int | None = None
    """The log position of the event that wrote the trust policy (``name_binds``)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Its tags: ``acs:ResourceTag/<key>`` of the caller's own ``sts:AssumeRole`` decision."""

    @property
    def arn(self) -> str:
        return role_arn(self.account_id, self.role_name)


def own_role_tags(subject: Subject, account_id: str, tags: Mapping[str, str]) -> Mapping[str, str]:
    """A role's tags as its ``sts:AssumeRole`` decision sees them: a role of the caller's own
    account shows its tags; another account's shows none, so that whether the caller may
    assume it tells nothing of that account's tags (nor whether the role exists)."""
    return tags if account_id == subject.account_id else {}


@dataclass(frozen=True, slots=True)
class ParentSession:
    """The session a caller is, when it assumes a further role (role chaining)."""

    access_key_id: str
    role_arn: str
    expiration: datetime
    role_named_at: int | None = None
    """Since which log position the session's role has held its name (``name_binds``)."""


@dataclass(frozen=True, slots=True)
class AssumingCaller:
    """Who calls AssumeRole: its subject (own layers and chain) and its lineage."""

    subject: Subject
    source_user_id: UUID | None
    """The RAM user at the root of the lineage (a session dies with it)."""
    parent: ParentSession | None = None


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """A session AssumeRole will issue: everything ``SessionIssued`` records but the key."""

    role: RoleFacts
    role_session_name: str
    caller: AssumingCaller
    session_policy: str | None
    issued_at: datetime
    expiration: datetime


def check_trust_policy(field: str, raw: str | Mapping[str, Any]) -> str:
    """A trust policy's canonical text, or 400 naming each fault under ``field``."""
    try:
        return parse_policy_document(raw, kind=DocumentKind.TRUST).canonical_json()
    except InvalidInput as error:
        raise error.prefixed(field) from None


def name_binds(named_at: int | None, written_at: int | None) -> bool:
    """Whether an exact user or role name in a trust policy reaches this holder of the name.

    Names are claims (docs/design.md §1): a statement naming ``user/alice`` admits only the entity
    that already held that name when the trust policy was written — its name is older than
    the writing (``named_at < written_at``, both log positions) — so an ``alice`` created
    (or renamed into the name) later is not admitted until the trust is written again. No
    other account's entities are looked up when a trust is written (that would be an
    existence oracle): positions are compared when the trust is used, live or as of any
    instant. ``written_at`` None: the caller does not bind names (a what-if).
    """
    if written_at is None:
        return True
    return named_at is not None and named_at < written_at


def _trust_candidates(caller: AssumingCaller) -> tuple[tuple[str, int | None, bool], ...]:
    """The names a trust policy may use for the caller, most specific first.

    Each with the position since which the caller's entity has held it and whether the name
    is an entity's (a user or a role, bound by ``name_binds``) rather than an account's.
    """
    subject = caller.subject
    names: list[tuple[str, int | None, bool]] = [
        (subject.arn, subject.named_at, subject.kind is SubjectKind.USER)
    ]
    if caller.parent is not None:
        names.append((caller.parent.role_arn, caller.parent.role_named_at, True))
    names += [(root_arn(subject.account_id), None, False), (subject.account_id, None, False)]
    return tuple(names)


def trust_admits(
    trust: PolicyDocument,
    caller: AssumingCaller,
    context: Mapping[str, object],
    *,
    optimistic: bool = False,
    written_at: int | None = None,
) -> tuple[bool, str]:
    """Whether the role's trust policy lets ``caller`` assume it, and why (or why not).

    A statement applies when its Action admits ``sts:AssumeRole``, its ``Principal.RAM``
    names the caller (its ARN, the role of the session it is, its account's root or id)
    and its Condition holds; any applying Deny refuses, else any applying Allow admits.
    ``Service`` principals name cloud services, never an API caller. ``optimistic`` (access
    reviews): a Condition on a key the context leaves open holds for an Allow and not for a
    Deny — whether *some* request context could be admitted. ``written_at``: the position
    of the event that wrote the trust; an Allow naming a user or role exactly then admits
    only the entity that held the name before it (``name_binds``) — a wildcard names
    whoever holds a matching name, and a Deny refuses whoever holds the name (refusing too
    much never admits anyone).
    """
    candidates = _trust_candidates(caller)
    admitted = False
    condition_failed = False
    unbound = False
    for index, statement in enumerate(trust.statements):
        named = PatternSet(statement.actions, case_sensitive=False).matches(_ASSUME_ROLE)
        if named is statement.negated:
            continue  # the statement is not about sts:AssumeRole
        principal = statement.principal
        names = principal.ram if principal is not None and principal.ram else ()
        if not names:
            continue
        patterns = PatternSet(names, case_sensitive=True)
        if not any(patterns.matches(candidate) for candidate, _, _ in candidates):
            continue
        if statement.effect is Effect.ALLOW and not _names_bound(names, candidates, written_at):
            unbound = True
            continue
        conditions = statement.conditions
        if conditions is not None and not (
            condition_may_hold(conditions, context, favourable=statement.effect is Effect.ALLOW)
            if optimistic
            else conditions.holds(context)
        ):
            condition_failed = True
            continue
        if statement.effect is Effect.DENY:
            return (
                False,
                f"statement {index} of the role's trust policy denies {subject_of(caller)}",
            )
        admitted = True
    if admitted:
        return True, "the role's trust policy admits the caller"
    if unbound:
        return False, (
            f"the role's trust policy names {subject_of(caller)} as the principal that held "
            "that name when the trust policy was written; this one took the name later (a "
            "re-created name is another principal): write the trust policy again to admit it"
        )
    if condition_failed:
        return False, (
            f"the role's trust policy names {subject_of(caller)} but its Condition "
            "(e.g. sts:ExternalId) is not met"
        )
    return False, f"the role's trust policy does not name {subject_of(caller)} or its account"


def _names_bound(
    names: tuple[str, ...],
    candidates: tuple[tuple[str, int | None, bool], ...],
    written_at: int | None,
) -> bool:
    """Whether some name of an Allow statement reaches the caller, names bound to entities.

    A wildcard matches by name; an exact name of the caller's account matches too; an
    exact user or role name matches only the entity bound to it (``name_binds``).
    """
    wildcards = PatternSet(tuple(n for n in names if has_wildcard(n)), case_sensitive=True)
    exact = {n for n in names if not has_wildcard(n)}
    for candidate, named_at, is_entity in candidates:
        if wildcards.matches(candidate):
            return True
        if candidate in exact and (not is_entity or name_binds(named_at, written_at)):
            return True
    return False


def subject_of(caller: AssumingCaller) -> str:
    return caller.subject.arn


def check_parameters(
    role_arn_text: object,
    role_session_name: object,
    duration_seconds: object,
    policy: object,
) -> tuple[str, str, int, str | None]:
    """RAM's parameter checks, all faults at once: (role ARN, name, duration, policy text)."""
    errors: list[FieldError] = []
    code: str | None = None
    arn = role_arn_text if isinstance(role_arn_text, str) else ""
    try:
        parsed = parse_principal_arn(arn)
        if parsed.kind is not PrincipalKind.ROLE:
            raise InvalidInput(FieldError("principal", "must be a role ARN"))
    except InvalidInput:
        errors.append(
            FieldError("role_arn", "must be a role ARN: acs:ram::<account_id>:role/<name>")
        )
        code = "InvalidParameter.RoleArn"
    name = role_session_name if isinstance(role_session_name, str) else ""
    if not _SESSION_NAME.fullmatch(name):
        errors.append(FieldError("role_session_name", "must be 2 to 64 of A-Z a-z 0-9 . @ _ -"))
        code = code or "InvalidParameter.RoleSessionName"
    low, high = SESSION_DURATION_RANGE
    duration = DEFAULT_SESSION_DURATION if duration_seconds is None else duration_seconds
    if isinstance(duration, bool) or not isinstance(duration, int) or not low <= duration <= high:
        errors.append(
            FieldError(
                "duration_seconds", f"must be an integer number of seconds from {low} to {high}"
            )
        )
        code = code or "InvalidParameter.DurationSeconds"
        duration = 0
    policy_text: str | None = None
    if policy is not None:
        if not isinstance(policy, str | Mapping):
            errors.append(FieldError("policy", "must be a policy document (object or string)"))
            code = code or "InvalidParameter.Policy"
        else:
            try:
                policy_text = parse_policy_document(
                    policy, max_chars=MAX_SESSION_POLICY_CHARS
                ).canonical_json()
            except InvalidInput as error:
                errors.extend(error.prefixed("policy").errors)
                code = code or "InvalidParameter.Policy"
    if errors:
        raise InvalidInput(errors, code=code)
    assert isinstance(duration, int)
    return arn, name, duration, policy_text


def plan_session(
    caller: AssumingCaller,
    role: RoleFacts | None,
    *,
    role_arn_text: str,
    role_session_name: str,
    duration_seconds: int,
    session_policy: str | None,
    context: Mapping[str, Any],
    now: datetime,
) -> SessionPlan:
    """Decide an AssumeRole whose parameters passed ``check_parameters``.

    The order is RAM's and keeps existence private: a caller that its own policies do not
    allow to assume the ARN learns nothing about the role; a role of another account that
    does not exist is indistinguishable from one whose trust does not admit the caller.
    """
    subject = caller.subject
    if subject.kind is SubjectKind.ROOT:
        raise NotPermitted(
            "an account root cannot call AssumeRole: assume roles as a RAM user or a role session"
        )
    target_account = parse_principal_arn(role_arn_text).account_id
    if caller.parent is not None and target_account != subject.account_id:
        raise NotPermitted(
            f"a role session may assume only roles of its own account ({subject.account_id})"
        )
    asked = {key.lower(): value for key, value in context.items()}
    tags = own_role_tags(subject, role.account_id, role.tags) if role is not None else {}
    answer = decide(
        subject, AccessRequest(_ASSUME_ROLE, role_arn_text, with_resource_tags(asked, tags))
    )
    if not answer.allowed:
        raise NotPermitted(
            f"{subject.arn} is not allowed sts:AssumeRole on {role_arn_text} by its own "
            f"policies: {answer.reason}"
        )
    if role is None:
        if target_account == subject.account_id:
            raise NotFound(f"role {role_arn_text} does not exist", code="EntityNotExist.Role")
        raise NotPermitted(
            f"role {role_arn_text} does not exist or its trust policy does not admit {subject.arn}"
        )
    terms = role.entrustment
    if terms is not None and subject.account_id != terms.trustee_account_id:
        admitted, why = False, "only the trustee's delegated users may assume it"
    elif terms is not None:
        if terms.inactive_reason is not None:
            raise NotPermitted(f"cannot assume {role.arn}: {terms.inactive_reason}")
        if caller.parent is not None or caller.source_user_id not in terms.delegated_user_ids:
            raise NotPermitted(
                f"cannot assume {role.arn}: no live delegation of {terms.arn} reaches "
                f"{subject.arn} (only the trustee's delegated users may assume it)"
            )
        admitted, why = True, ""
    else:
        admitted, why = trust_admits(role.trust, caller, context, written_at=role.trust_position)
    if not admitted:
        if target_account != subject.account_id:
            # the same words as for a missing role: another account's roles stay private
            raise NotPermitted(
                f"role {role_arn_text} does not exist or its trust policy does not admit "
                f"{subject.arn}"
            )
        raise NotPermitted(f"cannot assume {role.arn}: {why}")
    if duration_seconds > role.max_session_duration:
        raise InvalidInput(
            FieldError(
                "duration_seconds",
                f"must be at most the role's max_session_duration ({role.max_session_duration})",
            ),
            code="InvalidParameter.DurationSeconds",
        )
    issued_at = now
    expiration = (now + timedelta(seconds=duration_seconds)).replace(microsecond=0)
    if caller.parent is not None and caller.parent.expiration < expiration:
        expiration = caller.parent.expiration  # a child never outlives its parent
    if terms is not None and terms.ends_at is not None and terms.ends_at < expiration:
        expiration = terms.ends_at  # nor a session its contract
    return SessionPlan(role, role_session_name, caller, session_policy, issued_at, expiration)
