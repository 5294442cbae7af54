"""Resource-based policies: a document an account attaches to one of its resources (issue 16).

An OSS bucket policy or a KMS key policy names *who* (``Principal``) may do *what* on the
resource it is attached to. Alibaba Cloud combines it with the caller's identity policies
(https://www.alibabacloud.com/help/en/ram/policy-evaluation-process, and the KMS key policy
overview, https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/
overview-of-key-policies, which spells the rule out):

* a principal of the resource's own account is allowed when *either* the resource policy or
  its identity policies allow, and nothing denies (OR);
* a principal of *another* account needs *both*: the resource policy must name it and allow,
  and its own account's identity policies must allow too (AND) — no role is assumed;
* an explicit ``Deny`` in either wins.

Where a policy applies: it is attached to a literal ARN ``acs:<service>:<region>:<a>:<id>``
whose account is ``a``. It covers that resource and, as an OSS bucket policy covers the
bucket's objects, every resource ``<id>/…`` under it; the region is not part of the key
(OSS bucket ARNs are written ``acs:oss:*:<a>:<bucket>``). Each statement's ``Resource`` must
lie within the ARN it is attached to, so a policy never speaks for another resource.

``Principal``: ``"*"`` (anyone authenticated), an account (16 digits, or
``acs:ram::<uid>:root``), a RAM user (``acs:ram::<uid>:user/<name>``), a role
(``…:role/<name>``, which covers its sessions) or one session
(``…:assumed-role/<role>/<session>``); one string, a list, or ``{"RAM": …}``. An account
names its root; inside the resource's own account it grants nothing more than the root
already has, and across accounts it admits every principal of that account, each still
bounded by its own identity policies (the AND above). That is conservative: it never grants
a principal of the owner's account what its identity policies do not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mandate.domain.common.arns import ACCOUNT_ID_RE, parse_principal_arn, root_arn
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.control import ControlLevel, control_levels, decide_with_control
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind, decide
from mandate.domain.policy.document import DocumentKind, parse_policy_document
from mandate.domain.policy.evaluation import (
    ROOT_ALLOW,
    AccessRequest,
    CompiledPolicy,
    Decision,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)

__all__ = [
    "RESOURCE_POLICY_TYPE",
    "ResourceKey",
    "ResourcePolicy",
    "combine_with_resource",
    "covering_keys",
    "decide_with_resource",
    "decide_with_resource_and_control",
    "owned_resource_key",
    "parse_resource_policy",
    "resource_key",
]

RESOURCE_POLICY_TYPE: Final = "Resource"
"""``policy_type`` of a resource policy's matched statements (its name is the ARN)."""

ResourceKey = tuple[str, str, str]
"""(service, account, relative id): where a policy is attached, the region left out."""

_ARN_RE: Final = re.compile(r"acs:([a-z0-9-]+):([^:]*):([0-9]{16}):([^*?]+)")
_WILDCARDS: Final = re.compile(r"[*?]")


def resource_key(arn: str, *, field: str = "resource") -> ResourceKey:
    """The key of a literal resource ARN, or ``InvalidInput`` on ``field``."""
    found = _ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
    if found is None or (found[2] != "*" and _WILDCARDS.search(found[2])):
        raise InvalidInput(
            FieldError(
                field,
                "must be a resource ARN acs:<service>:<region>:<account_id>:<relative_id> "
                "with no wildcard (the region may be *)",
            )
        )
    relative = found[4].rstrip("/")
    if not relative:
        raise InvalidInput(FieldError(field, "must name a resource after the account id"))
    return (found[1], found[3], relative)


def owned_resource_key(arn: str, account_id: str) -> ResourceKey:
    """``resource_key`` of an ARN of ``account_id``'s own: an account puts, reads and deletes
    policies only on its own resources (else ``InvalidInput`` on ``resource``)."""
    key = resource_key(arn)
    if key[1] != account_id:
        raise InvalidInput(
            FieldError(
                "resource",
                f"belongs to account {key[1]}; an account manages policies only of its own "
                f"resources ({account_id})",
            ),
            code="InvalidParameter.Resource",
        )
    return key


