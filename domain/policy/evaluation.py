"""The one pure function that answers "is this allowed, and why?" (docs/design.md §2).

Every kind of decision (live, as of an instant, simulated, "could P do it?") builds layers of
compiled policies and calls ``evaluate``. One layer: any matching Deny gives ``ExplicitDeny``,
else any matching Allow gives ``Allow``, else ``ImplicitDeny``. Several layers (a role session:
the role, each entrustment and delegation scope, the session policy) intersect: allowed only
if every layer allows and none denies, so a delegate never holds more than its delegator.

Speed is a design goal (a live ``authorize`` should cost a few microseconds), so the work is
done when policies change, not per request: ``compile_policy`` turns patterns into
``PatternSet``s once, and ``PolicySet.of`` buckets statements by the service named in their
actions, so a request for ``oss:GetObject`` only looks at ``oss:…`` statements and at those
whose service is a wildcard (or that use ``NotAction``); the statements an action selects are
then remembered per action (a bounded memo: actions are a few hundred API names), so a warm
decision only tests resources and conditions. Each bucket keeps document order (policy order,
then statement index), which is the order explanations list matches in.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from mandate.domain.policy.conditions import ConditionSet, ContextValue, condition_may_hold
from mandate.domain.policy.document import DocumentKind, Effect, PolicyDocument, Principal
from mandate.domain.policy.patterns import Matcher, PatternSet, has_wildcard

__all__ = [
    "ROOT_ALLOW",
    "AccessRequest",
    "CompiledPolicy",
    "CompiledStatement",
    "ContextValue",
    "Decision",
    "DecisionKind",
    "Effect",
    "Layer",
    "MatchedStatement",
    "PolicySet",
    "PolicySource",
    "compile_policy",
    "condition_may_hold",
    "evaluate",
]


class DecisionKind(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class Layer(StrEnum):
    """Where a policy applies from; explanations name it for every matched statement."""

    ROOT = "root"
    IDENTITY = "identity"
    ROLE = "role"
    ENTRUSTMENT = "entrustment"
    DELEGATION = "delegation"
    SESSION = "session"
    RESOURCE = "resource"
    """A resource-based policy on the resource asked for (``domain.policy.resource_policies``)."""
    CONTROL = "control"
    """Resource Directory's control policies (``domain.policy.control``): one layer per level."""


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Which policy a compiled document is, for explanations (docs/design.md §5's ``matched``)."""

    layer: Layer
    policy_type: str
    """``System``, ``Custom`` or ``Inline`` (session policies, scopes, simulated documents)."""
    policy_name: str
    version: str | None
    via: str | None
    """The ARN of the group or role through which the policy applies; ``None`` if direct."""


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """One statement that decided (or, in an implicit deny, partly supported) a decision."""

    layer: Layer
    policy_type: str
    policy_name: str
    version: str | None
    statement: int
    effect: Effect
    via: str | None

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of docs/design.md §5."""
        return {
            "layer": self.layer.value,
            "policy_type": self.policy_type,
            "policy_name": self.policy_name,
            "version": self.version,
            "statement": self.statement,
            "effect": self.effect.value,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer and its reason: the statements that matched."""

    kind: DecisionKind
    """Allow, explicit deny or implicit deny (``"decision"`` in JSON: ``as_dict``)."""
    matched: tuple[MatchedStatement, ...]
    context_dependent: bool
    """Whether a statement whose Action and Resource matched had a Condition: only a
    decision where this is False may be memoised for the (principal, action, resource)."""

    @property
    def allowed(self) -> bool:
        return self.kind is DecisionKind.ALLOW

    def as_dict(self) -> dict[str, object]:
        """``decision``, ``allowed`` and ``matched`` in the JSON shape of docs/design.md §5."""
        return {
            "decision": self.kind.value,
            "allowed": self.allowed,
            "matched": [m.as_dict() for m in self.matched],
        }


ROOT_ALLOW: Final = Decision(DecisionKind.ALLOW, (), False)
"""The root's decision inside its own account: allowed, with no statement to show."""

_ACTION_MEMO_SIZE: Final = 1024
"""Distinct actions remembered per policy set (RAM has a few hundred API names)."""

_NOTHING_MATCHED: Final = Decision(DecisionKind.IMPLICIT_DENY, (), False)
_EMPTY_CONTEXT: Final[Mapping[str, ContextValue]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What is asked: an action on a resource, in a context whose keys are lower-cased."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=lambda: _EMPTY_CONTEXT)
    action_key: str = field(init=False, repr=False, compare=False)
    """``action`` lower-cased once, since actions match case-insensitively."""
    service: str = field(init=False, repr=False, compare=False)
    """The service part of ``action_key`` (``oss`` for ``oss:GetObject``): the bucket key."""

    def __post_init__(self) -> None:
        action_key = self.action.lower()
        object.__setattr__(self, "action_key", action_key)
        object.__setattr__(self, "service", action_key.partition(":")[0])

    @classmethod
    def make(
        cls, action: str, resource: str, context: Mapping[str, ContextValue] | None = None
    ) -> AccessRequest:
        """A request whose context keys are lower-cased (keys match case-insensitively)."""
        if not context:
            return cls(action, resource)
        return cls(action, resource, {key.lower(): value for key, value in context.items()})


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """A statement ready to test requests; ``resources`` is ``None`` in trust documents."""

    index: int
    effect: Effect
    negated: bool
    """True for ``NotAction``: the statement applies to every action its patterns miss."""
    actions: PatternSet
    resources: PatternSet | None
    conditions: ConditionSet | None
    principal: Principal | None
    services: frozenset[str] | None
    """The services its actions name, or ``None`` if it may apply to any service."""


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A document compiled for evaluation, with where it comes from."""

    source: PolicySource
    document: PolicyDocument
    statements: tuple[CompiledStatement, ...]

    @property
    def principals(self) -> tuple[Principal | None, ...]:
        """Each statement's ``Principal`` (trust documents), in statement order."""
        return tuple(statement.principal for statement in self.statements)


def compile_policy(document: PolicyDocument, source: PolicySource) -> CompiledPolicy:
    """Compile every pattern of ``document`` once; conditions were compiled when parsed."""
    statements = []
    for index, statement in enumerate(document.statements):
        resources = (
            PatternSet(statement.resource, case_sensitive=True)
            if statement.resource is not None and document.kind is DocumentKind.IDENTITY
            else None
        )
        statements.append(
            CompiledStatement(
                index=index,
                effect=statement.effect,
                negated=statement.negated,
                actions=PatternSet(statement.actions, case_sensitive=False),
                resources=resources,
                conditions=statement.conditions,
                principal=statement.principal,
                services=None if statement.negated else _services(statement.actions),
            )
        )
    return CompiledPolicy(source, document, tuple(statements))


def _services(patterns: Iterable[str]) -> frozenset[str] | None:
    """The literal services of ``patterns``, or ``None`` if one has a wildcard service."""
    services: set[str] = set()
    for pattern in patterns:
        service, colon, _ = pattern.lower().partition(":")
        if not colon or has_wildcard(service):
            return None
        services.add(service)
    return frozenset(services)


class _Entry:
    """A statement as a decision scans it: bound methods and flags, nothing to look up."""

    __slots__ = (
        "conditions",
        "holds",
        "is_deny",
        "match_action",
        "match_resource",
        "matched",
        "negated",
        "order",
    )

    def __init__(self, order: int, statement: CompiledStatement, matched: MatchedStatement) -> None:
        self.order = order
        self.is_deny = statement.effect is Effect.DENY
        self.negated = statement.negated
        self.match_action: Matcher = statement.actions.matcher
        self.match_resource: Matcher | None = (
            None if statement.resources is None else statement.resources.matcher
        )
        self.holds: Callable[[Mapping[str, object]], bool] | None = (
            None if statement.conditions is None else statement.conditions.holds
        )
        self.conditions = statement.conditions
        self.matched = matched


class PolicySet:
    """The compiled policies of ONE layer, bucketed by service.

    Immutable once built, apart from the bounded per-action memo, which only ever holds what
    the buckets would give again (safe to share between threads: a race computes it twice).
    """

    __slots__ = ("_by_action", "_by_service", "_wildcard", "layer", "policies")

    layer: Layer
    policies: tuple[CompiledPolicy, ...]
    _wildcard: tuple[_Entry, ...]
    _by_service: Mapping[str, tuple[_Entry, ...]]
    _by_action: dict[str, tuple[_Entry, ...]]

    def __init__(
        self,
        layer: Layer,
        policies: tuple[CompiledPolicy, ...],
        wildcard: tuple[_Entry, ...],
        by_service: Mapping[str, tuple[_Entry, ...]],
    ) -> None:
        self.layer = layer
        self.policies = policies
        self._wildcard = wildcard
        self._by_service = by_service
        self._by_action = {}

    @classmethod
    def of(cls, policies: Iterable[CompiledPolicy], layer: Layer) -> PolicySet:
        """One layer of ``policies``; explanations name ``layer`` for each of them."""
        policies = tuple(policies)
        wildcard: list[_Entry] = []
        buckets: dict[str, list[_Entry]] = {}
        order = itertools.count()
        for policy in policies:
            source = policy.source
            for statement in policy.statements:
                entry = _Entry(
                    next(order),
                    statement,
                    MatchedStatement(
                        layer,
                        source.policy_type,
                        source.policy_name,
                        source.version,
                        statement.index,
                        statement.effect,
                        source.via,
                    ),
                )
                if statement.services is None:
                    wildcard.append(entry)
                else:
                    for service in statement.services:
                        buckets.setdefault(service, []).append(entry)
        # Each bucket is the service's statements merged with the wildcard ones, in document
        # order (policy, then statement), so a scan finds and explains them in that order.
        by_service = {
            service: tuple(heapq.merge(wildcard, entries, key=_document_order))
            for service, entries in buckets.items()
        }
        return cls(layer, policies, tuple(wildcard), MappingProxyType(by_service))

    def _for_action(self, action_key: str, service: str) -> tuple[_Entry, ...]:
        """The statements whose Action (or NotAction) admits ``action_key``, in order.

        Memoised per action: only the action is fixed here, the resource and the context are
        still tested on every request, so no decision is ever cached. The memo is bounded, so
        a stream of made-up action names cannot grow it without limit.
        """
        found = self._by_action.get(action_key)
        if found is None:
            found = tuple(
                entry
                for entry in self._by_service.get(service, self._wildcard)
                if bool(entry.match_action(action_key)) is not entry.negated
            )
            if len(self._by_action) >= _ACTION_MEMO_SIZE:
                self._by_action.clear()
            self._by_action[action_key] = found
        return found

    def _scan(
        self, request: AccessRequest, denies: list[MatchedStatement], allows: list[MatchedStatement]
    ) -> bool:
        """Append the matching statements; return whether a condition was consulted."""
        entries = self._by_action.get(request.action_key)
        if entries is None:
            entries = self._for_action(request.action_key, request.service)
        resource = request.resource
        consulted = False
        for entry in entries:
            match_resource = entry.match_resource
            if match_resource is not None and not match_resource(resource):
                continue
            holds = entry.holds
            if holds is not None:
                consulted = True
                if not holds(request.context):
                    continue
            if entry.is_deny:
                denies.append(entry.matched)
            else:
                allows.append(entry.matched)
        return consulted

    def _scan_optimistic(
        self, request: AccessRequest, denies: list[MatchedStatement], allows: list[MatchedStatement]
    ) -> bool:
        """``_scan`` for a context the caller may still choose (see ``evaluate``)."""
        entries = self._for_action(request.action_key, request.service)
        context = request.context
        consulted = False
        for entry in entries:
            match_resource = entry.match_resource
            if match_resource is not None and not match_resource(request.resource):
                continue
            conditions = entry.conditions
            if conditions is not None:
                consulted = True
                if not condition_may_hold(conditions, context, favourable=not entry.is_deny):
                    continue
            if entry.is_deny:
                denies.append(entry.matched)
            else:
                allows.append(entry.matched)
        return consulted

    def __repr__(self) -> str:
        names = [p.source.policy_name for p in self.policies]
        return f"PolicySet({self.layer.value}, {names!r})"


def _document_order(entry: _Entry) -> int:
    return entry.order


def evaluate(
    layers: Sequence[PolicySet], request: AccessRequest, *, optimistic: bool = False
) -> Decision:
    """Decide ``request`` against ``layers``: any Deny wins; Allow needs every layer.

    ``optimistic`` asks whether *some* request context could allow it (access reviews): a
    Condition clause on a key ``request.context`` holds is tested as usual, and one on a key
    it leaves open is taken as holding in an Allow statement and as not holding in a Deny
    statement. It over-approximates (two statements may want opposite values of one key),
    and the hot path never passes it.
    """
    if not layers:
        return _NOTHING_MATCHED
    denies: list[MatchedStatement] = []
    allows: list[MatchedStatement] = []
    context_dependent = False
    every_layer_allows = True
    for layer in layers:
        allowed_before = len(allows)
        scan = layer._scan_optimistic if optimistic else layer._scan
        if scan(request, denies, allows):
            context_dependent = True
        if len(allows) == allowed_before:
            every_layer_allows = False
    if denies:
        return Decision(DecisionKind.EXPLICIT_DENY, tuple(denies), context_dependent)
    if every_layer_allows:
        return Decision(DecisionKind.ALLOW, tuple(allows), context_dependent)
    # No layer denied, some did not allow: the Allows that did match show which layers
    # agreed, so the explanation points at the layer that was missing.
    if not allows and not context_dependent:
        return _NOTHING_MATCHED
    return Decision(DecisionKind.IMPLICIT_DENY, tuple(allows), context_dependent)