def covering_keys(resource: str) -> tuple[ResourceKey, ...]:
    """The keys whose policy covers a requested ``resource``: itself, then its bucket."""
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs" or not ACCOUNT_ID_RE.match(parts[3]):
        return ()
    service, account, relative = parts[1], parts[3], parts[4]
    top = relative.split("/", 1)[0]
    if not top:
        return ()
    if top == relative:
        return ((service, account, relative),)
    return ((service, account, relative), (service, account, top))


@dataclass(frozen=True, slots=True)
class _Grant:
    """One statement, compiled alone, and the principals it names (``*`` for anyone)."""

    principals: frozenset[str]
    policy: CompiledPolicy


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """A checked resource policy: its ARN, owner, document text and compiled statements."""

    resource_arn: str
    account_id: str
    key: ResourceKey
    document: Mapping[str, object]
    canonical: str
    version: int
    grants: tuple[_Grant, ...]

    def layer_for(self, names: frozenset[str]) -> PolicySet | None:
        """The statements naming any of ``names`` (or ``*``) as one ``resource`` layer."""
        chosen = [g.policy for g in self.grants if "*" in g.principals or g.principals & names]
        return PolicySet.of(chosen, Layer.RESOURCE) if chosen else None


def _principals(raw: object, path: str, errors: list[FieldError]) -> frozenset[str]:
    """``Principal`` as a set of canonical names: ``*``, root, user, role, session ARNs."""
    if isinstance(raw, Mapping):
        if set(raw) != {"RAM"}:
            errors.append(
                FieldError(path, 'a resource policy names RAM principals: {"RAM": [...]}')
            )
            return frozenset()
        raw = raw["RAM"]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        errors.append(FieldError(path, 'is required: "*", an account id or RAM ARNs'))
        return frozenset()
    names: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if item == "*":
            names.add("*")
        elif isinstance(item, str) and ACCOUNT_ID_RE.match(item):
            names.add(root_arn(item))
        elif isinstance(item, str):
            try:
                parsed = parse_principal_arn(item)
            except InvalidInput as bad:
                errors.extend(FieldError(where, e.reason) for e in bad.errors)
                continue
            if parsed.kind == "group":
                errors.append(FieldError(where, "a group is not a principal (name its users)"))
                continue
            names.add(parsed.arn)
        else:
            errors.append(FieldError(where, "must be a string"))
    return frozenset(names)


def _within(pattern: str, key: ResourceKey) -> bool:
    """Whether a statement's ``Resource`` pattern stays inside the attached resource."""
    parts = pattern.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs":
        return False
    service, account, relative = key
    tail = parts[4]
    return (
        parts[1] == service
        and parts[3] == account
        and (tail == relative or tail.startswith(relative + "/"))
    )


def parse_resource_policy(
    raw: str | Mapping[str, object], resource_arn: str, account_id: str, *, version: int = 1
) -> ResourcePolicy:
    """Check a resource policy for ``resource_arn`` of ``account_id``, or ``InvalidInput``.

    The document is RAM's policy language (``parse_policy_document``, so every fault of an
    identity policy is refused the same way) with a ``Principal`` required in each statement.
    """
    key = owned_resource_key(resource_arn, account_id)
    errors: list[FieldError] = []
    whole = parse_policy_document(_without_principals(raw), kind=DocumentKind.IDENTITY)
    original = _decoded(raw)
    raw_statements = original.get("Statement")
    assert isinstance(raw_statements, list)  # parse_policy_document checked the shape
    grants: list[_Grant] = []
    compiled = compile_policy(
        whole, PolicySource(Layer.RESOURCE, RESOURCE_POLICY_TYPE, resource_arn, f"v{version}", None)
    )
    for index, (raw_statement, statement) in enumerate(
        zip(raw_statements, compiled.statements, strict=True)
    ):
        path = f"Statement[{index}]"
        assert isinstance(raw_statement, Mapping)
        principals = _principals(raw_statement.get("Principal"), f"{path}.Principal", errors)
        for at, pattern in enumerate(whole.statements[index].resource or ()):
            if not _within(pattern, key):
                errors.append(
                    FieldError(
                        f"{path}.Resource[{at}]",
                        f"{pattern!r} is not within {resource_arn}, the resource this policy "
                        "is attached to (name it or what lies under it: …/*)",
                    )
                )
        single = CompiledPolicy(compiled.source, whole, (statement,))
        grants.append(_Grant(principals, single))
    if errors:
        raise InvalidInput(errors)
    return ResourcePolicy(
        resource_arn, account_id, key, whole.as_dict(), _canonical(original), version, tuple(grants)
    )


def _decoded(raw: str | Mapping[str, object]) -> Mapping[str, object]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, Mapping):
        raise InvalidInput(FieldError("", "must be a JSON object"))
    return data


def _canonical(document: Mapping[str, object]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_principals(raw: str | Mapping[str, object]) -> Mapping[str, object]:
    """The document with each statement's ``Principal`` set aside, for the identity parser."""
    data = _decoded(raw)
    statements = data.get("Statement")
    if not isinstance(statements, list):
        return data
    stripped = [
        {k: v for k, v in s.items() if k != "Principal"} if isinstance(s, Mapping) else s
        for s in statements
    ]
    return {**data, "Statement": stripped}


def subject_names(
    arn: str, account_id: str, resource_account: str, role: str | None
) -> frozenset[str]:
    """The names a statement may use for a caller: itself, its role, and across accounts
    its account (an account grant admits its principals only from outside)."""
    names = {arn}
    if role is not None:
        names.add(role)
    if account_id != resource_account or arn == root_arn(account_id):
        names.add(root_arn(account_id))
    return frozenset(names)


def combine_with_resource(
    identity: Decision, resource: Decision, *, same_account: bool
) -> Decision:
    """RAM's rule for the two kinds (module docstring): explicit Deny in either wins; then
    OR inside the resource's account, AND across accounts."""
    context_dependent = identity.context_dependent or resource.context_dependent
    parts: Sequence[Decision] = (identity, resource)
    if any(d.kind is DecisionKind.EXPLICIT_DENY for d in parts):
        denies = tuple(m for d in parts if d.kind is DecisionKind.EXPLICIT_DENY for m in d.matched)
        return Decision(DecisionKind.EXPLICIT_DENY, denies, context_dependent)
    allowing = [d for d in parts if d.kind is DecisionKind.ALLOW]
    if allowing if same_account else len(allowing) == 2:
        matched = tuple(m for d in allowing for m in d.matched)
        return Decision(DecisionKind.ALLOW, matched, context_dependent)
    partial = tuple(m for d in parts for m in d.matched)
    return Decision(DecisionKind.IMPLICIT_DENY, partial, context_dependent)


def decide_resource_layer(
    policies: Iterable[ResourcePolicy],
    names: frozenset[str],
    request: AccessRequest,
    *,
    optimistic: bool = False,
) -> Decision | None:
    """The resource layer's own decision, or ``None`` when no policy names the caller."""
    layers = [layer for p in policies if (layer := p.layer_for(names)) is not None]
    if not layers:
        return None
    merged = PolicySet.of((c for layer in layers for c in layer.policies), Layer.RESOURCE)
    return evaluate((merged,), request, optimistic=optimistic)


def _role_of(arn: str) -> str | None:
    """``acs:ram::<a>:role/<r>`` for a session ``…:assumed-role/<r>/<s>``, else ``None``."""
    head, marker, rest = arn.partition(":assumed-role/")
    return f"{head}:role/{rest.split('/', 1)[0]}" if marker else None


def _own_layers(
    subject: Subject, request: AccessRequest, optimistic: bool
) -> tuple[Decision, tuple[str, ...]]:
    """The caller's own permission (identity, or a session's intersected layers) for a
    resource of another account, whatever account the resource is in: the AND's other half."""
    chain = subject.chain or (subject.arn,)
    if subject.kind is SubjectKind.ROOT:
        return ROOT_ALLOW, chain
    if subject.kind is SubjectKind.USER:
        layers = (subject.identity,) if subject.identity is not None else ()
        return evaluate(layers, request, optimistic=optimistic), chain
    first: tuple[Decision, tuple[str, ...]] | None = None
    for path in subject.paths or ():
        decision = evaluate(path.layers, request, optimistic=optimistic)
        if decision.allowed:
            return decision, path.chain
        first = first or (decision, path.chain)
    if first is None:
        return evaluate(subject.layers, request, optimistic=optimistic), chain
    return first


def decide_with_resource(
    subject: Subject,
    policies: Sequence[ResourcePolicy],
    request: AccessRequest,
    *,
    optimistic: bool = False,
) -> Answer:
    """``decide``, with the resource policies covering ``request.resource`` (module docstring).

    ``policies`` are those ``covering_keys`` finds; empty, or none naming the caller, is
    ``decide`` unchanged. The owner's root is not bound by its own resource policies, and
    ``sts:AssumeRole`` is a trust policy's business, not a resource policy's.
    """
    resource_account = policies[0].account_id if policies else None
    if (
        resource_account is None
        or request.action_key == "sts:assumerole"
        or (subject.kind is SubjectKind.ROOT and subject.account_id == resource_account)
    ):
        return decide(subject, request, optimistic=optimistic)
    names = subject_names(subject.arn, subject.account_id, resource_account, _role_of(subject.arn))
    resource = decide_resource_layer(policies, names, request, optimistic=optimistic)
    if resource is None:
        return decide(subject, request, optimistic=optimistic)
    same_account = subject.account_id == resource_account
    if same_account:
        answer = decide(subject, request, optimistic=optimistic)
        own, chain = answer.decision, answer.chain
    else:
        own, chain = _own_layers(subject, request, optimistic)
    decision = combine_with_resource(own, resource, same_account=same_account)
    if decision.kind is DecisionKind.ALLOW:
        return Answer(decision, chain, resource_account, "allowed by the matched statements")
    if decision.kind is DecisionKind.EXPLICIT_DENY:
        return Answer(decision, chain, None, "an explicit Deny statement matched")
    if same_account:
        reason = "neither an identity policy nor the resource policy allows this request"
    elif resource.allowed:
        reason = (
            "the resource policy allows it, but across accounts the caller's own policies "
            "must allow it too"
        )
    else:
        reason = "across accounts the resource policy must allow the request; it does not"
    return Answer(decision, chain, None, reason)


def decide_with_resource_and_control(
    subject: Subject,
    levels: Sequence[ControlLevel],
    management: str | None,
    covering: Sequence[ResourcePolicy],
    request: AccessRequest,
    *,
    optimistic: bool = False,
) -> Answer:
    """RAM's order: control policies first (``decide_with_control`` answers their refusal),
    then identity and resource policies together (``decide_with_resource``). Live and as-of
    decisions and access reviews (``optimistic`` for their conditional answers) all call
    this, so they cannot differ in how the layers combine."""
    exempt = not levels or subject.kind is SubjectKind.ROOT or subject.account_id == management
    if covering and (
        exempt or evaluate(control_levels(levels), request, optimistic=optimistic).allowed
    ):
        return decide_with_resource(subject, covering, request, optimistic=optimistic)
    return decide_with_control(
        subject, levels, request, management_account=management, optimistic=optimistic
    )
